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

#include <openssl/evp.h>

#include "auth.pb-c.h"
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
#define REG_BASIC_SLOTS       64   /* Basic credentials whose access token is cached */
#define REG_BASIC_MARGIN_S    30   /* a cached token is used until this long before it expires */
#define REG_BASIC_MAX         1024 /* bytes of a Basic header's value */

/* Access tokens obtained for Basic credentials, by the SHA-256 of the header's value (the
 * credentials themselves are not kept). */
struct reg_basic {
	pthread_mutex_t mu;
	struct {
		unsigned char key[32];
		char *token;
		int64_t until_ms; /* 0: empty */
	} slot[REG_BASIC_SLOTS];
	size_t next;
};

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

static void
reg_basic_free(struct reg_state *st)
{
	if (st->basic == NULL)
		return;
	for (size_t i = 0; i < REG_BASIC_SLOTS; i++)
		free(st->basic->slot[i].token);
	pthread_mutex_destroy(&st->basic->mu);
	free(st->basic);
	st->basic = NULL;
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
	if (cfg->auth_enabled) {
		if ((st->basic = calloc(1, sizeof(*st->basic))) == NULL) {
			rc = SB_ENOMEM;
			goto fail;
		}
		pthread_mutex_init(&st->basic->mu, NULL);
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
	reg_basic_free(st);
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
	reg_basic_free(st);
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

/* reg_basic_token gives the access token for the Basic credentials of authorization (the
 * header's value, "Basic <base64 id:secret>"): the cached one, or one auth issues now
 * (client_credentials, every scope of the client). Returns a malloc'ed token or NULL with a
 * reason in why. */
static char *
reg_basic_token(struct reg_state *st, const char *authorization, const char **why)
{
	const char *b64 = authorization + 6;
	size_t n = strlen(b64);
	unsigned char key[32];
	unsigned int klen = 0;
	*why = "the Basic credentials are not valid";
	if (n == 0 || n > REG_BASIC_MAX || n % 4 != 0 ||
	    EVP_Digest(authorization, strlen(authorization), key, &klen, EVP_sha256(), NULL) != 1)
		return NULL;
	int64_t now = sb_time_mono_ms();
	char *tok = NULL;
	pthread_mutex_lock(&st->basic->mu);
	for (size_t i = 0; i < REG_BASIC_SLOTS && tok == NULL; i++)
		if (st->basic->slot[i].until_ms > now &&
		    memcmp(st->basic->slot[i].key, key, 32) == 0)
			tok = strdup(st->basic->slot[i].token);
	pthread_mutex_unlock(&st->basic->mu);
	if (tok != NULL)
		return tok;
	/* id:secret */
	unsigned char raw[REG_BASIC_MAX];
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return NULL;
	len -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
	raw[len] = '\0';
	char *colon = strchr((char *)raw, ':');
	if (colon == NULL || memchr(raw, '\0', (size_t)len) != NULL || colon == (char *)raw)
		return NULL;
	*colon = '\0';
	Sb__Auth__TokenRequest req = SB__AUTH__TOKEN_REQUEST__INIT;
	req.grant_type = "client_credentials";
	req.client_id = (char *)raw;
	req.client_secret = colon + 1;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	struct sb_rpc_result res;
	if (sb_rpc_call(st->auth, "auth.Token", &req.base, &sb__auth__token_response__descriptor,
	                &meta, &res) != 0) {
		*why = "auth is unavailable";
		return NULL;
	}
	const Sb__Auth__TokenResponse *out = (const void *)res.resp;
	if (res.code == SB__RPC__CODE__OK && out != NULL && out->access_token != NULL &&
	    out->access_token[0] != '\0')
		tok = strdup(out->access_token);
	else if (res.code == SB__RPC__CODE__UNAVAILABLE ||
	         res.code == SB__RPC__CODE__DEADLINE_EXCEEDED)
		*why = "auth is unavailable";
	int64_t life_s = out != NULL ? out->expires_in : 0;
	sb_rpc_result_free(&res);
	if (tok != NULL && life_s > REG_BASIC_MARGIN_S) {
		pthread_mutex_lock(&st->basic->mu);
		size_t i = st->basic->next++ % REG_BASIC_SLOTS;
		char *copy = strdup(tok);
		free(st->basic->slot[i].token);
		st->basic->slot[i].token = copy;
		memcpy(st->basic->slot[i].key, key, 32);
		st->basic->slot[i].until_ms =
		    copy != NULL ? now + (life_s - REG_BASIC_MARGIN_S) * 1000 : 0;
		pthread_mutex_unlock(&st->basic->mu);
	}
	return tok;
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
	char *basic = NULL;
	if (authorization != NULL && strncasecmp(authorization, "Basic ", 6) == 0) {
		if ((basic = reg_basic_token(st, authorization, why)) == NULL) {
			sb_log_kv(SB_LOG_INFO, "registry Basic credentials refused", "reason", *why,
			          NULL);
			return SB_EINVAL;
		}
	} else if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) {
		*why = "a bearer access token (or a client's Basic credentials) is required";
		return SB_EINVAL;
	}
	const char *tok = basic != NULL ? basic : authorization + 7;
	int rc = sb_jwt_verify(st->jwt, tok, strlen(tok), p);
	if (rc == SB_JWT_UNKNOWN_KID) {
		reg_jwks_refetch(st);
		rc = sb_jwt_verify(st->jwt, tok, strlen(tok), p);
	}
	free(basic);
	if (rc != 0) {
		*why = "the access token is not valid";
		sb_log_kv(SB_LOG_INFO, "registry token refused", "reason", sb_jwt_reason_name(rc),
		          NULL);
		return SB_EINVAL;
	}
	return 0;
}
