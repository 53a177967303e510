/* sb_util_b64.c: base64 (RFC 4648 sections 4 and 5). */
#include "sb_util_b64.h"

#include <stdbool.h>
#include <stdint.h>

#include "sb_err.h"

static const char sb_b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char sb_b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
sb_b64_encoded_len(size_t n, unsigned flags)
{
	if (flags & SB_B64_PAD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int
sb_b64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap)
{
	const uint8_t *p = in;
	const char *abc = (flags & SB_B64_URL) ? sb_b64_url : sb_b64_std;
	if (n > (SIZE_MAX - 4) / 4 * 3 || cap < sb_b64_encoded_len(n, flags) + 1)
		return SB_ERANGE;
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = abc[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		if (n - i == 2)
			out[o++] = abc[(v >> 6) & 63];
		else if (flags & SB_B64_PAD)
			out[o++] = '=';
		if (flags & SB_B64_PAD)
			out[o++] = '=';
	}
	out[o] = '\0';
	return 0;
}

size_t
sb_b64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

/* sb_b64_val returns the value of digit c under flags, or -1. */
static int
sb_b64_val(unsigned char c, unsigned flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	bool url = flags & SB_B64_URL, std = (flags & SB_B64_STD) || !url;
	if ((std && c == '+') || (url && c == '-'))
		return 62;
	if ((std && c == '/') || (url && c == '_'))
		return 63;
	return -1;
}

int
sb_b64_decode(const char *s, size_t n, unsigned flags, void *out, size_t cap, size_t *outlen)
{
	uint8_t *q = out;
	size_t pad = 0;
	while (pad < 2 && n > 0 && s[n - 1] == '=') {
		n--;
		pad++;
	}
	if (pad > 0 && (flags & SB_B64_NOPAD))
		return SB_EINVAL;
	/* padded: the digits and '=' fill whole quads, and '=' only where digits are missing */
	if (pad > 0 && ((n + pad) % 4 != 0 || n % 4 == 0))
		return SB_EINVAL;
	if (pad == 0 && (flags & SB_B64_PAD) && n % 4 != 0)
		return SB_EINVAL;
	if (n % 4 == 1) /* one digit cannot carry a whole byte */
		return SB_EINVAL;
	if (sb_b64_decoded_max(n) > cap)
		return SB_ERANGE;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = sb_b64_val((unsigned char)s[i], flags);
		if (v < 0)
			return SB_EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			q[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* the unused bits of the last digit */
		return SB_EINVAL;
	*outlen = o;
	return 0;
}
