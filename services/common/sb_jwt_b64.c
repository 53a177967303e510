/* sb_jwt_b64.c: strict base64url without padding (RFC 4648 section 5, RFC 7515 section 2). */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdlib.h>

#include "sb_err.h"

static const char sb_jwt_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of each alphabet byte. Every other byte is 0 here too and is told apart from
 * 'A' by sb_jwt_b64_val. */
static const unsigned char sb_jwt_b64_value[256] = {
	['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,
	['H'] = 7,  ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13,
	['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20,
	['V'] = 21, ['W'] = 22, ['X'] = 23, ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27,
	['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31, ['g'] = 32, ['h'] = 33, ['i'] = 34,
	['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41,
	['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47, ['w'] = 48,
	['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
	['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['-'] = 62,
	['_'] = 63,
};

/* sb_jwt_b64_val returns the 6-bit value of c, or -1 if c is not in the alphabet. 'A' maps to
 * 0 in the table like every byte outside the alphabet, so it is told apart explicitly. */
static inline int
sb_jwt_b64_val(unsigned char c)
{
	unsigned char v = sb_jwt_b64_value[c];
	if (v == 0 && c != 'A')
		return -1;
	return v;
}

size_t
sb__jwt_b64url_encode_to(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t i = 0, o = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = sb_jwt_b64_alphabet[v >> 18];
		out[o++] = sb_jwt_b64_alphabet[(v >> 12) & 63];
		out[o++] = sb_jwt_b64_alphabet[(v >> 6) & 63];
		out[o++] = sb_jwt_b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = sb_jwt_b64_alphabet[v >> 18];
		out[o++] = sb_jwt_b64_alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = sb_jwt_b64_alphabet[v >> 18];
		out[o++] = sb_jwt_b64_alphabet[(v >> 12) & 63];
		out[o++] = sb_jwt_b64_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

int
sb_jwt_b64url_encode(const void *in, size_t n, char **out)
{
	char *s;

	if (n > (SIZE_MAX - 4) / 4 * 3)
		return SB_ENOMEM;
	s = malloc(n / 3 * 4 + 4);
	if (s == NULL)
		return SB_ENOMEM;
	sb__jwt_b64url_encode_to(in, n, s);
	*out = s;
	return 0;
}

int
sb_jwt_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	size_t rem = n % 4, need = n / 4 * 3 + (rem ? rem - 1 : 0);
	size_t i = 0, o = 0;

	*outlen = 0;
	if (rem == 1)
		return SB_EINVAL; /* one character cannot carry a whole byte */
	if (need > cap)
		return SB_ERANGE;
	for (; i + 4 <= n; i += 4) {
		int a = sb_jwt_b64_val((unsigned char)s[i]),
		    b = sb_jwt_b64_val((unsigned char)s[i + 1]);
		int c = sb_jwt_b64_val((unsigned char)s[i + 2]);
		int d = sb_jwt_b64_val((unsigned char)s[i + 3]);
		if ((a | b | c | d) < 0)
			return SB_EINVAL;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	if (rem != 0) {
		int a = sb_jwt_b64_val((unsigned char)s[i]),
		    b = sb_jwt_b64_val((unsigned char)s[i + 1]);
		int c = rem == 3 ? sb_jwt_b64_val((unsigned char)s[i + 2]) : 0;
		if ((a | b | c) < 0)
			return SB_EINVAL;
		/* The bits past the last whole byte must be zero: one encoding per byte string. */
		if (rem == 2 && (b & 15) != 0)
			return SB_EINVAL;
		if (rem == 3 && (c & 3) != 0)
			return SB_EINVAL;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		out[o++] = (unsigned char)(v >> 16);
		if (rem == 3)
			out[o++] = (unsigned char)(v >> 8);
	}
	*outlen = o;
	return 0;
}
