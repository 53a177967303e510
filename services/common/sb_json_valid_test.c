/* sb_json_valid_test.c: sb_json_valid answers as jansson does (JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) on texts chosen for each rule it checks itself and each case it
 * leaves to jansson; every case is also checked against jansson here, so a table entry with the
 * wrong expectation fails too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sb_json.h"

static bool
jansson_valid(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_decref(j);
	return j != NULL;
}

static void
check(const char *s, size_t n, bool want)
{
	bool got = sb_json_valid(s, n);
	if (got != want || jansson_valid(s, n) != want)
		fail_msg("%.*s: sb_json_valid %d, jansson %d, want %d", (int)(n > 80 ? 80 : n), s,
		         got, jansson_valid(s, n), want);
}

#define OK(s)  check((s), sizeof(s) - 1, true)
#define BAD(s) check((s), sizeof(s) - 1, false)

static void
test_values(void **state)
{
	(void)state;
	OK("{}");
	OK("[]");
	OK(" \t\r\n{ \"a\" : [ 1 , 2.5 , -0 , true , false , null ] } \n");
	OK("\"x\"");
	OK("0");
	OK("-0.0e+0");
	OK("{\"d\":\"1733550000.123          xxxxxxxxxxxx000000000001\"}");
	OK("[{},[],{\"a\":{}}]");
	BAD("");
	BAD("   ");
	BAD("{");
	BAD("[1,]");
	BAD("{\"a\":1,}");
	BAD("{\"a\" 1}");
	BAD("{1:2}");
	BAD("[1 2]");
	BAD("{} {}");
	BAD("{}x");
	BAD("\f{}");
	BAD("nul");
	BAD("nulll");
	BAD("True");
	BAD("true1");
	BAD("]");
	BAD("{]");
	BAD("[}");
}

static void
test_numbers(void **state)
{
	(void)state;
	OK("9223372036854775807");
	OK("-9223372036854775808");
	BAD("9223372036854775808");
	BAD("-9223372036854775809");
	BAD("12345678901234567890");
	OK("1e308");
	BAD("1e309");
	BAD("-2e308");
	OK("1e-400"); /* underflow is not an error */
	OK("123456789012345678901234567890.5");
	BAD("01");
	BAD("-");
	BAD("-a");
	BAD("1.");
	BAD("1.e5");
	BAD(".5");
	BAD("1e");
	BAD("1e+");
	BAD("+1");
	BAD("0x10");
	/* a long real with an exponent: jansson decides */
	char big[400];
	memset(big, '1', 320);
	memcpy(big + 320, "e-20", 5);
	check(big, strlen(big), true);
	memcpy(big + 320, "e-10", 5);
	check(big, strlen(big), false);
	memcpy(big + 320, ".5", 3); /* 1.1e319 */
	check(big, strlen(big), false);
	memcpy(big + 300, ".5", 3);
	check(big, strlen(big), true);
}

static void
test_strings(void **state)
{
	(void)state;
	OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
	OK("\"\\u00e9 \\uD83D\\uDE00 \xc3\xa9 \xf0\x9f\x98\x80 \x7f\"");
	BAD("\"\\u0000\"");
	BAD("\"\\uD83D\"");
	BAD("\"\\uD83Dx\"");
	BAD("\"\\uD83D\\u0041\"");
	BAD("\"\\uDE00\"");
	BAD("\"\\u12G4\"");
	BAD("\"\\u12\"");
	BAD("\"\\x\"");
	BAD("\"\\'\"");
	BAD("\"a\tb\"");
	BAD("\"a\nb\"");
	BAD("\"abc");
	BAD("\"\xc0\xaf\"");     /* overlong */
	BAD("\"\xed\xa0\x80\""); /* a surrogate in UTF-8 */
	BAD("\"\xf4\x90\x80\x80\"");
	BAD("\"\xe2\x82\"");
	BAD("\xc3\xa9");
	check("\"a\0b\"", 5, false);
	check("{}\0", 3, false);
}

static void
test_duplicates(void **state)
{
	(void)state;
	BAD("{\"a\":1,\"a\":2}");
	OK("{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3}]}");
	BAD("{\"a\":{\"x\":1,\"x\":1}}");
	OK("{\"a\":{\"x\":1},\"x\":1}");
	BAD("{\"a\":{\"x\":1},\"x\":1,\"a\":2}");
	OK("{\"ab\":1,\"a\":2,\"\":3}");
	/* escaped keys: equal after decoding (jansson decides) */
	BAD("{\"a\":1,\"\\u0061\":2}");
	OK("{\"a\":1,\"\\u0062\":2}");
	BAD("{\"\\n\":1,\"\\u000a\":2}");
	/* more keys than are compared here: jansson decides */
	char buf[4096];
	size_t o = 0;
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"k%d\":%d", i ? "," : "", i, i);
	snprintf(buf + o, sizeof(buf) - o, "}");
	check(buf, strlen(buf), true);
	snprintf(buf + o, sizeof(buf) - o, ",\"k7\":1}");
	check(buf, strlen(buf), false);
	snprintf(buf + o, sizeof(buf) - o, ",\"k99\":1}");
	check(buf, strlen(buf), false);
	/* keys of an outer object are not confused with an inner one's after it closed */
	OK("{\"a\":{\"b\":1,\"c\":2},\"b\":3,\"c\":{\"b\":4}}");
}

static void
test_depth(void **state)
{
	(void)state;
	/* jansson counts every value, the outermost at level 1, and refuses past 2048 */
	size_t n = 2049;
	char *s = malloc(2 * n + 2);
	assert_non_null(s);
	for (size_t levels = 2046; levels <= n; levels++) {
		memset(s, '[', levels);
		memset(s + levels, ']', levels);
		check(s, 2 * levels, levels <= 2048);
		/* a scalar inside is one level deeper */
		memset(s, '[', levels);
		s[levels] = '1';
		memset(s + levels + 1, ']', levels);
		check(s, 2 * levels + 1, levels + 1 <= 2048);
	}
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),  cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_strings), cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
