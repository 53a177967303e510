/* sb_json_fast.c: JSON text straight into a protobuf message, without a jansson tree, for the
 * requests that make up the gateway's load (a publish batch of a few KiB: one tree node and
 * one copy per string, then each raw payload written back by json_dumps, cost the gateway more
 * CPU than anything else it does with the request).
 *
 * It is a fast path, not a second transcoder: it answers only when it is sure that
 * sb_json_parse followed by sb_json_to_pb would build the very same message, and otherwise says
 * SB_JSON_FAST_ASK so that the caller takes that path, which also words every error. It
 * handles objects whose fields are strings, integers written as integers, booleans, enums by
 * name, sub-messages, repeated fields of those, and sb.json.Raw values (written as jansson's
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes them); it asks for anything else: null,
 * maps, oneofs, proto2 labels, floating point, bytes, integers as strings or reals, escaped or
 * unknown keys, a field given twice, a real number inside a raw value, and any input the
 * limits of sb_json_parse or the transcoder would refuse. sb_json_fast_fuzz checks that what
 * it builds packs to the same bytes as the slow path's message, on any input. */
#include "sb_json_int.h"
#include "sb_util_hex.h"
#include "sb_err.h"

#include <stdlib.h>
#include <string.h>

#define SB_JF_RAW_KEYS 32 /* keys of one raw object compared for duplicates, at most */

struct sb_jf {
	const unsigned char *s;
	size_t n, i;
	const struct sb_json_limits *lim;
	int max_depth;
	int depth; /* containers open, as sb_json_parse counts them */
	bool nomem;
};

static void
sb_jf_ws(struct sb_jf *f)
{
	while (f->i < f->n && (f->s[f->i] == ' ' || f->s[f->i] == '\t' || f->s[f->i] == '\n' ||
	                       f->s[f->i] == '\r'))
		f->i++;
}

/* sb_jf_open enters a container at f->i ('[' or '{'); false when it is another byte or one
 * more level would pass the depth limit. */
static bool
sb_jf_open(struct sb_jf *f, unsigned char c)
{
	if (f->i >= f->n || f->s[f->i] != c || f->depth >= f->max_depth)
		return false;
	f->depth++;
	f->i++;
	return true;
}

/* sb_jf_next reads what follows an element or member: true with *more for ',', true without
 * for the closing bracket close, false otherwise or when the container has as many commas as
 * the member limit allows no more of. */
static bool
sb_jf_next(struct sb_jf *f, unsigned char close, size_t *commas, bool *more)
{
	sb_jf_ws(f);
	if (f->i >= f->n)
		return false;
	unsigned char c = f->s[f->i++];
	if (c == ',') {
		*more = true;
		return ++*commas < f->lim->max_members;
	}
	*more = false;
	if (c != close)
		return false;
	f->depth--;
	return true;
}

