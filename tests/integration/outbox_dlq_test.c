/* outbox_dlq_test.c: a row Kafka keeps refusing (a payload above message.max.bytes, 1 MB by
 * default: refused with MSG_SIZE_TOO_LARGE, the error a broker gives too) is tried
 * SB_OUTBOX_MAX_ATTEMPTS times, then goes to sb.messages.v1.dlq with its ce_id and the error
 * in the sb_error header, is marked relayed with last_error, and the rows after it, of its own
 * aggregate and of others, are relayed.
 * stack: pg,devbus
 * labels: outbox
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

static void
test_rejected_row_goes_to_dlq(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	struct it_check k;
	const char *const extra[] = { "SB_OUTBOX_MAX_ATTEMPTS=3", NULL };

	it_exec(c, it_ddl);
	it_relay_start(&relay, "relay", extra);
	assert_true(it_wait_metric(&relay, "outbox_shards_held", 64, 10000));

	/* Aggregate 1: a good row, the oversized row, then two more good rows; aggregate 2:
	 * three good rows. */
	it_exec(c, "BEGIN");
	it_insert(c, 1, 1, 1, 8);
	it_insert(c, 1, 1, 1, 1500000);
	it_insert(c, 2, 1, 1, 8);
	it_insert(c, 3, 1, 2, 8);
	it_exec(c, "NOTIFY sb_outbox; COMMIT");
	long long big = it_scalar(c, "SELECT id FROM messages.outbox WHERE length(payload) > "
	                             "1000000");

	assert_int_equal(it_wait_relayed(c, 30000), 0);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT attempts FROM messages.outbox WHERE id = %lld AND last_error LIKE "
	         "'%%too large%%'",
	         big);
	PGresult *le = it_sql(c, "SELECT attempts, last_error FROM messages.outbox WHERE "
	                         "last_error IS NOT NULL");
	for (int i = 0; i < PQntuples(le); i++)
		fprintf(stderr, "row with error: attempts %s, last_error \"%s\"\n",
		        PQgetvalue(le, i, 0), PQgetvalue(le, i, 1));
	PQclear(le);
	assert_int_equal(it_scalar(c, sql), 3);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE last_error IS "
	                              "NOT NULL"),
	                 1);
	assert_true(it_wait_metric(&relay, "outbox_dlq_total", 1, 5000));
	assert_int_equal((int)it_metric(&relay, "outbox_rows_relayed_total"), 6);

	/* The main topic has the six good rows, in order per aggregate. */
	snprintf(sql, sizeof(sql), "id <> %lld", big);
	it_check_load(c, &k, sql);
	it_consume(&k, IT_TOPIC, 20000);
	assert_int_equal(k.distinct, 6);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.unknown, 0);
	free(k.rows);

	/* The DLQ has the oversized row, with its error. */
	const char *const cconf[] = { "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000",
		                      NULL };
	const char *const topics[] = { IT_DLQ_TOPIC, NULL };
	struct sb_kafka_consumer *cons = NULL;
	char want_id[40], ce_id[40], err[512], omitted[16];
	PGresult *r = it_sql(c, "SELECT event_id FROM messages.outbox WHERE length(payload) > "
	                        "1000000");
	snprintf(want_id, sizeof(want_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	assert_int_equal(
	    sb_kafka_consumer_new(it_env("SB_TEST_KAFKA_BROKERS"), "it-dlq", topics, cconf, &cons),
	    0);
	int got = 0;
	for (long long end = it_now_ms() + 15000; it_now_ms() < end && got == 0;) {
		rd_kafka_message_t *m = sb_kafka_consumer_poll(cons, 200);
		if (m == NULL)
			continue;
		got++;
		assert_true(sb_kafka_header(m, "ce_id", ce_id, sizeof(ce_id)) > 0);
		assert_string_equal(ce_id, want_id);
		assert_true(sb_kafka_header(m, "sb_error", err, sizeof(err)) > 0);
		fprintf(stderr, "dlq message: ce_id %s sb_error \"%s\" value %zu bytes\n", ce_id,
		        err, m->len);
		assert_non_null(strstr(err, "too large"));
		assert_true(sb_kafka_header(m, "sb_payload_omitted", omitted, sizeof(omitted)) > 0);
		rd_kafka_message_destroy(m);
	}
	sb_kafka_consumer_close(cons);
	assert_int_equal(got, 1);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejected_row_goes_to_dlq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
