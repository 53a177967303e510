/* Tests of sb_util_b64: RFC 4648's test vectors (section 10) padded and unpadded, both alphabets,
 * every padding rule, non-canonical and malformed input refused, buffers too small refused, and
 * round trips of every byte value under every flag combination. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sb_err.h"
#include "sb_util_b64.h"

/* dec decodes s under flags and returns the error or compares with want. */
static int
dec(const char *s, unsigned flags, const char *want)
{
	uint8_t out[64];
	size_t n = 99;
	int rv = sb_b64_decode(s, strlen(s), flags, out, sizeof(out), &n);
	if (rv == 0 && want != NULL) {
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
	return rv;
}

static void
test_rfc4648_vectors(void **state)
{
	(void)state;
	static const char *const v[][3] = {
		{ "", "", "" },
		{ "f", "Zg==", "Zg" },
		{ "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char enc[32];
		size_t n = strlen(v[i][0]);
		assert_int_equal(sb_b64_encode(v[i][0], n, SB_B64_PAD, enc, sizeof(enc)), 0);
		assert_string_equal(enc, v[i][1]);
		assert_int_equal(sb_b64_encoded_len(n, SB_B64_PAD), strlen(v[i][1]));
		assert_int_equal(sb_b64_encode(v[i][0], n, SB_B64_URL, enc, sizeof(enc)), 0);
		assert_string_equal(enc, v[i][2]);
		assert_int_equal(sb_b64_encoded_len(n, 0), strlen(v[i][2]));
		assert_int_equal(dec(v[i][1], SB_B64_STD | SB_B64_PAD, v[i][0]), 0);
		assert_int_equal(dec(v[i][2], SB_B64_URL | SB_B64_NOPAD, v[i][0]), 0);
		assert_int_equal(dec(v[i][1], SB_B64_STD, v[i][0]), 0); /* padding optional */
		assert_int_equal(dec(v[i][2], SB_B64_STD, v[i][0]), 0);
		if (strcmp(v[i][1], v[i][2]) != 0) {
			assert_int_equal(dec(v[i][2], SB_B64_PAD, NULL), SB_EINVAL);
			assert_int_equal(dec(v[i][1], SB_B64_URL | SB_B64_NOPAD, NULL), SB_EINVAL);
		}
	}
}

static void
test_alphabets(void **state)
{
	(void)state;
	const uint8_t b[] = { 0xfb, 0xff, 0xbf };
	char enc[8];
	assert_int_equal(sb_b64_encode(b, 3, 0, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "+/+/");
	assert_int_equal(sb_b64_encode(b, 3, SB_B64_URL, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(dec("+/+/", 0, "\xfb\xff\xbf"), 0);
	assert_int_equal(dec("-_-_", 0, NULL), SB_EINVAL); /* default: the standard alphabet */
	assert_int_equal(dec("+/+/", SB_B64_URL, NULL), SB_EINVAL);
	assert_int_equal(dec("-_-_", SB_B64_URL, "\xfb\xff\xbf"), 0);
	assert_int_equal(dec("-_+/", SB_B64_URL | SB_B64_STD, "\xfb\xff\xbf"), 0);
}

static void
test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Zg=",      /* padding short of a quad */
		"Zg===",    /* three '=' */
		"Z===",     /* one digit */
		"Z",        /* one digit, unpadded */
		"Zm9vY",    /* a quad plus one digit */
		"Zh==",     /* unused bits not zero: "Zg==" is the one spelling of "f" */
		"Zm9=",     /* likewise for two bytes */
		"Zm 9v",    /* whitespace */
		"Zm9v\n",   /* a newline */
		"Zg==Zg==", /* padding inside */
		"Zm=v",     /* '=' among digits */
		"Zm9v=",    /* '=' after a full quad */
		"====",     /* nothing but padding */
		"Zm9*",     /* a byte outside both alphabets */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = dec(bad[i], SB_B64_STD | SB_B64_URL, NULL);
		if (rv != SB_EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	uint8_t out[8];
	size_t n;
	const char nul[] = { 'Z', 'g', '\0', '=' };
	assert_int_equal(sb_b64_decode(nul, sizeof(nul), 0, out, sizeof(out), &n), SB_EINVAL);
	assert_int_equal(dec("Zg==", SB_B64_NOPAD, NULL), SB_EINVAL);
	assert_int_equal(dec("Zg", SB_B64_PAD, NULL), SB_EINVAL);
}

static void
test_capacity(void **state)
{
	(void)state;
	uint8_t out[8];
	size_t n;
	char enc[9];
	assert_int_equal(sb_b64_decode("Zm9vYmFy", 8, 0, out, 5, &n), SB_ERANGE);
	assert_int_equal(sb_b64_decode("Zm9vYmFy", 8, 0, out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(sb_b64_decoded_max(8), 6);
	assert_int_equal(sb_b64_decoded_max(7), 5);
	assert_int_equal(sb_b64_decoded_max(6), 4);
	assert_int_equal(sb_b64_decoded_max(5), 3);
	memset(enc, 'x', sizeof(enc));
	assert_int_equal(sb_b64_encode("foobar", 6, SB_B64_PAD, enc, 8), SB_ERANGE);
	assert_int_equal(enc[0], 'x');
	assert_int_equal(sb_b64_encode("foobar", 6, SB_B64_PAD, enc, 9), 0);
	assert_string_equal(enc, "Zm9vYmFy");
}

static void
test_round_trips(void **state)
{
	(void)state;
	uint8_t in[256], out[256];
	char enc[400];
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)(255 - i);
	static const unsigned fl[] = { 0, SB_B64_PAD, SB_B64_URL, SB_B64_URL | SB_B64_PAD };
	for (size_t f = 0; f < 4; f++)
		for (size_t n = 0; n <= sizeof(in); n += (n < 8 ? 1 : 37)) {
			size_t got = 0;
			assert_int_equal(sb_b64_encode(in, n, fl[f], enc, sizeof(enc)), 0);
			assert_int_equal(strlen(enc), sb_b64_encoded_len(n, fl[f]));
			unsigned df = (fl[f] & SB_B64_URL) ? SB_B64_URL : SB_B64_STD;
			df |= (fl[f] & SB_B64_PAD) ? SB_B64_PAD : SB_B64_NOPAD;
			assert_int_equal(
			    sb_b64_decode(enc, strlen(enc), df, out, sizeof(out), &got), 0);
			assert_int_equal(got, n);
			assert_memory_equal(out, in, n);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_alphabets),
		cmocka_unit_test(test_refused),         cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
