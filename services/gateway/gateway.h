/* gateway.h: private header of the gateway, the REST edge.
 *
 * Its one job: accept HTTP requests, check them (limits; tokens and rate limits once auth
 * lands), and turn each route of the table in routes.c into an RPC to the owning service,
 * transcoding JSON ⇄ protobuf generically from the route's descriptors.
 */
#ifndef SB_GATEWAY_H
#define SB_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "sb_http.h"
#include "sb_jwt.h"
#include "sb_service.h"

struct gateway_cfg {
	struct sb_common_cfg common;
	char *http_addr;
	char *tls_cert_file;
	char *tls_key_file;
	long long http_port;
	long long max_body_bytes;
	long long max_header_bytes;
	long long header_timeout_ms;
	long long idle_timeout_ms;
	long long max_conns;
	long long max_json_depth;
	long long rpc_timeout_ms;
	long long rpc_batch_in_flight;
	long long workers;
	long long queue_max;
	bool auth_enabled;
	char *issuer;
	char *audience;
	long long leeway_s;
	long long jwks_min_refresh_ms;
	long long rate_limit_per_min;
	char *rate_limit_routes;
	bool redis_fail_open;
	char *auth_url;
	char *messages_url;
	char *outbox_url;
	char *files_url;
	char *realtime_url;
	char *notifier_url;
	char *gc_url;
	char *dev_credentials_file; /* "" = GET /dev/credentials answers 404 */
};

struct gw;

/* A route's parameters taken from the path, e.g. {id}. */
#define GW_MAX_PARAMS 4
struct gw_params {
	size_t n;
	char name[GW_MAX_PARAMS][32];
	char value[GW_MAX_PARAMS][128];
};

/* One request on its way through the gateway: created on the HTTP loop, handed to a worker
 * (authentication, rate limit, transcoding), answered once through gw_reply. */
struct gw_req {
	struct gw *gw;
	struct sb_http_req *http;
	const struct gw_route *route;
	struct gw_params params;
	int64_t start_mono_ms;
	char request_id[40];
	char traceparent[56];
	bool authenticated;
	struct sb_jwt_principal principal;
	char rl_headers[3][24]; /* RateLimit-Limit/-Remaining/-Reset values when limited route */
	bool rl_set;
	bool unchecked;        /* let through unchecked while Redis is unavailable (counted once) */
	char rl_rate_key[600]; /* Redis key of the rate-limit window ("" = none) */
	long long rl_limit;
	struct gw_req *next; /* worker queue */
};

/* A handler served by the gateway itself (not forwarded). Runs on a worker; answers once. */
typedef void (*gw_local_fn)(struct gw_req *r);

/* Route flags. */
enum {
	GW_PUBLIC = 1 << 0,   /* no access token needed (token, JWKS, health routes) */
	GW_FORM = 1 << 1,     /* body may be application/x-www-form-urlencoded (OAuth endpoints) */
	GW_BASIC = 1 << 2,    /* HTTP Basic credentials fill fields client_id and client_secret */
	GW_OAUTH = 1 << 3,    /* errors as RFC 6749 {"error","error_description"}: the RPC error
	                       * message is "<error>: <description>"; Cache-Control: no-store */
	GW_RAW = 1 << 4,      /* the response's first field is a JSON document sent verbatim */
	GW_MUTATING = 1 << 5, /* state-changing: subject to the per-user rate limit */
	GW_IDEMPOTENCY = 1 << 6, /* header Idempotency-Key fills field idempotency_key */
};

/* One row of the route table: a local handler, or an RPC with its request/response types.
 * Path parameters ({id}) and query parameters fill request fields of the same name. */
struct gw_route {
	const char *method;  /* "GET", "POST", ... */
	const char *pattern; /* "/v1/conversations/{id}" */
	gw_local_fn local;   /* or NULL for an RPC route */
	const char *peer;    /* upstream service name, e.g. "messages" */
	const char *rpc;     /* "messages.GetConversation" */
	const ProtobufCMessageDescriptor *req;
	const ProtobufCMessageDescriptor *resp;
	int ok_status;     /* HTTP status on success (0 = 200) */
	unsigned flags;    /* GW_* */
	const char *scope; /* scope the token must hold, or NULL */
};

