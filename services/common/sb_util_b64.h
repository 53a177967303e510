/* sb_util_b64.h: base64 (RFC 4648), the one encoder and decoder every service uses: the standard
 * alphabet (section 4: '+' '/') and the URL- and filename-safe one (section 5: '-' '_'), with
 * '=' padding required, refused or optional. Decoding is strict: no whitespace, no byte outside
 * the alphabets allowed, only lengths some encoding has, and the unused bits of the last digit
 * zero, so that under one alphabet and padding rule a byte string has one spelling ("QQ==" is
 * "A"; "QR==" is refused). Pure functions, no allocation, any thread. */
#ifndef SB_UTIL_B64_H
#define SB_UTIL_B64_H

#include <stddef.h>

/* Flags. Decoding accepts the digits of every alphabet named (neither: the standard one);
 * encoding writes the URL-safe alphabet when SB_B64_URL is set, else the standard one. */
#define SB_B64_STD   1u /* '+' and '/' as digits 62 and 63 */
#define SB_B64_URL   2u /* '-' and '_' as digits 62 and 63 */
#define SB_B64_PAD   4u /* encode: pad with '=' to a multiple of 4; decode: padding required */
#define SB_B64_NOPAD 8u /* decode: '=' refused (neither PAD nor NOPAD: padding optional) */

/* sb_b64_encoded_len returns the length of the encoding of n bytes (without a NUL), padded when
 * flags has SB_B64_PAD. */
size_t sb_b64_encoded_len(size_t n, unsigned flags);

/* sb_b64_encode writes the encoding of in[0..n) and a NUL into out, a buffer of cap bytes.
 * Returns 0, or SB_ERANGE when cap < sb_b64_encoded_len(n, flags) + 1 (out untouched). */
int sb_b64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap);

/* sb_b64_decoded_max returns the most bytes n characters can decode to. */
size_t sb_b64_decoded_max(size_t n);

/* sb_b64_decode decodes s[0..n) (no NUL is looked for) into out[0..cap). Returns 0 and the
 * decoded length in *outlen; SB_EINVAL for input that is not a strict encoding under flags (see
 * above); SB_ERANGE when the bytes do not fit in cap. out may be partly written on an error. */
int sb_b64_decode(const char *s, size_t n, unsigned flags, void *out, size_t cap, size_t *outlen);

#endif