/* sb_jf_put_cp appends code point cp as UTF-8. */
static int
sb_jf_put_cp(struct sb_buf *b, uint32_t cp)
{
	char u[4];
	size_t k;
	if (cp < 0x80) {
		u[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	return sb_buf_append(b, u, k);
}

/* sb_jf_take ends a buffer that a scan (ok: its result) filled: the text, now the caller's, or
 * NULL when the scan failed (the buffer freed) or the memory ran out (f->nomem set). */
static char *
sb_jf_take(struct sb_jf *f, struct sb_buf *b, bool ok)
{
	if (!ok) {
		sb_buf_free(b);
		return NULL;
	}
	char *c = sb_buf_steal(b);
	if (c == NULL)
		f->nomem = true;
	return c;
}

/* sb_jf_string reads the string at f->i (its opening quote). With out it appends the decoded
 * text there (as_json: written back as jansson writes a string, quotes included), else it only
 * checks it. *escaped tells whether the text had a backslash. False when the string is not one
 * both sb_json_parse and jansson take (or memory ran out: f->nomem). */
static bool
sb_jf_string(struct sb_jf *f, struct sb_buf *out, bool as_json, bool *escaped)
{
	const unsigned char *s = f->s;
	size_t i = f->i + 1, n = f->n, start = i, run = i;
	*escaped = false;
	if (i > n || s[i - 1] != '"')
		return false;
	if (out != NULL && as_json && sb_buf_append(out, "\"", 1) != 0)
		goto nomem;
	for (;;) {
		while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
			i++;
		if (i >= n || s[i] < 0x20)
			return false;
		if (s[i] >= 0x80) {
			size_t k = sb_utf8_seq(s + i, n - i);
			if (k == 0)
				return false;
			i += k;
			continue;
		}
		if (out != NULL && sb_buf_append(out, s + run, i - run) != 0)
			goto nomem;
		if (s[i] == '"')
			break;
		/* a backslash: decoded, and written back in jansson's spelling */
		*escaped = true;
		uint32_t cp;
		size_t used;
		if (sb_json_escape(s + i, n - i, &cp, &used) != 0)
			return false;
		i += used;
		run = i;
		if (out == NULL)
			continue;
		int rc;
		if (!as_json || (cp >= 0x20 && cp != '"' && cp != '\\')) {
			rc = sb_jf_put_cp(out, cp);
		} else {
			static const char hex[] = "0123456789ABCDEF";
			char e[7] = { '\\', 0, 0, 0, 0, 0, 0 };
			size_t k = 2;
			switch (cp) {
			case '"':
			case '\\':
				e[1] = (char)cp;
				break;
			case '\b':
				e[1] = 'b';
				break;
			case '\f':
				e[1] = 'f';
				break;
			case '\n':
				e[1] = 'n';
				break;
			case '\r':
				e[1] = 'r';
				break;
			case '\t':
				e[1] = 't';
				break;
			default:
				memcpy(e + 1, "u00", 3);
				e[4] = hex[cp >> 4];
				e[5] = hex[cp & 15];
				k = 6;
			}
			rc = sb_buf_append(out, e, k);
		}
		if (rc != 0)
			goto nomem;
	}
	if (i - start > f->lim->max_string)
		return false;
	if (out != NULL && as_json && sb_buf_append(out, "\"", 1) != 0)
		goto nomem;
	f->i = i + 1;
	return true;
nomem:
	f->nomem = true;
	return false;
}

/* sb_jf_integer reads a number at f->i that must be an integer as jansson reads one (no
 * fraction or exponent) within int64_t; *span is where it was written. */
static bool
sb_jf_integer(struct sb_jf *f, long long *v, size_t *span)
{
	const unsigned char *s = f->s;
	size_t i = f->i, n = f->n, start = i;
	bool neg = false;
	if (i < n && s[i] == '-') {
		neg = true;
		i++;
	}
	if (i >= n || s[i] < '0' || s[i] > '9' ||
	    (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9'))
		return false;
	unsigned long long mag = 0;
	size_t digits = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (++digits > 19)
			return false;
		mag = mag * 10 + (unsigned)(s[i++] - '0');
	}
	if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
		return false;
	if (mag > (neg ? 9223372036854775808ull : 9223372036854775807ull))
		return false;
	*v = neg ? (long long)(0 - mag) : (long long)mag;
	*span = i - start;
	f->i = i;
	return true;
}

/* sb_jf_word reads the literal w at f->i (followed by no letter, as jansson reads words). */
static bool
sb_jf_word(struct sb_jf *f, const char *w)
{
	size_t k = strlen(w);
	if (f->n - f->i < k || memcmp(f->s + f->i, w, k) != 0)
		return false;
	unsigned c = f->i + k < f->n ? f->s[f->i + k] : 0;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return false;
	f->i += k;
	return true;
}

/* sb_jf_raw appends the value at f->i to out as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY)
 * writes what jansson loads from it. */
static bool
sb_jf_raw(struct sb_jf *f, struct sb_buf *out)
{
	sb_jf_ws(f);
	if (f->i >= f->n)
		return false;
	unsigned c = f->s[f->i];
	bool escaped;
	size_t commas = 0;
	bool more;
	if (c == '"')
		return sb_jf_string(f, out, true, &escaped);
	if (c == '-' || (c >= '0' && c <= '9')) {
		long long v;
		size_t span, at = f->i;
		if (!sb_jf_integer(f, &v, &span))
			return false;
		/* "-0" is the integer 0, written "0" */
		bool ok = v == 0 ? sb_buf_append(out, "0", 1) == 0
		                 : sb_buf_append(out, f->s + at, span) == 0;
		f->nomem |= !ok;
		return ok;
	}
	if (c == '[') {
		if (!sb_jf_open(f, '[') || sb_buf_append(out, "[", 1) != 0)
			return false;
		sb_jf_ws(f);
		if (f->i < f->n && f->s[f->i] == ']') {
			f->i++;
			f->depth--;
			return sb_buf_append(out, "]", 1) == 0;
		}
		do {
			if (commas > 0 && sb_buf_append(out, ",", 1) != 0)
				return false;
			if (!sb_jf_raw(f, out) || !sb_jf_next(f, ']', &commas, &more))
				return false;
		} while (more);
		return sb_buf_append(out, "]", 1) == 0;
	}
	if (c == '{') {
		struct {
			const unsigned char *p;
			size_t n;
		} keys[SB_JF_RAW_KEYS];
		size_t nkeys = 0;
		if (!sb_jf_open(f, '{') || sb_buf_append(out, "{", 1) != 0)
			return false;
		sb_jf_ws(f);
		if (f->i < f->n && f->s[f->i] == '}') {
			f->i++;
			f->depth--;
			return sb_buf_append(out, "}", 1) == 0;
		}
		do {
			if (commas > 0 && sb_buf_append(out, ",", 1) != 0)
				return false;
			sb_jf_ws(f);
			const unsigned char *k = f->s + f->i + 1;
			/* a key without escapes is written back as it is */
			if (f->i >= f->n || !sb_jf_string(f, out, true, &escaped) || escaped ||
			    nkeys == SB_JF_RAW_KEYS)
				return false;
			size_t klen = (size_t)(f->s + f->i - 1 - k);
			for (size_t j = 0; j < nkeys; j++)
				if (keys[j].n == klen && memcmp(keys[j].p, k, klen) == 0)
					return false; /* a duplicate key */
			keys[nkeys].p = k;
			keys[nkeys++].n = klen;
			sb_jf_ws(f);
			if (f->i >= f->n || f->s[f->i] != ':' || sb_buf_append(out, ":", 1) != 0)
				return false;
			f->i++;
			if (!sb_jf_raw(f, out) || !sb_jf_next(f, '}', &commas, &more))
				return false;
		} while (more);
		return sb_buf_append(out, "}", 1) == 0;
	}
	if (sb_jf_word(f, "true"))
		return sb_buf_append(out, "true", 4) == 0;
	if (sb_jf_word(f, "false"))
		return sb_buf_append(out, "false", 5) == 0;
	if (sb_jf_word(f, "null"))
		return sb_buf_append(out, "null", 4) == 0;
	return false; /* a real number, or not JSON */
}

static bool sb_jf_message(struct sb_jf *f, const ProtobufCMessageDescriptor *md,
                          ProtobufCMessage *m);

/* sb_jf_value reads one value of field fd's type into the slot dst (zeroed, or the field's
 * default). What it allocates is reachable from dst at once, so that the root's free_unpacked
 * frees it whatever happens next. */
static bool
sb_jf_value(struct sb_jf *f, const ProtobufCFieldDescriptor *fd, void *dst)
{
	sb_jf_ws(f);
	if (f->i >= f->n)
		return false;
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		struct sb_buf b = SB_BUF_INIT;
		bool escaped;
		char *c = sb_jf_take(f, &b, sb_jf_string(f, &b, false, &escaped));
		if (c == NULL)
			return false;
		*(char **)dst = c;
		return true;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (sb_jf_word(f, "true"))
			*(protobuf_c_boolean *)dst = 1;
		else if (sb_jf_word(f, "false"))
			*(protobuf_c_boolean *)dst = 0;
		else
			return false;
		return true;
	case PROTOBUF_C_TYPE_ENUM: {
		char name[128];
		bool escaped;
		size_t at = f->i + 1;
		if (!sb_jf_string(f, NULL, false, &escaped) || escaped ||
		    f->i - 1 - at >= sizeof(name))
			return false;
		memcpy(name, f->s + at, f->i - 1 - at);
		name[f->i - 1 - at] = '\0';
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value_by_name(fd->descriptor, name);
		if (ev == NULL)
			return false;
		*(int *)dst = ev->value;
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sd = fd->descriptor;
		ProtobufCMessage *sub = malloc(sd->sizeof_message);
		if (sub == NULL) {
			f->nomem = true;
			return false;
		}
		protobuf_c_message_init(sd, sub);
		*(ProtobufCMessage **)dst = sub;
		if (!sb__json_is_raw(sd))
			return sb_jf_message(f, sd, sub);
		struct sb_buf b = SB_BUF_INIT;
		/* a failed scan (out of memory too): the slow path will say so */
		char *text = sb_jf_take(f, &b, sb_jf_raw(f, &b));
		if (text == NULL)
			return false;
		*(char **)((char *)sub + sd->fields[0].offset) = text;
		return true;
	}
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		long long v;
		size_t span;
		if (!sb_jf_integer(f, &v, &span))
			return false;
		switch (fd->type) {
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
			if (v < INT32_MIN || v > INT32_MAX)
				return false;
			*(int32_t *)dst = (int32_t)v;
			return true;
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			if (v < 0 || v > (long long)UINT32_MAX)
				return false;
			*(uint32_t *)dst = (uint32_t)v;
			return true;
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			if (v < 0)
				return false;
			*(uint64_t *)dst = (uint64_t)v;
			return true;
		default:
			*(int64_t *)dst = v;
			return true;
		}
	}
	default: /* float, double, bytes: the slow path */
		return false;
	}
}

/* sb_jf_repeated reads the array of repeated field fd into m. */
static bool
sb_jf_repeated(struct sb_jf *f, const ProtobufCFieldDescriptor *fd, ProtobufCMessage *m)
{
	if (!sb_jf_open(f, '['))
		return false;
	sb_jf_ws(f);
	if (f->i < f->n && f->s[f->i] == ']') {
		f->i++;
		f->depth--;
		return true; /* the field stays empty */
	}
	size_t sz = sb__json_slot_size(fd->type), cap = 0, commas = 0;
	char **arr = (char **)((char *)m + fd->offset);
	size_t *np = (size_t *)((char *)m + fd->quantifier_offset);
	bool more;
	do {
		if (*np == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char *na = realloc(*arr, ncap * sz);
			if (na == NULL) {
				f->nomem = true;
				return false;
			}
			*arr = na;
			cap = ncap;
		}
		char *slot = *arr + *np * sz;
		memset(slot, 0, sz);
		(*np)++; /* zeroed: freeing it is safe whatever happens next */
		sb_jf_ws(f);
		if (f->i < f->n && f->s[f->i] == 'n')
			return false; /* null elements: the slow path refuses them */
		if (!sb_jf_value(f, fd, slot) || !sb_jf_next(f, ']', &commas, &more))
			return false;
	} while (more);
	return true;
}

/* sb_jf_field finds the field called k[0..n) as sb_json_to_pb does: the proto name, else the
 * lowerCamel JSON name of a name with underscores. */
static const ProtobufCFieldDescriptor *
sb_jf_field(const ProtobufCMessageDescriptor *md, const unsigned char *k, size_t n)
{
	char key[128];
	if (n >= sizeof(key))
		return NULL;
	memcpy(key, k, n);
	key[n] = '\0';
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(md, key);
	if (fd != NULL)
		return fd;
	for (unsigned i = 0; i < md->n_fields; i++)
		if (strchr(md->fields[i].name, '_') != NULL &&
		    sb__json_camel_eq(md->fields[i].name, key))
			return &md->fields[i];
	return NULL;
}

/* sb_jf_message reads the object at f->i into m (initialised, of type md). */
static bool
sb_jf_message(struct sb_jf *f, const ProtobufCMessageDescriptor *md, ProtobufCMessage *m)
{
	unsigned char seen[64] = { 0 };
	if (md->n_fields > sizeof(seen))
		return false;
	for (unsigned i = 0; i < md->n_fields; i++)
		if (md->fields[i].label == PROTOBUF_C_LABEL_REQUIRED)
			return false;
	sb_jf_ws(f);
	if (!sb_jf_open(f, '{'))
		return false;
	sb_jf_ws(f);
	if (f->i < f->n && f->s[f->i] == '}') {
		f->i++;
		f->depth--;
		return true;
	}
	size_t commas = 0;
	bool more, escaped;
	do {
		sb_jf_ws(f);
		const unsigned char *k = f->s + f->i + 1;
		if (f->i >= f->n || !sb_jf_string(f, NULL, false, &escaped) || escaped)
			return false;
		const ProtobufCFieldDescriptor *fd =
		    sb_jf_field(md, k, (size_t)(f->s + f->i - 1 - k));
		if (fd == NULL || seen[fd - md->fields]++ ||
		    (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    fd->label == PROTOBUF_C_LABEL_OPTIONAL)
			return false; /* unknown, twice, in a oneof, or with a has_ flag */
		sb_jf_ws(f);
		if (f->i >= f->n || f->s[f->i] != ':')
			return false;
		f->i++;
		sb_jf_ws(f);
		if (f->i < f->n && f->s[f->i] == 'n')
			return false; /* null: the slow path gives the default */
		bool ok;
		if (fd->label != PROTOBUF_C_LABEL_REPEATED)
			ok = sb_jf_value(f, fd, (char *)m + fd->offset);
		else if (sb__json_is_map(fd))
			ok = false;
		else
			ok = sb_jf_repeated(f, fd, m);
		if (!ok || !sb_jf_next(f, '}', &commas, &more))
			return false;
	} while (more);
	return true;
}

int
sb_json_fast_to_pb(const ProtobufCMessageDescriptor *md, const char *text, size_t len,
                   const struct sb_json_limits *lim, ProtobufCMessage **out)
{
	if (md == NULL || text == NULL || lim == NULL || out == NULL || lim->max_depth < 1 ||
	    len > lim->max_bytes || md->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return SB_JSON_FAST_ASK;
	struct sb_jf f = {
		.s = (const unsigned char *)text,
		.n = len,
		.lim = lim,
		.max_depth =
		    lim->max_depth < SB_JSON_DEPTH_CAP ? lim->max_depth : SB_JSON_DEPTH_CAP,
	};
	ProtobufCMessage *m = malloc(md->sizeof_message);
	if (m == NULL)
		return SB_ENOMEM;
	protobuf_c_message_init(md, m);
	bool ok = sb_jf_message(&f, md, m);
	if (ok) {
		sb_jf_ws(&f);
		ok = f.i == f.n;
	}
	if (!ok) {
		protobuf_c_message_free_unpacked(m, NULL);
		return f.nomem ? SB_ENOMEM : SB_JSON_FAST_ASK;
	}
	*out = m;
	return 0;
}
