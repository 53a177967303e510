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

int
sb_json_escape(const unsigned char *s, size_t n, uint32_t *cp, size_t *used)
{
	static const char simple[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
	if (n < 2 || s[0] != '\\')
		return -1;
	if (s[1] != 'u') {
		const char *k = s[1] != 0 ? strchr(simple, s[1]) : NULL;
		if (k == NULL)
			return -1;
		*cp = (unsigned char)value[k - simple];
		*used = 2;
		return 0;
	}
	int u = n >= 6 ? sb_hex4((const char *)s + 2) : -1;
	if (u <= 0 || (u >= 0xdc00 && u <= 0xdfff))
		return -1; /* bad, \u0000 or a lone low surrogate */
	*cp = (uint32_t)u;
	*used = 6;
	if (u >= 0xd800 && u <= 0xdbff) {
		int lo = n >= 12 && s[6] == '\\' && s[7] == 'u' ? sb_hex4((const char *)s + 8) : -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return -1;
		*cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
		*used = 12;
	}
	return 0;
}
