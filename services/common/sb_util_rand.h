/* sb_util_rand.h: cryptographically secure random bytes from the kernel (getrandom). */
#ifndef SB_UTIL_RAND_H
#define SB_UTIL_RAND_H

#include <stddef.h>
#include <stdint.h>

/* sb_rand_bytes fills buf with n random bytes from the kernel's CSPRNG; safe from any thread.
 * Blocks only before the kernel pool is first initialised. Returns 0 or SB_EIO. */
int sb_rand_bytes(void *buf, size_t n);

/* sb_rand_u64 returns 64 random bits, or 0 with *err set to SB_EIO (err may be NULL). */
uint64_t sb_rand_u64(int *err);

#endif
