/* compat_test.c: every difference reg_compat_diff classifies, one row each (original, update,
 * the difference expected and its class), and every compatibility level over version
 * histories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "compat.h"

struct row {
	const char *original, *update, *type, *path;
	bool compatible;
};

#define OBJ(p)      "{\"type\":\"object\",\"properties\":{" p "}}"
#define OBJC(p, ap) "{\"type\":\"object\",\"properties\":{" p "},\"additionalProperties\":" ap "}"

static const struct row rows[] = {
	/* types */
	{ "{\"type\":\"integer\"}", "{\"type\":\"number\"}", "TYPE_EXTENDED", "#/type", true },
	{ "{\"type\":\"string\"}", "{\"type\":[\"string\",\"null\"]}", "TYPE_EXTENDED", "#/type",
	  true },
	{ "{\"type\":\"number\"}", "{\"type\":\"integer\"}", "TYPE_NARROWED", "#/type", false },
	{ "{\"type\":\"string\"}", "{\"type\":\"integer\"}", "TYPE_CHANGED", "#/type", false },
	{ "{}", "{\"type\":\"string\"}", "TYPE_NARROWED", "#/type", false },
	/* strings */
	{ "{\"type\":\"string\"}", "{\"type\":\"string\",\"maxLength\":5}", "MAX_LENGTH_ADDED",
	  "#/maxLength", false },
	{ "{\"type\":\"string\",\"maxLength\":5}", "{\"type\":\"string\"}", "MAX_LENGTH_REMOVED",
	  "#/maxLength", true },
	{ "{\"type\":\"string\",\"maxLength\":5}", "{\"type\":\"string\",\"maxLength\":9}",
	  "MAX_LENGTH_INCREASED", "#/maxLength", true },
	{ "{\"type\":\"string\",\"maxLength\":9}", "{\"type\":\"string\",\"maxLength\":5}",
	  "MAX_LENGTH_DECREASED", "#/maxLength", false },
	{ "{\"type\":\"string\"}", "{\"type\":\"string\",\"minLength\":2}", "MIN_LENGTH_ADDED",
	  "#/minLength", false },
	{ "{\"type\":\"string\",\"minLength\":2}", "{\"type\":\"string\"}", "MIN_LENGTH_REMOVED",
	  "#/minLength", true },
	{ "{\"type\":\"string\",\"minLength\":2}", "{\"type\":\"string\",\"minLength\":3}",
	  "MIN_LENGTH_INCREASED", "#/minLength", false },
	{ "{\"type\":\"string\",\"minLength\":3}", "{\"type\":\"string\",\"minLength\":2}",
	  "MIN_LENGTH_DECREASED", "#/minLength", true },
	{ "{\"type\":\"string\"}", "{\"type\":\"string\",\"pattern\":\"^a\"}", "PATTERN_ADDED",
	  "#/pattern", false },
	{ "{\"type\":\"string\",\"pattern\":\"^a\"}", "{\"type\":\"string\"}", "PATTERN_REMOVED",
	  "#/pattern", true },
	{ "{\"type\":\"string\",\"pattern\":\"^a\"}", "{\"type\":\"string\",\"pattern\":\"^b\"}",
	  "PATTERN_CHANGED", "#/pattern", false },
	/* numbers */
	{ "{\"type\":\"number\"}", "{\"type\":\"number\",\"maximum\":10}", "MAXIMUM_ADDED",
	  "#/maximum", false },
	{ "{\"type\":\"number\",\"maximum\":10}", "{\"type\":\"number\"}", "MAXIMUM_REMOVED",
	  "#/maximum", true },
	{ "{\"type\":\"number\",\"maximum\":10}", "{\"type\":\"number\",\"maximum\":11}",
	  "MAXIMUM_INCREASED", "#/maximum", true },
	{ "{\"type\":\"number\",\"maximum\":10}", "{\"type\":\"number\",\"maximum\":9}",
	  "MAXIMUM_DECREASED", "#/maximum", false },
	{ "{\"type\":\"number\"}", "{\"type\":\"number\",\"minimum\":1}", "MINIMUM_ADDED",
	  "#/minimum", false },
	{ "{\"type\":\"number\",\"minimum\":1}", "{\"type\":\"number\"}", "MINIMUM_REMOVED",
	  "#/minimum", true },
	{ "{\"type\":\"number\",\"minimum\":1}", "{\"type\":\"number\",\"minimum\":2}",
	  "MINIMUM_INCREASED", "#/minimum", false },
	{ "{\"type\":\"number\",\"minimum\":2}", "{\"type\":\"number\",\"minimum\":1}",
	  "MINIMUM_DECREASED", "#/minimum", true },
	{ "{\"type\":\"number\"}", "{\"type\":\"number\",\"exclusiveMaximum\":5}",
	  "EXCLUSIVE_MAXIMUM_ADDED", "#/exclusiveMaximum", false },
	{ "{\"type\":\"number\",\"exclusiveMaximum\":5}", "{\"type\":\"number\"}",
	  "EXCLUSIVE_MAXIMUM_REMOVED", "#/exclusiveMaximum", true },
	{ "{\"type\":\"number\",\"exclusiveMaximum\":5}",
	  "{\"type\":\"number\",\"exclusiveMaximum\":6}", "EXCLUSIVE_MAXIMUM_INCREASED",
	  "#/exclusiveMaximum", true },
	{ "{\"type\":\"number\",\"exclusiveMaximum\":5}",
	  "{\"type\":\"number\",\"exclusiveMaximum\":4}", "EXCLUSIVE_MAXIMUM_DECREASED",
	  "#/exclusiveMaximum", false },
	{ "{\"type\":\"number\"}", "{\"type\":\"number\",\"exclusiveMinimum\":5}",
	  "EXCLUSIVE_MINIMUM_ADDED", "#/exclusiveMinimum", false },
	{ "{\"type\":\"number\",\"exclusiveMinimum\":5}", "{\"type\":\"number\"}",
	  "EXCLUSIVE_MINIMUM_REMOVED", "#/exclusiveMinimum", true },
	{ "{\"type\":\"number\",\"exclusiveMinimum\":5}",
	  "{\"type\":\"number\",\"exclusiveMinimum\":6}", "EXCLUSIVE_MINIMUM_INCREASED",
	  "#/exclusiveMinimum", false },
	{ "{\"type\":\"number\",\"exclusiveMinimum\":5}",
	  "{\"type\":\"number\",\"exclusiveMinimum\":4}", "EXCLUSIVE_MINIMUM_DECREASED",
	  "#/exclusiveMinimum", true },
	{ "{\"type\":\"number\"}", "{\"type\":\"number\",\"multipleOf\":2}", "MULTIPLE_OF_ADDED",
	  "#/multipleOf", false },
	{ "{\"type\":\"number\",\"multipleOf\":2}", "{\"type\":\"number\"}", "MULTIPLE_OF_REMOVED",
	  "#/multipleOf", true },
	{ "{\"type\":\"number\",\"multipleOf\":10}", "{\"type\":\"number\",\"multipleOf\":5}",
	  "MULTIPLE_OF_REDUCED", "#/multipleOf", true },
	{ "{\"type\":\"number\",\"multipleOf\":5}", "{\"type\":\"number\",\"multipleOf\":10}",
	  "MULTIPLE_OF_EXPANDED", "#/multipleOf", false },
	{ "{\"type\":\"number\",\"multipleOf\":3}", "{\"type\":\"number\",\"multipleOf\":5}",
	  "MULTIPLE_OF_CHANGED", "#/multipleOf", false },
	/* enum and const */
	{ "{\"enum\":[1,2]}", "{\"enum\":[1,2,3]}", "ENUM_ARRAY_EXTENDED", "#/enum", true },
	{ "{\"enum\":[1,2,3]}", "{\"enum\":[1,2]}", "ENUM_ARRAY_NARROWED", "#/enum", false },
	{ "{\"enum\":[1,2]}", "{\"enum\":[1,3]}", "ENUM_ARRAY_CHANGED", "#/enum", false },
	{ "{}", "{\"enum\":[1]}", "ENUM_ARRAY_NARROWED", "#/enum", false },
	{ "{\"type\":\"integer\",\"enum\":[1]}", "{\"type\":\"integer\"}", "ENUM_ARRAY_EXTENDED",
	  "#/enum", true },
	{ "{}", "{\"const\":1}", "CONST_ADDED", "#/const", false },
	{ "{\"type\":\"integer\",\"const\":1}", "{\"type\":\"integer\"}", "CONST_REMOVED",
	  "#/const", true },
	{ "{\"const\":1}", "{\"const\":2}", "CONST_CHANGED", "#/const", false },
	/* objects: properties added, by the original's content model */
	{ OBJ("\"a\":{}"), OBJ("\"a\":{},\"b\":{\"type\":\"string\"}"),
	  "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/b", false },
	{ OBJ("\"a\":{}"), OBJ("\"a\":{},\"b\":{}"),
	  "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{}", "false"), OBJC("\"a\":{},\"b\":{\"type\":\"string\"}", "false"),
	  "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{}", "false"),
	  "{\"type\":\"object\",\"properties\":{\"a\":{},\"b\":{}},\"required\":[\"b\"],"
	  "\"additionalProperties\":false}",
	  "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/b", false },
	{ OBJC("\"a\":{}", "false"),
	  "{\"type\":\"object\",\"properties\":{\"a\":{},\"b\":{\"default\":1}},\"required\":["
	  "\"b\"],"
	  "\"additionalProperties\":false}",
	  "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{}", "{\"type\":\"string\"}"),
	  OBJC("\"a\":{},\"b\":{\"type\":[\"string\",\"null\"]}", "{\"type\":\"string\"}"),
	  "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{}", "{\"type\":\"string\"}"),
	  OBJC("\"a\":{},\"b\":{\"type\":\"integer\"}", "{\"type\":\"string\"}"),
	  "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "#/properties/b", false },
	/* properties removed, by the update's content model */
	{ OBJ("\"a\":{},\"b\":{\"type\":\"string\"}"), OBJ("\"a\":{}"),
	  "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{},\"b\":{\"type\":\"string\"}", "false"), OBJC("\"a\":{}", "false"),
	  "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/b", false },
	{ OBJC("\"a\":{},\"b\":false", "false"), OBJC("\"a\":{}", "false"),
	  "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{},\"b\":{\"type\":\"string\"}", "{\"type\":\"string\"}"),
	  OBJC("\"a\":{}", "{\"type\":\"string\"}"),
	  "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "#/properties/b", true },
	{ OBJC("\"a\":{},\"b\":{\"type\":\"integer\"}", "{\"type\":\"string\"}"),
	  OBJC("\"a\":{}", "{\"type\":\"string\"}"),
	  "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "#/properties/b", false },
	/* required */
	{ OBJ("\"a\":{}"), "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"a\"]}",
	  "REQUIRED_ATTRIBUTE_ADDED", "#/required/a", false },
	{ OBJ("\"a\":{\"default\":0}"),
	  "{\"type\":\"object\",\"properties\":{\"a\":{\"default\":0}},\"required\":[\"a\"]}",
	  "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", "#/required/a", true },
	{ "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"a\"]}", OBJ("\"a\":{}"),
	  "REQUIRED_ATTRIBUTE_REMOVED", "#/required/a", true },
	/* additionalProperties */
	{ OBJC("\"a\":{}", "false"), OBJ("\"a\":{}"), "ADDITIONAL_PROPERTIES_ADDED",
	  "#/additionalProperties", true },
	{ OBJ("\"a\":{}"), OBJC("\"a\":{}", "false"), "ADDITIONAL_PROPERTIES_REMOVED",
	  "#/additionalProperties", false },
	{ OBJ("\"a\":{}"), OBJC("\"a\":{}", "{\"type\":\"string\"}"),
	  "ADDITIONAL_PROPERTIES_NARROWED", "#/additionalProperties", false },
	{ OBJC("\"a\":{}", "{\"type\":\"string\"}"), OBJ("\"a\":{}"),
	  "ADDITIONAL_PROPERTIES_EXTENDED", "#/additionalProperties", true },
	{ "{\"type\":\"object\"}", "{\"type\":\"object\",\"maxProperties\":3}",
	  "MAX_PROPERTIES_ADDED", "#/maxProperties", false },
	{ "{\"type\":\"object\",\"minProperties\":3}", "{\"type\":\"object\",\"minProperties\":1}",
	  "MIN_PROPERTIES_DECREASED", "#/minProperties", true },
	/* nested: a type narrowed deep inside, with its path */
	{ OBJ("\"a\":" OBJ("\"b~/\":{\"type\":\"number\"}")),
	  OBJ("\"a\":" OBJ("\"b~/\":{\"type\":\"integer\"}")), "TYPE_NARROWED",
	  "#/properties/a/properties/b~0~1/type", false },
	/* arrays */
	{ "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}",
	  "{\"type\":\"array\",\"items\":{\"type\":\"number\"}}", "TYPE_EXTENDED", "#/items/type",
	  true },
	{ "{\"type\":\"array\"}", "{\"type\":\"array\",\"maxItems\":3}", "MAX_ITEMS_ADDED",
	  "#/maxItems", false },
	{ "{\"type\":\"array\",\"minItems\":3}", "{\"type\":\"array\",\"minItems\":4}",
	  "MIN_ITEMS_INCREASED", "#/minItems", false },
	{ "{\"type\":\"array\"}", "{\"type\":\"array\",\"uniqueItems\":true}", "UNIQUE_ITEMS_ADDED",
	  "#/uniqueItems", false },
	{ "{\"type\":\"array\",\"uniqueItems\":true}", "{\"type\":\"array\"}",
	  "UNIQUE_ITEMS_REMOVED", "#/uniqueItems", true },
	{ "{\"type\":\"array\",\"items\":[{}],\"additionalItems\":false}",
	  "{\"type\":\"array\",\"items\":[{},{\"type\":\"string\"}],\"additionalItems\":false}",
	  "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", "#/items/1", true },
	{ "{\"type\":\"array\",\"items\":[{}]}",
	  "{\"type\":\"array\",\"items\":[{},{\"type\":\"string\"}]}",
	  "ITEM_ADDED_TO_OPEN_CONTENT_MODEL", "#/items/1", false },
	{ "{\"type\":\"array\",\"items\":[{},{\"type\":\"string\"}]}",
	  "{\"type\":\"array\",\"items\":[{}]}", "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
	  "#/items/1", true },
	{ "{\"type\":\"array\",\"items\":[{},{\"type\":\"string\"}],\"additionalItems\":false}",
	  "{\"type\":\"array\",\"items\":[{}],\"additionalItems\":false}",
	  "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/items/1", false },
	{ "{\"type\":\"array\",\"items\":[{}],\"additionalItems\":false}",
	  "{\"type\":\"array\",\"items\":[{}]}", "ADDITIONAL_ITEMS_ADDED", "#/additionalItems",
	  true },
	{ "{\"type\":\"array\",\"items\":[{}]}",
	  "{\"type\":\"array\",\"items\":[{}],\"additionalItems\":false}",
	  "ADDITIONAL_ITEMS_REMOVED", "#/additionalItems", false },
	/* combinators */
	{ "{\"anyOf\":[{\"type\":\"string\"}]}",
	  "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "SUM_TYPE_EXTENDED",
	  "#/anyOf", true },
	{ "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}",
	  "{\"oneOf\":[{\"type\":\"string\"}]}", "COMBINED_TYPE_SUBSCHEMAS_CHANGED", "#/oneOf",
	  false },
	{ "{\"allOf\":[{\"type\":\"number\"},{\"minimum\":1}]}",
	  "{\"allOf\":[{\"type\":\"number\"}]}", "PRODUCT_TYPE_NARROWED", "#/allOf", true },
	{ "{\"allOf\":[{\"type\":\"number\"}]}",
	  "{\"allOf\":[{\"type\":\"number\"},{\"minimum\":1}]}", "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
	  "#/allOf", false },
	{ "{\"anyOf\":[{\"type\":\"string\"}]}", "{\"oneOf\":[{\"type\":\"string\"}]}",
	  "COMBINED_TYPE_CHANGED", "#/oneOf", false },
	{ "{\"not\":{\"type\":\"string\"}}", "{\"not\":{\"type\":[\"string\",\"null\"]}}",
	  "NOT_TYPE_NARROWED", "#/not", false },
	{ "{\"not\":{\"type\":[\"string\",\"null\"]}}", "{\"not\":{\"type\":\"string\"}}",
	  "NOT_TYPE_EXTENDED", "#/not", true },
	/* boolean schemas */
	{ "false", "{\"type\":\"string\"}", "SCHEMA_EXTENDED", "#", true },
	{ "{\"type\":\"string\"}", "true", "SCHEMA_EXTENDED", "#", true },
	{ "{\"type\":\"string\"}", "false", "SCHEMA_REMOVED", "#", false },
	/* local $ref, resolved in each schema */
	{ "{\"definitions\":{\"n\":{\"type\":\"integer\"}},\"type\":\"object\","
	  "\"properties\":{\"a\":{\"$ref\":\"#/definitions/n\"}}}",
	  "{\"definitions\":{\"n\":{\"type\":\"string\"}},\"type\":\"object\","
	  "\"properties\":{\"a\":{\"$ref\":\"#/definitions/n\"}}}",
	  "TYPE_CHANGED", "#/properties/a/type", false },
};

