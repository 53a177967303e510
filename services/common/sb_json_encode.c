/* sb_json_encode.c: protobuf -> compact JSON text, driven by the message descriptor.
 *
 * One walker writes text straight into an sb_buf (the gateway's hot path); sb_pb_to_json parses
 * that text back so both outputs agree by construction. */
#include "sb_json_int.h"
#include "sb_err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_JSON_PUT(b, lit) sb_buf_append((b), (lit), sizeof(lit) - 1)

/* Appends s[0..n) as a JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static int
sb_json_enc_str(struct sb_buf *b, const char *s, size_t n)
{
	return sb_buf_json_strn(b, s, n);
}

static int
sb_json_enc_u64(struct sb_buf *b, uint64_t v, bool neg, bool quote)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	if (quote)
		*--p = '"';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (neg)
		*--p = '-';
	if (quote)
		*--p = '"';
	return sb_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int
sb_json_enc_i64(struct sb_buf *b, int64_t v, bool quote)
{
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	return sb_json_enc_u64(b, mag, v < 0, quote);
}

/* Appends x with the fewest digits that read back as the same float (or double). Negative
 * zero is written "-0.0": "%g" gives "-0", which reads back as the integer 0 and loses the
 * sign. */
static int
sb_json_enc_real(struct sb_buf *b, double x, bool is_float)
{
	if (x == 0 && signbit(x))
		return SB_JSON_PUT(b, "-0.0");
	if (isnan(x))
		return SB_JSON_PUT(b, "\"NaN\"");
	if (isinf(x))
		return x > 0 ? SB_JSON_PUT(b, "\"Infinity\"") : SB_JSON_PUT(b, "\"-Infinity\"");
	char tmp[40];
	int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
	for (int prec = lo; prec <= hi; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, x);
		if (prec == hi ||
		    (is_float ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x))
			break;
	}
	return sb_buf_puts(b, tmp);
}

static int sb_json_enc_message(struct sb_buf *b, const ProtobufCMessage *m, int depth);

/* Appends the text of an sb.json.Raw as it is (checked to be one JSON value), or null. */
static int
sb_json_enc_raw(struct sb_buf *b, const ProtobufCMessage *m)
{
	const char *s =
	    m ? *(char *const *)((const char *)m + m->descriptor->fields[0].offset) : NULL;
	if (s == NULL || *s == '\0')
		return SB_JSON_PUT(b, "null");
	size_t n = strlen(s);
	if (!sb_json_valid(s, n))
		return SB_EINVAL;
	return sb_buf_append(b, s, n);
}

/* Appends one value of field f's type read from the slot p. */
static int
sb_json_enc_value(struct sb_buf *b, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return sb_json_enc_i64(b, *(const int32_t *)p, false);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return sb_json_enc_u64(b, *(const uint32_t *)p, false, false);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return sb_json_enc_i64(b, *(const int64_t *)p, true);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sb_json_enc_u64(b, *(const uint64_t *)p, false, true);
	case PROTOBUF_C_TYPE_FLOAT:
		return sb_json_enc_real(b, *(const float *)p, true);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sb_json_enc_real(b, *(const double *)p, false);
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p ? SB_JSON_PUT(b, "true")
		                                      : SB_JSON_PUT(b, "false");
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev == NULL)
			return sb_json_enc_i64(b, v, false);
		return sb_json_enc_str(b, ev->name, strlen(ev->name));
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s ? sb_json_enc_str(b, s, strlen(s)) : SB_JSON_PUT(b, "\"\"");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = p;
		int rc = sb_buf_append(b, "\"", 1);
		if (rc == 0 && bd->len > 0)
			rc = sb__json_b64_encode(b, bd->data, bd->len);
		return rc ? rc : sb_buf_append(b, "\"", 1);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		if (sb__json_is_raw(f->descriptor))
			return sb_json_enc_raw(b, sub);
		return sub ? sb_json_enc_message(b, sub, depth + 1) : SB_JSON_PUT(b, "{}");
	}
	}
	return SB_EINVAL;
}

/* Appends a map key (always a JSON string). */
static int
sb_json_enc_key(struct sb_buf *b, const ProtobufCFieldDescriptor *kf, const void *p)
{
	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sb_json_enc_value(b, kf, p, 0);
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p ? SB_JSON_PUT(b, "\"true\"")
		                                      : SB_JSON_PUT(b, "\"false\"");
	default: {
		int rc = sb_buf_append(b, "\"", 1);
		if (rc == 0)
			rc = sb_json_enc_value(b, kf, p, 0);
		return rc ? rc : sb_buf_append(b, "\"", 1);
	}
	}
}

/* Orders two map entries by key. */
static int
sb_json_key_cmp(const ProtobufCFieldDescriptor *kf, const ProtobufCMessage *a,
                const ProtobufCMessage *b)
{
	const char *pa = (const char *)a + kf->offset, *pb = (const char *)b + kf->offset;
	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return strcmp(sa ? sa : "", sb ? sb : "");
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return memcmp(pa, pb, 8);
	default:
		return memcmp(pa, pb, 4);
	}
}

struct sb_json_sort_ctx {
	const ProtobufCFieldDescriptor *kf;
	ProtobufCMessage *const *arr;
};

