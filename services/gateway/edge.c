/* edge.c: the gateway's public HTTP server: dispatch by the route table, request log line,
 * metrics, problem+json errors. Handlers run on the HTTP loop thread and never block: RPCs are
 * made asynchronously and answered from their completion callbacks. */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_rpc_status.h"

struct gw {
	struct sb_service *svc;
	const struct gateway_cfg *cfg;
	struct sb_http_server *http;
};

struct sb_rpc_client *
gw_upstream(struct gw *gw, const char *peer)
{
	return sb_service_upstream(gw->svc, peer);
}

const struct gateway_cfg *
gw_config(struct gw *gw)
{
	return gw->cfg;
}

void
gw_respond_json(struct sb_http_req *req, int status, const json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	if (text == NULL) {
		sb_http_respond_problem(req, 500, "Internal Server Error",
		                        "cannot encode response");
		return;
	}
	sb_http_respond(req, status, "application/json", NULL, 0, text, strlen(text));
	free(text);
}

static void
gw_dispatch(struct sb_http_req *req, void *arg)
{
	struct gw *gw = arg;
	struct gw_params params;
	bool path_known;
	const struct gw_route *r = gw_route_match(req->method, req->path, &params, &path_known);
	if (r == NULL && path_known) {
		char allow[64];
		gw_route_allow(req->path, allow, sizeof(allow));
		const struct sb_http_header h = { "Allow", allow };
		char detail[160];
		snprintf(detail, sizeof(detail), "%s is not allowed here; allowed: %s", req->method,
		         allow);
		json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
		                         "Method Not Allowed", "status", 405, "detail", detail);
		char *text = json_dumps(body, JSON_COMPACT);
		sb_http_respond(req, 405, "application/problem+json", &h, 1, text, strlen(text));
		free(text);
		json_decref(body);
		return;
	}
	if (r == NULL) {
		sb_http_respond_problem(req, 404, "Not Found", "no route for this path");
		return;
	}
	if (r->local != NULL)
		r->local(gw, req, &params);
	else
		gw_forward(gw, req, r, &params);
}

int
gw_start(struct sb_service *svc)
{
	const struct gateway_cfg *cfg = sb_service_config(svc);
	struct gw *gw = calloc(1, sizeof(*gw));
	if (gw == NULL)
		return SB_ENOMEM;
	gw->svc = svc;
	gw->cfg = cfg;
	struct sb_http_config hc = {
		.addr = cfg->http_addr,
		.port = (int)cfg->http_port,
		.max_header_bytes = (size_t)cfg->max_header_bytes,
		.max_body_bytes = (size_t)cfg->max_body_bytes,
		.header_timeout_ms = (int)cfg->header_timeout_ms,
		.idle_timeout_ms = (int)cfg->idle_timeout_ms,
		.max_conns = (int)cfg->max_conns,
		.server_name = NULL,
	};
	int rv = sb_http_server_start(&hc, gw_dispatch, gw, &gw->http);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start the HTTP edge", "addr", cfg->http_addr, NULL);
		free(gw);
		return rv;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", sb_http_server_port(gw->http));
	sb_log_kv(SB_LOG_INFO, "HTTP edge listening", "addr", cfg->http_addr, "port", port, NULL);
	sb_service_set_state(svc, gw);
	return 0;
}

void
gw_stop(struct sb_service *svc)
{
	struct gw *gw = sb_service_state(svc);
	if (gw == NULL)
		return;
	sb_http_server_stop(gw->http, (int)gw->cfg->common.shutdown_grace_ms);
	free(gw);
	sb_service_set_state(svc, NULL);
}
