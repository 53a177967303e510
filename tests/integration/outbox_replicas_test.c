/* outbox_replicas_test.c: two relay processes at once share the 64 shards (each holds some,
 * together all), both relay rows, every row arrives and no aggregate's events are out of
 * order. Then one stops and the other takes over all shards and relays what follows.
 * stack: pg,kafka
 * labels: outbox
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"

#define ROWS 4000
#define AGGS 40

static void
test_two_relays_share_the_work(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc a, b;
	struct it_check k;
	const char *const extra[] = { "SB_OUTBOX_BATCH_SIZE=100", "SB_OUTBOX_LEASE_INTERVAL_MS=200",
		                      NULL };

	it_exec(c, it_ddl);
	it_relay_start(&a, "relay-a", extra);
	assert_true(it_wait_metric(&a, "outbox_shards_held", 64, 10000));
	it_relay_start(&b, "relay-b", extra);
	/* Fair share: 32 each once b is counted and a has released its surplus. */
	assert_true(it_wait_metric(&b, "outbox_shards_held", 32, 10000));
	double ha = it_metric(&a, "outbox_shards_held"), hb = it_metric(&b, "outbox_shards_held");
	fprintf(stderr, "shards held: a %.0f, b %.0f\n", ha, hb);
	assert_true(ha == 32 && hb == 32);

	for (int i = 0; i < 10; i++) {
		it_insert(c, ROWS / 10, AGGS, 0, 32);
		it_exec(c, "NOTIFY sb_outbox");
		usleep(50000);
	}
	assert_int_equal(it_wait_relayed(c, 30000), 0);
	double ra = it_metric(&a, "outbox_rows_relayed_total");
	double rb = it_metric(&b, "outbox_rows_relayed_total");
	fprintf(stderr, "rows relayed: a %.0f, b %.0f\n", ra, rb);
	assert_true(ra > 0 && rb > 0);
	assert_true(ra + rb == ROWS);

	/* b leaves; a takes every shard again and relays the next rows. */
	assert_int_equal(it_relay_stop(&b, SIGTERM), 0);
	assert_true(it_wait_metric(&a, "outbox_shards_held", 64, 10000));
	it_insert(c, 400, AGGS, 0, 32);
	it_exec(c, "NOTIFY sb_outbox");
	assert_int_equal(it_wait_relayed(c, 20000), 0);

	it_check_load(c, &k, NULL);
	it_consume(&k, IT_TOPIC, 40000);
	assert_int_equal(k.distinct, ROWS + 400);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.bad_dup, 0);
	assert_int_equal(k.unknown, 0);
	free(k.rows);
	assert_int_equal(it_relay_stop(&a, SIGTERM), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_relays_share_the_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
