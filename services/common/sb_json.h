/* sb_json.h: JSON <-> protobuf transcoding driven by protobuf-c descriptors.
 *
 * The gateway maps every REST route to an RPC with these functions, so adding an endpoint is a
 * table row. The mapping follows proto3's JSON mapping, adapted:
 *   - output field names are the proto names (snake_case); input accepts the proto name and the
 *     lowerCamel JSON name ("user_id" or "userId"); a field given twice is an error;
 *   - 32-bit integers are JSON numbers; 64-bit integers are decimal strings on output and
 *     numbers or strings on input (exact: a number with a fraction or exponent is accepted only
 *     when integral and below 2^53; integers above INT64_MAX must be strings, since the JSON
 *     parser stores numbers as int64);
 *   - float/double are numbers, "NaN", "Infinity" and "-Infinity" are accepted and produced;
 *   - bytes are standard base64 (input also accepts URL-safe base64 and missing padding);
 *   - enums are names on output (a number not in the enum is written as a number); input takes
 *     a name or a number that the enum defines;
 *   - messages are objects, repeated fields arrays (null elements rejected), map<,> fields
 *     objects keyed by the key's text, oneof members are fields of the enclosing object;
 *   - null for a field means its default; unknown fields are errors naming the field;
 *   - output has every scalar field, defaults included, but not unset oneofs nor NULL
 *     sub-messages.
 *   - a field of message type SB_JSON_RAW_TYPE (proto/json.proto: sb.json.Raw, one string
 *     field) takes any JSON value, kept as its compact text; on output that text is written as
 *     it is (it must be valid JSON: a message whose text is not fails with SB_EINVAL), an unset
 *     one as null;
 * Violation paths look like "members[2].user_id" or "metadata.some_key"; a problem with the
 * body as a whole (syntax, size) has the empty path "". */
#ifndef SB_JSON_H
#define SB_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "sb_buf.h"

#define SB_JSON_MAX_VIOLATIONS 16
#define SB_JSON_RAW_TYPE       "sb.json.Raw" /* full name of the raw JSON message type */
#define SB_JSON_DEPTH_CAP      128 /* hard cap on any max_depth, for parse and transcoding */

struct sb_json_violation {
	char path[128];   /* truncated if longer */
	char reason[160]; /* English, for the client; never echoes field values */
};

struct sb_json_errors {
	size_t n; /* violations in v */
	struct sb_json_violation v[SB_JSON_MAX_VIOLATIONS];
	size_t dropped; /* further violations not recorded */
};

/* Bounds for untrusted text. Containers and strings are also bounded by max_bytes. */
struct sb_json_limits {
	size_t max_bytes;   /* whole text */
	int max_depth;      /* nesting of arrays/objects, 1 = a flat object; capped at DEPTH_CAP */
	size_t max_members; /* elements of one array or members of one object */
	size_t max_string;  /* bytes of one string (as written, escapes included) */
};

#define SB_JSON_DEFAULT_MAX_BYTES   (1u << 20)
#define SB_JSON_DEFAULT_MAX_MEMBERS 10000
#define SB_JSON_DEFAULT_MAX_STRING  (256u << 10)

/* sb_json_parse parses untrusted text of len bytes (no NUL needed) with max_depth levels of
 * nesting and the default byte, member and string limits. NUL bytes (raw or \u0000), invalid
 * UTF-8, syntax errors, trailing garbage and duplicate keys are errors. On success *out is a new
 * reference the caller json_decref()s and 0 is returned; otherwise SB_EINVAL with one violation
 * in errs (if not NULL) saying where and why, and *out is untouched. */
int sb_json_parse(const char *buf, size_t len, int max_depth, json_t **out,
                  struct sb_json_errors *errs);
/* sb_json_parse_limits is sb_json_parse with explicit limits. */
int sb_json_parse_limits(const char *buf, size_t len, const struct sb_json_limits *lim,
                         json_t **out, struct sb_json_errors *errs);

/* sb_json_valid tells whether s[0..n) is one JSON value that jansson loads with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES (surrounding whitespace allowed), without building
 * a tree: strict UTF-8, no NUL (raw or \u0000; jansson itself would accept a raw NUL right
 * after a number or literal), integers within int64_t, no duplicate keys,
 * at most 2048 levels of nesting. */
bool sb_json_valid(const char *s, size_t n);

/* sb_json_to_pb builds a new message of type d from the JSON object in (not modified, still the
 * caller's). On success returns 0 and *out is the caller's, freed with
 * protobuf_c_message_free_unpacked(*out, NULL). On bad input returns SB_EINVAL and records
 * every bad field (up to SB_JSON_MAX_VIOLATIONS, the rest counted in dropped) in errs if not
 * NULL; SB_ENOMEM if memory ran out. *out is untouched on failure. */
int sb_json_to_pb(const ProtobufCMessageDescriptor *d, const json_t *in, ProtobufCMessage **out,
                  struct sb_json_errors *errs);

/* sb_json_fast_to_pb builds a message of type d from the JSON text[0..len) without a jansson
 * tree, when it is sure that sb_json_parse_limits(text, len, lim) and then sb_json_to_pb(d)
 * would succeed and build the very same message; it handles the shapes of the gateway's busiest
 * requests (strings, integers, booleans, enum names, sub-messages, repeated fields of those,
 * sb.json.Raw values) and asks for everything else. Returns 0 with *out the caller's (freed
 * with protobuf_c_message_free_unpacked), SB_JSON_FAST_ASK when the caller must take the slow
 * path (which also words any error), or SB_ENOMEM. *out is untouched unless 0. */
#define SB_JSON_FAST_ASK 1
int sb_json_fast_to_pb(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                       const struct sb_json_limits *lim, ProtobufCMessage **out);

/* sb_pb_to_json returns a new JSON object for m (the caller json_decref()s it), or NULL when
 * memory runs out or m nests deeper than SB_JSON_DEPTH_CAP. m stays the caller's. Strings that
 * are not valid UTF-8 have their bad bytes replaced by U+FFFD. */
json_t *sb_pb_to_json(const ProtobufCMessage *m);

/* sb_pb_to_json_buf appends the compact JSON text of m to out (the gateway's hot path).
 * Returns 0, SB_ENOMEM or SB_EINVAL (m NULL or nesting deeper than SB_JSON_DEPTH_CAP); on
 * failure out keeps its previous content. */
int sb_pb_to_json_buf(const ProtobufCMessage *m, struct sb_buf *out);

/* sb_json_errors_format writes "path: reason; path: reason" for logs and problem details into
 * dst (size n, always NUL-terminated when n > 0). Returns the length it wanted. */
size_t sb_json_errors_format(const struct sb_json_errors *errs, char *dst, size_t n);

#endif
