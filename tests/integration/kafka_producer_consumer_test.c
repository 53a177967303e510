/* kafka_producer_consumer_test.c: an idempotent producer (this process) and a consumer group
 * (a separate process: this executable re-run as "consume"). 1000 keyed messages with
 * CloudEvents headers are consumed exactly once and in order per key; a consumer that commits,
 * stops and restarts with the same group id resumes after its committed offsets.
 * Also: sb_kafka_ensure_topics creates topics with the partitions and retention asked for, and
 * leaves an existing topic alone. Against the run's shared Apache Kafka broker.
 * stack: kafka
 * labels: kafka
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "it.h"

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
	long long deadline = it_now_ms() + 25000, drain_end = 0;

	if (out == NULL)
		return 4;
	sb_log_set_level(SB_LOG_WARN);
	if (sb_kafka_consumer_new(it_env("SB_TEST_KAFKA_BROKERS"), group, topics, consumer_conf,
	                          &c) != 0)
		return 5;
	for (;;) {
		long long now = it_now_ms();
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
	long long deadline = it_now_ms() + timeout_ms;
	while (it_now_ms() < deadline) {
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
	const char *brokers = it_env("SB_TEST_KAFKA_BROKERS");
	char topic[64], group[64], out1[512], out2[512], detail[64], err[256];
	struct delivery d = { 0, 0 };
	struct sb_kafka_producer *p = NULL;

	snprintf(topic, sizeof(topic), "%sit.pc", it_env("SB_TEST_KAFKA_PREFIX"));
	snprintf(group, sizeof(group), "%sit-pc", it_env("SB_TEST_KAFKA_PREFIX"));
	snprintf(out1, sizeof(out1), "%s/pc-run1.txt", it_env("SB_TEST_TMP"));
	snprintf(out2, sizeof(out2), "%s/pc-run2.txt", it_env("SB_TEST_TMP"));
	const struct sb_kafka_topic_spec spec = { topic, 6, -1, 0 };
	assert_int_equal(sb_kafka_ensure_topics(brokers, &spec, 1, 10000, err, sizeof(err)), 0);

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
	assert_string_equal(detail, "1 brokers"); /* the shared test broker */
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

/* topic_config reads one config value of a topic with DescribeConfigs into buf. */
static int
topic_config(const char *brokers, const char *topic, const char *key, char *buf, size_t n)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		return -1;
	rd_kafka_ConfigResource_t *res =
	    rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	int found = -1;
	rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
	if (ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		size_t rcnt = 0, ccnt = 0;
		const rd_kafka_ConfigResource_t **rr = rd_kafka_DescribeConfigs_result_resources(
		    rd_kafka_event_DescribeConfigs_result(ev), &rcnt);
		const rd_kafka_ConfigEntry_t **ce =
		    rcnt == 1 ? rd_kafka_ConfigResource_configs(rr[0], &ccnt) : NULL;
		for (size_t i = 0; i < ccnt; i++) {
			if (strcmp(rd_kafka_ConfigEntry_name(ce[i]), key) == 0) {
				snprintf(buf, n, "%s", rd_kafka_ConfigEntry_value(ce[i]));
				found = 0;
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_ConfigResource_destroy(res);
	rd_kafka_destroy(rk);
	return found;
}

/* partitions_of returns the partition count of topic from the cluster metadata (-1: absent). */
static int
partitions_of(const char *brokers, const char *topic)
{
	char errstr[256];
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	int cnt = -1;
	if (rk != NULL &&
	    rd_kafka_metadata(rk, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
				cnt = md->topics[i].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	if (rk)
		rd_kafka_destroy(rk);
	return cnt;
}

/* sb_kafka_ensure_topics on a real broker: missing topics are created with the partitions and
 * retention.ms asked for; a second call finds them and changes nothing (an existing topic is
 * not altered, even when asked for other settings). */
static void
test_ensure_topics(void **state)
{
	(void)state;
	const char *brokers = it_env("SB_TEST_KAFKA_BROKERS");
	char a[128], b[128], err[256], val[64];
	snprintf(a, sizeof(a), "%sit.ensure.a", it_env("SB_TEST_KAFKA_PREFIX"));
	snprintf(b, sizeof(b), "%sit.ensure.a.dlq", it_env("SB_TEST_KAFKA_PREFIX"));
	const struct sb_kafka_topic_spec specs[] = { { a, 4, -1, 3600000 }, { b, 2, 1, -1 } };

	assert_int_equal(partitions_of(brokers, a), -1);
	assert_int_equal(sb_kafka_ensure_topics(brokers, specs, 2, 10000, err, sizeof(err)), 0);
	assert_int_equal(partitions_of(brokers, a), 4);
	assert_int_equal(partitions_of(brokers, b), 2);
	assert_int_equal(topic_config(brokers, a, "retention.ms", val, sizeof(val)), 0);
	assert_string_equal(val, "3600000");
	assert_int_equal(topic_config(brokers, b, "retention.ms", val, sizeof(val)), 0);
	assert_string_equal(val, "-1");

	const struct sb_kafka_topic_spec other[] = { { a, 8, -1, 1000 } };
	long long t0 = it_now_ms();
	assert_int_equal(sb_kafka_ensure_topics(brokers, other, 1, 10000, err, sizeof(err)), 0);
	assert_true(it_now_ms() - t0 < 2000);
	assert_int_equal(partitions_of(brokers, a), 4);
	assert_int_equal(topic_config(brokers, a, "retention.ms", val, sizeof(val)), 0);
	assert_string_equal(val, "3600000");

	/* A replication factor the cluster cannot give: a clear error naming the topic. */
	char c[128];
	snprintf(c, sizeof(c), "%sit.ensure.rf9", it_env("SB_TEST_KAFKA_PREFIX"));
	const struct sb_kafka_topic_spec rf9[] = { { c, 1, 9, 0 } };
	assert_int_not_equal(sb_kafka_ensure_topics(brokers, rf9, 1, 10000, err, sizeof(err)), 0);
	fprintf(stderr, "ensure_topics(rf 9): %s\n", err);
	assert_non_null(strstr(err, c));
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
