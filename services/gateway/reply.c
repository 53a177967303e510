/* reply.c: the bottom of the gateway, called by every file above it and calling none of them.
 * A request is made here (its ids, its count in flight) and freed here once answered; every
 * answer goes through gw_reply, which writes the request log line and the metrics; every
 * problem document is built by gw_problem_body, so each carries the request id. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_log.h"
#include "sb_util_time.h"
#include "sb_util_trace.h"

/* gw_request_id writes the request id of http to out: the client's X-Request-Id if sane, else
 * a new UUID (the rule every edge of the runtime uses, sb_http_request_id). */
static void
gw_request_id(const struct sb_http_req *http, char out[GW_REQUEST_ID_MAX])
{
	sb_http_request_id(sb_http_req_header(http, "X-Request-Id"), out);
}

/* gw_traceparent starts r's span, a child of the client's trace when it sent a valid
 * traceparent, else the root of a new trace (sampled by SB_TRACE_SAMPLE_PERCENT), and sets r's
 * traceparent to the span's context. */
static void
gw_traceparent(struct gw_req *r)
{
	sb_span_start_tp(&r->span, "HTTP", SB_SPAN_SERVER,
	                 sb_http_req_header(r->http, "traceparent"));
	sb_span_traceparent(&r->span, r->traceparent);
}

struct gw_req *
gw_req_new(struct gw *gw, struct sb_http_req *http)
{
	struct gw_req *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		char rid[GW_REQUEST_ID_MAX];
		gw_request_id(http, rid);
		char *text = gw_problem_body(503, "out of memory", rid, NULL);
		const struct sb_http_header h[] = { { "X-Request-Id", rid },
			                            { "Retry-After", "1" } };
		sb_http_respond(http, 503, text ? "application/problem+json" : NULL, h, 2, text,
		                text ? strlen(text) : 0);
		free(text);
		return NULL;
	}
	r->gw = gw;
	r->http = http;
	r->start_mono_ms = sb_time_mono_ms();
	gw_request_id(http, r->request_id);
	gw_traceparent(r);
	gw->inflight++;
	return r;
}

void
gw_reply(struct gw_req *r, int status, const char *ctype, const struct sb_http_header *h, size_t nh,
         const char *body, size_t len)
{
	struct gw *gw = r->gw;
	struct sb_http_header hdrs[13];
	size_t n = 0;
	for (size_t i = 0; i < nh && n < 8; i++)
		hdrs[n++] = h[i];
	hdrs[n++] = (struct sb_http_header){ "X-Request-Id", r->request_id };
	/* the trace this request belongs to, so that a client can find it (W3C Trace Context) */
	hdrs[n++] = (struct sb_http_header){ "traceparent", r->traceparent };
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
	snprintf(r->span.name, sizeof(r->span.name), "%s %s", method, route);
	sb_span_attr(&r->span, "http.request.method", method);
	sb_span_attr(&r->span, "http.route", route);
	sb_span_attr_int(&r->span, "http.response.status_code", status);
	sb_span_attr(&r->span, "request_id", r->request_id);
	if (status >= 500)
		sb_span_fail(&r->span, sb_http_reason(status));
	sb_span_end(&r->span);
	sb_http_respond(r->http, status, ctype, hdrs, n, body, len);
	free(r);
	gw->inflight--; /* last: once 0, gw_close may free gw */
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

char *
gw_problem_body(int status, const char *detail, const char *request_id, json_t *errors)
{
	const char *title = sb_http_reason(status);
	json_t *body = json_object();
	json_t *d = detail != NULL ? json_string(detail) : NULL;
	if (d == NULL) /* none, or not UTF-8 (a service's message) */
		d = json_string(title);
	if (body == NULL) {
		json_decref(d);
		json_decref(errors);
		return NULL;
	}
	/* each set steals its value, also when it fails */
	int rc = json_object_set_new(body, "type", json_string("about:blank"));
	rc |= json_object_set_new(body, "title", json_string(title));
	rc |= json_object_set_new(body, "status", json_integer(status));
	rc |= json_object_set_new(body, "detail", d);
	rc |= json_object_set_new(body, "request_id", json_string(request_id));
	if (errors != NULL)
		rc |= json_object_set_new(body, "errors", errors);
	if (rc != 0) {
		json_decref(body);
		return NULL;
	}
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return text;
}

void
gw_reply_problem_extra(struct gw_req *r, int status, const char *detail, json_t *errors,
                       int64_t retry_after_ms, const struct sb_http_header *h, size_t nh)
{
	char *text = gw_problem_body(status, detail, r->request_id, errors);
	struct sb_http_header hdrs[8];
	size_t n = 0;
	for (size_t i = 0; i < nh && n < 7; i++)
		hdrs[n++] = h[i];
	char secs[24];
	if (retry_after_ms > 0 || status == 503 || status == 429) {
		long long s = retry_after_ms > 0 ? (retry_after_ms + 999) / 1000 : 1;
		snprintf(secs, sizeof(secs), "%lld", s);
		hdrs[n++] = (struct sb_http_header){ "Retry-After", secs };
	}
	/* Out of memory: the status and headers without a body rather than no answer. */
	gw_reply(r, status, text ? "application/problem+json" : NULL, hdrs, n, text,
	         text ? strlen(text) : 0);
	free(text);
}

void
gw_reply_problem(struct gw_req *r, int status, const char *detail, json_t *errors,
                 int64_t retry_after_ms)
{
	gw_reply_problem_extra(r, status, detail, errors, retry_after_ms, NULL, 0);
}

void
gw_audit(const struct gw_req *r, const char *event, const char *detail)
{
	sb_log_kv(SB_LOG_WARN, "audit", "audit", "true", "event", event, "detail", detail, "route",
	          r->route ? r->route->pattern : "", "remote", r->http->remote, "user",
	          r->authenticated ? r->principal.sub : NULL, "request_id", r->request_id, NULL);
}
