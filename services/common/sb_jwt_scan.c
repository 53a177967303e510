/* sb_jwt_scan.c: a strict JSON (RFC 8259) reader for the claims object of a token, which
 * allocates nothing: the payload's top-level members are recorded in a caller-provided struct,
 * their strings decoded into its arena. Parsing the claims with a general JSON library cost
 * about a fifth of an RS256 verification; this costs a few hundred nanoseconds.
 *
 * It refuses what a careful general parser refuses: anything but one object, duplicate
 * top-level names, control characters and invalid UTF-8 in strings, bad escapes and lone
 * surrogates, \u0000, malformed numbers, trailing bytes, nesting deeper than SB_JWT_SCAN_DEPTH. */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"
#include "sb_util_hex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SB_JWT_SCAN_DEPTH 16

struct sb_jwt_scan {
	const unsigned char *p, *end;
	struct sb__jwt_claims *c;
};

static void
sb_jwt_scan_ws(struct sb_jwt_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* sb_jwt_scan_utf8 checks the UTF-8 sequence at p (at most n bytes) and returns its length,
 * or 0 if it is invalid (overlong, surrogate, past U+10FFFF, truncated). */
static size_t
sb_jwt_scan_utf8(const unsigned char *p, size_t n)
{
	unsigned c = p[0], cp;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* sb_jwt_scan_put writes code point cp as UTF-8 at o; returns the number of bytes. */
static size_t
sb_jwt_scan_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* sb_jwt_scan_string reads a string (s->p at its opening quote). When out is not NULL the
 * decoded text is written into the arena, NUL-terminated, and *out, *outlen point at it. The
 * decoded form is never longer than the source, so the arena (twice the input) never fills. */
static int
sb_jwt_scan_string(struct sb_jwt_scan *s, const char **out, size_t *outlen)
{
	struct sb__jwt_claims *c = s->c;
	char *o = out != NULL ? c->arena + c->used : NULL;
	size_t n = 0;

	s->p++;
	for (;;) {
		if (s->p >= s->end)
			return -1;
		unsigned char ch = *s->p;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return -1;
		if (ch != '\\') {
			size_t len = sb_jwt_scan_utf8(s->p, (size_t)(s->end - s->p));
			if (len == 0)
				return -1;
			if (o != NULL)
				memcpy(o + n, s->p, len);
			n += len;
			s->p += len;
			continue;
		}
		uint32_t cp;
		size_t used;
		if (sb_json_escape(s->p, (size_t)(s->end - s->p), &cp, &used) != 0)
			return -1;
		s->p += used;
		if (o != NULL)
			n += sb_jwt_scan_put(o + n, cp);
		else
			n++;
	}
	s->p++;
	if (o != NULL) {
		o[n] = '\0';
		c->used += n + 1;
		*out = o;
		*outlen = n;
	}
	return 0;
}

/* sb_jwt_scan_number reads a number; sets *is_int when it has no fraction nor exponent. */
static int
sb_jwt_scan_number(struct sb_jwt_scan *s, bool *is_int)
{
	const unsigned char *p = s->p, *e = s->end;

	*is_int = true;
	if (p < e && *p == '-')
		p++;
	if (p >= e || *p < '0' || *p > '9')
		return -1;
	if (*p == '0')
		p++;
	else
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	if (p < e && *p == '.') {
		*is_int = false;
		if (++p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	s->p = p;
	return 0;
}

static int sb_jwt_scan_skip(struct sb_jwt_scan *s, int depth);

/* sb_jwt_scan_skip_container reads an array or object (s->p at its bracket) without recording
 * it. */
static int
sb_jwt_scan_skip_container(struct sb_jwt_scan *s, int depth)
{
	unsigned char close = *s->p == '[' ? ']' : '}';

	if (depth >= SB_JWT_SCAN_DEPTH)
		return -1;
	s->p++;
	sb_jwt_scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (s->p >= s->end || *s->p != '"' ||
			    sb_jwt_scan_string(s, NULL, NULL) != 0)
				return -1;
			sb_jwt_scan_ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				return -1;
			sb_jwt_scan_ws(s);
		}
		if (sb_jwt_scan_skip(s, depth + 1) != 0)
			return -1;
		sb_jwt_scan_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
		sb_jwt_scan_ws(s);
	}
}

/* sb_jwt_scan_literal reads the word lit. */
static int
sb_jwt_scan_literal(struct sb_jwt_scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* sb_jwt_scan_skip reads any value without recording it. */
static int
sb_jwt_scan_skip(struct sb_jwt_scan *s, int depth)
{
	bool is_int;

	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return sb_jwt_scan_string(s, NULL, NULL);
	case '[':
	case '{':
		return sb_jwt_scan_skip_container(s, depth);
	case 't':
		return sb_jwt_scan_literal(s, "true");
	case 'f':
		return sb_jwt_scan_literal(s, "false");
	case 'n':
		return sb_jwt_scan_literal(s, "null");
	default:
		return sb_jwt_scan_number(s, &is_int);
	}
}

/* sb_jwt_scan_array reads a top-level member's array, recording its string elements. */
static int
sb_jwt_scan_array(struct sb_jwt_scan *s, struct sb__jwt_member *m)
{
	struct sb__jwt_claims *c = s->c;

	m->type = SB__JWT_ARRAY;
	m->first = c->nitems;
	s->p++;
	sb_jwt_scan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (s->p < s->end && *s->p == '"') {
			if (c->nitems == SB__JWT_ITEMS_MAX)
				return -1;
			struct sb__jwt_item *it = &c->items[c->nitems++];
			if (sb_jwt_scan_string(s, &it->str, &it->len) != 0)
				return -1;
			m->count++;
		} else if (sb_jwt_scan_skip(s, 1) != 0) {
			return -1;
		}
		sb_jwt_scan_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == ']') {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
		sb_jwt_scan_ws(s);
	}
}

/* sb_jwt_scan_value reads the value of a top-level member into m. */
static int
sb_jwt_scan_value(struct sb_jwt_scan *s, struct sb__jwt_member *m)
{
	const unsigned char *start = s->p;
	char num[64], *end;
	bool is_int;

	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '"':
		m->type = SB__JWT_STRING;
		return sb_jwt_scan_string(s, &m->str, &m->len);
	case '[':
		return sb_jwt_scan_array(s, m);
	case '{':
		m->type = SB__JWT_OTHER;
		return sb_jwt_scan_skip_container(s, 1);
	case 't':
	case 'f':
	case 'n':
		m->type = SB__JWT_OTHER;
		return sb_jwt_scan_skip(s, 1);
	}
	if (sb_jwt_scan_number(s, &is_int) != 0)
		return -1;
	m->type = SB__JWT_NUMBER;
	m->is_int = is_int;
	m->in_range = false;
	if ((size_t)(s->p - start) >= sizeof num)
		return 0; /* a valid number, but too long to be a time: out of range */
	memcpy(num, start, (size_t)(s->p - start));
	num[s->p - start] = '\0';
	errno = 0;
	if (is_int)
		m->ival = strtoll(num, &end, 10);
	else
		m->dval = strtod(num, &end);
	m->in_range = errno == 0;
	return 0;
}

