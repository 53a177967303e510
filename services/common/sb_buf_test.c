/* Tests of sb_buf: growth, printf, and JSON string literals (escapes, UTF-8 checked). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"

/* json_str returns s as sb_buf_json_str writes it (the caller frees). */
static char *
json_str(const char *s)
{
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_buf_json_str(&b, s), 0);
	return sb_buf_steal(&b);
}

static void
expect_json_str(const char *in, const char *want)
{
	char *got = json_str(in);
	assert_string_equal(got, want);
	free(got);
}

static void
test_append_and_printf(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	char *stolen = sb_buf_steal(&b); /* empty, not NULL */
	assert_string_equal(stolen, "");
	free(stolen);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sb_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(b.len, strlen(b.data));
	assert_memory_equal(b.data, "0,1,2,", 6);
	assert_memory_equal(b.data + b.len - 3, "99,", 3);
	sb_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(sb_buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_int_equal(b.data[3], '\0');
	sb_buf_free(&b);
	assert_null(b.data);
}

static void
test_json_str_escapes(void **state)
{
	(void)state;
	expect_json_str("", "\"\"");
	expect_json_str("plain", "\"plain\"");
	expect_json_str("q\"b\\n\nr\rt\t", "\"q\\\"b\\\\n\\nr\\rt\\t\"");
	expect_json_str("\x01\x1f\x7f/", "\"\\u0001\\u001f\x7f/\"");
}

/* Valid UTF-8 of every length passes through unchanged, including the extremes. */
static void
test_json_str_valid_utf8(void **state)
{
	(void)state;
	const char *ok = "\xc2\x80 h\xc3\xa9 \xdf\xbf \xe0\xa0\x80 \xe2\x98\x83 \xed\x9f\xbf "
	                 "\xee\x80\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
	char want[128];
	snprintf(want, sizeof(want), "\"%s\"", ok);
	expect_json_str(ok, want);
}

/* Bytes that are not UTF-8 become U+FFFD, one per byte, and the rest is kept. Regression: a
 * notifier frame with conversation id "\xff" was published as invalid JSON (jansson, and so
 * realtime, refused it). */
static void
test_json_str_invalid_utf8_replaced(void **state)
{
	(void)state;
#define R "\xef\xbf\xbd"
	expect_json_str("\xff", "\"" R "\"");
	expect_json_str("{\"type\":\"members.changed\",\"conversation_id\":\xff}",
	                "\"{\\\"type\\\":\\\"members.changed\\\",\\\"conversation_id\\\":" R "}\"");
	expect_json_str("a\x80z", "\"a" R "z\"");               /* stray continuation byte */
	expect_json_str("\xc0\x80", "\"" R R "\"");             /* overlong NUL */
	expect_json_str("\xc1\xbf", "\"" R R "\"");             /* overlong */
	expect_json_str("\xe0\x9f\xbf", "\"" R R R "\"");       /* overlong 3-byte */
	expect_json_str("\xf0\x8f\xbf\xbf", "\"" R R R R "\""); /* overlong 4-byte */
	expect_json_str("\xed\xa0\x80", "\"" R R R "\"");       /* surrogate U+D800 */
	expect_json_str("\xf4\x90\x80\x80", "\"" R R R R "\""); /* above U+10FFFF */
	expect_json_str("\xf5\x80\x80\x80", "\"" R R R R "\"");
	expect_json_str("x\xe2\x98", "\"x" R R "\"");     /* cut short at the end */
	expect_json_str("\xe2\x98\"", "\"" R R "\\\"\""); /* cut short by an escape */
	expect_json_str("\xe2\x98\xe2\x98\x83", "\"" R R "\xe2\x98\x83\"");
	expect_json_str("\xf0\x9f\x98", "\"" R R R "\"");
#undef R
}

/* The literal is appended: what was in the buffer stays. */
static void
test_json_str_appends(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_buf_puts(&b, "{\"k\":"), 0);
	assert_int_equal(sb_buf_json_str(&b, "v\xff"), 0);
	assert_int_equal(sb_buf_puts(&b, "}"), 0);
	assert_string_equal(b.data, "{\"k\":\"v\xef\xbf\xbd\"}");
	assert_int_equal(b.len, strlen(b.data));
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_printf),
		cmocka_unit_test(test_json_str_escapes),
		cmocka_unit_test(test_json_str_valid_utf8),
		cmocka_unit_test(test_json_str_invalid_utf8_replaced),
		cmocka_unit_test(test_json_str_appends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
