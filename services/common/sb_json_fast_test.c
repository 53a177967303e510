/* sb_json_fast_test.c: sb_json_fast_to_pb builds what sb_json_parse + sb_json_to_pb build (the
 * same packed bytes) for the shapes it handles, and asks for the slow path on everything else
 * (which is then also what the slow path refuses or reads in a way the fast path does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pubsub.pb-c.h"
#include "sb_err.h"
#include "sb_json.h"
#include "test/raw_test.pb-c.h"
#include "test/transcode_test.pb-c.h"

static const struct sb_json_limits lim = {
	.max_bytes = SB_JSON_DEFAULT_MAX_BYTES,
	.max_depth = 8,
	.max_members = SB_JSON_DEFAULT_MAX_MEMBERS,
	.max_string = SB_JSON_DEFAULT_MAX_STRING,
};

/* same: the fast path answers, and its message packs as the slow path's does. */
static void
same(const ProtobufCMessageDescriptor *d, const char *text)
{
	ProtobufCMessage *fast = NULL, *slow = NULL;
	json_t *j = NULL;
	struct sb_json_errors errs;
	int rc = sb_json_fast_to_pb(d, text, strlen(text), &lim, &fast);
	if (rc != 0)
		fail_msg("fast path asked (%d) for %s", rc, text);
	assert_int_equal(sb_json_parse_limits(text, strlen(text), &lim, &j, &errs), 0);
	assert_int_equal(sb_json_to_pb(d, j, &slow, &errs), 0);
	json_decref(j);
	size_t nf = protobuf_c_message_get_packed_size(fast);
	size_t ns = protobuf_c_message_get_packed_size(slow);
	uint8_t *pf = malloc(nf + 1), *ps = malloc(ns + 1);
	assert_non_null(pf);
	assert_non_null(ps);
	protobuf_c_message_pack(fast, pf);
	protobuf_c_message_pack(slow, ps);
	assert_int_equal(nf, ns);
	assert_memory_equal(pf, ps, nf);
	free(pf);
	free(ps);
	protobuf_c_message_free_unpacked(fast, NULL);
	protobuf_c_message_free_unpacked(slow, NULL);
}

static void
asks(const ProtobufCMessageDescriptor *d, const char *text, size_t len)
{
	ProtobufCMessage *fast = NULL;
	int rc = sb_json_fast_to_pb(d, text, len, &lim, &fast);
	if (rc != SB_JSON_FAST_ASK)
		fail_msg("fast path answered %d for %s", rc, text);
	assert_null(fast);
}

#define ASKS(d, s) asks((d), (s), sizeof(s) - 1)

static const ProtobufCMessageDescriptor *const pb = &sb__pubsub__publish_batch_request__descriptor;
static const ProtobufCMessageDescriptor *const ab = &sb__pubsub__ack_batch_request__descriptor;
static const ProtobufCMessageDescriptor *const ev = &sb__test__everything__descriptor;
static const ProtobufCMessageDescriptor *const rh = &sb__test__raw_holder__descriptor;

static void
test_hot_requests(void **state)
{
	(void)state;
	/* what bench/pubsub/load.mjs sends, with a 1 KiB payload */
	char body[2048], d[1025];
	memset(d, 'x', sizeof(d) - 1);
	d[sizeof(d) - 1] = '\0';
	memcpy(d, "1733550000.123          ", 24);
	snprintf(body, sizeof(body),
	         "{\"topic\":\"bench\",\"messages\":[{\"payload\":{\"d\":\"%s\"}},{\"payload\":{"
	         "\"d\":\"y\"}}]}",
	         d);
	same(pb, body);
	same(pb, " {\n \"topic\" : \"t\" , \"messages\" : [ { \"payload\" : [ 1 , -0 , true , "
	         "false , null , \"\\u00e9\\n\\u001f\\/\\\"\" , { } , [ ] ] , \"priority\" : 3 , "
	         "\"orderingKey\" : \"k\" } ] } ");
	same(ab,
	     "{\"acks\":[{\"id\":\"0190c1a2-0000-7000-8000-000000000001\",\"lease_id\":"
	     "\"0190c1a2-0000-7000-8000-000000000002\"},{\"id\":\"x\",\"subscription\":\"s\"}]}");
	same(ab, "{}");
	same(ab, "{\"acks\":[]}");
}

