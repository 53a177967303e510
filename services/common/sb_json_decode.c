/* sb_json_decode.c: JSON -> protobuf, driven by the message descriptor.
 *
 * Everything is built in memory protobuf_c_message_free_unpacked() frees (malloc'd strings,
 * arrays and sub-messages, each reachable from the root as soon as it exists), so a failure at
 * any point frees the partial message with one call. Decoding goes on after a bad field so that
 * the client hears about every bad field at once. */
#include "sb_json_int.h"
#include "sb_err.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb_json_dec {
	struct sb_json_errors *errs;
	int bad;     /* violations seen, recorded or dropped */
	int nomem;   /* an allocation failed */
	int depth;   /* message nesting */
	size_t plen; /* length of path */
	char path[256];
};

/* Appends ".name" (or "name" at the root), "[i]" when name is NULL; returns the old length. */
static size_t
sb_json_dec_push(struct sb_json_dec *d, const char *name, size_t idx)
{
	size_t old = d->plen;
	size_t room = sizeof(d->path) - d->plen;
	int k;
	if (name != NULL)
		k = snprintf(d->path + d->plen, room, "%s%s", d->plen ? "." : "", name);
	else
		k = snprintf(d->path + d->plen, room, "[%zu]", idx);
	d->plen = k < 0 ? d->plen : ((size_t)k >= room ? sizeof(d->path) - 1 : d->plen + (size_t)k);
	return old;
}

static void
sb_json_dec_pop(struct sb_json_dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

#define SB_JSON_BAD(d, ...)                                                                        \
	do {                                                                                       \
		(d)->bad++;                                                                        \
		sb__json_err_add((d)->errs, (d)->path, __VA_ARGS__);                               \
	} while (0)

static const char *
sb_json_int_name(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return "int32";
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return "uint32";
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return "uint64";
	default:
		return "int64";
	}
}

/* Parses a decimal integer string exactly: optional '-', digits, nothing else. */
static int
sb_json_dec_intstr(const char *s, bool is_unsigned, long long *sv, unsigned long long *uv)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '\0')
		return SB_EINVAL;
	for (const char *q = p; *q; q++) {
		if (*q < '0' || *q > '9')
			return SB_EINVAL;
	}
	errno = 0;
	if (is_unsigned) {
		if (*s == '-')
			return strspn(p, "0") == strlen(p) ? (*uv = 0, 0) : SB_ERANGE;
		*uv = strtoull(s, NULL, 10);
	} else {
		*sv = strtoll(s, NULL, 10);
	}
	return errno == ERANGE ? SB_ERANGE : 0;
}

/* Decodes an integer field value (number or decimal string) into dst. */
static void
sb_json_dec_int(struct sb_json_dec *d, ProtobufCType t, const json_t *v, void *dst)
{
	bool is_unsigned = t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 ||
	                   t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
	long long sv = 0;
	unsigned long long uv = 0;
	int rc = 0;
	if (json_is_integer(v)) {
		sv = json_integer_value(v);
		if (is_unsigned) {
			if (sv < 0)
				rc = SB_ERANGE;
			uv = (unsigned long long)sv;
		}
	} else if (json_is_real(v)) {
		double x = json_real_value(v);
		if (x != trunc(x)) {
			SB_JSON_BAD(d, "not an integer");
			return;
		}
		if (fabs(x) > 9007199254740992.0) {
			SB_JSON_BAD(d, "integer too large for a JSON number; send it as a string");
			return;
		}
		sv = (long long)x;
		if (is_unsigned && sv < 0)
			rc = SB_ERANGE;
		uv = (unsigned long long)sv;
	} else if (json_is_string(v)) {
		rc = sb_json_dec_intstr(json_string_value(v), is_unsigned, &sv, &uv);
		if (rc == SB_EINVAL) {
			SB_JSON_BAD(d, "not an integer");
			return;
		}
	} else {
		SB_JSON_BAD(d, "expected integer");
		return;
	}
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (rc == 0 && (sv < INT32_MIN || sv > INT32_MAX))
			rc = SB_ERANGE;
		if (rc == 0)
			*(int32_t *)dst = (int32_t)sv;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (rc == 0 && uv > UINT32_MAX)
			rc = SB_ERANGE;
		if (rc == 0)
			*(uint32_t *)dst = (uint32_t)uv;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (rc == 0)
			*(uint64_t *)dst = uv;
		break;
	default:
		if (rc == 0)
			*(int64_t *)dst = sv;
		break;
	}
	if (rc != 0)
		SB_JSON_BAD(d, "out of range for %s", sb_json_int_name(t));
}

