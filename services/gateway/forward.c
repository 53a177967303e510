/* forward.c: a route row turned into an RPC. The JSON body (plus path parameters and the query
 * string) is transcoded to the row's request type, the call is made asynchronously with the
 * request's trace context, and the reply is transcoded back, or mapped to problem+json. */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_rpc_status.h"
#include "sb_util_trace.h"
#include "sb_util_uuid.h"

struct gw_call {
	struct sb_http_req *req;
	const struct gw_route *route;
	char request_id[SB_UUID_STR_LEN + 1];
	char traceparent[SB_TRACEPARENT_LEN + 1];
};

/* gw_problem answers an RFC 9457 problem with optional field errors. */
static void
gw_problem(struct sb_http_req *req, int status, const char *detail, json_t *errors,
           int64_t retry_after_ms)
{
	json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
	                         sb_http_reason(status), "status", status, "detail", detail);
	if (errors != NULL)
		json_object_set_new(body, "errors", errors);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct sb_http_header h[1];
	size_t nh = 0;
	char secs[24];
	if (retry_after_ms > 0 || status == 503) {
		long long s = retry_after_ms > 0 ? (retry_after_ms + 999) / 1000 : 1;
		snprintf(secs, sizeof(secs), "%lld", s);
		h[nh++] = (struct sb_http_header){ "Retry-After", secs };
	}
	sb_http_respond(req, status, "application/problem+json", h, nh, text, strlen(text));
	free(text);
}

static json_t *
gw_json_errors(const struct sb_json_errors *errs)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < errs->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s}", "field", errs->v[i].path,
		                                     "reason", errs->v[i].reason));
	return arr;
}

static void
gw_forward_done(struct sb_rpc_result *res, void *arg)
{
	struct gw_call *c = arg;
	if (res->code == 0 && res->resp != NULL) {
		struct sb_buf b = SB_BUF_INIT;
		if (sb_pb_to_json_buf(res->resp, &b) == 0) {
			int status = c->route->ok_status ? c->route->ok_status : 200;
			sb_http_respond(c->req, status, "application/json", NULL, 0, b.data, b.len);
		} else {
			gw_problem(c->req, 500, "cannot encode the response", NULL, 0);
		}
		sb_buf_free(&b);
	} else {
		json_t *errors = NULL;
		if (res->n_violations > 0) {
			errors = json_array();
			for (size_t i = 0; i < res->n_violations; i++)
				json_array_append_new(errors,
				                      json_pack("{s:s,s:s}", "field",
				                                res->violations[i]->field, "reason",
				                                res->violations[i]->reason));
		}
		int status = sb_rpc_status_http(res->code);
		gw_problem(c->req, status,
		           res->message[0] ? res->message : sb_rpc_code_name(res->code), errors,
		           res->retry_after_ms);
	}
	sb_rpc_result_free(res);
	free(c);
}

/* gw_forward_input builds the JSON object the request type is read from: the body (an object,
 * or nothing), overlaid with path parameters; query parameters fill fields not in the body. */
static json_t *
gw_forward_input(struct gw *gw, struct sb_http_req *req, const struct gw_params *p,
                 struct sb_json_errors *errs, int *status)
{
	json_t *in = NULL;
	if (req->body_len > 0) {
		const char *ct = sb_http_req_header(req, "Content-Type");
		if (ct == NULL || strncmp(ct, "application/json", 16) != 0) {
			*status = 415;
			return NULL;
		}
		const struct gateway_cfg *cfg = gw_config(gw);
		if (sb_json_parse(req->body, req->body_len, (int)cfg->max_json_depth, &in, errs) !=
		    0) {
			*status = 400;
			return NULL;
		}
		if (!json_is_object(in)) {
			json_decref(in);
			snprintf(errs->v[0].path, sizeof(errs->v[0].path), "%s", "");
			snprintf(errs->v[0].reason, sizeof(errs->v[0].reason), "%s",
			         "the body must be a JSON object");
			errs->n = 1;
			*status = 400;
			return NULL;
		}
	} else {
		in = json_object();
	}
	for (size_t i = 0; i < p->n; i++)
		json_object_set_new(in, p->name[i], json_string(p->value[i]));
	return in;
}

void
gw_forward(struct gw *gw, struct sb_http_req *req, const struct gw_route *r,
           const struct gw_params *p)
{
	struct sb_json_errors errs = { 0 };
	int status = 0;
	json_t *in = gw_forward_input(gw, req, p, &errs, &status);
	if (in == NULL) {
		if (status == 415)
			gw_problem(req, 415, "the body must be application/json", NULL, 0);
		else
			gw_problem(req, 400, "the body is not valid JSON", gw_json_errors(&errs),
			           0);
		return;
	}
	ProtobufCMessage *msg = NULL;
	if (sb_json_to_pb(r->req, in, &msg, &errs) != 0) {
		json_decref(in);
		gw_problem(req, 400, "the request has invalid fields", gw_json_errors(&errs), 0);
		return;
	}
	json_decref(in);

	struct gw_call *c = calloc(1, sizeof(*c));
	struct sb_rpc_client *cli = gw_upstream(gw, r->peer);
	if (c == NULL || cli == NULL) {
		free(c);
		protobuf_c_message_free_unpacked(msg, NULL);
		gw_problem(req, 503, "the service is not available", NULL, 1000);
		return;
	}
	c->req = req;
	c->route = r;
	const char *rid = sb_http_req_header(req, "X-Request-Id");
	if (rid != NULL && strlen(rid) <= SB_UUID_STR_LEN) {
		snprintf(c->request_id, sizeof(c->request_id), "%s", rid);
	} else {
		struct sb_uuid u;
		sb_uuid_v4(&u);
		sb_uuid_format(&u, c->request_id);
	}
	struct sb_trace_ctx tc, child;
	const char *tp = sb_http_req_header(req, "traceparent");
	if (tp != NULL && sb_trace_parse(tp, &tc) == 0)
		sb_trace_child(&tc, &child);
	else
		sb_trace_new(&child, false);
	sb_trace_format(&child, c->traceparent);

	struct sb_rpc_meta meta = {
		.principal = NULL,
		.traceparent = c->traceparent,
		.request_id = c->request_id,
		.timeout_ms = gw_config(gw)->rpc_timeout_ms,
	};
	int rv = sb_rpc_call_async(cli, r->rpc, msg, r->resp, &meta, gw_forward_done, c);
	protobuf_c_message_free_unpacked(msg, NULL);
	if (rv != 0) {
		free(c);
		gw_problem(req, 503, "the service is not available", NULL, 1000);
	}
}
