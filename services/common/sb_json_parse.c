/* sb_json_parse.c: parsing untrusted JSON text within limits.
 *
 * A single pre-scan enforces what jansson does not (raw NUL bytes, depth, member counts,
 * string sizes) and checks UTF-8, keeping the path of where it is so that every error names a
 * place; jansson then builds the tree (syntax, trailing garbage, duplicate keys). */
#include "sb_json_int.h"
#include "sb_err.h"

#include <stdio.h>
#include <string.h>

struct sb_json_frame {
	char kind;       /* '[' or '{' */
	bool expect_key; /* object: the next string is a key */
	size_t count;    /* elements or members seen before the current one */
	const char *key; /* object: current member's key as written (NULL before the first) */
	size_t keylen;
};

struct sb_json_scan {
	struct sb_json_frame st[SB_JSON_DEPTH_CAP + 1];
	int depth;
	char reason[160];
};

/* Renders the path of the scanner's current position, "a.b[3].c". */
static void
sb_json_scan_path(const struct sb_json_scan *s, char *dst, size_t n)
{
	size_t o = 0;
	dst[0] = '\0';
	for (int i = 0; i < s->depth && o < n; i++) {
		const struct sb_json_frame *f = &s->st[i];
		int k;
		if (f->kind == '[')
			k = snprintf(dst + o, n - o, "[%zu]", f->count);
		else if (f->key != NULL)
			k = snprintf(dst + o, n - o, "%s%.*s", o ? "." : "", (int)f->keylen,
			             f->key);
		else
			k = 0;
		if (k < 0)
			break;
		o += (size_t)k;
	}
}

/* Scans buf[0..stop); returns 0, or SB_EINVAL with s->reason set and the path state kept. */
static int
sb_json_scan_run(struct sb_json_scan *s, const char *buf, size_t stop,
                 const struct sb_json_limits *lim)
{
	const unsigned char *p = (const unsigned char *)buf;
	bool in_str = false;
	size_t str_start = 0;
	int max_depth = lim->max_depth;
	if (max_depth > SB_JSON_DEPTH_CAP)
		max_depth = SB_JSON_DEPTH_CAP;
	s->depth = 0;
	for (size_t i = 0; i < stop; i++) {
		unsigned c = p[i];
		if (c == 0) {
			snprintf(s->reason, sizeof(s->reason), "NUL byte at offset %zu", i);
			return SB_EINVAL;
		}
		if (c >= 0x80) {
			size_t k = sb_utf8_seq(p + i, stop - i);
			if (k == 0) {
				snprintf(s->reason, sizeof(s->reason),
				         "invalid UTF-8 at offset %zu", i);
				return SB_EINVAL;
			}
			i += k - 1;
			continue;
		}
		struct sb_json_frame *top = s->depth > 0 ? &s->st[s->depth - 1] : NULL;
		if (in_str) {
			if (c == '\\') {
				if (i + 5 < stop && memcmp(p + i + 1, "u0000", 5) == 0) {
					snprintf(s->reason, sizeof(s->reason),
					         "\\u0000 (NUL) at offset %zu is not allowed", i);
					return SB_EINVAL;
				}
				if (i + 1 < stop && p[i + 1] != 0)
					i++;
			} else if (c == '"') {
				in_str = false;
				if (i - str_start > lim->max_string) {
					snprintf(s->reason, sizeof(s->reason),
					         "string longer than %zu bytes", lim->max_string);
					return SB_EINVAL;
				}
				if (top != NULL && top->kind == '{' && top->expect_key) {
					top->key = buf + str_start;
					top->keylen = i - str_start;
					top->expect_key = false;
				}
			}
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			str_start = i + 1;
			break;
		case '[':
		case '{':
			if (s->depth >= max_depth) {
				snprintf(s->reason, sizeof(s->reason),
				         "nesting deeper than %d levels", max_depth);
				return SB_EINVAL;
			}
			s->st[s->depth++] =
			    (struct sb_json_frame){ .kind = (char)c, .expect_key = c == '{' };
			break;
		case ']':
		case '}':
			if (s->depth > 0)
				s->depth--;
			break;
		case ',':
			if (top == NULL)
				break;
			if (++top->count >= lim->max_members) {
				snprintf(s->reason, sizeof(s->reason), "more than %zu %s",
				         lim->max_members,
				         top->kind == '[' ? "array elements" : "object members");
				return SB_EINVAL;
			}
			if (top->kind == '{') {
				top->expect_key = true;
				top->key = NULL;
			}
			break;
		}
	}
	return 0;
}

int
sb_json_parse_limits(const char *buf, size_t len, const struct sb_json_limits *lim, json_t **out,
                     struct sb_json_errors *errs)
{
	sb__json_err_reset(errs);
	if (buf == NULL || lim == NULL || out == NULL || lim->max_depth < 1) {
		sb__json_err_add(errs, "", "invalid arguments");
		return SB_EINVAL;
	}
	if (len > lim->max_bytes) {
		sb__json_err_add(errs, "", "body larger than %zu bytes", lim->max_bytes);
		return SB_EINVAL;
	}
	struct sb_json_scan s;
	char path[128];
	if (sb_json_scan_run(&s, buf, len, lim) != 0) {
		sb_json_scan_path(&s, path, sizeof(path));
		sb__json_err_add(errs, path, "%s", s.reason);
		return SB_EINVAL;
	}
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		/* jansson's position is just past the offending token; a closing bracket there
		 * still belongs to the container it failed in. */
		size_t at = jerr.position > 0 ? (size_t)jerr.position : 0;
		if (at > len)
			at = len;
		if (at > 0 && (buf[at - 1] == ']' || buf[at - 1] == '}'))
			at--;
		sb_json_scan_run(&s, buf, at, lim);
		sb_json_scan_path(&s, path, sizeof(path));
		sb__json_err_add(errs, path, "invalid JSON: %.100s (line %d, column %d)", jerr.text,
		                 jerr.line, jerr.column);
		return SB_EINVAL;
	}
	*out = j;
	return 0;
}

int
sb_json_parse(const char *buf, size_t len, int max_depth, json_t **out, struct sb_json_errors *errs)
{
	const struct sb_json_limits lim = {
		.max_bytes = SB_JSON_DEFAULT_MAX_BYTES,
		.max_depth = max_depth,
		.max_members = SB_JSON_DEFAULT_MAX_MEMBERS,
		.max_string = SB_JSON_DEFAULT_MAX_STRING,
	};
	return sb_json_parse_limits(buf, len, &lim, out, errs);
}
