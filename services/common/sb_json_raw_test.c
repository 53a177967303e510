/* sb_json_raw_test.c: fields of type sb.json.Raw take any JSON value and give it back as it
 * was (sb_json_decode.c, sb_json_encode.c), through the wire format too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_json.h"
#include "test/raw_test.pb-c.h"

static const ProtobufCMessageDescriptor *const holder = &sb__test__raw_holder__descriptor;

/* JSON text -> message -> wire -> message -> JSON text. */
static char *
round_trip(const char *in, struct sb_json_errors *errs)
{
	json_t *j = NULL;
	ProtobufCMessage *m = NULL;
	struct sb_buf out = SB_BUF_INIT;
	if (sb_json_parse(in, strlen(in), 64, &j, errs) != 0)
		return NULL;
	int rc = sb_json_to_pb(holder, j, &m, errs);
	json_decref(j);
	if (rc != 0)
		return NULL;
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *wire = malloc(n + 1);
	assert_non_null(wire);
	protobuf_c_message_pack(m, wire);
	protobuf_c_message_free_unpacked(m, NULL);
	m = protobuf_c_message_unpack(holder, NULL, n, wire);
	free(wire);
	assert_non_null(m);
	assert_int_equal(sb_pb_to_json_buf(m, &out), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	return out.data;
}

static void
test_any_value(void **state)
{
	(void)state;
	static const char *const values[] = {
		"{\"b\":1,\"a\":[1,2,{\"x\":null}]}",
		"[]",
		"\"text with \\\"quotes\\\" and \\u00e9\"",
		"42",
		"-1.5",
		"true",
		"false",
		"{}",
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char in[256];
		snprintf(in, sizeof(in), "{\"value\":%s,\"name\":\"n\"}", values[i]);
		char *out = round_trip(in, NULL);
		assert_non_null(out);
		/* Members in their order, text as jansson writes it compactly. */
		json_error_t err;
		json_t *a = json_loads(out, 0, &err), *b = json_loads(in, 0, &err);
		assert_non_null(a);
		assert_true(json_equal(json_object_get(a, "value"), json_object_get(b, "value")));
		if (i == 0)
			assert_non_null(strstr(out, "{\"b\":1,\"a\":[1,2,{\"x\":null}]}"));
		json_decref(a);
		json_decref(b);
		free(out);
	}
}

static void
test_repeated_and_map(void **state)
{
	(void)state;
	char *out =
	    round_trip("{\"items\":[1,\"two\",[3],{\"four\":4}],\"by_key\":{\"k\":[true]}}", NULL);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"items\":[1,\"two\",[3],{\"four\":4}]"));
	assert_non_null(strstr(out, "\"by_key\":{\"k\":[true]}"));
	free(out);
}

static void
test_null_and_absent(void **state)
{
	(void)state;
	/* null means the default (no value): the member is left out on output. */
	char *out = round_trip("{\"value\":null,\"name\":\"x\"}", NULL);
	assert_non_null(out);
	assert_null(strstr(out, "\"value\""));
	free(out);
	out = round_trip("{\"name\":\"x\"}", NULL);
	assert_non_null(out);
	assert_null(strstr(out, "\"value\""));
	free(out);
}

static void
test_bad_text_is_refused_on_output(void **state)
{
	(void)state;
	/* A service that puts text that is not JSON into a Raw gets an error, not bad JSON. */
	Sb__Test__RawHolder h = SB__TEST__RAW_HOLDER__INIT;
	Sb__Json__Raw r = SB__JSON__RAW__INIT;
	struct sb_buf out = SB_BUF_INIT;
	r.json = "{not json";
	h.value = &r;
	assert_int_equal(sb_pb_to_json_buf(&h.base, &out), SB_EINVAL);
	r.json = "1 2";
	assert_int_equal(sb_pb_to_json_buf(&h.base, &out), SB_EINVAL);
	r.json = "[1]";
	assert_int_equal(sb_pb_to_json_buf(&h.base, &out), 0);
	assert_non_null(strstr(out.data, "\"value\":[1]"));
	/* An empty text is no value: null. */
	sb_buf_reset(&out);
	r.json = "";
	assert_int_equal(sb_pb_to_json_buf(&h.base, &out), 0);
	assert_non_null(strstr(out.data, "\"value\":null"));
	sb_buf_free(&out);
}

static void
test_the_rest_still_checked(void **state)
{
	(void)state;
	struct sb_json_errors errs;
	assert_null(round_trip("{\"value\":1,\"name\":2}", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].path, "name");
	assert_null(round_trip("{\"value\":1,\"unknown\":2}", &errs));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_any_value),
		cmocka_unit_test(test_repeated_and_map),
		cmocka_unit_test(test_null_and_absent),
		cmocka_unit_test(test_bad_text_is_refused_on_output),
		cmocka_unit_test(test_the_rest_still_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