int
sb__jwt_scan_claims(const char *json, size_t n, struct sb__jwt_claims *c)
{
	struct sb_jwt_scan s = { (const unsigned char *)json, (const unsigned char *)json + n, c };

	c->n = c->nitems = c->used = 0;
	if (n > SB__JWT_SCAN_MAX)
		return -1;
	sb_jwt_scan_ws(&s);
	if (s.p >= s.end || *s.p++ != '{')
		return -1;
	sb_jwt_scan_ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
		goto tail;
	}
	for (;;) {
		struct sb__jwt_member *m;
		if (c->n == SB__JWT_MEMBERS_MAX || s.p >= s.end || *s.p != '"')
			return -1;
		m = &c->m[c->n];
		memset(m, 0, sizeof *m);
		if (sb_jwt_scan_string(&s, &m->name, &m->name_len) != 0)
			return -1;
		for (size_t i = 0; i < c->n; i++)
			if (c->m[i].name_len == m->name_len &&
			    memcmp(c->m[i].name, m->name, m->name_len) == 0)
				return -1; /* duplicate member name (RFC 7519 section 4) */
		sb_jwt_scan_ws(&s);
		if (s.p >= s.end || *s.p++ != ':')
			return -1;
		sb_jwt_scan_ws(&s);
		if (sb_jwt_scan_value(&s, m) != 0)
			return -1;
		c->n++;
		sb_jwt_scan_ws(&s);
		if (s.p >= s.end)
			return -1;
		if (*s.p == '}') {
			s.p++;
			break;
		}
		if (*s.p++ != ',')
			return -1;
		sb_jwt_scan_ws(&s);
	}
tail:
	sb_jwt_scan_ws(&s);
	return s.p == s.end ? 0 : -1;
}

const struct sb__jwt_member *
sb__jwt_claims_get(const struct sb__jwt_claims *c, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].name_len == n && memcmp(c->m[i].name, name, n) == 0)
			return &c->m[i];
	return NULL;
}
