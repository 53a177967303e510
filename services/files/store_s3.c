/* store_s3.c: the S3 storage backend (path-style addressing, SigV4, sb_httpc).
 *
 * http:// or https:// (verified TLS, SB_FILES_S3_CA_FILE). S3 objects are immutable: "write len
 * bytes at off" cannot change an object in place. A stored key is therefore a chain of segment
 * objects "<key>/<off, 20 digits>", one per write: each acknowledged tus PATCH (or chunk, or merge
 * write) is one PUT, durable when S3 answers 200. What the key holds is the chain from offset 0:
 * the segment at 0, then the one starting where it ends, and so on; a segment off the chain (left
 * by a write that was never acknowledged) is ignored and removed by truncate. A write at an offset
 * replaces the segment there (a retried PATCH overwrites its crashed attempt). Reads list the
 * segments (ListObjectsV2) and read the needed ranges of each (GET with Range): the concatenation
 * is done while reading. truncate cuts the chain (a straddling segment is written again, shorter)
 * and removes what lies past it; remove deletes every segment. See docs/files.md. */
#include "files.h"
#include "s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_httpc.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_time.h"

#define S3_LIST_MAX   (16 * 1024 * 1024) /* bytes of one ListObjectsV2 page */
#define S3_ERR_MAX    (64 * 1024)        /* bytes of an error body we read */
#define S3_ZEROS_STEP (8 * 1024 * 1024)  /* bytes of one zero segment (truncate extending) */
#define S3_ATTEMPTS   3                  /* tries of a request that may be repeated */
#define S3_PART_MIN   (5 * 1024 * 1024) /* S3's smallest part of a multipart upload, but the last */

struct s3_store {
	struct files_store base;
	char *endpoint; /* without a trailing '/' */
	char *bucket;
	char *region;
	char *access_key;
	char *secret_key;
	char host[SB_HTTPC_HOST_MAX + 10]; /* the Host header sb_httpc sends */
	int timeout_ms;
	char *ca_file;                /* https: the CAs to trust; NULL: the system's */
	int64_t compose_max;          /* s3_compose only up to this many bytes (0: never) */
	struct sb_metric *m_requests; /* files_s3_requests_total{method,outcome} */
	struct sb_metric *m_seconds;  /* files_s3_request_seconds{method} */
	struct sb_series *retries;    /* files_s3_retries_total */
};

/* Where a response body goes: a growable buffer with a cap, or a fixed one (b NULL). */
struct s3_sink {
	struct sb_buf *b;
	char *fixed;
	size_t cap, len;
};
static int
s3_buf_sink(void *arg, const void *data, size_t n)
{
	struct s3_sink *k = arg;
	if (n > k->cap - k->len)
		return SB_ERANGE;
	if (k->b != NULL && sb_buf_append(k->b, data, n) != 0)
		return SB_ENOMEM;
	if (k->b == NULL)
		memcpy(k->fixed + k->len, data, n);
	k->len += n;
	return 0;
}

/* One S3 call's request. */
struct s3_call {
	const char *method;
	const char *key;   /* NULL: the bucket itself */
	const char *query; /* canonical query string, NULL for none */
	const void *body;
	size_t len;
	const char *range;    /* Range header value, or NULL */
	const char *copy;     /* x-amz-copy-source header value (UploadPartCopy), or NULL */
	struct sb_buf *out;   /* when set, the body of a 2xx answer (up to S3_ERR_MAX bytes) */
	struct s3_sink *sink; /* where a 2xx body goes (NULL: kept for error codes) */
	size_t max_body;
};

/* s3_err_code copies S3's <Code> of an error body into out ("" when none). */
static void
s3_err_code(const struct sb_buf *b, char *out, size_t cap)
{
	out[0] = '\0';
	const char *s = b->data ? strstr(b->data, "<Code>") : NULL, *e;
	if (s == NULL || (e = strstr(s + 6, "</Code>")) == NULL)
		return;
	snprintf(out, cap, "%.*s", (int)(e - s - 6 < 100 ? e - s - 6 : 100), s + 6);
}

/* s3_do_once sends one signed request. Returns 0 (2xx), SB_ENOTFOUND (404), SB_EIO (another
 * status, logged with S3's error code), or the client's error (logged). *status gets the
 * status. */
