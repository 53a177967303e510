/* outbox_gap_test.c: the commit-order gap. A transaction takes a lower outbox id and commits
 * only after a row with a higher id has been relayed; the relay must still relay the lower
 * one (it selects unrelayed rows, never above a high-water mark).
 * stack: pg,kafka
 * labels: outbox
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

static void
test_late_commit_is_relayed(void **state)
{
	(void)state;
	PGconn *setup = it_pg(), *slow = it_pg();
	struct it_proc relay;
	struct it_check k;

	it_exec(setup, it_ddl);
	it_relay_start(&relay, "relay", NULL);
	assert_true(it_wait_metric(&relay, "outbox_shards_held", 64, 10000));

	/* The slow transaction takes the lower id and keeps it uncommitted. */
	it_exec(slow, "BEGIN");
	it_insert(slow, 1, 1, 100, 8);
	long long low = it_scalar(slow, "SELECT max(id) FROM messages.outbox");
	/* A later transaction gets a higher id and commits at once; the relay sends it. */
	it_insert(setup, 1, 1, 200, 8);
	it_exec(setup, "NOTIFY sb_outbox");
	long long high = it_scalar(setup, "SELECT max(id) FROM messages.outbox");
	assert_true(high > low);
	assert_int_equal(it_wait_relayed(setup, 10000), 0);
	assert_int_equal(it_scalar(setup, "SELECT count(*) FROM messages.outbox"), 1);

	/* Now the lower id becomes visible. */
	it_exec(slow, "NOTIFY sb_outbox");
	it_exec(slow, "COMMIT");
	assert_int_equal(it_wait_relayed(setup, 10000), 0);
	assert_int_equal(it_scalar(setup, "SELECT count(*) FROM messages.outbox WHERE relayed_at "
	                                  "IS NOT NULL"),
	                 2);

	/* Both are on Kafka. */
	it_check_load(setup, &k, NULL);
	it_consume(&k, IT_TOPIC, 20000);
	assert_int_equal(k.distinct, 2);
	assert_int_equal(k.unknown, 0);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	free(k.rows);
	PQfinish(slow);
	PQfinish(setup);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_late_commit_is_relayed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
