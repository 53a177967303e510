/* timer_test.c: the deadline heap returns the earliest deadline through inserts, moves (earlier
 * and later) and cancels, in any order, and forgets cancelled deadlines; rt_timers_run fires
 * what is due, earliest first, and the real timer (arm) is moved only when the earliest
 * deadline changes, once per run. No lws, no connection: callbacks only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "realtime.h"

#define N 500

static struct rt_timer tms[N];
static bool set[N];

/* expect_min checks rt_timers_next against a scan of what is set; returns the index or -1. */
static int
expect_min(const struct rt_timers *t)
{
	int best = -1;
	for (int i = 0; i < N; i++)
		if (set[i] && (best < 0 || tms[i].at < tms[best].at))
			best = i;
	assert_int_equal(rt_timers_next(t), best < 0 ? -1 : tms[best].at);
	return best;
}

static void
no_fire(struct rt_timer *tm, void *arg)
{
	(void)tm;
	(void)arg;
	fail_msg("nothing is due");
}

static void
test_order(void **st)
{
	(void)st;
	struct rt_timers t;
	rt_timers_init(&t, no_fire, NULL, NULL);
	srand(7);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rt_timer_set(&t, &tms[i], 1000 + rand() % 100000), 0);
		set[i] = true;
		assert_int_not_equal(tms[i].idx, 0);
	}
	expect_min(&t);
	for (int k = 0; k < 2000; k++) { /* moves both ways and cancels */
		int i = rand() % N;
		if (rand() % 4 == 0) {
			rt_timer_cancel(&t, &tms[i]);
			set[i] = false;
			assert_int_equal(tms[i].idx, 0);
		} else {
			assert_int_equal(rt_timer_set(&t, &tms[i], 1000 + rand() % 100000), 0);
			set[i] = true;
		}
		expect_min(&t);
	}
	/* drain in order, never going back in time */
	int64_t last = -1;
	for (int best; (best = expect_min(&t)) >= 0;) {
		assert_true(tms[best].at >= last);
		last = tms[best].at;
		rt_timer_cancel(&t, &tms[best]);
		set[best] = false;
	}
	assert_int_equal(rt_timers_next(&t), -1);
	rt_timer_cancel(&t, &tms[0]); /* not set: nothing happens */
	rt_timers_free(&t);
}

/* What the callbacks saw. */
static struct {
	int64_t fired[16]; /* deadlines, in firing order */
	int nfired;
	int64_t armed[16]; /* what arm was told, in order */
	int narmed;
	struct rt_timers *t;
} seen;

static void
fire(struct rt_timer *tm, void *arg)
{
	assert_ptr_equal(arg, &seen);
	assert_int_equal(tm->idx, 0); /* unset before its callback */
	seen.fired[seen.nfired++] = tm->at;
	if (tm == &tms[0]) /* a periodic one sets itself again, later */
		assert_int_equal(rt_timer_set(seen.t, tm, tm->at + 100), 0);
	if (tm == &tms[1]) /* one that cancels another that is due too */
		rt_timer_cancel(seen.t, &tms[2]);
}

static void
arm(int64_t at, void *arg)
{
	assert_ptr_equal(arg, &seen);
	seen.armed[seen.narmed++] = at;
}

static void
test_run(void **st)
{
	(void)st;
	struct rt_timers t;
	memset(tms, 0, sizeof(tms));
	memset(&seen, 0, sizeof(seen));
	seen.t = &t;
	rt_timers_init(&t, fire, arm, &seen);
	rt_timer_set(&t, &tms[0], 50);
	rt_timer_set(&t, &tms[3], 70); /* not the earliest: the real timer stays */
	rt_timer_set(&t, &tms[1], 20);
	rt_timer_set(&t, &tms[2], 30);
	assert_int_equal(seen.narmed, 2);
	assert_int_equal(seen.armed[0], 50);
	assert_int_equal(seen.armed[1], 20);
	rt_timer_set(&t, &tms[1], 20); /* unchanged earliest: not told again */
	assert_int_equal(seen.narmed, 2);

	rt_timers_run(&t, 10); /* early wake-up: nothing fires, the timer is armed again */
	assert_int_equal(seen.nfired, 0);
	assert_int_equal(seen.narmed, 3);
	assert_int_equal(seen.armed[2], 20);

	rt_timers_run(&t, 60); /* 20 fires and cancels 30; 50 fires and moves to 150 */
	assert_int_equal(seen.nfired, 2);
	assert_int_equal(seen.fired[0], 20);
	assert_int_equal(seen.fired[1], 50);
	assert_int_equal(tms[2].idx, 0);
	assert_int_equal(seen.narmed, 4); /* once, after the run */
	assert_int_equal(seen.armed[3], 70);

	rt_timer_cancel(&t, &tms[3]);
	assert_int_equal(seen.armed[seen.narmed - 1], 150);
	rt_timer_cancel(&t, &tms[0]);
	assert_int_equal(seen.armed[seen.narmed - 1], -1); /* none left: the timer is stopped */
	int n = seen.narmed;
	rt_timer_cancel(&t, &tms[0]);
	assert_int_equal(seen.narmed, n);
	rt_timers_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
