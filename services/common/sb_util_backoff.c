/* sb_util_backoff.c: full-jitter exponential backoff. */
#include "sb_util_backoff.h"
#include "sb_util_rand.h"

static uint64_t
sb_backoff_rand(struct sb_backoff *b)
{
	/* splitmix64: good enough for jitter, one add and three multiplies. */
	uint64_t z = (b->rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
sb_backoff_init(struct sb_backoff *b, uint32_t base_ms, uint32_t max_ms)
{
	int err;
	b->base_ms = base_ms;
	b->max_ms = max_ms;
	b->attempt = 0;
	b->rng = sb_rand_u64(&err);
	if (err != 0)
		b->rng = (uint64_t)(uintptr_t)b ^ UINT64_C(0x5bd1e9955bd1e995);
}

void
sb_backoff_seed(struct sb_backoff *b, uint64_t seed)
{
	b->rng = seed;
}

uint32_t
sb_backoff_ceiling(const struct sb_backoff *b)
{
	if (b->base_ms == 0)
		return 0;
	if (b->attempt >= 32) /* base * 2^32 > UINT32_MAX >= max */
		return b->max_ms;
	uint64_t c = (uint64_t)b->base_ms << b->attempt; /* < 2^64 since base < 2^32 */
	return c < b->max_ms ? (uint32_t)c : b->max_ms;
}

uint32_t
sb_backoff_next(struct sb_backoff *b)
{
	uint64_t span = (uint64_t)sb_backoff_ceiling(b) + 1; /* values 0..ceiling */
	uint64_t r = sb_backoff_rand(b) >> 32;               /* 32 uniform bits */
	if (b->attempt < UINT32_MAX)
		b->attempt++;
	return (uint32_t)((r * span) >> 32);
}

void
sb_backoff_reset(struct sb_backoff *b)
{
	b->attempt = 0;
}
