/* Tests of sb_http's streamed bodies (sb_http_config.stream_body, sb_http_req_read) with real
 * sockets on 127.0.0.1, plain and TLS: a body sent in many pieces and read in many small reads,
 * keep-alive and a pipelined request after it, what came with the head, 100-continue sent only
 * when the handler reads, an answer before the body (connection closed), a client that stops
 * mid-body, the body timeout, 413 before the decision, and the loop staying responsive while
 * a body is being read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_http.h"
#include "sb_http_testcli.h"

/* Server side: bodies of paths under /stream are streamed; a thread per request reads them in
 * reads of at most 1000 bytes and answers "len=<n> reads=<k> sum=<fnv1a>". /stream/refuse is
 * answered 403 without reading; a read error is recorded in last_err and answered 408. */

static atomic_int stream_calls, last_err, decisions;
/* Posted when a streamed request was answered, after its answer was queued: a test waits for
 * the post of every streamed request it makes, so a late post of one test (its reader thread
 * preempted between the answer and the post, seen under CI's load) cannot satisfy a later
 * test's wait before that test's own request was answered. */
static sem_t done_sem;

static bool
want_stream(const struct sb_http_req *head, void *arg)
{
	(void)arg;
	atomic_fetch_add(&decisions, 1);
	assert_null(head->body);
	assert_true(head->body_len > 0);
	return strncmp(head->path, "/stream", 7) == 0;
}

static uint32_t
fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void *
reader(void *arg)
{
	struct sb_http_req *r = arg;
	unsigned char buf[1000];
	size_t total = 0;
	int reads = 0;
	uint32_t h = 2166136261u;
	ssize_t n;
	assert_int_equal(sb_http_req_read(r, NULL, 0), 0);
	while ((n = sb_http_req_read(r, buf, sizeof(buf))) > 0) {
		h = fnv1a(h, buf, (size_t)n);
		total += (size_t)n;
		reads++;
	}
	if (n < 0) {
		atomic_store(&last_err, (int)n);
		assert_int_equal(sb_http_req_read(r, buf, sizeof(buf)), n); /* sticky */
		sb_http_respond_problem(r, 408, NULL, "body not received");
	} else {
		assert_int_equal(total, r->body_len);
		char body[128];
		int k = snprintf(body, sizeof(body), "len=%zu reads=%d sum=%08x", total, reads, h);
		sb_http_respond(r, 200, "text/plain", NULL, 0, body, (size_t)k);
	}
	sem_post(&done_sem);
	return NULL;
}

static void
handler(struct sb_http_req *r, void *arg)
{
	(void)arg;
	if (!r->streamed) {
		char body[256];
		int n = snprintf(body, sizeof(body), "plain %s body=%.*s", r->path,
		                 (int)r->body_len, r->body);
		assert_int_equal(sb_http_req_read(r, body, 1), SB_EINVAL);
		sb_http_respond(r, 200, "text/plain", NULL, 0, body, (size_t)n);
		return;
	}
	atomic_fetch_add(&stream_calls, 1);
	/* on the loop thread: reading here is refused, it would block the loop */
	char one;
	assert_int_equal(sb_http_req_read(r, &one, 1), SB_EINVAL);
	if (strcmp(r->path, "/stream/refuse") == 0) {
		sb_http_respond_problem(r, 403, NULL, "not this one");
		sem_post(&done_sem);
		return;
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, reader, r), 0);
	pthread_detach(t);
}

static struct sb_http_server *
start_rate(const char *crt, const char *key, int body_timeout_ms, int min_rate, int grace_ms)
{
	struct sb_http_config cfg = { .addr = "127.0.0.1",
		                      .max_header_bytes = 2048,
		                      .max_body_bytes = 8 << 20,
		                      .body_timeout_ms = body_timeout_ms,
		                      .stream_min_rate = min_rate,
		                      .stream_grace_ms = grace_ms,
		                      .tls_cert_file = crt,
		                      .tls_key_file = key,
		                      .stream_body = want_stream };
	struct sb_http_server *s = NULL;
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), 0);
	atomic_store(&last_err, 0);
	assert_int_not_equal(sem_trywait(&done_sem), 0); /* every earlier post was waited for */
	atomic_store(&stream_calls, 0);
	atomic_store(&decisions, 0);
	return s;
}

static struct sb_http_server *
start(const char *crt, const char *key, int body_timeout_ms)
{
	return start_rate(crt, key, body_timeout_ms, 0, 0);
}

/* Client side: sb_http_testcli.h (plain, or TLS 1.3 trusting the test's own server). */

static void
head(struct sb_testcli *c, const char *path, size_t len, const char *extra)
{
	char h[512];
	int n =
	    snprintf(h, sizeof(h), "PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n",
	             path, len, extra ? extra : "");
	sb_testcli_send(c, h, (size_t)n);
}

static unsigned char *
pattern(size_t n)
{
	unsigned char *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 7919u) >> 3);
	return p;
}

