/* sb_json_valid.c: is this text one JSON value, as jansson would load it? Without building a
 * tree: the gateway checks every raw JSON payload a service hands back (sb.json.Raw) before
 * writing it into a response, and building and freeing a jansson tree per payload (one malloc
 * per string, the text copied byte by byte) cost more CPU than the rest of the encoding.
 *
 * The answer must be jansson's, flags JSON_DECODE_ANY | JSON_REJECT_DUPLICATES (what the
 * encoder accepted before): strict UTF-8 everywhere; whitespace only space, tab, LF, CR;
 * strings without raw control characters, with the escapes of RFC 8259 and \u escapes that
 * pair their surrogates and are not \u0000; integers (no '.', 'e', 'E') that fit int64_t;
 * other numbers that do not overflow a double; true, false, null; no duplicate key in an
 * object (compared after decoding); no value nested deeper than JSON_PARSER_MAX_DEPTH (2048)
 * levels; nothing but whitespace after the value. A NUL byte anywhere is refused (json_loadb
 * loses one that follows a number or a literal and accepts "9\0"; the encoder checks C strings,
 * which have none). Where a cheap answer is not certain (a key
 * with escapes, an object of more than SB_JSON_VALID_KEYS members, a long real number), jansson
 * decides. sb_json_valid_fuzz checks the two agree on any input. */
#include "sb_json_int.h"
#include "sb_util_hex.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SB_JSON_VALID_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH (2.14) */
#define SB_JSON_VALID_KEYS  64   /* keys of the open objects compared here, at most */

enum sb_jv_r { SB_JV_NO, SB_JV_YES, SB_JV_ASK }; /* ASK: let jansson decide */

struct sb_jv_key {
	const char *p;
	size_t n;
};

struct sb_jv {
	const unsigned char *s;
	size_t n, i;
	struct sb_jv_key keys[SB_JSON_VALID_KEYS];
	size_t nkeys;
	bool key_escaped; /* the last string scanned had a backslash */
};

static void
sb_jv_ws(struct sb_jv *v)
{
	while (v->i < v->n && (v->s[v->i] == ' ' || v->s[v->i] == '\t' || v->s[v->i] == '\n' ||
	                       v->s[v->i] == '\r'))
		v->i++;
}

/* sb_jv_string scans a string whose opening quote is at v->i; leaves v->i past the closing
 * quote. */
static enum sb_jv_r
sb_jv_string(struct sb_jv *v)
{
	const unsigned char *s = v->s;
	size_t i = v->i + 1, n = v->n;
	v->key_escaped = false;
	for (;;) {
		/* the common run: printable ASCII that needs no attention */
		while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
			i++;
		if (i >= n)
			return SB_JV_NO;
		unsigned c = s[i];
		if (c == '"') {
			v->i = i + 1;
			return SB_JV_YES;
		}
		if (c < 0x20)
			return SB_JV_NO;
		if (c >= 0x80) {
			size_t k = sb_utf8_seq(s + i, n - i);
			if (k == 0)
				return SB_JV_NO;
			i += k;
			continue;
		}
		/* a backslash */
		v->key_escaped = true;
		uint32_t cp;
		size_t used;
		if (sb_json_escape(s + i, n - i, &cp, &used) != 0)
			return SB_JV_NO;
		i += used;
	}
}

