/* sb_util_hash.h: FNV-1a, 64 bits (Fowler, Noll, Vo; draft-eastlake-fnv): the one copy every
 * service uses for in-memory hash tables, lane choice and stable lock keys. Not a defence
 * against chosen inputs (use a keyed hash for attacker-controlled keys where collisions cost).
 * Pure functions, any thread. */
#ifndef SB_UTIL_HASH_H
#define SB_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SB_FNV1A64_OFFSET UINT64_C(0xcbf29ce484222325) /* 14695981039346656037 */
#define SB_FNV1A64_PRIME  UINT64_C(0x100000001b3)      /* 1099511628211 */

/* sb_hash_fnv1a64 returns the FNV-1a hash of the n bytes at p (n may be 0). */
uint64_t sb_hash_fnv1a64(const void *p, size_t n);

/* sb_hash_fnv1a64_more continues h, a previous result or SB_FNV1A64_OFFSET, over the n bytes at
 * p: hashing pieces one after another gives the hash of their concatenation. */
uint64_t sb_hash_fnv1a64_more(uint64_t h, const void *p, size_t n);

/* sb_hash_fnv1a64_str returns the FNV-1a hash of the bytes of s before its NUL. */
uint64_t sb_hash_fnv1a64_str(const char *s);

#endif