static json_t *
load(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
	if (v == NULL)
		fail_msg("bad JSON in the test: %s: %s", s, e.text);
	return v;
}

static void
test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		json_t *o = load(r->original), *u = load(r->update);
		struct reg_diffs d = { 0 };
		assert_int_equal(reg_compat_diff(o, u, &d), 0);
		bool found = false;
		for (size_t k = 0; k < d.n; k++) {
			if (strcmp(d.v[k].type, r->type) == 0 &&
			    strcmp(d.v[k].path, r->path) == 0) {
				found = true;
				if (d.v[k].compatible != r->compatible)
					fail_msg("%s at %s: classified %s", r->type, r->path,
					         d.v[k].compatible ? "compatible" : "incompatible");
			}
		}
		if (!found) {
			for (size_t k = 0; k < d.n; k++)
				printf("  got %s at %s\n", d.v[k].type, d.v[k].path);
			fail_msg("row %zu: %s at %s not found", i, r->type, r->path);
		}
		/* the verdict of the whole diff agrees with the row when it is the only one */
		if (d.n == 1)
			assert_int_equal(reg_diffs_compatible(&d), r->compatible);
		/* an identical schema has no difference */
		struct reg_diffs same = { 0 };
		assert_int_equal(reg_compat_diff(o, o, &same), 0);
		assert_int_equal(same.n, 0);
		reg_diffs_free(&same);
		reg_diffs_free(&d);
		json_decref(o);
		json_decref(u);
	}
}

