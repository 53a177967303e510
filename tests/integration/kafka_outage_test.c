/* kafka_outage_test.c: a producer keeps producing while each partition leader is taken down
 * in turn through devbus's control port and brought back. Every message is delivered exactly
 * once (consumed and counted), the caller sees no error, and delivery reports during an outage
 * take visibly longer than before it.
 * stack: devbus
 * labels: kafka,sanitize
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "it.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"

#define PARTITIONS  3
#define INTERVAL_MS 4    /* one message every 4 ms */
#define BASELINE_MS 1000 /* producing before the first outage */
#define DOWN_MS     1500 /* each outage */
#define GAP_MS      500  /* after each recovery */
#define MAX_MSGS    4096

struct sent {
	long long at_ms;      /* when produced */
	bool during_outage;   /* produced while a broker was down */
	atomic_int reports;   /* delivery reports received */
	atomic_int err;       /* last report's error */
	atomic_llong latency; /* ms from produce to report */
};

static struct sent sent[MAX_MSGS];

static void
on_delivery(int err, const char *errstr, void *opaque)
{
	struct sent *s = opaque;
	atomic_store(&s->latency, it_now_ms() - s->at_ms);
	atomic_store(&s->err, err);
	atomic_fetch_add(&s->reports, 1);
	if (err)
		fprintf(stderr, "delivery failed: %s\n", errstr);
}

static void
ctl(const char *cmd)
{
	char reply[256];
	int r = sb_kafka_devbus_ctl(it_env("SB_TEST_DEVBUS_CTL"), cmd, 5000, reply, sizeof(reply));
	if (r != 0)
		fprintf(stderr, "devbus ctl %s: %s (%s)\n", cmd, reply, sb_strerror(r));
	assert_int_equal(r, 0);
}

/* leaders fills leader[p] with the broker id leading each partition of topic. */
static void
leaders(struct sb_kafka_producer *p, const char *topic, int leader[PARTITIONS])
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_t *rk = sb_kafka_producer_handle(p);
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	assert_int_equal(rd_kafka_metadata(rk, 0, t, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(md->topic_cnt, 1);
	assert_int_equal(md->topics[0].partition_cnt, PARTITIONS);
	for (int i = 0; i < PARTITIONS; i++)
		leader[md->topics[0].partitions[i].id] = md->topics[0].partitions[i].leader;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
}

/* produce_for produces one message every INTERVAL_MS for ms milliseconds. */
static void
produce_for(struct sb_kafka_producer *p, const char *topic, int ms, bool outage, int *n)
{
	long long end = it_now_ms() + ms;
	while (it_now_ms() < end && *n < MAX_MSGS) {
		char key[16], val[16], id[32];
		int i = (*n)++;
		snprintf(key, sizeof(key), "key-%d", i % 30);
		snprintf(val, sizeof(val), "%d", i);
		snprintf(id, sizeof(id), "evt-%d", i);
		struct sb_cloudevent ce = { .id = id,
			                    .source = "/it/outage",
			                    .type = "sb.test.v1" };
		sent[i].at_ms = it_now_ms();
		sent[i].during_outage = outage;
		/* No error may surface to the caller while a broker is down. */
		assert_int_equal(sb_kafka_produce(p, topic, key, strlen(key), val, strlen(val), &ce,
		                                  on_delivery, &sent[i]),
		                 0);
		usleep(INTERVAL_MS * 1000);
	}
}

static void
test_outage_every_message_once(void **state)
{
	(void)state;
	const char *brokers = it_env("SB_TEST_KAFKA_BROKERS");
	/* Reconnect quickly after an outage so that the test stays short. */
	const char *const conf[] = { "reconnect.backoff.max.ms", "500", NULL };
	const char *const cconf[] = { "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000",
		                      NULL };
	char topic[64], group[64], cmd[128];
	struct sb_kafka_producer *p = NULL;
	int leader[PARTITIONS], n = 0, order[PARTITIONS], norder = 0;

	snprintf(topic, sizeof(topic), "it.outage.%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "create %s %d", topic, PARTITIONS);
	ctl(cmd);
	assert_int_equal(sb_kafka_producer_new(brokers, conf, &p), 0);
	leaders(p, topic, leader);
	/* Each distinct leader once, in partition order. */
	for (int i = 0; i < PARTITIONS; i++) {
		bool dup = false;
		for (int j = 0; j < norder; j++)
			dup = dup || order[j] == leader[i];
		if (!dup)
			order[norder++] = leader[i];
	}

	/* Warm up (connections, producer id), then measure a baseline with every broker up. */
	produce_for(p, topic, 1, false, &n);
	assert_int_equal(sb_kafka_flush(p, 10000), 0);
	int first = n;
	produce_for(p, topic, BASELINE_MS, false, &n);
	long long first_down = it_now_ms();
	for (int k = 0; k < norder; k++) {
		snprintf(cmd, sizeof(cmd), "down %d", order[k]);
		ctl(cmd);
		produce_for(p, topic, DOWN_MS, true, &n);
		snprintf(cmd, sizeof(cmd), "up %d", order[k]);
		ctl(cmd);
		produce_for(p, topic, GAP_MS, false, &n);
	}
	assert_int_equal(sb_kafka_flush(p, 30000), 0);
	sb_kafka_producer_free(p);

	long long base_max = 0, out_max = 0;
	for (int i = 0; i < n; i++) {
		assert_int_equal(atomic_load(&sent[i].reports), 1);
		assert_int_equal(atomic_load(&sent[i].err), 0);
		long long l = atomic_load(&sent[i].latency);
		if (sent[i].during_outage && l > out_max)
			out_max = l;
		if (getenv("DBG") && l > 100)
			fprintf(stderr, "msg %d at +%lld lat %lld outage %d\n", i,
			        sent[i].at_ms - sent[0].at_ms, l, sent[i].during_outage);
		/* baseline: produced and reported before the first broker went down */
		if (i >= first && sent[i].at_ms + l < first_down && l > base_max)
			base_max = l;
	}
	fprintf(stderr,
	        "outage: %d messages, %d brokers taken down in turn; max delivery latency %lld ms "
	        "before the outages, %lld ms during them\n",
	        n, norder, base_max, out_max);
	assert_true(out_max >= DOWN_MS / 2);
	assert_true(out_max > 2 * base_max);

	/* Consume everything: each message exactly once. */
	static int count[MAX_MSGS];
	const char *const topics[] = { topic, NULL };
	struct sb_kafka_consumer *c = NULL;
	int distinct = 0, dups = 0;
	snprintf(group, sizeof(group), "it-outage-%d-%lld", (int)getpid(), (long long)it_now_ms());
	assert_int_equal(sb_kafka_consumer_new(brokers, group, topics, cconf, &c), 0);
	long long deadline = it_now_ms() + 30000, quiet_until = 0;
	while (it_now_ms() < deadline && (quiet_until == 0 || it_now_ms() < quiet_until)) {
		rd_kafka_message_t *m = sb_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		char buf[16];
		snprintf(buf, sizeof(buf), "%.*s", (int)m->len, (const char *)m->payload);
		int i = atoi(buf);
		assert_true(i >= 0 && i < n);
		if (count[i]++ == 0)
			distinct++;
		else
			dups++;
		rd_kafka_message_destroy(m);
		if (distinct == n && quiet_until == 0)
			quiet_until = it_now_ms() + 1000; /* look for late duplicates */
	}
	sb_kafka_consumer_close(c);
	fprintf(stderr, "consumed %d distinct of %d, %d duplicates\n", distinct, n, dups);
	assert_int_equal(dups, 0);
	assert_int_equal(distinct, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outage_every_message_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
