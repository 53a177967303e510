/* token.c: auth.Token (POST /auth/token and its alias /auth/refresh): client authentication,
 * then the grant named by grant_type, dispatched through a table. */
#include "auth.h"

#include <string.h>

#include "sb_err.h"

typedef int (*auth_grant_fn)(struct sb_rpc_call *call, struct auth_worker *w,
                             const struct auth_client *c, const Sb__Auth__TokenRequest *rq,
                             Sb__Auth__TokenResponse *rs);

/* client_credentials: a token for the client itself, or for the user it acts as. */
static int
auth_grant_client(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                  const Sb__Auth__TokenRequest *rq, Sb__Auth__TokenResponse *rs)
{
	struct auth_grant g = { 0 };
	int rv = auth_scope_grant(c->scopes, rq->scope, NULL, g.scope, sizeof(g.scope));
	if (rv != 0)
		return sb_rpc_call_error(
		    call, SB__RPC__CODE__INVALID_ARGUMENT,
		    "invalid_scope: the requested scope is not allowed for this "
		    "client");
	memcpy(g.sub, c->user_id[0] ? c->user_id : c->client_id, sizeof(g.sub));
	memcpy(g.user_id, c->user_id, sizeof(g.user_id));
	memcpy(g.tenant_id, c->tenant_id, sizeof(g.tenant_id));
	memcpy(g.client_id, c->client_id, sizeof(g.client_id));
	return auth_issue(call, w, &g, true, NULL, w->auth->issued_client, rs);
}

static const struct {
	const char *grant_type;
	auth_grant_fn fn;
} auth_grants[] = {
	{ AUTH_GRANT_CLIENT, auth_grant_client },
	{ AUTH_GRANT_REFRESH, auth_grant_refresh },
	{ AUTH_GRANT_EXCHANGE, auth_grant_exchange },
	{ NULL, NULL },
};

int
auth_rpc_token(struct sb_rpc_call *call, const void *req, void *resp)
{
	struct auth_worker wk, *w = auth_worker_of(call, &wk);
	const Sb__Auth__TokenRequest *rq = req;
	const char *grant = rq->grant_type;
	struct auth_client c;

	/* /auth/refresh sends no grant_type: a refresh token alone means the refresh grant */
	if (grant[0] == '\0' && rq->refresh_token[0] != '\0')
		grant = AUTH_GRANT_REFRESH;
	if (grant[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: grant_type is required");
	size_t i = 0;
	while (auth_grants[i].grant_type != NULL && strcmp(auth_grants[i].grant_type, grant) != 0)
		i++;
	if (auth_grants[i].fn == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "unsupported_grant_type: the grant type is not supported");
	int code = auth_client_authenticate(call, w, rq->client_id, rq->client_secret, &c);
	if (code != SB__RPC__CODE__OK)
		return code;
	return auth_grants[i].fn(call, w, &c, rq, resp);
}
