/* notifier_events_test.c: the real sb-notifier against PostgreSQL, Redis and the run's Apache
 * Kafka broker (topics and group under this test's SB_KAFKA_TOPIC_PREFIX).
 * stack: pg,redis,kafka
 * labels: notifier
 *
 * Events are produced to sb.messages.v1 as the outbox relay does (protobuf payload, CloudEvents
 * headers, key = conversation id) and the test, subscribed to conv:* and user:*, checks the
 * exact bytes published: one Redis message per contract channel, never twice for one ce_id.
 * Then notifier.Delivered moves watermarks forward only and publishes message.delivered to the
 * sender only when they moved; a notifier stopped after committing resumes without loss. The
 * consumer works in batches: events queued while it was down are handled in batches, each
 * published once and in order per conversation, and the group's committed offsets reach the
 * number of records, also at shutdown; a batch slow to queue its webhook deliveries holds back
 * the batches after it (published and committed in poll order); with Redis frozen nothing is
 * committed past the last handled event, and everything follows once it is back; a notifier killed
 * with SIGKILL in the middle of a stream and started again publishes every event exactly once (what
 * it had handled but not committed is delivered again and deduplicated).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "events/messages_events.pb-c.h"
#include "notifier.pb-c.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_rpc.h"

#include "notifier_harness.h"
#include "sb_util_uuid.h"

#define CONV   "0b6c7e1a-1111-4a4a-8a8a-000000000001"
#define TENANT "t-events"
#define T0     1700000000123LL

struct t_ctx {
	struct it_proc p; /* the notifier */
	char group[64];
	char topic[256];    /* sb.messages.v1 with the prefix */
	char commit_ms[16]; /* SB_NOTIFIER_COMMIT_INTERVAL_MS of the next start */
	struct sb_kafka_producer *prod;
	redisContext *sub;
	PGconn *db;
	atomic_int produced; /* records produced to sb.messages.v1 */
	pid_t frozen;        /* Redis while SIGSTOPped (thawed in teardown if a test fails) */
};
static struct t_ctx T;

/* t_start runs sb-notifier and waits for its Health RPC. */
static void
t_start(void)
{
	char commit[64];
	snprintf(commit, sizeof(commit), "SB_NOTIFIER_COMMIT_INTERVAL_MS=%s", T.commit_ms);
	const char *const env[] = { commit, NULL };
	nh_start(&T.p, T.group, env);
}

/* t_stop sends SIGTERM and expects a clean exit within 10 s. */
static void
t_stop(void)
{
	nh_stop(&T.p);
}

/* t_produce_to produces one event of conversation conv (its key); flush waits for it. */
static void
t_produce_to(const char *conv, const char *ce_id, const char *type, const ProtobufCMessage *m,
             bool flush)
{
	uint8_t buf[4096];
	char src[160];
	size_t n = protobuf_c_message_pack(m, buf);
	snprintf(src, sizeof(src), "/tenants/" TENANT "/conversations/%s", conv);
	struct sb_cloudevent ce = { .id = ce_id, .source = src, .type = type };
	assert_int_equal(
	    sb_kafka_produce(T.prod, T.topic, conv, strlen(conv), buf, n, &ce, NULL, NULL), 0);
	if (flush)
		assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
	atomic_fetch_add(&T.produced, 1);
}

static void
t_produce(const char *ce_id, const char *type, const ProtobufCMessage *m)
{
	t_produce_to(CONV, ce_id, type, m, true);
}

static void
t_msg_created(const char *ce_id, int64_t seq, const char *content)
{
	Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
	char mid[64];
	snprintf(mid, sizeof(mid), "7a000000-0000-4000-8000-%012lld", (long long)seq);
	e.message_id = mid;
	e.conversation_id = CONV;
	e.tenant_id = TENANT;
	e.sender_id = "alice";
	e.seq = seq;
	e.content = (char *)content;
	e.content_type = "text/plain";
	e.metadata_json = "{\"k\": [1, 2]}";
	e.created_at_ms = T0 + seq;
	t_produce(ce_id, "io.switchboard.message.created.v1", &e.base);
}

