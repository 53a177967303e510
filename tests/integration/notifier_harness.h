/* notifier_harness.h: starting a real sb-notifier for the notifier integration tests (events,
 * webhooks), against the servers tests/lib/with-stack.sh started (the run's Kafka broker, with
 * this test's SB_KAFKA_TOPIC_PREFIX in front of every topic and group id). Include once per
 * test. */
#ifndef SB_NOTIFIER_HARNESS_H
#define SB_NOTIFIER_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "it_port.h"
#include "rpc.pb-c.h"
#include "sb_rpc.h"

static int64_t
t_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
t_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static const char *
t_env(const char *n)
{
	const char *v = getenv(n);
	if (v == NULL)
		fail_msg("%s unset: run under tests/lib/with-stack.sh (ctest does)", n);
	return v;
}

/* nh_name writes SB_KAFKA_TOPIC_PREFIX followed by base to out (size n): the name a topic or
 * consumer group base has in this test, as the services build it. Returns out. */
static inline const char *
nh_name(const char *base, char *out, size_t n)
{
	const char *pre = getenv("SB_KAFKA_TOPIC_PREFIX");
	snprintf(out, n, "%s%s", pre ? pre : "", base);
	return out;
}

/* nh_start runs sb-notifier with the stack's addresses, free ports, consumer group group (the
 * base name: the notifier puts the prefix in front) and the extra environment (name, value
 * pairs ending with NULL); writes its RPC URL to rpc (size n) and its ops port to *ops (when
 * not NULL), opens *cli to it and waits up to 20 s for its Health RPC. Returns the child's
 * pid. */
static pid_t
nh_start(const char *group, const char *const *extra, char *rpc, size_t n, int *ops_port,
         struct sb_rpc_client **cli)
{
	char bin[512], log[512], ops[16];
	const char *build = getenv("SB_BUILD_ROOT") ? getenv("SB_BUILD_ROOT") : "build";
	snprintf(bin, sizeof(bin), "%s/bin/sb-notifier", build);
	snprintf(log, sizeof(log), "%s/notifier.log", t_env("SB_TEST_TMP"));
	if (access(bin, X_OK) != 0)
		fail_msg("%s not built", bin);
	snprintf(rpc, n, "tcp://127.0.0.1:%d", it_free_port());
	int op = it_free_port();
	snprintf(ops, sizeof(ops), "%d", op);
	if (ops_port != NULL)
		*ops_port = op;
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		(void)f;
		dup2(STDOUT_FILENO, STDERR_FILENO);
		setenv("DATABASE_URL", t_env("SB_TEST_PG_DSN"), 1);
		setenv("REDIS_URL", t_env("SB_TEST_REDIS_URL"), 1);
		setenv("KAFKA_BROKERS", t_env("SB_TEST_KAFKA_BROKERS"), 1);
		setenv("SB_RPC_URL", rpc, 1);
		setenv("SB_OPS_PORT", ops, 1);
		setenv("SB_NOTIFIER_GROUP", group, 1);
		setenv("SB_NOTIFIER_SESSION_TIMEOUT_MS", "4000", 1);
		setenv("SB_NOTIFIER_HEARTBEAT_MS", "1000", 1);
		setenv("SB_LOG_LEVEL", "info", 1);
		setenv("SB_SHUTDOWN_GRACE_MS", "3000", 1);
		for (const char *const *e = extra; e != NULL && e[0] != NULL; e += 2)
			setenv(e[0], e[1], 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(sb_rpc_client_open(rpc, cli), 0);
	for (int64_t until = t_now() + 20000;;) {
		Sb__Rpc__HealthRequest req = SB__RPC__HEALTH_REQUEST__INIT;
		struct sb_rpc_result res;
		struct sb_rpc_meta meta = { .timeout_ms = 1000 };
		assert_int_equal(sb_rpc_call(*cli, "notifier.Health", &req.base,
		                             &sb__rpc__health_response__descriptor, &meta, &res),
		                 0);
		int code = res.code;
		sb_rpc_result_free(&res);
		if (code == SB__RPC__CODE__OK)
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			fail_msg("sb-notifier exited at start (see %s)", log);
		if (t_now() > until) {
			kill(pid, SIGKILL); /* leave no orphan behind a failed test */
			waitpid(pid, &st, 0);
			fail_msg("sb-notifier did not answer Health within 20 s (see %s)", log);
		}
		t_sleep(100);
	}
}

/* nh_metric sums the values of the lines of the notifier's /metrics (ops port ops) that start
 * with series (a metric name with the start of its labels, e.g. "notifier_events_total{" or
 * "notifier_batch_events_bucket{le=\"1\"}"). Fails the test when /metrics cannot be read. */
static inline double
nh_metric(int ops, const char *series)
{
	static char buf[1 << 20];
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		                 .sin_port = htons((uint16_t)ops) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail_msg("cannot connect to the notifier's ops port %d", ops);
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
	size_t got = 0;
	for (ssize_t r;
	     got < sizeof(buf) - 1 && (r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0;)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		fail_msg("GET /metrics: %.60s", buf);
	double sum = 0;
	size_t sl = strlen(series);
	for (const char *l = buf; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, series, sl) == 0) {
			const char *v = strchr(l + sl, ' ');
			if (v != NULL)
				sum += strtod(v + 1, NULL);
		}
	return sum;
}

#endif
