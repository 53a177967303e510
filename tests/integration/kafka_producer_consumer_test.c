/* kafka_producer_consumer_test.c: an idempotent producer (this process) and a consumer group
 * (a separate process: this executable re-run as "consume"). 1000 keyed messages with
 * CloudEvents headers are consumed exactly once and in order per key; a consumer that commits,
 * stops and restarts with the same group id resumes after its committed offsets.
 * stack: devbus
 * labels: kafka
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_metrics.h"

#define KEYS     20
#define PER_KEY  50
#define TOTAL    (KEYS * PER_KEY)
#define FIRST    600 /* messages the first consumer run processes and commits */
#define SOURCE   "/it/producer-consumer"
#define TYPE     "sb.test.pc.v1"
#define TRACEPAR "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

extern char **environ;

static const char *const consumer_conf[] = { "session.timeout.ms", "4000", "heartbeat.interval.ms",
	                                     "1000", NULL };

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "%s is not set: run under tests/lib/with-stack.sh\n", name);
		exit(2);
	}
	return v;
}

/* --- the consumer process ---------------------------------------------------------------- */

/* consume GROUP TOPIC LIMIT DRAIN_MS OUT: processes and commits LIMIT messages (writing
 * "key seq ce_id ce_type ce_specversion content-type ce_time traceparent" per message to OUT),
 * then keeps consuming DRAIN_MS more (recording anything extra), then leaves the group. */
static int
consumer_main(char **argv)
{
	const char *group = argv[2], *topic = argv[3], *path = argv[6];
	int limit = atoi(argv[4]), drain = atoi(argv[5]), got = 0;
	const char *const topics[] = { topic, NULL };
	struct sb_kafka_consumer *c = NULL;
	FILE *out = fopen(path, "w");
	long long deadline = now_ms() + 25000, drain_end = 0;

	if (out == NULL)
		return 4;
	sb_log_set_level(SB_LOG_WARN);
	if (sb_kafka_consumer_new(env("SB_TEST_KAFKA_BROKERS"), group, topics, consumer_conf, &c) !=
	    0)
		return 5;
	for (;;) {
		long long now = now_ms();
		if (got >= limit && drain_end == 0)
			drain_end = now + drain;
		if ((drain_end && now >= drain_end) || now > deadline)
			break;
		rd_kafka_message_t *m = sb_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		char id[64], type[64], spec[16], ct[64], tm[64], tp[128];
		if (sb_kafka_header(m, "ce_id", id, sizeof(id)) < 0)
			snprintf(id, sizeof(id), "-");
		if (sb_kafka_header(m, "ce_type", type, sizeof(type)) < 0)
			snprintf(type, sizeof(type), "-");
		if (sb_kafka_header(m, "ce_specversion", spec, sizeof(spec)) < 0)
			snprintf(spec, sizeof(spec), "-");
		if (sb_kafka_header(m, "content-type", ct, sizeof(ct)) < 0)
			snprintf(ct, sizeof(ct), "-");
		if (sb_kafka_header(m, "ce_time", tm, sizeof(tm)) < 0)
			snprintf(tm, sizeof(tm), "-");
		if (sb_kafka_header(m, "traceparent", tp, sizeof(tp)) < 0)
			snprintf(tp, sizeof(tp), "-");
		fprintf(out, "%.*s %.*s %s %s %s %s %s %s\n", (int)m->key_len, (const char *)m->key,
		        (int)m->len, (const char *)m->payload, id, type, spec, ct, tm, tp);
		fflush(out);
		int cr = sb_kafka_consumer_commit(c, m);
		rd_kafka_message_destroy(m);
		if (cr != 0)
			return 6;
		got++;
	}
	sb_kafka_consumer_close(c);
	fclose(out);
	return got >= limit ? 0 : 3;
}

/* --- the test process -------------------------------------------------------------------- */

