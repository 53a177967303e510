/* types_test.c: every Cassandra type's check and PostgreSQL form (types.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cdcsink.h"
#include "sb_err.h"

/* conv converts the JSON text v of type ty; returns the result code, the text in out. */
static int
conv(const char *ty, const char *v, char *out, size_t n)
{
	struct cdc_type *t = NULL;
	char err[200];
	json_t *j = json_loads(v, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(cdc_type_parse(ty, &t, err, sizeof(err)), 0);
	assert_non_null(j);
	int rv = cdc_value_to_pg(t, j, &b, err, sizeof(err));
	snprintf(out, n, "%s", rv == 0 ? (b.data ? b.data : "") : err);
	sb_buf_free(&b);
	json_decref(j);
	cdc_type_free(t);
	return rv;
}

static void
ok(const char *ty, const char *v, const char *want)
{
	char out[512];
	int rv = conv(ty, v, out, sizeof(out));
	if (rv != 0)
		fail_msg("%s %s: %s", ty, v, out);
	assert_string_equal(out, want);
}

static void
bad(const char *ty, const char *v, int want)
{
	char out[512];
	assert_int_equal(conv(ty, v, out, sizeof(out)), want);
	assert_true(out[0] != '\0');
}

static void
test_uuid(void **s)
{
	(void)s;
	ok("uuid", "\"6BA7B810-9DAD-41D1-80B4-00C04FD430C8\"",
	   "6ba7b810-9dad-41d1-80b4-00c04fd430c8");
	ok("timeuuid", "\"e2fc7660-9f66-11ee-8c90-0242ac120002\"",
	   "e2fc7660-9f66-11ee-8c90-0242ac120002");
	bad("timeuuid", "\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\"", SB_EINVAL); /* version 4 */
	bad("uuid", "\"6ba7b810\"", SB_EINVAL);
	bad("uuid", "17", SB_EPROTO);
}

static void
test_text(void **s)
{
	(void)s;
	ok("text", "\"h\\u00e9\\\"\"", "h\xc3\xa9\"");
	ok("varchar", "\"\"", "");
	ok("ascii", "\"abc\"", "abc");
	bad("ascii", "\"\\u00e9\"", SB_EINVAL);
	bad("text", "\"a\\u0000b\"", SB_EINVAL);
	bad("text", "{\"a\":1}", SB_EPROTO);
}

static void
test_ints(void **s)
{
	(void)s;
	ok("tinyint", "-128", "-128");
	bad("tinyint", "128", SB_EINVAL);
	ok("smallint", "32767", "32767");
	bad("smallint", "-32769", SB_EINVAL);
	ok("int", "-2147483648", "-2147483648");
	bad("int", "2147483648", SB_EINVAL);
	bad("int", "1.5", SB_EINVAL);
	bad("int", "\"1\"", SB_EPROTO);
	ok("bigint", "9223372036854775807", "9223372036854775807");
	ok("counter", "-5", "-5");
	ok("varint", "\"-123456789012345678901234567890\"", "-123456789012345678901234567890");
	ok("varint", "12", "12");
	bad("varint", "\"1.5\"", SB_EINVAL);
	bad("varint", "1.5", SB_EINVAL);
}

static void
test_decimals(void **s)
{
	(void)s;
	ok("decimal", "\"-12345.678900\"", "-12345.678900");
	ok("decimal", "\"1e-5\"", "1e-5");
	ok("decimal", "2.5", "2.5");
	bad("decimal", "\"1.2.3\"", SB_EINVAL);
	bad("decimal", "\"NaN\"", SB_EINVAL);
	ok("float", "1.5", "1.5");
	ok("float", "\"NaN\"", "NaN");
	bad("float", "1e39", SB_EINVAL);
	ok("double", "2.718281828459045", "2.7182818284590451");
	ok("double", "\"-Infinity\"", "-Infinity");
	bad("double", "true", SB_EPROTO);
	ok("boolean", "true", "true");
	ok("boolean", "false", "false");
	bad("boolean", "1", SB_EPROTO);
}

static void
test_time(void **s)
{
	(void)s;
	ok("timestamp", "1700000000123", "2023-11-14 22:13:20.123+00");
	ok("timestamp", "-1", "1969-12-31 23:59:59.999+00");
	ok("timestamp", "\"2023-11-14T22:13:20.123456Z\"", "2023-11-14T22:13:20.123456Z");
	bad("timestamp", "\"yesterday\"", SB_EINVAL);
	bad("timestamp", "253402300800000", SB_EINVAL); /* year 10000 */
	ok("date", "19675", "2023-11-14");
	ok("date", "-1", "1969-12-31");
	ok("date", "\"2024-02-29\"", "2024-02-29");
	bad("date", "\"2024-13-01\"", SB_EINVAL);
	ok("time", "3723000004000", "01:02:03.000004");
	ok("time", "0", "00:00:00.000000");
	bad("time", "86400000000000", SB_EINVAL);
	ok("duration", "\"P1Y2M3DT4H5M6.5S\"", "P1Y2M3DT4H5M6.5S");
	ok("duration", "\"-PT1S\"", "-PT1S");
	ok("duration", "1500000", "1500 microseconds");
	bad("duration", "\"1 day\"", SB_EINVAL);
	bad("duration", "\"P\"", SB_EINVAL);
}

static void
test_blob_inet(void **s)
{
	(void)s;
	ok("blob", "\"AQID/w==\"", "\\x010203ff");
	ok("blob", "\"\"", "\\x");
	ok("blob", "\"AAE=\"", "\\x0001");
	bad("blob", "\"AQI\"", SB_EINVAL);
	bad("blob", "\"A=AA\"", SB_EINVAL);
	bad("blob", "\"AR==\"", SB_EINVAL); /* non-zero unused bits */
	ok("inet", "\"10.0.0.1\"", "10.0.0.1");
	ok("inet", "\"2001:DB8::1\"", "2001:db8::1");
	bad("inet", "\"10.0.0.256\"", SB_EINVAL);
}

static void
test_collections(void **s)
{
	(void)s;
	ok("list<int>", "[1,2,3]", "{\"1\",\"2\",\"3\"}");
	ok("set<text>", "[\"a\",\"b \\\"c\\\"\"]", "{\"a\",\"b \\\"c\\\"\"}");
	ok("set<text>", "[]", "{}");
	bad("list<int>", "[1,\"x\"]", SB_EPROTO);
	bad("list<int>", "[1,null]", SB_EINVAL);
	ok("list<frozen<list<int>>>", "[[1,2],[3]]", "[[1,2],[3]]");
	bad("list<frozen<list<int>>>", "[[1,\"a\"]]", SB_EPROTO);
	ok("map<text, int>", "{\"y\":2,\"x\":1}", "{\"x\":1,\"y\":2}");
	ok("map<int, text>", "[[1,\"a\"],[2,\"b\"]]", "[[1,\"a\"],[2,\"b\"]]");
	bad("map<text, int>", "{\"x\":\"a\"}", SB_EPROTO);
	bad("map<uuid, int>", "{\"nope\":1}", SB_EINVAL);
	ok("tuple<int, text>", "{\"field1\":1,\"field2\":\"z\"}", "[1,\"z\"]");
	ok("tuple<int, text>", "[1,null]", "[1,null]");
	bad("tuple<int, text>", "{\"field1\":1}", SB_EPROTO);
	ok("udt<address>", "{\"street\":\"Main\",\"no\":5}", "{\"no\":5,\"street\":\"Main\"}");
	bad("udt<address>", "[1]", SB_EPROTO);
	ok("frozen<set<uuid>>", "[\"6BA7B810-9DAD-41D1-80B4-00C04FD430C8\"]",
	   "{\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\"}");
}

static void
test_type_names(void **s)
{
	struct cdc_type *t = NULL;
	char err[100], pg[96];
	static const char *const pairs[][2] = {
		{ "uuid", "uuid" },
		{ "timeuuid", "uuid" },
		{ "varint", "numeric" },
		{ "timestamp", "timestamptz" },
		{ "duration", "interval" },
		{ "blob", "bytea" },
		{ "set<text>", "text[]" },
		{ "list<double>", "double precision[]" },
		{ "list<frozen<map<text,int>>>", "jsonb" },
		{ "map<text, frozen<list<int>>>", "jsonb" },
		{ "tuple<int,text,boolean>", "jsonb" },
		{ "counter", "bigint" },
		{ "tinyint", "smallint" },
	};
	(void)s;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(cdc_type_parse(pairs[i][0], &t, err, sizeof(err)), 0);
		assert_int_equal(cdc_type_pg(t, pg, sizeof(pg)), 0);
		assert_string_equal(pg, pairs[i][1]);
		cdc_type_free(t);
	}
	static const char *const badtypes[] = { "",         "integer",    "list",    "map<text>",
		                                "list<int", "set<text>>", "tuple<>", "frozen<int" };
	for (size_t i = 0; i < sizeof(badtypes) / sizeof(badtypes[0]); i++) {
		t = NULL;
		assert_int_equal(cdc_type_parse(badtypes[i], &t, err, sizeof(err)), SB_EINVAL);
		assert_null(t);
	}
	assert_true(cdc_ident_ok("age_2"));
	assert_false(cdc_ident_ok("Age"));
	assert_false(cdc_ident_ok("_cdc_version"));
	assert_false(cdc_ident_ok("a\"b"));
	assert_false(cdc_ident_ok("2a"));
}

static void
test_dlq_category(void **s)
{
	(void)s;
	assert_string_equal(cdc_dlq_category("40P01"), "transient"); /* deadlock */
	assert_string_equal(cdc_dlq_category("40001"), "transient"); /* serialization */
	assert_string_equal(cdc_dlq_category("55P03"), "transient"); /* lock not available */
	assert_string_equal(cdc_dlq_category("57014"), "transient"); /* statement timeout */
	assert_string_equal(cdc_dlq_category("53100"), "transient"); /* disk full */
	assert_string_equal(cdc_dlq_category("23514"), "permanent"); /* check violation */
	assert_string_equal(cdc_dlq_category("22P02"), "permanent"); /* bad input */
	assert_string_equal(cdc_dlq_category(""), "permanent");
	assert_string_equal(cdc_dlq_category(NULL), "permanent");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),         cmocka_unit_test(test_text),
		cmocka_unit_test(test_ints),         cmocka_unit_test(test_decimals),
		cmocka_unit_test(test_time),         cmocka_unit_test(test_blob_inet),
		cmocka_unit_test(test_collections),  cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_dlq_category),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
