/* sb_util_hex.c: hexadecimal digits and percent-decoding (see sb_util_hex.h). */
#include "sb_util_hex.h"
#include "sb_err.h"

#include <string.h>

int
sb_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* sb_hex_value is sb_hex_digit with the SB_HEX_LOWER rule applied. */
static int
sb_hex_value(unsigned char c, unsigned flags)
{
	if ((flags & SB_HEX_LOWER) && c >= 'A' && c <= 'F')
		return -1;
	return sb_hex_digit(c);
}

int
sb_hex4(const char *s)
{
	int x = 0;
	for (int k = 0; k < 4; k++) {
		int d = sb_hex_digit((unsigned char)s[k]);
		if (d < 0)
			return -1;
		x = x << 4 | d;
	}
	return x;
}

int
sb_hex_decode(const char *s, size_t n, unsigned flags, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = sb_hex_value((unsigned char)s[2 * i], flags);
		int lo = hi < 0 ? -1 : sb_hex_value((unsigned char)s[2 * i + 1], flags);
		if (lo < 0)
			return SB_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
sb_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
}

int
sb_pct_decode(const char *s, size_t len, unsigned flags, char *out, size_t cap, size_t *n)
{
	size_t o = 0;
	int ret = 0;
	if (cap == 0)
		return SB_ERANGE;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+' && (flags & SB_PCT_PLUS_SPACE)) {
			c = ' ';
		} else if (c == '%') {
			uint8_t b;
			if (len - i < 3 || sb_hex_decode(s + i + 1, 1, 0, &b) != 0) {
				ret = SB_EINVAL;
				break;
			}
			c = b;
			i += 2;
		}
		if (c == '\0') {
			ret = SB_EINVAL;
			break;
		}
		if (o + 1 >= cap) {
			ret = SB_ERANGE;
			break;
		}
		out[o++] = (char)c;
	}
	if (ret != 0) {
		explicit_bzero(out, o); /* what was decoded may be part of a secret */
		o = 0;
	}
	out[o] = '\0';
	if (ret == 0 && n != NULL)
		*n = o;
	return ret;
}
