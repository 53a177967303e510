/* Tests of sb_httpc against a scripted server on 127.0.0.1 (a thread that records each
 * request and answers with the bytes a test gives, cut into pieces), and of its parsers on
 * their own: framing by Content-Length, chunked and close, 1xx, HEAD, deadlines, caps, the
 * address hook, bodies from a callback, malformed responses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_http.h"
#include "sb_httpc.h"
#include "sb_util_time.h"

/* --- the scripted server ------------------------------------------------------------- */

struct srv {
	int lfd;
	int port;
	pthread_t th;
	const char *answer; /* the response bytes */
	size_t answer_len;  /* 0: strlen(answer) */
	size_t piece;       /* send in pieces of this many bytes (0: all at once) */
	int piece_us;       /* pause between pieces */
	bool hang;          /* read the request, then answer nothing until the client leaves */
	bool no_read;       /* answer without reading the request body, then close */
	struct sb_buf got;  /* the last request, head and body */
	atomic_int accepted;
};

/* srv_read_request reads a request head and its Content-Length body into s->got. */
static void
srv_read_request(struct srv *s, int fd)
{
	char buf[65536];
	size_t need = 0;
	sb_buf_reset(&s->got);
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			return;
		sb_buf_append(&s->got, buf, (size_t)r);
		char *e = strstr(s->got.data, "\r\n\r\n");
		if (e == NULL)
			continue;
		if (need == 0) {
			char *cl = strcasestr(s->got.data, "\r\ncontent-length:");
			size_t blen = cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0;
			need = (size_t)(e + 4 - s->got.data) + blen;
		}
		if (s->got.len >= need)
			return;
	}
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		atomic_fetch_add(&s->accepted, 1);
		if (!s->no_read)
			srv_read_request(s, fd);
		if (s->hang) {
			char c;
			while (recv(fd, &c, 1, 0) > 0)
				;
			close(fd);
			continue;
		}
		size_t len = s->answer_len ? s->answer_len : strlen(s->answer), off = 0;
		while (off < len) {
			size_t k = s->piece && s->piece < len - off ? s->piece : len - off;
			if (send(fd, s->answer + off, k, MSG_NOSIGNAL) < 0)
				break;
			off += k;
			if (s->piece_us)
				usleep((useconds_t)s->piece_us);
		}
		shutdown(fd, SHUT_WR);
		char c;
		while (recv(fd, &c, 1, 0) > 0)
			;
		close(fd);
	}
}

static struct srv *
srv_start(const char *answer)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_non_null(s);
	s->answer = answer;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	return s;
}

static void
srv_go(struct srv *s)
{
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->th, NULL);
	sb_buf_free(&s->got);
	free(s);
}

static char url_buf[128];
static const char *
url_of(struct srv *s, const char *path)
{
	snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", s->port, path);
	return url_buf;
}

/* --- through a server ------------------------------------------------------------------ */

static void
test_get_content_length(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n"
	                          "X-Two:  padded value \t\r\n\r\nhelloEXTRA");
	srv_go(s);
	struct sb_httpc_req q = { .url = url_of(s, "/a/b?x=1"), .headers = "X-Test: yes\r\n" };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 5);
	assert_memory_equal(r.body.data, "hello", 5);
	size_t vl;
	const char *v = sb_httpc_header(r.head.data, r.head.len, "etag", &vl);
	assert_non_null(v);
	assert_int_equal(vl, 5);
	assert_memory_equal(v, "\"abc\"", 5);
	v = sb_httpc_header(r.head.data, r.head.len, "X-TWO", &vl);
	assert_non_null(v);
	assert_int_equal(vl, 12);
	assert_memory_equal(v, "padded value", 12);
	assert_null(sb_httpc_header(r.head.data, r.head.len, "X-Tw", &vl));
	/* what the server saw */
	assert_non_null(strstr(s->got.data, "GET /a/b?x=1 HTTP/1.1\r\n"));
	char host[64];
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s->port);
	assert_non_null(strstr(s->got.data, host));
	assert_non_null(strstr(s->got.data, "\r\nX-Test: yes\r\n"));
	assert_non_null(strstr(s->got.data, "\r\nConnection: close\r\n"));
	assert_null(strcasestr(s->got.data, "content-length"));
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_put_body_memory(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	srv_go(s);
	size_t n = 200000; /* larger than one send */
	char *body = malloc(n);
	for (size_t i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	struct sb_httpc_req q = {
		.method = "PUT", .url = url_of(s, "/obj"), .body = body, .body_len = n
	};
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.body.len, 0);
	char *e = strstr(s->got.data, "\r\n\r\n");
	assert_non_null(e);
	assert_non_null(strstr(s->got.data, "PUT /obj HTTP/1.1\r\n"));
	assert_non_null(strstr(s->got.data, "\r\nContent-Length: 200000\r\n"));
	assert_int_equal(s->got.len - (size_t)(e + 4 - s->got.data), n);
	assert_memory_equal(e + 4, body, n);
	sb_httpc_resp_free(&r);
	free(body);
	srv_stop(s);
}

