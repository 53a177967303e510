/* gateway.h: the one private header of the gateway, the REST edge.
 *
 * Its one job: accept HTTP requests, check them (limits, access tokens and their revocation,
 * rate limits, scopes), and turn each route of the table in routes.c into an RPC to the owning
 * service, transcoding JSON <-> protobuf generically from the route's descriptors.
 *
 * Calls run one way, top to bottom:
 *   config.c     the config table and the service definition (start/stop hooks)
 *   service.c    gw_start/gw_stop: every part below started in one order, stopped in the other
 *   edge.c       the HTTP server; its loop thread matches the route and queues the request
 *   pipeline.c   worker threads: token, revocation, rate limit, scope, then the handler
 *   authn.c revocation.c ratelimit.c            the checks the workers make
 *   forward.c health.c me.c devcreds.c static.c  the handlers (routes*.c: their table)
 *   reply.c      the bottom: request lifetime, every answer, problem bodies, audit lines
 */
#ifndef SB_GATEWAY_H
#define SB_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "sb_http.h"
#include "sb_jwt.h"
#include "sb_metrics.h"
#include "sb_names.h"
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
	long long rate_limit_chunk_max;
	bool redis_fail_open;
	char *auth_url;
	char *messages_url;
	char *outbox_url;
	char *files_url;
	char *realtime_url;
	char *notifier_url;
	char *ingest_url;
	char *gc_url;
	char *cdcsink_url;
	char *pubsub_url;
	char *registry_url;
	char *dev_credentials_file; /* "" = GET /dev/credentials answers 404 */
	char *health_services;      /* the services GET /v1/health asks, comma-separated */
};

struct gw_authn;
struct gw_ratelimit;
struct gw_revocation;
struct gw_req;

/* The gateway's process state: one per process, made by gw_start, freed by gw_stop. */
struct gw {
	struct sb_service *svc; /* NULL in unit tests (no upstreams) */
	const struct gateway_cfg *cfg;
	struct sb_http_server *http; /* the public edge */

	/* pipeline.c: the queue of requests waiting for a worker, and the workers */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gw_req *head, *tail;
	size_t queued;
	bool stopping;
	size_t nworkers;    /* workers wanted (fixed before the first starts) */
	pthread_t *threads; /* nworkers slots */
	size_t nthreads;    /* workers started: exactly the ones gw_pipeline_stop joins */

	struct gw_authn *authn;
	struct gw_ratelimit *rl;
	struct gw_revocation *revo; /* revocation.c; NULL when revocations are not checked */

	/* reply.c: requests made by gw_req_new and not yet answered by gw_reply (RPC callbacks
	 * may still answer some after the workers stopped; gw is freed only once this is 0). */
	_Atomic size_t inflight;

	struct sb_metric *m_requests;  /* gateway_http_requests_total{route,method,status} */
	struct sb_metric *m_duration;  /* gateway_http_request_duration_seconds{route,method} */
	struct sb_metric *m_authfail;  /* gateway_auth_failures_total{reason} */
	struct sb_metric *m_limited;   /* gateway_rate_limited_total{route} */
	struct sb_metric *m_redisdown; /* gateway_redis_unavailable_total{mode} */
};

/* A request id: the client's X-Request-Id when sane ([A-Za-z0-9._-], at most 39), else a UUID
 * (sb_http_request_id). */
#define GW_REQUEST_ID_MAX SB_HTTP_REQUEST_ID_MAX

/* A route's parameters taken from the path, e.g. {id}, as they are in it: still
 * percent-encoded (gw_forward decodes them into fields). GW_PARAM_MAX bytes each, so that an
 * id of 128 bytes (a user id's most) fits even with every byte escaped. */
#define GW_MAX_PARAMS 4
#define GW_PARAM_MAX  (3 * 128)
struct gw_params {
	size_t n;
	char name[GW_MAX_PARAMS][32];
	char value[GW_MAX_PARAMS][GW_PARAM_MAX + 1];
};

/* One request on its way through the gateway: made by gw_req_new on the HTTP loop, handed to
 * a worker (authentication, rate limit, transcoding), answered and freed once by gw_reply. */
