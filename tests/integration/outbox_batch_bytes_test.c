/* outbox_batch_bytes_test.c: SB_OUTBOX_BATCH_BYTES bounds a batch by its payload bytes. Rows of
 * 20,000 bytes under a 65,536-byte budget go at most three to a batch, a row larger than the
 * budget goes alone, nothing is skipped or reordered, and a batch cut by the budget counts as
 * full: the next select does not wait SB_OUTBOX_LINGER_MS (set to 1 s here, so twenty
 * lingering batches would take twenty seconds).
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
test_batches_bounded_by_bytes(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	struct it_check k;
	const char *const extra[] = { "SB_OUTBOX_BATCH_BYTES=65536", "SB_OUTBOX_BATCH_SIZE=2000",
		                      "SB_OUTBOX_PIPELINE=1", "SB_OUTBOX_LINGER_MS=1000", NULL };

	it_exec(c, it_ddl);
	/* Two rows larger than the budget, then 60 of 20,000 bytes over 3 aggregates, all
	 * committed before the relay starts. */
	it_insert(c, 2, 1, 500, 100000);
	it_insert(c, 60, 3, 600, 20000);
	long long t0 = it_now_ms();
	it_relay_start(&relay, "relay", extra);
	assert_int_equal(it_wait_relayed(c, 15000), 0);
	long long took = it_now_ms() - t0;
	print_message("62 rows relayed in %lld ms\n", took);
	assert_true(took < 10000);

	double n = it_metric(&relay, "outbox_batch_size_count");
	double sum = it_metric(&relay, "outbox_batch_size_sum");
	double le1 = it_metric(&relay, "outbox_batch_size_bucket{le=\"1\"}");
	double le5 = it_metric(&relay, "outbox_batch_size_bucket{le=\"5\"}");
	print_message("%.0f batches, %.0f rows\n", n, sum);
	assert_true(sum == 62);
	assert_true(n >= 22); /* 2 alone + 60 at most 3 at a time */
	assert_true(le1 >= 2);
	assert_true(le5 == n);

	it_check_load(c, &k, NULL);
	it_consume(&k, IT_TOPIC, 20000);
	assert_int_equal(k.distinct, 62);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.unknown, 0);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	free(k.rows);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batches_bounded_by_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
