/* sb_json_util.c: helpers of the JSON transcoder: violations, UTF-8, base64, descriptor tests. */
#include "sb_json_int.h"
#include "sb_err.h"
#include "sb_util_b64.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sb__json_err_reset(struct sb_json_errors *e)
{
	if (e == NULL)
		return;
	e->n = 0;
	e->dropped = 0;
}

void
sb__json_err_add(struct sb_json_errors *e, const char *path, const char *fmt, ...)
{
	if (e == NULL)
		return;
	if (e->n >= SB_JSON_MAX_VIOLATIONS) {
		e->dropped++;
		return;
	}
	struct sb_json_violation *v = &e->v[e->n++];
	snprintf(v->path, sizeof(v->path), "%s", path);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

size_t
sb_json_errors_format(const struct sb_json_errors *errs, char *dst, size_t n)
{
	size_t want = 0;
	if (n > 0)
		dst[0] = '\0';
	for (size_t i = 0; errs != NULL && i < errs->n; i++) {
		const struct sb_json_violation *v = &errs->v[i];
		int k =
		    snprintf(dst ? dst + (want < n ? want : n) : NULL, want < n ? n - want : 0,
		             "%s%s%s%s", i ? "; " : "", v->path, v->path[0] ? ": " : "", v->reason);
		if (k > 0)
			want += (size_t)k;
	}
	if (errs != NULL && errs->dropped > 0) {
		int k = snprintf(dst ? dst + (want < n ? want : n) : NULL, want < n ? n - want : 0,
		                 "; and %zu more", errs->dropped);
		if (k > 0)
			want += (size_t)k;
	}
	return want;
}

int
sb__json_b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	size_t cap = sb_b64_decoded_max(n);
	uint8_t *buf = cap > 0 ? malloc(cap) : NULL;
	if (cap > 0 && buf == NULL)
		return SB_ENOMEM;
	/* either alphabet, padding optional: what protobuf's JSON mapping accepts */
	int rv = sb_b64_decode(s, n, SB_B64_STD | SB_B64_URL, buf, cap, outlen);
	if (rv != 0) {
		free(buf);
		return rv == SB_ERANGE ? SB_EINVAL : rv;
	}
	*out = buf;
	return 0;
}

int
sb__json_b64_encode(struct sb_buf *b, const uint8_t *p, size_t n)
{
	size_t len = sb_b64_encoded_len(n, SB_B64_PAD);
	if (sb_buf_reserve(b, len) != 0)
		return SB_ENOMEM;
	(void)sb_b64_encode(p, n, SB_B64_PAD, b->data + b->len, len + 1);
	b->len += len;
	return 0;
}

bool
sb__json_is_map(const ProtobufCFieldDescriptor *f)
{
	if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return false;
	const ProtobufCMessageDescriptor *e = f->descriptor;
	if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
	    strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
		return false;
	/* protoc names the entry type after the field: by_id -> ByIdEntry. */
	const char *s = e->short_name, *n = f->name;
	bool up = true;
	for (; *n; n++) {
		if (*n == '_') {
			up = true;
			continue;
		}
		char c = up ? (char)toupper((unsigned char)*n) : *n;
		up = false;
		if (*s++ != c)
			return false;
	}
	return strcmp(s, "Entry") == 0;
}

bool
sb__json_camel_eq(const char *proto_name, const char *key)
{
	const char *n = proto_name, *k = key;
	bool up = false;
	for (; *n; n++) {
		if (*n == '_') {
			up = true;
			continue;
		}
		char c = up ? (char)toupper((unsigned char)*n) : *n;
		up = false;
		if (*k++ != c)
			return false;
	}
	return *k == '\0';
}

size_t
sb__json_slot_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

bool
sb__json_is_raw(const ProtobufCMessageDescriptor *md)
{
	return md != NULL && strcmp(md->name, SB_JSON_RAW_TYPE) == 0 && md->n_fields == 1 &&
	       md->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       md->fields[0].label != PROTOBUF_C_LABEL_REPEATED;
}