struct gw_req {
	struct gw *gw;
	struct sb_http_req *http;
	const struct gw_route *route;
	struct gw_params params;
	int64_t start_mono_ms;
	char request_id[GW_REQUEST_ID_MAX];
	char traceparent[56]; /* the request's span: sent upstream and returned to the client */
	struct sb_span span;  /* this request at the gateway (sb_span.h), ended by gw_reply */
	bool authenticated;
	struct sb_jwt_principal principal;
	char rl_headers[3][24]; /* RateLimit-Limit/-Remaining/-Reset values when limited route */
	bool rl_set;
	bool unchecked;        /* let through unchecked while Redis is unavailable (counted once) */
	char rl_rate_key[600]; /* Redis key of the rate-limit window ("" = none) */
	long long rl_limit;
	long long rl_chunk;  /* units the rate-limit claim of this request asks Redis for */
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
	GW_RAW_BODY = 1 << 7,    /* the JSON body (any value, checked to be JSON) goes verbatim
	                          * into the request's string field body; path and query
	                          * parameters fill their fields as usual */
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
extern const struct gw_route gw_routes_cdc[];
extern const struct gw_route gw_routes_pubsub[];
extern const struct gw_route gw_routes_ingest[];
extern const struct gw_route gw_routes_registry[];
/* gw_route_match finds the route for method and path. Returns the row, or NULL with
 * *path_known telling whether the path exists for another method (405 rather than 404). */
const struct gw_route *gw_route_match(const char *method, const char *path, struct gw_params *p,
                                      bool *path_known);
/* gw_route_allow writes the methods allowed on path ("GET, POST") to out, a buffer of n bytes;
 * methods that do not fit whole are left out. */
void gw_route_allow(const char *path, char *out, size_t n);
/* gw_routes_list appends "METHOD PATTERN\n" for every row of every table gw_route_match
 * searches, in its order: `sb-gateway --routes` (sb_service_def.routes), which tests compare
 * with docs/api/openapi.yaml. Returns 0 or SB_ENOMEM. */
int gw_routes_list(struct sb_buf *out);

/* service.c */
/* gw_start is the service's start hook: makes the gateway's state and starts every part of
 * it (gw_open). Returns 0, or the first part's error with nothing left running. */
int gw_start(struct sb_service *svc);
/* gw_stop is the service's stop hook: stops every part in the reverse order (gw_close) and
 * frees the state. */
void gw_stop(struct sb_service *svc);
/* gw_open starts the parts of gw (metrics, authn, revocation, rate limit, workers, HTTP
 * edge) in that order; gw->cfg (and gw->svc, or NULL) set by the caller. On failure the
 * parts already started are stopped again, last first, and the error is returned: gw then
 * holds nothing. */
int gw_open(struct gw *gw);
/* gw_close stops what gw_open started, in the reverse order, then waits (within the RPC
 * deadline) for answers still in flight. Returns 0 when nothing refers to gw any more, or
 * SB_EBUSY when answers are still outstanding (gw must then not be freed). */
int gw_close(struct gw *gw);

/* gw_upstream returns the RPC client of the service peer, or NULL (unknown peer, or no
 * service: unit tests). */
static inline struct sb_rpc_client *
gw_upstream(struct gw *gw, const char *peer)
{
	return gw->svc != NULL ? sb_service_upstream(gw->svc, peer) : NULL;
}

/* edge.c: the public HTTP server. Its loop thread makes each request (gw_req_new), matches
 * its route (404 and 405 answered at once) and queues it for the workers. */
/* gw_edge_start listens on SB_HTTP_ADDR:SB_HTTP_PORT (TLS when configured). Call after
 * gw_pipeline_start. Returns 0, or the server's error (nothing listens then). */
int gw_edge_start(struct gw *gw);
/* gw_edge_stop stops accepting and waits up to SB_SHUTDOWN_GRACE_MS for answers in
 * progress; then closes every connection. Call before gw_pipeline_stop. */
void gw_edge_stop(struct gw *gw);

/* pipeline.c: worker threads that authenticate, rate-limit and dispatch requests. */
/* gw_pipeline_start starts SB_EDGE_WORKERS workers, each with its own Redis connection
 * (opened lazily). Needs authn, revocation and ratelimit started. Returns 0, or SB_ENOMEM,
 * SB_EINVAL (REDIS_URL), SB_EIO (a thread could not be made): the workers already started
 * are then stopped and joined, and nothing is left to stop. */
int gw_pipeline_start(struct gw *gw);
/* gw_pipeline_submit queues r for a worker; on a full queue, or once stopping, answers 503
 * itself. HTTP loop thread; between gw_pipeline_start and gw_pipeline_stop. */
void gw_pipeline_submit(struct gw *gw, struct gw_req *r);
/* gw_pipeline_stop lets the workers answer what is queued, joins exactly the workers that
 * were started, and frees the queue. Safe after a failed or without a gw_pipeline_start. */
void gw_pipeline_stop(struct gw *gw);

/* authn.c: access tokens checked against the JWKS of auth, cached, refetched on unknown
 * kid. */
/* gw_authn_init makes the verifier and the token cache (no I/O: keys are fetched at the
 * first need). Returns 0 or SB_ENOMEM/SB_EINVAL. gw_authn_fini frees them; NULL-safe. */
int gw_authn_init(struct gw *gw);
void gw_authn_fini(struct gw *gw);
/* gw_authn_verify checks the request's bearer token. Returns 0 and fills r->principal, or
 * answers 401 itself and returns non-zero. Blocking (JWKS refetch): workers only. */
int gw_authn_verify(struct gw_req *r);

/* ratelimit.c: per-user rate limits of state-changing routes, one pipelined Redis round
 * trip per batch of such requests; reads cost no round trip. */
struct sb_redis;
/* gw_ratelimit_init reads SB_RATE_LIMIT_ROUTES and loads nothing yet (the script is sent on
 * first use). Returns 0, SB_ENOMEM or SB_EINVAL (a bad rule, logged). */
int gw_ratelimit_init(struct gw *gw);
/* gw_ratelimit_fini frees what gw_ratelimit_init made, once no worker runs. NULL-safe. */
void gw_ratelimit_fini(struct gw *gw);
/* gw_ratelimit_check_batch counts the GW_MUTATING requests among reqs[0..n-1] in Redis, in
 * one pipelined round trip. Requests it answered (429 limited, 503 Redis unavailable with
 * SB_REDIS_FAIL_OPEN=false) are set to NULL in reqs; the others go on. */
#define GW_BATCH_MAX 32
void gw_ratelimit_check_batch(struct gw_req **reqs, size_t n, struct sb_redis *redis);
/* gw_redis_unavailable applies SB_REDIS_FAIL_OPEN to r, whose check needed Redis: open
 * counts gateway_redis_unavailable_total{mode="open"} (once per request), logs at most
 * every 10 s and returns 0; closed answers 503 and returns -1. Any worker thread. */
int gw_redis_unavailable(struct gw_req *r);

/* revocation.c: the revoked access tokens, known locally. auth SETs sb:revoked:jti:<jti> (with
 * the token's remaining lifetime as TTL) and PUBLISHes "<jti> <exp>" on sb:revocations; a
 * watcher thread SUBSCRIBEs first, then SCANs the keys (so nothing falls in between), then
 * applies each message. On a lost connection the set is "not synced" until it has resubscribed
 * and rescanned (reconnecting with backoff); known revocations stay in force meanwhile. */
#define GW_REVOCATION_CHANNEL SB_REDIS_REVOCATIONS_CHANNEL
#define GW_REVOCATION_PREFIX  SB_REDIS_REVOKED_PREFIX
struct gw_revset;
/* gw_revset_new makes an empty set whose entries are dropped leeway_s after their exp.
 * Returns 0 and *out (free with gw_revset_free) or SB_ENOMEM. */
int gw_revset_new(int64_t leeway_s, struct gw_revset **out);
/* gw_revset_free frees s and its entries; NULL is ignored. No other call may be running. */
void gw_revset_free(struct gw_revset *s);
/* gw_revset_add records jti (copied) as revoked until exp (unix seconds); adding a known
 * jti keeps the later exp. Returns 0, SB_EINVAL (empty or longer than a jti may be),
 * SB_ENOMEM. Thread-safe. */
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
 * empty) and waits up to 2 s for its first sync. Returns 0, or SB_EINVAL for a bad
 * REDIS_URL, SB_ENOMEM, SB_EIO. Stop with gw_revocation_stop. */
