/* jsv_test.c: the validator shim's own promises: JSON pointers of violations (escaped as RFC
 * 6901 says), a refusal always names at least one violation, schemas that would never finish
 * validating (reference cycles) or that need the network are refused at compile time, and text
 * that is not JSON is told apart from an invalid document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsv.h"

static struct reg_jsv *
compile(const char *s)
{
	struct reg_jsv *v = NULL;
	char err[256];
	assert_int_equal(
	    reg_jsv_compile(s, strlen(s), REG_JSV_DRAFT7, NULL, NULL, &v, err, sizeof(err)), 0);
	return v;
}

static void
refused(const char *s, const char *why)
{
	struct reg_jsv *v = NULL;
	char err[256];
	assert_int_equal(
	    reg_jsv_compile(s, strlen(s), REG_JSV_DRAFT7, NULL, NULL, &v, err, sizeof(err)), -1);
	assert_null(v);
	assert_non_null(strstr(err, why));
}

static void
test_pointers(void **state)
{
	(void)state;
	struct reg_jsv *v = compile("{\"properties\":{\"a/b\":{\"properties\":{\"c~d\":{\"type\":"
	                            "\"array\",\"items\":{\"type\":\"integer\"}}}}}}");
	const char *doc = "{\"a/b\":{\"c~d\":[1,2,\"x\"]}}";
	struct reg_jsv_error e[8];
	size_t n = 0;
	assert_int_equal(reg_jsv_validate(v, doc, strlen(doc), e, 8, &n), 1);
	bool found = false;
	for (size_t i = 0; i < n && i < 8; i++)
		found = found || strcmp(e[i].pointer, "/a~1b/c~0d/2") == 0;
	assert_true(found);
	assert_int_equal(reg_jsv_validate(v, "{\"a/b\":{\"c~d\":[1]}}", 19, e, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(reg_jsv_validate(v, "{\"a/b\":", 7, e, 8, &n), -1);
	reg_jsv_free(v);
}

static void
test_false_names_a_violation(void **state)
{
	(void)state;
	struct reg_jsv *v = compile("false");
	struct reg_jsv_error e[2];
	size_t n = 0;
	assert_int_equal(reg_jsv_validate(v, "1", 1, e, 2, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].pointer, "");
	reg_jsv_free(v);
}

static void
test_refused(void **state)
{
	(void)state;
	refused("{\"$ref\":\"#\"}", "cycle");
	refused("{\"allOf\":[{\"$ref\":\"#\"}]}", "cycle");
	refused(
	    "{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"anyOf\":[{\"$ref\":"
	    "\"#/definitions/a\"}]}},\"$ref\":\"#/definitions/a\"}",
	    "cycle");
	refused("{\"$ref\":\"other.json\"}", "only local references");
	refused("{\"$ref\":\"http://example.com/s.json#\"}", "only local references");
	refused("{\"type\":", "");
	refused("[1]", "a schema is");
	/* recursion that descends into the instance is fine */
	struct reg_jsv *v = compile("{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}");
	struct reg_jsv_error e[2];
	size_t n = 0;
	assert_int_equal(reg_jsv_validate(v, "[[[]],[]]", 9, e, 2, &n), 0);
	assert_int_equal(reg_jsv_validate(v, "[[1]]", 5, e, 2, &n), 1);
	reg_jsv_free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pointers),
		cmocka_unit_test(test_false_names_a_violation),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
