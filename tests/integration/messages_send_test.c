/* messages.Send against real PostgreSQL: 100 concurrent sends into one conversation get seq
 * 1..100 without gaps and are committed several per transaction; history returns them in seq
 * order; a repeated id or idempotency key answers the original result and writes nothing;
 * every message has its MessageCreated outbox row with a payload that unpacks.
 * stack: pg
 * labels: messages
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "messages_harness.h"

#define N_SENDS 100

static struct h_svc svc;
static char conv[SB_UUID_STR_LEN + 1];

struct sender {
	int idx;
	int code;
	int64_t seq;
};

static void *
send_one(void *arg)
{
	struct sender *s = arg;
	char content[32];
	snprintf(content, sizeof(content), "message %d", s->idx);
	s->code = h_send(&svc, "t1", "alice", conv, NULL, NULL, content, &s->seq);
	return NULL;
}

/* metric returns the value of the unlabelled metric name, failing when it is not exported. */
static double
metric(const char *name)
{
	double v = it_metric(&svc.p, name);
	if (v < 0)
		fail_msg("cannot read /metrics of sb-messages");
	static char page[1 << 20];
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	if (it_http_get(svc.p.ops_port, "/metrics", page, sizeof(page)) != 200 ||
	    strstr(page, key) == NULL)
		fail_msg("metric %s not exported", name);
	return v;
}

static void
test_concurrent_sends_get_gapless_seqs(void **state)
{
	(void)state;
	char *others[] = { "bob" };
	h_create(&svc, "t1", "alice", "group", others, 1, conv);

	pthread_t th[N_SENDS];
	struct sender s[N_SENDS];
	for (int i = 0; i < N_SENDS; i++) {
		s[i] = (struct sender){ .idx = i };
		assert_int_equal(pthread_create(&th[i], NULL, send_one, &s[i]), 0);
	}
	bool seen[N_SENDS + 1] = { false };
	for (int i = 0; i < N_SENDS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(s[i].code, SB__RPC__CODE__OK);
		assert_true(s[i].seq >= 1 && s[i].seq <= N_SENDS);
		assert_false(seen[s[i].seq]);
		seen[s[i].seq] = true;
	}
	/* Group commit: fewer transactions than sends. */
	double batches = metric("messages_batch_size_count");
	double sent = metric("messages_sent_total");
	assert_true(sent == N_SENDS);
	print_message("%d sends committed in %.0f transactions\n", N_SENDS, batches);
	assert_true(batches < N_SENDS);

	/* History in seq order, in two pages. */
	int64_t next = 1;
	int64_t after = 0;
	for (int page = 0; page < 2; page++) {
		Sb__Messages__ListMessagesRequest req = SB__MESSAGES__LIST_MESSAGES_REQUEST__INIT;
		req.id = conv;
		req.after_seq = after;
		req.limit = 60;
		struct sb_rpc_result res;
		h_call(&svc, "messages.ListMessages", &req.base,
		       &sb__messages__list_messages_response__descriptor, "t1", "bob", &res);
		assert_int_equal(res.code, SB__RPC__CODE__OK);
		Sb__Messages__ListMessagesResponse *r = (void *)res.resp;
		assert_int_equal(r->n_items, page == 0 ? 60 : 40);
		assert_int_equal(r->has_more, page == 0);
		for (size_t i = 0; i < r->n_items; i++) {
			assert_int_equal(r->items[i]->seq, next++);
			assert_string_equal(r->items[i]->sender_id, "alice");
			assert_string_equal(r->items[i]->content_type, "text/plain");
			assert_int_equal(strlen(r->items[i]->created_at), 24);
		}
		after = r->items[r->n_items - 1]->seq;
		sb_rpc_result_free(&res);
	}
	assert_int_equal(next, N_SENDS + 1);
	assert_int_equal(
	    h_sql_ll(&svc, "SELECT last_seq FROM messages.conversations WHERE id = $1", conv, NULL),
	    N_SENDS);
	assert_int_equal(
	    h_sql_ll(&svc,
	             "SELECT count(*) FROM messages.outbox WHERE aggregate_id = $1 AND "
	             "event_type = 'io.switchboard.message.created.v1'",
	             conv, NULL),
	    N_SENDS);
}

