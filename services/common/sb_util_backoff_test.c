/* Tests of sb_util_backoff: ceilings, bounds, growth, jitter spread, overflow, reset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb_util_backoff.h"

static void
test_ceiling_doubles_then_saturates(void **state)
{
	(void)state;
	struct sb_backoff b;
	sb_backoff_init(&b, 100, 5000);
	static const uint32_t want[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(b.attempt, i);
		assert_int_equal(sb_backoff_ceiling(&b), want[i]);
		assert_true(sb_backoff_next(&b) <= want[i]);
	}
}

static void
test_overflow_safe(void **state)
{
	(void)state;
	static const uint32_t attempts[] = {
		20, 21, 22, 31, 32, 33, 63, 64, 65, 1000, UINT32_MAX - 1, UINT32_MAX
	};
	struct sb_backoff b;
	sb_backoff_init(&b, 1000, 60000);
	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		b.attempt = attempts[i];
		assert_int_equal(sb_backoff_ceiling(&b), 60000);
		for (int j = 0; j < 100; j++) {
			b.attempt = attempts[i];
			assert_true(sb_backoff_next(&b) <= 60000);
		}
	}
	/* The attempt count saturates instead of wrapping back to the base. */
	b.attempt = UINT32_MAX;
	sb_backoff_next(&b);
	assert_int_equal(b.attempt, UINT32_MAX);
	assert_int_equal(sb_backoff_ceiling(&b), 60000);

	/* Largest values: the product exceeds 32 bits. */
	sb_backoff_init(&b, 3, UINT32_MAX);
	b.attempt = 31;
	assert_int_equal(sb_backoff_ceiling(&b), UINT32_MAX);
	b.attempt = 30;
	assert_int_equal(sb_backoff_ceiling(&b), 3u << 30);
	sb_backoff_init(&b, UINT32_MAX, UINT32_MAX);
	for (uint32_t a = 0; a < 70; a++) {
		b.attempt = a;
		assert_int_equal(sb_backoff_ceiling(&b), UINT32_MAX);
	}
	/* base above max: max wins from the first attempt. */
	sb_backoff_init(&b, 10000, 500);
	assert_int_equal(sb_backoff_ceiling(&b), 500);
	assert_true(sb_backoff_next(&b) <= 500);
	/* Zero base: never waits. */
	sb_backoff_init(&b, 0, 500);
	for (int i = 0; i < 50; i++)
		assert_int_equal(sb_backoff_next(&b), 0);
	b.attempt = UINT32_MAX;
	assert_int_equal(sb_backoff_ceiling(&b), 0);
}

static void
test_full_jitter_is_uniform(void **state)
{
	(void)state;
	enum { N = 100000, BUCKETS = 10 };
	struct sb_backoff b;
	sb_backoff_init(&b, 100, 10000);
	sb_backoff_seed(&b, 42);
	unsigned hist[BUCKETS] = { 0 };
	uint32_t lo = UINT32_MAX, hi = 0;
	double sum = 0;
	for (int i = 0; i < N; i++) {
		b.attempt = 3; /* ceiling 800 */
		uint32_t d = sb_backoff_next(&b);
		assert_true(d <= 800);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
		hist[d * BUCKETS / 801]++;
	}
	/* Full jitter reaches both ends of [0, 800]. */
	assert_true(lo <= 2);
	assert_true(hi >= 798);
	double mean = sum / N;
	if (mean < 392 || mean > 408)
		fail_msg("mean delay %.1f, want about 400", mean);
	for (int i = 0; i < BUCKETS; i++) {
		if (hist[i] < N / BUCKETS * 9 / 10 || hist[i] > N / BUCKETS * 11 / 10)
			fail_msg("bucket %d holds %u of %d samples", i, hist[i], N);
	}
}

static void
test_mean_grows_exponentially(void **state)
{
	(void)state;
	enum { N = 20000 };
	struct sb_backoff b;
	sb_backoff_init(&b, 100, 1000000);
	sb_backoff_seed(&b, 7);
	for (uint32_t a = 0; a < 8; a++) {
		double sum = 0;
		for (int i = 0; i < N; i++) {
			b.attempt = a;
			sum += sb_backoff_next(&b);
		}
		double want = 50.0 * (1u << a); /* half the ceiling 100 * 2^a */
		double mean = sum / N;
		if (mean < want * 0.95 || mean > want * 1.05)
			fail_msg("attempt %u: mean %.1f, want about %.1f", a, mean, want);
	}
}

static void
test_reset_and_seed(void **state)
{
	(void)state;
	struct sb_backoff a, b;
	sb_backoff_init(&a, 50, 100000);
	sb_backoff_init(&b, 50, 100000);
	sb_backoff_seed(&a, 99);
	sb_backoff_seed(&b, 99);
	for (int i = 0; i < 10; i++)
		assert_int_equal(sb_backoff_next(&a), sb_backoff_next(&b));
	assert_int_equal(a.attempt, 10);
	assert_int_equal(sb_backoff_ceiling(&a), 51200);
	sb_backoff_reset(&a);
	assert_int_equal(a.attempt, 0);
	assert_int_equal(sb_backoff_ceiling(&a), 50);
	assert_true(sb_backoff_next(&a) <= 50);
	/* A different seed gives a different sequence. */
	sb_backoff_init(&a, 1000, 1000);
	sb_backoff_init(&b, 1000, 1000);
	sb_backoff_seed(&a, 1);
	sb_backoff_seed(&b, 2);
	int same = 0;
	for (int i = 0; i < 20; i++)
		same += sb_backoff_next(&a) == sb_backoff_next(&b);
	assert_true(same < 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling_doubles_then_saturates),
		cmocka_unit_test(test_overflow_safe),
		cmocka_unit_test(test_full_jitter_is_uniform),
		cmocka_unit_test(test_mean_grows_exponentially),
		cmocka_unit_test(test_reset_and_seed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