static void
wait_done(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	assert_int_equal(sem_timedwait(&done_sem, &ts), 0);
}

/* A body in 64 pieces with pauses, read in reads of 1000 bytes: all of it, in order, then
 * the connection serves a pipelined pair (a plain POST, then a streamed PUT whose body came in
 * the same packet as its head). */
static void
many_pieces(bool tls, const char *crt, const char *key)
{
	struct sb_http_server *s = start(crt, key, 0);
	struct sb_testcli *c = sb_testcli_open(s, tls);
	const size_t len = 64 * 4099;
	unsigned char *body = pattern(len);
	head(c, "/stream/a", len, NULL);
	for (size_t off = 0; off < len; off += 4099) {
		sb_testcli_send(c, body + off, 4099);
		usleep(2000);
	}
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	char want[128];
	snprintf(want, sizeof(want), "len=%zu reads=", len);
	assert_non_null(strstr(r.body, want));
	snprintf(want, sizeof(want), "sum=%08x", fnv1a(2166136261u, body, len));
	assert_non_null(strstr(r.body, want));
	int reads = atoi(strstr(r.body, "reads=") + 6);
	assert_true(reads >= (int)(len / 1000)); /* never more than asked for */
	assert_null(strcasestr(r.head, "Connection: close"));
	wait_done(); /* the reader posts after its answer: wait, so no post reaches a later test */

	/* pipelined: a plain request and a streamed one with its body, sent together */
	const char *two = "POST /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
	                  "PUT /stream/b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
	sb_testcli_send(c, two, strlen(two));
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "plain /plain body=abc");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	snprintf(want, sizeof(want), "len=5 reads=1 sum=%08x",
	         fnv1a(2166136261u, (const unsigned char *)"hello", 5));
	assert_string_equal(r.body, want);
	wait_done();
	assert_int_equal(atomic_load(&stream_calls), 2);
	assert_int_equal(atomic_load(&decisions), 3); /* every request with a body was asked */
	free(body);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_many_pieces(void **state)
{
	(void)state;
	many_pieces(false, NULL, NULL);
}

/* 100-continue is sent only when the handler reads; a handler that answers before reading
 * closes the connection after its answer; 413 comes before the decision. */
static void
test_continue_refuse_413(void **state)
{
	(void)state;
	struct sb_http_server *s = start(NULL, NULL, 0);
	struct sb_testcli *c = sb_testcli_open(s, false);
	struct sb_testresp r;
	head(c, "/stream/c", 10, "Expect: 100-continue\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 100);
	sb_testcli_send(c, "0123456789", 10);
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "len=10 "));
	wait_done();
	sb_testcli_close(c);

	c = sb_testcli_open(s, false);
	head(c, "/stream/refuse", 100000, "Expect: 100-continue\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 403); /* no 100 before it */
	assert_non_null(strcasestr(r.head, "Connection: close"));
	assert_true(sb_testcli_closed(c));
	wait_done();
	sb_testcli_close(c);

	c = sb_testcli_open(s, false);
	head(c, "/stream/refuse", 100000, NULL);
	sb_testcli_send(c, "some of the body", 16); /* sent anyway: drained, then closed */
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 403);
	assert_true(sb_testcli_closed(c));
	wait_done();
	sb_testcli_close(c);

	c = sb_testcli_open(s, false);
	head(c, "/stream/big", (size_t)(8 << 20) + 1, NULL);
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 413);
	assert_true(sb_testcli_closed(c));
	sb_testcli_close(c);
	assert_int_equal(atomic_load(&decisions), 3); /* not asked about the 413 */
	sb_http_server_stop(s, 1000);
}

/* A client that stops mid-body: the reader gets SB_ECLOSED, its answer is only freed, and the
 * server goes on serving. */
static void
stops_mid_body(bool tls, const char *crt, const char *key)
{
	struct sb_http_server *s = start(crt, key, 0);
	struct sb_testcli *c = sb_testcli_open(s, tls);
	unsigned char *body = pattern(50000);
	head(c, "/stream/d", 100000, NULL);
	sb_testcli_send(c, body, 50000);
	usleep(100000);
	sb_testcli_close(c);
	wait_done();
	assert_int_equal(atomic_load(&last_err), SB_ECLOSED);
	c = sb_testcli_open(s, tls);
	head(c, "/stream/e", 3, NULL);
	sb_testcli_send(c, "xyz", 3);
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	wait_done();
	sb_testcli_close(c);
	free(body);
	sb_http_server_stop(s, 1000);
}

static void
test_stops_mid_body(void **state)
{
	(void)state;
	stops_mid_body(false, NULL, NULL);
}

/* The body timeout: the reader gets SB_ETIMEDOUT after body_timeout_ms, its 408 reaches the
 * client with Connection: close; meanwhile the loop serves other connections. */
