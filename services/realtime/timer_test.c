/* timer_test.c: the connection deadline heap returns the earliest deadline through inserts,
 * moves (earlier and later) and cancels, in any order, and forgets cancelled connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "realtime.h"

#define N 500

static struct rt_conn conns[N];
static bool set[N];

/* expect_min checks rt_timer_next against a scan of what is set; returns the index or -1. */
static int
expect_min(void)
{
	int best = -1;
	for (int i = 0; i < N; i++)
		if (set[i] && (best < 0 || conns[i].timer_at < conns[best].timer_at))
			best = i;
	assert_int_equal(rt_timer_next(), best < 0 ? -1 : conns[best].timer_at);
	return best;
}

static void
test_order(void **st)
{
	(void)st;
	srand(7);
	for (int i = 0; i < N; i++) {
		rt_timer_set(&conns[i], 1000 + rand() % 100000);
		set[i] = true;
		assert_int_not_equal(conns[i].timer_idx, 0);
	}
	expect_min();
	for (int k = 0; k < 2000; k++) { /* moves both ways and cancels */
		int i = rand() % N;
		if (rand() % 4 == 0) {
			rt_timer_cancel(&conns[i]);
			set[i] = false;
			assert_int_equal(conns[i].timer_idx, 0);
		} else {
			rt_timer_set(&conns[i], 1000 + rand() % 100000);
			set[i] = true;
		}
		expect_min();
	}
	/* drain in order, as rt_timer_fire does, never going back in time */
	int64_t last = -1;
	for (int best; (best = expect_min()) >= 0;) {
		assert_true(conns[best].timer_at >= last);
		last = conns[best].timer_at;
		rt_timer_cancel(&conns[best]);
		set[best] = false;
	}
	assert_int_equal(rt_timer_next(), -1);
	rt_timer_cancel(&conns[0]); /* not set: nothing happens */
	rt_timer_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
