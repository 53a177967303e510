/* refs_test: references without I/O (refs.c): reading and writing "references" arrays and the
 * $ref rewriting of the bundle, case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refs.h"

static const struct reg_ref refs2[] = {
	{ "address.json", "address", 1, 11 },
	{ "zip", "zips", 3, 12 },
};

/* rewrite text with prefix: the result as compact sorted JSON in out, or NULL when refused */
static char *
rewrite(const char *text, const char *prefix, char *why, size_t wn)
{
	json_t *s = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(s);
	char *out = NULL;
	if (reg_refs_rewrite(s, prefix, refs2, 2, why, wn) == 0)
		out = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(s);
	return out;
}

static void
expect_rewrite(const char *text, const char *prefix, const char *want)
{
	char why[300] = "";
	char *got = rewrite(text, prefix, why, sizeof(why));
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_names_become_pointers(void **state)
{
	(void)state;
	expect_rewrite("{\"properties\":{\"a\":{\"$ref\":\"address.json\"},\"z\":{\"$ref\":"
	               "\"zip#/definitions/code\"}}}",
	               "",
	               "{\"properties\":{\"a\":{\"$ref\":\"#/$sbrefs/11\"},\"z\":{\"$ref\":"
	               "\"#/$sbrefs/12/definitions/code\"}}}");
	/* in arrays (allOf) too */
	expect_rewrite("{\"allOf\":[{\"$ref\":\"zip\"}]}", "",
	               "{\"allOf\":[{\"$ref\":\"#/$sbrefs/12\"}]}");
}

static void
test_local_refs(void **state)
{
	(void)state;
	/* the root's own local refs stay */
	expect_rewrite("{\"$ref\":\"#/definitions/x\"}", "", "{\"$ref\":\"#/definitions/x\"}");
	/* a referenced schema's local refs stay inside it */
	expect_rewrite("{\"items\":{\"$ref\":\"#/definitions/x\"},\"not\":{\"$ref\":\"#\"}}",
	               "/$sbrefs/11",
	               "{\"items\":{\"$ref\":\"#/$sbrefs/11/definitions/x\"},\"not\":{\"$ref\":"
	               "\"#/$sbrefs/11\"}}");
}

static void
test_left_alone(void **state)
{
	(void)state;
	/* data keywords, unknown names, a property called $ref, a non-string $ref */
	expect_rewrite("{\"enum\":[{\"$ref\":\"zip\"}],\"const\":{\"$ref\":\"zip\"},\"default\":{"
	               "\"$ref\":\"zip\"}}",
	               "",
	               "{\"const\":{\"$ref\":\"zip\"},\"default\":{\"$ref\":\"zip\"},\"enum\":[{\"$"
	               "ref\":\"zip\"}]}");
	expect_rewrite("{\"$ref\":\"other.json\"}", "", "{\"$ref\":\"other.json\"}");
	expect_rewrite("{\"properties\":{\"$ref\":{\"$ref\":\"zip\"}}}", "",
	               "{\"properties\":{\"$ref\":{\"$ref\":\"#/$sbrefs/12\"}}}");
	expect_rewrite("{\"$ref\":5}", "", "{\"$ref\":5}");
	expect_rewrite("true", "", "true");
}

static void
test_refused(void **state)
{
	(void)state;
	char why[300] = "";
	/* an anchor fragment is not a pointer */
	assert_null(rewrite("{\"$ref\":\"zip#code\"}", "", why, sizeof(why)));
	assert_non_null(strstr(why, "JSON pointer"));
	why[0] = '\0';
	assert_null(rewrite("{\"$ref\":\"#code\"}", "/$sbrefs/11", why, sizeof(why)));
	assert_non_null(strstr(why, "JSON pointer"));
}

static int
parse(const char *text, struct reg_ref **out, size_t *n)
{
	json_t *a = json_loads(text, JSON_DECODE_ANY, NULL);
	char why[300];
	int rc = reg_refs_parse(a, out, n, why, sizeof(why));
	json_decref(a);
	return rc;
}

static void
test_parse(void **state)
{
	(void)state;
	struct reg_ref *r = NULL;
	size_t n = 9;
	assert_int_equal(parse("[{\"name\":\"a.json\",\"subject\":\"s\",\"version\":2},{\"name\":"
	                       "\"b\",\"subject\":\"t\",\"version\":-1}]",
	                       &r, &n),
	                 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "a.json");
	assert_string_equal(r[1].subject, "t");
	assert_int_equal(r[0].version, 2);
	assert_int_equal(r[1].version, -1);
	/* and back */
	json_t *back = reg_refs_json(r, n);
	char *s = json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "[{\"name\":\"a.json\",\"subject\":\"s\",\"version\":2},{\"name\":"
	                       "\"b\",\"subject\":\"t\",\"version\":-1}]");
	free(s);
	json_decref(back);
	free(r);
	assert_int_equal(parse("null", &r, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(parse("[]", &r, &n), 0);
	assert_int_equal(n, 0);
	const char *bad[] = {
		"{}",
		"[1]",
		"[{\"name\":\"a\",\"subject\":\"s\"}]",
		"[{\"name\":\"a\",\"subject\":\"s\",\"version\":0}]",
		"[{\"name\":\"a\",\"subject\":\"s\",\"version\":-2}]",
		"[{\"name\":\"a\",\"subject\":\"s\",\"version\":\"1\"}]",
		"[{\"name\":\"a#b\",\"subject\":\"s\",\"version\":1}]",
		"[{\"name\":\"\",\"subject\":\"s\",\"version\":1}]",
		"[{\"name\":\"a\",\"subject\":\"\",\"version\":1}]",
		"[{\"name\":\"a\",\"subject\":\"s\\u0001\",\"version\":1}]",
		"[{\"name\":\"a\",\"version\":1}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		assert_int_equal(parse(bad[i], &r, &n), -1);
		assert_null(r);
	}
	/* more than REG_REFS_MAX */
	json_t *many = json_array();
	for (int i = 0; i <= REG_REFS_MAX; i++)
		json_array_append_new(
		    many, json_pack("{s:s,s:s,s:i}", "name", "n", "subject", "s", "version", 1));
	char why[300];
	assert_int_equal(reg_refs_parse(many, &r, &n, why, sizeof(why)), -1);
	json_decref(many);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_become_pointers),
		cmocka_unit_test(test_local_refs),
		cmocka_unit_test(test_left_alone),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
