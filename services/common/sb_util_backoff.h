/* sb_util_backoff.h: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"): attempt n waits a uniformly random time in [0, min(max, base * 2^n)].
 * The ceiling saturates at max_ms for any attempt count, without overflow. A struct sb_backoff
 * belongs to one caller (not thread-safe); the jitter comes from a small PRNG in the struct,
 * seeded from the kernel by sb_backoff_init or with a fixed value by sb_backoff_seed. */
#ifndef SB_UTIL_BACKOFF_H
#define SB_UTIL_BACKOFF_H

#include <stdint.h>

struct sb_backoff {
	uint32_t base_ms; /* ceiling of the first delay */
	uint32_t max_ms;  /* ceiling of every delay */
	uint32_t attempt; /* delays handed out since the last reset (saturates) */
	uint64_t rng;     /* PRNG state (splitmix64) */
};

/* sb_backoff_init sets base and max, resets the attempt count and seeds the jitter from the
 * kernel (a fixed fallback if that fails). No resources are held; nothing to free. */
void sb_backoff_init(struct sb_backoff *b, uint32_t base_ms, uint32_t max_ms);

/* sb_backoff_seed makes the jitter of b reproducible (tests, simulations). */
void sb_backoff_seed(struct sb_backoff *b, uint64_t seed);

/* sb_backoff_ceiling returns min(max_ms, base_ms * 2^attempt) for the current attempt: the
 * largest delay sb_backoff_next may return now. */
uint32_t sb_backoff_ceiling(const struct sb_backoff *b);

/* sb_backoff_next returns the delay in ms to wait before the next try, uniform in
 * [0, sb_backoff_ceiling(b)], and counts one more attempt. */
uint32_t sb_backoff_next(struct sb_backoff *b);

/* sb_backoff_reset starts over from base_ms; call it after a success. */
void sb_backoff_reset(struct sb_backoff *b);

#endif
