/* sb_buf.c: growable byte buffer. */
#include "sb_buf.h"
#include "sb_err.h"

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

int
sb_buf_json_str(struct sb_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (sb_buf_reserve(b, strlen(s) + 2) != 0)
		return SB_ENOMEM;
	sb_buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[7];
		switch (*p) {
		case '"':
			sb_buf_append(b, "\\\"", 2);
			break;
		case '\\':
			sb_buf_append(b, "\\\\", 2);
			break;
		case '\n':
			sb_buf_append(b, "\\n", 2);
			break;
		case '\r':
			sb_buf_append(b, "\\r", 2);
			break;
		case '\t':
			sb_buf_append(b, "\\t", 2);
			break;
		default:
			if (*p < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				if (sb_buf_append(b, esc, 6) != 0)
					return SB_ENOMEM;
			} else if (sb_buf_append(b, p, 1) != 0) {
				return SB_ENOMEM;
			}
		}
	}
	return sb_buf_append(b, "\"", 1);
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
