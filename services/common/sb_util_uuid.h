/* sb_util_uuid.h: RFC 9562 UUIDs — version 4 (random) and version 7 (Unix-time ordered).
 *
 * Version 7 ids generated in one process are strictly increasing, also when many are made in
 * the same millisecond: after the 48-bit millisecond timestamp they carry a 42-bit counter
 * (the 12 bits of rand_a and the top 30 bits of rand_b, RFC 9562 §6.2 method 1) that starts
 * at a random value with its top bit clear each new millisecond and is incremented otherwise;
 * should it roll over, the timestamp is advanced by one millisecond. The last 32 bits are
 * random. If the wall clock steps back, ids keep the last timestamp until it catches up. */
#ifndef SB_UTIL_UUID_H
#define SB_UTIL_UUID_H

#include <stdint.h>

#define SB_UUID_STR_LEN 36 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", without the NUL */

struct sb_uuid {
	uint8_t b[16]; /* network byte order, as written in the string form */
};

/* Values of sb_uuid_variant: the leading bits of octet 8. */
enum sb_uuid_variant {
	SB_UUID_VARIANT_NCS = 0,       /* 0xxx: reserved, NCS backward compatibility (incl. nil) */
	SB_UUID_VARIANT_RFC9562 = 2,   /* 10xx: the variant of every id this module generates */
	SB_UUID_VARIANT_MICROSOFT = 6, /* 110x: reserved, Microsoft */
	SB_UUID_VARIANT_FUTURE = 7,    /* 111x: reserved for future definition (incl. max) */
};

/* sb_uuid_v4 writes a new random (version 4) id to out. Thread-safe. Returns 0 or SB_EIO when
 * the kernel gives no random bytes (out is then unchanged). */
int sb_uuid_v4(struct sb_uuid *out);

/* sb_uuid_v7 writes a new time-ordered (version 7) id to out, greater than every v7 id this
 * process made before. Thread-safe (one mutex). Returns 0 or SB_EIO (out unchanged). */
int sb_uuid_v7(struct sb_uuid *out);

/* sb_uuid_format writes u as 36 lowercase characters plus a NUL into out. */
void sb_uuid_format(const struct sb_uuid *u, char out[SB_UUID_STR_LEN + 1]);

/* sb_uuid_parse reads the canonical hyphenated form (8-4-4-4-12 hex digits, either case,
 * nothing before or after) from the NUL-terminated s into out. Returns 0, or SB_EINVAL for
 * NULL or anything else (braces, urn: prefix, missing or misplaced hyphens, bad digits), in
 * which case out is unchanged. */
int sb_uuid_parse(const char *s, struct sb_uuid *out);

/* sb_uuid_version returns the version field (the high nibble of octet 6), 0..15. */
int sb_uuid_version(const struct sb_uuid *u);

/* sb_uuid_variant returns the variant of u as one of enum sb_uuid_variant. */
enum sb_uuid_variant sb_uuid_variant(const struct sb_uuid *u);

/* sb_uuid_v7_ms returns the Unix time in milliseconds stored in a version 7 id. */
uint64_t sb_uuid_v7_ms(const struct sb_uuid *u);

/* sb_uuid_cmp orders ids as their strings sort: <0, 0 or >0. */
int sb_uuid_cmp(const struct sb_uuid *a, const struct sb_uuid *b);

#endif
