/* chunks_test.c: the chunk API's pure rules: chunk numbers and chunk sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "files.h"

static void
test_chunk_number(void **state)
{
	(void)state;
	assert_int_equal(files_chunk_number("1", 1), 1);
	assert_int_equal(files_chunk_number("100", 3), 100);
	assert_int_equal(files_chunk_number("999999999", 9), 999999999);
	assert_int_equal(files_chunk_number("12x", 2), 12); /* only n bytes are read */
	assert_int_equal(files_chunk_number("", 0), -1);
	assert_int_equal(files_chunk_number("0", 1), -1);
	assert_int_equal(files_chunk_number("01", 2), -1);
	assert_int_equal(files_chunk_number("-1", 2), -1);
	assert_int_equal(files_chunk_number("+1", 2), -1);
	assert_int_equal(files_chunk_number("1 ", 2), -1);
	assert_int_equal(files_chunk_number("1e3", 3), -1);
	assert_int_equal(files_chunk_number("1000000000", 10), -1);
}

static void
test_chunk_size(void **state)
{
	(void)state;
	/* 10 bytes in chunks of 4: 4, 4, 2 */
	assert_true(files_chunk_size_ok(10, 4, 3, 1, 4));
	assert_true(files_chunk_size_ok(10, 4, 3, 2, 4));
	assert_true(files_chunk_size_ok(10, 4, 3, 3, 2));
	assert_false(files_chunk_size_ok(10, 4, 3, 3, 4));
	assert_false(files_chunk_size_ok(10, 4, 3, 1, 2));
	assert_false(files_chunk_size_ok(10, 4, 3, 2, 5));
	assert_false(files_chunk_size_ok(10, 4, 3, 0, 4));
	assert_false(files_chunk_size_ok(10, 4, 3, 4, 2));
	/* an exact multiple: the last is a whole chunk */
	assert_true(files_chunk_size_ok(8, 4, 2, 2, 4));
	assert_false(files_chunk_size_ok(8, 4, 2, 2, 0));
	/* one chunk smaller than chunk_size */
	assert_true(files_chunk_size_ok(3, 4, 1, 1, 3));
	assert_false(files_chunk_size_ok(0, 4, 1, 1, 0));
	/* 2 GiB in 10 MiB chunks: 205 chunks, the last 8 MiB */
	int64_t g = 2147483648LL, m = 10485760LL;
	assert_true(files_chunk_size_ok(g, m, 205, 205, g - 204 * m));
	assert_true(files_chunk_size_ok(g, m, 205, 204, m));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_number),
		cmocka_unit_test(test_chunk_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
