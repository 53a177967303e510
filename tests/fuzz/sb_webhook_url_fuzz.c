/* sb_webhook_url_fuzz: libFuzzer target for the rule a push or webhook endpoint must pass at
 * creation (sb_webhook_endpoint_check, on sb_httpc_url_parse), the URL being any bytes a client
 * sends.
 * Properties:
 *   - the answer is 0 or SB_EINVAL, and a refusal says why (a non-empty reason that fits);
 *   - what is accepted without private addresses is accepted with them;
 *   - an accepted URL is at most SB_WEBHOOK_URL_MAX bytes of printable ASCII without '#',
 *     starting with http:// in any case, and sb_httpc_url_parse accepts it with its scheme in
 *     lower case (the client then sends to exactly what was checked);
 *   - private addresses decide alone: an URL accepted with them is refused without them exactly
 *     when its host is, by a model written here, a literal IPv4 address in any form the C
 *     library reads (inet_aton: "127.1", "0x7f.1", "2130706433") or an IPv6 literal that
 *     sb_webhook_addr_private calls private, or localhost or a name under .localhost. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include "sb_err.h"
#include "sb_httpc.h"
#include "sb_webhook.h"

static bool
fz_private_host(const char *host, bool v6)
{
	if (v6) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
		return inet_pton(AF_INET6, host, &a.sin6_addr) == 1 &&
		       sb_webhook_addr_private((const struct sockaddr *)&a);
	}
	size_t n = strlen(host);
	if (strcasecmp(host, "localhost") == 0 ||
	    (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
		return true;
	struct sockaddr_in a = { .sin_family = AF_INET };
	return inet_aton(host, &a.sin_addr) != 0 &&
	       sb_webhook_addr_private((const struct sockaddr *)&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = fz_cstr(data, size), err[160], err2[160], norm[SB_WEBHOOK_URL_MAX + 16];
	memset(err, 0x55, sizeof(err));
	int open = sb_webhook_endpoint_check(url, true, err, sizeof(err));
	int strict = sb_webhook_endpoint_check(url, false, err2, sizeof(err2));
	CHECK(open == 0 || open == SB_EINVAL);
	CHECK(strict == 0 || strict == SB_EINVAL);
	if (open != 0) {
		CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		CHECK(strict != 0);
		free(url);
		return 0;
	}
	size_t n = strlen(url);
	CHECK(n <= SB_WEBHOOK_URL_MAX && n > 7 && strncasecmp(url, "http://", 7) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)url[i] > 0x20 && (unsigned char)url[i] < 0x7f &&
		      url[i] != '#');
	snprintf(norm, sizeof(norm), "http://%s", url + 7);
	struct sb_httpc_url u;
	CHECK(sb_httpc_url_parse(norm, &u) == 0);
	CHECK(u.host[0] != '\0');
	bool priv = fz_private_host(u.host, u.v6);
	CHECK((strict == 0) == !priv);
	if (strict != 0)
		CHECK(err2[0] != '\0');
	free(url);
	return 0;
}