static int
s3_do_once(struct s3_store *s, const struct s3_call *c, int *status)
{
	struct sb_buf uri = SB_BUF_INIT, url = SB_BUF_INIT, hdrs = SB_BUF_INIT, auth = SB_BUF_INIT;
	struct sb_httpc_resp resp;
	char sha[65], date[17], st[8], code[104];
	int rv = SB_ENOMEM;
	bool resp_ok = false;
	*status = 0;
	s3_sha256_hex(c->body ? c->body : "", c->len, sha);
	s3_amz_date(time(NULL), date);
	if (sb_buf_puts(&uri, "/") != 0 || s3_uri_encode(&uri, s->bucket, false) != 0 ||
	    (c->key != NULL &&
	     (sb_buf_puts(&uri, "/") != 0 || s3_uri_encode(&uri, c->key, true) != 0)))
		goto done;
	struct s3_hdr rh[2];
	size_t nh = 0;
	if (c->range != NULL)
		rh[nh++] = (struct s3_hdr){ "range", c->range };
	if (c->copy != NULL)
		rh[nh++] = (struct s3_hdr){ "x-amz-copy-source", c->copy };
	const struct s3_sign_in in = { .method = c->method,
		                       .host = s->host,
		                       .uri = uri.data,
		                       .query = c->query ? c->query : "",
		                       .hdrs = rh,
		                       .nhdrs = nh,
		                       .amz_date = date,
		                       .payload_sha256 = sha,
		                       .region = s->region,
		                       .service = "s3",
		                       .access_key = s->access_key,
		                       .secret_key = s->secret_key };
	if ((rv = s3_sign(&in, &auth, NULL)) != 0)
		goto done;
	rv = SB_ENOMEM;
	if (sb_buf_printf(&url, "%s%s%s%s", s->endpoint, uri.data, c->query ? "?" : "",
	                  c->query ? c->query : "") != 0 ||
	    sb_buf_printf(&hdrs,
	                  "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\nAuthorization: %s\r\n",
	                  date, sha, auth.data) != 0 ||
	    (c->range && sb_buf_printf(&hdrs, "Range: %s\r\n", c->range) != 0) ||
	    (c->copy && sb_buf_printf(&hdrs, "x-amz-copy-source: %s\r\n", c->copy) != 0))
		goto done;
	struct sb_httpc_req q = { .method = c->method,
		                  .url = url.data,
		                  .headers = hdrs.data,
		                  .body = c->body,
		                  .body_len = c->len,
		                  .timeout_ms = s->timeout_ms,
		                  .ca_file = s->ca_file,
		                  .body_write = c->sink ? s3_buf_sink : NULL,
		                  .write_arg = c->sink,
		                  .max_body = c->max_body ? c->max_body : S3_ERR_MAX };
	rv = sb_httpc_do(&q, &resp);
	resp_ok = true;
	*status = resp.status;
	snprintf(st, sizeof(st), "%d", resp.status);
	if (rv != 0) {
		sb_log_kv(SB_LOG_WARN, "S3 request failed", "method", c->method, "key",
		          c->key ? c->key : "", "status", st, "error", resp.error, NULL);
		goto done;
	}
	if (resp.status >= 200 && resp.status < 300) {
		/* CompleteMultipartUpload and UploadPartCopy may fail with 200 and an <Error> */
		if (c->out != NULL && resp.body.len > 0 &&
		    strstr(resp.body.data, "<Error>") != NULL) {
			s3_err_code(&resp.body, code, sizeof(code));
			sb_log_kv(SB_LOG_WARN, "S3 refused a request", "method", c->method, "key",
			          c->key ? c->key : "", "status", st, "code", code, NULL);
			rv = SB_EIO;
		} else if (c->out != NULL && resp.body.len > 0) {
			rv = sb_buf_append(c->out, resp.body.data, resp.body.len);
		}
		goto done;
	}
	rv = resp.status == 404 ? SB_ENOTFOUND : SB_EIO;
	if (rv == SB_EIO) {
		s3_err_code(&resp.body, code, sizeof(code));
		sb_log_kv(SB_LOG_WARN, "S3 refused a request", "method", c->method, "key",
		          c->key ? c->key : "", "status", st, "code", code, NULL);
	}
done:
	if (resp_ok)
		sb_httpc_resp_free(&resp);
	explicit_bzero(auth.data, auth.len);
	sb_buf_free(&uri);
	sb_buf_free(&url);
	sb_buf_free(&hdrs);
	sb_buf_free(&auth);
	return rv;
}

