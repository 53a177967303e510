/* sb_util_rand.c: random bytes through getrandom(2), retried on EINTR and short reads. */
#include "sb_util_rand.h"
#include "sb_err.h"

#include <errno.h>
#include <sys/random.h>

int
sb_rand_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
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

uint64_t
sb_rand_u64(int *err)
{
	uint64_t v = 0;
	int rc = sb_rand_bytes(&v, sizeof(v));
	if (err)
		*err = rc;
	return rc == 0 ? v : 0;
}
