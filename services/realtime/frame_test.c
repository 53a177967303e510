/* frame_test.c: client frames are parsed strictly, errors say why, Redis messages follow the
 * notifier contract, and encoded server frames are valid JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "realtime.h"
#include "sb_err.h"

static int
parse(const char *s, struct rt_cmd *c)
{
	return rt_cmd_parse(s, strlen(s), c);
}

static void
test_subscribe(void **st)
{
	(void)st;
	struct rt_cmd c;
	assert_int_equal(parse("{\"type\":\"subscribe\",\"conversation_id\":\"c-1\","
	                       "\"since_seq\":41}",
	                       &c),
	                 0);
	assert_int_equal(c.type, RT_CMD_SUBSCRIBE);
	assert_string_equal(c.conv, "c-1");
	assert_int_equal(c.seq, 41);
	rt_cmd_clear(&c);
	assert_int_equal(parse("{\"type\":\"subscribe\",\"conversation_id\":\"c-1\"}", &c), 0);
	assert_int_equal(c.seq, -1);
	rt_cmd_clear(&c);
}

static void
test_read_and_tokens(void **st)
{
	(void)st;
	struct rt_cmd c;
	assert_int_equal(parse("{\"type\":\"read\",\"conversation_id\":\"x\",\"up_to_seq\":7}", &c),
	                 0);
	assert_int_equal(c.type, RT_CMD_READ);
	assert_int_equal(c.seq, 7);
	rt_cmd_clear(&c);
	assert_int_equal(parse("{\"type\":\"read\",\"conversation_id\":\"x\"}", &c), SB_EPROTO);
	assert_string_equal(c.code, "invalid_argument");
	assert_non_null(strstr(c.err, "up_to_seq"));
	rt_cmd_clear(&c);
	assert_int_equal(
	    parse("{\"type\":\"refresh\",\"token\":\"abc.def.ghi\",\"id\":\"r1\"}", &c), 0);
	assert_int_equal(c.type, RT_CMD_REFRESH);
	assert_string_equal(c.token, "abc.def.ghi");
	assert_string_equal(c.req_id, "r1");
	rt_cmd_clear(&c);
	assert_null(c.token);
	assert_int_equal(parse("{\"type\":\"auth\"}", &c), SB_EPROTO);
	assert_non_null(strstr(c.err, "token"));
	rt_cmd_clear(&c);
}

static void
test_malformed(void **st)
{
	(void)st;
	static const struct {
		const char *in, *code;
	} cases[] = {
		{ "", "bad_frame" },
		{ "not json", "bad_frame" },
		{ "[1,2]", "bad_frame" },
		{ "{\"type\":5}", "bad_frame" },
		{ "{}", "bad_frame" },
		{ "{\"type\":\"nope\"}", "unknown_type" },
		{ "{\"type\":\"ping\",\"type\":\"ping\"}", "bad_frame" },
		{ "{\"type\":\"subscribe\"}", "invalid_argument" },
		{ "{\"type\":\"subscribe\",\"conversation_id\":\"a b\"}", "invalid_argument" },
		{ "{\"type\":\"subscribe\",\"conversation_id\":\"\"}", "invalid_argument" },
		{ "{\"type\":\"subscribe\",\"conversation_id\":\"a\",\"since_seq\":-1}",
		  "invalid_argument" },
		{ "{\"type\":\"subscribe\",\"conversation_id\":\"a\",\"since_seq\":\"3\"}",
		  "invalid_argument" },
		{ "{\"type\":\"ping\",\"id\":7}", "invalid_argument" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rt_cmd c;
		assert_int_equal(parse(cases[i].in, &c), SB_EPROTO);
		assert_string_equal(c.code, cases[i].code);
		assert_true(c.err[0] != '\0');
		rt_cmd_clear(&c);
	}
	char big[200];
	memset(big, 'a', sizeof(big));
	struct rt_cmd c;
	assert_false(rt_id_valid(big, 64));
	assert_true(rt_id_valid(big, 63));
	assert_int_equal(rt_cmd_parse("{\"type\":\"ping\"}\0junk", 20, &c), SB_EPROTO);
	rt_cmd_clear(&c);
}

static void
test_pubsub_contract(void **st)
{
	(void)st;
	const char *m = "12 1700000000123\n{\"type\":\"message.created\",\"conversation_id\":"
	                "\"c1\",\"seq\":12,\"message\":{\"id\":\"m\",\"sender_id\":\"u9\"}}";
	struct rt_frame *f = NULL;
	assert_int_equal(rt_frame_parse_pubsub(m, strlen(m), &f), 0);
	assert_int_equal(f->seq, 12);
	assert_int_equal(f->event_ms, 1700000000123LL);
	assert_string_equal(f->type, "message.created");
	assert_string_equal(f->conv, "c1");
	assert_string_equal(f->sender, "u9");
	assert_string_equal(rt_frame_text(f), strchr(m, '\n') + 1); /* forwarded verbatim */
	assert_int_equal(f->len, strlen(strchr(m, '\n') + 1));
	rt_frame_unref(f);
	static const char *bad[] = {
		"",
		"12\n{\"type\":\"x\"}",
		"12 5{\"type\":\"x\"}",
		"a 5\n{\"type\":\"x\"}",
		"1 5\n[]",
		"1 5\n{\"no\":1}",
		"99999999999999999999 5\n{\"type\":\"x\"}",
		"1 5\n{\"type\":\"x\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = NULL;
		assert_int_equal(rt_frame_parse_pubsub(bad[i], strlen(bad[i]), &f), SB_EPROTO);
		assert_null(f);
	}
}

static void
test_encoders(void **st)
{
	(void)st;
	struct rt_frame *f = rt_frame_error("forbidden", "not \"a\" member", "c1");
	json_t *o = json_loads(rt_frame_text(f), 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "error");
	assert_string_equal(json_string_value(json_object_get(o, "message")), "not \"a\" member");
	assert_string_equal(json_string_value(json_object_get(o, "conversation_id")), "c1");
	json_decref(o);
	rt_frame_unref(f);
	f = rt_frame_subscribed("c2", false, 9);
	o = json_loads(rt_frame_text(f), 0, NULL);
	assert_true(json_is_false(json_object_get(o, "recovered")));
	assert_int_equal(json_integer_value(json_object_get(o, "last_seq")), 9);
	json_decref(o);
	rt_frame_unref(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subscribe), cmocka_unit_test(test_read_and_tokens),
		cmocka_unit_test(test_malformed), cmocka_unit_test(test_pubsub_contract),
		cmocka_unit_test(test_encoders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
