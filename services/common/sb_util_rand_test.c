/* Tests of sb_util_rand: pooled small requests never repeat bytes (across calls, threads and a
 * fork), large requests bypass the pool, and the output is not constant. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb_util_rand.h"

#define N_IDS 20000

struct id16 {
	unsigned char b[16];
};

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* assert_all_distinct sorts ids and fails on two equal neighbours. */
static void
assert_all_distinct(struct id16 *ids, size_t n)
{
	qsort(ids, n, sizeof(*ids), id_cmp);
	for (size_t i = 1; i < n; i++)
		assert_int_not_equal(memcmp(ids[i - 1].b, ids[i].b, 16), 0);
}

static void
test_small_requests_distinct(void **state)
{
	(void)state;
	struct id16 *ids = calloc(N_IDS, sizeof(*ids));
	assert_non_null(ids);
	size_t bits = 0;
	for (size_t i = 0; i < N_IDS; i++) {
		/* mixed sizes, as a request's trace id (16), span id (8) and uuid (16) are */
		unsigned char span[8];
		assert_int_equal(sb_rand_bytes(ids[i].b, 16), 0);
		assert_int_equal(sb_rand_bytes(span, sizeof(span)), 0);
		for (int k = 0; k < 16; k++)
			bits += (size_t)__builtin_popcount(ids[i].b[k]);
	}
	/* about half of the 2,560,000 bits are set (one standard deviation: 800 bits); 1% off
	 * would be 16 standard deviations */
	assert_in_range(bits, N_IDS * 128 * 99 / 200, N_IDS * 128 * 101 / 200);
	assert_all_distinct(ids, N_IDS);
	free(ids);
}

static void
test_large_request(void **state)
{
	(void)state;
	unsigned char a[4096], b[4096];
	assert_int_equal(sb_rand_bytes(a, sizeof(a)), 0);
	assert_int_equal(sb_rand_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(sb_rand_bytes(a, 0), 0);
	int err = 1;
	uint64_t x = sb_rand_u64(&err), y = sb_rand_u64(NULL);
	assert_int_equal(err, 0);
	assert_true(x != y);
}

static void *
thread_ids(void *arg)
{
	struct id16 *ids = arg;
	for (size_t i = 0; i < N_IDS / 4; i++)
		if (sb_rand_bytes(ids[i].b, 16) != 0)
			return (void *)1;
	return NULL;
}

static void
test_threads_distinct(void **state)
{
	(void)state;
	struct id16 *ids = calloc(N_IDS, sizeof(*ids));
	assert_non_null(ids);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_ids, ids + i * (N_IDS / 4)), 0);
	for (int i = 0; i < 4; i++) {
		void *rv = NULL;
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_all_distinct(ids, N_IDS);
	free(ids);
}

/* After a fork, the child's next bytes are not the parent's next bytes (the pool of the
 * forking thread was half used, so without the fork handler both would read its rest). */
static void
test_fork_does_not_repeat(void **state)
{
	(void)state;
	unsigned char warm[16], parent[32], child[32];
	assert_int_equal(sb_rand_bytes(warm, sizeof(warm)), 0);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char c[32];
		int ok = sb_rand_bytes(c, sizeof(c)) == 0 && write(fd[1], c, sizeof(c)) == 32;
		_exit(ok ? 0 : 1);
	}
	close(fd[1]);
	assert_int_equal(sb_rand_bytes(parent, sizeof(parent)), 0);
	assert_int_equal(read(fd[0], child, sizeof(child)), 32);
	close(fd[0]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_memory_not_equal(parent, child, sizeof(parent));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_requests_distinct),
		cmocka_unit_test(test_large_request),
		cmocka_unit_test(test_threads_distinct),
		cmocka_unit_test(test_fork_does_not_repeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