static void
test_shapes(void **state)
{
	(void)state;
	same(ev, "{\"f_int32\":-2147483648,\"f_sint32\":7,\"f_uint32\":4294967295,\"f_int64\":"
	         "-9223372036854775808,\"f_uint64\":9223372036854775807,\"f_fixed64\":0,\"f_bool\":"
	         "true,\"f_string\":\"a\\\"b\\\\c\\ud83d\\ude00\xc3\xa9\",\"color\":\"INFRARED\","
	         "\"member\":{\"userId\":\"u\",\"role\":2,\"color\":\"GREEN\"},\"r_int32\":[1,2,3],"
	         "\"r_int64\":[-1],\"r_bool\":[false,true],\"r_string\":[\"x\",\"\"],\"r_color\":"
	         "[\"RED\"],\"members\":[{},{\"user_id\":\"v\"}],\"child\":{\"child\":{\"f_int32\":"
	         "1}}}");
	same(rh, "{\"value\":\"text\",\"name\":\"n\",\"items\":[[],{},\"s\",0,-0,{\"a\":{\"a\":1},"
	         "\"b\":[{\"a\":2}]}]}");
	same(rh, "{\"value\":{\"\":\"\\b\\f\\n\\r\\t\\u0001\\u007f\\u2028\"}}");
}

static void
test_asks(void **state)
{
	(void)state;
	/* shapes left to the slow path */
	ASKS(ev, "{\"f_string\":null}");
	ASKS(ev, "{\"r_string\":[\"a\",null]}");
	ASKS(ev, "{\"f_double\":1}");
	ASKS(ev, "{\"f_bytes\":\"AA==\"}");
	ASKS(ev, "{\"metadata\":{}}");
	ASKS(ev, "{\"text\":\"x\"}");
	ASKS(ev, "{\"f_int32\":\"5\"}");
	ASKS(ev, "{\"f_int32\":5.0}");
	ASKS(ev, "{\"f_int32\":1e2}");
	ASKS(ev, "{\"color\":1}");
	ASKS(ev, "{\"color\":\"\\u0052ED\"}");
	ASKS(ev, "{\"f_\\u0069nt32\":1}");
	ASKS(rh, "{\"value\":1.5}");
	ASKS(rh, "{\"value\":{\"\\u0061\":1}}");
	ASKS(rh, "{\"value\":null}");
	ASKS(rh, "{\"by_key\":{}}");
	/* what the slow path refuses */
	ASKS(ev, "{\"f_int32\":2147483648}");
	ASKS(ev, "{\"f_uint32\":-1}");
	ASKS(ev, "{\"f_uint64\":-1}");
	ASKS(ev, "{\"f_int64\":9223372036854775808}");
	ASKS(ev, "{\"color\":\"BLUE\"}");
	ASKS(ev, "{\"nope\":1}");
	ASKS(ev, "{\"f_int32\":1,\"f_int32\":2}");
	ASKS(ev, "{\"member\":{\"user_id\":\"a\",\"userId\":\"b\"}}");
	ASKS(rh, "{\"value\":{\"a\":1,\"a\":2}}");
	ASKS(rh, "{\"value\":\"\\u0000\"}");
	ASKS(rh, "{\"value\":\"\\ud800\"}");
	ASKS(rh, "{\"value\":\"\xc0\xaf\"}");
	ASKS(rh, "{\"value\":[1,]}");
	ASKS(rh, "{\"value\":01}");
	ASKS(rh, "{\"value\":truex}");
	ASKS(rh, "{\"value\":[[[[[[[[[]]]]]]]]]}"); /* nesting deeper than 8 */
	ASKS(ev, "[]");
	ASKS(ev, "{} x");
	ASKS(ev, "{");
	ASKS(ev, "");
	asks(ev, "{\"f_string\":\"a\0b\"}", 17);
}

static void
test_limits(void **state)
{
	(void)state;
	struct sb_json_limits small = lim;
	small.max_members = 3;
	small.max_string = 8;
	ProtobufCMessage *m = NULL;
	/* two commas are allowed where the parser allows two, three are not */
	assert_int_equal(sb_json_fast_to_pb(ev, "{\"r_int32\":[1,2,3]}", 19, &small, &m), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	m = NULL;
	assert_int_equal(sb_json_fast_to_pb(ev, "{\"r_int32\":[1,2,3,4]}", 21, &small, &m),
	                 SB_JSON_FAST_ASK);
	json_t *j = NULL;
	assert_int_not_equal(sb_json_parse_limits("{\"r_int32\":[1,2,3,4]}", 21, &small, &j, NULL),
	                     0);
	/* strings (keys too): 8 bytes as written */
	assert_int_equal(sb_json_fast_to_pb(ev, "{\"f_string\":\"abcdefghi\"}", 24, &small, &m),
	                 SB_JSON_FAST_ASK);
	assert_int_not_equal(
	    sb_json_parse_limits("{\"f_string\":\"abcdefghi\"}", 24, &small, &j, NULL), 0);
	small.max_bytes = 10;
	assert_int_equal(sb_json_fast_to_pb(ab, "{\"acks\":[]}", 11, &small, &m), SB_JSON_FAST_ASK);
	assert_null(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hot_requests),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_asks),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
