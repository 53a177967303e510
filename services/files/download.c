/* download.c: GET /v1/files/{id}/content: the bytes of a completed upload, with a single
 * Range (206, 416), a strong ETag (an upload's bytes never change once complete) and a
 * Content-Disposition carrying the sanitized name. The body is read into memory and copied by
 * the HTTP server: one answer is at most SB_FILES_MAX_REQUEST_BYTES, larger files are fetched
 * in ranges (docs/files.md). */
#include "files.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"

/* files_range_parse reads a Range value for a representation of size bytes: one range
 * "bytes=a-b", "bytes=a-" or "bytes=-n". Returns 1 with [*from, *to] inclusive, 0 when the
 * header is to be ignored (not bytes, several ranges, malformed), -1 when unsatisfiable. */
static int
files_range_parse(const char *v, int64_t size, int64_t *from, int64_t *to)
{
	if (strncmp(v, "bytes=", 6) != 0 || strchr(v, ',') != NULL)
		return 0;
	const char *p = v + 6;
	const char *dash = strchr(p, '-');
	if (dash == NULL)
		return 0;
	char a[24] = "", b[24] = "";
	size_t al = (size_t)(dash - p), bl = strlen(dash + 1);
	if (al >= sizeof(a) || bl >= sizeof(b) || (al == 0 && bl == 0))
		return 0;
	memcpy(a, p, al);
	memcpy(b, dash + 1, bl + 1);
	int64_t x = -1, y = -1;
	if ((al > 0 && files_parse_size(a, &x) != 0) || (bl > 0 && files_parse_size(b, &y) != 0))
		return 0;
	if (al == 0) { /* suffix: the last y bytes */
		if (y == 0 || size == 0)
			return -1;
		*from = y >= size ? 0 : size - y;
		*to = size - 1;
		return 1;
	}
	if (bl > 0 && y < x)
		return 0;
	if (x >= size)
		return -1;
	*from = x;
	*to = bl == 0 || y >= size ? size - 1 : y;
	return 1;
}

/* files_disposition writes Content-Disposition for name: an ASCII fallback and RFC 8187's
 * UTF-8 form. name is already sanitized (no quotes, no ';', no '%', no controls). */
static void
files_disposition(const char *name, char *out, size_t cap)
{
	char ascii[FILES_NAME_MAX], enc[FILES_NAME_MAX * 3 + 1];
	size_t a = 0, e = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		ascii[a++] = *p < 0x80 && *p != '\\' ? (char)*p : '_';
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p) != NULL)
			enc[e++] = (char)*p;
		else
			e += (size_t)snprintf(enc + e, 4, "%%%02X", *p);
	}
	ascii[a] = '\0';
	enc[e] = '\0';
	snprintf(out, cap, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, enc);
}

void
files_download(struct files_call *c)
{
	struct files_upload u;
	int rv = files_db_get(c->pg, c->id, false, &u), may = 0;
	if (rv == 0 && (may = files_may_read(c, &u)) != 0) {
		files_upload_clear(&u); /* attachments: attach.c */
		rv = may;
	}
	if (rv == SB_ENOTFOUND) {
		files_reply_problem(&c->rp, 404, "no such file");
		return;
	}
	if (may != 0) {
		files_reply_add(&c->rp, "Retry-After", "1");
		files_reply_problem(&c->rp, 503,
		                    "who may read this file cannot be checked now; retry shortly");
		return;
	}
	if (rv != 0) {
		files_reply_add(&c->rp, "Retry-After", "1");
		files_reply_problem(&c->rp, 503,
		                    "the upload database is unavailable; retry shortly");
		return;
	}
	if (u.state != FILES_COMPLETED) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the upload is %s, not COMPLETED",
		         files_state_name(u.state));
		files_upload_clear(&u);
		files_reply_problem(&c->rp, 409, detail);
		return;
	}
	char etag[64], disp[FILES_NAME_MAX * 5], key[64];
	snprintf(etag, sizeof(etag), "\"%s-%" PRId64 "\"", u.id, u.length);
	files_disposition(u.filename, disp, sizeof(disp));
	files_reply_add(&c->rp, "ETag", etag);
	files_reply_add(&c->rp, "Accept-Ranges", "bytes");
	files_reply_add(&c->rp, "Cache-Control", "private, max-age=0");
	files_reply_add(&c->rp, "Content-Disposition", disp);
	const char *inm = sb_http_req_header(c->req, "If-None-Match");
	if (inm != NULL && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
		files_upload_clear(&u);
		files_reply_send(&c->rp, 304, NULL, NULL, 0);
		return;
	}
	int64_t from = 0, to = u.length - 1;
	int status = 200;
	const char *range = sb_http_req_header(c->req, "Range");
	const char *ifr = sb_http_req_header(c->req, "If-Range");
	if (range != NULL && (ifr == NULL || strcmp(ifr, etag) == 0)) {
		int r = files_range_parse(range, u.length, &from, &to);
		if (r < 0) {
			files_reply_addf(&c->rp, "Content-Range", "bytes */%" PRId64, u.length);
			files_upload_clear(&u);
			files_reply_problem(&c->rp, 416, "the range is outside the file");
			return;
		}
		if (r > 0) {
			status = 206;
			files_reply_addf(&c->rp, "Content-Range",
			                 "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to,
			                 u.length);
		} else {
			from = 0;
			to = u.length - 1;
		}
	}
	int64_t n = to - from + 1;
	if (n > c->f->cfg->max_request_bytes) {
		files_upload_clear(&u);
		files_reply_problem(
		    &c->rp, 413, "the file is larger than one answer may be; ask for it in Ranges");
		return;
	}
	char *buf = malloc(n > 0 ? (size_t)n : 1);
	size_t got = 0;
	files_key(u.id, key);
	if (buf == NULL ||
	    (n > 0 &&
	     (rv = c->f->store->ops->read(c->f->store, key, from, buf, (size_t)n, &got)) != 0) ||
	    (int64_t)got != (n > 0 ? n : 0)) {
		sb_log_kv(SB_LOG_ERROR, "cannot read a completed file", "upload_id", u.id, NULL);
		free(buf);
		files_upload_clear(&u);
		files_reply_problem(&c->rp, 500, "the file cannot be read");
		return;
	}
	char ctype[FILES_TYPE_MAX];
	snprintf(ctype, sizeof(ctype), "%s", u.content_type);
	files_upload_clear(&u);
	files_reply_send(&c->rp, status, ctype, buf, (size_t)(n > 0 ? n : 0));
	free(buf);
}
