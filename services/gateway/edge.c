/* edge.c: the gateway's public HTTP server. The loop thread only makes the request (reply.c),
 * matches its route (404 and 405 answered at once) and queues it for the workers (pipeline.c);
 * everything else happens off the loop. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_log.h"

static void
gw_dispatch(struct sb_http_req *req, void *arg)
{
	struct gw *gw = arg;
	struct gw_req *r = gw_req_new(gw, req);
	if (r == NULL)
		return; /* answered 503 */
	bool path_known;
	r->route = gw_route_match(req->method, req->path, &r->params, &path_known);
	if (r->route == NULL && path_known) {
		char allow[64], detail[160];
		gw_route_allow(req->path, allow, sizeof(allow));
		snprintf(detail, sizeof(detail), "%s is not allowed here; allowed: %s", req->method,
		         allow);
		const struct sb_http_header h = { "Allow", allow };
		gw_reply_problem_extra(r, 405, detail, NULL, 0, &h, 1);
		return;
	}
	if (r->route == NULL) {
		gw_reply_problem(r, 404, "no route for this path", NULL, 0);
		return;
	}
	gw_pipeline_submit(gw, r);
}

int
gw_edge_start(struct gw *gw)
{
	const struct gateway_cfg *cfg = gw->cfg;
	struct sb_http_config hc = {
		.addr = cfg->http_addr,
		.port = (int)cfg->http_port,
		.max_header_bytes = (size_t)cfg->max_header_bytes,
		.max_body_bytes = (size_t)cfg->max_body_bytes,
		.header_timeout_ms = (int)cfg->header_timeout_ms,
		.idle_timeout_ms = (int)cfg->idle_timeout_ms,
		.max_conns = (int)cfg->max_conns,
		.server_name = NULL,
		.tls_cert_file = cfg->tls_cert_file[0] ? cfg->tls_cert_file : NULL,
		.tls_key_file = cfg->tls_key_file[0] ? cfg->tls_key_file : NULL,
	};
	int rv = sb_http_server_start(&hc, gw_dispatch, gw, &gw->http);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start the HTTP edge", "addr", cfg->http_addr, NULL);
		return rv;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", sb_http_server_port(gw->http));
	sb_log_kv(SB_LOG_INFO, "HTTP edge listening", "addr", cfg->http_addr, "port", port, "auth",
	          cfg->auth_enabled ? "on" : "OFF", "tls", hc.tls_cert_file ? "TLS 1.3" : "off",
	          NULL);
	return 0;
}

void
gw_edge_stop(struct gw *gw)
{
	if (gw->http == NULL)
		return;
	sb_http_server_stop(gw->http, (int)gw->cfg->common.shutdown_grace_ms);
	gw->http = NULL;
}
