/* Tests of sb_http with real sockets on 127.0.0.1: requests, keep-alive, pipelining, async
 * answers, limits (413, 431, 400, 411, 408, 503), slowloris, disconnects, stop, and the parser
 * against random input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_http.h"
#include "sb_http_testcli.h"

/* Server side. */

static atomic_int handler_calls;
static struct sb_http_req *held; /* /hold: answered by the test */
static sem_t held_sem;
static atomic_int bad_header_rc;

static void *
async_answer(void *arg)
{
	struct sb_http_req *r = arg;
	usleep(strcmp(r->path, "/slow") == 0 ? 300000 : 50000);
	sb_http_respond(r, 202, "text/plain", NULL, 0, "async", 5);
	return NULL;
}

static void
handler(struct sb_http_req *r, void *arg)
{
	(void)arg;
	atomic_fetch_add(&handler_calls, 1);
	if (strcmp(r->path, "/async") == 0 || strcmp(r->path, "/slow") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, async_answer, r) != 0) {
			sb_http_respond_problem(r, 500, NULL, "no thread");
			return;
		}
		pthread_detach(t);
		if (strcmp(r->path, "/slow") == 0)
			sem_post(&held_sem);
		return;
	}
	if (strcmp(r->path, "/hold") == 0) {
		held = r;
		sem_post(&held_sem);
		return;
	}
	if (strcmp(r->path, "/bad-header") == 0) {
		struct sb_http_header evil = { "X-Evil", "a\r\nInjected: 1" };
		atomic_store(&bad_header_rc,
		             sb_http_respond(r, 200, "text/plain", &evil, 1, "x", 1));
		return;
	}
	if (strcmp(r->path, "/missing") == 0) {
		sb_http_respond_problem(r, 404, NULL, "no \"such\" thing");
		return;
	}
	char body[4096];
	const char *x = sb_http_req_header(r, "x-test");
	int n = snprintf(body, sizeof(body), "%s %s ?%s x=%s remote=%.3s body=%.*s", r->method,
	                 r->path, r->query, x ? x : "-", r->remote, (int)r->body_len, r->body);
	struct sb_http_header extra[] = { { "X-Path", r->path } };
	sb_http_respond(r, 200, "text/plain", extra, 1, body, (size_t)n);
}

static struct sb_http_server *
start(struct sb_http_config *cfg)
{
	struct sb_http_server *s = NULL;
	cfg->addr = "127.0.0.1";
	cfg->server_name = "sbtest";
	assert_int_equal(sb_http_server_start(cfg, handler, NULL, &s), 0);
	assert_true(sb_http_server_port(s) > 0);
	return s;
}

static struct sb_http_server *
start_default(void)
{
	struct sb_http_config cfg = { .max_header_bytes = 1024, .max_body_bytes = 4096 };
	return start(&cfg);
}

/* Client side: sb_http_testcli.h. */