/* sb_jv_number scans a number starting at v->i ('-' or a digit). */
static enum sb_jv_r
sb_jv_number(struct sb_jv *v)
{
	const unsigned char *s = v->s;
	size_t start = v->i, i = v->i, n = v->n;
	bool neg = false, real = false;
	if (s[i] == '-') {
		neg = true;
		i++;
	}
	size_t d0 = i;
	if (i < n && s[i] == '0') {
		i++;
		if (i < n && s[i] >= '0' && s[i] <= '9')
			return SB_JV_NO;
	} else if (i < n && s[i] >= '1' && s[i] <= '9') {
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return SB_JV_NO;
	}
	size_t digits = i - d0;
	if (i < n && s[i] == '.') {
		real = true;
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return SB_JV_NO;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	bool exp = false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		real = exp = true;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return SB_JV_NO;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	v->i = i;
	if (!real) {
		/* int64_t: 19 digits at most, compared with the limit when 19 */
		static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
		if (digits < 19)
			return SB_JV_YES;
		if (digits > 19)
			return SB_JV_NO;
		return memcmp(s + d0, neg ? min : max, 19) <= 0 ? SB_JV_YES : SB_JV_NO;
	}
	/* Only an exponent, or more than 300 digits before the point, can overflow a double. */
	if (!exp && digits <= 300)
		return SB_JV_YES;
	char tmp[128];
	if (i - start >= sizeof(tmp))
		return SB_JV_ASK;
	memcpy(tmp, s + start, i - start);
	tmp[i - start] = '\0';
	errno = 0;
	double x = strtod(tmp, NULL);
	return (errno == ERANGE && isinf(x)) ? SB_JV_NO : SB_JV_YES;
}

/* sb_jv_word scans true, false or null: a run of letters that must be exactly one of them. */
static enum sb_jv_r
sb_jv_word(struct sb_jv *v)
{
	size_t i = v->i;
	while (i < v->n &&
	       ((v->s[i] >= 'a' && v->s[i] <= 'z') || (v->s[i] >= 'A' && v->s[i] <= 'Z')))
		i++;
	size_t k = i - v->i;
	const char *w = (const char *)v->s + v->i;
	v->i = i;
	if ((k == 4 && (memcmp(w, "true", 4) == 0 || memcmp(w, "null", 4) == 0)) ||
	    (k == 5 && memcmp(w, "false", 5) == 0))
		return SB_JV_YES;
	return SB_JV_NO;
}

/* The containers open around the scanner: '[' or '{' with the first of its keys in v->keys
 * (SIZE_MAX once the object has escaped or too many keys: jansson decides its duplicates). */
struct sb_jv_frame {
	char kind;
	size_t key0;
};

/* sb_jv_member scans an object member's key and the ':' after it; *ask is set when jansson
 * must decide whether the key is a duplicate. */
static enum sb_jv_r
sb_jv_member(struct sb_jv *v, struct sb_jv_frame *top, bool *ask)
{
	sb_jv_ws(v);
	if (v->i >= v->n || v->s[v->i] != '"')
		return SB_JV_NO;
	const char *k = (const char *)v->s + v->i + 1;
	if (sb_jv_string(v) == SB_JV_NO)
		return SB_JV_NO;
	size_t klen = (size_t)((const char *)v->s + v->i - 1 - k);
	if (top->key0 != SIZE_MAX && (v->key_escaped || v->nkeys >= SB_JSON_VALID_KEYS)) {
		v->nkeys = top->key0;
		top->key0 = SIZE_MAX;
		*ask = true;
	}
	if (top->key0 != SIZE_MAX) {
		for (size_t j = top->key0; j < v->nkeys; j++)
			if (v->keys[j].n == klen && memcmp(v->keys[j].p, k, klen) == 0)
				return SB_JV_NO;
		v->keys[v->nkeys++] = (struct sb_jv_key){ k, klen };
	}
	sb_jv_ws(v);
	if (v->i >= v->n || v->s[v->i] != ':')
		return SB_JV_NO;
	v->i++;
	return SB_JV_YES;
}

/* sb_jv_close reads what follows a value: ',' (true: another element or member follows), or
 * the brackets that close containers, and at the top the end of the text. *depth drops with
 * each container closed; NO for anything else. */
static enum sb_jv_r
sb_jv_close(struct sb_jv *v, struct sb_jv_frame *st, int *depth)
{
	for (;;) {
		sb_jv_ws(v);
		if (*depth == 0)
			return v->i == v->n ? SB_JV_YES : SB_JV_NO;
		struct sb_jv_frame *top = &st[*depth - 1];
		if (v->i >= v->n)
			return SB_JV_NO;
		unsigned c = v->s[v->i++];
		if (c == ',')
			return SB_JV_ASK; /* another element or member */
		if (c != (top->kind == '[' ? ']' : '}'))
			return SB_JV_NO;
		if (top->kind == '{' && top->key0 != SIZE_MAX)
			v->nkeys = top->key0;
		(*depth)--;
	}
}

static enum sb_jv_r
sb_jv_run(struct sb_jv *v, struct sb_jv_frame *st)
{
	int depth = 0; /* containers open */
	bool ask = false;
	for (;;) {
		/* a value is expected at v->i, depth + 1 levels deep */
		sb_jv_ws(v);
		if (v->i >= v->n || depth + 1 > SB_JSON_VALID_DEPTH)
			return SB_JV_NO;
		unsigned c = v->s[v->i];
		enum sb_jv_r r;
		if (c == '[' || c == '{') {
			v->i++;
			st[depth++] = (struct sb_jv_frame){ .kind = (char)c, .key0 = v->nkeys };
			sb_jv_ws(v);
			if (v->i < v->n && v->s[v->i] == (c == '[' ? ']' : '}')) {
				v->i++;
				depth--;
				r = SB_JV_YES;
			} else {
				if (c == '{' && sb_jv_member(v, &st[depth - 1], &ask) == SB_JV_NO)
					return SB_JV_NO;
				continue; /* the first element or member's value */
			}
		} else if (c == '"') {
			r = sb_jv_string(v);
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			r = sb_jv_number(v);
		} else {
			r = sb_jv_word(v);
		}
		if (r == SB_JV_NO)
			return SB_JV_NO;
		ask |= r == SB_JV_ASK;
		r = sb_jv_close(v, st, &depth);
		if (r != SB_JV_ASK) /* the end of the text, or an error */
			return r == SB_JV_YES && ask ? SB_JV_ASK : r;
		if (st[depth - 1].kind == '{' && sb_jv_member(v, &st[depth - 1], &ask) == SB_JV_NO)
			return SB_JV_NO;
	}
}

bool
sb_json_valid(const char *s, size_t n)
{
	if (s == NULL)
		return false;
	struct sb_jv v = { .s = (const unsigned char *)s, .n = n };
	struct sb_jv_frame small[64], *st = small;
	/* deeper text needs a bigger stack: at most one frame per byte */
	size_t need = n < SB_JSON_VALID_DEPTH ? n : SB_JSON_VALID_DEPTH;
	if (need > 64 && (st = malloc(need * sizeof(*st))) == NULL)
		return false;
	enum sb_jv_r r = sb_jv_run(&v, st);
	if (st != small)
		free(st);
	if (r != SB_JV_ASK)
		return r == SB_JV_YES;
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_decref(j);
	return j != NULL;
}
