/* Tests of sb_util_hex: hex digits both ways, the lowercase-only mode, and percent-decoding of
 * URLs and form fields with every malformed input refused (truncated or bad escapes, NUL bytes,
 * results that do not fit) and nothing left in the buffer after an error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sb_err.h"
#include "sb_util_hex.h"

static void
test_digit(void **state)
{
	(void)state;
	const char *digits = "0123456789abcdefABCDEF";
	const int values[] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
		               11, 12, 13, 14, 15, 10, 11, 12, 13, 14, 15 };
	for (size_t i = 0; digits[i] != '\0'; i++)
		assert_int_equal(sb_hex_digit(digits[i]), values[i]);
	int n = 0;
	for (int c = -1; c < 256; c++)
		n += sb_hex_digit(c) >= 0;
	assert_int_equal(n, 22);
	assert_int_equal(sb_hex_digit('g'), -1);
	assert_int_equal(sb_hex_digit('/'), -1);
	assert_int_equal(sb_hex_digit(':'), -1);
	assert_int_equal(sb_hex_digit('@'), -1);
	assert_int_equal(sb_hex_digit('G'), -1);
	assert_int_equal(sb_hex_digit('`'), -1);
	assert_int_equal(sb_hex_digit(0xb0), -1);
}

static void
test_decode_encode(void **state)
{
	(void)state;
	uint8_t b[4] = { 0 };
	assert_int_equal(sb_hex_decode("00ff7fA0", 4, 0, b), 0);
	assert_memory_equal(b, "\x00\xff\x7f\xa0", 4);
	assert_int_equal(sb_hex_decode("0g", 1, 0, b), SB_EINVAL);
	assert_int_equal(sb_hex_decode("g0", 1, 0, b), SB_EINVAL);
	assert_int_equal(sb_hex_decode("0\0", 1, 0, b), SB_EINVAL);
	assert_int_equal(sb_hex_decode("", 0, 0, b), 0);
	/* lowercase only */
	assert_int_equal(sb_hex_decode("abcd", 2, SB_HEX_LOWER, b), 0);
	assert_memory_equal(b, "\xab\xcd", 2);
	assert_int_equal(sb_hex_decode("aBcd", 2, SB_HEX_LOWER, b), SB_EINVAL);
	assert_int_equal(sb_hex_decode("abcD", 2, SB_HEX_LOWER, b), SB_EINVAL);
	/* reads exactly 2n bytes: what follows is not looked at */
	assert_int_equal(sb_hex_decode("01zz", 1, 0, b), 0);
	assert_int_equal(b[0], 1);

	char out[9] = "........";
	const uint8_t in[4] = { 0x00, 0x0f, 0xa5, 0xff };
	sb_hex_encode(in, 4, out);
	assert_string_equal(out, "000fa5ff"); /* exactly 8 bytes written, the NUL kept */
	uint8_t back[4];
	assert_int_equal(sb_hex_decode(out, 4, SB_HEX_LOWER, back), 0);
	assert_memory_equal(back, in, 4);
}

static int
pct(const char *s, unsigned flags, char *out, size_t cap, size_t *n)
{
	return sb_pct_decode(s, strlen(s), flags, out, cap, n);
}

static void
test_pct(void **state)
{
	(void)state;
	char out[32];
	size_t n = 99;
	assert_int_equal(pct("a%20b%2Fc%2fd", 0, out, sizeof(out), &n), 0);
	assert_string_equal(out, "a b/c/d");
	assert_int_equal(n, 7);
	/* '+' is a space only in form encoding */
	assert_int_equal(pct("a+b%2B", 0, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "a+b+");
	assert_int_equal(pct("a+b%2B", SB_PCT_PLUS_SPACE, out, sizeof(out), &n), 0);
	assert_string_equal(out, "a b+");
	assert_int_equal(n, 4);
	/* empty */
	assert_int_equal(pct("", 0, out, sizeof(out), &n), 0);
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
	/* UTF-8 and high bytes pass through */
	assert_int_equal(pct("%C3%A9\xc3\xa9", 0, out, sizeof(out), &n), 0);
	assert_string_equal(out, "\xc3\xa9\xc3\xa9");
	/* only len bytes are read */
	assert_int_equal(sb_pct_decode("ab%41", 3, 0, out, sizeof(out), &n), SB_EINVAL);
	assert_int_equal(sb_pct_decode("ab%41", 2, 0, out, sizeof(out), &n), 0);
	assert_string_equal(out, "ab");
}

static void
test_pct_malformed(void **state)
{
	(void)state;
	char out[8];
	const char *bad[] = {
		"%", "%4", "a%4", "%g0", "%0g", "%%41", "%+1", "% 1", "%-1", "a%00b"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(pct(bad[i], 0, out, sizeof(out), NULL), SB_EINVAL);
		assert_string_equal(out, "");
	}
	/* a raw NUL inside the span */
	assert_int_equal(sb_pct_decode("a\0b", 3, 0, out, sizeof(out), NULL), SB_EINVAL);
	/* sizes: 7 bytes and the NUL fit in 8, 8 do not; cap 0 never fits */
	assert_int_equal(pct("abcdefg", 0, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(pct("abcdefgh", 0, out, sizeof(out), NULL), SB_ERANGE);
	assert_int_equal(pct("%41bcdefg", 0, out, sizeof(out), NULL), 0);
	assert_int_equal(pct("", 0, out, 0, NULL), SB_ERANGE);
	/* what was decoded before the error is wiped, not only cut */
	memset(out, 'x', sizeof(out));
	assert_int_equal(pct("secret%zz", 0, out, sizeof(out), NULL), SB_EINVAL);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(out[i], '\0');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digit),
		cmocka_unit_test(test_decode_encode),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_pct_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
