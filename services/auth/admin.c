/* admin.c: administrative writes (tenants, users, clients) shared by the CLI and seed-dev. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"

/* auth_admin_one runs sql and copies the first column of its single row to out. */
static int
auth_admin_one(struct sb_pg *pg, const char *sql, int n, const char *const *p, char *out,
               size_t cap)
{
	PGresult *r = NULL;
	int rv = sb_pg_exec_params(pg, sql, n, p, &r);
	if (rv != 0)
		return rv;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
		PQclear(r);
		return SB_ENOTFOUND;
	}
	snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int
auth_admin_tenant(struct sb_pg *pg, const char *name, char id[AUTH_ID_MAX])
{
	const char *p[] = { name };
	int rv =
	    sb_pg_exec_params(pg,
	                      "INSERT INTO auth.tenants (id, name) VALUES (gen_random_uuid(), $1) "
	                      "ON CONFLICT (name) DO NOTHING",
	                      1, p, NULL);
	if (rv != 0)
		return rv;
	return auth_admin_one(pg, "SELECT id::text FROM auth.tenants WHERE name = $1", 1, p, id,
	                      AUTH_ID_MAX);
}

int
auth_admin_user(struct sb_pg *pg, const char *tenant_id, const char *name, bool create,
                char id[AUTH_ID_MAX])
{
	const char *p[] = { tenant_id, name };
	if (create) {
		int rv =
		    sb_pg_exec_params(pg,
		                      "INSERT INTO auth.users (id, tenant_id, name) VALUES "
		                      "(gen_random_uuid(), $1::uuid, $2) ON CONFLICT DO NOTHING",
		                      2, p, NULL);
		if (rv != 0)
			return rv;
	}
	return auth_admin_one(pg,
	                      "SELECT id::text FROM auth.users WHERE tenant_id = $1::uuid AND "
	                      "(name = $2 OR id::text = lower($2))",
	                      2, p, id, AUTH_ID_MAX);
}

int
auth_admin_client_create(struct sb_pg *pg, const struct auth_cfg *cfg, const char *tenant_id,
                         const char *name, const char *scopes, const char *user_id,
                         char id[AUTH_ID_MAX], char *secret, size_t cap)
{
	char hash[256];
	int rv;
	if ((rv = auth_random_token("cl_", 12, id, AUTH_ID_MAX)) != 0 ||
	    (rv = auth_random_token("", 32, secret, cap)) != 0 ||
	    (rv = auth_secret_hash(secret, cfg->pbkdf2_iterations, hash, sizeof(hash))) != 0)
		goto fail;
	const char *p[] = {
		id, tenant_id, name, hash, scopes ? scopes : "", user_id ? user_id : ""
	};
	rv = sb_pg_exec_params(pg,
	                       "INSERT INTO auth.clients (client_id, tenant_id, name, secret_hash, "
	                       "scopes, user_id) VALUES ($1, $2::uuid, $3, $4, $5, "
	                       "NULLIF($6, '')::uuid)",
	                       6, p, NULL);
	if (rv == 0)
		return 0;
fail:
	explicit_bzero(secret, cap);
	return rv;
}

int
auth_admin_client_rotate(struct sb_pg *pg, const struct auth_cfg *cfg, const char *client_id,
                         char *secret, size_t cap)
{
	char hash[256];
	PGresult *r = NULL;
	int rv;
	if ((rv = auth_random_token("", 32, secret, cap)) != 0 ||
	    (rv = auth_secret_hash(secret, cfg->pbkdf2_iterations, hash, sizeof(hash))) != 0)
		goto fail;
	const char *p[] = { client_id, hash };
	rv = sb_pg_exec_params(pg,
	                       "UPDATE auth.clients SET secret_hash = $2, updated_at = now() WHERE "
	                       "client_id = $1",
	                       2, p, &r);
	if (rv == 0 && strcmp(PQcmdTuples(r), "1") != 0)
		rv = SB_ENOTFOUND;
	PQclear(r);
	if (rv == 0)
		return 0;
fail:
	explicit_bzero(secret, cap);
	return rv;
}