/* A recursive schema compares without looping. */
static void
test_recursive(void **state)
{
	(void)state;
	json_t *o = load("{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#\"},"
	                 "\"v\":{\"type\":\"integer\"}}}");
	json_t *u = load("{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#\"},"
	                 "\"v\":{\"type\":\"number\"}}}");
	struct reg_diffs d = { 0 };
	assert_int_equal(reg_compat_diff(o, u, &d), 0);
	assert_true(d.n >= 1);
	assert_true(reg_diffs_compatible(&d));
	reg_diffs_free(&d);
	json_decref(o);
	json_decref(u);
}

/* nested builds anyOf trees of the given depth and width whose leaves are strings of at most
 * base + i characters. */
static json_t *
nested(int depth, int width, int base)
{
	json_t *arr = json_array();
	for (int i = 0; i < width; i++)
		json_array_append_new(arr, depth == 0 ? json_pack("{s:s,s:i}", "type", "string",
		                                                  "maxLength", base + i)
		                                      : nested(depth - 1, width, base));
	return json_pack("{s:o}", "anyOf", arr);
}

/* A hostile schema (sub-schema matching grows as a product) stops at the step budget with an
 * incompatible COMPARISON_TOO_COMPLEX instead of running for ever. */
static void
test_budget(void **state)
{
	(void)state;
	json_t *o = nested(4, 12, 10), *u = nested(4, 12, 0); /* every leaf narrowed */
	struct reg_diffs d = { 0 };
	assert_int_equal(reg_compat_diff(o, u, &d), 0);
	bool found = false;
	for (size_t k = 0; k < d.n; k++)
		found = found || strcmp(d.v[k].type, "COMPARISON_TOO_COMPLEX") == 0;
	assert_true(found);
	assert_false(reg_diffs_compatible(&d));
	reg_diffs_free(&d);
	/* a small tree of the same shape is compared in full */
	json_t *so = nested(1, 3, 10), *su = nested(1, 3, 0);
	assert_int_equal(reg_compat_diff(so, su, &d), 0);
	for (size_t k = 0; k < d.n; k++)
		assert_string_not_equal(d.v[k].type, "COMPARISON_TOO_COMPLEX");
	assert_false(reg_diffs_compatible(&d));
	reg_diffs_free(&d);
	json_decref(o);
	json_decref(u);
	json_decref(so);
	json_decref(su);
}

