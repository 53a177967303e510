/* sb_jwt_scan_test.c: the allocation-free claims reader against hand-picked JSON and, for
 * thousands of mutated payloads, against jansson's verdict. */
#define SB_JWT_INTERNAL
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sb_jwt.h"

static struct sb__jwt_claims t_c;

static int
t_scan(const char *s)
{
	return sb__jwt_scan_claims(s, strlen(s), &t_c);
}

static void
test_scan_values(void **state)
{
	const struct sb__jwt_member *m;

	assert_int_equal(t_scan(" { \"a\" : \"x\\\"y\\u00e9\\ud83d\\ude00\\/\" , \"n\":-12,"
	                        "\"f\":1.5e3,\"aud\":[\"p\",1,{\"q\":[]},\"r\"],\"o\":{\"k\":null},"
	                        "\"t\":true,\"big\":123456789012345678901234567890} "),
	                 0);
	assert_int_equal(t_c.n, 7);
	m = sb__jwt_claims_get(&t_c, "a");
	assert_int_equal(m->type, SB__JWT_STRING);
	assert_string_equal(m->str, "x\"y\xc3\xa9\xf0\x9f\x98\x80/");
	assert_int_equal(m->len, strlen(m->str));
	m = sb__jwt_claims_get(&t_c, "n");
	assert_true(m->type == SB__JWT_NUMBER && m->is_int && m->in_range);
	assert_int_equal(m->ival, -12);
	m = sb__jwt_claims_get(&t_c, "f");
	assert_true(m->type == SB__JWT_NUMBER && !m->is_int && m->dval == 1500.0);
	m = sb__jwt_claims_get(&t_c, "aud");
	assert_int_equal(m->type, SB__JWT_ARRAY);
	assert_int_equal(m->count, 2);
	assert_string_equal(t_c.items[m->first].str, "p");
	assert_string_equal(t_c.items[m->first + 1].str, "r");
	assert_int_equal(sb__jwt_claims_get(&t_c, "o")->type, SB__JWT_OTHER);
	assert_int_equal(sb__jwt_claims_get(&t_c, "t")->type, SB__JWT_OTHER);
	assert_false(sb__jwt_claims_get(&t_c, "big")->in_range);
	assert_null(sb__jwt_claims_get(&t_c, "missing"));
	assert_int_equal(t_scan("{}"), 0);
	assert_int_equal(t_c.n, 0);
}

static void
test_scan_refuses(void **state)
{
	static const char *bad[] = {
		"",
		"[]",
		"\"s\"",
		"1",
		"{",
		"{\"a\":1",
		"{\"a\":1,}",
		"{\"a\" 1}",
		"{a:1}",
		"{'a':1}",
		"{\"a\":1}x",
		"{\"a\":1}{}",
		"{\"a\":1,\"a\":2}",            /* duplicate */
		"{\"a\":\"\\u0000\"}",          /* NUL */
		"{\"a\":\"\\ud800\"}",          /* lone high surrogate */
		"{\"a\":\"\\udc00\"}",          /* lone low surrogate */
		"{\"a\":\"\\ud800\\u0041\"}",   /* high surrogate then not a low one */
		"{\"a\":\"\\x41\"}",            /* bad escape */
		"{\"a\":\"\\u12G4\"}",          /* bad hex */
		"{\"a\":\"tab\there\"}",        /* raw control character */
		"{\"a\":\"\xc0\xaf\"}",         /* overlong UTF-8 */
		"{\"a\":\"\xed\xa0\x80\"}",     /* UTF-8 surrogate */
		"{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
		"{\"a\":\"\xe2\x82\"}",         /* truncated sequence */
		"{\"a\":\"\xff\"}",
		"{\"a\":01}",
		"{\"a\":-}",
		"{\"a\":1.}",
		"{\"a\":.5}",
		"{\"a\":1e}",
		"{\"a\":+1}",
		"{\"a\":NaN}",
		"{\"a\":tru}",
		"{\"a\":[1,]}",
		"{\"a\":[1 2]}",
		"{\"a\":{\"b\"}}",
		"{\"a\":\"unterminated}",
		"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", /* too deep */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (t_scan(bad[i]) != -1)
			fail_msg("accepted: %s", bad[i]);
	}
	/* the length bounds the input: a NUL inside is just a bad byte */
	assert_int_equal(sb__jwt_scan_claims("{}\0", 3, &t_c), -1);
	assert_int_equal(sb__jwt_scan_claims("{\"a\":1}", 6, &t_c), -1);
}

/* jansson's verdict: one JSON object, no duplicate names anywhere, no NUL in strings. */
static int
t_jansson(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	int ok = json_is_object(j);

	json_decref(j);
	return ok ? 0 : -1;
}

static void
test_scan_agrees_with_jansson(void **state)
{
	static const char base[] =
	    "{\"iss\":\"https://"
	    "auth.example\",\"aud\":[\"switchboard\",\"files\"],\"sub\":\"u-\\u00e9\","
	    "\"scope\":\"a b\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1.7e9,\"x\":{\"y\":[true,"
	    "false,null]},\"tenant_id\":\"t\"}";
	static const char alphabet[] = "{}[]\":,\\ .-+e0123456789tfnu\xc3\xa9\x80";
	char s[sizeof base + 8];
	unsigned seed = 7;
	int agree = 0;

	assert_int_equal(t_scan(base), 0);
	assert_int_equal(t_jansson(base, strlen(base)), 0);
	for (int i = 0; i < 20000; i++) {
		size_t n = strlen(base);
		memcpy(s, base, n + 1);
		for (int k = 1 + rand_r(&seed) % 2; k > 0; k--)
			s[rand_r(&seed) % n] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
		int a = sb__jwt_scan_claims(s, n, &t_c), b = t_jansson(s, n);
		if (a != b)
			fail_msg("scanner %d, jansson %d on: %s", a, b, s);
		agree++;
	}
	assert_int_equal(agree, 20000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_values),
		cmocka_unit_test(test_scan_refuses),
		cmocka_unit_test(test_scan_agrees_with_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
