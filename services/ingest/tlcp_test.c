/* tlcp_test.c: unit tests of the TLCP line parser, value codec and request encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "tlcp.h"

static int
parse(const char *s, struct tlcp_msg *m)
{
	return tlcp_parse_line(s, strlen(s), m);
}

static void
assert_str(struct tlcp_str s, const char *want)
{
	assert_int_equal(s.n, strlen(want));
	assert_memory_equal(s.p, want, s.n);
}

static void
test_parse_session(void **state)
{
	(void)state;
	struct tlcp_msg m;
	assert_int_equal(parse("CONOK,S1a2b3,50000,5000,*", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_CONOK);
	assert_str(m.session, "S1a2b3");
	assert_int_equal(m.item, 50000);
	assert_int_equal(m.n, 5000);
	assert_str(m.text, "*");
	assert_int_equal(parse("CONOK,,1,2,*", &m), SB_EPROTO);
	assert_int_equal(parse("CONOK,S,1,x,*", &m), SB_EPROTO);

	assert_int_equal(parse("CONERR,2,Requested%20Adapter%20Set%20not%20available", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_CONERR);
	assert_int_equal(m.code, 2);
	assert_str(m.text, "Requested%20Adapter%20Set%20not%20available");
	assert_int_equal(parse("CONERR,-1,custom", &m), 0);
	assert_int_equal(m.code, -1);
	assert_int_equal(parse("CONERR", &m), SB_EPROTO);

	assert_int_equal(parse("END,31,closed%20by%20admin", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_END);
	assert_int_equal(m.code, 31);
	assert_int_equal(parse("LOOP,0", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_LOOP);
	assert_int_equal(m.n, 0);
	assert_int_equal(parse("LOOP", &m), SB_EPROTO);
	assert_int_equal(parse("SYNC,12", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_SYNC);
	assert_int_equal(m.n, 12);
	assert_int_equal(parse("PROG,42", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_PROG);
	assert_int_equal(m.n, 42);
	assert_int_equal(parse("PROG,-1", &m), SB_EPROTO);
	assert_int_equal(parse("PROBE", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_PROBE);
	assert_int_equal(parse("WSOK", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_WSOK);
	assert_int_equal(parse("NOOP,anything,goes", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_NOOP);
	assert_int_equal(parse("SERVNAME,Lightstreamer%20HTTP%20Server", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_SERVNAME);
	/* Unknown names are well-formed and ignored; prefixes of known names are not them. */
	assert_int_equal(parse("MPNREG,1,2", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_UNKNOWN);
	assert_str(m.name, "MPNREG");
	assert_int_equal(parse("CONOKX,S,1,2,*", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_UNKNOWN);
	assert_int_equal(parse("", &m), SB_EPROTO);
}

static void
test_parse_subscription(void **state)
{
	(void)state;
	struct tlcp_msg m;
	assert_int_equal(parse("SUBOK,1,3,5", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_SUBOK);
	assert_int_equal(m.sub, 1);
	assert_int_equal(m.item, 3);
	assert_int_equal(m.n, 5);
	assert_int_equal(parse("SUBOK,1,0,5", &m), SB_EPROTO);
	assert_int_equal(parse("SUBOK,1,3,5,9", &m), SB_EPROTO);
	assert_int_equal(parse("SUBOK,1,3,99999", &m), SB_EPROTO);

	assert_int_equal(parse("U,1,2,a|b|^3|#", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_U);
	assert_int_equal(m.sub, 1);
	assert_int_equal(m.item, 2);
	assert_str(m.text, "a|b|^3|#");
	assert_int_equal(parse("U,1,2,", &m), 0);
	assert_str(m.text, "");
	assert_int_equal(parse("U,1,0,x", &m), SB_EPROTO);
	assert_int_equal(parse("U,1,2", &m), SB_EPROTO);
	assert_int_equal(parse("U,1a,2,x", &m), SB_EPROTO);

	assert_int_equal(parse("REQERR,7,19,Specified%20subscription%20not%20found", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_REQERR);
	assert_int_equal(m.n, 7);
	assert_int_equal(m.code, 19);
	assert_int_equal(parse("REQOK,7", &m), 0);
	assert_int_equal(m.n, 7);
	assert_int_equal(parse("REQOK", &m), 0);
	assert_int_equal(m.n, -1);
	assert_int_equal(parse("CS,1,2", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_CS);
	assert_int_equal(m.item, 2);
	assert_int_equal(parse("EOS,1,2", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_EOS);
	assert_int_equal(parse("OV,1,2,17", &m), 0);
	assert_int_equal(m.n, 17);
	assert_int_equal(parse("CONF,1,unlimited,filtered", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_CONF);
	assert_int_equal(parse("UNSUB,1", &m), 0);
	assert_int_equal(m.type, TLCP_MSG_UNSUB);
	/* 19 digits that overflow 2^62 are refused rather than wrapped. */
	assert_int_equal(parse("PROG,9999999999999999999", &m), SB_EPROTO);

	assert_true(tlcp_msg_is_data(TLCP_MSG_U));
	assert_true(tlcp_msg_is_data(TLCP_MSG_SUBOK));
	assert_true(tlcp_msg_is_data(TLCP_MSG_CS));
	assert_true(tlcp_msg_is_data(TLCP_MSG_EOS));
	assert_false(tlcp_msg_is_data(TLCP_MSG_PROBE));
	assert_false(tlcp_msg_is_data(TLCP_MSG_REQOK));
	assert_false(tlcp_msg_is_data(TLCP_MSG_PROG));
	assert_false(tlcp_msg_is_data(TLCP_MSG_SYNC));
}

static void
test_lines(void **state)
{
	(void)state;
	const char buf[] = "CONOK,S,1,2,*\r\nPROBE\r\nU,1,1,x\nPART";
	size_t off = 0, n = strlen(buf), len;
	const char *l;
	assert_int_equal(tlcp_next_line(buf, n, &off, &l, &len), 1);
	assert_int_equal(len, 13);
	assert_memory_equal(l, "CONOK,S,1,2,*", 13);
	assert_int_equal(tlcp_next_line(buf, n, &off, &l, &len), 1);
	assert_int_equal(len, 5);
	assert_int_equal(tlcp_next_line(buf, n, &off, &l, &len), 1);
	assert_memory_equal(l, "U,1,1,x", 7);
	size_t before = off;
	assert_int_equal(tlcp_next_line(buf, n, &off, &l, &len), 0);
	assert_int_equal(off, before);
}

/* decode_one decodes s for nfields and checks it against kinds ('u', 'n', 'v') and values. */
static void
check_decode(const char *s, size_t nfields, const char *kinds, const char *const *vals)
{
	struct tlcp_fv fv[16];
	assert_int_equal(tlcp_decode_values(s, strlen(s), nfields, fv), 0);
	for (size_t i = 0; i < nfields; i++) {
		switch (kinds[i]) {
		case 'u':
			assert_int_equal(fv[i].kind, TLCP_FV_UNCHANGED);
			assert_null(fv[i].val);
			break;
		case 'n':
			assert_int_equal(fv[i].kind, TLCP_FV_NULL);
			assert_null(fv[i].val);
			break;
		default:
			assert_int_equal(fv[i].kind, TLCP_FV_VALUE);
			assert_string_equal(fv[i].val, vals[i]);
			assert_int_equal(fv[i].len, strlen(vals[i]));
		}
	}
	tlcp_fv_clear(fv, nfields);
}

static void
test_decode_values(void **state)
{
	(void)state;
	check_decode("a|b|c", 3, "vvv", (const char *const[]){ "a", "b", "c" });
	/* empty token: unchanged; "#": null; "$": empty string. */
	check_decode("|#|$", 3, "unv", (const char *const[]){ NULL, NULL, "" });
	check_decode("", 1, "u", NULL);
	check_decode("||", 3, "uuu", NULL);
	/* "^N" skips N fields, anywhere. */
	check_decode("^3|x", 4, "uuuv", (const char *const[]){ NULL, NULL, NULL, "x" });
	check_decode("x|^2|y", 4, "vuuv", (const char *const[]){ "x", NULL, NULL, "y" });
	check_decode("^4", 4, "uuuu", NULL);
	/* percent-decoding, including the markers and the separator themselves. */
	check_decode("%23|%24|%5E1|a%7Cb|100%25|caf%C3%A9", 6, "vvvvvv",
	             (const char *const[]){ "#", "$", "^1", "a|b", "100%", "caf\xc3\xa9" });
	/* "#x" is a value (only a lone '#' is null). */
	check_decode("#x|$y", 2, "vv", (const char *const[]){ "#x", "$y" });

	struct tlcp_fv fv[8];
	const char *bad[] = {
		"a|b",      /* one field too many for 1 */
		"^0",       /* empty run */
		"^3",       /* run past the end */
		"^",        /* run without count */
		"^x",       /* run not a number */
		"^P%5B%5D", /* JSON Patch: never asked for */
		"^Tabc",    /* TLCP-diff: never asked for */
		"%4",       /* cut escape */
		"%zz",      /* bad escape */
		"%C3%28",   /* not UTF-8 */
		"%FF",      /* not UTF-8 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tlcp_decode_values(bad[i], strlen(bad[i]), 1, fv), SB_EPROTO);
	/* too few fields for the schema */
	assert_int_equal(tlcp_decode_values("a|b", 3, 3, fv), SB_EPROTO);
	assert_int_equal(tlcp_decode_values("a", 1, 0, fv), SB_EINVAL);
	assert_int_equal(tlcp_decode_values("a", 1, TLCP_MAX_FIELDS + 1, fv), SB_EINVAL);
}

static void
test_encode_round_trip(void **state)
{
	(void)state;
	char v0[] = "x|y", v1[] = "#", v3[] = "", v5[] = "^2", v6[] = "line\r\nnext";
	struct tlcp_fv in[7] = {
		{ TLCP_FV_VALUE, v0, 3 },       { TLCP_FV_VALUE, v1, 1 },
		{ TLCP_FV_NULL, NULL, 0 },      { TLCP_FV_VALUE, v3, 0 },
		{ TLCP_FV_UNCHANGED, NULL, 0 }, { TLCP_FV_VALUE, v5, 2 },
		{ TLCP_FV_VALUE, v6, 10 },
	};
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(tlcp_encode_values(&b, in, 7), 0);
	assert_string_equal(b.data, "x%7Cy|%23|#|$||%5E2|line%0D%0Anext");
	struct tlcp_fv out[7];
	assert_int_equal(tlcp_decode_values(b.data, b.len, 7, out), 0);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(out[i].kind, in[i].kind);
		if (in[i].kind == TLCP_FV_VALUE) {
			assert_int_equal(out[i].len, in[i].len);
			assert_memory_equal(out[i].val, in[i].val, in[i].len);
		}
	}
	tlcp_fv_clear(out, 7);
	/* runs of unchanged fields become ^N */
	struct tlcp_fv runs[5] = { { TLCP_FV_UNCHANGED, NULL, 0 },
		                   { TLCP_FV_UNCHANGED, NULL, 0 },
		                   { TLCP_FV_UNCHANGED, NULL, 0 },
		                   { TLCP_FV_NULL, NULL, 0 },
		                   { TLCP_FV_UNCHANGED, NULL, 0 } };
	sb_buf_reset(&b);
	assert_int_equal(tlcp_encode_values(&b, runs, 5), 0);
	assert_string_equal(b.data, "^3|#|");
	sb_buf_free(&b);
}

static void
test_requests(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	struct tlcp_create c = { .adapter_set = "ISSLIVE",
		                 .cid = "mgQkwtwdysogQz2BJ4Ji kOj2Bg",
		                 .keepalive_ms = 5000 };
	assert_int_equal(tlcp_req_create_session(&b, &c), 0);
	assert_string_equal(b.data, "create_session\r\nLS_cid=mgQkwtwdysogQz2BJ4Ji%20kOj2Bg"
	                            "&LS_adapter_set=ISSLIVE&LS_keepalive_millis=5000"
	                            "&LS_send_sync=true");
	sb_buf_reset(&b);
	assert_int_equal(tlcp_req_bind_session(&b, "S1&2", 118, 0), 0);
	assert_string_equal(b.data, "bind_session\r\nLS_session=S1%262&LS_recovery_from=118");
	sb_buf_reset(&b);
	assert_int_equal(tlcp_req_bind_session(&b, "S1", -1, 0), 0);
	assert_string_equal(b.data, "bind_session\r\nLS_session=S1");
	assert_int_equal(tlcp_req_bind_session(&b, "", -1, 0), SB_EINVAL);
	sb_buf_reset(&b);
	const char *items[] = { "USLAB000032", "S0000004" };
	const char *fields[] = { "Value", "TimeStamp", "Status.Class" };
	assert_int_equal(tlcp_req_subscribe(&b, 3, 1, items, 2, fields, 3), 0);
	assert_string_equal(b.data, "control\r\nLS_reqId=3&LS_op=add&LS_subId=1&LS_mode=MERGE"
	                            "&LS_group=USLAB000032%20S0000004"
	                            "&LS_schema=Value%20TimeStamp%20Status.Class&LS_snapshot=true");
	const char *spaced[] = { "a b" };
	assert_int_equal(tlcp_req_subscribe(&b, 3, 1, spaced, 1, fields, 1), SB_EINVAL);
	assert_int_equal(tlcp_req_subscribe(&b, 3, 1, items, 0, fields, 1), SB_EINVAL);
	sb_buf_reset(&b);
	assert_int_equal(tlcp_req_reconf(&b, 4, 1, 0.5), 0);
	assert_string_equal(b.data, "control\r\nLS_reqId=4&LS_op=reconf&LS_subId=1"
	                            "&LS_requested_max_frequency=0.500");
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_session),
		cmocka_unit_test(test_parse_subscription),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_decode_values),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
