/* sb_webhook.h: signed HTTP deliveries to endpoints that tenants register (the notifier's
 * webhooks, pubsub's push subscriptions): the endpoint rules (http:// URLs, no private
 * addresses: SSRF), the signature, one delivery attempt with its outcome, and the retry
 * schedule. The durable queue around it (claiming, leases, the DLQ) belongs to each service.
 *
 *   sb_webhook.c       endpoint check, the POST (on sb_httpc, the project's HTTP client), one
 *                      attempt and its classification, backoff
 *   sb_webhook_sign.c  the HMAC signature
 *   sb_webhook_addr.c  which addresses are private
 */
#ifndef SB_WEBHOOK_H
#define SB_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_names.h"

struct sockaddr;

/* The longest URL an endpoint may have. */
#define SB_WEBHOOK_URL_MAX 2048

/* sb_webhook_sign writes "v1=<hex hmac_sha256(secret, "<ts>.<body>")>" to out (size >= 68).
 * Returns 0, SB_ERANGE (out too small) or SB_EIO. */
int sb_webhook_sign(const char *secret, int64_t ts, const char *body, size_t blen, char *out,
                    size_t n);

/* sb_webhook_addr_private tells whether sa (AF_INET or AF_INET6) is a loopback, private,
 * link-local, unique-local, unspecified, multicast, CGNAT or IPv4-mapped/compatible such
 * address. */
bool sb_webhook_addr_private(const struct sockaddr *sa);

/* sb_webhook_endpoint_check is the rule at registration: an http:// URL that sb_httpc_url_parse
 * accepts (no user information, no fragment, a DNS name or IP address as host), of at most
 * SB_WEBHOOK_URL_MAX bytes whose host, when it is a literal address or a localhost name, is
 * not private (unless allow_private). Names are checked again, resolved, at every attempt.
 * Returns 0 or SB_EINVAL with the reason in err (size n). */
int sb_webhook_endpoint_check(const char *url, bool allow_private, char *err, size_t n);

/* One HTTP POST's outcome. */
struct sb_webhook_result {
	int status;      /* HTTP status, 0 when none was received */
	char error[400]; /* why there is no status */
	bool refused;    /* the resolved address is private and that is not allowed */
};
/* sb_webhook_post POSTs body (application/json) with the extra header lines hdrs ("K:
 * V\r\n"...) to url with sb_httpc, bounded by timeout_ms (connect, send and receive). Refuses
 * private addresses unless allow_private, checking every resolved address before connecting
 * to it. The answer's body is read and dropped (a status counts even when the body breaks off
 * or exceeds 64 KiB). Returns 0 when a status was received (res->status), else SB_EINVAL (bad
 * URL; with res->refused for a refused address), SB_ETIMEDOUT, SB_EUNAVAIL (cannot resolve or
 * connect) or SB_EPROTO. */
int sb_webhook_post(const char *url, const char *hdrs, const char *body, size_t blen,
                    int timeout_ms, bool allow_private, struct sb_webhook_result *res);

/* What became of one attempt. */
enum sb_webhook_outcome {
	SB_WEBHOOK_DELIVERED, /* a 2xx answer */
	SB_WEBHOOK_RETRY,     /* 5xx, 408, 429, timeout, no connection, a broken answer */
	SB_WEBHOOK_PERMANENT, /* any other status, a refused address, a bad URL */
};

/* One signed delivery. */
struct sb_webhook_req {
	const char *url;
	const char *secret; /* the endpoint's signing secret */
	const char *body;   /* JSON */
	size_t blen;
	const char *headers; /* extra header lines "K: V\r\n"..., or NULL */
	int timeout_ms;
	bool allow_private;
};

/* sb_webhook_classify maps sb_webhook_post's return value and result to an outcome. */
enum sb_webhook_outcome sb_webhook_classify(int rv, const struct sb_webhook_result *res);

/* sb_webhook_attempt signs r's body with the current time (SB_HDR_WEBHOOK_TIMESTAMP and
 * SB_HDR_WEBHOOK_SIGNATURE), POSTs it once and classifies the outcome. err (size n) receives
 * "HTTP <status>" or why there was no answer (empty when delivered). */
enum sb_webhook_outcome sb_webhook_attempt(const struct sb_webhook_req *r, char *err, size_t n);

/* sb_webhook_backoff_ms is the delay after failed attempt number attempt (1-based):
 * base_ms * 2^(attempt-1), at most max_ms (2, 4, 8, 16, 32 s with 2000 and 32000). */
int64_t sb_webhook_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt);

#endif