static void
body_timeout(bool tls, const char *crt, const char *key)
{
	struct sb_http_server *s = start(crt, key, 400);
	struct sb_testcli *c = sb_testcli_open(s, tls);
	head(c, "/stream/f", 1000, NULL);
	sb_testcli_send(c, "partial", 7);
	/* the loop is not blocked by the stalled body */
	struct sb_testcli *o = sb_testcli_open(s, tls);
	const char *get = "POST /other HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok";
	sb_testcli_send(o, get, strlen(get));
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(o, &r, false), 0);
	assert_string_equal(r.body, "plain /other body=ok");
	sb_testcli_close(o);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r.status, 408);
	assert_non_null(strcasestr(r.head, "Connection: close"));
	assert_int_equal(atomic_load(&last_err), SB_ETIMEDOUT);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waited > 0.2 && waited < 2.0);
	assert_true(sb_testcli_closed(c));
	wait_done();
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_body_timeout(void **state)
{
	(void)state;
	body_timeout(false, NULL, NULL);
}

/* The minimum rate: with 20,000 bytes/s required after a 300 ms grace and a 10 s body timeout,
 * a client that sends 10 bytes and stalls is cut (408, SB_ETIMEDOUT) within about 0.3 s, not
 * at the body timeout; one that sends 40,000 bytes in 8 pieces 50 ms apart (about 100 KB/s)
 * is read whole. */
static void
test_min_rate(void **state)
{
	(void)state;
	struct sb_http_server *s = start_rate(NULL, NULL, 10000, 20000, 300);
	struct sb_testcli *c = sb_testcli_open(s, false);
	head(c, "/stream/f", 100000, NULL);
	sb_testcli_send(c, "0123456789", 10);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r.status, 408);
	assert_int_equal(atomic_load(&last_err), SB_ETIMEDOUT);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waited > 0.1 && waited < 2.0);
	wait_done();
	sb_testcli_close(c);

	atomic_store(&last_err, 0);
	c = sb_testcli_open(s, false);
	head(c, "/stream/f", 40000, NULL);
	char piece[5000];
	memset(piece, 'x', sizeof(piece));
	for (int i = 0; i < 8; i++) {
		sb_testcli_send(c, piece, sizeof(piece));
		usleep(50000);
	}
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "len=40000 "));
	assert_int_equal(atomic_load(&last_err), 0);
	wait_done();
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

/* Stop while a reader is blocked: the connection is closed under it (SB_ECLOSED), and its
 * later answer is freed safely. */
static void
test_stop_while_reading(void **state)
{
	(void)state;
	struct sb_http_server *s = start(NULL, NULL, 0);
	struct sb_testcli *c = sb_testcli_open(s, false);
	head(c, "/stream/g", 1000, NULL);
	sb_testcli_send(c, "abc", 3);
	usleep(100000);
	sb_http_server_stop(s, 200);
	wait_done();
	assert_int_equal(atomic_load(&last_err), SB_ECLOSED);
	sb_testcli_close(c);
}

/* TLS: a throwaway self-signed certificate made with the openssl command. */
static char tls_dir[] = "/tmp/sb_http_stream_XXXXXX";
static char tls_crt[300], tls_key[300];

static int
tls_setup(void **state)
{
	(void)state;
	if (mkdtemp(tls_dir) == NULL)
		return -1;
	snprintf(tls_crt, sizeof(tls_crt), "%s/s.crt", tls_dir);
	snprintf(tls_key, sizeof(tls_key), "%s/s.key", tls_dir);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-subj /CN=sb-stream -addext subjectAltName=IP:127.0.0.1 -days 1 "
	         "-keyout %s -out %s 2>/dev/null",
	         tls_key, tls_crt);
	return system(cmd) == 0 ? 0 : -1;
}

static int
tls_teardown(void **state)
{
	(void)state;
	unlink(tls_crt);
	unlink(tls_key);
	rmdir(tls_dir);
	return 0;
}

static void
test_tls_many_pieces(void **state)
{
	(void)state;
	many_pieces(true, tls_crt, tls_key);
}

static void
test_tls_stops_mid_body(void **state)
{
	(void)state;
	stops_mid_body(true, tls_crt, tls_key);
}

static void
test_tls_body_timeout(void **state)
{
	(void)state;
	body_timeout(true, tls_crt, tls_key);
}

int
main(void)
{
	sem_init(&done_sem, 0, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_pieces),
		cmocka_unit_test(test_continue_refuse_413),
		cmocka_unit_test(test_stops_mid_body),
		cmocka_unit_test(test_body_timeout),
		cmocka_unit_test(test_min_rate),
		cmocka_unit_test(test_stop_while_reading),
		cmocka_unit_test_setup_teardown(test_tls_many_pieces, tls_setup, NULL),
		cmocka_unit_test(test_tls_stops_mid_body),
		cmocka_unit_test_setup_teardown(test_tls_body_timeout, NULL, tls_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
