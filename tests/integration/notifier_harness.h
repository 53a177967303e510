/* notifier_harness.h: starting a real sb-notifier for the notifier integration tests (events,
 * webhooks) with the harness (it.h), against the servers tests/lib/with-stack.sh started (the
 * run's Kafka broker, with this test's SB_KAFKA_TOPIC_PREFIX in front of every topic and group
 * id). Include once per test. */
#ifndef SB_NOTIFIER_HARNESS_H
#define SB_NOTIFIER_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it.h"

/* nh_start runs sb-notifier (it_spawn: the stack's addresses, free ports) in p with consumer
 * group group (the base name: the notifier puts the prefix in front), short session timeouts
 * and the extra "NAME=value" settings (NULL-ended, may be NULL), and waits up to 20 s for its
 * Health RPC (p->cli is then open). */
static void
nh_start(struct it_proc *p, const char *group, const char *const *extra)
{
	char grp[128];
	const char *env[24];
	size_t n = 0;
	snprintf(grp, sizeof(grp), "SB_NOTIFIER_GROUP=%s", group);
	env[n++] = grp;
	env[n++] = "SB_NOTIFIER_SESSION_TIMEOUT_MS=4000";
	env[n++] = "SB_NOTIFIER_HEARTBEAT_MS=1000";
	env[n++] = "SB_SHUTDOWN_GRACE_MS=3000";
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	if (it_spawn(p, "notifier", "notifier", env) != 0)
		fail_msg("cannot start sb-notifier");
	if (it_wait_health(p, "notifier.Health", 20000) != 0) {
		it_stop(p, SIGKILL, 5000); /* leave no orphan behind a failed test */
		fail_msg("sb-notifier did not answer Health within 20 s (see %s)", p->log);
	}
}

/* nh_stop sends SIGTERM and expects a clean exit within 10 s. */
static void
nh_stop(struct it_proc *p)
{
	if (p->pid <= 0)
		return;
	int st = it_stop(p, SIGTERM, 10000);
	if (st < 0)
		fail_msg("sb-notifier did not stop within 10 s of SIGTERM");
	assert_int_equal(st, 0);
}

/* nh_metric sums the samples of series on the notifier's /metrics (see it_metric_port); fails
 * the test when /metrics cannot be read. */
static inline double
nh_metric(const struct it_proc *p, const char *series)
{
	double v = it_metric(p, series);
	if (v < 0)
		fail_msg("cannot read /metrics of sb-notifier (ops port %d)", p->ops_port);
	return v;
}

#endif
