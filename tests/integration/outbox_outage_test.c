/* outbox_outage_test.c: every devbus broker is taken down through the control port while rows
 * are inserted. The relay keeps running, the lag metric grows, nothing goes to the DLQ and no
 * attempt is counted; when the brokers come back every row arrives, in order per aggregate
 * (copies only with the same ce_id and payload), and the lag returns to 0.
 * stack: pg,devbus
 * labels: outbox
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

#define ROWS_BEFORE 200
#define ROWS_DURING 1000
#define AGGS        20

static void
test_kafka_down_rows_wait(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	struct it_check k;
	const char *const extra[] = { "SB_OUTBOX_LEASE_INTERVAL_MS=200", NULL };

	it_exec(c, it_ddl);
	it_relay_start(&relay, "relay", extra);
	assert_true(it_wait_metric(&relay, "outbox_shards_held", 64, 10000));
	it_insert(c, ROWS_BEFORE, AGGS, 0, 16);
	it_exec(c, "NOTIFY sb_outbox");
	assert_int_equal(it_wait_relayed(c, 15000), 0);

	it_ctl("down 1");
	it_ctl("down 2");
	it_ctl("down 3");
	for (int i = 0; i < 10; i++) {
		it_insert(c, ROWS_DURING / 10, AGGS, 0, 16);
		it_exec(c, "NOTIFY sb_outbox");
		usleep(200000);
	}
	usleep(2500000);
	/* Still running, nothing relayed, lag growing, no DLQ, no attempt counted. */
	assert_true(it_running(&relay));
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
	                              "NULL"),
	                 ROWS_DURING);
	double lag1 = it_metric(&relay, "outbox_relay_lag_seconds");
	usleep(1000000);
	double lag2 = it_metric(&relay, "outbox_relay_lag_seconds");
	fprintf(stderr, "lag with the brokers down: %.2f s, then %.2f s\n", lag1, lag2);
	assert_true(lag1 >= 2.0);
	assert_true(lag2 > lag1);
	assert_int_equal((int)it_metric(&relay, "outbox_dlq_total"), 0);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE attempts > 0 OR "
	                              "last_error IS NOT NULL"),
	                 0);

	it_ctl("up 1");
	it_ctl("up 2");
	it_ctl("up 3");
	long long t0 = it_now_ms();
	assert_int_equal(it_wait_relayed(c, 40000), 0);
	fprintf(stderr, "all rows relayed %lld ms after the brokers came back\n", it_now_ms() - t0);
	assert_true(
	    it_wait_metric(&relay, "outbox_rows_relayed_total", ROWS_BEFORE + ROWS_DURING, 5000));
	/* Lag back to 0 (refreshed every 200 ms). */
	long long end = it_now_ms() + 5000;
	while (it_now_ms() < end && it_metric(&relay, "outbox_relay_lag_seconds") != 0)
		usleep(100000);
	assert_true(it_metric(&relay, "outbox_relay_lag_seconds") == 0);
	assert_int_equal((int)it_metric(&relay, "outbox_dlq_total"), 0);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE last_error IS "
	                              "NOT NULL"),
	                 0);

	it_check_load(c, &k, NULL);
	it_consume(&k, IT_TOPIC, 30000);
	assert_int_equal(k.distinct, ROWS_BEFORE + ROWS_DURING);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.bad_dup, 0);
	assert_int_equal(k.unknown, 0);
	free(k.rows);
	/* Nothing in the DLQ topic either. */
	it_check_load(c, &k, NULL);
	it_consume(&k, IT_DLQ_TOPIC, 6000);
	assert_int_equal(k.distinct + k.unknown, 0);
	free(k.rows);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kafka_down_rows_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
