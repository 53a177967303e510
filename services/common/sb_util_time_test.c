/* Tests of sb_util_time: clocks and RFC 3339 formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_util_time.h"

static void
test_clocks(void **state)
{
	(void)state;
	int64_t now = sb_time_now_ms();
	int64_t sys = (int64_t)time(NULL) * 1000;
	assert_true(now >= sys - 1000 && now <= sys + 2000);
	int64_t m0 = sb_time_mono_ms();
	usleep(20000);
	int64_t m1 = sb_time_mono_ms();
	assert_true(m1 - m0 >= 19);
	assert_true(m1 - m0 < 2000);
}

static void
test_rfc3339(void **state)
{
	(void)state;
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1795489445123LL, "2026-11-24T03:04:05.123Z" },
		{ 1795489445007LL, "2026-11-24T03:04:05.007Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ -1000, "1969-12-31T23:59:59.000Z" },
		{ 951782400000LL, "2000-02-29T00:00:00.000Z" }, /* leap day */
		{ 253402300799999LL, "9999-12-31T23:59:59.999Z" },
		{ -62167219200000LL, "0000-01-01T00:00:00.000Z" },
	};
	char out[SB_TIME_RFC3339_LEN + 1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(sb_time_format_rfc3339(cases[i].ms, out, sizeof(out)), 0);
		assert_string_equal(out, cases[i].want);
	}
}

static void
test_rfc3339_errors(void **state)
{
	(void)state;
	char out[SB_TIME_RFC3339_LEN + 1];
	char small[SB_TIME_RFC3339_LEN];
	assert_int_equal(sb_time_format_rfc3339(0, small, sizeof(small)), SB_EINVAL);
	assert_string_equal(small, "");
	assert_int_equal(sb_time_format_rfc3339(0, NULL, 64), SB_EINVAL);
	assert_int_equal(sb_time_format_rfc3339(253402300800000LL, out, sizeof(out)), SB_ERANGE);
	assert_string_equal(out, "");
	assert_int_equal(sb_time_format_rfc3339(-62167219200001LL, out, sizeof(out)), SB_ERANGE);
	assert_int_equal(sb_time_format_rfc3339(INT64_MAX, out, sizeof(out)), SB_ERANGE);
	assert_int_equal(sb_time_format_rfc3339(INT64_MIN, out, sizeof(out)), SB_ERANGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
