/* outbox_crash_test.c: the relay (build/bin/sb-outbox) is killed with SIGKILL in the middle
 * of relaying 10,000 rows of 50 aggregates and started again. Every row reaches Kafka, in order
 * per aggregate; the only copies are rows sent again after the crash, with the same ce_id and
 * payload.
 * stack: pg,kafka
 * labels: outbox,sanitize
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

#define ROWS 10000
#define AGGS 50

static void
test_kill_9_and_restart(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	struct it_check k;
	/* Small batches so that the kill lands in the middle of the run. */
	const char *const extra[] = { "SB_OUTBOX_BATCH_SIZE=100", NULL };

	it_exec(c, it_ddl);
	it_relay_start(&relay, "relay1", extra);
	assert_true(it_wait_metric(&relay, "outbox_shards_held", 64, 10000));
	for (int i = 0; i < 20; i++) {
		it_insert(c, ROWS / 20, AGGS, 0, 32);
		it_exec(c, "NOTIFY sb_outbox");
	}
	/* Kill it once some, but not all, rows are relayed. */
	long long done = 0, end = it_now_ms() + 20000;
	while (it_now_ms() < end && (done = it_scalar(c, "SELECT count(*) FROM messages.outbox "
	                                                 "WHERE relayed_at IS NOT NULL")) < 1000)
		usleep(5000);
	assert_int_equal(it_relay_stop(&relay, SIGKILL), 128 + SIGKILL);
	done = it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS NOT NULL");
	fprintf(stderr, "killed with %lld of %d rows marked relayed\n", done, ROWS);
	assert_true(done >= 1000 && done < ROWS);

	it_relay_start(&relay, "relay2", extra);
	assert_int_equal(it_wait_relayed(c, 40000), 0);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);

	it_check_load(c, &k, NULL);
	assert_int_equal(k.n, ROWS);
	assert_int_equal(k.naggs, AGGS);
	it_consume(&k, IT_TOPIC, 40000);
	assert_int_equal(k.distinct, ROWS);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.bad_dup, 0);
	assert_int_equal(k.unknown, 0);
	free(k.rows);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_9_and_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