static void
t_read_event(const char *ce_id, int64_t up_to)
{
	Sb__Events__ConversationRead e = SB__EVENTS__CONVERSATION_READ__INIT;
	e.conversation_id = CONV;
	e.tenant_id = TENANT;
	e.user_id = "bob";
	e.up_to_seq = up_to;
	e.read_at_ms = T0 + 1000;
	t_produce(ce_id, "io.switchboard.conversation.read.v1", &e.base);
}

/* t_expect reads the next published message within ms and checks channel and bytes. */
static void
t_expect(const char *channel, const char *payload, int ms)
{
	redisReply *r = NULL;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	redisSetTimeout(T.sub, tv);
	if (redisGetReply(T.sub, (void **)&r) != REDIS_OK || r == NULL)
		fail_msg("nothing published within %d ms (expected %s on %s)", ms, payload,
		         channel);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 4);
	assert_string_equal(r->element[2]->str, channel);
	if (r->element[3]->len != strlen(payload) ||
	    memcmp(r->element[3]->str, payload, strlen(payload)))
		fail_msg("on %s got\n%s\nwant\n%s", channel, r->element[3]->str, payload);
	assert_memory_equal(r->element[3]->str, payload, strlen(payload));
	freeReplyObject(r);
}

static void
t_subscribe(void)
{
	const char *url = it_env("SB_TEST_REDIS_URL");
	int port = atoi(strrchr(url, ':') + 1);
	T.sub = redisConnect("127.0.0.1", port);
	assert_non_null(T.sub);
	assert_int_equal(T.sub->err, 0);
	redisReply *r = redisCommand(T.sub, "PSUBSCRIBE conv:* user:*");
	assert_non_null(r);
	freeReplyObject(r);
	assert_int_equal(redisGetReply(T.sub, (void **)&r), REDIS_OK); /* second ack */
	freeReplyObject(r);
}

static int
setup(void **state)
{
	(void)state;
	char err[256];
	sb_log_set_level(SB_LOG_WARN);
	snprintf(T.group, sizeof(T.group), "it-notifier-%d", (int)getpid());
	snprintf(T.commit_ms, sizeof(T.commit_ms), "200");
	it_kafka_name("sb.messages.v1", T.topic, sizeof(T.topic));
	/* Auto topic creation is off on the broker: the topic exists before anything is produced
	 * (the notifier would create it too, with the same settings). */
	const struct sb_kafka_topic_spec spec = { T.topic, 6, -1, 0 };
	assert_int_equal(sb_kafka_ensure_topics(it_env("SB_TEST_KAFKA_BROKERS"), &spec, 1, 15000,
	                                        err, sizeof(err)),
	                 0);
	assert_int_equal(sb_kafka_producer_new(it_env("SB_TEST_KAFKA_BROKERS"), NULL, &T.prod), 0);
	t_subscribe();
	t_start();
	T.db = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	assert_int_equal(PQstatus(T.db), CONNECTION_OK);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (T.frozen > 0)
		kill(T.frozen, SIGCONT);
	t_stop();
	sb_kafka_producer_free(T.prod);
	redisFree(T.sub);
	PQfinish(T.db);
	return 0;
}

/* t_mc_frame writes the expected Redis message of t_msg_created(seq, content) whose content
 * is given here already JSON-escaped. */
static const char *
t_mc_frame(int seq, const char *json_content)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf),
	         "%d %lld\n{\"type\":\"message.created\",\"conversation_id\":\"" CONV
	         "\",\"seq\":%d,\"message\":{\"id\":\"7a000000-0000-4000-8000-%012d\","
	         "\"sender_id\":\"alice\",\"content\":\"%s\",\"content_type\":\"text/plain\","
	         "\"metadata\":{\"k\":[1,2]},\"created_at\":\"2023-11-14T22:13:20.%03dZ\"}}",
	         seq, T0 + seq, seq, seq, json_content, 123 + seq);
	return buf;
}

