/* sb_rtframe_test.c: what the notifier's encoder writes, realtime's parser reads back, over the
 * whole int64 range; malformed headers are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_rtframe.h"

static void
test_round_trip(void **st)
{
	(void)st;
	const int64_t seqs[] = { 0, 1, 42, INT64_MAX };
	const int64_t times[] = { INT64_MIN, -1, 0, 1733500000000LL, INT64_MAX };
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		for (size_t j = 0; j < sizeof(times) / sizeof(times[0]); j++) {
			struct sb_buf b = SB_BUF_INIT;
			assert_int_equal(sb_rtframe_header(&b, seqs[i], times[j]), 0);
			assert_true(b.len <= SB_RTFRAME_HEADER_MAX);
			assert_int_equal(sb_buf_append(&b, "{\"type\":\"x\"}", 12), 0);
			struct sb_rtframe f;
			assert_int_equal(sb_rtframe_split(b.data, b.len, &f), 0);
			assert_true(f.seq == seqs[i]);
			assert_true(f.event_ms == times[j]);
			assert_int_equal(f.json_len, 12);
			assert_memory_equal(f.json, "{\"type\":\"x\"}", 12);
			sb_buf_free(&b);
		}
	}
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_rtframe_header(&b, -1, 0), SB_EINVAL);
	sb_buf_free(&b);
}

static void
test_refused(void **st)
{
	(void)st;
	const char *bad[] = { "",
		              "1 2",
		              "1 2 \n{}",
		              "1  2\n{}",
		              "-1 2\n{}",
		              "+1 2\n{}",
		              "1 x\n{}",
		              "9223372036854775808 0\n{}",
		              "0 -9223372036854775809\n{}",
		              "0 9223372036854775808\n{}",
		              " 1 2\n{}",
		              "1\t2\n{}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sb_rtframe f;
		assert_int_equal(sb_rtframe_split(bad[i], strlen(bad[i]), &f), SB_EPROTO);
	}
	struct sb_rtframe f;
	assert_int_equal(sb_rtframe_split("0 -9223372036854775808\n", 23, &f), 0);
	assert_true(f.event_ms == INT64_MIN);
	assert_int_equal(f.json_len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