struct src {
	size_t pos, len;
};
static int
src_read(void *arg, void *buf, size_t cap, size_t *got)
{
	struct src *s = arg;
	size_t k = cap < 777 ? cap : 777; /* odd pieces */
	if (k > s->len - s->pos)
		k = s->len - s->pos;
	for (size_t i = 0; i < k; i++)
		((char *)buf)[i] = (char)((s->pos + i) * 7 % 251);
	s->pos += k;
	*got = k;
	return 0;
}

struct sink {
	struct sb_buf b;
	int calls;
};
static int
sink_write(void *arg, const void *d, size_t n)
{
	struct sink *k = arg;
	k->calls++;
	return sb_buf_append(&k->b, d, n);
}

static void
test_body_callbacks(void **state)
{
	(void)state;
	/* a chunked answer in 3-byte pieces, to a write callback */
	struct srv *s = srv_start("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	                          "0\r\nX-Trailer: t\r\n\r\n");
	s->piece = 3;
	srv_go(s);
	struct src src = { .len = 100000 };
	struct sink k = { SB_BUF_INIT, 0 };
	struct sb_httpc_req q = { .method = "POST",
		                  .url = url_of(s, "/up"),
		                  .body_len = src.len,
		                  .body_read = src_read,
		                  .body_arg = &src,
		                  .body_write = sink_write,
		                  .write_arg = &k };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(k.b.len, 31);
	assert_memory_equal(k.b.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
	assert_true(k.calls > 1);
	assert_int_equal(r.body.len, 0);
	assert_int_equal(r.body_bytes, 31);
	char *e = strstr(s->got.data, "\r\n\r\n");
	assert_non_null(e);
	size_t bl = s->got.len - (size_t)(e + 4 - s->got.data);
	assert_int_equal(bl, 100000);
	for (size_t i = 0; i < bl; i++)
		assert_int_equal((unsigned char)e[4 + i], i * 7 % 251);
	sb_httpc_resp_free(&r);
	sb_buf_free(&k.b);
	srv_stop(s);
}

static void
test_until_close_and_interim(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n"
	                          "Content-Type: text/plain\r\n\r\nall of it until close");
	s->piece = 7;
	srv_go(s);
	struct sb_httpc_req q = { .url = url_of(s, "/") };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "all of it until close");
	assert_true(strncmp(r.head.data, "HTTP/1.0 200", 12) == 0);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_head_has_no_body(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n");
	s->hang = false;
	srv_go(s);
	struct sb_httpc_req q = { .method = "HEAD", .url = url_of(s, "/"), .timeout_ms = 5000 };
	struct sb_httpc_resp r;
	int64_t t0 = sb_time_mono_ms();
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_bytes, 0);
	assert_true(sb_time_mono_ms() - t0 < 2000);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_deadline(void **state)
{
	(void)state;
	struct srv *s = srv_start("");
	s->hang = true;
	srv_go(s);
	struct sb_httpc_req q = { .url = url_of(s, "/"), .timeout_ms = 300 };
	struct sb_httpc_resp r;
	int64_t t0 = sb_time_mono_ms();
	assert_int_equal(sb_httpc_do(&q, &r), SB_ETIMEDOUT);
	int64_t took = sb_time_mono_ms() - t0;
	assert_true(took >= 290 && took < 3000);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.error, "timed out"));
	sb_httpc_resp_free(&r);
	srv_stop(s);
	/* a slow trickle is bounded by the same total deadline */
	s = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789012345678901234");
	s->piece = 1;
	s->piece_us = 50000;
	srv_go(s);
	q.url = url_of(s, "/");
	q.timeout_ms = 500;
	t0 = sb_time_mono_ms();
	assert_int_equal(sb_httpc_do(&q, &r), SB_ETIMEDOUT);
	took = sb_time_mono_ms() - t0;
	assert_true(took >= 490 && took < 3000);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_body_cap(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world");
	srv_go(s);
	struct sb_httpc_req q = { .url = url_of(s, "/"), .max_body = 10 };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), SB_ERANGE);
	assert_int_equal(r.status, 200);
	sb_httpc_resp_free(&r);
	q.max_body = 11;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_string_equal(r.body.data, "hello world");
	sb_httpc_resp_free(&r);
	/* the status only: the body is read and dropped, whatever the cap */
	q.max_body = 1;
	q.body_write = sb_httpc_discard;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_bytes, 11);
	assert_int_equal(r.body.len, 0);
	sb_httpc_resp_free(&r);
	q.body_write = NULL;
	srv_stop(s);
	/* chunked, where the size is not known in advance */
	s = srv_start("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n"
	              "5\r\nworld\r\n0\r\n\r\n");
	srv_go(s);
	q.url = url_of(s, "/");
	q.max_body = 10;
	assert_int_equal(sb_httpc_do(&q, &r), SB_ERANGE);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static bool