/* config.c */
extern const struct sb_cfg_key gateway_config[];
extern const struct sb_service_def gateway_service;

/* routes.c and routes_<service>.c: one table per owning service, each ended by a NULL
 * method; gw_route_tables lists them. */
extern const struct gw_route gw_routes_core[];
extern const struct gw_route gw_routes_auth[];
extern const struct gw_route gw_routes_messages[];
extern const struct gw_route gw_routes_notifier[];
/* gw_route_match finds the route for method and path. Returns the row, or NULL with
 * *path_known telling whether the path exists for another method (405 rather than 404). */
const struct gw_route *gw_route_match(const char *method, const char *path, struct gw_params *p,
                                      bool *path_known);
/* gw_route_allow writes the methods allowed on path ("GET, POST") to out. */
void gw_route_allow(const char *path, char *out, size_t n);

/* edge.c */
int gw_start(struct sb_service *svc);
void gw_stop(struct sb_service *svc);
const struct gateway_cfg *gw_config(struct gw *gw);
struct sb_rpc_client *gw_upstream(struct gw *gw, const char *peer);
/* gw_reply answers r (status, content type, extra headers, body), writes the request log line,
 * counts it, and frees r. Any thread; exactly once per request. */
void gw_reply(struct gw_req *r, int status, const char *ctype, const struct sb_http_header *h,
              size_t nh, const char *body, size_t len);
/* gw_reply_json answers with the compact text of body. */
void gw_reply_json(struct gw_req *r, int status, const json_t *body);
/* gw_reply_problem answers an RFC 9457 problem; errors (may be NULL) is stolen. */
void gw_reply_problem(struct gw_req *r, int status, const char *detail, json_t *errors,
                      int64_t retry_after_ms);
/* gw_audit writes one audit line (authentication failures, rate-limit violations). */
void gw_audit(const struct gw_req *r, const char *event, const char *detail);

/* pipeline.c: worker threads that authenticate, rate-limit and dispatch requests. */
int gw_pipeline_start(struct gw *gw);
/* (gw_pipeline_stop, below, also frees the rate-limit state: the workers are its users.) */
/* gw_pipeline_submit queues r for a worker; on a full queue answers 503 itself. */
void gw_pipeline_submit(struct gw *gw, struct gw_req *r);
void gw_pipeline_stop(struct gw *gw);

/* authn.c: access tokens checked against the JWKS of auth, cached, refetched on unknown kid. */
int gw_authn_init(struct gw *gw);
void gw_authn_fini(struct gw *gw);
/* gw_authn_verify checks the request's bearer token. Returns 0 and fills r->principal, or
 * answers 401 itself and returns non-zero. Blocking (JWKS refetch): workers only. */
int gw_authn_verify(struct gw_req *r);
/* gw_authn_reject answers 401 (WWW-Authenticate: Bearer, with error="invalid_token" when a
 * token was given), counts the reason and writes an audit line. Returns -1. */
int gw_authn_reject(struct gw_req *r, const char *reason, const char *description,
                    bool token_given);

/* ratelimit.c: per-user rate limits of state-changing routes, one pipelined Redis round trip
 * per batch of such requests; reads cost no round trip. */
struct sb_redis;
int gw_ratelimit_init(struct gw *gw);
/* gw_ratelimit_fini frees what gw_ratelimit_init made; called by gw_pipeline_stop once no
 * worker runs. NULL-safe. */
void gw_ratelimit_fini(struct gw *gw);
/* gw_ratelimit_check_batch counts the GW_MUTATING requests among reqs[0..n-1] in Redis, in
 * one pipelined round trip. Requests it answered (429 limited, 503 Redis unavailable with
 * SB_REDIS_FAIL_OPEN=false) are set to NULL in reqs; the others go on. */