static pid_t
spawn_consumer(const char *group, const char *topic, int limit, int drain_ms, const char *out)
{
	char lim[16], dr[16];
	pid_t pid;
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(dr, sizeof(dr), "%d", drain_ms);
	char *const argv[] = { "kafka_producer_consumer_test",
		               "consume",
		               (char *)group,
		               (char *)topic,
		               lim,
		               dr,
		               (char *)out,
		               NULL };
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0)
		return -1;
	return pid;
}

/* wait_child waits up to timeout_ms for pid and returns its exit status (killing it, and
 * returning -1, if it is still running then). */
static int
wait_child(pid_t pid, int timeout_ms)
{
	int st;
	long long deadline = now_ms() + timeout_ms;
	while (now_ms() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

struct delivery {
	atomic_int ok;
	atomic_int failed;
};

static void
on_delivery(int err, const char *errstr, void *opaque)
{
	struct delivery *d = opaque;
	if (err == 0)
		atomic_fetch_add(&d->ok, 1);
	else {
		fprintf(stderr, "delivery failed: %s\n", errstr);
		atomic_fetch_add(&d->failed, 1);
	}
}

/* read_run adds the lines of one consumer run to seen[key][seq] and next[key] (per-key order);
 * returns the number of lines. */
static int
read_run(const char *path, int seen[KEYS][PER_KEY], int next[KEYS])
{
	char key[16], val[32], id[64], type[64], spec[16], ct[64], tm[64], tp[128], want[64];
	int lines = 0;
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fscanf(f, "%15s %31s %63s %63s %15s %63s %63s %127s", key, val, id, type, spec, ct,
	              tm, tp) == 8) {
		int k, s;
		lines++;
		assert_int_equal(sscanf(key, "k%d", &k), 1);
		assert_int_equal(sscanf(val, "k%*d:%d", &s), 1);
		assert_true(k >= 0 && k < KEYS && s >= 0 && s < PER_KEY);
		seen[k][s]++;
		/* in order per key, across both runs */
		assert_int_equal(s, next[k]);
		next[k] = s + 1;
		snprintf(want, sizeof(want), "evt-%d-%d", k, s);
		assert_string_equal(id, want);
		assert_string_equal(type, TYPE);
		assert_string_equal(spec, "1.0");
		assert_string_equal(ct, SB_KAFKA_CONTENT_TYPE_DEFAULT);
		assert_int_equal(strlen(tm), 24);
		assert_string_equal(tp, TRACEPAR);
	}
	fclose(f);
	return lines;
}

static void
test_exactly_once_per_key_and_resume(void **state)
{
	(void)state;
	const char *brokers = env("SB_TEST_KAFKA_BROKERS");
	char topic[64], group[64], cmd[128], reply[256], out1[512], out2[512], detail[64];
	struct delivery d = { 0, 0 };
	struct sb_kafka_producer *p = NULL;

	snprintf(topic, sizeof(topic), "it.pc.%d", (int)getpid());
	snprintf(group, sizeof(group), "it-pc-%d-%lld", (int)getpid(), now_ms());
	snprintf(out1, sizeof(out1), "%s/pc-run1.txt", env("SB_TEST_TMP"));
	snprintf(out2, sizeof(out2), "%s/pc-run2.txt", env("SB_TEST_TMP"));
	snprintf(cmd, sizeof(cmd), "create %s 6", topic);
	assert_int_equal(
	    sb_kafka_devbus_ctl(env("SB_TEST_DEVBUS_CTL"), cmd, 5000, reply, sizeof(reply)), 0);

	/* The consumer joins its group while we produce. */
	pid_t c1 = spawn_consumer(group, topic, FIRST, 0, out1);
	assert_true(c1 > 0);

	assert_int_equal(sb_kafka_producer_new(brokers, NULL, &p), 0);
	for (int i = 0; i < TOTAL; i++) {
		int k = i % KEYS, s = i / KEYS;
		char key[16], val[32], id[64];
		snprintf(key, sizeof(key), "k%d", k);
		snprintf(val, sizeof(val), "k%d:%d", k, s);
		snprintf(id, sizeof(id), "evt-%d-%d", k, s);
		struct sb_cloudevent ce = { .id = id,
			                    .source = SOURCE,
			                    .type = TYPE,
			                    .subject = key,
			                    .traceparent = TRACEPAR };
		assert_int_equal(sb_kafka_produce(p, topic, key, strlen(key), val, strlen(val), &ce,
		                                  on_delivery, &d),
		                 0);
	}
	assert_int_equal(sb_kafka_flush(p, 20000), 0);
	assert_int_equal(atomic_load(&d.ok), TOTAL);
	assert_int_equal(atomic_load(&d.failed), 0);
	assert_int_equal(sb_kafka_ping(sb_kafka_producer_handle(p), 5000, detail, sizeof(detail)),
	                 0);
	assert_string_equal(detail, "3 brokers");
	sb_kafka_producer_free(p);
	/* What /metrics shows for this topic: 1000 ok, 1000 delivery times. */
	struct sb_metric *produced = sb_metrics_counter("kafka_produced_total", "", "topic,result");
	struct sb_metric *latency =
	    sb_metrics_histogram("kafka_delivery_seconds", "", "topic", NULL, 0);
	assert_true(sb_series_value(sb_metric_with(produced, topic, "ok")) == TOTAL);
	assert_true(sb_series_value(sb_metric_with(produced, topic, "error")) == 0);
	assert_true(sb_series_value(sb_metric_with(latency, topic)) == TOTAL);

	assert_int_equal(wait_child(c1, 30000), 0);
	/* Same group again: it must start after the 600 committed messages. */
	pid_t c2 = spawn_consumer(group, topic, TOTAL - FIRST, 2000, out2);
	assert_true(c2 > 0);
	assert_int_equal(wait_child(c2, 30000), 0);

	static int seen[KEYS][PER_KEY];
	int next[KEYS] = { 0 };
	memset(seen, 0, sizeof(seen));
	assert_int_equal(read_run(out1, seen, next), FIRST);
	assert_int_equal(read_run(out2, seen, next), TOTAL - FIRST);
	for (int k = 0; k < KEYS; k++) {
		assert_int_equal(next[k], PER_KEY);
		for (int s = 0; s < PER_KEY; s++)
			assert_int_equal(seen[k][s], 1);
	}
}

/* The devbus path of sb_kafka_ensure_topics: every topic exists, so it returns at once. A topic
 * that does not exist cannot be created on the mock (no CreateTopics): a clear error naming it,
 * within the time given. */
static void
test_ensure_topics(void **state)
{
	(void)state;
	const char *brokers = env("SB_TEST_KAFKA_BROKERS");
	const char *const platform[] = { "sb.messages.v1",
		                         "sb.messages.v1.dlq",
		                         "sb.conversations.v1",
		                         "sb.files.v1",
		                         "sb.file-merge.v1",
		                         "sb.notifier.webhooks.v1.dlq",
		                         NULL };
	char err[256], missing[64];
	const char *const absent[] = { missing, NULL };

	long long t0 = now_ms();
	assert_int_equal(sb_kafka_ensure_topics(brokers, platform, 6, 1, 5000, err, sizeof(err)),
	                 0);
	assert_true(now_ms() - t0 < 2000);

	snprintf(missing, sizeof(missing), "it.missing.%d", (int)getpid());
	t0 = now_ms();
	int r = sb_kafka_ensure_topics(brokers, absent, 3, 1, 2000, err, sizeof(err));
	long long took = now_ms() - t0;
	fprintf(stderr, "ensure_topics(missing) = %s after %lld ms: %s\n", sb_strerror(r), took,
	        err);
	assert_true(took <= 2000 + 1000);
	if (r != 0)
		assert_non_null(strstr(err, missing));
	else /* a mock that learnt CreateTopics: then the topic must now be there */
		assert_int_equal(
		    sb_kafka_ensure_topics(brokers, absent, 3, 1, 2000, err, sizeof(err)), 0);
}

int
main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "consume") == 0)
		return consumer_main(argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exactly_once_per_key_and_resume),
		cmocka_unit_test(test_ensure_topics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
