/* sb_webhook.c: the endpoint rule at registration, one signed delivery attempt and what its
 * outcome means, and the retry schedule (sb_webhook.h). */
#include "sb_webhook.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "sb_err.h"
#include "sb_util_time.h"

/* sb_wh_host_refused tells whether host is a literal address (or a localhost name) that is
 * private. Names are checked again, resolved, at every connect (DNS can change). */
static bool
sb_wh_host_refused(const char *host)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *ai = NULL;
	bool refused = false;
	size_t len = strlen(host);
	if (strcasecmp(host, "localhost") == 0 ||
	    (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0))
		return true;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return false;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next)
		refused = refused || sb_webhook_addr_private(a->ai_addr);
	freeaddrinfo(ai);
	return refused;
}

int
sb_webhook_endpoint_check(const char *url, bool allow_private, char *err, size_t n)
{
	struct sb_webhook_url u;
	char why[128];
	if (url == NULL || strlen(url) > SB_WEBHOOK_URL_MAX) {
		snprintf(err, n, "an http:// URL of at most %d bytes", SB_WEBHOOK_URL_MAX);
		return SB_EINVAL;
	}
	if (sb_webhook_url_parse(url, &u, why, sizeof(why)) != 0) {
		snprintf(err, n, "%s", why);
		return SB_EINVAL;
	}
	if (!allow_private && sb_wh_host_refused(u.host)) {
		snprintf(err, n, "private, loopback and link-local addresses are not allowed");
		return SB_EINVAL;
	}
	return 0;
}

enum sb_webhook_outcome
sb_webhook_classify(int rv, const struct sb_webhook_result *res)
{
	if (rv == 0) {
		if (res->status >= 200 && res->status < 300)
			return SB_WEBHOOK_DELIVERED;
		if (res->status >= 500 || res->status == 408 || res->status == 429)
			return SB_WEBHOOK_RETRY;
		return SB_WEBHOOK_PERMANENT;
	}
	/* A refused address or a URL that does not parse will not get better by waiting. */
	return res->refused || rv == SB_EINVAL ? SB_WEBHOOK_PERMANENT : SB_WEBHOOK_RETRY;
}

enum sb_webhook_outcome
sb_webhook_attempt(const struct sb_webhook_req *r, char *err, size_t n)
{
	struct sb_webhook_result res;
	char hdrs[1024], sig[80];
	int64_t ts = sb_time_now_ms() / 1000;
	if (n > 0)
		err[0] = '\0';
	if (sb_webhook_sign(r->secret ? r->secret : "", ts, r->body, r->blen, sig, sizeof(sig)) !=
	    0) {
		snprintf(err, n, "cannot sign the body");
		return SB_WEBHOOK_RETRY;
	}
	int w =
	    snprintf(hdrs, sizeof(hdrs),
	             SB_HDR_WEBHOOK_TIMESTAMP ": %lld\r\n" SB_HDR_WEBHOOK_SIGNATURE ": %s\r\n%s",
	             (long long)ts, sig, r->headers ? r->headers : "");
	explicit_bzero(sig, sizeof(sig));
	if (w < 0 || (size_t)w >= sizeof(hdrs)) {
		snprintf(err, n, "headers too long");
		return SB_WEBHOOK_PERMANENT;
	}
	int rv =
	    sb_webhook_post(r->url, hdrs, r->body, r->blen, r->timeout_ms, r->allow_private, &res);
	enum sb_webhook_outcome o = sb_webhook_classify(rv, &res);
	if (o == SB_WEBHOOK_DELIVERED)
		return o;
	if (rv == 0)
		snprintf(err, n, "HTTP %d", res.status);
	else
		snprintf(err, n, "%s", res.error);
	return o;
}

int64_t
sb_webhook_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt)
{
	int64_t d = base_ms;
	for (int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}