/* s3_outcome names what an attempt came to, for files_s3_requests_total. */
static const char *
s3_outcome(int rv, int status)
{
	if (status >= 200 && status < 600 && (rv == 0 || rv == SB_ENOTFOUND || rv == SB_EIO)) {
		static const char *cls[] = { "2xx", "3xx", "4xx", "5xx" };
		return cls[status / 100 - 2 < 0 ? 0 : status / 100 - 2];
	}
	return "error";
}

/* s3_do sends a request, again after a pause when the attempt failed in a way that may pass
 * (no connection, a broken or timed-out one, 500 or 503) and the request may be repeated
 * without harm (every method but POST: a PUT of a segment writes the same bytes again). At
 * most S3_ATTEMPTS attempts, 0.1 s then 0.4 s apart. Returns what the last attempt returned. */
static int
s3_do(struct s3_store *s, const struct s3_call *c, int *status)
{
	bool again_ok = strcmp(c->method, "POST") != 0;
	int64_t t0 = sb_time_mono_ms();
	int rv;
	for (int attempt = 1;; attempt++) {
		if (c->sink != NULL) { /* what a failed attempt delivered is dropped */
			c->sink->len = 0;
			if (c->sink->b != NULL)
				sb_buf_reset(c->sink->b);
		}
		rv = s3_do_once(s, c, status);
		sb_series_inc(sb_metric_with(s->m_requests, c->method, s3_outcome(rv, *status)));
		bool passing = rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT ||
		               (rv == SB_EIO && (*status == 500 || *status == 503));
		if (!passing || !again_ok || attempt >= S3_ATTEMPTS)
			break;
		sb_series_inc(s->retries);
		usleep(attempt == 1 ? 100000 : 400000);
	}
	sb_series_observe(sb_metric_with(s->m_seconds, c->method),
	                  (double)(sb_time_mono_ms() - t0) / 1000.0);
	return rv;
}

static int
s3_seg_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct s3_seg *)a)->off, y = ((const struct s3_seg *)b)->off;
	return x < y ? -1 : x > y;
}

/* s3_list lists every segment of key, sorted by offset (*segs malloc'd, *n of them). */
static int
s3_list(struct s3_store *s, const char *key, struct s3_seg **segs, size_t *n)
{
	struct sb_buf prefix = SB_BUF_INIT, q = SB_BUF_INIT, body = SB_BUF_INIT;
	char *token = NULL;
	int rv = SB_ENOMEM, status;
	*segs = NULL;
	*n = 0;
	if (sb_buf_printf(&prefix, "%s/", key) != 0)
		goto done;
	do {
		sb_buf_reset(&q);
		sb_buf_reset(&body);
		rv = SB_ENOMEM;
		/* parameters in the canonical (sorted) order */
		if ((token != NULL &&
		     (sb_buf_puts(&q, "continuation-token=") != 0 ||
		      s3_uri_encode(&q, token, false) != 0 || sb_buf_puts(&q, "&") != 0)) ||
		    sb_buf_puts(&q, "list-type=2&prefix=") != 0 ||
		    s3_uri_encode(&q, prefix.data, false) != 0)
			goto done;
		free(token);
		token = NULL;
		struct s3_sink k = { .b = &body, .cap = S3_LIST_MAX };
		struct s3_call c = { .method = "GET", .query = q.data, .sink = &k };
		if ((rv = s3_do(s, &c, &status)) != 0)
			goto done;
		if ((rv = s3_list_parse(body.data ? body.data : "", body.len, prefix.data, segs, n,
		                        &token)) != 0) {
			sb_log_kv(SB_LOG_WARN, "S3 list answer not understood", "key", key, NULL);
			goto done;
		}
	} while (token != NULL);
	if (*n > 1) /* qsort of NULL, even with 0 elements, is undefined */
		qsort(*segs, *n, sizeof(**segs), s3_seg_cmp);
	rv = 0;
done:
	if (rv != 0) {
		free(*segs);
		*segs = NULL;
		*n = 0;
	}
	free(token);
	sb_buf_free(&prefix);
	sb_buf_free(&q);
	sb_buf_free(&body);
	return rv;
}

