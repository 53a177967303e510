/* sb_buf.h: a growable byte buffer, always NUL-terminated for convenience. */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct sb_buf {
	char *data; /* owned; NUL-terminated when len > 0 or after any append */
	size_t len;
	size_t cap;
};

#define SB_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* sb_buf_reserve makes room for extra more bytes (plus the NUL). Returns 0 or SB_ENOMEM. */
int sb_buf_reserve(struct sb_buf *b, size_t extra);
/* sb_buf_append copies n bytes to the end of b. Returns 0 or SB_ENOMEM. */
int sb_buf_append(struct sb_buf *b, const void *p, size_t n);
/* sb_buf_puts appends the C string s. */
int sb_buf_puts(struct sb_buf *b, const char *s);
/* sb_buf_printf appends printf-formatted text. Returns 0 or SB_ENOMEM. */
int sb_buf_printf(struct sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_buf_vprintf(struct sb_buf *b, const char *fmt, va_list ap);
/* sb_utf8_seq returns the length (1-4) of the valid UTF-8 sequence at p (n >= 1 bytes left), or
 * 0 when the bytes there are not one: a stray continuation byte, an overlong form, a surrogate,
 * a code point above U+10FFFF, or a sequence cut short. The one UTF-8 reader of the runtime. */
size_t sb_utf8_seq(const unsigned char *p, size_t n);
/* sb_buf_json_strn appends s[0..n) as a JSON string literal, like sb_buf_json_str. */
int sb_buf_json_strn(struct sb_buf *b, const char *s, size_t n);
/* sb_buf_json_str appends s as a JSON string literal (quotes and escapes included). Bytes of s
 * that are not valid UTF-8 are written as U+FFFD, one per byte, so the literal is always valid
 * JSON (as the transcoder's output is, sb_json.h). Returns 0 or SB_ENOMEM. */
int sb_buf_json_str(struct sb_buf *b, const char *s);
/* sb_buf_reset empties b, keeping its memory. */
void sb_buf_reset(struct sb_buf *b);
/* sb_buf_free releases b's memory; b may be reused after. */
void sb_buf_free(struct sb_buf *b);
/* sb_buf_steal returns b's data (caller frees) and leaves b empty. Never NULL unless ENOMEM. */
char *sb_buf_steal(struct sb_buf *b);

#endif