/* Each event type reaches its contract channels once, with the exact header and frame. */
static void
test_events_published_once(void **state)
{
	(void)state;
	t_msg_created("ce-mc-1", 1, "say \"hi\"\n\\ \xc3\xa9");
	/* the first event also waits for the group join */
	t_expect("conv:" CONV, t_mc_frame(1, "say \\\"hi\\\"\\n\\\\ \xc3\xa9"), 15000);

	t_read_event("ce-read-1", 1);
	t_expect("conv:" CONV,
	         "0 1700000001123\n{\"type\":\"conversation.read\",\"conversation_id\":\"" CONV
	         "\",\"user_id\":\"bob\",\"up_to_seq\":1}",
	         5000);

	Sb__Events__ConversationCreated cc = SB__EVENTS__CONVERSATION_CREATED__INIT;
	char *members[] = { "alice", "bob" };
	cc.conversation_id = CONV;
	cc.tenant_id = TENANT;
	cc.kind = "group";
	cc.title = "T\xc3\xa9";
	cc.member_ids = members;
	cc.n_member_ids = 2;
	cc.created_at_ms = T0;
	t_produce("ce-cc-1", "io.switchboard.conversation.created.v1", &cc.base);
	const char *ccf = "0 1700000000123\n{\"type\":\"conversation.created\",\"conversation_id\":"
	                  "\"" CONV "\",\"kind\":\"group\",\"title\":\"T\xc3\xa9\",\"member_ids\":"
	                  "[\"alice\",\"bob\"]}";
	t_expect("user:alice", ccf, 5000);
	t_expect("user:bob", ccf, 5000);

	Sb__Events__MembersChanged mc = SB__EVENTS__MEMBERS_CHANGED__INIT;
	char *added[] = { "carol" }, *removed[] = { "bob" };
	mc.conversation_id = CONV;
	mc.tenant_id = TENANT;
	mc.added = added;
	mc.n_added = 1;
	mc.removed = removed;
	mc.n_removed = 1;
	mc.changed_at_ms = T0 + 5;
	t_produce("ce-mch-1", "io.switchboard.conversation.members_changed.v1", &mc.base);
	t_expect("user:carol",
	         "0 1700000000128\n{\"type\":\"conversation.joined\",\"conversation_id\":\"" CONV
	         "\"}",
	         5000);
	t_expect("user:bob",
	         "0 1700000000128\n{\"type\":\"conversation.left\",\"conversation_id\":\"" CONV
	         "\"}",
	         5000);
	t_expect("conv:" CONV,
	         "0 1700000000128\n{\"type\":\"members.changed\",\"conversation_id\":\"" CONV
	         "\",\"added\":[\"carol\"],\"removed\":[\"bob\"]}",
	         5000);

	/* A redelivery (same ce_id) is not published again: the next message seen is the one
	 * produced after it. A malformed record is skipped without stopping the consumer. */
	t_msg_created("ce-mc-1", 1, "say \"hi\"\n\\ \xc3\xa9");
	const char junk[] = "\xff\xff\xff";
	struct sb_cloudevent ce = { .id = "ce-junk",
		                    .source = "/x",
		                    .type = "io.switchboard.message.created.v1" };
	assert_int_equal(
	    sb_kafka_produce(T.prod, T.topic, CONV, strlen(CONV), junk, 3, &ce, NULL, NULL), 0);
	atomic_fetch_add(&T.produced, 1);
	t_read_event("ce-read-2", 2);
	t_expect("conv:" CONV,
	         "0 1700000001123\n{\"type\":\"conversation.read\",\"conversation_id\":\"" CONV
	         "\",\"user_id\":\"bob\",\"up_to_seq\":2}",
	         5000);
}

static int
t_delivered(const char *user, int64_t seq, const char *sender)
{
	Sb__Notifier__Delivery d = SB__NOTIFIER__DELIVERY__INIT, *items[] = { &d };
	Sb__Notifier__DeliveredRequest req = SB__NOTIFIER__DELIVERED_REQUEST__INIT;
	struct sb_rpc_result res;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	d.conversation_id = CONV;
	d.user_id = (char *)user;
	d.seq = seq;
	d.sender_id = (char *)sender;
	req.items = items;
	req.n_items = 1;
	assert_int_equal(sb_rpc_call(T.p.cli, "notifier.Delivered", &req.base,
	                             &sb__notifier__delivered_response__descriptor, &meta, &res),
	                 0);
	int code = res.code;
	sb_rpc_result_free(&res);
	return code;
}

