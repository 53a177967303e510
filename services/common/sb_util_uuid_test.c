/* Tests of sb_util_uuid: string form, strict parsing, v4/v7 fields, v7 ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_time.h"
#include "sb_util_uuid.h"

static int
uuid_cmp_void(const void *a, const void *b)
{
	return sb_uuid_cmp(a, b);
}

static void
test_format_parse_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct sb_uuid u, back;
		char s[SB_UUID_STR_LEN + 1];
		assert_int_equal(sb_uuid_v4(&u), 0);
		sb_uuid_format(&u, s);
		assert_int_equal(strlen(s), 36);
		for (int j = 0; j < 36; j++) {
			if (j == 8 || j == 13 || j == 18 || j == 23)
				assert_int_equal(s[j], '-');
			else
				assert_non_null(strchr("0123456789abcdef", s[j]));
		}
		assert_int_equal(sb_uuid_parse(s, &back), 0);
		assert_memory_equal(u.b, back.b, 16);
	}
}

static void
test_parse_known_and_case(void **state)
{
	(void)state;
	struct sb_uuid a, b;
	char s[SB_UUID_STR_LEN + 1];
	static const uint8_t want[16] = { 0xf8, 0x1d, 0x4f, 0xae, 0x7d, 0xec, 0x11, 0xd0,
		                          0xa7, 0x65, 0x00, 0xa0, 0xc9, 0x1e, 0x6b, 0xf6 };
	assert_int_equal(sb_uuid_parse("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", &a), 0);
	assert_memory_equal(a.b, want, 16);
	assert_int_equal(sb_uuid_parse("F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6", &b), 0);
	assert_memory_equal(b.b, want, 16);
	assert_int_equal(sb_uuid_parse("F81d4FaE-7dEC-11d0-A765-00a0C91e6Bf6", &b), 0);
	assert_memory_equal(b.b, want, 16);
	sb_uuid_format(&b, s);
	assert_string_equal(s, "f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
}

static void
test_parse_rejects_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"f81d4fae-7dec-11d0-a765-00a0c91e6bf",   /* 35 characters */
		"f81d4fae-7dec-11d0-a765-00a0c91e6bf6a", /* 37 characters */
		"f81d4fae-7dec-11d0-a765-00a0c91e6bf6 ", /* trailing space */
		" f81d4fae-7dec-11d0-a765-00a0c91e6bf6", /* leading space */
		"g81d4fae-7dec-11d0-a765-00a0c91e6bf6",  /* bad hex */
		"f81d4fae-7dec-11d0-a765-00a0c91e6bfz",  /* bad hex at the end */
		"f81d4fae-7dec-11d0-a765-00a0c91e6b-6",  /* hyphen for a digit */
		"f81d4fae7-dec-11d0-a765-00a0c91e6bf6",  /* misplaced hyphen */
		"f81d4fae-7dec11d0--a765-00a0c91e6bf6",  /* misplaced hyphen */
		"f81d4fae-7dec-11d0-a76500a0c91e6bf6-0", /* misplaced hyphen */
		"f81d4fae_7dec_11d0_a765_00a0c91e6bf6",  /* other separator */
		"f81d4fae7dec11d0a76500a0c91e6bf6",      /* no hyphens */
		"{f81d4fae-7dec-11d0-a765-00a0c91e6bf}", /* braces */
		"urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
		"+81d4fae-7dec-11d0-a765-00a0c91e6bf6",
		"0x1d4fae-7dec-11d0-a765-00a0c91e6bf6",
	};
	struct sb_uuid u;
	memset(&u, 0x5a, sizeof(u));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sb_uuid_parse(bad[i], &u) != SB_EINVAL)
			fail_msg("accepted malformed \"%s\"", bad[i]);
		for (int j = 0; j < 16; j++)
			assert_int_equal(u.b[j], 0x5a); /* untouched */
	}
	assert_int_equal(sb_uuid_parse(NULL, &u), SB_EINVAL);
	/* An embedded NUL makes the string short. */
	const char nul[] = "f81d4fae-7dec-11d0-a765\0000a0c91e6bf6";
	assert_int_equal(sb_uuid_parse(nul, &u), SB_EINVAL);
}