static void
sb_json_dec_float(struct sb_json_dec *d, ProtobufCType t, const json_t *v, void *dst)
{
	double x;
	if (json_is_number(v)) {
		x = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		if (strcmp(s, "NaN") == 0) {
			x = NAN;
		} else if (strcmp(s, "Infinity") == 0) {
			x = INFINITY;
		} else if (strcmp(s, "-Infinity") == 0) {
			x = -INFINITY;
		} else if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
			errno = 0;
			x = strtod(s, &end);
			if (*end != '\0' || !isfinite(x)) {
				SB_JSON_BAD(d, "expected number");
				return;
			}
		} else {
			SB_JSON_BAD(d, "expected number");
			return;
		}
	} else {
		SB_JSON_BAD(d, "expected number");
		return;
	}
	if (t == PROTOBUF_C_TYPE_DOUBLE) {
		*(double *)dst = x;
		return;
	}
	if (isfinite(x) && fabs(x) > FLT_MAX) {
		SB_JSON_BAD(d, "out of range for float");
		return;
	}
	*(float *)dst = (float)x;
}

static void
sb_json_dec_enum(struct sb_json_dec *d, const ProtobufCEnumDescriptor *ed, const json_t *v,
                 void *dst)
{
	const ProtobufCEnumValue *ev = NULL;
	if (json_is_string(v)) {
		ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
	} else if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n >= INT32_MIN && n <= INT32_MAX)
			ev = protobuf_c_enum_descriptor_get_value(ed, (int)n);
	} else {
		SB_JSON_BAD(d, "expected enum name or number");
		return;
	}
	if (ev == NULL) {
		SB_JSON_BAD(d, "not a valid enum value");
		return;
	}
	*(int *)dst = ev->value;
}

static int sb_json_dec_message(struct sb_json_dec *d, const ProtobufCMessageDescriptor *md,
                               const json_t *obj, ProtobufCMessage *m);

/* Stores any JSON value as its compact text in a new sb.json.Raw (field 1, "json"). */
static void
sb_json_dec_raw(struct sb_json_dec *d, const ProtobufCMessageDescriptor *md, const json_t *v,
                ProtobufCMessage **dst)
{
	ProtobufCMessage *m = malloc(md->sizeof_message);
	if (m == NULL) {
		d->nomem = 1;
		return;
	}
	protobuf_c_message_init(md, m);
	*dst = m;
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text == NULL) {
		d->nomem = 1;
		return;
	}
	*(char **)((char *)m + md->fields[0].offset) = text;
}

/* Allocates and decodes a sub-message; the result (even a partly bad one) is stored in *dst so
 * that the root's free_unpacked releases it. */
static void
sb_json_dec_sub(struct sb_json_dec *d, const ProtobufCMessageDescriptor *md, const json_t *v,
                ProtobufCMessage **dst)
{
	if (sb__json_is_raw(md)) {
		sb_json_dec_raw(d, md, v, dst);
		return;
	}
	if (!json_is_object(v)) {
		SB_JSON_BAD(d, "expected object");
		return;
	}
	ProtobufCMessage *m = malloc(md->sizeof_message);
	if (m == NULL) {
		d->nomem = 1;
		return;
	}
	protobuf_c_message_init(md, m);
	*dst = m;
	sb_json_dec_message(d, md, v, m);
}