refuse_loopback(const struct sockaddr *sa, void *arg)
{
	atomic_int *seen = arg;
	atomic_fetch_add(seen, 1);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) != 127;
	}
	return true;
}
static bool
allow_all(const struct sockaddr *sa, void *arg)
{
	(void)sa;
	atomic_fetch_add((atomic_int *)arg, 1);
	return true;
}

static void
test_addr_hook(void **state)
{
	(void)state;
	struct srv *s = srv_start("HTTP/1.1 204 No Content\r\n\r\n");
	srv_go(s);
	atomic_int seen = 0;
	struct sb_httpc_req q = { .url = url_of(s, "/"),
		                  .addr_ok = refuse_loopback,
		                  .addr_arg = &seen };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), SB_EINVAL);
	assert_true(r.refused);
	assert_int_equal(atomic_load(&seen), 1);
	assert_int_equal(atomic_load(&s->accepted), 0); /* never connected */
	sb_httpc_resp_free(&r);
	q.addr_ok = allow_all;
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_false(r.refused);
	assert_int_equal(r.status, 204);
	assert_int_equal(atomic_load(&s->accepted), 1);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_bad_responses(void **state)
{
	(void)state;
	static const char *bad[] = {
		"SSH-2.0-OpenSSH_9\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: "
		"chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct srv *s = srv_start(bad[i]);
		srv_go(s);
		struct sb_httpc_req q = { .url = url_of(s, "/"), .timeout_ms = 3000 };
		struct sb_httpc_resp r;
		int rv = sb_httpc_do(&q, &r);
		if (rv != SB_EPROTO)
			fail_msg("case %zu: %d (%s)", i, rv, r.error);
		sb_httpc_resp_free(&r);
		srv_stop(s);
	}
	/* a body cut short is an error, not a short success */
	struct srv *s = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this");
	srv_go(s);
	struct sb_httpc_req q = { .url = url_of(s, "/"), .timeout_ms = 3000 };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), SB_EUNAVAIL);
	assert_int_equal(r.status, 200);
	sb_httpc_resp_free(&r);
	srv_stop(s);
}

static void
test_bad_requests(void **state)
{
	(void)state;
	struct sb_httpc_resp r;
	static const char *urls[] = { "ftp://example.com/", "http://",      "http://a b/",
		                      "http://u@h/",        "http://h:0/",  "http://h:99999/",
		                      "http://h/#frag",     "http://[::1/", "http://h_x/",
		                      "http://h?q" };
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct sb_httpc_req q = { .url = urls[i] };
		if (sb_httpc_do(&q, &r) != SB_EINVAL)
			fail_msg("url %s accepted", urls[i]);
		sb_httpc_resp_free(&r);
	}
	struct sb_httpc_req q = { .url = "http://127.0.0.1:1/", .headers = "X: a\nY: b\r\n" };
	assert_int_equal(sb_httpc_do(&q, &r), SB_EINVAL);
	sb_httpc_resp_free(&r);
	q.headers = "X: a\r\n\r\nGET / HTTP/1.1\r\n";
	assert_int_equal(sb_httpc_do(&q, &r), SB_EINVAL);
	sb_httpc_resp_free(&r);
	q.headers = NULL;
	q.method = "GET /x";
	assert_int_equal(sb_httpc_do(&q, &r), SB_EINVAL);
	sb_httpc_resp_free(&r);

	struct sb_httpc_url u;
	assert_int_equal(sb_httpc_url_parse("http://[::1]:9000/b/k?x=1", &u), 0);
	assert_true(u.v6);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.port, "9000");
	assert_string_equal(u.target, "/b/k?x=1");
	assert_int_equal(sb_httpc_url_parse("https://h.example/x", &u), 0);
	assert_true(u.tls);
	assert_string_equal(u.port, "443");
	assert_int_equal(sb_httpc_url_parse("HTTP://Example.com.", &u), 0);
	assert_false(u.tls);
	assert_string_equal(u.port, "80");
	assert_string_equal(u.target, "/");
}

