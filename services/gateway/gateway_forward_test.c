/* gateway_forward_test.c: the decoding forward.c does before transcoding: urlencoded forms and
 * query strings (gw_parse_pairs: percent-escapes, '+', typed fields, unknown names, limits) and
 * HTTP Basic client credentials (gw_basic: RFC 7617 with RFC 6749 2.3.1 urlencoding, strict
 * token68 base64, nothing but the decoded bytes ever read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "gateway.h"

#include "auth.pb-c.h"
#include "messages.pb-c.h"

static const ProtobufCMessageDescriptor *const token_req = &sb__auth__token_request__descriptor;

/* str returns the string member name of o, or NULL. */
static const char *
str(const json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

static int
pairs(json_t *in, const ProtobufCMessageDescriptor *d, const char *s, bool overwrite)
{
	return gw_parse_pairs(in, d, s, strlen(s), overwrite);
}

static void
test_form(void **state)
{
	(void)state;
	json_t *in = json_object();
	assert_int_equal(pairs(in, token_req,
	                       "grant_type=client_credentials&client_id=a%20b&client_secret=p%2Bq+r"
	                       "&unknown=1&scope=a+b%3Ac",
	                       true),
	                 0);
	assert_string_equal(str(in, "grant_type"), "client_credentials");
	assert_string_equal(str(in, "client_id"), "a b");
	assert_string_equal(str(in, "client_secret"), "p+q r");
	assert_string_equal(str(in, "scope"), "a b:c");
	assert_null(json_object_get(in, "unknown")); /* no such field: ignored */
	assert_int_equal(json_object_size(in), 4);
	/* overwrite false keeps what is there (a query string does not override the body) */
	assert_int_equal(pairs(in, token_req, "client_id=other&audience=x", false), 0);
	assert_string_equal(str(in, "client_id"), "a b");
	assert_string_equal(str(in, "audience"), "x");
	assert_int_equal(pairs(in, token_req, "client_id=other", true), 0);
	assert_string_equal(str(in, "client_id"), "other");
	/* empty pairs, a name without '=', an empty value, escaped names */
	assert_int_equal(pairs(in, token_req, "&&resource&refresh_token=&%73cope=s&", true), 0);
	assert_string_equal(str(in, "resource"), "");
	assert_string_equal(str(in, "refresh_token"), "");
	assert_string_equal(str(in, "scope"), "s");
	/* only len bytes are read */
	assert_int_equal(gw_parse_pairs(in, token_req, "scope=abcdef", 9, true), 0);
	assert_string_equal(str(in, "scope"), "abc");
	/* the last of a repeated name wins when overwriting */
	assert_int_equal(pairs(in, token_req, "scope=1&scope=2", true), 0);
	assert_string_equal(str(in, "scope"), "2");
	json_decref(in);
}

static void
test_form_types(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *d = &sb__messages__list_messages_request__descriptor;
	json_t *in = json_object();
	assert_int_equal(pairs(in, d, "limit=10&after_seq=12345678901&id=c%2D1", true), 0);
	assert_true(json_is_integer(json_object_get(in, "limit")));
	assert_int_equal(json_integer_value(json_object_get(in, "limit")), 10);
	/* 64-bit integers travel as strings (the JSON mapping of int64) */
	assert_string_equal(str(in, "after_seq"), "12345678901");
	assert_string_equal(str(in, "id"), "c-1");
	/* not a number: left a string, for the transcoder to refuse with the field's name */
	assert_int_equal(pairs(in, d, "limit=ten", true), 0);
	assert_string_equal(str(in, "limit"), "ten");
	assert_int_equal(pairs(in, d, "limit=", true), 0);
	assert_string_equal(str(in, "limit"), "");
	json_decref(in);
}

static void
test_form_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"client_id=%zz", "client_id=%", "client_id=%4",    "client_id=a%",
		"%=x",           "%00=x",       "client_id=a%00b", "client_id=%0g",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *in = json_object();
		assert_int_equal(pairs(in, token_req, bad[i], true), -1);
		json_decref(in);
	}
	/* a raw NUL inside the span */
	json_t *in = json_object();
	assert_int_equal(gw_parse_pairs(in, token_req, "scope=a\0b", 9, true), -1);
	/* A field's value that is not UTF-8 is refused, not dropped: a dropped scope or
	 * refresh_token would have been read as not sent (the whole scope granted, a misleading
	 * "required"); so is an Idempotency-Key (gw_input). An unknown name's value is skipped. */
	assert_int_equal(pairs(in, token_req, "scope=caf%E9", true), -1);
	assert_int_equal(pairs(in, token_req, "grant_type=x&refresh_token=%FF%FE", true), -1);
	assert_int_equal(pairs(in, token_req, "unknown=%FF&scope=a", true), 0);
	assert_string_equal(str(in, "scope"), "a");
	assert_int_equal(pairs(in, token_req, "scope=caf%C3%A9", true), 0);
	assert_string_equal(str(in, "scope"), "caf\xc3\xa9");
	/* not read at all when the body already set it and the query may not overwrite */
	assert_int_equal(pairs(in, token_req, "scope=%FF", false), 0);
	assert_string_equal(str(in, "scope"), "caf\xc3\xa9");
	json_object_clear(in);
	/* sizes: names up to 63 bytes, values up to 8191 */
	char *s = malloc(8192 + 16);
	assert_non_null(s);
	memcpy(s, "scope=", 6);
	memset(s + 6, 'v', 8191);
	s[6 + 8191] = '\0';
	assert_int_equal(pairs(in, token_req, s, true), 0);
	assert_int_equal(strlen(str(in, "scope")), 8191);
	memcpy(s + 6, "%41", 3); /* the limit is on the decoded value */
	s[6 + 8191 + 2] = '\0';
	s[6 + 8191] = s[6 + 8191 + 1] = 'v';
	assert_int_equal(pairs(in, token_req, s, true), 0);
	memset(s + 6, 'v', 8192);
	s[6 + 8192] = '\0';
	assert_int_equal(pairs(in, token_req, s, true), -1);
	memset(s, 'n', 63);
	strcpy(s + 63, "=x");
	assert_int_equal(pairs(in, token_req, s, true), 0);
	memset(s, 'n', 64);
	strcpy(s + 64, "=x");
	assert_int_equal(pairs(in, token_req, s, true), -1);
	free(s);
	json_decref(in);
}

