/* Tests of sb_util_breaker: every transition, with a fake clock; and concurrent use. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "sb_err.h"
#include "sb_util_breaker.h"

static int64_t
fake_now(void *arg)
{
	return *(int64_t *)arg;
}

static int64_t clock_ms;

static void
setup_breaker(struct sb_breaker *b, uint32_t threshold, uint32_t open_ms, uint32_t trials)
{
	struct sb_breaker_opts o = { threshold, open_ms, trials, fake_now, &clock_ms };
	clock_ms = 1000;
	assert_int_equal(sb_breaker_init(b, &o), 0);
}

static void
test_init_rejects_bad_options(void **state)
{
	(void)state;
	struct sb_breaker b;
	struct sb_breaker_opts o = { 0, 100, 1, NULL, NULL };
	assert_int_equal(sb_breaker_init(&b, &o), SB_EINVAL);
	o.failure_threshold = 3;
	o.open_ms = 0;
	assert_int_equal(sb_breaker_init(&b, &o), SB_EINVAL);
	o.open_ms = 100;
	o.half_open_trials = 0;
	assert_int_equal(sb_breaker_init(&b, &o), SB_EINVAL);
	assert_int_equal(sb_breaker_init(&b, NULL), SB_EINVAL);
	o.half_open_trials = 1; /* NULL clock: the real monotonic one */
	assert_int_equal(sb_breaker_init(&b, &o), 0);
	assert_true(sb_breaker_allow(&b));
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	sb_breaker_fini(&b);
}

static void
test_closed_opens_after_consecutive_failures(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 3, 500, 1);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	/* Two failures, a success: the count starts over. */
	for (int i = 0; i < 2; i++) {
		assert_true(sb_breaker_allow(&b));
		sb_breaker_failure(&b);
	}
	assert_true(sb_breaker_allow(&b));
	sb_breaker_success(&b);
	for (int i = 0; i < 2; i++) {
		assert_true(sb_breaker_allow(&b));
		sb_breaker_failure(&b);
		assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	}
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	assert_string_equal(sb_breaker_state_name(sb_breaker_state(&b)), "open");
	sb_breaker_fini(&b);
}

static void
test_open_rejects_until_cooldown(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 1, 500, 1);
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	for (int i = 0; i < 10; i++)
		assert_false(sb_breaker_allow(&b));
	assert_int_equal(sb_breaker_rejected(&b), 10);
	clock_ms += 499;
	assert_false(sb_breaker_allow(&b));
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	/* Late results of calls allowed before it opened change nothing. */
	sb_breaker_success(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	clock_ms += 1;
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_HALF_OPEN);
	assert_string_equal(sb_breaker_state_name(SB_BREAKER_HALF_OPEN), "half_open");
	sb_breaker_fini(&b);
}

static void
test_half_open_limits_trials_and_closes(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 2, 100, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(sb_breaker_allow(&b));
		sb_breaker_failure(&b);
	}
	clock_ms += 100;
	/* Two trial calls through, the third rejected. */
	assert_true(sb_breaker_allow(&b));
	assert_true(sb_breaker_allow(&b));
	assert_false(sb_breaker_allow(&b));
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_HALF_OPEN);
	sb_breaker_success(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_HALF_OPEN);
	assert_false(sb_breaker_allow(&b));
	sb_breaker_success(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	/* Closed again, with a fresh failure count. */
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	sb_breaker_fini(&b);
}

static void
test_half_open_failure_reopens(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 1, 100, 3);
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	clock_ms += 150;
	assert_true(sb_breaker_allow(&b));
	assert_true(sb_breaker_allow(&b));
	sb_breaker_success(&b);
	sb_breaker_failure(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	/* A new full cool-down from the moment it reopened. */
	clock_ms += 99;
	assert_false(sb_breaker_allow(&b));
	clock_ms += 1;
	assert_true(sb_breaker_allow(&b));
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_HALF_OPEN);
	sb_breaker_fini(&b);
}

static void
test_half_open_abandoned_trials_expire(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 1, 100, 1);
	assert_true(sb_breaker_allow(&b));
	sb_breaker_failure(&b);
	clock_ms += 100;
	assert_true(sb_breaker_allow(&b)); /* a trial whose caller never reports */
	assert_false(sb_breaker_allow(&b));
	clock_ms += 99;
	assert_false(sb_breaker_allow(&b));
	clock_ms += 1;
	assert_true(sb_breaker_allow(&b)); /* the lost trial is given up */
	sb_breaker_success(&b);
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_CLOSED);
	sb_breaker_fini(&b);
}

struct hammer {
	struct sb_breaker *b;
	int allowed;
};

static void *
hammer_thread(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < 20000; i++) {
		if (sb_breaker_allow(h->b)) {
			h->allowed++;
			sb_breaker_failure(h->b);
		}
	}
	return NULL;
}

static void
test_concurrent_failures_open_once(void **state)
{
	(void)state;
	struct sb_breaker b;
	setup_breaker(&b, 50, 1000000, 1); /* the fake clock never moves */
	struct hammer h[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ &b, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	}
	int allowed = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		allowed += h[i].allowed;
	}
	/* Every allowed call failed: at least 50 got through to open it, at most 50 plus the
	 * ones admitted by other threads in the meantime (bounded by the thread count). */
	assert_int_equal(sb_breaker_state(&b), SB_BREAKER_OPEN);
	assert_true(allowed >= 50 && allowed <= 53);
	assert_int_equal(sb_breaker_rejected(&b), 4 * 20000 - allowed);
	sb_breaker_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_options),
		cmocka_unit_test(test_closed_opens_after_consecutive_failures),
		cmocka_unit_test(test_open_rejects_until_cooldown),
		cmocka_unit_test(test_half_open_limits_trials_and_closes),
		cmocka_unit_test(test_half_open_failure_reopens),
		cmocka_unit_test(test_half_open_abandoned_trials_expire),
		cmocka_unit_test(test_concurrent_failures_open_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