static void
test_connect_refused(void **state)
{
	(void)state;
	struct srv *s = srv_start("");
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	close(s->lfd); /* nobody listens there now */
	s->lfd = -1;
	struct sb_httpc_req q = { .url = url };
	struct sb_httpc_resp r;
	assert_int_equal(sb_httpc_do(&q, &r), SB_EUNAVAIL);
	assert_false(r.refused);
	sb_httpc_resp_free(&r);
	free(s);
}

/* --- the parsers on their own -------------------------------------------------------- */

static void
test_parse_head(void **state)
{
	(void)state;
	struct sb_httpc_head h;
	const char *ok = "HTTP/1.1 206 Partial Content\r\nContent-Length: 10, 10\r\n"
	                 "Connection: keep-alive, Close\r\n\r\nBODY";
	size_t n = strlen(ok);
	for (size_t i = 0; i < n - 4; i++)
		assert_int_equal(sb_httpc_parse_head(ok, i, &h), 0); /* needs more */
	assert_int_equal(sb_httpc_parse_head(ok, n, &h), 1);
	assert_int_equal(h.status, 206);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.content_length, 10);
	assert_true(h.close);
	assert_false(h.chunked);
	assert_int_equal(h.len, n - 4);
	assert_int_equal(sb_httpc_parse_head("HTTP/1.0 200\r\n\r\n", 16, &h), 1);
	assert_true(h.close);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(sb_httpc_parse_head("HTTP/2 200\r\n\r\n", 14, &h), SB_EPROTO);
	assert_int_equal(sb_httpc_parse_head("HTTP/1.1 200 OK\r\nA:\x01\r\n\r\n", 25, &h),
	                 SB_EPROTO);
	assert_int_equal(sb_httpc_parse_head("HTTP/1.1 200 OK\r\n folded\r\n\r\n", 29, &h),
	                 SB_EPROTO);
	assert_int_equal(sb_httpc_parse_head("HTTX", 4, &h), SB_EPROTO);
	char *big = malloc(SB_HTTPC_HEAD_MAX + 10);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(big + 20, 'a', SB_HTTPC_HEAD_MAX - 10);
	assert_int_equal(sb_httpc_parse_head(big, SB_HTTPC_HEAD_MAX + 10, &h), SB_EPROTO);
	free(big);
}

static void
test_chunked_feed(void **state)
{
	(void)state;
	const char *in = "3\r\nabc\r\n10 ; x=\"y\"\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\nNEXT";
	size_t n = strlen(in), used;
	struct sink k = { SB_BUF_INIT, 0 };
	/* byte by byte */
	struct sb_httpc_chunked c = { 0 };
	int rv = 0;
	size_t i = 0;
	for (; i < n && rv == 0; i++) {
		rv = sb_httpc_chunked_feed(&c, in + i, 1, &used, sink_write, &k);
		assert_int_equal(used, 1);
	}
	assert_int_equal(rv, 1);
	assert_int_equal(i, n - 4);
	assert_int_equal(k.b.len, 19);
	assert_memory_equal(k.b.data, "abc0123456789abcdef", 19);
	/* all at once: the bytes after the body are left */
	sb_buf_reset(&k.b);
	memset(&c, 0, sizeof(c));
	assert_int_equal(sb_httpc_chunked_feed(&c, in, n, &used, sink_write, &k), 1);
	assert_int_equal(used, n - 4);
	assert_int_equal(k.b.len, 19);
	/* malformed */
	static const char *bad[] = {
		"\r\n", "x\r\n", "3\r\nabcd\r\n", "3\nabc\r\n", "1000000000000000\r\n", "0\r\nT\n"
	};
	for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(
		    sb_httpc_chunked_feed(&c, bad[j], strlen(bad[j]), &used, NULL, NULL),
		    SB_EPROTO);
	}
	sb_buf_free(&k.b);
}