#define GW_BATCH_MAX 32
void gw_ratelimit_check_batch(struct gw_req **reqs, size_t n, struct sb_redis *redis);
/* gw_redis_unavailable applies SB_REDIS_FAIL_OPEN to r, whose check needed Redis: open counts
 * gateway_redis_unavailable_total{mode="open"} (once per request), logs at most every 10 s and
 * returns 0; closed answers 503 and returns -1. Any worker thread. */
int gw_redis_unavailable(struct gw_req *r);

/* revocation.c: the revoked access tokens, known locally. auth SETs sb:revoked:jti:<jti> (with
 * the token's remaining lifetime as TTL) and PUBLISHes "<jti> <exp>" on sb:revocations; a
 * watcher thread SUBSCRIBEs first, then SCANs the keys (so nothing falls in between), then
 * applies each message. On a lost connection the set is "not synced" until it has resubscribed
 * and rescanned (reconnecting with backoff); known revocations stay in force meanwhile. */
#define GW_REVOCATION_CHANNEL "sb:revocations"
#define GW_REVOCATION_PREFIX  "sb:revoked:jti:"
struct gw_revset;
/* gw_revset_new makes an empty set whose entries are dropped leeway_s after their exp.
 * Returns 0 and *out (free with gw_revset_free) or SB_ENOMEM. */
int gw_revset_new(int64_t leeway_s, struct gw_revset **out);
/* gw_revset_free frees s and its entries; NULL is ignored. No other call may be running. */
void gw_revset_free(struct gw_revset *s);
/* gw_revset_add records jti (copied) as revoked until exp (unix seconds); adding a known jti
 * keeps the later exp. Returns 0, SB_EINVAL (empty or longer than a jti may be), SB_ENOMEM.
 * Thread-safe. */
int gw_revset_add(struct gw_revset *s, const char *jti, int64_t exp);
/* gw_revset_contains tells whether jti is in s. Thread-safe; takes one read lock. */
bool gw_revset_contains(struct gw_revset *s, const char *jti);
/* gw_revset_expire drops the entries with exp + leeway before now_s. Returns how many. */
size_t gw_revset_expire(struct gw_revset *s, int64_t now_s);
/* gw_revset_size returns how many entries s holds. */
size_t gw_revset_size(const struct gw_revset *s);
/* gw_revset_parse_msg parses a message "<jti> <exp_unix_seconds>" (len bytes, not
 * NUL-terminated) into jti (size n) and *exp. Returns 0 or SB_EINVAL. */
int gw_revset_parse_msg(const char *msg, size_t len, char *jti, size_t n, int64_t *exp);

enum gw_revo_state { GW_REVO_OK, GW_REVO_REVOKED, GW_REVO_UNSYNCED };
/* gw_revocation_start starts the watcher of gw (nothing when auth is off or REDIS_URL is
 * empty) and waits up to 2 s for its first sync. Returns 0, or SB_EINVAL for a bad REDIS_URL,
 * SB_ENOMEM, SB_EIO. Stop with gw_revocation_stop. */
int gw_revocation_start(struct gw *gw);
/* gw_revocation_stop stops and joins the watcher (within the Redis I/O timeout, 2 s) and frees
 * the set. Call after the workers stopped; safe when none was started. */
void gw_revocation_stop(struct gw *gw);
/* gw_revocation_check looks jti up: GW_REVO_REVOKED, GW_REVO_OK, or GW_REVO_UNSYNCED when it
 * is not known revoked but the set is not in sync with Redis. Any thread; no I/O. */
enum gw_revo_state gw_revocation_check(struct gw *gw, const char *jti);

/* forward.c */
/* gw_forward transcodes the request per its route, calls the RPC asynchronously, answers. */
void gw_forward(struct gw_req *r);

/* health.c */
void gw_health(struct gw_req *r);
/* me.c */
void gw_me(struct gw_req *r);
/* devcreds.c: GET /dev/credentials, development only. gw_devcreds answers the JSON of
 * SB_DEV_CREDENTIALS_FILE, read at request time, or 404 when that key is empty. Workers only
 * (reads a file). */
void gw_devcreds(struct gw_req *r);
/* static.c: GET / and /console/{file}, the embedded web console. */
void gw_static(struct gw_req *r);

#endif
