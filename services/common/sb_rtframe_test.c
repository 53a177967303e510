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

/* A traceparent in the header: written, read back, and refused when it is not a valid
 * version 00 value, on either side. */
static void
test_traceparent(void **st)
{
	(void)st;
	static const char tp[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	struct sb_buf b = SB_BUF_INIT;
	struct sb_rtframe f;
	assert_int_equal(sb_rtframe_header_tp(&b, 7, 1700000000000, tp), 0);
	assert_int_equal(sb_buf_puts(&b, "{\"type\":\"x\"}"), 0);
	assert_int_equal(sb_rtframe_split(b.data, b.len, &f), 0);
	assert_int_equal(f.seq, 7);
	assert_int_equal(f.event_ms, 1700000000000);
	assert_string_equal(f.traceparent, tp);
	assert_int_equal(f.json_len, strlen("{\"type\":\"x\"}"));
	sb_buf_free(&b);
	/* none: empty */
	assert_int_equal(sb_rtframe_split("1 2\n{}", 6, &f), 0);
	assert_string_equal(f.traceparent, "");
	/* the writer refuses what the reader would refuse */
	const char *bad_w[] = { "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
		                "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		                "00-00000000000000000000000000000000-b7ad6b7169203331-01", "x",
		                NULL };
	for (int i = 0; bad_w[i]; i++)
		assert_int_equal(sb_rtframe_header_tp(&b, 1, 2, bad_w[i]), SB_EINVAL);
	const char *bad_r[] = {
		"1 2 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 \n{}", /* extra space
		                                                                     */
		"1 2 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\n{}",   /* short */
		"1 2 00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01\n{}",  /* upper case */
		"1 2 00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01\n{}",  /* zero span */
		"1 2 \n{}",
		"1 2 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", /* no newline */
		NULL,
	};
	for (int i = 0; bad_r[i]; i++)
		assert_int_equal(sb_rtframe_split(bad_r[i], strlen(bad_r[i]), &f), SB_EPROTO);
}

static void
test_attachments(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	char *ids[] = { "a", "b\"c" };
	assert_int_equal(sb_rtframe_attachments(&b, ids, 0), 0);
	assert_int_equal(b.len, 0); /* none: nothing written, the frame keeps its bytes */
	assert_int_equal(sb_rtframe_attachments(&b, ids, 1), 0);
	assert_string_equal(b.data, ",\"attachments\":[\"a\"]");
	sb_buf_free(&b);
	assert_int_equal(sb_rtframe_attachments(&b, ids, 2), 0);
	assert_string_equal(b.data, ",\"attachments\":[\"a\",\"b\\\"c\"]");
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_traceparent),
		cmocka_unit_test(test_attachments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
