/* store.c: the registry's SQL (tables of migrations/, schema "registry"). Every function runs
 * one statement on the caller's connection and returns 0 or the sb_pg error. Every row of
 * subjects, versions and audit belongs to a tenant: a function that finds rows is given the
 * caller's tenant and finds that tenant's rows only (a version is looked up by id AND tenant,
 * so another tenant's id is simply not found). */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sb_err.h"
#include "sb_pg.h"

#define REG_VERSION_COLS                                                                           \
	"id, subject, version, draft, state, deleted, "                                            \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), schema"

static int
reg_row(PGresult *r, int i, struct reg_version *v)
{
	memset(v, 0, sizeof(*v));
	v->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	snprintf(v->subject, sizeof(v->subject), "%s", PQgetvalue(r, i, 1));
	v->version = atoi(PQgetvalue(r, i, 2));
	v->draft = atoi(PQgetvalue(r, i, 3));
	snprintf(v->state, sizeof(v->state), "%s", PQgetvalue(r, i, 4));
	v->deleted = PQgetvalue(r, i, 5)[0] == 't';
	snprintf(v->created_at, sizeof(v->created_at), "%s", PQgetvalue(r, i, 6));
	v->schema = strdup(PQgetvalue(r, i, 7));
	return v->schema != NULL ? 0 : SB_ENOMEM;
}

void
reg_version_clear(struct reg_version *v)
{
	free(v->schema);
	v->schema = NULL;
}

void
reg_versions_free(struct reg_version *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		reg_version_clear(&v[i]);
	free(v);
}

static int
reg_one(struct sb_pg *pg, const char *sql, int np, const char *const *p, struct reg_version *out,
        bool *found)
{
	PGresult *r = NULL;
	memset(out, 0, sizeof(*out));
	*found = false;
	int rc = sb_pg_exec_params(pg, sql, np, p, &r);
	if (rc != 0)
		return rc;
	*found = PQntuples(r) > 0;
	if (*found)
		rc = reg_row(r, 0, out);
	PQclear(r);
	return rc;
}

static int
reg_many(struct sb_pg *pg, const char *sql, int np, const char *const *p, struct reg_version **out,
         size_t *n)
{
	PGresult *r = NULL;
	*out = NULL;
	*n = 0;
	int rc = sb_pg_exec_params(pg, sql, np, p, &r);
	if (rc != 0)
		return rc;
	int rows = PQntuples(r);
	struct reg_version *v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v));
	if (v == NULL) {
		PQclear(r);
		return SB_ENOMEM;
	}
	for (int i = 0; i < rows; i++) {
		if ((rc = reg_row(r, i, &v[i])) != 0) {
			reg_versions_free(v, (size_t)i + 1);
			PQclear(r);
			return rc;
		}
	}
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