/* Decodes one value of field f's type into the slot dst (a message field or array element). */
static void
sb_json_dec_value(struct sb_json_dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
                  void *dst)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		sb_json_dec_float(d, f->type, v, dst);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v)) {
			SB_JSON_BAD(d, "expected boolean");
			return;
		}
		*(protobuf_c_boolean *)dst = json_is_true(v);
		return;
	case PROTOBUF_C_TYPE_ENUM:
		sb_json_dec_enum(d, f->descriptor, v, dst);
		return;
	case PROTOBUF_C_TYPE_STRING: {
		if (!json_is_string(v)) {
			SB_JSON_BAD(d, "expected string");
			return;
		}
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (strlen(s) != n) {
			SB_JSON_BAD(d, "string contains NUL");
			return;
		}
		for (size_t i = 0, k; i < n; i += k) {
			if ((k = sb_utf8_seq((const unsigned char *)s + i, n - i)) == 0) {
				SB_JSON_BAD(d, "invalid UTF-8");
				return;
			}
		}
		char *c = strdup(s);
		if (c == NULL) {
			d->nomem = 1;
			return;
		}
		*(char **)dst = c;
		return;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		if (!json_is_string(v)) {
			SB_JSON_BAD(d, "expected base64 string");
			return;
		}
		ProtobufCBinaryData *bd = dst;
		int rc = sb__json_b64_decode(json_string_value(v), json_string_length(v), &bd->data,
		                             &bd->len);
		if (rc == SB_ENOMEM)
			d->nomem = 1;
		else if (rc != 0)
			SB_JSON_BAD(d, "invalid base64");
		return;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		sb_json_dec_sub(d, f->descriptor, v, dst);
		return;
	default:
		sb_json_dec_int(d, f->type, v, dst);
		return;
	}
}

/* Decodes a map key (JSON object keys are text) into the entry's key slot. */
static void
sb_json_dec_key(struct sb_json_dec *d, const ProtobufCFieldDescriptor *kf, const char *key,
                void *dst)
{
	if (kf->type == PROTOBUF_C_TYPE_BOOL) {
		if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0) {
			SB_JSON_BAD(d, "map key must be true or false");
			return;
		}
		*(protobuf_c_boolean *)dst = key[0] == 't';
		return;
	}
	json_t *k = json_string(key);
	if (k == NULL) {
		d->nomem = 1;
		return;
	}
	sb_json_dec_value(d, kf, k, dst);
	json_decref(k);
}

static void
sb_json_dec_map(struct sb_json_dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
                ProtobufCMessage *m)
{
	if (!json_is_object(v)) {
		SB_JSON_BAD(d, "expected object");
		return;
	}
	size_t n = json_object_size(v);
	if (n == 0)
		return;
	ProtobufCMessage **arr = calloc(n, sizeof(*arr));
	if (arr == NULL) {
		d->nomem = 1;
		return;
	}
	*(ProtobufCMessage ***)((char *)m + f->offset) = arr;
	size_t *np = (size_t *)((char *)m + f->quantifier_offset);
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val)
	{
		size_t old = sb_json_dec_push(d, key, 0);
		ProtobufCMessage *e = malloc(ed->sizeof_message);
		if (e == NULL) {
			d->nomem = 1;
			return;
		}
		protobuf_c_message_init(ed, e);
		arr[(*np)++] = e;
		sb_json_dec_key(d, &ed->fields[0], key, (char *)e + ed->fields[0].offset);
		if (json_is_null(val))
			SB_JSON_BAD(d, "null is not allowed as a map value");
		else
			sb_json_dec_value(d, &ed->fields[1], val, (char *)e + ed->fields[1].offset);
		sb_json_dec_pop(d, old);
	}
}

static void
sb_json_dec_repeated(struct sb_json_dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
                     ProtobufCMessage *m)
{
	if (!json_is_array(v)) {
		SB_JSON_BAD(d, "expected array");
		return;
	}
	size_t n = json_array_size(v), sz = sb__json_slot_size(f->type);
	if (n == 0)
		return;
	char *arr = calloc(n, sz);
	if (arr == NULL) {
		d->nomem = 1;
		return;
	}
	*(void **)((char *)m + f->offset) = arr;
	size_t *np = (size_t *)((char *)m + f->quantifier_offset);
	for (size_t i = 0; i < n; i++) {
		size_t old = sb_json_dec_push(d, NULL, i);
		const json_t *e = json_array_get(v, i);
		*np = i + 1; /* the slot is zeroed: freeing it is safe whatever happens next */
		if (json_is_null(e))
			SB_JSON_BAD(d, "null is not allowed in an array");
		else
			sb_json_dec_value(d, f, e, arr + i * sz);
		sb_json_dec_pop(d, old);
	}
}