/* s3_chain keeps, in place, the segments of the chain from offset 0 (segs sorted) and returns
 * where it ends; *on is how many are on it. The others are moved after them. */
static int64_t
s3_chain(struct s3_seg *segs, size_t n, size_t *on)
{
	int64_t pos = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (segs[i].off != pos)
			continue;
		struct s3_seg t = segs[k];
		segs[k] = segs[i];
		segs[i] = t;
		pos += segs[k].size;
		k++;
	}
	*on = k;
	return pos;
}

static int
s3_put(struct s3_store *s, const char *key, int64_t off, const void *buf, size_t len)
{
	struct sb_buf k = SB_BUF_INIT;
	int status, rv = s3_seg_key(&k, key, off);
	if (rv == 0) {
		struct s3_call c = { .method = "PUT", .key = k.data, .body = buf, .len = len };
		rv = s3_do(s, &c, &status);
	}
	sb_buf_free(&k);
	return rv == SB_ENOTFOUND ? SB_EIO : rv;
}

static int
s3_delete(struct s3_store *s, const char *key, int64_t off)
{
	struct sb_buf k = SB_BUF_INIT;
	int status, rv = s3_seg_key(&k, key, off);
	if (rv == 0) {
		struct s3_call c = { .method = "DELETE", .key = k.data };
		rv = s3_do(s, &c, &status);
	}
	sb_buf_free(&k);
	return rv == SB_ENOTFOUND ? 0 : rv;
}

/* s3_get reads bytes [from, from + len) of the segment at off into buf. */
static int
s3_get(struct s3_store *s, const char *key, int64_t off, int64_t from, void *buf, size_t len)
{
	struct sb_buf k = SB_BUF_INIT;
	char range[64];
	struct s3_sink sk = { .fixed = buf, .cap = len };
	int status, rv = s3_seg_key(&k, key, off);
	snprintf(range, sizeof(range), "bytes=%" PRId64 "-%" PRId64, from, from + (int64_t)len - 1);
	if (rv == 0) {
		struct s3_call c = { .method = "GET", .key = k.data, .range = range, .sink = &sk };
		rv = s3_do(s, &c, &status);
		/* 206 with exactly the range, or 200 when the range was the whole object */
		if (rv == 0 && (sk.len != len || (status != 206 && !(status == 200 && from == 0))))
			rv = SB_EIO;
	}
	sb_buf_free(&k);
	return rv == SB_ENOTFOUND ? SB_EIO : rv; /* listed a moment ago: gone means trouble */
}

static int
s3_op_write(struct files_store *fs, const char *key, int64_t off, const void *buf, size_t len)
{
	return s3_put((struct s3_store *)fs, key, off, buf, len);
}

static int
s3_op_read(struct files_store *fs, const char *key, int64_t off, void *buf, size_t len, size_t *got)
{
	struct s3_store *s = (struct s3_store *)fs;
	struct s3_seg *segs;
	size_t n, on;
	int rv;
	*got = 0;
	if ((rv = s3_list(s, key, &segs, &n)) != 0)
		return rv;
	if (n == 0) {
		free(segs);
		return SB_ENOTFOUND;
	}
	s3_chain(segs, n, &on);
	int64_t want_end = off + (int64_t)len;
	for (size_t i = 0; i < on && rv == 0; i++) {
		int64_t a = segs[i].off > off ? segs[i].off : off;
		int64_t b =
		    segs[i].off + segs[i].size < want_end ? segs[i].off + segs[i].size : want_end;
		if (a >= b)
			continue;
		if (a != off + (int64_t)*got)
			break; /* cannot happen on a chain; never leave a hole */
		rv = s3_get(s, key, segs[i].off, a - segs[i].off, (char *)buf + *got,
		            (size_t)(b - a));
		if (rv == 0)
			*got += (size_t)(b - a);
	}
	free(segs);
	return rv;
}

static int
s3_op_size(struct files_store *fs, const char *key, int64_t *out)
{
	struct s3_seg *segs;
	size_t n, on;
	int rv = s3_list((struct s3_store *)fs, key, &segs, &n);
	if (rv == 0 && n == 0)
		rv = SB_ENOTFOUND;
	if (rv == 0)
		*out = s3_chain(segs, n, &on);
	free(segs);
	return rv;
}

