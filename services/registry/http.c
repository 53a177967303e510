/* http.c: the HTTP edge of the Confluent-compatible REST API. The loop thread never blocks:
 * each request is handed as it is to an RPC worker of this same service (registry.Http, over
 * the service's own RPC URL), which checks the bearer token and answers (confluent.c); the
 * completion writes the answer. docs/registry.md says why the registry, not the gateway,
 * serves this API. */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry.pb-c.h"
#include "sb_err.h"
#include "sb_http.h"
#include "sb_jwt.h"
#include "sb_log.h"
#include "sb_rpc.h"
#include "sb_util_time.h"

#define REG_CT                "application/vnd.schemaregistry.v1+json"
#define REG_JWKS_MIN_FETCH_MS 1000
#define REG_HTTP_TIMEOUT_MS   10000

static void
reg_http_error(struct sb_http_req *r, int status, int code, const char *msg)
{
	json_t *o = json_pack("{s:i,s:s}", "error_code", code, "message", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	sb_http_respond(r, status, REG_CT, NULL, 0, s, s ? strlen(s) : 0);
	free(s);
}

static void
reg_http_done(struct sb_rpc_result *res, void *arg)
{
	struct sb_http_req *r = arg;
	if (res->code == SB__RPC__CODE__OK && res->resp != NULL) {
		const Sb__Registry__HttpResponse *out =
		    (const Sb__Registry__HttpResponse *)res->resp;
		const char *body = out->body ? out->body : "";
		int status = out->status >= 200 && out->status < 600 ? out->status : 500;
		sb_http_respond(r, status, REG_CT, NULL, 0, body, strlen(body));
	} else if (res->code == SB__RPC__CODE__UNAVAILABLE) {
		const struct sb_http_header h[] = { { "Retry-After", "1" } };
		sb_http_respond(r, 503, REG_CT, h, 1,
		                "{\"error_code\":50003,\"message\":\"unavailable\"}", 45);
	} else if (res->code == SB__RPC__CODE__DEADLINE_EXCEEDED) {
		reg_http_error(r, 504, 50002, "timed out");
	} else {
		reg_http_error(r, 500, 50001, res->message[0] ? res->message : "internal error");
	}
	sb_rpc_result_free(res);
}

static void
reg_http_handle(struct sb_http_req *r, void *arg)
{
	struct reg_state *st = arg;
	Sb__Registry__HttpRequest in = SB__REGISTRY__HTTP_REQUEST__INIT;
	const char *path = r->path;
	/* the ingress may pass its prefix through */
	if (strncmp(path, "/registry", 9) == 0 && (path[9] == '/' || path[9] == '\0'))
		path += 9;
	in.method = (char *)r->method;
	in.path = (char *)(path[0] ? path : "/");
	in.query = (char *)r->query;
	in.body = (char *)(r->body ? r->body : "");
	const char *authz = sb_http_req_header(r, "Authorization");
	in.authorization = (char *)(authz ? authz : "");
	if (r->body_len != strlen(in.body)) {
		reg_http_error(r, 400, 400, "the body holds a NUL byte");
		return;
	}
	char rid[SB_HTTP_REQUEST_ID_MAX];
	sb_http_request_id(sb_http_req_header(r, "X-Request-Id"), rid);
	struct sb_rpc_meta meta = { .request_id = rid, .timeout_ms = REG_HTTP_TIMEOUT_MS };
	if (sb_rpc_call_async(st->self, "registry.Http", &in.base,
	                      &sb__registry__http_response__descriptor, &meta, reg_http_done,
	                      r) != 0)
		reg_http_error(r, 503, 50003, "unavailable");
}

int
reg_http_start(struct reg_state *st)
{
	const struct registry_cfg *cfg = st->cfg;
	int rc;
	if (cfg->auth_enabled) {
		struct sb_jwt_policy policy = {
			.issuer = cfg->issuer,
			.audience = cfg->audience,
			.typ = "at+jwt",
			.leeway_s = cfg->leeway_s,
		};
		st->auth = sb_service_upstream(st->svc, "auth");
		if (st->auth == NULL)
			return SB_EINVAL;
		if ((rc = sb_jwt_verifier_new(&policy, NULL, &st->jwt)) != 0)
			return rc;
	}
	if ((rc = sb_rpc_client_open(cfg->common.rpc_url, &st->self)) != 0)
		goto fail;
	struct sb_http_config hc = {
		.addr = cfg->http_addr,
		.port = (int)cfg->http_port,
		.max_body_bytes = (size_t)cfg->max_body_bytes,
		.server_name = "switchboard-registry",
	};
	if ((rc = sb_http_server_start(&hc, reg_http_handle, st, &st->http)) != 0)
		goto fail;
	char port[16];
	snprintf(port, sizeof(port), "%d", sb_http_server_port(st->http));
	sb_log_kv(SB_LOG_INFO, "Confluent-compatible API listening", "addr", cfg->http_addr, "port",
	          port, "auth", cfg->auth_enabled ? "bearer" : "off", NULL);
	return 0;
fail:
	sb_rpc_client_free(st->self);
	st->self = NULL;
	sb_jwt_verifier_free(st->jwt);
	st->jwt = NULL;
	return rc;
}

void
reg_http_stop(struct reg_state *st)
{
	if (st->http != NULL)
		sb_http_server_stop(st->http, 2000);
	st->http = NULL;
	sb_rpc_client_free(st->self);
	st->self = NULL;
	sb_jwt_verifier_free(st->jwt);
	st->jwt = NULL;
}

/* reg_jwks_refetch fetches auth's JWKS again, at most once per REG_JWKS_MIN_FETCH_MS. */
static void
reg_jwks_refetch(struct reg_state *st)
{
	pthread_mutex_lock(&st->jwks_mu);
	int64_t now = sb_time_mono_ms();
	if (st->jwks_fetched_ms == 0 || now - st->jwks_fetched_ms >= REG_JWKS_MIN_FETCH_MS) {
		st->jwks_fetched_ms = now;
		sb_service_fetch_jwks(st->auth, st->jwt, true, NULL);
	}
	pthread_mutex_unlock(&st->jwks_mu);
}

int
reg_http_principal(struct reg_state *st, const char *authorization, struct sb_jwt_principal *p,
                   const char **why)
{
	memset(p, 0, sizeof(*p));
	if (st->jwt == NULL) {
		snprintf(p->client_id, sizeof(p->client_id), "anonymous");
		return 0;
	}
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) {
		*why = "a bearer access token is required";
		return SB_EINVAL;
	}
	const char *tok = authorization + 7;
	int rc = sb_jwt_verify(st->jwt, tok, strlen(tok), p);
	if (rc == SB_JWT_UNKNOWN_KID) {
		reg_jwks_refetch(st);
		rc = sb_jwt_verify(st->jwt, tok, strlen(tok), p);
	}
	if (rc != 0) {
		*why = "the access token is not valid";
		sb_log_kv(SB_LOG_INFO, "registry token refused", "reason", sb_jwt_reason_name(rc),
		          NULL);
		return SB_EINVAL;
	}
	return 0;
}
