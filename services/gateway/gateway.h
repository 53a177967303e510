/* gateway.h: private header of the gateway, the REST edge.
 *
 * Its one job: accept HTTP requests, check them (limits; tokens and rate limits once auth
 * lands), and turn each route of the table in routes.c into an RPC to the owning service,
 * transcoding JSON ⇄ protobuf generically from the route's descriptors.
 */
#ifndef SB_GATEWAY_H
#define SB_GATEWAY_H

#include <stdbool.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "sb_http.h"
#include "sb_service.h"

struct gateway_cfg {
	struct sb_common_cfg common;
	char *http_addr;
	long long http_port;
	long long max_body_bytes;
	long long max_header_bytes;
	long long header_timeout_ms;
	long long idle_timeout_ms;
	long long max_conns;
	long long max_json_depth;
	long long rpc_timeout_ms;
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

/* A handler served by the gateway itself (not forwarded). Must not block; responds once. */
typedef void (*gw_local_fn)(struct gw *gw, struct sb_http_req *req, const struct gw_params *p);

/* One row of the route table: a local handler, or an RPC with its request/response types. */
struct gw_route {
	const char *method;  /* "GET", "POST", ... */
	const char *pattern; /* "/v1/conversations/{id}" */
	gw_local_fn local;   /* or NULL for an RPC route */
	const char *peer;    /* upstream service name, e.g. "messages" */
	const char *rpc;     /* "messages.GetConversation" */
	const ProtobufCMessageDescriptor *req;
	const ProtobufCMessageDescriptor *resp;
	int ok_status; /* HTTP status on success (0 = 200) */
};

/* config.c */
extern const struct sb_cfg_key gateway_config[];
extern const struct sb_service_def gateway_service;

/* routes.c */
extern const struct gw_route gw_routes[];
/* gw_route_match finds the route for method and path. Returns the row, or NULL with
 * *path_known telling whether the path exists for another method (405 rather than 404). */
const struct gw_route *gw_route_match(const char *method, const char *path, struct gw_params *p,
                                      bool *path_known);
/* gw_route_allow writes the methods allowed on path ("GET, POST") to out. */
void gw_route_allow(const char *path, char *out, size_t n);

/* edge.c */
int gw_start(struct sb_service *svc);
void gw_stop(struct sb_service *svc);
/* gw_respond_json answers with a JSON body (compact) and status. Consumes nothing. */
void gw_respond_json(struct sb_http_req *req, int status, const json_t *body);
/* gw_upstream returns the RPC client of a peer service, or NULL. */
struct sb_rpc_client *gw_upstream(struct gw *gw, const char *peer);
/* gw_config returns the gateway's configuration. */
const struct gateway_cfg *gw_config(struct gw *gw);

/* forward.c */
/* gw_forward transcodes req per route r, calls the RPC asynchronously and answers later. */
void gw_forward(struct gw *gw, struct sb_http_req *req, const struct gw_route *r,
                const struct gw_params *p);

/* health.c */
/* gw_health answers GET /v1/health with the aggregate Health of every service. */
void gw_health(struct gw *gw, struct sb_http_req *req, const struct gw_params *p);

#endif
