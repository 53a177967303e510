/* edge.c: the gateway's public HTTP server. The loop thread only matches the route (404/405
 * answered at once); everything else goes to the worker pipeline. Every answer goes through
 * gw_reply, which writes the request log line and the metrics. */
#include "gw_int.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"
#include "sb_util_trace.h"
#include "sb_util_uuid.h"

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
gw_reply(struct gw_req *r, int status, const char *ctype, const struct sb_http_header *h, size_t nh,
         const char *body, size_t len)
{
	struct gw *gw = r->gw;
	struct sb_http_header hdrs[12];
	size_t n = 0;
	for (size_t i = 0; i < nh && n < 8; i++)
		hdrs[n++] = h[i];
	hdrs[n++] = (struct sb_http_header){ "X-Request-Id", r->request_id };
	if (r->rl_set) {
		hdrs[n++] = (struct sb_http_header){ "RateLimit-Limit", r->rl_headers[0] };
		hdrs[n++] = (struct sb_http_header){ "RateLimit-Remaining", r->rl_headers[1] };
		hdrs[n++] = (struct sb_http_header){ "RateLimit-Reset", r->rl_headers[2] };
	}
	const char *route = r->route ? r->route->pattern : "unmatched";
	const char *method = r->http->method;
	char st[8], dur[32];
	snprintf(st, sizeof(st), "%d", status);
	double secs = (double)(sb_time_mono_ms() - r->start_mono_ms) / 1000.0;
	snprintf(dur, sizeof(dur), "%.3f", secs * 1000.0);
	char trace_id[33] = ""; /* "00-<trace id>-<span id>-<flags>" */
	if (strlen(r->traceparent) > 35)
		snprintf(trace_id, sizeof(trace_id), "%.32s", r->traceparent + 3);
	sb_log_set_context(trace_id, r->request_id);
	sb_log_kv(status >= 500 ? SB_LOG_WARN : SB_LOG_INFO, "request", "method", method, "route",
	          route, "status", st, "duration_ms", dur, "user",
	          r->authenticated ? r->principal.sub : NULL, "remote", r->http->remote, NULL);
	sb_log_set_context(NULL, NULL);
	sb_series_inc(sb_metric_with(gw->m_requests, route, method, st));
	sb_series_observe(sb_metric_with(gw->m_duration, route, method), secs);
	sb_http_respond(r->http, status, ctype, hdrs, n, body, len);
	free(r);
}

void
gw_reply_json(struct gw_req *r, int status, const json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	if (text == NULL) {
		gw_reply_problem(r, 500, "cannot encode the response", NULL, 0);
		return;
	}
	gw_reply(r, status, "application/json", NULL, 0, text, strlen(text));
	free(text);
}

void
gw_reply_problem(struct gw_req *r, int status, const char *detail, json_t *errors,
                 int64_t retry_after_ms)
{
	json_t *body = json_pack("{s:s,s:s,s:i,s:s,s:s}", "type", "about:blank", "title",
	                         sb_http_reason(status), "status", status, "detail", detail,
	                         "request_id", r->request_id);
	if (errors != NULL)
		json_object_set_new(body, "errors", errors);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct sb_http_header h[1];
	size_t nh = 0;
	char secs[24];
	if (retry_after_ms > 0 || status == 503 || status == 429) {
		long long s = retry_after_ms > 0 ? (retry_after_ms + 999) / 1000 : 1;
		snprintf(secs, sizeof(secs), "%lld", s);
		h[nh++] = (struct sb_http_header){ "Retry-After", secs };
	}
	gw_reply(r, status, "application/problem+json", h, nh, text, text ? strlen(text) : 0);
	free(text);
}

void
gw_audit(const struct gw_req *r, const char *event, const char *detail)
{
	sb_log_kv(SB_LOG_WARN, "audit", "audit", "true", "event", event, "detail", detail, "route",
	          r->route ? r->route->pattern : "", "remote", r->http->remote, "user",
	          r->authenticated ? r->principal.sub : NULL, "request_id", r->request_id, NULL);
}

/* gw_ids sets the request id (the client's X-Request-Id if sane, else a new UUID) and the
 * traceparent (the client's continued, else a new trace). */
