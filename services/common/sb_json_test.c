/* Tests of sb_json transcoding: round trip of every field kind, and rejections with paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_json.h"
#include "test/transcode_test.pb-c.h"

static const ProtobufCMessageDescriptor *const everything = &sb__test__everything__descriptor;

/* Parses text and transcodes it to an Everything; returns sb_json_to_pb's result. */
static int
decode(const char *text, ProtobufCMessage **out, struct sb_json_errors *errs)
{
	json_t *j = NULL;
	int rc = sb_json_parse(text, strlen(text), 16, &j, errs);
	if (rc != 0)
		return rc;
	rc = sb_json_to_pb(everything, j, out, errs);
	json_decref(j);
	return rc;
}

/* Fails the test unless errs holds exactly this violation at position i. */
static void
expect_violation(const struct sb_json_errors *errs, size_t i, const char *path, const char *reason)
{
	assert_true(i < errs->n);
	assert_string_equal(errs->v[i].path, path);
	assert_string_equal(errs->v[i].reason, reason);
}

static const char full_input[] =
    "{\"f_int32\":-2147483648,\"fSint32\":2147483647,\"f_sfixed32\":-1,"
    "\"f_uint32\":4294967295,\"f_fixed32\":7,"
    "\"f_int64\":\"-9223372036854775808\",\"f_sint64\":\"9223372036854775807\","
    "\"f_sfixed64\":-42,\"f_uint64\":\"18446744073709551615\",\"fFixed64\":\"123\","
    "\"f_float\":0.1,\"f_double\":2.718281828459045,\"f_bool\":true,"
    "\"f_string\":\"h\xc3\xa9llo \\\"w\\\" \\u2603 \\n\",\"f_bytes\":\"AAEC/w==\","
    "\"color\":\"INFRARED\",\"member\":{\"user_id\":\"u1\",\"role\":3,\"color\":\"RED\"},"
    "\"r_int32\":[1,-2,3],\"r_int64\":[\"1\",-9007199254740992],"
    "\"r_uint64\":[\"0\",\"18446744073709551615\"],"
    "\"r_float\":[1.5,\"NaN\",\"Infinity\",\"-Infinity\"],\"r_double\":[0,-0.5,1e300],"
    "\"r_bool\":[true,false],\"r_string\":[\"a\",\"\"],\"r_bytes\":[\"\",\"-_8\",\"aGk\"],"
    "\"r_color\":[\"RED\",2],\"members\":[{\"user_id\":\"a\"},{\"userId\":\"b\",\"role\":1}],"
    "\"metadata\":{\"k1\":\"v1\",\"k2\":\"\"},\"by_id\":{\"-5\":{\"user_id\":\"x\"}},"
    "\"byBig\":{\"18446744073709551615\":\"max\"},"
    "\"flags\":{\"true\":\"GREEN\",\"false\":0},"
    "\"author\":{\"user_id\":\"z\"},\"child\":{\"f_string\":\"c\",\"text\":\"t\"}}";

#define DEFAULT_MEMBER "\"role\":0,\"color\":\"COLOR_UNSPECIFIED\""
#define EMPTY_REPEATED                                                                             \
	"\"r_int32\":[],\"r_int64\":[],\"r_uint64\":[],\"r_float\":[],\"r_double\":[],"            \
	"\"r_bool\":[],\"r_string\":[],\"r_bytes\":[],\"r_color\":[],\"members\":[],"              \
	"\"metadata\":{},\"by_id\":{},\"by_big\":{},\"flags\":{}"

