/* auth_scope_test.c: deciding the scope of a new token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "sb_err.h"

static void
test_scope_has_exact_words(void **state)
{
	(void)state;
	assert_true(auth_scope_has("a b  messages:read", "messages:read"));
	assert_false(auth_scope_has("messages:read", "messages"));
	assert_false(auth_scope_has("messages:readx", "messages:read"));
	assert_false(auth_scope_has("", "a"));
	assert_false(auth_scope_has(NULL, "a"));
}

static void
test_scope_default_is_all_allowed(void **state)
{
	char out[128];
	(void)state;
	assert_int_equal(auth_scope_grant("a b c", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "a b c");
	assert_int_equal(auth_scope_grant("a b c", "", NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "a b c");
	assert_int_equal(auth_scope_grant("", "", NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void
test_scope_request_must_be_subset(void **state)
{
	char out[128];
	(void)state;
	assert_int_equal(auth_scope_grant("a b c", "c a a", NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "c a");
	assert_int_equal(auth_scope_grant("a b c", "a d", NULL, out, sizeof(out)), SB_EINVAL);
	assert_int_equal(auth_scope_grant("a b", "a\"b", NULL, out, sizeof(out)), SB_EINVAL);
}

static void
test_scope_deny_list(void **state)
{
	char out[128];
	(void)state;
	assert_int_equal(auth_scope_grant("tokens:issue auth:admin m:r", NULL,
	                                  "tokens:issue auth:admin", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "m:r");
	assert_int_equal(
	    auth_scope_grant("tokens:issue m:r", "tokens:issue", "tokens:issue", out, sizeof(out)),
	    SB_EINVAL);
}

static void
test_scope_too_long(void **state)
{
	char out[4];
	(void)state;
	assert_int_equal(auth_scope_grant("abc def", NULL, NULL, out, sizeof(out)), SB_ERANGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_has_exact_words),
		cmocka_unit_test(test_scope_default_is_all_allowed),
		cmocka_unit_test(test_scope_request_must_be_subset),
		cmocka_unit_test(test_scope_deny_list),
		cmocka_unit_test(test_scope_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
