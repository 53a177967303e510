/* sb_webhook_test.c: URL parsing, the private-address rules, the HTTP client, the signature,
 * the outcome classification and the backoff (sb_webhook*.c), against a local one-shot server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sb_webhook.h"
#include "sb_err.h"

/* The URL rule of an endpoint (sb_httpc_url_parse underneath, plus the scheme's reasons). */
static void
test_url_rule(void **state)
{
	(void)state;
	char err[160];
	const char *good[] = { "http://example.com",    "http://[::1]:8080/a?b=c",
		               "HTTP://h:1/?q",         "http://a-b.example:8080/x",
		               "http://127.0.0.1:9/",   "http://example.com./x",
		               "http://[2001:db8::1]/", "http://xn--bcher-kva.example/" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		if (sb_webhook_endpoint_check(good[i], true, err, sizeof(err)) != 0)
			fail_msg("refused %s: %s", good[i], err);
	const char *bad[] = { "",
		              "https://h/",
		              "ftp://h/",
		              "http://",
		              "http://:80/",
		              "http://h:0/",
		              "http://h:65536/",
		              "http://h:8x/",
		              "http://u@h/",
		              "http://h/#f",
		              "http://h/ x",
		              "http://h/\xff",
		              "http://h\xc3\xa9.example/",
		              "http://[::1/",
		              "http://[::1]x/",
		              "http://[Z|J]/x",
		              "http://ho%st/",
		              "http://-a.example/",
		              "http://a-.example/",
		              "http://a..example/",
		              "http://a_b.example/",
		              "http://.example/",
		              "http://x|y/" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		if (sb_webhook_endpoint_check(bad[i], true, err, sizeof(err)) != SB_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(sb_webhook_endpoint_check("https://h/", true, err, sizeof(err)),
	                 SB_EINVAL);
	assert_string_equal(err, "https is not supported yet; use http://");
}

static bool
priv(const char *s)
{
	struct sockaddr_storage ss = { 0 };
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
	}
	return sb_webhook_addr_private((struct sockaddr *)&ss);
}

static void
test_private_addresses(void **state)
{
	(void)state;
	const char *yes[] = { "127.0.0.1",
		              "10.0.0.1",
		              "172.16.0.1",
		              "172.31.255.255",
		              "192.168.1.1",
		              "169.254.169.254",
		              "100.64.0.1",
		              "0.0.0.0",
		              "224.0.0.1",
		              "255.255.255.255",
		              "::1",
		              "::",
		              "fe80::1",
		              "fc00::1",
		              "fd12::1",
		              "ff02::1",
		              "::ffff:127.0.0.1",
		              "::ffff:10.0.0.1",
		              "64:ff9b::7f00:1" };
	const char *no[] = { "8.8.8.8",     "172.32.0.1",      "100.128.0.1",
		             "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		if (!priv(yes[i]))
			fail_msg("%s should be private", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		if (priv(no[i]))
			fail_msg("%s should be public", no[i]);
}

/* A one-shot server: accepts one connection, reads the request, answers `reply` (or nothing). */
struct srv {
	int fd, port, accepted;
	const char *reply;
	char req[4096];
	pthread_t th;
};

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	s->accepted = 1;
	size_t got = 0;
	while (got < sizeof(s->req) - 1) {
		ssize_t r = recv(c, s->req + got, sizeof(s->req) - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		s->req[got] = '\0';
		if (strstr(s->req, "\r\n\r\nBODY") != NULL)
			break;
	}
	if (s->reply != NULL)
		(void)!send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL);
	else
		usleep(600 * 1000); /* let the client time out */
	close(c);
	return NULL;
}

static void
srv_start(struct srv *s, const char *reply)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_stop(struct srv *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->fd);
}

static void
test_post(void **state)
{
	(void)state;
	struct srv s;
	struct sb_webhook_result res;
	char url[64];
	srv_start(&s, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/p?q=1", s.port);
	assert_int_equal(sb_webhook_post(url, "X-A: b\r\n", "BODY", 4, 2000, true, &res), 0);
	assert_int_equal(res.status, 503);
	srv_stop(&s);
	assert_non_null(strstr(s.req, "POST /p?q=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(s.req, "\r\nHost: 127.0.0.1:"));
	assert_non_null(strstr(s.req, "\r\nContent-Length: 4\r\n"));
	assert_non_null(strstr(s.req, "\r\nX-A: b\r\n"));
	assert_non_null(strstr(s.req, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(s.req, "\r\n\r\nBODY"));

	srv_start(&s, NULL); /* never answers */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	assert_int_equal(sb_webhook_post(url, NULL, "BODY", 4, 300, true, &res), SB_ETIMEDOUT);
	assert_int_equal(res.status, 0);
	srv_stop(&s);

	srv_start(&s, "garbage\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	assert_int_equal(sb_webhook_post(url, NULL, "BODY", 4, 2000, true, &res), SB_EPROTO);
	srv_stop(&s);
}

/* A name resolving to loopback is refused before any connection is made. */
static void
test_refused_after_resolution(void **state)
{
	(void)state;
	struct srv s;
	struct sb_webhook_result res;
	char url[64];
	srv_start(&s, "HTTP/1.1 200 OK\r\n\r\n");
	snprintf(url, sizeof(url), "http://localhost:%d/", s.port);
	assert_int_equal(sb_webhook_post(url, NULL, "BODY", 4, 500, false, &res), SB_EINVAL);
	assert_true(res.refused);
	assert_non_null(strstr(res.error, "refused"));
	srv_stop(&s);
	assert_int_equal(s.accepted, 0);
}

static void
test_connection_refused(void **state)
{
	(void)state;
	struct sb_webhook_result res;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	char url[64];
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	close(fd); /* nothing listens there now */
	assert_int_equal(sb_webhook_post(url, NULL, "", 0, 1000, true, &res), SB_EUNAVAIL);
	assert_false(res.refused);
}

/* The signed text is "<ts>.<body>"; the expected value was computed independently with
 * `printf 1.x | openssl dgst -sha256 -hmac k`. */
static void
test_sign_vector(void **state)
{
	(void)state;
	char out[80];
	assert_int_equal(sb_webhook_sign("k", 1, "x", 1, out, sizeof(out)), 0);
	assert_string_equal(out,
	                    "v1=976cb87e4f568d1c0f03f32859e90af8597cf00b978ba37c229c97d3a15b8449");
	assert_int_equal(sb_webhook_sign("k", 1, "x", 1, out, 10), SB_ERANGE);
}

static void
test_classify(void **state)
{
	(void)state;
	struct sb_webhook_result r = { 0 };
	static const struct {
		int status;
		enum sb_webhook_outcome o;
	} rows[] = { { 200, SB_WEBHOOK_DELIVERED }, { 204, SB_WEBHOOK_DELIVERED },
		     { 299, SB_WEBHOOK_DELIVERED }, { 301, SB_WEBHOOK_PERMANENT },
		     { 400, SB_WEBHOOK_PERMANENT }, { 404, SB_WEBHOOK_PERMANENT },
		     { 408, SB_WEBHOOK_RETRY },     { 429, SB_WEBHOOK_RETRY },
		     { 500, SB_WEBHOOK_RETRY },     { 503, SB_WEBHOOK_RETRY } };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r.status = rows[i].status;
		if (sb_webhook_classify(0, &r) != rows[i].o)
			fail_msg("HTTP %d misclassified", rows[i].status);
	}
	r.status = 0;
	assert_int_equal(sb_webhook_classify(SB_ETIMEDOUT, &r), SB_WEBHOOK_RETRY);
	assert_int_equal(sb_webhook_classify(SB_EUNAVAIL, &r), SB_WEBHOOK_RETRY);
	assert_int_equal(sb_webhook_classify(SB_EPROTO, &r), SB_WEBHOOK_RETRY);
	assert_int_equal(sb_webhook_classify(SB_EINVAL, &r), SB_WEBHOOK_PERMANENT);
	r.refused = true;
	assert_int_equal(sb_webhook_classify(SB_EINVAL, &r), SB_WEBHOOK_PERMANENT);
}

static void
test_backoff(void **state)
{
	(void)state;
	const int64_t want[] = { 2000, 4000, 8000, 16000, 32000, 32000 };
	for (int a = 1; a <= 6; a++)
		assert_int_equal(sb_webhook_backoff_ms(2000, 32000, a), want[a - 1]);
	assert_int_equal(sb_webhook_backoff_ms(2000, 32000, 0), 2000);
	assert_int_equal(sb_webhook_backoff_ms(1000, 300000, 1000000), 300000);
}

static void
test_endpoint_check(void **state)
{
	(void)state;
	char err[160];
	const char *bad[] = { "http://127.0.0.1/x",       "http://localhost:9/",
		              "http://a.localhost/",      "http://10.1.2.3/",
		              "http://[::1]:80/",         "http://169.254.169.254/",
		              "ftp://example.com/",       "https://example.com/",
		              "http://user@example.com/", "http://example.com/#f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		if (sb_webhook_endpoint_check(bad[i], false, err, sizeof(err)) != SB_EINVAL)
			fail_msg("%s should be refused", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(
	    sb_webhook_endpoint_check("http://example.com/hook", false, err, sizeof(err)), 0);
	assert_int_equal(sb_webhook_endpoint_check("http://8.8.8.8:8080/", false, err, sizeof(err)),
	                 0);
	/* Loopback only when the caller allows private addresses (tests). */
	assert_int_equal(sb_webhook_endpoint_check("http://127.0.0.1/x", true, err, sizeof(err)),
	                 0);
}

/* One attempt signs what it sends: the server sees a timestamp and the signature of
 * "<timestamp>.<body>" with the secret, plus the caller's headers. */
static void
test_attempt_signed(void **state)
{
	(void)state;
	struct srv s;
	char url[64], err[128], sig[80], want[160];
	srv_start(&s, "HTTP/1.1 204 No Content\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", s.port);
	struct sb_webhook_req r = { .url = url,
		                    .secret = "s3cret",
		                    .body = "BODY",
		                    .blen = 4,
		                    .headers = "X-Id: 7\r\n",
		                    .timeout_ms = 2000,
		                    .allow_private = true };
	assert_int_equal(sb_webhook_attempt(&r, err, sizeof(err)), SB_WEBHOOK_DELIVERED);
	srv_stop(&s);
	const char *t = strstr(s.req, "\r\n" SB_HDR_WEBHOOK_TIMESTAMP ": ");
	assert_non_null(t);
	long long ts = atoll(t + strlen("\r\n" SB_HDR_WEBHOOK_TIMESTAMP ": "));
	assert_true(ts > 1700000000LL);
	assert_int_equal(sb_webhook_sign("s3cret", ts, "BODY", 4, sig, sizeof(sig)), 0);
	snprintf(want, sizeof(want), "\r\n" SB_HDR_WEBHOOK_SIGNATURE ": %s\r\n", sig);
	assert_non_null(strstr(s.req, want));
	assert_non_null(strstr(s.req, "\r\nX-Id: 7\r\n"));

	srv_start(&s, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", s.port);
	assert_int_equal(sb_webhook_attempt(&r, err, sizeof(err)), SB_WEBHOOK_RETRY);
	assert_string_equal(err, "HTTP 500");
	srv_stop(&s);

	srv_start(&s, "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", s.port);
	assert_int_equal(sb_webhook_attempt(&r, err, sizeof(err)), SB_WEBHOOK_PERMANENT);
	assert_string_equal(err, "HTTP 410");
	srv_stop(&s);

	/* Loopback refused when private addresses are not allowed: permanent, nothing sent. */
	srv_start(&s, "HTTP/1.1 200 OK\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", s.port);
	r.allow_private = false;
	assert_int_equal(sb_webhook_attempt(&r, err, sizeof(err)), SB_WEBHOOK_PERMANENT);
	srv_stop(&s);
	assert_int_equal(s.accepted, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_rule),
		cmocka_unit_test(test_private_addresses),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_refused_after_resolution),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_sign_vector),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_endpoint_check),
		cmocka_unit_test(test_attempt_signed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
