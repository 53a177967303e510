/* Tests of sb_ops over real sockets: /healthz, /ready with passing, failing, slow and parallel
 * checks and draining, /metrics through promtool, 404 and 405. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_ops.h"

struct reply {
	int status;
	char head[2048];
	char body[262144];
};

/* fetch sends one request with Connection: close and reads the reply to the end. */
static void
fetch(int port, const char *method, const char *path, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[256];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	                 method, path);
	assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	size_t cap = sizeof(r->head) + sizeof(r->body);
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t len = 0;
	ssize_t got;
	while ((got = recv(fd, buf + len, cap - len - 1, 0)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	char *e = strstr(buf, "\r\n\r\n");
	assert_non_null(e);
	size_t hlen = (size_t)(e - buf) + 4;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, buf, hlen);
	memcpy(r->body, buf + hlen, len - hlen);
	r->status = atoi(buf + 9);
	free(buf);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Checks. */

static atomic_int cache_up;
static atomic_int slow_ms;
static atomic_int slow_done;

static int
check_db(void *arg, char *detail, size_t n)
{
	snprintf(detail, n, "%s", (const char *)arg);
	return 0;
}

static int
check_cache(void *arg, char *detail, size_t n)
{
	(void)arg;
	if (atomic_load(&cache_up))
		return 0;
	snprintf(detail, n, "connection \"refused\"");
	return -1;
}

static atomic_int slow_running, slow_peak;

static int
check_slow(void *arg, char *detail, size_t n)
{
	(void)arg;
	int now = atomic_fetch_add(&slow_running, 1) + 1;
	for (int peak = atomic_load(&slow_peak);
	     now > peak && !atomic_compare_exchange_weak(&slow_peak, &peak, now);)
		;
	usleep((useconds_t)atomic_load(&slow_ms) * 1000);
	atomic_fetch_sub(&slow_running, 1);
	snprintf(detail, n, "slept");
	atomic_fetch_add(&slow_done, 1);
	return 0;
}

static void
test_routes(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start("127.0.0.1", 0, &ops), 0);
	int port = sb_ops_port(ops);
	struct reply r;

	fetch(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	assert_non_null(strcasestr(r.head, "\r\nContent-Type: application/json\r\n"));

	fetch(port, "GET", "/live", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");

	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"ready\":true,\"draining\":false,\"checks\":[]}");

	fetch(port, "POST", "/ready", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "\r\nAllow: GET, HEAD\r\n"));
	assert_non_null(strcasestr(r.head, "application/problem+json"));

	fetch(port, "GET", "/nope", &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "\"status\":404"));

	fetch(port, "HEAD", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");

	sb_ops_stop(ops);
}

static int
check_never(void *arg, char *detail, size_t n)
{
	(void)arg;
	snprintf(detail, n, "starting");
	return -1;
}

/* A check given to sb_ops_start_checked is there for the very first /ready. */
static void
test_start_checked(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start_checked(NULL, 0, "started", check_never, NULL, &ops), 0);
	struct reply r;
	fetch(sb_ops_port(ops), "GET", "/ready", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "\"name\":\"started\""));
	assert_int_equal(sb_ops_add_check(ops, "started", check_db, "x"), SB_EEXIST);
	sb_ops_stop(ops);
	assert_int_equal(sb_ops_start_checked(NULL, 0, "", check_never, NULL, &ops), SB_EINVAL);
}

static void
test_ready_checks(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start(NULL, 0, &ops), 0);
	int port = sb_ops_port(ops);
	assert_int_equal(sb_ops_add_check(ops, "db", check_db, "pong"), 0);
	assert_int_equal(sb_ops_add_check(ops, "cache", check_cache, NULL), 0);
	assert_int_equal(sb_ops_add_check(ops, "db", check_db, "x"), SB_EEXIST);
	assert_int_equal(sb_ops_add_check(ops, "", check_db, "x"), SB_EINVAL);
	assert_int_equal(sb_ops_add_check(ops, "x", NULL, "x"), SB_EINVAL);
	struct reply r;

	atomic_store(&cache_up, 0);
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "{\"ready\":false,\"draining\":false,\"checks\":["
	                            "{\"name\":\"db\",\"ok\":true,\"detail\":\"pong\"},"
	                            "{\"name\":\"cache\",\"ok\":false,"
	                            "\"detail\":\"connection \\\"refused\\\"\"}]}");

	atomic_store(&cache_up, 1);
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ready\":true"));

	sb_ops_set_draining(ops, true);
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "\"ready\":false,\"draining\":true"));
	fetch(port, "GET", "/healthz", &r); /* still alive while draining */
	assert_int_equal(r.status, 200);
	sb_ops_set_draining(ops, false);
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 200);
	sb_ops_stop(ops);
}