int gw_revocation_start(struct gw *gw);
/* gw_revocation_stop stops and joins the watcher (within the Redis I/O timeout, 2 s) and
 * frees the set. Call after the workers stopped; safe when none was started. */
void gw_revocation_stop(struct gw *gw);
/* gw_revocation_check looks jti up: GW_REVO_REVOKED, GW_REVO_OK, or GW_REVO_UNSYNCED when
 * it is not known revoked but the set is not in sync with Redis. Any thread; no I/O. */
enum gw_revo_state gw_revocation_check(struct gw *gw, const char *jti);

/* forward.c: a route row turned into an RPC. */
/* gw_forward transcodes the request per its route, calls the RPC asynchronously, answers.
 */
void gw_forward(struct gw_req *r);
/* gw_parse_pairs adds each name=value of the urlencoded s[0..len) (a form body or a query
 * string; '+' is a space) to the JSON object in, converted to the type of d's field of that
 * name; names d has no field for are skipped, and a name already in `in` is replaced only
 * when overwrite. Returns 0, or -1 for a malformed pair (bad escape, NUL, name over 63 or
 * value over 8191 bytes, or the value of one of d's fields not UTF-8); `in` may then hold the
 * pairs before it. Any thread. */
int gw_parse_pairs(json_t *in, const ProtobufCMessageDescriptor *d, const char *s, size_t len,
                   bool overwrite);
