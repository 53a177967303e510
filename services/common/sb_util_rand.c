/* sb_util_rand.c: random bytes from getrandom(2), retried on EINTR and short reads. Small
 * requests are served from a per-thread pool refilled 256 bytes at a time, so that the ids a
 * request needs (a trace id, a span id, a request id: three calls) cost one system call per
 * dozens of requests instead of three each. Bytes leave the pool once and are wiped there; a
 * forked child empties the pool of the thread that forked, so parent and child never hand out
 * the same bytes. */
#include "sb_util_rand.h"
#include "sb_err.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#define SB_RAND_POOL  256
#define SB_RAND_SMALL 64 /* larger requests go to the kernel directly */

static _Thread_local struct {
	unsigned char b[SB_RAND_POOL];
	size_t off; /* bytes already handed out; SB_RAND_POOL: empty */
} sb_rand_pool = { .off = SB_RAND_POOL };

static pthread_once_t sb_rand_once = PTHREAD_ONCE_INIT;

static void
sb_rand_forked(void)
{
	explicit_bzero(sb_rand_pool.b, sizeof(sb_rand_pool.b));
	sb_rand_pool.off = SB_RAND_POOL;
}

static void
sb_rand_init(void)
{
	pthread_atfork(NULL, NULL, sb_rand_forked);
}

static int
sb_rand_kernel(unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return SB_EIO;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int
sb_rand_bytes(void *buf, size_t n)
{
	if (n > SB_RAND_SMALL)
		return sb_rand_kernel(buf, n);
	pthread_once(&sb_rand_once, sb_rand_init);
	if (SB_RAND_POOL - sb_rand_pool.off < n) {
		if (sb_rand_kernel(sb_rand_pool.b, SB_RAND_POOL) != 0)
			return SB_EIO;
		sb_rand_pool.off = 0;
	}
	unsigned char *src = sb_rand_pool.b + sb_rand_pool.off;
	memcpy(buf, src, n);
	explicit_bzero(src, n);
	sb_rand_pool.off += n;
	return 0;
}

uint64_t
sb_rand_u64(int *err)
{
	uint64_t v = 0;
	int rc = sb_rand_bytes(&v, sizeof(v));
	if (err)
		*err = rc;
	return rc == 0 ? v : 0;
}