/* basic64 returns "Basic " and the base64 of s[0..n) (static buffer). */
static const char *
basic64(const char *s, size_t n)
{
	static char out[2048];
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)s, (int)n);
	return out;
}

/* basic runs gw_basic on h; on success checks the credentials found (NULL: not set). */
static int
basic(const char *h, const char *id, const char *secret)
{
	json_t *in = json_object();
	int rv = gw_basic(in, token_req, h);
	if (rv == 0) {
		if (id != NULL)
			assert_string_equal(str(in, "client_id"), id);
		else
			assert_null(json_object_get(in, "client_id"));
		if (secret != NULL)
			assert_string_equal(str(in, "client_secret"), secret);
		else
			assert_null(json_object_get(in, "client_secret"));
	}
	json_decref(in);
	return rv;
}

static void
test_basic(void **state)
{
	(void)state;
	assert_int_equal(basic("Basic dTpw", "u", "p"), 0);       /* "u:p", no padding */
	assert_int_equal(basic("Basic dTpwdw==", "u", "pw"), 0);  /* two pad characters */
	assert_int_equal(basic("Basic dTpwd2Q=", "u", "pwd"), 0); /* one */
	assert_int_equal(basic("basic dTpw", "u", "p"), 0);       /* the scheme is caseless */
	assert_int_equal(basic("BASIC   dTpw", "u", "p"), 0);     /* several spaces before */
	assert_int_equal(basic("Basic Og==", "", ""), 0);         /* ":" */
	const char *enc = "a%3Ab%2B:p%40ss+w%25";                 /* RFC 6749 2.3.1 */
	assert_int_equal(basic(basic64(enc, strlen(enc)), "a:b+", "p@ss w%"), 0);
	const char *colons = "id:se:cr:et"; /* the first colon splits */
	assert_int_equal(basic(basic64(colons, strlen(colons)), "id", "se:cr:et"), 0);
	/* other schemes are not Basic's business */
	assert_int_equal(basic("Bearer dTpw", NULL, NULL), 0);
	assert_int_equal(basic("Basicx dTpw", NULL, NULL), 0);
	/* a secret of 511 bytes fits, 512 do not */
	char cred[600] = "u:";
	memset(cred + 2, 's', 511);
	cred[513] = '\0';
	json_t *in = json_object();
	assert_int_equal(gw_basic(in, token_req, basic64(cred, 513)), 0);
	assert_int_equal(strlen(str(in, "client_secret")), 511);
	json_decref(in);
	cred[513] = 's';
	cred[514] = '\0';
	assert_int_equal(basic(basic64(cred, 514), NULL, NULL), -1);
}