static long long
t_watermark(const char *user)
{
	const char *p[] = { CONV, user };
	PGresult *r = PQexecParams(T.db,
	                           "SELECT last_delivered_seq FROM notifier.deliveries "
	                           "WHERE conversation_id = $1 AND user_id = $2",
	                           2, NULL, p, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	long long v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* t_expect_delivered checks the next message is message.delivered for user up to seq. */
static void
t_expect_delivered(const char *user, int seq)
{
	redisReply *r = NULL;
	char want[256];
	struct timeval tv = { 5, 0 };
	redisSetTimeout(T.sub, tv);
	assert_int_equal(redisGetReply(T.sub, (void **)&r), REDIS_OK);
	assert_string_equal(r->element[2]->str, "user:alice");
	const char *p = r->element[3]->str, *nl = strchr(p, '\n');
	assert_non_null(nl);
	assert_int_equal(strncmp(p, "0 ", 2), 0); /* seq 0, then the publish time in ms */
	assert_true(atoll(p + 2) > T0);
	snprintf(want, sizeof(want),
	         "{\"type\":\"message.delivered\",\"conversation_id\":\"" CONV
	         "\",\"seq\":%d,\"user_id\":\"%s\"}",
	         seq, user);
	assert_string_equal(nl + 1, want);
	freeReplyObject(r);
}

/* Watermarks move forward only; the sender hears of it only when one moved. */
static void
test_delivered_watermarks(void **state)
{
	(void)state;
	assert_int_equal(t_delivered("bob", 5, "alice"), SB__RPC__CODE__OK);
	t_expect_delivered("bob", 5);
	assert_int_equal(t_watermark("bob"), 5);
	assert_int_equal(t_delivered("bob", 3, "alice"), SB__RPC__CODE__OK); /* backwards */
	assert_int_equal(t_delivered("bob", 5, "alice"), SB__RPC__CODE__OK); /* same */
	assert_int_equal(t_watermark("bob"), 5);
	assert_int_equal(t_delivered("alice", 9, "alice"), SB__RPC__CODE__OK); /* own message */
	assert_int_equal(t_watermark("alice"), 9);
	assert_int_equal(t_delivered("bob", 6, "alice"), SB__RPC__CODE__OK);
	t_expect_delivered("bob", 6); /* nothing was published in between */
	assert_int_equal(t_watermark("bob"), 6);
	assert_int_equal(t_delivered("bob", 0, "alice"), SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_delivered("", 7, "alice"), SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_watermark("bob"), 6);
}

/* t_delivered_batch sends n reports (users[i], seqs[i]) of sender alice in ONE call. */
static int
t_delivered_batch(const char *const *users, const int64_t *seqs, size_t n)
{
	Sb__Notifier__Delivery d[8], *items[8];
	Sb__Notifier__DeliveredRequest req = SB__NOTIFIER__DELIVERED_REQUEST__INIT;
	struct sb_rpc_result res;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		sb__notifier__delivery__init(&d[i]);
		d[i].conversation_id = CONV;
		d[i].user_id = (char *)users[i];
		d[i].seq = seqs[i];
		d[i].sender_id = "alice";
		items[i] = &d[i];
	}
	req.items = items;
	req.n_items = n;
	assert_int_equal(sb_rpc_call(T.p.cli, "notifier.Delivered", &req.base,
	                             &sb__notifier__delivered_response__descriptor, &meta, &res),
	                 0);
	int code = res.code;
	sb_rpc_result_free(&res);
	return code;
}

/* Several reports in one call, applied by one statement: the watermark of each pair is its
 * highest seq, and the sender hears of every report above the watermark the pair had before,
 * in the order of the reports (a new pair starts at 0); reports at or below it say nothing. */
static void
test_delivered_batch(void **state)
{
	(void)state;
	long long bob0 = t_watermark("bob");
	const char *const u1[] = { "bob", "bob", "bob", "carol" };
	const int64_t s1[] = { bob0 + 2, bob0 + 4, bob0 + 1, 4 };
	assert_int_equal(t_delivered_batch(u1, s1, 4), SB__RPC__CODE__OK);
	t_expect_delivered("bob", (int)(bob0 + 2));
	t_expect_delivered("bob", (int)(bob0 + 4));
	t_expect_delivered("bob", (int)(bob0 + 1));
	t_expect_delivered("carol", 4);
	assert_int_equal(t_watermark("bob"), bob0 + 4);
	assert_int_equal(t_watermark("carol"), 4);
	/* At or below the watermark: nothing; above it: only that one. */
	const char *const u2[] = { "bob", "carol", "bob" };
	const int64_t s2[] = { bob0 + 3, 4, bob0 + 5 };
	assert_int_equal(t_delivered_batch(u2, s2, 3), SB__RPC__CODE__OK);
	t_expect_delivered("bob", (int)(bob0 + 5));
	assert_int_equal(t_watermark("bob"), bob0 + 5);
	assert_int_equal(t_watermark("carol"), 4);
	/* One bad report refuses the whole call: nothing applied. */
	const char *const u3[] = { "bob", "" };
	const int64_t s3[] = { bob0 + 9, 1 };
	assert_int_equal(t_delivered_batch(u3, s3, 2), SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_watermark("bob"), bob0 + 5);
	/* The next publication is the one of this call, not a stray one from before. */
	const char *const u4[] = { "bob" };
	const int64_t s4[] = { bob0 + 6 };
	assert_int_equal(t_delivered_batch(u4, s4, 1), SB__RPC__CODE__OK);
	t_expect_delivered("bob", (int)(bob0 + 6));
}

/* committed offsets of the notifier's group (the prefix and SB_NOTIFIER_GROUP) over every
 * partition of sb.messages.v1: the number of records handled and committed */
static long long
t_committed(void)
{
	char err[256], group[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", it_env("SB_TEST_KAFKA_BROKERS"), err,
	                  sizeof(err));
	rd_kafka_conf_set(conf, "group.id", it_kafka_name(T.group, group, sizeof(group)), err,
	                  sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	assert_non_null(rk);
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, T.topic, NULL);
	assert_int_equal(rd_kafka_metadata(rk, 0, t, &md, 5000), 0);
	assert_int_equal(md->topics[0].err, 0);
	assert_int_equal(md->topics[0].partition_cnt, 6);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, T.topic, md->topics[0].partitions[i].id);
	assert_int_equal(rd_kafka_committed(rk, l, 5000), 0);
	long long sum = 0;
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset > 0)
			sum += l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	return sum;
}

