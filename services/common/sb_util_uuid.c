/* sb_util_uuid.c: RFC 9562 version 4 and 7 ids, their string form and their fields. */
#include "sb_util_uuid.h"
#include "sb_err.h"
#include "sb_util_hex.h"
#include "sb_util_rand.h"
#include "sb_util_time.h"

#include <pthread.h>
#include <string.h>

#define SB_UUID_COUNTER_BITS 42
#define SB_UUID_COUNTER_MAX  ((UINT64_C(1) << SB_UUID_COUNTER_BITS) - 1)

/* The one piece of process state: the last v7 timestamp and counter. */
static struct {
	pthread_mutex_t mu;
	uint64_t last_ms;
	uint64_t counter;
} sb_uuid_v7_state = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };

/* Byte offsets of the 32 hex digit pairs in the 36-character form. */
static const uint8_t sb_uuid_pos[16] = {
	0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34
};

static void
sb_uuid_set_version_variant(struct sb_uuid *u, int version)
{
	u->b[6] = (uint8_t)((u->b[6] & 0x0f) | (version << 4));
	u->b[8] = (uint8_t)((u->b[8] & 0x3f) | 0x80);
}

int
sb_uuid_v4(struct sb_uuid *out)
{
	struct sb_uuid u;
	if (sb_rand_bytes(u.b, sizeof(u.b)) != 0)
		return SB_EIO;
	sb_uuid_set_version_variant(&u, 4);
	*out = u;
	return 0;
}

int
sb_uuid_v7(struct sb_uuid *out)
{
	uint8_t rnd[12];
	uint64_t ms, counter, seed;

	if (sb_rand_bytes(rnd, sizeof(rnd)) != 0)
		return SB_EIO;
	memcpy(&seed, rnd, sizeof(seed));
	seed &= SB_UUID_COUNTER_MAX >> 1; /* top bit clear: room to count before rolling over */

	int64_t now = sb_time_now_ms();
	ms = now > 0 ? (uint64_t)now : 0;

	pthread_mutex_lock(&sb_uuid_v7_state.mu);
	if (ms > sb_uuid_v7_state.last_ms) {
		sb_uuid_v7_state.last_ms = ms;
		sb_uuid_v7_state.counter = seed;
	} else if (sb_uuid_v7_state.counter < SB_UUID_COUNTER_MAX) {
		sb_uuid_v7_state.counter++;
	} else {
		/* Counter exhausted within one millisecond: borrow the next one. */
		sb_uuid_v7_state.last_ms++;
		sb_uuid_v7_state.counter = seed;
	}
	ms = sb_uuid_v7_state.last_ms;
	counter = sb_uuid_v7_state.counter;
	pthread_mutex_unlock(&sb_uuid_v7_state.mu);

	struct sb_uuid u;
	for (int i = 0; i < 6; i++)
		u.b[i] = (uint8_t)(ms >> (40 - 8 * i));
	u.b[6] = (uint8_t)((counter >> 38) & 0x0f);
	u.b[7] = (uint8_t)(counter >> 30);
	u.b[8] = (uint8_t)((counter >> 24) & 0x3f);
	u.b[9] = (uint8_t)(counter >> 16);
	u.b[10] = (uint8_t)(counter >> 8);
	u.b[11] = (uint8_t)counter;
	memcpy(&u.b[12], &rnd[8], 4);
	sb_uuid_set_version_variant(&u, 7);
	*out = u;
	return 0;
}

void
sb_uuid_format(const struct sb_uuid *u, char out[SB_UUID_STR_LEN + 1])
{
	memset(out, '-', SB_UUID_STR_LEN);
	for (int i = 0; i < 16; i++)
		sb_hex_encode(&u->b[i], 1, out + sb_uuid_pos[i]);
	out[SB_UUID_STR_LEN] = '\0';
}

int
sb_uuid_parse(const char *s, struct sb_uuid *out)
{
	struct sb_uuid u;

	if (s == NULL || strnlen(s, SB_UUID_STR_LEN + 1) != SB_UUID_STR_LEN)
		return SB_EINVAL;
	if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return SB_EINVAL;
	for (int i = 0; i < 16; i++) {
		if (sb_hex_decode(s + sb_uuid_pos[i], 1, 0, &u.b[i]) != 0)
			return SB_EINVAL;
	}
	*out = u;
	return 0;
}

int
sb_uuid_version(const struct sb_uuid *u)
{
	return u->b[6] >> 4;
}

enum sb_uuid_variant
sb_uuid_variant(const struct sb_uuid *u)
{
	uint8_t v = u->b[8];
	if ((v & 0x80) == 0)
		return SB_UUID_VARIANT_NCS;
	if ((v & 0xc0) == 0x80)
		return SB_UUID_VARIANT_RFC9562;
	if ((v & 0xe0) == 0xc0)
		return SB_UUID_VARIANT_MICROSOFT;
	return SB_UUID_VARIANT_FUTURE;
}

uint64_t
sb_uuid_v7_ms(const struct sb_uuid *u)
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u->b[i];
	return ms;
}

int
sb_uuid_cmp(const struct sb_uuid *a, const struct sb_uuid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b));
}