/* s3_compose makes the chain segs[0..on) of key, which ends at len, one object: a multipart
 * upload onto the segment at 0 whose parts are server-side copies of the segments
 * (UploadPartCopy), so no byte passes through the service. S3 wants every part but the last
 * to hold at least 5 MiB: a chain with a smaller one is left as it is, and so is a file above
 * compose_max (SB_FILES_S3_COMPOSE_MAX_BYTES), because the copies are made before the last PATCH
 * is answered (about 5 s per 64 MiB on moto's server; docs/benchmarks.md). Completing the upload
 * replaces segment 0 atomically with the whole file; the other segments are then off the chain
 * (ignored by readers) and deleted. Any failure leaves a correct chain and is only logged:
 * composing saves requests on every later read, nothing depends on it. */
static void
s3_compose(struct s3_store *s, const char *key, const struct s3_seg *segs, size_t on, int64_t len)
{
	struct sb_buf k0 = SB_BUF_INIT, q = SB_BUF_INIT, out = SB_BUF_INIT, id = SB_BUF_INIT,
	              src = SB_BUF_INIT, done = SB_BUF_INIT, etag = SB_BUF_INIT;
	int status, rv = SB_ENOMEM;
	bool started = false;
	if (on < 2 || len <= 0 || len > s->compose_max)
		return;
	for (size_t i = 0; i + 1 < on; i++)
		if (segs[i].size < S3_PART_MIN)
			return;
	if (s3_seg_key(&k0, key, 0) != 0)
		goto done;
	struct s3_call init = {
		.method = "POST", .key = k0.data, .query = "uploads=", .out = &out
	};
	if ((rv = s3_do(s, &init, &status)) != 0)
		goto done;
	rv = SB_EPROTO;
	if (out.len == 0 || s3_xml_text(out.data, out.data + out.len, "UploadId", &id) == NULL ||
	    id.len == 0)
		goto done;
	started = true;
	if ((rv = sb_buf_puts(&done, "<CompleteMultipartUpload>")) != 0)
		goto done;
	for (size_t i = 0; i < on; i++) {
		sb_buf_reset(&q);
		sb_buf_reset(&src);
		sb_buf_reset(&out);
		rv = SB_ENOMEM;
		if (sb_buf_printf(&q, "partNumber=%zu&uploadId=", i + 1) != 0 ||
		    s3_uri_encode(&q, id.data, false) != 0 || sb_buf_puts(&src, "/") != 0 ||
		    s3_uri_encode(&src, s->bucket, false) != 0 || sb_buf_puts(&src, "/") != 0)
			goto done;
		struct sb_buf sk = SB_BUF_INIT;
		rv = s3_seg_key(&sk, key, segs[i].off);
		if (rv == 0)
			rv = s3_uri_encode(&src, sk.data, true);
		sb_buf_free(&sk);
		if (rv != 0)
			goto done;
		struct s3_call part = { .method = "PUT",
			                .key = k0.data,
			                .query = q.data,
			                .copy = src.data,
			                .out = &out };
		if ((rv = s3_do(s, &part, &status)) != 0)
			goto done;
		rv = SB_EPROTO;
		if (out.len == 0 ||
		    s3_xml_text(out.data, out.data + out.len, "ETag", &etag) == NULL ||
		    etag.len == 0 || strchr(etag.data, '<') != NULL ||
		    strchr(etag.data, '&') != NULL)
			goto done;
		if ((rv = sb_buf_printf(&done,
		                        "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>",
		                        i + 1, etag.data)) != 0)
			goto done;
	}
	sb_buf_reset(&q);
	sb_buf_reset(&out);
	rv = SB_ENOMEM;
	if (sb_buf_puts(&done, "</CompleteMultipartUpload>") != 0 ||
	    sb_buf_puts(&q, "uploadId=") != 0 || s3_uri_encode(&q, id.data, false) != 0)
		goto done;
	struct s3_call fin = { .method = "POST",
		               .key = k0.data,
		               .query = q.data,
		               .body = done.data,
		               .len = done.len,
		               .out = &out };
	if ((rv = s3_do(s, &fin, &status)) != 0)
		goto done;
	started = false;
	/* Segment 0 is the whole file now; the rest is off the chain. */
	for (size_t i = 1; i < on && rv == 0; i++)
		rv = s3_delete(s, key, segs[i].off);
	if (rv == 0) {
		char n[24];
		snprintf(n, sizeof(n), "%zu", on);
		sb_log_kv(SB_LOG_INFO, "S3 segments composed into one object", "key", key,
		          "segments", n, NULL);
	}
done:
	if (started) { /* abort: S3 keeps the parts of an unfinished upload otherwise */
		struct s3_call ab = { .method = "DELETE", .key = k0.data, .query = q.data };
		sb_buf_reset(&q);
		if (sb_buf_puts(&q, "uploadId=") == 0 && s3_uri_encode(&q, id.data, false) == 0) {
			ab.query = q.data;
			s3_do(s, &ab, &status);
		}
	}
	if (rv != 0)
		sb_log_kv(SB_LOG_WARN,
		          "S3 segments not composed (the chain stays, reads are right)", "key", key,
		          "error", sb_strerror(rv), NULL);
	sb_buf_free(&k0);
	sb_buf_free(&q);
	sb_buf_free(&out);
	sb_buf_free(&id);
	sb_buf_free(&src);
	sb_buf_free(&done);
	sb_buf_free(&etag);
}