int
reg_store_subject_config(struct sb_pg *pg, const char *tenant, const char *subject, bool lock,
                         bool *exists, char *compat, size_t n, bool *subject_set, bool *protected_)
{
	const char *p[] = { subject, tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(
	    pg,
	    lock ? "SELECT s.compatibility, s.protected, coalesce(t.compatibility, "
	           "c.compatibility) FROM registry.config c JOIN registry.subjects s ON s.tenant = "
	           "$2 AND s.name = $1 LEFT JOIN registry.tenant_config t ON t.tenant = $2 WHERE "
	           "c.id = 1 FOR UPDATE OF s"
	         : "SELECT s.compatibility, s.protected, coalesce(t.compatibility, "
	           "c.compatibility) FROM registry.config c LEFT JOIN registry.subjects s ON "
	           "s.tenant = $2 AND s.name = $1 LEFT JOIN registry.tenant_config t ON t.tenant = "
	           "$2 WHERE c.id = 1",
	    2, p, &r);
	if (rc != 0)
		return rc;
	*exists = PQntuples(r) > 0 && !PQgetisnull(r, 0, 1);
	*subject_set = *exists && !PQgetisnull(r, 0, 0);
	*protected_ = *exists && PQgetvalue(r, 0, 1)[0] == 't';
	snprintf(compat, n, "%s",
	         PQntuples(r) == 0 ? "BACKWARD"
	         : *subject_set    ? PQgetvalue(r, 0, 0)
	                           : PQgetvalue(r, 0, 2));
	PQclear(r);
	return 0;
}

int
reg_store_global_compat(struct sb_pg *pg, const char *tenant, char *compat, size_t n)
{
	const char *p[] = { tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(pg,
	                           "SELECT coalesce((SELECT compatibility FROM "
	                           "registry.tenant_config WHERE tenant = $1), compatibility) FROM "
	                           "registry.config WHERE id = 1",
	                           1, p, &r);
	if (rc != 0)
		return rc;
	snprintf(compat, n, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "BACKWARD");
	PQclear(r);
	return 0;
}

int
reg_store_set_global_compat(struct sb_pg *pg, const char *tenant, const char *compat)
{
	const char *p[] = { compat, tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(pg,
	                           "INSERT INTO registry.tenant_config (tenant, compatibility) "
	                           "VALUES ($2, $1) ON CONFLICT (tenant) DO UPDATE SET "
	                           "compatibility = $1",
	                           2, p, &r);
	PQclear(r);
	return rc;
}

int
reg_store_set_subject(struct sb_pg *pg, const char *tenant, const char *subject, const char *compat,
                      int protected_)
{
	/* compat NULL: unchanged; protected_ < 0: unchanged */
	const char *p[] = { subject, compat,
		            protected_ < 0 ? NULL
		            : protected_   ? "t"
		                           : "f",
		            tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(
	    pg,
	    "INSERT INTO registry.subjects (tenant, name, compatibility, protected) "
	    "VALUES ($4, $1, $2, coalesce($3::boolean, false)) ON CONFLICT (tenant, name) DO "
	    "UPDATE SET compatibility = coalesce($2, subjects.compatibility), "
	    "protected = coalesce($3::boolean, subjects.protected)",
	    4, p, &r);
	PQclear(r);
	return rc;
}

int
reg_store_clear_subject_compat(struct sb_pg *pg, const char *tenant, const char *subject,
                               bool *found)
{
	const char *p[] = { subject, tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(pg,
	                           "UPDATE registry.subjects SET compatibility = NULL WHERE tenant "
	                           "= $2 AND name = $1 AND compatibility IS NOT NULL",
	                           2, p, &r);
	if (rc == 0)
		*found = strcmp(PQcmdTuples(r), "0") != 0;
	PQclear(r);
	return rc;
}

int
reg_store_versions(struct sb_pg *pg, const char *tenant, const char *subject, const char *states,
                   bool with_deleted, struct reg_version **out, size_t *n)
{
	const char *p[] = { subject, states, with_deleted ? "t" : "f", tenant };
	return reg_many(pg,
	                "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE tenant = $4 AND "
	                "subject = $1 AND ($2::text IS NULL OR state = ANY (string_to_array($2, "
	                "','))) AND (NOT deleted OR $3::boolean) ORDER BY version",
	                4, p, out, n);
}

int
reg_store_version_by_id(struct sb_pg *pg, const char *tenant, int64_t id, bool lock,
                        struct reg_version *out, bool *found)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = { ids, tenant };
	return reg_one(pg,
	               lock ? "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE id = $1 "
	                      "AND tenant = $2 FOR UPDATE"
	                    : "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE id = $1 "
	                      "AND tenant = $2",
	               2, p, out, found);
}

int
reg_store_version_by_number(struct sb_pg *pg, const char *tenant, const char *subject, int version,
                            bool share, struct reg_version *out, bool *found)
{
	char vs[16];
	snprintf(vs, sizeof(vs), "%d", version);
	const char *p[] = { subject, vs, tenant };
	/* version -1: the latest version that is not pending; share: locked against a delete
	 * until the caller's transaction ends (a reference being registered) */
	return reg_one(pg,
	               share ? "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE tenant = "
	                       "$3 AND subject = $1 AND NOT deleted AND (version = $2::int OR "
	                       "($2::int = -1 AND state <> 'pending')) ORDER BY version DESC "
	                       "LIMIT 1 FOR SHARE"
	                     : "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE tenant = "
	                       "$3 AND subject = $1 AND NOT deleted AND (version = $2::int OR "
	                       "($2::int = -1 AND state <> 'pending')) ORDER BY version DESC "
	                       "LIMIT 1",
	               3, p, out, found);
}

int
reg_store_find_fingerprint(struct sb_pg *pg, const char *tenant, const char *subject,
                           const char *fp, struct reg_version *out, bool *found)
{
	const char *p[] = { subject, fp, tenant };
	return reg_one(pg,
	               "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE tenant = $3 AND "
	               "subject = $1 AND fingerprint = $2 AND NOT deleted ORDER BY version LIMIT 1",
	               3, p, out, found);
}

int
reg_store_insert_version(struct sb_pg *pg, const char *tenant, const char *subject, int draft,
                         const char *schema, const char *fp, const char *state, const char *actor,
                         struct reg_version *out)
{
	char ds[8];
	snprintf(ds, sizeof(ds), "%d", draft);
	const char *p[] = { subject, ds, schema, fp, state, actor, tenant };
	bool found = false;
	int rc = reg_one(pg,
	                 "INSERT INTO registry.versions (tenant, subject, version, draft, schema, "
	                 "fingerprint, state, created_by) SELECT $7, $1, coalesce(max(version), "
	                 "0) + 1, $2::int, $3, $4, $5, $6 FROM registry.versions WHERE tenant = $7 "
	                 "AND subject = $1 RETURNING " REG_VERSION_COLS,
	                 7, p, out, &found);
	return rc == 0 && !found ? SB_EIO : rc;
}

int
reg_store_update_state(struct sb_pg *pg, int64_t id, const char *state)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = { ids, state };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(pg, "UPDATE registry.versions SET state = $2 WHERE id = $1", 2,
	                           p, &r);
	PQclear(r);
	return rc;
}

int
reg_store_audit(struct sb_pg *pg, const char *tenant, const char *actor, const char *action,
                const char *subject, int64_t version_id, const char *detail_json)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)version_id);
	const char *p[] = { actor,
		            action,
		            subject,
		            version_id > 0 ? ids : NULL,
		            detail_json ? detail_json : "{}",
		            tenant };
	PGresult *r = NULL;
	int rc = sb_pg_exec_params(pg,
	                           "INSERT INTO registry.audit (tenant, actor, action, subject, "
	                           "version_id, detail) VALUES ($6, $1, $2, $3, $4::bigint, "
	                           "$5::jsonb)",
	                           6, p, &r);
	PQclear(r);
	return rc;
}