static const char full_expected[] =
    "{\"f_int32\":-2147483648,\"f_sint32\":2147483647,\"f_sfixed32\":-1,"
    "\"f_uint32\":4294967295,\"f_fixed32\":7,"
    "\"f_int64\":\"-9223372036854775808\",\"f_sint64\":\"9223372036854775807\","
    "\"f_sfixed64\":\"-42\",\"f_uint64\":\"18446744073709551615\",\"f_fixed64\":\"123\","
    "\"f_float\":0.1,\"f_double\":2.718281828459045,\"f_bool\":true,"
    "\"f_string\":\"h\xc3\xa9llo \\\"w\\\" \xe2\x98\x83 \\n\",\"f_bytes\":\"AAEC/w==\","
    "\"color\":\"INFRARED\",\"member\":{\"user_id\":\"u1\",\"role\":3,\"color\":\"RED\"},"
    "\"r_int32\":[1,-2,3],\"r_int64\":[\"1\",\"-9007199254740992\"],"
    "\"r_uint64\":[\"0\",\"18446744073709551615\"],"
    "\"r_float\":[1.5,\"NaN\",\"Infinity\",\"-Infinity\"],\"r_double\":[0,-0.5,1e300],"
    "\"r_bool\":[true,false],\"r_string\":[\"a\",\"\"],\"r_bytes\":[\"\",\"+/8=\",\"aGk=\"],"
    "\"r_color\":[\"RED\",\"GREEN\"],"
    "\"members\":[{\"user_id\":\"a\"," DEFAULT_MEMBER "},{\"user_id\":\"b\",\"role\":1,"
    "\"color\":\"COLOR_UNSPECIFIED\"}],"
    "\"metadata\":{\"k1\":\"v1\",\"k2\":\"\"},"
    "\"by_id\":{\"-5\":{\"user_id\":\"x\"," DEFAULT_MEMBER "}},"
    "\"by_big\":{\"18446744073709551615\":\"max\"},"
    "\"flags\":{\"true\":\"GREEN\",\"false\":\"COLOR_UNSPECIFIED\"},"
    "\"author\":{\"user_id\":\"z\"," DEFAULT_MEMBER "},"
    "\"child\":{\"f_int32\":0,\"f_sint32\":0,\"f_sfixed32\":0,\"f_uint32\":0,\"f_fixed32\":0,"
    "\"f_int64\":\"0\",\"f_sint64\":\"0\",\"f_sfixed64\":\"0\",\"f_uint64\":\"0\","
    "\"f_fixed64\":\"0\",\"f_float\":0,\"f_double\":0,\"f_bool\":false,\"f_string\":\"c\","
    "\"f_bytes\":\"\",\"color\":\"COLOR_UNSPECIFIED\"," EMPTY_REPEATED ",\"text\":\"t\"}}";