static void
gw_ids(struct gw_req *r)
{
	const char *rid = sb_http_req_header(r->http, "X-Request-Id");
	bool ok = rid != NULL && rid[0] != '\0' && strlen(rid) < sizeof(r->request_id);
	for (const char *p = rid; ok && *p; p++)
		ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		     (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_' || *p == '.';
	if (ok) {
		snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
	} else {
		struct sb_uuid u;
		sb_uuid_v4(&u);
		sb_uuid_format(&u, r->request_id);
	}
	struct sb_trace_ctx tc, child;
	const char *tp = sb_http_req_header(r->http, "traceparent");
	if (tp != NULL && sb_trace_parse(tp, &tc) == 0)
		sb_trace_child(&tc, &child);
	else
		sb_trace_new(&child, false);
	sb_trace_format(&child, r->traceparent);
}

static void
gw_dispatch(struct sb_http_req *req, void *arg)
{
	struct gw *gw = arg;
	struct gw_req *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		sb_http_respond_problem(req, 503, "Service Unavailable", "out of memory");
		return;
	}
	r->gw = gw;
	r->http = req;
	r->start_mono_ms = sb_time_mono_ms();
	gw_ids(r);
	bool path_known;
	r->route = gw_route_match(req->method, req->path, &r->params, &path_known);
	if (r->route == NULL && path_known) {
		char allow[64], detail[160];
		gw_route_allow(req->path, allow, sizeof(allow));
		snprintf(detail, sizeof(detail), "%s is not allowed here; allowed: %s", req->method,
		         allow);
		json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
		                         "Method Not Allowed", "status", 405, "detail", detail);
		char *text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		const struct sb_http_header h = { "Allow", allow };
		gw_reply(r, 405, "application/problem+json", &h, 1, text, strlen(text));
		free(text);
		return;
	}
	if (r->route == NULL) {
		gw_reply_problem(r, 404, "no route for this path", NULL, 0);
		return;
	}
	gw_pipeline_submit(gw, r);
}

static int
gw_metrics_init(struct gw *gw)
{
	gw->m_requests =
	    sb_metrics_counter("gateway_http_requests_total",
	                       "HTTP requests answered by the gateway.", "route,method,status");
	gw->m_duration =
	    sb_metrics_histogram("gateway_http_request_duration_seconds",
	                         "Time from request received to answer.", "route,method", NULL, 0);
	gw->m_authfail = sb_metrics_counter("gateway_auth_failures_total",
	                                    "Access tokens refused, by reason.", "reason");
	gw->m_limited = sb_metrics_counter("gateway_rate_limited_total",
	                                   "Requests refused by the rate limit.", "route");
	gw->m_redisdown = sb_metrics_counter(
	    "gateway_redis_unavailable_total",
	    "Requests checked while Redis was unavailable, by failure mode applied.", "mode");
	return (gw->m_requests && gw->m_duration && gw->m_authfail && gw->m_limited &&
	        gw->m_redisdown)
	           ? 0
	           : SB_EINVAL;
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
	/* Sends to the messages service travel in batches: one nng message and one reply for
	 * the sends of a burst (docs/decisions.md). */
	static const char *const batched[] = { "messages.Send", NULL };
	struct sb_rpc_client *messages = gw_upstream(gw, "messages");
	if (messages != NULL)
		sb_rpc_client_batch(messages, batched, (int)cfg->rpc_batch_in_flight);
	int rv = gw_metrics_init(gw);
	if (rv == 0)
		rv = gw_authn_init(gw);
	if (rv == 0)
		rv = gw_ratelimit_init(gw);
	if (rv == 0)
		rv = gw_pipeline_start(gw);
	if (rv != 0) {
		gw_authn_fini(gw);
		free(gw);
		return rv;
	}
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
	rv = sb_http_server_start(&hc, gw_dispatch, gw, &gw->http);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start the HTTP edge", "addr", cfg->http_addr, NULL);
		gw_pipeline_stop(gw);
		gw_authn_fini(gw);
		free(gw);
		return rv;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", sb_http_server_port(gw->http));
	sb_log_kv(SB_LOG_INFO, "HTTP edge listening", "addr", cfg->http_addr, "port", port, "auth",
	          cfg->auth_enabled ? "on" : "OFF", "tls", hc.tls_cert_file ? "TLS 1.3" : "off",
	          NULL);
	sb_service_set_state(svc, gw);
	return 0;
}

void
gw_stop(struct sb_service *svc)
{
	struct gw *gw = sb_service_state(svc);
	if (gw == NULL)
		return;
	/* Stop accepting and wait for answers in progress, then stop the workers. */
	sb_http_server_stop(gw->http, (int)gw->cfg->common.shutdown_grace_ms);
	gw_pipeline_stop(gw);
	gw_authn_fini(gw);
	free(gw);
	sb_service_set_state(svc, NULL);
}