/* --- https against the project's own TLS server (sb_http) -------------------------------- */

/* tls_cert writes a self-signed EC certificate with the subjectAltName san and its key to
 * <base>.crt and <base>.key. */
static void
tls_cert(const char *base, const char *san)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"httpc test", -1,
	                           -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, pk);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	char p[300];
	snprintf(p, sizeof(p), "%s.key", base);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	snprintf(p, sizeof(p), "%s.crt", base);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
tls_handler(struct sb_http_req *r, void *arg)
{
	(void)arg;
	char body[256];
	int n = snprintf(body, sizeof(body), "%s %s len=%zu", r->method, r->path, r->body_len);
	sb_http_respond(r, 200, "text/plain", NULL, 0, body, (size_t)n);
}

static struct sb_http_server *
tls_server(const char *base)
{
	char crt[300], key[300];
	snprintf(crt, sizeof(crt), "%s.crt", base);
	snprintf(key, sizeof(key), "%s.key", base);
	struct sb_http_config cfg = { .addr = "127.0.0.1",
		                      .max_body_bytes = 1 << 20,
		                      .tls_cert_file = crt,
		                      .tls_key_file = key,
		                      .tls_reload_ms = -1 };
	struct sb_http_server *s = NULL;
	assert_int_equal(sb_http_server_start(&cfg, tls_handler, NULL, &s), 0);
	return s;
}

static void
test_https(void **state)
{
	(void)state;
	char dir[] = "/tmp/sb-httpc-XXXXXX", good[300], other[300], crt[320], url[128];
	assert_non_null(mkdtemp(dir));
	snprintf(good, sizeof(good), "%s/good", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	tls_cert(good, "IP:127.0.0.1,DNS:localhost");
	tls_cert(other, "DNS:elsewhere.example");
	snprintf(crt, sizeof(crt), "%s.crt", good);
	struct sb_http_server *s = tls_server(good);
	int port = sb_http_server_port(s);
	struct sb_httpc_resp r;

	/* trusted, by IP address and by name (SNI), with a body both ways */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/a?b=1", port);
	struct sb_httpc_req q = {
		.method = "POST", .url = url, .ca_file = crt, .body = "12345", .body_len = 5
	};
	assert_int_equal(sb_httpc_do(&q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "POST /a len=5");
	sb_httpc_resp_free(&r);
	snprintf(url, sizeof(url), "https://localhost:%d/n", port);
	q.method = "GET";
	q.body_len = 0;
	/* (localhost may resolve to ::1 first, where nothing listens: the client goes on to
	 * 127.0.0.1) */
	int rv = sb_httpc_do(&q, &r);
	if (rv != 0)
		fail_msg("https by name: %d %s", rv, r.error);
	assert_string_equal(r.body.data, "GET /n len=0");
	sb_httpc_resp_free(&r);

	/* not trusted: the system's CAs do not know this certificate */
	q.ca_file = NULL;
	assert_int_equal(sb_httpc_do(&q, &r), SB_EPROTO);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.error, "certificate"));
	sb_httpc_resp_free(&r);
	sb_http_server_stop(s, 1000);

	/* trusted but for another name */
	s = tls_server(other);
	port = sb_http_server_port(s);
	snprintf(crt, sizeof(crt), "%s.crt", other);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	q.ca_file = crt;
	assert_int_equal(sb_httpc_do(&q, &r), SB_EPROTO);
	assert_non_null(strstr(r.error, "certificate"));
	sb_httpc_resp_free(&r);
	sb_http_server_stop(s, 1000);

	/* https to a server that speaks plain HTTP: no handshake, an error, not a hang */
	struct srv *p = srv_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	p->no_read = true;
	srv_go(p);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", p->port);
	q.timeout_ms = 3000;
	rv = sb_httpc_do(&q, &r);
	assert_true(rv == SB_EPROTO || rv == SB_EUNAVAIL);
	sb_httpc_resp_free(&r);
	srv_stop(p);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as every service does: OpenSSL writes without MSG_NOSIGNAL */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_content_length),
		cmocka_unit_test(test_put_body_memory),
		cmocka_unit_test(test_body_callbacks),
		cmocka_unit_test(test_until_close_and_interim),
		cmocka_unit_test(test_head_has_no_body),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_addr_hook),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_parse_head),
		cmocka_unit_test(test_chunked_feed),
		cmocka_unit_test(test_https),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
