/* Tests of sb_util_hash: FNV-1a 64 against the published test vectors (draft-eastlake-fnv),
 * the offset basis spelled right, and pieces hashed one after another. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sb_util_hash.h"

static void
test_vectors(void **state)
{
	(void)state;
	assert_true(SB_FNV1A64_OFFSET == UINT64_C(14695981039346656037));
	assert_true(sb_hash_fnv1a64("", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(sb_hash_fnv1a64("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(sb_hash_fnv1a64("foobar", 6) == UINT64_C(0x85944171f73967e8));
	assert_true(sb_hash_fnv1a64_str("foobar") == UINT64_C(0x85944171f73967e8));
	assert_true(sb_hash_fnv1a64_str("") == SB_FNV1A64_OFFSET);
}

static void
test_pieces(void **state)
{
	(void)state;
	uint64_t h = sb_hash_fnv1a64_more(SB_FNV1A64_OFFSET, "foo", 3);
	h = sb_hash_fnv1a64_more(h, "bar", 3);
	assert_true(h == sb_hash_fnv1a64("foobar", 6));
	/* a NUL between pieces is hashed like any byte: "a\0b" differs from "ab" */
	const char anb[] = { 'a', '\0', 'b' };
	assert_true(sb_hash_fnv1a64(anb, 3) != sb_hash_fnv1a64("ab", 2));
	/* bytes above 0x7f are taken unsigned */
	const unsigned char hi[] = { 0xff };
	assert_true(sb_hash_fnv1a64(hi, 1) ==
	            ((SB_FNV1A64_OFFSET ^ UINT64_C(0xff)) * SB_FNV1A64_PRIME));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