/* gw_basic puts client_id and client_secret of the HTTP Basic credentials in h, an
 * Authorization value (RFC 7617 with RFC 6749 2.3.1: each urlencoded before base64), into
 * in (fields of d only). A value of another scheme is ignored (returns 0). Returns 0, or -1
 * when the credentials are malformed: base64 that is not exactly token68 (no whitespace,
 * padding only at the end), no ':', bad escapes, an id or secret that is not UTF-8. The
 * decoded secret is wiped from the stack. */
int gw_basic(json_t *in, const ProtobufCMessageDescriptor *d, const char *h);

/* health.c */
void gw_health(struct gw_req *r);
/* gw_health_services_check validates SB_HEALTH_SERVICES: a comma-separated list of distinct
 * names of the gateway's upstreams (the twelve services). */
int gw_health_services_check(const char *v, char *err, size_t errlen);
/* me.c */
void gw_me(struct gw_req *r);
/* devcreds.c: GET /dev/credentials, development only. gw_devcreds answers the JSON of
 * SB_DEV_CREDENTIALS_FILE, read at request time, or 404 when that key is empty. Workers
 * only (reads a file). */
void gw_devcreds(struct gw_req *r);
/* static.c: GET / and /console/{file}, the embedded web console. */
void gw_static(struct gw_req *r);

/* reply.c: the bottom of the gateway. Every request is made and freed here, every answer,
 * problem document and audit line is written here; it calls nothing above it. */
/* gw_req_new makes the request of http (request id, trace context, start time) and counts
 * it in flight. HTTP loop thread. Returns it, or NULL when out of memory: http is then
 * answered 503 here. */
struct gw_req *gw_req_new(struct gw *gw, struct sb_http_req *http);
/* gw_reply answers r (status, content type, extra headers, body), writes the request log
 * line, counts it, and frees r. Any thread; exactly once per request. At most 8 extra
 * headers. */
void gw_reply(struct gw_req *r, int status, const char *ctype, const struct sb_http_header *h,
              size_t nh, const char *body, size_t len);
/* gw_reply_json answers with the compact text of body (body stays the caller's). */
void gw_reply_json(struct gw_req *r, int status, const json_t *body);
/* gw_problem_body returns the RFC 9457 document every problem answer of the gateway
 * carries:
 * {"type":"about:blank","title":<reason phrase>,"status","detail","request_id"[,"errors"]};
 * detail NULL or not UTF-8 is replaced by the reason phrase; errors (may be NULL) is
 * stolen. The caller frees the text; NULL when out of memory. */
char *gw_problem_body(int status, const char *detail, const char *request_id, json_t *errors);
/* gw_reply_problem answers r with gw_problem_body (application/problem+json) and, when
 * retry_after_ms > 0 or the status is 429 or 503, Retry-After in whole seconds (at least
 * 1). errors (may be NULL) is stolen. */
void gw_reply_problem(struct gw_req *r, int status, const char *detail, json_t *errors,
                      int64_t retry_after_ms);
/* gw_reply_problem_extra is gw_reply_problem with extra headers (Allow, WWW-Authenticate;
 * at most 7). */
void gw_reply_problem_extra(struct gw_req *r, int status, const char *detail, json_t *errors,
                            int64_t retry_after_ms, const struct sb_http_header *h, size_t nh);
/* gw_audit writes one audit line (authentication failures, scope and rate-limit refusals).
 */
void gw_audit(const struct gw_req *r, const char *event, const char *detail);

#endif
