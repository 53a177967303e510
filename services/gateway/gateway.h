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

/* ratelimit.c: revocation and per-user rate limits, one Redis round trip per request. */
struct sb_redis;
int gw_ratelimit_init(struct gw *gw);
/* gw_ratelimit_check consults Redis for r (revoked jti; the route's limit). Returns 0 to go
 * on, or answers (401 revoked, 429 limited, 503) and returns non-zero. */
int gw_ratelimit_check(struct gw_req *r, struct sb_redis *redis);

/* forward.c */
/* gw_forward transcodes the request per its route, calls the RPC asynchronously, answers. */
void gw_forward(struct gw_req *r);

/* health.c */
void gw_health(struct gw_req *r);
/* me.c */
void gw_me(struct gw_req *r);
/* static.c: GET / and /console/{file}, the embedded web console. */
void gw_static(struct gw_req *r);

#endif
