/* notifier_harness.h: starting a real sb-notifier for the notifier integration tests (events,
 * webhooks), against the servers tests/lib/with-stack.sh started. Include once per test. */
#ifndef SB_NOTIFIER_HARNESS_H
#define SB_NOTIFIER_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
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

/* nh_start runs sb-notifier with the stack's addresses, free ports, consumer group group and
 * the extra environment (name, value pairs ending with NULL); writes its RPC URL to rpc (size
 * n), opens *cli to it and waits up to 20 s for its Health RPC. Returns the child's pid. */
static pid_t
nh_start(const char *group, const char *const *extra, char *rpc, size_t n,
         struct sb_rpc_client **cli)
{
	char bin[512], log[512], ops[16];
	const char *build = getenv("SB_BUILD_ROOT") ? getenv("SB_BUILD_ROOT") : "build";
	snprintf(bin, sizeof(bin), "%s/bin/sb-notifier", build);
	snprintf(log, sizeof(log), "%s/notifier.log", t_env("SB_TEST_TMP"));
	if (access(bin, X_OK) != 0)
		fail_msg("%s not built", bin);
	snprintf(rpc, n, "tcp://127.0.0.1:%d", it_free_port());
	snprintf(ops, sizeof(ops), "%d", it_free_port());
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
		if (t_now() > until)
			fail_msg("sb-notifier did not answer Health within 20 s");
		t_sleep(100);
	}
}

#endif