static void
test_duplicate_id_returns_original(void **state)
{
	(void)state;
	char id[SB_UUID_STR_LEN + 1];
	struct sb_uuid u;
	sb_uuid_v4(&u);
	sb_uuid_format(&u, id);
	Sb__Messages__SendRequest req = SB__MESSAGES__SEND_REQUEST__INIT;
	req.id = id;
	req.conversation_id = conv;
	req.content = "hello once";
	req.content_type = "text/markdown";
	Sb__Messages__SendRequest__MetadataEntry e =
	    SB__MESSAGES__SEND_REQUEST__METADATA_ENTRY__INIT;
	e.key = "client";
	e.value = "test";
	Sb__Messages__SendRequest__MetadataEntry *ep = &e;
	req.metadata = &ep;
	req.n_metadata = 1;
	struct sb_rpc_result a, b;
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &a);
	assert_int_equal(a.code, SB__RPC__CODE__OK);
	long long rows_before =
	    h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL);
	long long outbox_before =
	    h_sql_ll(&svc, "SELECT count(*) FROM messages.outbox", NULL, NULL);
	req.content = "a retry with other content"; /* still the original answer */
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &b);
	assert_int_equal(b.code, SB__RPC__CODE__OK);
	Sb__Messages__SendResponse *ra = (void *)a.resp, *rb = (void *)b.resp;
	assert_int_equal(a.http_status, 0);   /* the route's 202 */
	assert_int_equal(b.http_status, 200); /* the replay */
	assert_string_equal(ra->id, rb->id);
	assert_int_equal(ra->seq, rb->seq);
	assert_string_equal(ra->created_at, rb->created_at);
	assert_int_equal(h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL),
	                 rows_before);
	assert_int_equal(h_sql_ll(&svc, "SELECT count(*) FROM messages.outbox", NULL, NULL),
	                 outbox_before);
	assert_int_equal(
	    h_sql_ll(&svc,
	             "SELECT count(*) FROM messages.messages WHERE id = $1 AND content "
	             "= 'hello once' AND metadata->>'client' = 'test'",
	             id, NULL),
	    1);
	/* The same id from another member is refused, not answered with alice's message. */
	assert_int_equal(h_send(&svc, "t1", "bob", conv, id, NULL, "mine", NULL),
	                 SB__RPC__CODE__ALREADY_EXISTS);
	sb_rpc_result_free(&a);
	sb_rpc_result_free(&b);
}

static void
test_duplicate_idempotency_key(void **state)
{
	(void)state;
	int64_t s1 = 0, s2 = 0, s3 = 0;
	assert_int_equal(h_send(&svc, "t1", "alice", conv, NULL, "key-1", "first", &s1), 0);
	long long rows = h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL);
	/* a new message id but the same key: the original message */
	assert_int_equal(h_send(&svc, "t1", "alice", conv, NULL, "key-1", "second", &s2), 0);
	assert_int_equal(s1, s2);
	assert_int_equal(h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL),
	                 rows);
	/* the key is per sender: bob's key-1 is a new message */
	assert_int_equal(h_send(&svc, "t1", "bob", conv, NULL, "key-1", "bob's", &s3), 0);
	assert_int_equal(s3, s1 + 1);
}

static void
test_outbox_payloads_unpack(void **state)
{
	(void)state;
	PGresult *r = PQexecParams(svc.db,
	                           "SELECT payload, topic, source, subject, aggregate_type FROM "
	                           "messages.outbox WHERE aggregate_id = $1 AND event_type = "
	                           "'io.switchboard.message.created.v1' ORDER BY id",
	                           1, NULL, (const char *[]){ conv }, NULL, NULL, 1);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_true(PQntuples(r) >= N_SENDS);
	int64_t last = 0;
	char src[128];
	snprintf(src, sizeof(src), "/tenants/t1/conversations/%s", conv);
	for (int i = 0; i < PQntuples(r); i++) {
		Sb__Events__MessageCreated *m = sb__events__message_created__unpack(
		    NULL, (size_t)PQgetlength(r, i, 0), (const uint8_t *)PQgetvalue(r, i, 0));
		assert_non_null(m);
		assert_string_equal(m->conversation_id, conv);
		assert_string_equal(m->tenant_id, "t1");
		/* outbox ids follow seq within the conversation */
		assert_int_equal(m->seq, last + 1);
		last = m->seq;
		assert_memory_equal(PQgetvalue(r, i, 1), "sb.messages.v1", 15);
		assert_memory_equal(PQgetvalue(r, i, 2), src, strlen(src) + 1);
		assert_memory_equal(PQgetvalue(r, i, 3), m->message_id, strlen(m->message_id) + 1);
		sb__events__message_created__free_unpacked(m, NULL);
	}
	PQclear(r);
}

static int
setup(void **state)
{
	(void)state;
	h_start(&svc);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	h_stop(&svc);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_sends_get_gapless_seqs),
		cmocka_unit_test(test_duplicate_id_returns_original),
		cmocka_unit_test(test_duplicate_idempotency_key),
		cmocka_unit_test(test_outbox_payloads_unpack),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