int
reg_store_audit_of(struct sb_pg *pg, int64_t version_id, json_t **out)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)version_id);
	const char *p[] = { ids };
	PGresult *r = NULL;
	*out = NULL;
	int rc = sb_pg_exec_params(
	    pg,
	    "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), actor, "
	    "action, detail::text FROM registry.audit WHERE version_id = $1 ORDER BY id",
	    1, p, &r);
	if (rc != 0)
		return rc;
	json_t *arr = json_array();
	for (int i = 0; arr != NULL && i < PQntuples(r); i++) {
		json_t *detail = json_loads(PQgetvalue(r, i, 3), 0, NULL);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "at", PQgetvalue(r, i, 0),
		                                     "actor", PQgetvalue(r, i, 1), "action",
		                                     PQgetvalue(r, i, 2), "detail",
		                                     detail ? detail : json_object()));
	}
	PQclear(r);
	*out = arr;
	return arr != NULL ? 0 : SB_ENOMEM;
}

int
reg_store_list(struct sb_pg *pg, const char *tenant, const char *subject, const char *state,
               struct reg_version **out, size_t *n)
{
	const char *p[] = { subject && subject[0] ? subject : NULL,
		            state && state[0] ? state : NULL, tenant };
	return reg_many(pg,
	                "SELECT " REG_VERSION_COLS " FROM registry.versions WHERE tenant = $3 AND "
	                "NOT deleted AND ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL "
	                "OR state = $2) ORDER BY id LIMIT 1000",
	                3, p, out, n);
}

int
reg_store_subjects(struct sb_pg *pg, const char *tenant, bool with_deleted, json_t **out)
{
	const char *p[] = { with_deleted ? "t" : "f", tenant };
	PGresult *r = NULL;
	*out = NULL;
	int rc = sb_pg_exec_params(pg,
	                           "SELECT DISTINCT subject FROM registry.versions WHERE tenant = "
	                           "$2 AND (NOT deleted OR $1::boolean) ORDER BY subject",
	                           2, p, &r);
	if (rc != 0)
		return rc;
	json_t *arr = json_array();
	for (int i = 0; arr != NULL && i < PQntuples(r); i++)
		json_array_append_new(arr, json_string(PQgetvalue(r, i, 0)));
	PQclear(r);
	*out = arr;
	return arr != NULL ? 0 : SB_ENOMEM;
}