/* qsort_r order of entry positions: by key, then by position. */
static int
sb_json_pos_cmp(const void *x, const void *y, void *arg)
{
	const struct sb_json_sort_ctx *c = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int r = sb_json_key_cmp(c->kf, c->arr[a], c->arr[b]);
	return r ? r : (a < b ? -1 : a > b);
}

/* Marks in skip[] every entry whose key appears again later (the last one wins, as when
 * unpacking), so the text never has duplicate keys. */
static int
sb_json_map_dups(const ProtobufCFieldDescriptor *kf, ProtobufCMessage *const *arr, size_t n,
                 unsigned char *skip)
{
	if (n <= 32) {
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n && !skip[i]; j++)
				skip[i] = sb_json_key_cmp(kf, arr[i], arr[j]) == 0;
		return 0;
	}
	size_t *pos = malloc(n * sizeof(*pos));
	if (pos == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < n; i++)
		pos[i] = i;
	struct sb_json_sort_ctx ctx = { kf, arr };
	qsort_r(pos, n, sizeof(*pos), sb_json_pos_cmp, &ctx);
	for (size_t i = 0; i + 1 < n; i++) {
		if (sb_json_key_cmp(kf, arr[pos[i]], arr[pos[i + 1]]) == 0)
			skip[pos[i]] = 1;
	}
	free(pos);
	return 0;
}

/* Appends a map field as an object keyed by the entries' keys. */
static int
sb_json_enc_map(struct sb_buf *b, const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *arr,
                size_t n, int depth)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	unsigned char skip_small[32], *skip = skip_small;
	if (n > sizeof(skip_small) && (skip = calloc(n, 1)) == NULL)
		return SB_ENOMEM;
	if (skip == skip_small)
		memset(skip, 0, sizeof(skip_small));
	int rc = sb_json_map_dups(kf, arr, n, skip);
	if (rc == 0)
		rc = sb_buf_append(b, "{", 1);
	bool first = true;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (skip[i] || arr[i] == NULL)
			continue;
		if (!first)
			rc = sb_buf_append(b, ",", 1);
		first = false;
		if (rc == 0)
			rc = sb_json_enc_key(b, kf, (const char *)arr[i] + kf->offset);
		if (rc == 0)
			rc = sb_buf_append(b, ":", 1);
		if (rc == 0)
			rc = sb_json_enc_value(b, vf, (const char *)arr[i] + vf->offset, depth);
	}
	if (rc == 0)
		rc = sb_buf_append(b, "}", 1);
	if (skip != skip_small)
		free(skip);
	return rc;
}

static int
sb_json_enc_repeated(struct sb_buf *b, const ProtobufCFieldDescriptor *f, const char *arr, size_t n,
                     int depth)
{
	size_t sz = sb__json_slot_size(f->type);
	int rc = sb_buf_append(b, "[", 1);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i > 0)
			rc = sb_buf_append(b, ",", 1);
		if (rc == 0)
			rc = sb_json_enc_value(b, f, arr + i * sz, depth);
	}
	return rc ? rc : sb_buf_append(b, "]", 1);
}

static int
sb_json_enc_message(struct sb_buf *b, const ProtobufCMessage *m, int depth)
{
	if (depth > SB_JSON_DEPTH_CAP)
		return SB_EINVAL;
	const ProtobufCMessageDescriptor *md = m->descriptor;
	const char *base = (const char *)m;
	bool first = true;
	int rc = sb_buf_append(b, "{", 1);
	for (unsigned i = 0; i < md->n_fields && rc == 0; i++) {
		const ProtobufCFieldDescriptor *f = &md->fields[i];
		const void *slot = base + f->offset;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label != PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    *(ProtobufCMessage *const *)slot == NULL)
			continue;
		if (!first)
			rc = sb_buf_append(b, ",", 1);
		first = false;
		if (rc == 0)
			rc = sb_json_enc_str(b, f->name, strlen(f->name));
		if (rc == 0)
			rc = sb_buf_append(b, ":", 1);
		if (rc != 0)
			break;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const void *arr = *(void *const *)slot;
			if (n > 0 && arr == NULL)
				n = 0;
			if (sb__json_is_map(f))
				rc = sb_json_enc_map(b, f, arr, n, depth);
			else
				rc = sb_json_enc_repeated(b, f, arr, n, depth);
		} else {
			rc = sb_json_enc_value(b, f, slot, depth);
		}
	}
	return rc ? rc : sb_buf_append(b, "}", 1);
}

int
sb_pb_to_json_buf(const ProtobufCMessage *m, struct sb_buf *out)
{
	if (m == NULL || out == NULL || m->descriptor == NULL ||
	    m->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return SB_EINVAL;
	size_t old = out->len;
	int rc = sb_json_enc_message(out, m, 1);
	if (rc != 0 && out->data != NULL) {
		out->len = old;
		out->data[old] = '\0';
	}
	return rc;
}

json_t *
sb_pb_to_json(const ProtobufCMessage *m)
{
	struct sb_buf b = SB_BUF_INIT;
	json_t *j = NULL;
	if (sb_pb_to_json_buf(m, &b) == 0)
		j = json_loadb(b.data, b.len, 0, NULL);
	sb_buf_free(&b);
	return j;
}
