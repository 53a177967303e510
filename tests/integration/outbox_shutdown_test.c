/* outbox_shutdown_test.c: SIGTERM in the middle of a run. The relay stops taking batches,
 * waits for the reports of the batches in flight and marks them, and exits 0: afterwards
 * exactly the rows marked relayed are on Kafka (none acknowledged but left unmarked), so a
 * restarted relay sends the rest without a single duplicate.
 * stack: pg,kafka
 * labels: outbox
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

#define ROWS 6000
#define AGGS 30

static void
test_sigterm_finishes_batches_in_flight(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	struct it_check k;
	const char *const extra[] = { "SB_OUTBOX_BATCH_SIZE=100", NULL };

	it_exec(c, it_ddl);
	it_relay_start(&relay, "relay1", extra);
	assert_true(it_wait_metric(&relay, "outbox_shards_held", 64, 10000));
	it_insert(c, ROWS, AGGS, 0, 32);
	it_exec(c, "NOTIFY sb_outbox");
	long long end = it_now_ms() + 20000;
	while (it_now_ms() < end && it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE "
	                                         "relayed_at IS NOT NULL") < 1000)
		usleep(5000);
	long long t0 = it_now_ms();
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	long long marked = it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at "
	                                "IS NOT NULL");
	fprintf(stderr, "stopped in %lld ms with %lld of %d rows marked\n", it_now_ms() - t0,
	        marked, ROWS);
	assert_true(marked >= 1000 && marked < ROWS);

	/* On Kafka: exactly the marked rows. */
	it_check_load(c, &k, NULL);
	it_consume(&k, IT_TOPIC, 8000);
	assert_int_equal(k.distinct, marked);
	assert_int_equal(k.dups, 0);
	assert_int_equal(k.bad_order, 0);
	free(k.rows);

	/* A new relay sends the rest, with no duplicate. */
	it_relay_start(&relay, "relay2", extra);
	assert_int_equal(it_wait_relayed(c, 30000), 0);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	it_check_load(c, &k, NULL);
	it_consume(&k, IT_TOPIC, 30000);
	assert_int_equal(k.distinct, ROWS);
	assert_int_equal(k.dups, 0);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.unknown, 0);
	free(k.rows);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm_finishes_batches_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