int
reg_store_delete(struct sb_pg *pg, const char *tenant, const char *subject, int version,
                 json_t **deleted)
{
	char vs[16];
	snprintf(vs, sizeof(vs), "%d", version);
	const char *p[] = { subject, vs, tenant };
	PGresult *r = NULL;
	*deleted = NULL;
	/* version 0: every version of the subject */
	int rc = sb_pg_exec_params(pg,
	                           "UPDATE registry.versions SET deleted = true WHERE tenant = $3 "
	                           "AND subject = $1 AND NOT deleted AND ($2::int = 0 OR version = "
	                           "$2::int) RETURNING version",
	                           3, p, &r);
	if (rc != 0)
		return rc;
	json_t *arr = json_array();
	for (int i = 0; arr != NULL && i < PQntuples(r); i++)
		json_array_append_new(arr, json_integer(atoi(PQgetvalue(r, i, 0))));
	PQclear(r);
	*deleted = arr;
	return arr != NULL ? 0 : SB_ENOMEM;
}

int
reg_store_refs_insert(struct sb_pg *pg, int64_t version_id, const struct reg_ref *refs, size_t n)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)version_id);
	for (size_t i = 0; i < n; i++) {
		char ord[24], rid[24];
		snprintf(ord, sizeof(ord), "%zu", i);
		snprintf(rid, sizeof(rid), "%lld", (long long)refs[i].id);
		const char *p[] = { ids, ord, refs[i].name, rid };
		PGresult *r = NULL;
		int rc =
		    sb_pg_exec_params(pg,
		                      "INSERT INTO registry.refs (version_id, ord, name, ref_id) "
		                      "VALUES ($1::bigint, $2::int, $3, $4::bigint)",
		                      4, p, &r);
		PQclear(r);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
reg_store_refs_of(struct sb_pg *pg, int64_t version_id, struct reg_ref **out, size_t *n)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)version_id);
	const char *p[] = { ids };
	PGresult *r = NULL;
	*out = NULL;
	*n = 0;
	int rc = sb_pg_exec_params(pg,
	                           "SELECT r.name, v.subject, v.version, v.id FROM registry.refs r "
	                           "JOIN registry.versions v ON v.id = r.ref_id WHERE "
	                           "r.version_id = $1::bigint ORDER BY r.ord",
	                           1, p, &r);
	if (rc != 0)
		return rc;
	int rows = PQntuples(r);
	struct reg_ref *v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v));
	if (v == NULL) {
		PQclear(r);
		return SB_ENOMEM;
	}
	for (int i = 0; i < rows; i++) {
		snprintf(v[i].name, sizeof(v[i].name), "%s", PQgetvalue(r, i, 0));
		snprintf(v[i].subject, sizeof(v[i].subject), "%s", PQgetvalue(r, i, 1));
		v[i].version = atoi(PQgetvalue(r, i, 2));
		v[i].id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
	}
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

int
reg_store_referenced_by(struct sb_pg *pg, const char *tenant, const char *subject, int version,
                        bool outside, json_t **ids)
{
	char vs[16];
	snprintf(vs, sizeof(vs), "%d", version);
	const char *p[] = { subject, vs, tenant, outside ? "t" : "f" };
	PGresult *r = NULL;
	*ids = NULL;
	/* version 0: any version of the subject. outside: only referrers that are not among the
	 * versions in question themselves (a subject deleted whole may refer to itself) */
	int rc = sb_pg_exec_params(
	    pg,
	    "SELECT DISTINCT src.id FROM registry.refs r JOIN registry.versions tgt ON tgt.id = "
	    "r.ref_id JOIN registry.versions src ON src.id = r.version_id WHERE tgt.tenant = $3 "
	    "AND tgt.subject = $1 AND ($2::int = 0 OR tgt.version = $2::int) AND NOT src.deleted "
	    "AND NOT ($4::boolean AND src.tenant = $3 AND src.subject = $1 AND ($2::int = 0 OR "
	    "src.version = $2::int)) ORDER BY src.id",
	    4, p, &r);
	if (rc != 0)
		return rc;
	json_t *arr = json_array();
	for (int i = 0; arr != NULL && i < PQntuples(r); i++)
		json_array_append_new(arr, json_integer(strtoll(PQgetvalue(r, i, 0), NULL, 10)));
	PQclear(r);
	*ids = arr;
	return arr != NULL ? 0 : SB_ENOMEM;
}