struct probe {
	int port, status;
	double took;
};

/* probe_healthz asks /healthz while a /ready is waiting for its checks. */
static void *
probe_healthz(void *arg)
{
	struct probe *p = arg;
	static struct reply h;
	usleep(50000);
	double s = now_s();
	fetch(p->port, "GET", "/healthz", &h);
	p->took = now_s() - s;
	p->status = h.status;
	return NULL;
}

static void
test_slow_checks(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start(NULL, 0, &ops), 0);
	int port = sb_ops_port(ops);
	sb_ops_set_check_timeout(ops, 2000);
	assert_int_equal(sb_ops_add_check(ops, "slow1", check_slow, NULL), 0);
	assert_int_equal(sb_ops_add_check(ops, "slow2", check_slow, NULL), 0);
	struct reply r;

	/* Two 150 ms checks run in parallel: both are running at once (a property that holds on
	 * a loaded machine, where wall-clock bounds did not). */
	atomic_store(&slow_ms, 150);
	atomic_store(&slow_done, 0);
	atomic_store(&slow_peak, 0);
	double t0 = now_s();
	fetch(port, "GET", "/ready", &r);
	double took = now_s() - t0;
	assert_int_equal(r.status, 200);
	assert_true(took >= 0.14);
	assert_int_equal(atomic_load(&slow_peak), 2);
	sb_ops_set_check_timeout(ops, 300);

	/* A check past its limit fails /ready in time, and the loop keeps serving meanwhile. */
	atomic_store(&slow_ms, 800);
	atomic_store(&slow_done, 0);
	struct probe pr = { .port = port };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, probe_healthz, &pr), 0);
	t0 = now_s();
	fetch(port, "GET", "/ready", &r);
	took = now_s() - t0;
	pthread_join(th, NULL);
	assert_int_equal(pr.status, 200);
	assert_true(pr.took < 0.1);
	assert_int_equal(r.status, 503);
	assert_true(took >= 0.29 && took < 0.7);
	assert_non_null(strstr(
	    r.body, "{\"name\":\"slow1\",\"ok\":false,\"detail\":\"timed out after 300 ms\"}"));

	/* While they still run, they are not started again. */
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "previous check still running"));
	while (atomic_load(&slow_done) < 2)
		usleep(10000);
	usleep(20000);
	atomic_store(&slow_ms, 1);
	fetch(port, "GET", "/ready", &r);
	assert_int_equal(r.status, 200);
	sb_ops_stop(ops);
}

static void
test_metrics(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start(NULL, 0, &ops), 0);
	struct sb_metric *m = sb_metrics_counter("sbt_ops_hits_total", "Hits.", "route");
	sb_series_add(sb_metric_with(m, "/x"), 5);
	struct reply r;
	fetch(sb_ops_port(ops), "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(
	    strcasestr(r.head, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r.body, "\nsbt_ops_hits_total{route=\"/x\"} 5\n"));
	assert_non_null(strstr(r.body, "\nprocess_open_fds "));

	char path[] = "/tmp/sb_ops_test_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(r.body);
	assert_int_equal(write(fd, r.body, len), (ssize_t)len);
	close(fd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	int st = system(cmd);
	unlink(path);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 127)
		fail_msg("promtool is not installed (Debian package prometheus)");
	assert_int_equal(WEXITSTATUS(st), 0);
	sb_ops_stop(ops);
}

static void
test_bad_start(void **state)
{
	(void)state;
	struct sb_ops *ops = NULL;
	assert_int_equal(sb_ops_start("bogus", 0, &ops), SB_EINVAL);
	assert_null(ops);
	assert_int_equal(sb_ops_start(NULL, 0, NULL), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),        cmocka_unit_test(test_ready_checks),
		cmocka_unit_test(test_start_checked), cmocka_unit_test(test_slow_checks),
		cmocka_unit_test(test_metrics),       cmocka_unit_test(test_bad_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
