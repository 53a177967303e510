/* refresh.c: the refresh_token grant. Every use rotates the token (a new one in the same family,
 * the old one marked used); presenting a used token again revokes the whole family, since one of
 * the two presenters stole it, and writes a refresh_reuse audit event. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"

static int
auth_refresh_invalid(struct sb_rpc_call *call, struct auth_worker *w, const char *why)
{
	sb_pg_rollback(w->pg);
	return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "invalid_grant: %s", why);
}

int
auth_grant_refresh(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                   const Sb__Auth__TokenRequest *rq, Sb__Auth__TokenResponse *rs)
{
	char hash[65], family[AUTH_ID_MAX];
	struct auth_grant g = { 0 };
	PGresult *r = NULL;
	int rv, code;

	if (rq->refresh_token[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: refresh_token is required");
	if (auth_sha256_hex(rq->refresh_token, hash) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "server_error: hashing");
	if ((rv = sb_pg_begin(w->pg)) != 0)
		return auth_db_error(call, w, rv);
	const char *p[] = { hash };
	if ((rv = sb_pg_exec_prepared(w->pg, "rt_lock", 1, p, &r)) != 0) {
		sb_pg_rollback(w->pg);
		return auth_db_error(call, w, rv);
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return auth_refresh_invalid(call, w, "unknown refresh token");
	}
	snprintf(family, sizeof(family), "%s", PQgetvalue(r, 0, 0));
	snprintf(g.client_id, sizeof(g.client_id), "%s", PQgetvalue(r, 0, 1));
	snprintf(g.tenant_id, sizeof(g.tenant_id), "%s", PQgetvalue(r, 0, 2));
	snprintf(g.user_id, sizeof(g.user_id), "%s", PQgetvalue(r, 0, 3));
	snprintf(g.sub, sizeof(g.sub), "%s", PQgetvalue(r, 0, 4));
	char granted[AUTH_SCOPE_MAX];
	snprintf(granted, sizeof(granted), "%s", PQgetvalue(r, 0, 5));
	bool used = PQgetvalue(r, 0, 6)[0] == 't';
	bool revoked = PQgetvalue(r, 0, 7)[0] == 't';
	bool expired = PQgetvalue(r, 0, 8)[0] == 't';
	PQclear(r);

	if (strcmp(g.client_id, c->client_id) != 0)
		return auth_refresh_invalid(call, w,
		                            "the refresh token was issued to another client");
	if (revoked || expired)
		return auth_refresh_invalid(call, w, "the refresh token is expired or revoked");
	if (used) {
		const char *fp[] = { family };
		rv = sb_pg_exec_prepared(w->pg, "rt_revoke_family", 1, fp, &r);
		PQclear(r);
		if (rv != 0 || (rv = sb_pg_commit(w->pg)) != 0) {
			sb_pg_rollback(w->pg);
			return auth_db_error(call, w, rv);
		}
		sb_series_inc(w->auth->refresh_reuse);
		auth_audit(w->pg, "refresh_reuse", "client_id", c->client_id, "family_id", family,
		           "user_id", g.user_id, "request_id", sb_rpc_call_request_id(call), NULL);
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_grant: the refresh token was already used; its "
		                         "family is revoked");
	}
	/* RFC 6749 section 6: a narrower scope may be asked for, never a wider one */
	if (auth_scope_grant(granted, rq->scope, NULL, g.scope, sizeof(g.scope)) != 0)
		return auth_refresh_invalid(call, w,
		                            "the requested scope exceeds the original grant");
	if ((rv = sb_pg_exec_prepared(w->pg, "rt_mark_used", 1, p, &r)) != 0) {
		sb_pg_rollback(w->pg);
		return auth_db_error(call, w, rv);
	}
	PQclear(r);
	/* a narrowed scope also narrows the new refresh token of the family */
	code = auth_issue(call, w, &g, true, family, w->auth->issued_refresh, rs);
	if (code != SB__RPC__CODE__OK) {
		sb_pg_rollback(w->pg);
		return code;
	}
	if ((rv = sb_pg_commit(w->pg)) != 0) {
		sb_pg_rollback(w->pg);
		return auth_db_error(call, w, rv);
	}
	return SB__RPC__CODE__OK;
}
