/* filter_test.c: names, strategies, RFC 6901 JSON pointers (the examples of RFC 6901 section 5)
 * and content filters (filter.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pubsub.h"

static void
test_names(void **state)
{
	(void)state;
	assert_true(ps_name_ok("orders"));
	assert_true(ps_name_ok("a.b_c-D9"));
	assert_false(ps_name_ok(""));
	assert_false(ps_name_ok(NULL));
	assert_false(ps_name_ok("orders.dlq"));
	assert_true(ps_name_ok("orders.dlqx"));
	assert_false(ps_name_ok("a/b"));
	assert_false(ps_name_ok("a b"));
	char big[PS_NAME_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(ps_name_ok(big));
	big[PS_NAME_MAX] = '\0';
	assert_true(ps_name_ok(big));
}

static void
test_strategies(void **state)
{
	(void)state;
	static const char *const names[] = { "direct",       "fan_out",  "round_robin",
		                             "least_loaded", "priority", "content" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum ps_strategy s;
		assert_true(ps_strategy_parse(names[i], &s));
		assert_string_equal(ps_strategy_name(s), names[i]);
	}
	enum ps_strategy s;
	assert_false(ps_strategy_parse("fanout", &s));
	assert_false(ps_strategy_parse("", &s));
	assert_false(ps_strategy_parse(NULL, &s));
}

static void
test_pointer_rfc6901(void **state)
{
	(void)state;
	json_error_t err;
	json_t *doc = json_loads("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, "
	                         "\"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, "
	                         "\"m~n\": 8}",
	                         0, &err);
	assert_non_null(doc);
	assert_ptr_equal(ps_json_pointer(doc, ""), doc);
	assert_string_equal(json_string_value(ps_json_pointer(doc, "/foo/0")), "bar");
	assert_int_equal(json_array_size(ps_json_pointer(doc, "/foo")), 2);
	static const struct {
		const char *ptr;
		int want;
	} ints[] = { { "/", 0 },     { "/a~1b", 1 }, { "/c%d", 2 }, { "/e^f", 3 }, { "/g|h", 4 },
		     { "/i\\j", 5 }, { "/k\"l", 6 }, { "/ ", 7 },   { "/m~0n", 8 } };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		json_t *v = ps_json_pointer(doc, ints[i].ptr);
		assert_non_null(v);
		assert_int_equal(json_integer_value(v), ints[i].want);
	}
	/* Names nothing, or malformed. */
	assert_null(ps_json_pointer(doc, "/foo/2"));
	assert_null(ps_json_pointer(doc, "/foo/01"));
	assert_null(ps_json_pointer(doc, "/foo/-"));
	assert_null(ps_json_pointer(doc, "/foo/0/x"));
	assert_null(ps_json_pointer(doc, "/nope"));
	assert_null(ps_json_pointer(doc, "foo"));
	assert_null(ps_json_pointer(doc, "/m~2n"));
	assert_null(ps_json_pointer(doc, "/m~"));
	assert_null(ps_json_pointer(doc, NULL));
	json_decref(doc);
}

/* Builds a filter from (header name, value) and (pointer, JSON) pairs. */
static json_t *
mk_filter(const char *hname, const char *hval, const char *ptr, const char *eq, char *path,
          char *why)
{
	Sb__Pubsub__Filter f = SB__PUBSUB__FILTER__INIT;
	Sb__Pubsub__HeaderFilter h = SB__PUBSUB__HEADER_FILTER__INIT;
	Sb__Pubsub__PayloadFilter p = SB__PUBSUB__PAYLOAD_FILTER__INIT;
	Sb__Json__Raw raw = SB__JSON__RAW__INIT;
	Sb__Pubsub__HeaderFilter *hs[] = { &h };
	Sb__Pubsub__PayloadFilter *ps[] = { &p };
	if (hname != NULL) {
		h.name = (char *)hname;
		h.equals = (char *)hval;
		f.headers = hs;
		f.n_headers = 1;
	}
	if (ptr != NULL) {
		p.pointer = (char *)ptr;
		raw.json = (char *)eq;
		p.equals = &raw;
		f.payload = ps;
		f.n_payload = 1;
	}
	return ps_filter_from_pb(&f, path, 64, why, 96);
}

static void
test_filters(void **state)
{
	(void)state;
	char path[64], why[96];
	json_error_t err;
	json_t *f = mk_filter("type", "order", "/lines/0/qty", "100", path, why);
	assert_non_null(f);
	json_t *h_ok = json_loads("{\"type\":\"order\",\"x\":\"y\"}", 0, &err);
	json_t *h_bad = json_loads("{\"type\":\"refund\"}", 0, &err);
	json_t *h_none = json_object();
	json_t *p_ok = json_loads("{\"lines\":[{\"qty\":100}]}", 0, &err);
	json_t *p_str = json_loads("{\"lines\":[{\"qty\":\"100\"}]}", 0, &err);
	json_t *p_miss = json_loads("{\"lines\":[]}", 0, &err);
	assert_true(ps_filter_match(f, h_ok, p_ok));
	assert_false(ps_filter_match(f, h_bad, p_ok));
	assert_false(ps_filter_match(f, h_none, p_ok));
	assert_false(ps_filter_match(f, h_ok, p_str));
	assert_false(ps_filter_match(f, h_ok, p_miss));
	assert_false(ps_filter_match(f, h_ok, NULL));
	json_decref(f);
	/* The empty filter takes everything. */
	f = mk_filter(NULL, NULL, NULL, NULL, path, why);
	assert_non_null(f);
	assert_true(ps_filter_match(f, h_none, NULL));
	json_decref(f);
	/* Objects compare by value, not by member order. */
	f = mk_filter(NULL, NULL, "/o", "{\"a\":1,\"b\":[true,null]}", path, why);
	json_t *p_obj = json_loads("{\"o\":{\"b\":[true,null],\"a\":1}}", 0, &err);
	assert_true(ps_filter_match(f, h_none, p_obj));
	json_decref(f);
	/* Bad filters name their field. */
	assert_null(mk_filter(NULL, NULL, "lines", "1", path, why));
	assert_string_equal(path, "filter.payload[0].pointer");
	assert_null(mk_filter(NULL, NULL, "/a~9", "1", path, why));
	assert_null(mk_filter("", "x", NULL, NULL, path, why));
	assert_string_equal(path, "filter.headers[0].name");
	assert_null(mk_filter(NULL, NULL, "/a", "{nope", path, why));
	assert_string_equal(path, "filter.payload[0].equals");
	json_decref(p_obj);
	json_decref(h_ok);
	json_decref(h_bad);
	json_decref(h_none);
	json_decref(p_ok);
	json_decref(p_str);
	json_decref(p_miss);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_strategies),
		cmocka_unit_test(test_pointer_rfc6901),
		cmocka_unit_test(test_filters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