/* Offsets are committed after handling; a restarted notifier resumes where it stopped. */
static void
test_restart_resumes(void **state)
{
	(void)state;
	t_stop();
	/* every record produced so far was handled, then committed (at the latest at close) */
	assert_int_equal(t_committed(), T.produced);
	t_msg_created("ce-mc-2", 2, "while down 2");
	t_msg_created("ce-mc-3", 3, "while down 3");
	t_start();
	t_expect("conv:" CONV, t_mc_frame(2, "while down 2"), 15000);
	t_expect("conv:" CONV, t_mc_frame(3, "while down 3"), 5000);
	for (int64_t until = it_now_ms() + 5000;
	     t_committed() != T.produced && it_now_ms() < until;)
		it_sleep_ms(200);
	assert_int_equal(t_committed(), T.produced);
}

/* --- batches, commits and crashes ---------------------------------------------------------- */

/* t_conv writes the id of conversation c of the set base ("3333": one set per test). */
static void
t_conv(const char *base, int c, char *out, size_t n)
{
	snprintf(out, n, "0b6c7e1a-%s-4a4a-8a8a-%012d", base, c);
}

/* t_mc_tenant produces message.created seq of conversation c of set base (ce_id names both)
 * for tenant (an event without tenant has no webhook deliveries to queue). */
static void
t_mc_tenant(const char *base, int c, int seq, const char *tenant, bool flush)
{
	Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
	char conv[64], mid[64], ce_id[96], content[64];
	t_conv(base, c, conv, sizeof(conv));
	snprintf(mid, sizeof(mid), "7a000000-%s-4000-8000-%05d%07d", base, c, seq);
	snprintf(ce_id, sizeof(ce_id), "ce-%s-%d-%d", base, c, seq);
	snprintf(content, sizeof(content), "message %d of %d", seq, c);
	e.message_id = mid;
	e.conversation_id = conv;
	e.tenant_id = (char *)tenant;
	e.sender_id = "alice";
	e.seq = seq;
	e.content = content;
	e.content_type = "text/plain";
	e.created_at_ms = T0 + seq;
	t_produce_to(conv, ce_id, "io.switchboard.message.created.v1", &e.base, flush);
}

static void
t_mc_in(const char *base, int c, int seq, bool flush)
{
	t_mc_tenant(base, c, seq, TENANT, flush);
}

/* What the subscriber saw of one set of conversations. */
#define T_MAX_CONVS 8
struct t_stream {
	const char *base;
	int nconv;
	long long last[T_MAX_CONVS]; /* last seq published, per conversation */
	int total;
};

