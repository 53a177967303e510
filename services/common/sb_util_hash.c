/* sb_util_hash.c: FNV-1a, 64 bits (see sb_util_hash.h). */
#include "sb_util_hash.h"

uint64_t
sb_hash_fnv1a64_more(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= SB_FNV1A64_PRIME;
	}
	return h;
}

uint64_t
sb_hash_fnv1a64(const void *p, size_t n)
{
	return sb_hash_fnv1a64_more(SB_FNV1A64_OFFSET, p, n);
}

uint64_t
sb_hash_fnv1a64_str(const char *s)
{
	uint64_t h = SB_FNV1A64_OFFSET;
	for (const unsigned char *b = (const unsigned char *)s; *b != '\0'; b++) {
		h ^= *b;
		h *= SB_FNV1A64_PRIME;
	}
	return h;
}
