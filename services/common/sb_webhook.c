/* sb_webhook.c: the endpoint rule at registration, one signed delivery attempt and what its
 * outcome means, and the retry schedule (sb_webhook.h). */
#include "sb_webhook.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "sb_err.h"
#include "sb_httpc.h"
#include "sb_util_time.h"

#define SB_WH_ANSWER_MAX (64 * 1024) /* bytes of an answer's body read (and dropped) */

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

/* sb_wh_url writes why url is not a usable endpoint to err and returns SB_EINVAL, or returns 0
 * with the URL, its scheme in lower case, in norm (SB_WEBHOOK_URL_MAX + 1 bytes) and its parts
 * in *u (pointing into norm). */
static int
sb_wh_url(const char *url, char *norm, struct sb_httpc_url *u, char *err, size_t n)
{
	if (url == NULL || url[0] == '\0' || strlen(url) > SB_WEBHOOK_URL_MAX) {
		snprintf(err, n, "an http:// URL of at most %d bytes", SB_WEBHOOK_URL_MAX);
		return SB_EINVAL;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			/* RFC 3986: a URL is ASCII; anything else must be percent-encoded */
			snprintf(err, n, "contains spaces, control or non-ASCII characters");
			return SB_EINVAL;
		}
	if (strncasecmp(url, "https://", 8) == 0) {
		snprintf(err, n, "https is not supported yet; use http://");
		return SB_EINVAL;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(err, n, "must start with http://");
		return SB_EINVAL;
	}
	snprintf(norm, SB_WEBHOOK_URL_MAX + 1, "http://%s", url + 7);
	if (sb_httpc_url_parse(norm, u) != 0) {
		snprintf(err, n,
		         "not a valid http:// URL (a DNS name or IP address as host, an "
		         "optional port, no user information, no fragment)");
		return SB_EINVAL;
	}
	return 0;
}

int
sb_webhook_endpoint_check(const char *url, bool allow_private, char *err, size_t n)
{
	struct sb_httpc_url u;
	char norm[SB_WEBHOOK_URL_MAX + 1];
	if (sb_wh_url(url, norm, &u, err, n) != 0)
		return SB_EINVAL;
	if (!allow_private && sb_wh_host_refused(u.host)) {
		snprintf(err, n, "loopback, private and link-local addresses are not allowed");
		return SB_EINVAL;
	}
	return 0;
}

static bool
sb_wh_addr_ok(const struct sockaddr *sa, void *arg)
{
	(void)arg;
	return !sb_webhook_addr_private(sa);
}

/* sb_wh_drop reads an answer's body without keeping it, up to SB_WH_ANSWER_MAX bytes. */
static int
sb_wh_drop(void *arg, const void *data, size_t len)
{
	size_t *seen = arg;
	(void)data;
	*seen += len;
	return *seen > SB_WH_ANSWER_MAX ? SB_ERANGE : 0;
}

int
sb_webhook_post(const char *url, const char *hdrs, const char *body, size_t blen, int timeout_ms,
                bool allow_private, struct sb_webhook_result *res)
{
	struct sb_httpc_url u;
	struct sb_httpc_resp resp;
	char head[1536], norm[SB_WEBHOOK_URL_MAX + 1];
	size_t seen = 0;
	memset(res, 0, sizeof(*res));
	if (sb_wh_url(url, norm, &u, res->error, sizeof(res->error)) != 0)
		return SB_EINVAL;
	int w =
	    snprintf(head, sizeof(head),
	             "User-Agent: switchboard-webhook/1\r\nContent-Type: application/json\r\n%s",
	             hdrs ? hdrs : "");
	if (w < 0 || (size_t)w >= sizeof(head)) {
		snprintf(res->error, sizeof(res->error), "headers too long");
		return SB_EINVAL;
	}
	struct sb_httpc_req req = { .method = "POST",
		                    .url = norm,
		                    .headers = head,
		                    .body = body,
		                    .body_len = blen,
		                    .timeout_ms = timeout_ms > 0 ? timeout_ms : 1,
		                    .addr_ok = allow_private ? NULL : sb_wh_addr_ok,
		                    .body_write = sb_wh_drop,
		                    .write_arg = &seen };
	int rv = sb_httpc_do(&req, &resp);
	res->refused = resp.refused;
	if (resp.refused)
		snprintf(res->error, sizeof(res->error),
		         "refused: %s resolves only to private addresses", u.host);
	else if (rv != 0)
		snprintf(res->error, sizeof(res->error), "%s",
		         resp.error[0] ? resp.error : sb_strerror(rv));
	if (resp.status >= 100) {
		/* The status line and head arrived: what came after does not change the answer. */
		res->status = resp.status;
		rv = 0;
	} else if (rv == 0) {
		snprintf(res->error, sizeof(res->error), "no status");
		rv = SB_EPROTO;
	}
	sb_httpc_resp_free(&resp);
	return rv;
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
