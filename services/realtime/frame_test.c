/* frame_test.c: client frames are parsed strictly, errors say why (in valid UTF-8, whatever
 * the frame held), tokens are wiped from the parser's copy, Redis messages follow the notifier
 * contract over the whole int64 range, and encoded server frames are valid JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <cmocka.h>
#include <jansson.h>

#include "realtime.h"
#include "sb_rtframe.h"
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
	/* A required seq may not be null (it was read as -1 and sent to messages.MarkRead). */
	assert_int_equal(
	    parse("{\"type\":\"read\",\"conversation_id\":\"x\",\"up_to_seq\":null}", &c),
	    SB_EPROTO);
	assert_string_equal(c.code, "invalid_argument");
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

/* The notifier writes both header integers with "%lld": every int64 must come back, and
 * anything beyond the range must be refused, not wrapped. A ConversationRead carries the
 * client's read_at_ms as its event time, so INT64_MAX is a real input. */
static void
test_pubsub_int64_range(void **st)
{
	(void)st;
	const char *m = "0 9223372036854775807\n{\"type\":\"conversation.read\","
	                "\"conversation_id\":\"c1\",\"user_id\":\"u1\",\"up_to_seq\":3}";
	struct rt_frame *f = NULL;
	assert_int_equal(rt_frame_parse_pubsub(m, strlen(m), &f), 0);
	assert_int_equal(f->seq, 0);
	assert_true(f->event_ms == INT64_MAX);
	assert_string_equal(f->type, "conversation.read");
	rt_frame_unref(f);

	static const struct {
		const char *in;
		int64_t seq, ems;
	} ok[] = {
		{ "9223372036854775807 -9223372036854775808\n{}", INT64_MAX, INT64_MIN },
		{ "9223372036854775806 9223372036854775806\n{}", INT64_MAX - 1, INT64_MAX - 1 },
		{ "0 -1\n{}", 0, -1 },
		{ "007 0\n{}", 7, 0 },
		{ "1 1700000000123\n", 1, 1700000000123LL },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sb_rtframe pm;
		assert_int_equal(sb_rtframe_split(ok[i].in, strlen(ok[i].in), &pm), 0);
		assert_true(pm.seq == ok[i].seq);
		assert_true(pm.event_ms == ok[i].ems);
		assert_ptr_equal(pm.json, strchr(ok[i].in, '\n') + 1);
		assert_int_equal(pm.json_len, strlen(strchr(ok[i].in, '\n') + 1));
	}
	static const char *bad[] = {
		"9223372036854775808 5\n{}",  /* INT64_MAX + 1 */
		"0 9223372036854775808\n{}",  /* the same, as the event time */
		"0 -9223372036854775809\n{}", /* INT64_MIN - 1 */
		"0 18446744073709551616\n{}", /* 2^64: wraps a uint64 to 0 */
		"0 99999999999999999999\n{}", /* far beyond */
		"-1 5\n{}",                   /* a seq is never negative */
		"-9223372036854775808 5\n{}",
		"- 5\n{}",
		"0 -\n{}",
		"0 --1\n{}",
		"+1 5\n{}",
		" 1 5\n{}",
		"1  5\n{}",
		"1 5\r\n{}",
		"1 5",
		"1 ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sb_rtframe pm;
		assert_int_equal(sb_rtframe_split(bad[i], strlen(bad[i]), &pm), SB_EPROTO);
		f = NULL;
		assert_int_equal(rt_frame_parse_pubsub(bad[i], strlen(bad[i]), &f), SB_EPROTO);
		assert_null(f);
	}
}

/* error_message returns the "message" of an error frame made from what parsing text gave, after
 * checking that the frame is valid JSON, hence valid UTF-8 (jansson refuses anything else). The
 * caller frees the result. */
static char *
error_message(const char *text, size_t len)
{
	struct rt_cmd c;
	int rv = rt_cmd_parse(text, len, &c);
	struct rt_frame *f = rv == 0 ? NULL : rt_frame_error(c.code, c.err, c.conv);
	rt_cmd_clear(&c);
	if (f == NULL)
		return NULL;
	json_error_t jerr;
	json_t *o = json_loadb(rt_frame_text(f), f->len, 0, &jerr);
	if (o == NULL)
		fail_msg("error frame is not valid JSON/UTF-8 (%s): %s", jerr.text,
		         rt_frame_text(f));
	char *msg = strdup(json_string_value(json_object_get(o, "message")));
	json_decref(o);
	rt_frame_unref(f);
	return msg;
}

/* whole_prefix returns the bytes of the longest prefix of s (valid UTF-8) that is at most max
 * bytes and whole characters, walking forward by each lead byte's length. */
static size_t
whole_prefix(const char *s, size_t max)
{
	size_t n = 0;
	while (s[n] != '\0') {
		unsigned char c = (unsigned char)s[n];
		size_t w = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (n + w > max)
			break;
		n += w;
	}
	return n;
}

/* An unknown type is quoted in the error, at most 64 bytes of it: the cut must fall between
 * characters, whatever their width and wherever they straddle byte 64. */