static int
s3_op_truncate(struct files_store *fs, const char *key, int64_t len)
{
	struct s3_store *s = (struct s3_store *)fs;
	struct s3_seg *segs;
	size_t n, on;
	int rv = s3_list(s, key, &segs, &n);
	if (rv != 0)
		return rv;
	int64_t end = s3_chain(segs, n, &on);
	bool keep_empty = false;
	/* Cut the segment that straddles len: write its head again, shorter. */
	for (size_t i = 0; i < on && rv == 0; i++) {
		struct s3_seg g = segs[i];
		if (g.off < len && g.off + g.size > len) {
			size_t head = (size_t)(len - g.off);
			char *b = malloc(head);
			if (b == NULL) {
				rv = SB_ENOMEM;
				break;
			}
			if ((rv = s3_get(s, key, g.off, 0, b, head)) == 0)
				rv = s3_put(s, key, g.off, b, head);
			free(b);
		}
		if (g.off == 0 && len == 0 && g.size == 0)
			keep_empty = true;
	}
	/* Remove what lies past len, and every segment off the chain. */
	for (size_t i = 0; i < n && rv == 0; i++) {
		bool chained = i < on;
		if (!chained || (segs[i].off >= len && !(keep_empty && segs[i].off == 0)))
			rv = s3_delete(s, key, segs[i].off);
	}
	/* Extend with zeros; an empty object is one empty segment at 0. */
	if (rv == 0 && (end < len || (len == 0 && !keep_empty))) {
		int64_t pos = end < len ? end : 0;
		size_t step = (size_t)(len - pos < S3_ZEROS_STEP ? len - pos : S3_ZEROS_STEP);
		char *z = calloc(1, step ? step : 1);
		if (z == NULL)
			rv = SB_ENOMEM;
		do {
			size_t k = (size_t)(len - pos) < step ? (size_t)(len - pos) : step;
			if (rv == 0)
				rv = s3_put(s, key, pos, z, k);
			pos += (int64_t)k;
		} while (rv == 0 && pos < len);
		free(z);
	}
	/* The chain is exactly [0, len) now: make it one object when S3 allows. */
	if (rv == 0 && end >= len && len > 0) {
		size_t m = 0;
		for (size_t i = 0; i < on; i++)
			if (segs[i].off < len) {
				segs[m] = segs[i];
				if (segs[m].off + segs[m].size > len)
					segs[m].size = len - segs[m].off;
				m++;
			}
		s3_compose(s, key, segs, m, len);
	}
	free(segs);
	return rv;
}

static int
s3_op_remove(struct files_store *fs, const char *key)
{
	struct s3_store *s = (struct s3_store *)fs;
	struct s3_seg *segs;
	size_t n;
	int rv = s3_list(s, key, &segs, &n);
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = s3_delete(s, key, segs[i].off);
	free(segs);
	return rv;
}