/* t_stream_read reads publications until s->total reaches want, within ms. Each must be the
 * next seq of its conversation: a seq published twice, out of order or skipped fails. */
static void
t_stream_read(struct t_stream *s, int want, int ms)
{
	char prefix[80];
	snprintf(prefix, sizeof(prefix), "conv:0b6c7e1a-%s-4a4a-8a8a-", s->base);
	for (int64_t until = it_now_ms() + ms; s->total < want;) {
		int64_t left = until - it_now_ms();
		redisReply *r = NULL;
		if (left <= 0)
			fail_msg("only %d of %d events published within %d ms", s->total, want, ms);
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
		redisSetTimeout(T.sub, tv);
		if (redisGetReply(T.sub, (void **)&r) != REDIS_OK || r == NULL)
			fail_msg("only %d of %d events published within %d ms", s->total, want, ms);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_int_equal(r->elements, 4);
		const char *ch = r->element[2]->str;
		if (strncmp(ch, prefix, strlen(prefix)) != 0)
			fail_msg("unexpected publication on %s: %s", ch, r->element[3]->str);
		int c = atoi(ch + strlen(prefix));
		assert_true(c >= 0 && c < s->nconv);
		long long seq = atoll(r->element[3]->str);
		if (seq != s->last[c] + 1)
			fail_msg(
			    "conversation %d: seq %lld published after seq %lld (twice, out of "
			    "order or one lost)",
			    c, seq, s->last[c]);
		s->last[c] = seq;
		s->total++;
		freeReplyObject(r);
	}
}

/* t_wait_committed waits up to ms for the group's committed offsets to reach want. */
static long long
t_wait_committed(long long want, int ms)
{
	long long got = t_committed();
	for (int64_t until = it_now_ms() + ms; got != want && it_now_ms() < until;
	     got = t_committed())
		it_sleep_ms(100);
	return got;
}

/* Events queued while the notifier was down are handled in batches: each published once, in
 * order per conversation; the committed offsets reach the number of records. */
static void
test_batches_published_once_in_order(void **state)
{
	(void)state;
	enum { CONVS = 6, PER = 100 };
	struct t_stream s = { .base = "3333", .nconv = CONVS };
	t_stop();
	for (int seq = 1; seq <= PER; seq++)
		for (int c = 0; c < CONVS; c++)
			t_mc_in(s.base, c, seq, false);
	assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
	t_start();
	t_stream_read(&s, CONVS * PER, 20000);
	assert_int_equal(t_wait_committed(atomic_load(&T.produced), 5000),
	                 atomic_load(&T.produced));
	assert_int_equal(nh_metric(&T.p, "notifier_events_total{type=\"message.created\","
	                                 "result=\"published\"}"),
	                 CONVS * PER);
	/* handled in batches: fewer batches than events, at least one of more than one event */
	double batches = nh_metric(&T.p, "notifier_batch_events_count");
	double singles = nh_metric(&T.p, "notifier_batch_events_bucket{le=\"1\"}");
	assert_true(batches >= 1 && batches < CONVS * PER);
	assert_true(batches - singles >= 1);
}

/* What was handled is committed at shutdown (the final revoke), not only every commit interval:
 * with a 60 s interval nothing is committed while running, everything once stopped. */
static void
test_handled_committed_at_shutdown(void **state)
{
	(void)state;
	enum { CONVS = 2, PER = 25 };
	struct t_stream s = { .base = "6666", .nconv = CONVS };
	t_stop();
	long long before = t_committed();
	assert_int_equal(before, atomic_load(&T.produced));
	snprintf(T.commit_ms, sizeof(T.commit_ms), "60000");
	t_start();
	for (int seq = 1; seq <= PER; seq++)
		for (int c = 0; c < CONVS; c++)
			t_mc_in(s.base, c, seq, false);
	assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
	t_stream_read(&s, CONVS * PER, 20000);
	it_sleep_ms(500);
	assert_int_equal(t_committed(), before); /* handled, not committed yet */
	t_stop();
	assert_int_equal(t_committed(), atomic_load(&T.produced));
	snprintf(T.commit_ms, sizeof(T.commit_ms), "200");
	t_start();
}