static void
test_version_and_variant(void **state)
{
	(void)state;
	struct sb_uuid u;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(sb_uuid_v4(&u), 0);
		assert_int_equal(sb_uuid_version(&u), 4);
		assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_RFC9562);
		assert_int_equal(u.b[8] & 0xc0, 0x80);
		assert_int_equal(sb_uuid_v7(&u), 0);
		assert_int_equal(sb_uuid_version(&u), 7);
		assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_RFC9562);
	}
	/* The v7 example of RFC 9562 appendix A.5. */
	assert_int_equal(sb_uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &u), 0);
	assert_int_equal(sb_uuid_version(&u), 7);
	assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_RFC9562);
	assert_int_equal(sb_uuid_v7_ms(&u), 0x017F22E279B0ULL);
	/* Nil and max. */
	assert_int_equal(sb_uuid_parse("00000000-0000-0000-0000-000000000000", &u), 0);
	assert_int_equal(sb_uuid_version(&u), 0);
	assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_NCS);
	assert_int_equal(sb_uuid_parse("ffffffff-ffff-ffff-ffff-ffffffffffff", &u), 0);
	assert_int_equal(sb_uuid_version(&u), 15);
	assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_FUTURE);
	assert_int_equal(sb_uuid_parse("ffffffff-ffff-ffff-cfff-ffffffffffff", &u), 0);
	assert_int_equal(sb_uuid_variant(&u), SB_UUID_VARIANT_MICROSOFT);
}

static void
test_v4_distinct(void **state)
{
	(void)state;
	enum { N = 2000 };
	struct sb_uuid *u = calloc(N, sizeof(*u));
	assert_non_null(u);
	for (int i = 0; i < N; i++)
		assert_int_equal(sb_uuid_v4(&u[i]), 0);
	qsort(u, N, sizeof(*u), uuid_cmp_void);
	for (int i = 1; i < N; i++)
		assert_true(sb_uuid_cmp(&u[i - 1], &u[i]) < 0);
	free(u);
}

static void
test_v7_strictly_increasing(void **state)
{
	(void)state;
	enum { N = 100000 };
	struct sb_uuid prev, cur;
	char ps[SB_UUID_STR_LEN + 1], cs[SB_UUID_STR_LEN + 1];
	int64_t before = sb_time_now_ms();
	assert_int_equal(sb_uuid_v7(&prev), 0);
	assert_true((int64_t)sb_uuid_v7_ms(&prev) >= before);
	sb_uuid_format(&prev, ps);
	for (int i = 1; i < N; i++) {
		assert_int_equal(sb_uuid_v7(&cur), 0);
		if (sb_uuid_cmp(&prev, &cur) >= 0)
			fail_msg("v7 id %d not greater than the previous one", i);
		sb_uuid_format(&cur, cs);
		if (strcmp(ps, cs) >= 0)
			fail_msg("v7 strings out of order: %s then %s", ps, cs);
		prev = cur;
		memcpy(ps, cs, sizeof(ps));
	}
	int64_t after = sb_time_now_ms();
	/* The counter never ran out, so the timestamp is the real clock. */
	assert_true((int64_t)sb_uuid_v7_ms(&cur) <= after);
	assert_true((int64_t)sb_uuid_v7_ms(&cur) >= before);
}

enum { THREADS = 4, PER_THREAD = 20000 };

static void *
v7_worker(void *arg)
{
	struct sb_uuid *out = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		if (sb_uuid_v7(&out[i]) != 0)
			return (void *)1;
		if (i > 0 && sb_uuid_cmp(&out[i - 1], &out[i]) >= 0)
			return (void *)2;
	}
	return NULL;
}

static void
test_v7_threads_unique(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	struct sb_uuid *u = calloc((size_t)THREADS * PER_THREAD, sizeof(*u));
	assert_non_null(u);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, v7_worker, u + i * PER_THREAD), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		assert_null(rc);
	}
	qsort(u, (size_t)THREADS * PER_THREAD, sizeof(*u), uuid_cmp_void);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		assert_true(sb_uuid_cmp(&u[i - 1], &u[i]) < 0);
	free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_parse_known_and_case),
		cmocka_unit_test(test_parse_rejects_malformed),
		cmocka_unit_test(test_version_and_variant),
		cmocka_unit_test(test_v4_distinct),
		cmocka_unit_test(test_v7_strictly_increasing),
		cmocka_unit_test(test_v7_threads_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