static void
s3_op_close(struct files_store *fs)
{
	struct s3_store *s = (struct s3_store *)fs;
	free(s->endpoint);
	free(s->bucket);
	free(s->region);
	free(s->access_key);
	free(s->ca_file);
	if (s->secret_key != NULL)
		explicit_bzero(s->secret_key, strlen(s->secret_key));
	free(s->secret_key);
	free(s);
}

static const struct files_store_ops s3_ops = {
	.name = "s3",
	.write = s3_op_write,
	.read = s3_op_read,
	.size = s3_op_size,
	.truncate = s3_op_truncate,
	.remove = s3_op_remove,
	.close = s3_op_close,
};

/* s3_bucket_ok tells whether b is a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and
 * ending with a letter or digit). */
static bool
s3_bucket_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
		return false;
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

int
s3_store_open(const struct s3_opts *o, struct files_store **out)
{
	struct sb_httpc_url u;
	if (o->endpoint == NULL || sb_httpc_url_parse(o->endpoint, &u) != 0 ||
	    strcmp(u.target, "/") != 0 || o->bucket == NULL || !s3_bucket_ok(o->bucket) ||
	    o->region == NULL || o->region[0] == '\0' || o->access_key == NULL ||
	    o->secret_key == NULL) {
		sb_log_kv(SB_LOG_ERROR,
		          "bad S3 settings (endpoint http[s]://host:port, bucket name)", "endpoint",
		          o->endpoint ? o->endpoint : "", "bucket", o->bucket ? o->bucket : "",
		          NULL);
		return SB_EINVAL;
	}
	struct s3_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SB_ENOMEM;
	s->base.ops = &s3_ops;
	s->endpoint = strdup(o->endpoint);
	s->bucket = strdup(o->bucket);
	s->region = strdup(o->region);
	s->access_key = strdup(o->access_key);
	s->secret_key = strdup(o->secret_key);
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	s->compose_max = o->compose_max;
	if (o->ca_file != NULL && o->ca_file[0] != '\0' &&
	    (s->ca_file = strdup(o->ca_file)) == NULL) {
		s3_op_close(&s->base);
		return SB_ENOMEM;
	}
	bool dflt = strcmp(u.port, u.tls ? "443" : "80") == 0;
	snprintf(s->host, sizeof(s->host), "%s%s%s%s%s", u.v6 ? "[" : "", u.host, u.v6 ? "]" : "",
	         dflt ? "" : ":", dflt ? "" : u.port);
	if (s->endpoint == NULL || s->bucket == NULL || s->region == NULL ||
	    s->access_key == NULL || s->secret_key == NULL) {
		s3_op_close(&s->base);
		return SB_ENOMEM;
	}
	s->m_requests = sb_metrics_counter("files_s3_requests_total",
	                                   "Attempts of S3 requests by the S3 storage backend, by "
	                                   "method and outcome (2xx, 3xx, 4xx, 5xx, error).",
	                                   "method,outcome");
	s->m_seconds = sb_metrics_histogram("files_s3_request_seconds",
	                                    "Time of S3 requests, retries included, by method.",
	                                    "method", NULL, 0);
	s->retries = sb_metric_with(sb_metrics_counter("files_s3_retries_total",
	                                               "S3 requests sent again after a failure "
	                                               "that may pass (no connection, 500, 503).",
	                                               NULL));
	size_t el = strlen(s->endpoint);
	if (el > 0 && s->endpoint[el - 1] == '/')
		s->endpoint[el - 1] = '\0';
	/* Reach the bucket: a one-key listing proves the endpoint, the credentials and the
	 * bucket; a missing bucket is created when asked. */
	int status;
	struct s3_call c = { .method = "GET", .query = "list-type=2&max-keys=1" };
	int rv = s3_do(s, &c, &status);
	if (rv == SB_ENOTFOUND && o->create_bucket) {
		struct s3_call mk = { .method = "PUT" };
		rv = s3_do(s, &mk, &status);
		if (rv == 0)
			sb_log_kv(SB_LOG_INFO, "S3 bucket created", "bucket", s->bucket, NULL);
	}
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot use the S3 bucket", "endpoint", s->endpoint,
		          "bucket", s->bucket, "error", sb_strerror(rv), NULL);
		s3_op_close(&s->base);
		return rv == SB_ENOTFOUND ? SB_EIO : rv;
	}
	*out = &s->base;
	return 0;
}