/* Batches are published, and their offsets stored, in the order they were polled, even when
 * a later batch is queued for webhooks (in parallel, SB_NOTIFIER_ENQUEUE_CONNS) before an
 * earlier one: here the first event's statement waits on a table lock this test holds, while
 * the events after it, without tenant (no statement), are done at once. */
static void
test_slow_batch_holds_back_later_ones(void **state)
{
	(void)state;
	enum { PER = 10 };
	struct t_stream s = { .base = "7777", .nconv = 1 };
	const char *published = "notifier_events_total{type=\"message.created\","
	                        "result=\"published\"}";
	long long handled = atomic_load(&T.produced);
	assert_int_equal(t_wait_committed(handled, 5000), handled);
	double pub0 = nh_metric(&T.p, published);
	PGresult *r = PQexec(T.db, "BEGIN; LOCK TABLE notifier.webhook_deliveries IN SHARE MODE");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	t_mc_tenant(s.base, 0, 1, TENANT, true);
	it_sleep_ms(1000); /* the notifier has it: its statement waits for the lock */
	for (int seq = 2; seq <= PER; seq++)
		t_mc_tenant(s.base, 0, seq, "", seq == PER);
	it_sleep_ms(1500);
	assert_true(nh_metric(&T.p, published) == pub0);
	assert_int_equal(t_committed(), handled);
	r = PQexec(T.db, "COMMIT");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	t_stream_read(&s, PER, 20000);
	assert_int_equal(t_wait_committed(atomic_load(&T.produced), 5000),
	                 atomic_load(&T.produced));
}

static pid_t
t_redis_pid(void)
{
	char path[512];
	long pid = 0;
	snprintf(path, sizeof(path), "%s/redis/redis.pid", it_env("SB_TEST_TMP"));
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	assert_true(pid > 1);
	return (pid_t)pid;
}

/* t_thaw lets a frozen Redis run again (also after a failed test). */
static int
t_thaw(void **state)
{
	(void)state;
	if (T.frozen > 0)
		kill(T.frozen, SIGCONT);
	T.frozen = 0;
	return 0;
}

/* With Redis frozen the notifier cannot handle the new events: it retries, and nothing is
 * committed past the last event it handled. Once Redis is back, everything follows, once. */
static void
test_redis_frozen_nothing_committed_past(void **state)
{
	(void)state;
	enum { CONVS = 2, PER = 10 };
	struct t_stream s = { .base = "4444", .nconv = CONVS };
	long long handled = atomic_load(&T.produced);
	assert_int_equal(t_wait_committed(handled, 5000), handled);
	const char *published = "notifier_events_total{type=\"message.created\","
	                        "result=\"published\"}";
	double retries = nh_metric(&T.p, "notifier_batch_retries_total");
	double pub0 = nh_metric(&T.p, published);

	T.frozen = t_redis_pid();
	assert_int_equal(kill(T.frozen, SIGSTOP), 0);
	for (int seq = 1; seq <= PER; seq++)
		for (int c = 0; c < CONVS; c++)
			t_mc_in(s.base, c, seq, false);
	assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
	/* the notifier has the events and fails on Redis (command timeout 2 s)... */
	for (int64_t until = it_now_ms() + 15000;
	     nh_metric(&T.p, "notifier_batch_retries_total") <= retries && it_now_ms() < until;)
		it_sleep_ms(100);
	assert_true(nh_metric(&T.p, "notifier_batch_retries_total") > retries);
	/* ...and commits nothing past what it handled, over many commit intervals */
	it_sleep_ms(1500);
	assert_int_equal(t_committed(), handled);
	assert_true(nh_metric(&T.p, published) == pub0);

	assert_int_equal(kill(T.frozen, SIGCONT), 0);
	T.frozen = 0;
	t_stream_read(&s, CONVS * PER, 20000);
	assert_int_equal(t_wait_committed(atomic_load(&T.produced), 5000),
	                 atomic_load(&T.produced));
}

struct t_prod_arg {
	const char *base;
	int nconv, first, per;
};

/* t_producer produces the stream (about 5,000 events/s); no cmocka assertion off the main
 * thread: an error is left in t_prod_err. */