static void
test_error_utf8(void **st)
{
	(void)st;
	static const char *chars[] = { "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
	/* a character of every width, starting at every offset around the limit */
	for (size_t w = 1; w < 4; w++)
		for (size_t pad = 58; pad <= 64; pad++) {
			char type[128] = "", frame[256], want[160];
			memset(type, 'a', pad);
			type[pad] = '\0';
			strcat(type, chars[w]);
			strcat(type, "zz");
			snprintf(frame, sizeof(frame), "{\"type\":\"%s\"}", type);
			char *msg = error_message(frame, strlen(frame));
			assert_non_null(msg);
			snprintf(want, sizeof(want), "unknown frame type \"%.*s\"",
			         (int)whole_prefix(type, 64), type);
			assert_string_equal(msg, want);
			free(msg);
		}
	/* random types of random characters, and random bytes as whole frames */
	srand(11);
	for (int k = 0; k < 3000; k++) {
		char type[400] = "", frame[512], expect[160];
		for (size_t n = 0, len = 30 + (size_t)(rand() % 90); n < len;) {
			const char *ch = chars[rand() % 4];
			strcat(type, ch);
			n += strlen(ch);
		}
		snprintf(frame, sizeof(frame), "{\"type\":\"%s\"}", type);
		char *msg = error_message(frame, strlen(frame));
		assert_non_null(msg);
		snprintf(expect, sizeof(expect), "unknown frame type \"%.*s\"",
		         (int)whole_prefix(type, 64), type);
		assert_string_equal(msg, expect);
		free(msg);
		unsigned char raw[96];
		size_t len = (size_t)(rand() % (int)sizeof(raw));
		for (size_t i = 0; i < len; i++)
			raw[i] = (unsigned char)rand();
		if (len > 10 && rand() % 2) /* often a JSON object, to reach the type check */
			memcpy(raw, "{\"type\":\"", 9);
		free(error_message((const char *)raw, len));
	}
	/* other messages (an RPC error's, for one) may hold anything: the frame stays valid,
	 * invalid bytes replaced (sb_buf_json_str) */
	struct rt_frame *f = rt_frame_error("unavailable",
	                                    "a\xff"
	                                    "b\xc3"
	                                    "c\xed\xa0\x80"
	                                    "d\xc0\xaf"
	                                    "e\x80",
	                                    "c1");
	json_t *o = json_loads(rt_frame_text(f), 0, NULL);
	assert_non_null(o);
	assert_non_null(strstr(json_string_value(json_object_get(o, "message")), "\xef\xbf\xbd"));
	json_decref(o);
	rt_frame_unref(f);
}

/* A jansson allocator that notices a freed block holding SECRET as a whole string: jansson's
 * copy of a token value, freed without being wiped. */
#define SECRET "eyJTOKEN.secret-part.signature"
static int secrets_freed;

static void *
spy_malloc(size_t n)
{
	return malloc(n);
}

static void
spy_free(void *p)
{
	if (p != NULL && malloc_usable_size(p) > strlen(SECRET) &&
	    memcmp(p, SECRET, strlen(SECRET) + 1) == 0)
		secrets_freed++;
	free(p);
}

static void
test_token_wiped(void **st)
{
	(void)st;
	static const char *frames[] = {
		"{\"type\":\"auth\",\"token\":\"" SECRET "\"}",
		"{\"type\":\"refresh\",\"token\":\"" SECRET "\",\"id\":\"r1\"}",
		"{\"type\":\"refresh\",\"token\":\"" SECRET "\",\"id\":7}", /* refused */
		"{\"type\":\"auth\",\"id\":[],\"token\":\"" SECRET "\"}",   /* refused */
		"{\"type\":\"ping\",\"token\":\"" SECRET "\"}",             /* not needed */
		"{\"type\":\"warp\",\"token\":\"" SECRET "\"}",             /* unknown type */
		"{\"token\":\"" SECRET "\"}",                               /* no type */
	};
	json_set_alloc_funcs(spy_malloc, spy_free);
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		struct rt_cmd c;
		secrets_freed = 0;
		rt_cmd_parse(frames[i], strlen(frames[i]), &c);
		rt_cmd_clear(&c);
		if (secrets_freed != 0)
			fail_msg("the token was freed unwiped parsing %s", frames[i]);
	}
	/* the spy sees a token that is not wiped (the check can fail) */
	secrets_freed = 0;
	json_decref(json_loads("{\"token\":\"" SECRET "\"}", 0, NULL));
	assert_int_equal(secrets_freed, 1);
	json_set_alloc_funcs(malloc, free);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subscribe),  cmocka_unit_test(test_read_and_tokens),
		cmocka_unit_test(test_malformed),  cmocka_unit_test(test_pubsub_contract),
		cmocka_unit_test(test_encoders),   cmocka_unit_test(test_pubsub_int64_range),
		cmocka_unit_test(test_error_utf8), cmocka_unit_test(test_token_wiped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
