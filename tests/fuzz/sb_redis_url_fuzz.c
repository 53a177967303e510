/* sb_redis_url_fuzz: libFuzzer target for Redis URLs (services/common/sb_redis_url.c,
 * sb_redis_url_parse), the input taken as a C string.
 *
 * Properties:
 *   - an accepted URL has a host (no '/', '@', '?' or '#' in it), a port in 1-65535 and a
 *     database in 0-1000000; a refused one explains why in err;
 *   - round trip: the URL written back from the parsed fields (user and password
 *     percent-encoded byte by byte, the host in brackets when it holds ':' or starts with '[',
 *     port and database always written) parses to the very same fields. */
#include "fuzz.h"

#include "sb_err.h"
#include "sb_redis.h"

static void
fz_put_enc(char **o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')) {
			*(*o)++ = (char)*p;
		} else {
			*(*o)++ = '%';
			*(*o)++ = hex[*p >> 4];
			*(*o)++ = hex[*p & 15];
		}
	}
}

static bool
fz_same(const struct sb_redis_url *a, const struct sb_redis_url *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port && a->db == b->db &&
	       strcmp(a->user, b->user) == 0 && strcmp(a->password, b->password) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = fz_cstr(data, size);
	struct sb_redis_url u, u2;
	char err[256] = "", err2[256] = "";

	int rc = sb_redis_url_parse(url, &u, err, sizeof(err));
	if (rc != 0) {
		CHECK(rc == SB_EINVAL && err[0] != '\0');
		free(url);
		return 0;
	}
	CHECK(u.host[0] != '\0' && strpbrk(u.host, "/@?#") == NULL);
	CHECK(u.port >= 1 && u.port <= 65535);
	CHECK(u.db >= 0 && u.db <= 1000000);

	/* Written back: every byte of user and password at most 3 characters. */
	size_t cap = 64 + strlen(u.host) + 3 * (strlen(u.user) + strlen(u.password));
	char *again = malloc(cap), *o = again;
	CHECK(again != NULL);
	o += sprintf(o, "redis://");
	if (u.user[0] != '\0' || u.password[0] != '\0') {
		fz_put_enc(&o, u.user);
		*o++ = ':';
		fz_put_enc(&o, u.password);
		*o++ = '@';
	}
	bool bracket = strchr(u.host, ':') != NULL || u.host[0] == '[';
	o += sprintf(o, "%s%s%s:%d/%d", bracket ? "[" : "", u.host, bracket ? "]" : "", u.port,
	             u.db);
	CHECK((size_t)(o - again) < cap);
	rc = sb_redis_url_parse(again, &u2, err2, sizeof(err2));
	if (rc != 0)
		fprintf(stderr, "written back as %s: %s\n", again, err2);
	CHECK(rc == 0 && fz_same(&u, &u2));
	free(again);
	free(url);
	return 0;
}
