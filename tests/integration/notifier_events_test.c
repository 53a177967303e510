/* notifier_events_test.c: the real sb-notifier against PostgreSQL, Redis and devbus. Events are
 * produced to sb.messages.v1 as the outbox relay does (protobuf payload, CloudEvents headers,
 * key = conversation id) and the test, subscribed to conv:* and user:*, checks the exact bytes
 * published: one Redis message per contract channel, never twice for one ce_id. Then
 * notifier.Delivered moves watermarks forward only and publishes message.delivered to the
 * sender only when they moved; and a notifier stopped after committing resumes without loss.
 * stack: pg,redis,devbus
 * labels: notifier
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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
	pid_t pid;
	char rpc[64], group[64];
	struct sb_rpc_client *cli;
	struct sb_kafka_producer *prod;
	redisContext *sub;
	PGconn *db;
	int produced; /* records produced to sb.messages.v1 */
};
static struct t_ctx T;

/* t_start runs sb-notifier and waits for its Health RPC. */
static void
t_start(void)
{
	T.pid = nh_start(T.group, NULL, T.rpc, sizeof(T.rpc), &T.cli);
}

/* t_stop sends SIGTERM and expects a clean exit within 10 s. */
static void
t_stop(void)
{
	sb_rpc_client_free(T.cli);
	T.cli = NULL;
	if (T.pid <= 0)
		return;
	kill(T.pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(T.pid, &st, WNOHANG) == T.pid) {
			T.pid = 0;
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			return;
		}
		t_sleep(50);
	}
	kill(T.pid, SIGKILL);
	waitpid(T.pid, &st, 0);
	T.pid = 0;
	fail_msg("sb-notifier did not stop within 10 s of SIGTERM");
}

static void
t_produce(const char *ce_id, const char *type, const ProtobufCMessage *m)
{
	uint8_t buf[4096];
	size_t n = protobuf_c_message_pack(m, buf);
	struct sb_cloudevent ce = { .id = ce_id,
		                    .source = "/tenants/" TENANT "/conversations/" CONV,
		                    .type = type };
	assert_int_equal(
	    sb_kafka_produce(T.prod, "sb.messages.v1", CONV, strlen(CONV), buf, n, &ce, NULL, NULL),
	    0);
	assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
	T.produced++;
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
	const char *url = t_env("SB_TEST_REDIS_URL");
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
	sb_log_set_level(SB_LOG_WARN);
	snprintf(T.group, sizeof(T.group), "it-notifier-%d", (int)getpid());
	assert_int_equal(sb_kafka_producer_new(t_env("SB_TEST_KAFKA_BROKERS"), NULL, &T.prod), 0);
	t_subscribe();
	t_start();
	T.db = PQconnectdb(t_env("SB_TEST_PG_DSN"));
	assert_int_equal(PQstatus(T.db), CONNECTION_OK);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
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
	/* the first event also waits for the group join (about 3 s on devbus) */
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
	assert_int_equal(sb_kafka_produce(T.prod, "sb.messages.v1", CONV, strlen(CONV), junk, 3,
	                                  &ce, NULL, NULL),
	                 0);
	T.produced++;
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
	assert_int_equal(sb_rpc_call(T.cli, "notifier.Delivered", &req.base,
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

/* committed offsets of the group over every partition of sb.messages.v1 */
static long long
t_committed(void)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("SB_TEST_KAFKA_BROKERS"), err,
	                  sizeof(err));
	rd_kafka_conf_set(conf, "group.id", T.group, err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	assert_non_null(rk);
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, "sb.messages.v1", NULL);
	assert_int_equal(rd_kafka_metadata(rk, 0, t, &md, 5000), 0);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, "sb.messages.v1",
		                                  md->topics[0].partitions[i].id);
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
	/* every record produced so far was handled, then committed (one partition key) */
	assert_int_equal(t_committed(), T.produced);
	t_msg_created("ce-mc-2", 2, "while down 2");
	t_msg_created("ce-mc-3", 3, "while down 3");
	t_start();
	t_expect("conv:" CONV, t_mc_frame(2, "while down 2"), 15000);
	t_expect("conv:" CONV, t_mc_frame(3, "while down 3"), 5000);
	for (int64_t until = t_now() + 5000; t_committed() != T.produced && t_now() < until;)
		t_sleep(200);
	assert_int_equal(t_committed(), T.produced);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_published_once),
		cmocka_unit_test(test_delivered_watermarks),
		cmocka_unit_test(test_restart_resumes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
