/* Unit tests of validate.c and the array literals of store.c: the checks that decide what a
 * user's send may contain, and the quoting that carries user text into SQL arrays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "messages.h"

static void
test_utf8(void **state)
{
	(void)state;
	const char *good[] = { "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(msg_utf8_valid(good[i], strlen(good[i])));
	const char *bad[] = {
		"\xc3\x28",         /* bad continuation */
		"\xc0\xaf",         /* overlong '/' */
		"\xe0\x80\xaf",     /* overlong */
		"\xed\xa0\x80",     /* surrogate U+D800 */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xff",             /* never valid */
		"\xe2\x82",         /* truncated */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(msg_utf8_valid(bad[i], strlen(bad[i])));
	assert_false(msg_utf8_valid("a\0b", 3)); /* NUL cannot be stored in text */
}

static void
test_array_literal_quotes(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(msg_arr_end(&b), 0);
	assert_string_equal(b.data, "{}");
	sb_buf_free(&b);
	assert_int_equal(msg_arr_add(&b, "a\"b"), 0);
	assert_int_equal(msg_arr_add(&b, NULL), 0);
	assert_int_equal(msg_arr_add(&b, "c\\d,{}"), 0);
	assert_int_equal(msg_arr_addll(&b, -42), 0);
	assert_int_equal(msg_arr_end(&b), 0);
	assert_string_equal(b.data, "{\"a\\\"b\",NULL,\"c\\\\d,{}\",\"-42\"}");
	sb_buf_free(&b);
}

/* A conversation always maps to the same lane, the tenant is part of the key, and many
 * conversations spread over every lane. */
static void
test_lanes(void **state)
{
	(void)state;
	size_t count[4] = { 0 }, differ = 0;
	char conv[40];
	for (int i = 0; i < 4000; i++) {
		snprintf(conv, sizeof(conv), "%08x-0000-4000-8000-%012d", (unsigned)i * 2654435761u,
		         i);
		size_t lane = msg_lane_of("t1", conv, 4);
		assert_true(lane < 4);
		assert_int_equal(msg_lane_of("t1", conv, 4), lane);
		differ += msg_lane_of("t2", conv, 4) != lane;
		count[lane]++;
	}
	for (int k = 0; k < 4; k++)
		assert_true(count[k] > 800 && count[k] < 1200);
	assert_true(differ > 2000); /* about 3/4 of them */
	assert_int_equal(msg_lane_of("t1", "x", 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_array_literal_quotes),
		cmocka_unit_test(test_lanes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
