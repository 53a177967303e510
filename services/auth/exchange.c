/* exchange.c: token exchange (RFC 8693) for end-user tokens. A client holding scope
 * tokens:issue names one of its own tenant's users with
 *   subject_token_type=urn:switchboard:token-type:user-id  subject_token=<user id>
 * and receives an access token for that user (no refresh token). A user of another tenant is
 * refused exactly like an unknown one. tokens:issue and auth:admin are never delegated. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"

int
auth_grant_exchange(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                    const Sb__Auth__TokenRequest *rq, Sb__Auth__TokenResponse *rs)
{
	struct auth_grant g = { 0 };
	PGresult *r = NULL;

	if (strcmp(rq->subject_token_type, AUTH_SUBJECT_USER_ID) != 0 ||
	    rq->subject_token[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: subject_token_type must be "
		                         "%s with subject_token the user's id",
		                         AUTH_SUBJECT_USER_ID);
	if (rq->requested_token_type[0] != '\0' &&
	    strcmp(rq->requested_token_type, AUTH_TOKEN_TYPE_ACCESS) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: only access tokens can be requested");
	if (!auth_scope_has(c->scopes, AUTH_SCOPE_ISSUE))
		return sb_rpc_call_error(
		    call, SB__RPC__CODE__INVALID_ARGUMENT,
		    "unauthorized_client: the client may not issue user tokens "
		    "(scope " AUTH_SCOPE_ISSUE " required)");
	if (auth_scope_grant(c->scopes, rq->scope, AUTH_SCOPE_ISSUE " " AUTH_SCOPE_ADMIN, g.scope,
	                     sizeof(g.scope)) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_scope: the requested scope cannot be delegated");
	const char *p[] = { rq->subject_token, c->tenant_id };
	int rv = sb_pg_exec_prepared(w->pg, "user_in_tenant", 2, p, &r);
	if (rv != 0)
		return auth_db_error(call, w, rv);
	if (PQntuples(r) != 1) {
		PQclear(r);
		auth_audit(w->pg, "token_exchange_refused", "client_id", c->client_id, "reason",
		           "user not in the client's tenant", "request_id",
		           sb_rpc_call_request_id(call), NULL);
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_grant: no such user in the client's tenant");
	}
	snprintf(g.user_id, sizeof(g.user_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	memcpy(g.sub, g.user_id, sizeof(g.sub));
	memcpy(g.tenant_id, c->tenant_id, sizeof(g.tenant_id));
	memcpy(g.client_id, c->client_id, sizeof(g.client_id));
	rs->issued_token_type = AUTH_TOKEN_TYPE_ACCESS;
	return auth_issue(call, w, &g, false, NULL, w->auth->issued_exchange, rs);
}
