/* sb_util_hex.h: hexadecimal digits, JSON string escapes (\uXXXX) and percent-encoding (RFC 3986
 * section 2.1, and the application/x-www-form-urlencoded variant where '+' is a space): the one
 * decoder and encoder of each that every service uses. Pure functions, no allocation, any thread.
 */
#ifndef SB_UTIL_HEX_H
#define SB_UTIL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Flags of sb_hex_decode. */
#define SB_HEX_LOWER 1u /* lowercase digits only (W3C traceparent refuses 'A'-'F') */

/* sb_hex_digit returns the value (0-15) of the hex digit c ('0'-'9', 'a'-'f', 'A'-'F'), or -1
 * for any other value, EOF included. */
int sb_hex_digit(int c);

/* sb_hex4 returns the value (0-0xffff) of the four hex digits (either case) at s, which must
 * hold four bytes (a JSON \u escape's digits), or -1 when one of them is not a hex digit. */
int sb_hex4(const char *s);

/* sb_hex_decode reads exactly 2*n hex digits from s (which must hold that many bytes; no NUL is
 * looked for) into out[0..n), high digit first. With SB_HEX_LOWER, 'A'-'F' are refused. Returns
 * 0, or SB_EINVAL at the first byte that is not a digit (out may then be partly written). */
int sb_hex_decode(const char *s, size_t n, unsigned flags, uint8_t *out);

/* sb_hex_encode writes the n bytes of in as 2*n lowercase hex digits to out (no NUL added). */
void sb_hex_encode(const uint8_t *in, size_t n, char *out);

/* Flags of sb_pct_decode. */
#define SB_PCT_PLUS_SPACE 1u /* '+' decodes to a space (form bodies and query strings) */

/* sb_pct_decode decodes s[0..len) into out, a buffer of cap bytes: "%XX" (either case) is the
 * byte 0xXX, every other byte is itself ('+' a space with SB_PCT_PLUS_SPACE). Returns 0 with
 * out NUL-terminated and the decoded length in *n (n may be NULL); SB_EINVAL for a truncated or
 * non-hex escape or a NUL byte in the result (escaped or not: the result is a C string);
 * SB_ERANGE when the result and its NUL do not fit in cap (cap 0 included). On error what was
 * written is wiped (it may be part of a secret) and out is "" when cap > 0. */
int sb_pct_decode(const char *s, size_t len, unsigned flags, char *out, size_t cap, size_t *n);

/* sb_json_escape decodes the JSON string escape at s[0..n) (s[0] is the backslash): the code
 * point in *cp and the bytes it takes (2, 6, or 12 for a surrogate pair) in *used. Returns 0, or
 * -1 for a bad or truncated escape, \u0000 (no C string holds it) or a lone surrogate. One
 * decoder for every scanner of JSON strings (sb_json_valid.c, sb_json_fast.c, sb_jwt_scan.c). */
int sb_json_escape(const unsigned char *s, size_t n, uint32_t *cp, size_t *used);

#endif
