/* fuzz.h: what the libFuzzer targets of tests/fuzz share: the invariant check and copies of the
 * input in the shapes parsers take. Header-only; every target is one executable. */
#ifndef SB_FUZZ_H
#define SB_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CHECK aborts (a finding, with the input saved by libFuzzer) when a property does not hold. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__,        \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fz_cstr returns a malloc'd NUL-terminated copy of data[0..n) (exactly n + 1 bytes, so that
 * AddressSanitizer sees a read past the end); the string ends at the first NUL of data. */
static inline char *
fz_cstr(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);
	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

/* fz_cut cuts s at its first newline: s keeps the text before it, and the text after it is
 * returned (dflt when s holds no newline). For targets whose input is two texts. */
static inline const char *
fz_cut(char *s, const char *dflt)
{
	char *nl = strchr(s, '\n');
	if (nl == NULL)
		return dflt;
	*nl = '\0';
	return nl + 1;
}

/* fz_dup returns a malloc'd copy of exactly n bytes (at least one allocated). */
static inline char *
fz_dup(const uint8_t *data, size_t n)
{
	char *s = malloc(n ? n : 1);
	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, data, n);
	return s;
}

/* fz_next splits the input: returns the bytes up to the next NUL (or the end) as *part, *plen
 * and advances *data, *size past them and the NUL. */
static inline void
fz_next(const uint8_t **data, size_t *size, const uint8_t **part, size_t *plen)
{
	const uint8_t *nul = *size ? memchr(*data, '\0', *size) : NULL;
	size_t n = nul ? (size_t)(nul - *data) : *size;
	*part = *data;
	*plen = n;
	*data += nul ? n + 1 : n;
	*size -= nul ? n + 1 : n;
}

/* fz_lowhex is the value of a lowercase hex digit, or -1. */
static inline int
fz_lowhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* fz_hex is the value of a hex digit of either case, or -1. */
static inline int
fz_hex(int c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return fz_lowhex(c);
}

#endif