static bool
check(enum reg_compat_level l, const char *schema, const char *const *prev, size_t n)
{
	json_t *s = load(schema);
	json_t *p[8];
	for (size_t i = 0; i < n; i++)
		p[i] = load(prev[i]);
	bool ok = false;
	struct reg_diffs d = { 0 };
	assert_int_equal(reg_compat_check(l, s, (const json_t *const *)p, n, &ok, &d), 0);
	assert_int_equal(ok, d.n == 0);
	reg_diffs_free(&d);
	for (size_t i = 0; i < n; i++)
		json_decref(p[i]);
	json_decref(s);
	return ok;
}

/* Levels: BACKWARD diffs (old -> new), FORWARD (new -> old), FULL both; the transitive levels
 * check every earlier version, the others the latest only. */
static void
test_levels(void **state)
{
	(void)state;
	const char *v1 = OBJ("\"a\":{\"type\":\"string\"}");
	const char *v2 = OBJ("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"integer\"}");
	const char *one[] = { v1 };
	assert_true(check(REG_COMPAT_NONE, "{\"type\":\"integer\"}", one, 1));
	assert_false(check(REG_COMPAT_BACKWARD, v2, one, 1));
	assert_true(check(REG_COMPAT_FORWARD, v2, one, 1));
	assert_false(check(REG_COMPAT_FULL, v2, one, 1));
	/* closed models: an optional property added is backward; removing it again is forward */
	const char *c1 = OBJC("\"a\":{\"type\":\"string\"}", "false");
	const char *c2 = OBJC("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"integer\"}", "false");
	const char *cone[] = { c1 };
	assert_true(check(REG_COMPAT_BACKWARD, c2, cone, 1));
	assert_false(check(REG_COMPAT_FORWARD, c2, cone, 1));
	/* widening: integer -> number is backward, not forward, not full */
	const char *i1 = "{\"type\":\"integer\"}", *n1 = "{\"type\":\"number\"}";
	const char *ione[] = { i1 };
	assert_true(check(REG_COMPAT_BACKWARD, n1, ione, 1));
	assert_false(check(REG_COMPAT_FORWARD, n1, ione, 1));
	assert_false(check(REG_COMPAT_FULL, n1, ione, 1));
	assert_true(check(REG_COMPAT_FULL, i1, ione, 1));
	/* transitive: a history where only the oldest version breaks the rule */
	const char *h1 = "{\"type\":\"string\",\"maxLength\":10}";
	const char *h2 = "{\"type\":\"string\"}";
	const char *hist[] = { h1, h2 };
	const char *nw = "{\"type\":\"string\",\"maxLength\":20}";
	/* forward to the latest (no limit): the old reader reads anything; forward to h1: data
	 * of length 15 breaks h1 */
	assert_true(check(REG_COMPAT_FORWARD, nw, hist, 2));
	assert_false(check(REG_COMPAT_FORWARD_TRANSITIVE, nw, hist, 2));
	/* backward: new reads h2's data? h2 has no limit, so no; h1's data (<= 10) yes */
	assert_false(check(REG_COMPAT_BACKWARD, nw, hist, 2));
	const char *hist2[] = { h2, h1 };
	assert_true(check(REG_COMPAT_BACKWARD, nw, hist2, 2));
	assert_false(check(REG_COMPAT_BACKWARD_TRANSITIVE, nw, hist2, 2));
	assert_false(check(REG_COMPAT_FULL_TRANSITIVE, nw, hist2, 2));
	const char *same[] = { nw, nw };
	assert_true(check(REG_COMPAT_FULL_TRANSITIVE, nw, same, 2));
}

static void
test_level_names(void **state)
{
	(void)state;
	enum reg_compat_level l;
	const char *names[] = { "NONE",           "BACKWARD",           "BACKWARD_TRANSITIVE",
		                "FORWARD",        "FORWARD_TRANSITIVE", "FULL",
		                "FULL_TRANSITIVE" };
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(reg_compat_level_parse(names[i], &l), 0);
		assert_string_equal(reg_compat_level_name(l), names[i]);
	}
	assert_int_not_equal(reg_compat_level_parse("backward", &l), 0);
	assert_int_not_equal(reg_compat_level_parse(NULL, &l), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),        cmocka_unit_test(test_recursive),
		cmocka_unit_test(test_budget),      cmocka_unit_test(test_levels),
		cmocka_unit_test(test_level_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