static bool
has_header(const struct sb_testresp *r, const char *line)
{
	return strcasestr(r->head, line) != NULL;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* assert_problem_rid checks that r is a problem document whose request_id is the response's
 * X-Request-Id and is want, or a new UUID when want is NULL. */
static void
assert_problem_rid(const struct sb_testresp *r, const char *want)
{
	char hdr[64] = "", body[64] = "";
	const char *h = strcasestr(r->head, "\r\nX-Request-Id: ");
	const char *b = strstr(r->body, "\"request_id\":\"");
	if (h == NULL || b == NULL)
		fail_msg("no request id in: %s%s", r->head, r->body);
	assert_true(has_header(r, "\r\nContent-Type: application/problem+json\r\n"));
	assert_int_equal(sscanf(h + 16, "%63[^\r]", hdr), 1);
	assert_int_equal(sscanf(b + 14, "%63[^\"]", body), 1);
	assert_string_equal(hdr, body);
	if (want != NULL)
		assert_string_equal(body, want);
	else
		assert_int_equal(strlen(body), 36); /* a UUID */
}

/* Tests. */

static void
test_get_and_post(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	SB_TESTCLI_SEND(c, "GET /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Test: hello\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "GET /echo ?a=1&b=2 x=hello remote=127 body=");
	assert_true(has_header(&r, "\r\nContent-Type: text/plain\r\n"));
	assert_true(has_header(&r, "\r\nX-Content-Type-Options: nosniff\r\n"));
	assert_false(has_header(&r, "Strict-Transport-Security")); /* plain HTTP: no HSTS */
	assert_true(has_header(&r, "\r\nServer: sbtest\r\n"));
	assert_true(has_header(&r, "\r\nX-Path: /echo\r\n"));
	assert_true(has_header(&r, " GMT\r\n"));
	assert_true(strncmp(r.head, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0);
	assert_false(has_header(&r, "Connection: close"));

	SB_TESTCLI_SEND(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello");
	usleep(20000); /* the body arrives in two pieces */
	SB_TESTCLI_SEND(c, " world");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "POST /echo ? x=- remote=127 body=hello world");

	SB_TESTCLI_SEND(c, "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, true), 0);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "\r\nContent-Length: 33\r\n"));

	SB_TESTCLI_SEND(c, "GET /missing HTTP/1.1\r\nHost: x\r\nX-Request-Id: t-404\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 404);
	assert_true(has_header(&r, "\r\nContent-Type: application/problem+json\r\n"));
	assert_true(has_header(&r, "\r\nX-Request-Id: t-404\r\n"));
	assert_string_equal(r.body,
	                    "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
	                    "\"detail\":\"no \\\"such\\\" thing\",\"request_id\":\"t-404\"}");
	/* without an X-Request-Id, a new id, the same in the body and the header */
	SB_TESTCLI_SEND(c, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 404);
	assert_problem_rid(&r, NULL);

	/* HTTP/1.0 closes unless asked to keep alive; Connection: close is honoured. */
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.0\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

/* cpu_s returns the CPU time (user + system) of this process, the server's threads included. */
static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
test_keepalive_and_pipelining(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	for (int i = 0; i < 2; i++) {
		SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
		assert_int_equal(sb_testcli_read(c, &r, false), 0);
		assert_int_equal(r.status, 200);
	}
	/* Three requests in one write, the middle one answered asynchronously: answered in order.
	 */
	SB_TESTCLI_SEND(c, "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	                   "GET /async HTTP/1.1\r\nHost: x\r\n\r\n"
	                   "POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_string_equal(r.body, "GET /echo ?n=1 x=- remote=127 body=");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "async");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_string_equal(r.body, "POST /echo ?n=3 x=- remote=127 body=abc");

	/* The next request arrives while the previous one is with its (50 ms) handler: it waits
	 * for its turn without the loop spinning on the readable socket meanwhile. */
	double cpu0 = cpu_s();
	SB_TESTCLI_SEND(c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
	struct timespec pause = { 0, 5 * 1000000 };
	nanosleep(&pause, NULL);
	SB_TESTCLI_SEND(c, "GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_string_equal(r.body, "async");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_string_equal(r.body, "GET /echo ?n=4 x=- remote=127 body=");
	/* about 0.5 ms here; a loop spinning on the socket for the 45 ms burnt 7-11 ms */
	double used = cpu_s() - cpu0;
	if (used >= 0.004)
		fail_msg("%.1f ms of CPU while a request waited for its turn", used * 1000);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_async(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	double t0 = now_s();
	SB_TESTCLI_SEND(c, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_true(now_s() - t0 >= 0.045);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "async");
	/* A header injection attempt is refused: the client gets 500, the caller an error. */
	SB_TESTCLI_SEND(c, "GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 500);
	assert_int_equal(atomic_load(&bad_header_rc), SB_EINVAL);
	assert_false(has_header(&r, "Injected"));
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

/* Requests the server itself rejects, and how. */
static const struct reject_case {
	const char *req;
	int status;
} reject_cases[] = {
	{ "\x00\x01garbage\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\nHost: x\n\n\r\n\r\n", 400 },            /* bare LF */
	{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },             /* space before colon */
	{ "GET / HTTP/1.1\r\n\r\n", 400 },                         /* no Host */
	{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },   /* two Hosts */
	{ "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400 },   /* obs-fold */
	{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400 },              /* version */
	{ "GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", 400 },         /* target */
	{ "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400 }, /* control char */
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400 }, /* bad length */
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	  400 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	  411 },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", 413 },
};

/* Rejected requests that carry an X-Request-Id, and the request id their answer names. */
static const struct reject_rid_case {
	const char *req;
	int status;
	const char *rid; /* NULL: a new UUID */
} reject_rid_cases[] = {
	{ "GET / HTTP/1.1\r\nX-Request-Id: r-400\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400, "r-400" },
	/* the id comes after the malformed line: not trusted */
	{ "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\nX-Request-Id: r-400b\r\n\r\n", 400, NULL },
	{ "GET nopath HTTP/1.1\r\nX-Request-Id: r-400c\r\nHost: x\r\n\r\n", 400, NULL },
	{ "POST / HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-411\r\nTransfer-Encoding: chunked\r\n\r\n",
	  411, "r-411" },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nX-Request-Id: r-413\r\n\r\n",
	  413, "r-413" },
	/* an id that is not sane (a space, too long) is replaced */
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nX-Request-Id: a b\r\n\r\n",
	  413, NULL },
	{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
	  "X-Request-Id: 0123456789012345678901234567890123456789\r\n\r\n",
	  413, NULL },
};

static void
test_rejects(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	atomic_store(&handler_calls, 0);
	for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
		const struct reject_case *rc = &reject_cases[i];
		struct sb_testcli *c = sb_testcli_open(s, false);
		struct sb_testresp r;
		size_t n = rc->req[0] ? strlen(rc->req) : 13;
		sb_testcli_send(c, rc->req, n);
		assert_int_equal(sb_testcli_read(c, &r, false), 0);
		if (r.status != rc->status)
			fprintf(stderr, "case %zu: got %d\n", i, r.status);
		assert_int_equal(r.status, rc->status);
		assert_true(has_header(&r, "\r\nConnection: close\r\n"));
		assert_true(has_header(&r, "application/problem+json"));
		assert_true(sb_testcli_closed(c));
		sb_testcli_close(c);
	}
	assert_int_equal(atomic_load(&handler_calls), 0);

	/* Each rejection names the request id the client sent (when the part of the head read
	 * before the error holds a sane one), in the body and in X-Request-Id; else a new one. */
	for (size_t i = 0; i < sizeof(reject_rid_cases) / sizeof(reject_rid_cases[0]); i++) {
		const struct reject_rid_case *rc = &reject_rid_cases[i];
		struct sb_testcli *c = sb_testcli_open(s, false);
		struct sb_testresp r;
		SB_TESTCLI_SEND(c, rc->req);
		assert_int_equal(sb_testcli_read(c, &r, false), 0);
		if (r.status != rc->status)
			fprintf(stderr, "rid case %zu: got %d\n", i, r.status);
		assert_int_equal(r.status, rc->status);
		assert_problem_rid(&r, rc->rid);
		sb_testcli_close(c);
	}
	/* 431 for more than 100 header fields, the id among the first */
	char many[4096];
	int m = snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nX-Request-Id: r-431\r\n");
	for (int i = 0; i < 101; i++)
		m += snprintf(many + m, sizeof(many) - (size_t)m, "X-%d: v\r\n", i);
	snprintf(many + m, sizeof(many) - (size_t)m, "Host: x\r\n\r\n");
	struct sb_testcli *cm = sb_testcli_open(s, false);
	struct sb_testresp rm;
	SB_TESTCLI_SEND(cm, many);
	assert_int_equal(sb_testcli_read(cm, &rm, false), 0);
	assert_int_equal(rm.status, 431);
	assert_problem_rid(&rm, "r-431");
	sb_testcli_close(cm);

	/* 431: a head past max_header_bytes (1024), though the request is not finished. */
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	char big[2048];
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + n, 'a', sizeof(big) - (size_t)n);
	sb_testcli_send(c, big, sizeof(big));
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 431);
	assert_problem_rid(&r, NULL);
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	/* the same with a whole X-Request-Id line among the bytes read: that id */
	c = sb_testcli_open(s, false);
	n = snprintf(big, sizeof(big),
	             "GET / HTTP/1.1\r\nHost: x\r\nx-request-id:  r-431b \r\nX-Big: ");
	memset(big + n, 'a', sizeof(big) - (size_t)n);
	sb_testcli_send(c, big, sizeof(big));
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 431);
	assert_problem_rid(&r, "r-431b");
	sb_testcli_close(c);

	/* 413 comes at once, before any of the body is sent. */
	c = sb_testcli_open(s, false);
	double t0 = now_s();
	SB_TESTCLI_SEND(c, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 413);
	assert_true(now_s() - t0 < 1.0);
	sb_testcli_close(c);
	assert_int_equal(atomic_load(&handler_calls), 0);

	/* The server is unharmed. */
	c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_expect_continue(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	struct sb_testcli *c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
	                   "Expect: 100-continue\r\n\r\n");
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 100);
	SB_TESTCLI_SEND(c, "data");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "POST /echo ? x=- remote=127 body=data");
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_slowloris_and_idle(void **state)
{
	(void)state;
	struct sb_http_config cfg = { .header_timeout_ms = 500, .idle_timeout_ms = 300 };
	struct sb_http_server *s = start(&cfg);
	struct sb_testcli *c = sb_testcli_open(s, false);
	const char *req =
	    "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	double t0 = now_s();
	bool closed = false;
	for (size_t i = 0; i < strlen(req) && !closed; i++) {
		if (send(c->fd, req + i, 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(200000);
		char b[512];
		ssize_t n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0)
			assert_true(strncmp(b, "HTTP/1.1 408 ", 13) == 0);
		closed =
		    n == 0 || (n > 0 && sb_testcli_closed(c)) || (n < 0 && errno == ECONNRESET);
	}
	double took = now_s() - t0;
	assert_true(closed);
	assert_true(took >= 0.45 && took < 1.5);
	sb_testcli_close(c);

	/* An idle keep-alive connection is closed after idle_timeout_ms. */
	c = sb_testcli_open(s, false);
	struct sb_testresp r;
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	t0 = now_s();
	assert_true(sb_testcli_closed(c));
	took = now_s() - t0;
	assert_true(took >= 0.25 && took < 1.5);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

/* 408 names the client's request id: from the whole lines of a head that did not arrive in
 * time, or from the head of a request whose body did not. */
static void
test_timeout_rid(void **state)
{
	(void)state;
	struct sb_http_config cfg = { .header_timeout_ms = 300, .body_timeout_ms = 300 };
	struct sb_http_server *s = start(&cfg);
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nX-Request-Id: r-408\r\nHost: x\r\nX-Half: ab");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_problem_rid(&r, "r-408");
	sb_testcli_close(c);
	c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-408b\r\n"
	                   "Content-Length: 10\r\n\r\nabc");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_problem_rid(&r, "r-408b");
	sb_testcli_close(c);
	/* the id's line is not whole yet: a new id */
	c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-408c");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_problem_rid(&r, NULL);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_max_conns(void **state)
{
	(void)state;
	struct sb_http_config cfg = { .max_conns = 2 };
	struct sb_http_server *s = start(&cfg);
	struct sb_testcli *a = sb_testcli_open(s, false), *b = sb_testcli_open(s, false),
	                  *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 503);
	assert_problem_rid(&r, NULL);
	assert_true(has_header(&r, "\r\nRetry-After: 1\r\n"));
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	SB_TESTCLI_SEND(a, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(a, &r, false), 0);
	assert_int_equal(r.status, 200);
	sb_testcli_close(a);
	sb_testcli_close(b);
	usleep(50000);
	c = sb_testcli_open(s, false); /* room again */
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_disconnect_before_answer(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	struct sb_testcli *c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sem_wait(&held_sem), 0);
	sb_testcli_close(c);
	usleep(100000); /* the server notices and closes its side */
	/* The request outlived its connection: answering it only frees it. */
	assert_string_equal(held->path, "/hold");
	assert_int_equal(sb_http_respond(held, 200, "text/plain", NULL, 0, "late", 4), 0);
	c = sb_testcli_open(s, false);
	struct sb_testresp r;
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	sb_testcli_close(c);

	/* Answered only after stop: freed safely too (ASan checks the memory). */
	c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sem_wait(&held_sem), 0);
	sb_http_server_stop(s, 100);
	assert_true(sb_testcli_closed(c));
	assert_int_equal(sb_http_respond(held, 200, NULL, NULL, 0, NULL, 0), 0);
	sb_testcli_close(c);
}

static void
test_stop_waits_for_inflight(void **state)
{
	(void)state;
	struct sb_http_server *s = start_default();
	int port = sb_http_server_port(s);
	struct sb_testcli *c = sb_testcli_open(s, false);
	SB_TESTCLI_SEND(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sem_wait(&held_sem), 0);
	double t0 = now_s();
	sb_http_server_stop(s, 3000);
	double took = now_s() - t0;
	assert_true(took >= 0.2 && took < 2.0);
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "async");
	assert_true(has_header(&r, "\r\nConnection: close\r\n"));
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	/* Nothing listens any more. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
}

static void
test_bad_config(void **state)
{
	(void)state;
	struct sb_http_server *s = NULL;
	struct sb_http_config cfg = { .addr = "not-an-address" };
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), SB_EINVAL);
	cfg.addr = "127.0.0.1";
	cfg.port = 70000;
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), SB_EINVAL);
	cfg.port = 0;
	cfg.server_name = "bad\r\nname";
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), SB_EINVAL);
	assert_int_equal(sb_http_server_start(NULL, handler, NULL, &s), SB_EINVAL);
	/* A port in use. */
	struct sb_http_server *a = start_default();
	cfg.server_name = NULL;
	cfg.port = sb_http_server_port(a);
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), SB_EIO);
	assert_null(s);
	sb_http_server_stop(a, 100);
}

/* The parser never crashes and never reads past its input, whatever the bytes. */
static void
test_parser_random(void **state)
{
	(void)state;
	static const char *const seeds[] = {
		"GET /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
		"OPTIONS * HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n\r\n",
		"POST http://h/p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
	};
	struct sb_http_header hdrs[SB__HTTP_MAX_HEADERS];
	struct sb__http_head h;
	char buf[256];
	unsigned seed = 12345;
	int ok = 0;
	for (int i = 0; i < 200000; i++) {
		const char *s = seeds[i % 3];
		size_t len = strlen(s);
		memcpy(buf, s, len);
		int flips = 1 + (int)(rand_r(&seed) % 4);
		for (int f = 0; f < flips; f++)
			buf[rand_r(&seed) % (len - 4)] = (char)(rand_r(&seed) % 256);
		/* Exact-size heap copy: ASan catches any read past the end. */
		char *copy = malloc(len);
		memcpy(copy, buf, len);
		int rc = sb__http_parse_head(copy, len, hdrs, SB__HTTP_MAX_HEADERS, &h);
		assert_true(rc == 0 || rc == SB_EPROTO || rc == SB_EINVAL || rc == SB_ERANGE);
		ok += rc == 0;
		free(copy);
	}
	assert_true(ok > 0);
	char good[] = "GET /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
	assert_int_equal(sb__http_parse_head(good, strlen(good), hdrs, 10, &h), 0);
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.path, "/a");
	assert_string_equal(h.query, "b");
	assert_int_equal(h.content_len, 5);
	assert_int_equal(h.nheaders, 2);
	assert_string_equal(hdrs[1].value, "5");
}

int
main(void)
{
	sem_init(&held_sem, 0, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_and_post),
		cmocka_unit_test(test_keepalive_and_pipelining),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_slowloris_and_idle),
		cmocka_unit_test(test_timeout_rid),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_disconnect_before_answer),
		cmocka_unit_test(test_stop_waits_for_inflight),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_parser_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