/* JSON -> pb -> pack -> unpack -> JSON gives the expected JSON, and the C values are right. */
static void
test_round_trip_every_kind(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	int rc = decode(full_input, &m, &errs);
	if (rc != 0) {
		char msg[2048];
		sb_json_errors_format(&errs, msg, sizeof(msg));
		fail_msg("decode: %s", msg);
	}
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *wire = malloc(n);
	assert_int_equal(protobuf_c_message_pack(m, wire), n);
	protobuf_c_message_free_unpacked(m, NULL);

	Sb__Test__Everything *e = sb__test__everything__unpack(NULL, n, wire);
	assert_non_null(e);
	assert_int_equal(e->f_int32, INT32_MIN);
	assert_int_equal(e->f_sint32, INT32_MAX);
	assert_true(e->f_int64 == INT64_MIN);
	assert_true(e->f_sint64 == INT64_MAX);
	assert_true(e->f_uint64 == UINT64_MAX);
	assert_true(e->f_uint32 == UINT32_MAX);
	assert_true(e->f_float == 0.1f);
	assert_true(e->f_double == 2.718281828459045);
	assert_int_equal(e->f_bytes.len, 4);
	assert_memory_equal(e->f_bytes.data, "\x00\x01\x02\xff", 4);
	assert_int_equal(e->color, SB__TEST__COLOR__INFRARED);
	assert_int_equal(e->body_case, SB__TEST__EVERYTHING__BODY_AUTHOR);
	assert_string_equal(e->author->user_id, "z");
	assert_int_equal(e->n_r_float, 4);
	assert_true(isnan(e->r_float[1]) && isinf(e->r_float[2]) && e->r_float[3] < 0);
	assert_int_equal(e->n_r_bytes, 3);
	assert_memory_equal(e->r_bytes[1].data, "\xfb\xff", 2);
	assert_int_equal(e->n_members, 2);
	assert_string_equal(e->members[1]->user_id, "b");
	assert_int_equal(e->n_by_id, 1);
	assert_int_equal(e->by_id[0]->key, -5);
	assert_string_equal(e->by_id[0]->value->user_id, "x");
	assert_true(e->by_big[0]->key == UINT64_MAX);
	assert_int_equal(e->child->body_case, SB__TEST__EVERYTHING__BODY_TEXT);
	assert_string_equal(e->child->text, "t");
	assert_null(e->child->member);

	json_t *got = sb_pb_to_json(&e->base);
	assert_non_null(got);
	json_error_t jerr;
	json_t *want = json_loads(full_expected, 0, &jerr);
	if (want == NULL)
		fail_msg("expected text: %s", jerr.text);
	if (!json_equal(got, want)) {
		char *s = json_dumps(got, JSON_COMPACT);
		fail_msg("got %s", s);
	}

	/* The text form is the same JSON, and decoding it again packs to the same bytes. */
	struct sb_buf b = SB_BUF_INIT;
	sb_buf_puts(&b, "prefix:");
	assert_int_equal(sb_pb_to_json_buf(&e->base, &b), 0);
	assert_memory_equal(b.data, "prefix:{\"f_int32\":-2147483648,", 30);
	json_t *again = json_loads(b.data + 7, 0, NULL);
	assert_true(json_equal(again, want));
	ProtobufCMessage *m2 = NULL;
	assert_int_equal(sb_json_to_pb(everything, again, &m2, &errs), 0);
	size_t n2 = protobuf_c_message_get_packed_size(m2);
	uint8_t *wire2 = malloc(n2);
	protobuf_c_message_pack(m2, wire2);
	assert_int_equal(n2, n);
	assert_memory_equal(wire2, wire, n);

	free(wire2);
	protobuf_c_message_free_unpacked(m2, NULL);
	json_decref(again);
	sb_buf_free(&b);
	json_decref(want);
	json_decref(got);
	sb__test__everything__free_unpacked(e, NULL);
	free(wire);
}

/* Every bad field is reported at once, each with its path and reason; nothing is built. */
static void
test_rejections_with_paths(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	const char *text = "{\"f_int32\":true,\"f_uint32\":-1,\"f_sint32\":2147483648,"
	                   "\"f_sfixed32\":1.5,\"f_int64\":\"9223372036854775808\","
	                   "\"f_uint64\":\"-1\",\"f_bytes\":\"!!\",\"color\":\"PURPLE\","
	                   "\"r_color\":[\"RED\",7],\"nope\":1,"
	                   "\"members\":[{},{},{\"user_id\":5,\"bogus\":1}],"
	                   "\"r_string\":[\"a\",null],\"f_bool\":\"true\",\"f_float\":1e39,"
	                   "\"member\":[]}";
	assert_int_equal(decode(text, &m, &errs), SB_EINVAL);
	assert_null(m);
	assert_int_equal(errs.n, 16);
	assert_int_equal(errs.dropped, 0);
	size_t i = 0;
	expect_violation(&errs, i++, "f_int32", "expected integer");
	expect_violation(&errs, i++, "f_uint32", "out of range for uint32");
	expect_violation(&errs, i++, "f_sint32", "out of range for int32");
	expect_violation(&errs, i++, "f_sfixed32", "not an integer");
	expect_violation(&errs, i++, "f_int64", "out of range for int64");
	expect_violation(&errs, i++, "f_uint64", "out of range for uint64");
	expect_violation(&errs, i++, "f_bytes", "invalid base64");
	expect_violation(&errs, i++, "color", "not a valid enum value");
	expect_violation(&errs, i++, "r_color[1]", "not a valid enum value");
	expect_violation(&errs, i++, "nope", "unknown field");
	expect_violation(&errs, i++, "members[2].user_id", "expected string");
	expect_violation(&errs, i++, "members[2].bogus", "unknown field");
	expect_violation(&errs, i++, "r_string[1]", "null is not allowed in an array");
	expect_violation(&errs, i++, "f_bool", "expected boolean");
	expect_violation(&errs, i++, "f_float", "out of range for float");
	expect_violation(&errs, i++, "member", "expected object");
}

