/* outbox_retention_test.c: the relay deletes relayed rows older than SB_OUTBOX_RETENTION_S
 * (in chunks, on start and then periodically) and keeps younger relayed rows and every
 * unrelayed row, however old.
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
test_old_relayed_rows_are_deleted(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	const char *const extra[] = { "SB_OUTBOX_RETENTION_S=86400", NULL };

	it_exec(c, it_ddl);
	/* 2500 rows relayed 2 days ago (more than one 1000-row chunk), 10 relayed an hour ago. */
	it_insert(c, 2500, 10, 0, 8);
	it_exec(c, "UPDATE messages.outbox SET relayed_at = now() - interval '2 days', created_at "
	           "= now() - interval '2 days'");
	it_insert(c, 10, 10, 0, 8);
	it_exec(c, "UPDATE messages.outbox SET relayed_at = now() - interval '1 hour' WHERE "
	           "relayed_at IS NULL");
	it_relay_start(&relay, "relay", extra);
	long long left = -1, end = it_now_ms() + 15000;
	while (it_now_ms() < end &&
	       (left = it_scalar(c, "SELECT count(*) FROM messages.outbox")) != 10)
		usleep(100000);
	assert_int_equal(left, 10);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at > "
	                              "now() - interval '2 hours'"),
	                 10);
	assert_true(it_wait_metric(&relay, "outbox_gc_deleted_total", 2500, 5000));
	/* Unrelayed rows are never deleted, whatever their age, and get relayed. */
	it_insert(c, 5, 5, 100, 8);
	it_exec(c, "UPDATE messages.outbox SET created_at = now() - interval '3 days' WHERE "
	           "relayed_at IS NULL; NOTIFY sb_outbox");
	assert_int_equal(it_wait_relayed(c, 10000), 0);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox"), 15);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

/* With SB_OUTBOX_GC=false the relay leaves old relayed rows to sb-gc (docs/gc.md): it relays
 * and maintains its leases as before, and deletes nothing. */
static void
test_switched_off_keeps_rows(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	const char *const extra[] = { "SB_OUTBOX_RETENTION_S=86400", "SB_OUTBOX_GC=false",
		                      "SB_OUTBOX_LEASE_INTERVAL_MS=200", NULL };

	it_exec(c, it_ddl);
	it_exec(c, "TRUNCATE messages.outbox");
	it_insert(c, 20, 10, 0, 8);
	it_exec(c, "UPDATE messages.outbox SET relayed_at = now() - interval '2 days', created_at "
	           "= now() - interval '2 days'");
	it_relay_start(&relay, "relay", extra);
	it_insert(c, 5, 5, 100, 8);
	it_exec(c, "NOTIFY sb_outbox");
	assert_int_equal(it_wait_relayed(c, 10000), 0);
	usleep(1500000); /* several maintenance rounds (every 200 ms) */
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at < "
	                              "now() - interval '1 day'"),
	                 20);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_old_relayed_rows_are_deleted),
		cmocka_unit_test(test_switched_off_keeps_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