static atomic_int t_prod_err;
static void *
t_producer(void *arg)
{
	const struct t_prod_arg *a = arg;
	for (int seq = a->first; seq <= a->per; seq++) {
		for (int c = 0; c < a->nconv; c++) {
			Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
			char conv[64], mid[64], ce_id[96];
			uint8_t buf[512];
			t_conv(a->base, c, conv, sizeof(conv));
			snprintf(mid, sizeof(mid), "7a000000-%s-4000-8000-%05d%07d", a->base, c,
			         seq);
			snprintf(ce_id, sizeof(ce_id), "ce-%s-%d-%d", a->base, c, seq);
			e.message_id = mid;
			e.conversation_id = conv;
			e.tenant_id = TENANT;
			e.sender_id = "alice";
			e.seq = seq;
			e.content = "stream";
			e.content_type = "text/plain";
			e.created_at_ms = T0 + seq;
			size_t n = protobuf_c_message_pack(&e.base, buf);
			struct sb_cloudevent ce = { .id = ce_id,
				                    .source = "/tenants/" TENANT,
				                    .type = "io.switchboard.message.created.v1" };
			if (sb_kafka_produce(T.prod, T.topic, conv, strlen(conv), buf, n, &ce, NULL,
			                     NULL) != 0)
				atomic_store(&t_prod_err, 1);
			else
				atomic_fetch_add(&T.produced, 1);
		}
		it_sleep_ms(1);
	}
	if (sb_kafka_flush(T.prod, 15000) != 0)
		atomic_store(&t_prod_err, 2);
	return NULL;
}

/* A notifier killed (SIGKILL) in the middle of a stream, and started again: every event is
 * published exactly once. What it handled but had not committed is delivered again and
 * deduplicated (a long commit interval makes sure there is some). */
static void
test_kill9_midstream_exactly_once(void **state)
{
	(void)state;
	enum { CONVS = 6, PER = 1000 };
	struct t_stream s = { .base = "5555", .nconv = CONVS };
	struct t_prod_arg a = { s.base, CONVS, 2, PER };
	pthread_t th;
	t_stop();
	snprintf(T.commit_ms, sizeof(T.commit_ms), "5000");
	t_start();
	/* seq 1 of each conversation first: the notifier has its partitions before the stream */
	for (int c = 0; c < CONVS; c++)
		t_mc_in(s.base, c, 1, c == CONVS - 1);
	t_stream_read(&s, CONVS, 20000);
	int produced0 = atomic_load(&T.produced);
	assert_int_equal(pthread_create(&th, NULL, t_producer, &a), 0);
	t_stream_read(&s, 1500, 30000);
	assert_int_equal(it_stop(&T.p, SIGKILL, 10000), 128 + SIGKILL);
	int produced_at_kill = atomic_load(&T.produced) - produced0;
	snprintf(T.commit_ms, sizeof(T.commit_ms), "200");
	t_start();
	t_stream_read(&s, CONVS * PER, 60000);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&t_prod_err), 0);
	/* the kill came in the middle of the stream */
	if (produced_at_kill >= CONVS * (PER - 1))
		fail_msg("the stream was over (%d events) before the kill", produced_at_kill);
	assert_int_equal(t_wait_committed(atomic_load(&T.produced), 10000),
	                 atomic_load(&T.produced));
	/* the restarted notifier received again events handled before the kill, and published
	 * none of them a second time (t_stream_read fails on a second publication) */
	assert_true(nh_metric(&T.p, "notifier_events_total{type=\"message.created\","
	                            "result=\"duplicate\"}") >= 1);
	/* nothing is left over: one second more brings no publication */
	redisReply *r = NULL;
	struct timeval tv = { 1, 0 };
	redisSetTimeout(T.sub, tv);
	if (redisGetReply(T.sub, (void **)&r) == REDIS_OK && r != NULL)
		fail_msg("extra publication on %s: %s", r->element[2]->str, r->element[3]->str);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_published_once),
		cmocka_unit_test(test_delivered_watermarks),
		cmocka_unit_test(test_delivered_batch),
		cmocka_unit_test(test_restart_resumes),
		cmocka_unit_test(test_batches_published_once_in_order),
		cmocka_unit_test(test_handled_committed_at_shutdown),
		cmocka_unit_test(test_slow_batch_holds_back_later_ones),
		cmocka_unit_test_teardown(test_redis_frozen_nothing_committed_past, t_thaw),
		cmocka_unit_test(test_kill9_midstream_exactly_once),
	};
	if (getenv("SB_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("SB_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