static void
test_rejections_in_maps_oneofs_and_names(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	const char *text = "{\"metadata\":{\"k\":1,\"ok\":\"v\"},\"by_id\":{\"x\":{}},"
	                   "\"by_big\":{\"1\":null},\"flags\":{\"yes\":\"RED\"},"
	                   "\"text\":\"a\",\"author\":{},\"f_sint32\":1,\"fSint32\":2,"
	                   "\"f_int64\":1e17,\"f_fixed64\":\"1e3\","
	                   "\"r_int32\":{},\"child\":{\"child\":{\"f_bytes\":\"QR==\"}}}";
	assert_int_equal(decode(text, &m, &errs), SB_EINVAL);
	size_t i = 0;
	expect_violation(&errs, i++, "metadata.k", "expected string");
	expect_violation(&errs, i++, "by_id.x", "not an integer");
	expect_violation(&errs, i++, "by_big.1", "null is not allowed as a map value");
	expect_violation(&errs, i++, "flags.yes", "map key must be true or false");
	expect_violation(&errs, i++, "author",
	                 "only one field of its oneof may be set (already set: text)");
	expect_violation(&errs, i++, "fSint32", "field given more than once");
	expect_violation(&errs, i++, "f_int64",
	                 "integer too large for a JSON number; send it as a string");
	expect_violation(&errs, i++, "f_fixed64", "not an integer");
	expect_violation(&errs, i++, "r_int32", "expected array");
	expect_violation(&errs, i++, "child.child.f_bytes", "invalid base64");
	assert_int_equal(errs.n, i);
}

/* Past 16 violations the rest are counted, not lost silently. */
static void
test_many_errors_are_counted(void **state)
{
	(void)state;
	char text[1024] = "{";
	for (int i = 0; i < 20; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\"bad%d\":1",
		         i ? "," : "", i);
	strcat(text, "}");
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	assert_int_equal(decode(text, &m, &errs), SB_EINVAL);
	assert_int_equal(errs.n, 16);
	assert_int_equal(errs.dropped, 4);
	expect_violation(&errs, 15, "bad15", "unknown field");
	char msg[64];
	size_t want = sb_json_errors_format(&errs, msg, sizeof(msg));
	assert_true(want > sizeof(msg));
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
	assert_memory_equal(msg, "bad0: unknown field; bad1: unknown field", 40);
}

