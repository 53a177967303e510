/* sb_buf.c: growable byte buffer. */
#include "sb_buf.h"
#include "sb_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sb_buf_reserve(struct sb_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (p == NULL)
		return SB_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
sb_buf_append(struct sb_buf *b, const void *p, size_t n)
{
	if (sb_buf_reserve(b, n) != 0)
		return SB_ENOMEM;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
sb_buf_puts(struct sb_buf *b, const char *s)
{
	return sb_buf_append(b, s, strlen(s));
}

int
sb_buf_vprintf(struct sb_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return SB_EINVAL;
	if (sb_buf_reserve(b, (size_t)n) != 0)
		return SB_ENOMEM;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
sb_buf_printf(struct sb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = sb_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

size_t
sb_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
sb_buf_json_str(struct sb_buf *b, const char *s)
{
	return sb_buf_json_strn(b, s, strlen(s));
}

int
sb_buf_json_strn(struct sb_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* p[run..i) is copied verbatim when the run ends */
	int rc = sb_buf_reserve(b, n + 2);
	if (rc == 0)
		rc = sb_buf_append(b, "\"", 1);
	for (size_t i = 0; i < n && rc == 0;) {
		unsigned c = p[i];
		const char *esc;
		char u[7];
		if (c >= 0x80) {
			size_t len = sb_utf8_seq(p + i, n - i);
			if (len != 0) {
				i += len;
				continue;
			}
			esc = "\xef\xbf\xbd"; /* U+FFFD REPLACEMENT CHARACTER, for this one byte */
		} else if (c == '"') {
			esc = "\\\"";
		} else if (c == '\\') {
			esc = "\\\\";
		} else if (c == '\n') {
			esc = "\\n";
		} else if (c == '\r') {
			esc = "\\r";
		} else if (c == '\t') {
			esc = "\\t";
		} else if (c < 0x20) {
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = '\0';
			esc = u;
		} else {
			i++;
			continue;
		}
		rc = sb_buf_append(b, p + run, i - run);
		if (rc == 0)
			rc = sb_buf_puts(b, esc);
		run = ++i;
	}
	if (rc == 0)
		rc = sb_buf_append(b, p + run, n - run);
	if (rc == 0)
		rc = sb_buf_append(b, "\"", 1);
	return rc;
}

void
sb_buf_reset(struct sb_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
sb_buf_free(struct sb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
sb_buf_steal(struct sb_buf *b)
{
	if (b->data == NULL && sb_buf_reserve(b, 0) != 0)
		return NULL;
	b->data[b->len] = '\0';
	char *p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
