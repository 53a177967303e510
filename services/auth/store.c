/* store.c: the SQL of the auth service (one prepared-statement table) and small accessors. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

const struct sb_pg_stmt auth_store_stmts[] = {
	{ "client_get",
	  "SELECT client_id, tenant_id::text, name, secret_hash, scopes, "
	  "coalesce(user_id::text, ''), enabled FROM auth.clients WHERE client_id = $1",
	  1 },
	{ "user_in_tenant",
	  "SELECT id::text FROM auth.users WHERE id::text = lower($1) AND tenant_id = $2::uuid",
	  2 },
	{ "rt_insert",
	  "INSERT INTO auth.refresh_tokens (token_hash, family_id, client_id, tenant_id, user_id, "
	  "subject, scope, expires_at) VALUES ($1, $2::uuid, $3, $4::uuid, NULLIF($5, '')::uuid, "
	  "$6, "
	  "$7, now() + make_interval(secs => $8::int))",
	  8 },
	{ "rt_lock",
	  "SELECT family_id::text, client_id, tenant_id::text, coalesce(user_id::text, ''), "
	  "subject, "
	  "scope, used_at IS NOT NULL, revoked_at IS NOT NULL, expires_at <= now(), "
	  "extract(epoch FROM expires_at)::bigint, extract(epoch FROM created_at)::bigint "
	  "FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
	  1 },
	{ "rt_get",
	  "SELECT family_id::text, client_id, tenant_id::text, coalesce(user_id::text, ''), "
	  "subject, "
	  "scope, used_at IS NOT NULL, revoked_at IS NOT NULL, expires_at <= now(), "
	  "extract(epoch FROM expires_at)::bigint, extract(epoch FROM created_at)::bigint "
	  "FROM auth.refresh_tokens WHERE token_hash = $1",
	  1 },
	{ "rt_mark_used", "UPDATE auth.refresh_tokens SET used_at = now() WHERE token_hash = $1",
	  1 },
	{ "rt_revoke_family",
	  "UPDATE auth.refresh_tokens SET revoked_at = now() WHERE family_id = $1::uuid AND "
	  "revoked_at IS NULL",
	  1 },
	{ "audit_insert",
	  "INSERT INTO auth.audit_events (event, client_id, detail) VALUES ($1, NULLIF($2, ''), "
	  "$3::jsonb)",
	  3 },
	{ NULL, NULL, 0 },
};

static void
auth_store_copy(char *dst, size_t cap, const PGresult *r, int col)
{
	snprintf(dst, cap, "%s", PQgetvalue(r, 0, col));
}

int
auth_store_client_get(struct sb_pg *pg, const char *client_id, struct auth_client *c,
                      char *secret_hash, size_t hcap)
{
	PGresult *r = NULL;
	const char *p[] = { client_id };
	int rv = sb_pg_exec_prepared(pg, "client_get", 1, p, &r);
	if (rv != 0)
		return rv;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return SB_ENOTFOUND;
	}
	memset(c, 0, sizeof(*c));
	auth_store_copy(c->client_id, sizeof(c->client_id), r, 0);
	auth_store_copy(c->tenant_id, sizeof(c->tenant_id), r, 1);
	auth_store_copy(c->name, sizeof(c->name), r, 2);
	if (secret_hash != NULL)
		auth_store_copy(secret_hash, hcap, r, 3);
	auth_store_copy(c->scopes, sizeof(c->scopes), r, 4);
	auth_store_copy(c->user_id, sizeof(c->user_id), r, 5);
	c->enabled = strcmp(PQgetvalue(r, 0, 6), "t") == 0;
	PQclear(r);
	return 0;
}

int
auth_store_audit(struct sb_pg *pg, const char *event, const char *client_id, const char *detail)
{
	PGresult *r = NULL;
	const char *p[] = { event, client_id ? client_id : "", detail };
	int rv = sb_pg_exec_prepared(pg, "audit_insert", 3, p, &r);
	PQclear(r);
	return rv;
}

int
auth_store_refresh_get(struct sb_pg *pg, const char *token, struct auth_refresh_row *row)
{
	char hash[65];
	PGresult *r = NULL;
	if (auth_sha256_hex(token, hash) != 0)
		return SB_EIO;
	const char *p[] = { hash };
	int rv = sb_pg_exec_prepared(pg, "rt_get", 1, p, &r);
	if (rv != 0)
		return rv;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return SB_ENOTFOUND;
	}
	memset(row, 0, sizeof(*row));
	auth_store_copy(row->family, sizeof(row->family), r, 0);
	auth_store_copy(row->g.client_id, sizeof(row->g.client_id), r, 1);
	auth_store_copy(row->g.tenant_id, sizeof(row->g.tenant_id), r, 2);
	auth_store_copy(row->g.user_id, sizeof(row->g.user_id), r, 3);
	auth_store_copy(row->g.sub, sizeof(row->g.sub), r, 4);
	auth_store_copy(row->g.scope, sizeof(row->g.scope), r, 5);
	row->active = PQgetvalue(r, 0, 6)[0] == 'f' && PQgetvalue(r, 0, 7)[0] == 'f' &&
	              PQgetvalue(r, 0, 8)[0] == 'f';
	row->exp = strtoll(PQgetvalue(r, 0, 9), NULL, 10);
	row->iat = strtoll(PQgetvalue(r, 0, 10), NULL, 10);
	PQclear(r);
	return 0;
}