/* null means default; camelCase and exponent integers are accepted; strings are checked. */
static void
test_accepted_forms(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	assert_int_equal(decode("{\"f_int32\":null,\"member\":null,\"r_int32\":null,"
	                        "\"fUint32\":1e3,\"rInt64\":[\"-0\",\"007\"],\"fDouble\":\"-2.5\","
	                        "\"color\":-3,\"byId\":{\"2147483647\":{}},\"ticks\":\"-1\"}",
	                        &m, &errs),
	                 0);
	Sb__Test__Everything *e = (Sb__Test__Everything *)m;
	assert_int_equal(e->f_int32, 0);
	assert_null(e->member);
	assert_int_equal(e->n_r_int32, 0);
	assert_int_equal(e->f_uint32, 1000);
	assert_true(e->r_int64[0] == 0 && e->r_int64[1] == 7);
	assert_true(e->f_double == -2.5);
	assert_int_equal(e->color, SB__TEST__COLOR__INFRARED);
	assert_int_equal(e->by_id[0]->key, INT32_MAX);
	assert_int_equal(e->body_case, SB__TEST__EVERYTHING__BODY_TICKS);
	assert_true(e->ticks == -1);
	protobuf_c_message_free_unpacked(m, NULL);

	/* A string built without jansson's checks is still validated. */
	json_t *j = json_object();
	json_object_set_new(j, "f_string", json_stringn_nocheck("a\xff", 2));
	json_object_set_new(j, "r_string", json_pack("[s]", "ok"));
	json_array_append_new(json_object_get(j, "r_string"), json_stringn_nocheck("a\0b", 3));
	assert_int_equal(sb_json_to_pb(everything, j, &m, &errs), SB_EINVAL);
	expect_violation(&errs, 0, "f_string", "invalid UTF-8");
	expect_violation(&errs, 1, "r_string[1]", "string contains NUL");
	json_decref(j);

	/* The top level must be an object. */
	j = json_array();
	assert_int_equal(sb_json_to_pb(everything, j, &m, &errs), SB_EINVAL);
	expect_violation(&errs, 0, "", "expected a JSON object");
	json_decref(j);
}

/* A tree built in code deeper than the cap is refused, not recursed into without bound. */
static void
test_transcode_depth_cap(void **state)
{
	(void)state;
	json_t *root = json_object(), *cur = root;
	for (int i = 0; i < SB_JSON_DEPTH_CAP + 5; i++) {
		json_t *c = json_object();
		json_object_set_new(cur, "child", c);
		cur = c;
	}
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	assert_int_equal(sb_json_to_pb(everything, root, &m, &errs), SB_EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].reason, "nesting deeper than 128 levels");
	assert_memory_equal(errs.v[0].path, "child.child.", 12);
	json_decref(root);
}

/* Output: invalid UTF-8 from the wire is replaced, unknown enum numbers stay numbers,
 * duplicate map keys keep the last value, control characters are escaped. */
static void
test_output_of_odd_messages(void **state)
{
	(void)state;
	Sb__Test__Everything e = SB__TEST__EVERYTHING__INIT;
	char bad[] = "a\xff\x01z";
	e.f_string = bad;
	e.color = 99;
	Sb__Test__Everything__MetadataEntry k1 = SB__TEST__EVERYTHING__METADATA_ENTRY__INIT,
	                                    k2 = SB__TEST__EVERYTHING__METADATA_ENTRY__INIT,
	                                    k3 = SB__TEST__EVERYTHING__METADATA_ENTRY__INIT;
	k1.key = "a", k1.value = "first";
	k2.key = "b", k2.value = "b";
	k3.key = "a", k3.value = "last";
	Sb__Test__Everything__MetadataEntry *md[] = { &k1, &k2, &k3 };
	e.metadata = md;
	e.n_metadata = 3;
	e.f_double = -0.0;
	e.f_float = 3.4028235e38f;
	json_t *j = sb_pb_to_json(&e.base);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "f_string")),
	                    "a\xef\xbf\xbd\x01z");
	assert_int_equal(json_integer_value(json_object_get(j, "color")), 99);
	json_t *meta = json_object_get(j, "metadata");
	assert_int_equal(json_object_size(meta), 2);
	assert_string_equal(json_string_value(json_object_get(meta, "a")), "last");
	assert_null(json_object_get(j, "member"));
	assert_null(json_object_get(j, "text"));
	assert_true((float)json_real_value(json_object_get(j, "f_float")) == 3.4028235e38f);
	json_decref(j);

	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_pb_to_json_buf(&e.base, &b), 0);
	assert_non_null(strstr(b.data, "\"f_string\":\"a\xef\xbf\xbd\\u0001z\""));
	assert_non_null(strstr(b.data, "\"metadata\":{\"b\":\"b\",\"a\":\"last\"}"));
	assert_non_null(strstr(b.data, "\"f_double\":-0.0,"));
	assert_non_null(strstr(b.data, "\"f_float\":3.4028235e+38,"));
	sb_buf_free(&b);
	assert_int_equal(sb_pb_to_json_buf(NULL, &b), SB_EINVAL);
}

