/* introspect.c: auth.Introspect (RFC 7662). Anything unknown, expired, revoked, or belonging to
 * another tenant than the calling client's is {"active":false}. */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

/* auth_introspect_finish renders rs as the response document. */
static int
auth_introspect_finish(struct sb_rpc_call *call, Sb__Auth__IntrospectResponse *rs)
{
	json_t *o = NULL;
	if (!rs->active) {
		rs->json = "{\"active\":false}";
		return SB__RPC__CODE__OK;
	}
	o = json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "active", 1, "scope",
	              rs->scope, "client_id", rs->client_id, "sub", rs->sub, "exp",
	              (json_int_t)rs->exp, "iat", (json_int_t)rs->iat, "iss", rs->iss, "token_type",
	              rs->token_type, "tenant_id", rs->tenant_id, "aud", rs->aud);
	if (o == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	if (rs->user_id[0] != '\0')
		json_object_set_new(o, "user_id", json_string(rs->user_id));
	if (rs->jti[0] != '\0')
		json_object_set_new(o, "jti", json_string(rs->jti));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rs->json = s ? sb_rpc_call_strdup(call, s) : NULL;
	free(s);
	if (rs->json == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	return SB__RPC__CODE__OK;
}

static int
auth_introspect_refresh(struct sb_rpc_call *call, struct auth_worker *w,
                        const struct auth_client *c, const char *token,
                        Sb__Auth__IntrospectResponse *rs)
{
	struct auth_refresh_row row;
	int rv = auth_store_refresh_get(w->pg, token, &row);
	if (rv != 0 && rv != SB_ENOTFOUND)
		return auth_db_error(call, w, rv);
	if (rv == SB_ENOTFOUND || !row.active || strcmp(row.g.tenant_id, c->tenant_id) != 0)
		return auth_introspect_finish(call, rs);
	rs->active = true;
	rs->scope = sb_rpc_call_strdup(call, row.g.scope);
	rs->client_id = sb_rpc_call_strdup(call, row.g.client_id);
	rs->sub = sb_rpc_call_strdup(call, row.g.sub);
	rs->tenant_id = sb_rpc_call_strdup(call, row.g.tenant_id);
	rs->user_id = sb_rpc_call_strdup(call, row.g.user_id);
	rs->exp = row.exp;
	rs->iat = row.iat;
	rs->iss = w->auth->cfg->issuer;
	rs->aud = w->auth->cfg->audience;
	rs->token_type = "refresh_token";
	return auth_introspect_finish(call, rs);
}

static int
auth_introspect_access(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                       const char *token, Sb__Auth__IntrospectResponse *rs)
{
	struct sb_jwt_principal p;
	char scope[SB_JWT_SCOPE_MAX];
	if (strlen(token) > SB_JWT_MAX_TOKEN || auth_keys_verify(w->auth->keys, token, &p) != 0 ||
	    strcmp(p.tenant_id, c->tenant_id) != 0)
		return auth_introspect_finish(call, rs);
	redisReply *rep = sb_redis_command(w->redis, "EXISTS " AUTH_REVOKED_PREFIX "%s", p.jti);
	if (rep == NULL)
		return auth_unavailable(call, w->pg, w->redis);
	bool revoked = rep->type != REDIS_REPLY_INTEGER || rep->integer != 0;
	freeReplyObject(rep);
	if (revoked)
		return auth_introspect_finish(call, rs);
	auth_principal_scope(&p, scope, sizeof(scope));
	rs->active = true;
	rs->scope = sb_rpc_call_strdup(call, scope);
	rs->client_id = sb_rpc_call_strdup(call, p.client_id);
	rs->sub = sb_rpc_call_strdup(call, p.sub);
	rs->tenant_id = sb_rpc_call_strdup(call, p.tenant_id);
	rs->user_id = sb_rpc_call_strdup(call, p.user_id);
	rs->jti = sb_rpc_call_strdup(call, p.jti);
	rs->exp = p.exp;
	rs->iat = p.iat;
	rs->iss = w->auth->cfg->issuer;
	rs->aud = w->auth->cfg->audience;
	rs->token_type = "Bearer";
	return auth_introspect_finish(call, rs);
}

int
auth_rpc_introspect(struct sb_rpc_call *call, const void *req, void *resp)
{
	struct auth_worker wk, *w = auth_worker_of(call, &wk);
	const Sb__Auth__IntrospectRequest *rq = req;
	Sb__Auth__IntrospectResponse *rs = resp;
	struct auth_client c;
	int code = auth_client_authenticate(call, w, rq->client_id, rq->client_secret, &c);
	if (code != SB__RPC__CODE__OK)
		return code;
	if (rq->token[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: token is required");
	if (strncmp(rq->token, AUTH_REFRESH_PREFIX, strlen(AUTH_REFRESH_PREFIX)) == 0)
		return auth_introspect_refresh(call, w, &c, rq->token, rs);
	return auth_introspect_access(call, w, &c, rq->token, rs);
}
