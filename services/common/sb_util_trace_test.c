/* Tests of sb_util_trace: the W3C Trace Context examples, malformed values, new and child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sb_err.h"
#include "sb_util_trace.h"

static const char spec_sampled[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const char spec_unsampled[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

static void
test_spec_examples(void **state)
{
	(void)state;
	static const uint8_t trace[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
		                           0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
	static const uint8_t span[8] = { 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 };
	struct sb_trace_ctx c;
	char out[SB_TRACEPARENT_LEN + 1], id[SB_TRACE_ID_HEX + 1];

	assert_int_equal(sb_trace_parse(spec_sampled, &c), 0);
	assert_memory_equal(c.trace_id, trace, 16);
	assert_memory_equal(c.span_id, span, 8);
	assert_int_equal(c.flags, 0x01);
	assert_true(sb_trace_sampled(&c));
	sb_trace_format(&c, out);
	assert_string_equal(out, spec_sampled);
	sb_trace_id_hex(&c, id);
	assert_string_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");

	assert_int_equal(sb_trace_parse(spec_unsampled, &c), 0);
	assert_int_equal(c.flags, 0x00);
	assert_false(sb_trace_sampled(&c));
	sb_trace_format(&c, out);
	assert_string_equal(out, spec_unsampled);

	/* Unknown flag bits are carried as they are in version 00. */
	assert_int_equal(
	    sb_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", &c), 0);
	assert_int_equal(c.flags, 0x09);
}

static void
test_future_version(void **state)
{
	(void)state;
	struct sb_trace_ctx c;
	char out[SB_TRACEPARENT_LEN + 1];
	/* A later version is parsed for its known fields, and may carry more after a '-'. */
	assert_int_equal(
	    sb_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
	assert_int_equal(
	    sb_trace_parse(
	        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future", &c),
	    0);
	sb_trace_format(&c, out);
	assert_string_equal(out, spec_sampled); /* written back as version 00 */
	assert_int_equal(
	    sb_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what", &c),
	    SB_EINVAL);
}

static void
test_rejects_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 too long */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", /* uppercase parent */
		"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* uppercase version */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", /* uppercase flags */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* forbidden version */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent id */
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* bad hex */
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", /* bad separators */
		"004-bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* misplaced '-' */
		"00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b70-1",
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
		"-0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	struct sb_trace_ctx c;
	memset(&c, 0x5a, sizeof(c));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sb_trace_parse(bad[i], &c) != SB_EINVAL)
			fail_msg("accepted malformed \"%s\"", bad[i]);
	}
	assert_int_equal(sb_trace_parse(NULL, &c), SB_EINVAL);
	assert_int_equal(c.flags, 0x5a); /* untouched */
}

static void
test_new_and_child(void **state)
{
	(void)state;
	struct sb_trace_ctx a, b, child;
	char s[SB_TRACEPARENT_LEN + 1];
	static const uint8_t zero[16];

	assert_int_equal(sb_trace_new(&a, true), 0);
	assert_int_equal(sb_trace_new(&b, false), 0);
	assert_memory_not_equal(a.trace_id, b.trace_id, 16);
	assert_memory_not_equal(a.trace_id, zero, 16);
	assert_memory_not_equal(a.span_id, zero, 8);
	assert_true(sb_trace_sampled(&a));
	assert_false(sb_trace_sampled(&b));

	/* What we generate, we parse back identically. */
	sb_trace_format(&a, s);
	assert_int_equal(strlen(s), SB_TRACEPARENT_LEN);
	assert_int_equal(sb_trace_parse(s, &b), 0);
	assert_memory_equal(&a.trace_id, &b.trace_id, 16);
	assert_memory_equal(&a.span_id, &b.span_id, 8);
	assert_int_equal(a.flags, b.flags);

	/* A child keeps the trace and the flags and has a new span. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(sb_trace_child(&a, &child), 0);
		assert_memory_equal(child.trace_id, a.trace_id, 16);
		assert_memory_not_equal(child.span_id, a.span_id, 8);
		assert_memory_not_equal(child.span_id, zero, 8);
		assert_int_equal(child.flags, a.flags);
	}
	/* In place. */
	struct sb_trace_ctx p = a;
	assert_int_equal(sb_trace_child(&p, &p), 0);
	assert_memory_equal(p.trace_id, a.trace_id, 16);
	assert_memory_not_equal(p.span_id, a.span_id, 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_examples),
		cmocka_unit_test(test_future_version),
		cmocka_unit_test(test_rejects_malformed),
		cmocka_unit_test(test_new_and_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