/* Negative zero stays a negative real through JSON -> protobuf -> JSON: written "-0.0", never
 * "-0" (which reads back as the integer 0). Regression: {"r_float":[-0.0]} came back as 0. */
static void
test_negative_zero_round_trip(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	ProtobufCMessage *m = NULL;
	assert_int_equal(
	    decode("{\"r_float\":[-0.0],\"r_double\":[-0.0,0.0],\"f_float\":-0.0}", &m, &errs), 0);
	Sb__Test__Everything *e = (Sb__Test__Everything *)m;
	assert_int_equal(e->n_r_float, 1);
	assert_true(e->r_float[0] == 0 && signbit(e->r_float[0]));
	assert_true(signbit(e->r_double[0]) && !signbit(e->r_double[1]));
	assert_true(signbit(e->f_float));

	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_pb_to_json_buf(m, &b), 0);
	assert_non_null(strstr(b.data, "\"r_float\":[-0.0]"));
	assert_non_null(strstr(b.data, "\"r_double\":[-0.0,0]"));
	assert_non_null(strstr(b.data, "\"f_float\":-0.0"));
	protobuf_c_message_free_unpacked(m, NULL);

	/* ... and reads back with its sign, as a real. */
	m = NULL;
	assert_int_equal(decode(b.data, &m, &errs), 0);
	e = (Sb__Test__Everything *)m;
	assert_true(e->n_r_float == 1 && signbit(e->r_float[0]));
	assert_true(signbit(e->r_double[0]) && signbit(e->f_float));
	struct sb_buf b2 = SB_BUF_INIT;
	assert_int_equal(sb_pb_to_json_buf(m, &b2), 0);
	assert_string_equal(b.data, b2.data);
	json_t *j = sb_pb_to_json(m);
	assert_true(json_is_real(json_array_get(json_object_get(j, "r_float"), 0)));
	json_decref(j);
	sb_buf_free(&b);
	sb_buf_free(&b2);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* Many duplicate keys (the sorted path) still give one key each, last value winning. */
static void
test_output_large_map_dedup(void **state)
{
	(void)state;
	enum { N = 200 };
	Sb__Test__Everything e = SB__TEST__EVERYTHING__INIT;
	Sb__Test__Everything__ByBigEntry ent[N], *ptr[N];
	char vals[N][8];
	for (int i = 0; i < N; i++) {
		sb__test__everything__by_big_entry__init(&ent[i]);
		ent[i].key = (uint64_t)(i % 50);
		snprintf(vals[i], sizeof(vals[i]), "v%d", i);
		ent[i].value = vals[i];
		ptr[i] = &ent[i];
	}
	e.by_big = ptr;
	e.n_by_big = N;
	json_t *j = sb_pb_to_json(&e.base);
	json_t *m = json_object_get(j, "by_big");
	assert_int_equal(json_object_size(m), 50);
	assert_string_equal(json_string_value(json_object_get(m, "7")), "v157");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_kind),
		cmocka_unit_test(test_rejections_with_paths),
		cmocka_unit_test(test_rejections_in_maps_oneofs_and_names),
		cmocka_unit_test(test_many_errors_are_counted),
		cmocka_unit_test(test_accepted_forms),
		cmocka_unit_test(test_transcode_depth_cap),
		cmocka_unit_test(test_output_of_odd_messages),
		cmocka_unit_test(test_output_large_map_dedup),
		cmocka_unit_test(test_negative_zero_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
