/* sb_json_int.h: internals shared by the sb_json*.c files; not part of the runtime's API. */
#ifndef SB_JSON_INT_H
#define SB_JSON_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sb_json.h"

/* sb_json_util.c */
/* sb__json_err_reset empties e (NULL allowed). */
void sb__json_err_reset(struct sb_json_errors *e);
/* sb__json_err_add records one violation at path in e (NULL allowed), or counts it as dropped
 * when e is full. */
void sb__json_err_add(struct sb_json_errors *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sb__json_b64_decode decodes standard or URL-safe base64 of n chars, padding optional, into a
 * new malloc'd buffer *out (NULL when empty) of *outlen bytes. Returns 0, SB_EINVAL or
 * SB_ENOMEM; *out is only set on success. */
int sb__json_b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);
/* sb__json_b64_encode appends standard padded base64 of p[0..n) to b. Returns 0 or SB_ENOMEM. */
int sb__json_b64_encode(struct sb_buf *b, const uint8_t *p, size_t n);
/* sb__json_is_map tells whether f is a map<,> field as protoc-c generates it: a repeated
 * message field whose type is the nested <FieldName>Entry with fields key = 1, value = 2. */
bool sb__json_is_map(const ProtobufCFieldDescriptor *f);
/* sb__json_camel_eq tells whether key is the lowerCamel JSON name of the proto name. */
bool sb__json_camel_eq(const char *proto_name, const char *key);
/* sb__json_slot_size returns the bytes one value of type t takes in a message or array. */
size_t sb__json_slot_size(ProtobufCType t);
/* sb__json_is_raw tells whether md is SB_JSON_RAW_TYPE (any JSON value carried as text). */
bool sb__json_is_raw(const ProtobufCMessageDescriptor *md);

#endif
