/* sb_redis_url.c: pure helpers of sb_redis: redis:// URL parsing and script digests. */
#include "sb_redis.h"
#include "sb_err.h"
#include "sb_util_hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* sb_redis_number parses s[0..len) as a decimal in [min, max]. Returns 0 or SB_EINVAL. */
static int
sb_redis_number(const char *s, size_t len, long min, long max, int *out)
{
	if (len == 0 || len > 9)
		return SB_EINVAL;
	long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SB_EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return SB_EINVAL;
	*out = (int)v;
	return 0;
}

int
sb_redis_url_parse(const char *url, struct sb_redis_url *out, char *err, size_t n)
{
	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (url == NULL) {
		snprintf(err, n, "no Redis URL");
		return SB_EINVAL;
	}
	if (strncasecmp(url, "rediss://", 9) == 0) {
		snprintf(err, n, "rediss:// (TLS) is not supported; use redis://");
		return SB_EINVAL;
	}
	if (strncasecmp(url, "redis://", 8) != 0) {
		snprintf(err, n, "Redis URL must start with redis://");
		return SB_EINVAL;
	}
	const char *p = url + 8;
	if (strpbrk(p, "?#") != NULL) {
		snprintf(err, n, "Redis URL: query and fragment are not supported");
		return SB_EINVAL;
	}
	const char *slash = strchr(p, '/');
	size_t alen = slash ? (size_t)(slash - p) : strlen(p);
	/* userinfo: everything before the last '@' of the authority. */
	const char *at = NULL;
	for (const char *q = p; q < p + alen; q++) {
		if (*q == '@')
			at = q;
	}
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *pw =
		    colon ? colon + 1 : p; /* no colon: the whole userinfo is a password */
		if (colon != NULL && sb_pct_decode(p, (size_t)(colon - p), 0, out->user,
		                                   sizeof(out->user), NULL) != 0) {
			snprintf(err, n, "Redis URL: bad user name");
			return SB_EINVAL;
		}
		if (sb_pct_decode(pw, (size_t)(at - pw), 0, out->password, sizeof(out->password),
		                  NULL) != 0) {
			explicit_bzero(out->password, sizeof(out->password));
			snprintf(err, n, "Redis URL: bad password encoding or length");
			return SB_EINVAL;
		}
		alen -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	/* host, then an optional :port */
	const char *hend;
	const char *hstart = p;
	if (*p == '[') {
		const char *close = memchr(p, ']', alen);
		if (close == NULL) {
			snprintf(err, n, "Redis URL: unterminated [IPv6] host");
			return SB_EINVAL;
		}
		hstart = p + 1;
		hend = close;
		p = close + 1;
	} else {
		hend = memchr(p, ':', alen);
		if (hend == NULL)
			hend = p + alen;
		p = hend;
	}
	size_t hlen = (size_t)(hend - hstart);
	if (hlen == 0 || hlen >= sizeof(out->host)) {
		snprintf(err, n, "Redis URL: missing or too long host");
		return SB_EINVAL;
	}
	memcpy(out->host, hstart, hlen);
	out->host[hlen] = '\0';
	const char *aend = slash ? slash : p + strlen(p);
	if (*p == ':') {
		if (sb_redis_number(p + 1, (size_t)(aend - p - 1), 1, 65535, &out->port) != 0) {
			snprintf(err, n, "Redis URL: port must be a number from 1 to 65535");
			return SB_EINVAL;
		}
	} else if (p != aend) {
		snprintf(err, n, "Redis URL: unexpected text after the host");
		return SB_EINVAL;
	}
	if (slash != NULL && slash[1] != '\0' &&
	    sb_redis_number(slash + 1, strlen(slash + 1), 0, 1000000, &out->db) != 0) {
		snprintf(err, n, "Redis URL: database must be a number (redis://host:port/0)");
		return SB_EINVAL;
	}
	return 0;
}

int
sb_redis_script_init(struct sb_redis_script *s, const char *lua)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	s->lua = lua;
	s->sha[0] = '\0';
	if (lua == NULL || EVP_Digest(lua, strlen(lua), md, &len, EVP_sha1(), NULL) != 1 ||
	    len != 20)
		return SB_EIO;
	sb_hex_encode(md, len, s->sha);
	s->sha[2 * len] = '\0';
	return 0;
}