/* Finds the field named key (proto name, else lowerCamel JSON name). */
static const ProtobufCFieldDescriptor *
sb_json_dec_field(const ProtobufCMessageDescriptor *md, const char *key)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(md, key);
	if (f != NULL)
		return f;
	for (unsigned i = 0; i < md->n_fields; i++) {
		if (strchr(md->fields[i].name, '_') != NULL &&
		    sb__json_camel_eq(md->fields[i].name, key))
			return &md->fields[i];
	}
	return NULL;
}

/* Decodes a singular field, then marks it present (oneof case, proto2 has_). */
static void
sb_json_dec_single(struct sb_json_dec *d, const ProtobufCMessageDescriptor *md,
                   const ProtobufCFieldDescriptor *f, const json_t *v, ProtobufCMessage *m)
{
	char *base = (char *)m;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *oneof_case = (uint32_t *)(base + f->quantifier_offset);
		if (*oneof_case != 0 && *oneof_case != f->id) {
			const ProtobufCFieldDescriptor *o =
			    protobuf_c_message_descriptor_get_field(md, *oneof_case);
			SB_JSON_BAD(d, "only one field of its oneof may be set (already set: %s)",
			            o ? o->name : "?");
			return;
		}
		int bad = d->bad;
		if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
			*(void **)(base + f->offset) = NULL;
		sb_json_dec_value(d, f, v, base + f->offset);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
			*oneof_case = *(void **)(base + f->offset) != NULL ? f->id : 0;
		else if (d->bad == bad && !d->nomem)
			*oneof_case = f->id;
		return;
	}
	sb_json_dec_value(d, f, v, base + f->offset);
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
}

static int
sb_json_dec_message(struct sb_json_dec *d, const ProtobufCMessageDescriptor *md, const json_t *obj,
                    ProtobufCMessage *m)
{
	if (++d->depth > SB_JSON_DEPTH_CAP) {
		SB_JSON_BAD(d, "nesting deeper than %d levels", SB_JSON_DEPTH_CAP);
		d->depth--;
		return SB_EINVAL;
	}
	unsigned char seen_small[64], *seen = seen_small;
	if (md->n_fields > sizeof(seen_small) && (seen = calloc(md->n_fields, 1)) == NULL) {
		d->nomem = 1;
		d->depth--;
		return SB_ENOMEM;
	}
	if (seen == seen_small)
		memset(seen, 0, sizeof(seen_small));
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t old = sb_json_dec_push(d, key, 0);
		const ProtobufCFieldDescriptor *f = sb_json_dec_field(md, key);
		if (f == NULL) {
			SB_JSON_BAD(d, "unknown field");
		} else if (seen[f - md->fields]++) {
			SB_JSON_BAD(d, "field given more than once");
		} else if (json_is_null(v)) {
			/* null: the field keeps its default */
		} else if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			sb_json_dec_single(d, md, f, v, m);
		} else if (sb__json_is_map(f)) {
			sb_json_dec_map(d, f, v, m);
		} else {
			sb_json_dec_repeated(d, f, v, m);
		}
		sb_json_dec_pop(d, old);
		if (d->nomem)
			break;
	}
	for (unsigned i = 0; i < md->n_fields && !d->nomem; i++) {
		if (md->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i]) {
			size_t old = sb_json_dec_push(d, md->fields[i].name, 0);
			SB_JSON_BAD(d, "missing required field");
			sb_json_dec_pop(d, old);
		}
	}
	if (seen != seen_small)
		free(seen);
	d->depth--;
	return 0;
}

int
sb_json_to_pb(const ProtobufCMessageDescriptor *md, const json_t *in, ProtobufCMessage **out,
              struct sb_json_errors *errs)
{
	sb__json_err_reset(errs);
	if (md == NULL || out == NULL || md->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
		sb__json_err_add(errs, "", "invalid arguments");
		return SB_EINVAL;
	}
	if (!json_is_object(in)) {
		sb__json_err_add(errs, "", "expected a JSON object");
		return SB_EINVAL;
	}
	struct sb_json_dec d = { .errs = errs };
	ProtobufCMessage *m = malloc(md->sizeof_message);
	if (m == NULL)
		return SB_ENOMEM;
	protobuf_c_message_init(md, m);
	sb_json_dec_message(&d, md, in, m);
	if (d.nomem || d.bad > 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return d.nomem ? SB_ENOMEM : SB_EINVAL;
	}
	*out = m;
	return 0;
}