static void
test_basic_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"Basic ",                           /* nothing */
		"Basic dTp",                        /* not whole quanta */
		"Basic dTpwd",                      /* ditto */
		"Basic d=pw",                       /* padding inside */
		"Basic dTpw=",                      /* padding beyond a quantum */
		"Basic dT==dTpw",                   /* padding, then more */
		"Basic ====",                       /* padding only */
		"Basic dTpwd===",                   /* three pad characters */
		"Basic dT pw",                      /* a space inside */
		"Basic dTpw dTpw",                  /* two tokens */
		"Basic dT\npw",                     /* a line feed inside */
		"Basic dTpw\r",                     /* a carriage return after */
		"Basic dT-w",                       /* base64url is not Basic's alphabet */
		"Basic dT_w",      "Basic dTp\x80", /* not ASCII */
		"Basic dXA=",                       /* "up": no colon */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(basic(bad[i], NULL, NULL), -1);
	/* bad escapes and NUL bytes inside the credentials */
	const char *esc[] = { "u%zz:p", "u:p%", "u:p%4", "u\0x:p", "u:p\0" };
	const size_t esclen[] = { 6, 4, 5, 5, 4 };
	for (size_t i = 0; i < sizeof(esc) / sizeof(esc[0]); i++)
		assert_int_equal(basic(basic64(esc[i], esclen[i]), NULL, NULL), -1);
	/* an id or a secret that is not UTF-8 (raw or escaped): refused, not dropped */
	const char *latin[] = { "caf\xe9:p", "u:caf\xe9", "caf%E9:p", "u:%FF" };
	for (size_t i = 0; i < sizeof(latin) / sizeof(latin[0]); i++)
		assert_int_equal(basic(basic64(latin[i], strlen(latin[i])), NULL, NULL), -1);
	assert_int_equal(basic(basic64("caf%C3%A9:p", 11), "caf\xc3\xa9", "p"), 0);
	/* longer than any credentials we accept */
	char *h = malloc(1100);
	assert_non_null(h);
	memcpy(h, "Basic ", 6);
	memset(h + 6, 'A', 1024);
	h[6 + 1024] = '\0';
	assert_int_equal(basic(h, NULL, NULL), -1);
	free(h);
}

/* paint_stack fills the stack below the caller's frame with 'A', so that a read of bytes a
 * callee never wrote shows up as 'A's instead of whatever happened to be there. */
static void __attribute__((noinline)) paint_stack(void)
{
	volatile char junk[32768];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 'A';
}

/* Regression: EVP_DecodeBlock skips leading and trailing whitespace, and the decoded length
 * used to be computed from the raw length, so "\t\t\t\tdTpw" ("u:p" after four tabs) gave the
 * secret "p" followed by three bytes of uninitialised stack, sent on to auth. Whitespace is now
 * refused; whatever the outcome, no byte beyond the decoded ones may be read. */
static void
test_basic_whitespace(void **state)
{
	(void)state;
	const char *hs[] = {
		"Basic \t\t\t\tdTpw",     "Basic dTpw\t\t\t\t", "Basic \tdTpw",      "Basic dTpw ",
		"Basic \t\t\t\tdTpwdw==", "Basic \n\n\n\ndTpw", "Basic \r\n \tdTpw",
	};
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
		json_t *in = json_object();
		paint_stack();
		int rv = gw_basic(in, token_req, hs[i]);
		const char *secret = str(in, "client_secret");
		if (rv == 0 && secret != NULL && strcmp(secret, "p") != 0 &&
		    strcmp(secret, "pw") != 0)
			fail_msg("%s: secret \"%s\" holds bytes that were never decoded", hs[i],
			         secret);
		assert_int_equal(rv, -1);
		json_decref(in);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_form_types),
		cmocka_unit_test(test_form_malformed),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_basic_malformed),
		cmocka_unit_test(test_basic_whitespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
