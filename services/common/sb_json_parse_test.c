/* Tests of sb_json_parse: limits and malformed input give one clear violation with a path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_json.h"

/* Parses len bytes of text expecting failure with exactly one violation; checks the path and
 * that the reason starts with reason_prefix. */
static void
expect_bad(const char *text, size_t len, int depth, const char *path, const char *reason_prefix)
{
	struct sb_json_errors errs;
	json_t *j = (json_t *)0x1;
	assert_int_equal(sb_json_parse(text, len, depth, &j, &errs), SB_EINVAL);
	assert_ptr_equal(j, (json_t *)0x1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].path, path);
	if (strncmp(errs.v[0].reason, reason_prefix, strlen(reason_prefix)) != 0)
		fail_msg("reason \"%s\" does not start with \"%s\"", errs.v[0].reason,
		         reason_prefix);
}

#define BAD(lit, depth, path, reason) expect_bad(lit, sizeof(lit) - 1, depth, path, reason)

static void
test_good_text(void **state)
{
	(void)state;
	const char text[] = " {\"a\":[1,{\"b\":\"\xe2\x98\x83\"}],\"c\":null} ";
	json_t *j = NULL;
	struct sb_json_errors errs;
	/* len excludes the NUL: no terminator is needed, and bytes past len are not read. */
	assert_int_equal(sb_json_parse(text, sizeof(text) - 1, 3, &j, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(json_object_get(j, "a"), 1), "b")),
	    "\xe2\x98\x83");
	json_decref(j);
	assert_int_equal(sb_json_parse("{\"a\":1}xyz", 7, 1, &j, NULL), 0);
	json_decref(j);
}

static void
test_malformed_text(void **state)
{
	(void)state;
	BAD("{\"a\":[1,{\"b\":\"x\xff\"}]}", 8, "a[1].b", "invalid UTF-8 at offset 15");
	BAD("{\"a\":\"\xed\xa0\x80\"}", 8, "a", "invalid UTF-8 at offset 6"); /* surrogate */
	BAD("{\"a\":\"\xc0\xaf\"}", 8, "a", "invalid UTF-8 at offset 6");     /* overlong */
	BAD("{\"a\":\"x\0y\"}", 8, "a", "NUL byte at offset 7");
	BAD("{\"a\":[\"\\u0000\"]}", 8, "a[0]", "\\u0000 (NUL) at offset 7 is not allowed");
	BAD("{\"a\":1} x", 8, "", "invalid JSON: end of file expected");
	BAD("{\"a\":1,\"a\":2}", 8, "a", "invalid JSON: duplicate object key");
	BAD("{\"a\":[1,2,}", 8, "a[2]", "invalid JSON: unexpected token");
	BAD("{\"a\":[1,2", 8, "a[1]", "invalid JSON:");
	BAD("", 8, "", "invalid JSON:");
	BAD("{\"a\":tru}", 8, "a", "invalid JSON:");
	BAD("{\"a\":18446744073709551615}", 8, "a", "invalid JSON: too big integer");
}

static void
test_limits(void **state)
{
	(void)state;
	BAD("{\"child\":{\"child\":{\"child\":{}}}}", 3, "child.child.child",
	    "nesting deeper than 3 levels");
	BAD("[[[[1]]]]", 3, "[0][0][0]", "nesting deeper than 3 levels");
	/* max_depth is capped so that nobody can ask for unbounded recursion. */
	char deep[2 * (SB_JSON_DEPTH_CAP + 1) + 1];
	memset(deep, '[', SB_JSON_DEPTH_CAP + 1);
	memset(deep + SB_JSON_DEPTH_CAP + 1, ']', SB_JSON_DEPTH_CAP + 1);
	struct sb_json_errors errs;
	json_t *j = NULL;
	assert_int_equal(sb_json_parse(deep, sizeof(deep) - 1, 100000, &j, &errs), SB_EINVAL);
	assert_string_equal(errs.v[0].reason, "nesting deeper than 128 levels");
	assert_memory_equal(errs.v[0].path, "[0][0][0]", 9);
	assert_int_equal(strlen(errs.v[0].path), sizeof(errs.v[0].path) - 1);

	struct sb_json_limits lim = {
		.max_bytes = 64, .max_depth = 4, .max_members = 3, .max_string = 5
	};
	const char *ok = "{\"a\":[1,2,3],\"bb\":\"12345\"}";
	assert_int_equal(sb_json_parse_limits(ok, strlen(ok), &lim, &j, &errs), 0);
	json_decref(j);
	const char *many = "{\"a\":[1,2,3,4]}";
	assert_int_equal(sb_json_parse_limits(many, strlen(many), &lim, &j, &errs), SB_EINVAL);
	assert_string_equal(errs.v[0].path, "a[3]");
	assert_string_equal(errs.v[0].reason, "more than 3 array elements");
	const char *members = "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}";
	assert_int_equal(sb_json_parse_limits(members, strlen(members), &lim, &j, &errs),
	                 SB_EINVAL);
	assert_string_equal(errs.v[0].reason, "more than 3 object members");
	const char *longs = "{\"a\":\"123456\"}";
	assert_int_equal(sb_json_parse_limits(longs, strlen(longs), &lim, &j, &errs), SB_EINVAL);
	assert_string_equal(errs.v[0].path, "a");
	assert_string_equal(errs.v[0].reason, "string longer than 5 bytes");
	char big[65];
	memset(big, ' ', sizeof(big));
	assert_int_equal(sb_json_parse_limits(big, sizeof(big), &lim, &j, &errs), SB_EINVAL);
	assert_string_equal(errs.v[0].path, "");
	assert_string_equal(errs.v[0].reason, "body larger than 64 bytes");

	/* The default limits bound a huge array even when the body limit allows it. */
	size_t n = 2 * (SB_JSON_DEFAULT_MAX_MEMBERS + 1) + 1;
	char *arr = malloc(n);
	arr[0] = '[';
	for (size_t i = 1; i < n; i += 2)
		memcpy(arr + i, "0,", 2);
	arr[n - 1] = ']';
	expect_bad(arr, n, 8, "[10000]", "more than 10000 array elements");
	free(arr);
	assert_int_equal(sb_json_parse(NULL, 0, 8, &j, &errs), SB_EINVAL);
	assert_int_equal(sb_json_parse("{}", 2, 0, &j, &errs), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_text),
		cmocka_unit_test(test_malformed_text),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
