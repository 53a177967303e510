/* confluent.c: the Confluent Schema Registry REST API (registry.Http, from http.c), over the
 * same store and operations as the seed API. JSON schemas only (schemaType "JSON"); errors as
 * Confluent sends them, {"error_code": 40401, "message": "..."}; ids are version ids. Every
 * route needs a bearer token (or a client's Basic credentials, http.c) with the row's scope
 * (registry:read, :write or :admin), and acts in the token's tenant only: another tenant's
 * subjects and ids are not found. */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.pb-c.h"
#include "sb_err.h"
#include "sb_jwt.h"
#include "sb_log.h"
#include "sb_pg.h"
#include "sb_util_hex.h"

#define REG_MAX_SEGS 6

/* One Confluent request being answered. */
struct reg_cx {
	struct sb_rpc_call *call;
	struct reg_state *st;
	struct sb_pg *pg;
	const Sb__Registry__HttpRequest *in;
	char seg[REG_MAX_SEGS][REG_SUBJECT_MAX * 3 + 1]; /* path segments, decoded */
	size_t nseg;
	char actor[600];
	char tenant[REG_TENANT_MAX + 1]; /* the caller's, from its token */
	int status;
	json_t *out; /* the answer's body */
};

typedef void (*reg_cx_fn)(struct reg_cx *c);

struct reg_croute {
	const char *method;
	const char *pattern; /* "/subjects/{}/versions": {} matches one segment */
	const char *scope;
	reg_cx_fn fn;
};

static void reg_cx_error(struct reg_cx *c, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
reg_cx_error(struct reg_cx *c, int status, int code, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(c->out);
	c->status = status;
	c->out = json_pack("{s:i,s:s}", "error_code", code, "message", msg);
	if (status >= 500)
		sb_log_kv(SB_LOG_ERROR, "confluent API error", "path", c->in->path, "message", msg,
		          NULL);
	else
		sb_log_kv(SB_LOG_INFO, "confluent API request refused", "method", c->in->method,
		          "path", c->in->path, "message", msg, NULL);
}

static void
reg_cx_fail(struct reg_cx *c, struct reg_err *e)
{
	int status = e->confluent >= 1000 ? e->confluent / 100 : e->confluent;
	if (e->code == SB__RPC__CODE__UNAVAILABLE)
		status = 503;
	reg_cx_error(c, status, e->confluent, "%s", e->message);
	reg_diffs_free(&e->diffs);
}

static void
reg_cx_store(struct reg_cx *c, int rv)
{
	struct reg_err e = { 0 };
	reg_err_store(&e, c->pg, rv);
	reg_cx_fail(c, &e);
}

/* reg_cx_query returns the value of query parameter name (not decoded: ours are plain
 * words), or NULL; copied into buf. */
static const char *
reg_cx_query(struct reg_cx *c, const char *name, char *buf, size_t n)
{
	const char *q = c->in->query ? c->in->query : "";
	size_t nl = strlen(name);
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			snprintf(buf, n, "%.*s", (int)(len - nl - 1), q + nl + 1);
			return buf;
		}
		q += len + (amp != NULL);
	}
	return NULL;
}

static bool
reg_cx_flag(struct reg_cx *c, const char *name)
{
	char b[16];
	const char *v = reg_cx_query(c, name, b, sizeof(b));
	return v != NULL && strcmp(v, "true") == 0;
}

/* reg_cx_version parses a version segment: a number from 1, or "latest" (-1). */
static bool
reg_cx_version(const char *s, int *out)
{
	if (strcmp(s, "latest") == 0 || strcmp(s, "-1") == 0) {
		*out = -1;
		return true;
	}
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 1 || v > 2147483647)
		return false;
	*out = (int)v;
	return true;
}

/* reg_cx_schema reads the body's {"schema": "<text>", "schemaType"?: "JSON", "references"?:
 * [{name, subject, version}]} into a canonical draft 7 schema (or the draft its $schema
 * names) and its references (*refs, unresolved, for the caller to free). Answers the error
 * itself; NULL then. */
static char *
reg_cx_schema(struct reg_cx *c, int *draft, struct reg_ref **refs, size_t *nrefs)
{
	json_t *b = json_loads(c->in->body ? c->in->body : "", JSON_REJECT_DUPLICATES, NULL);
	const char *text = json_string_value(json_object_get(b, "schema"));
	const char *type = json_string_value(json_object_get(b, "schemaType"));
	char *canon = NULL, why[300];
	struct reg_err e = { 0 };
	*draft = 7;
	*refs = NULL;
	*nrefs = 0;
	if (!json_is_object(b) || text == NULL) {
		reg_cx_error(c, 422, 42201, "the body must be {\"schema\": \"<schema text>\"}");
	} else if (type != NULL && strcmp(type, "JSON") != 0) {
		reg_cx_error(
		    c, 422, 42201,
		    "schemaType %s is not supported: this registry holds JSON schemas only", type);
	} else if (reg_refs_parse(json_object_get(b, "references"), refs, nrefs, why,
	                          sizeof(why)) != 0) {
		reg_cx_error(c, 422, 42201, "%s", why);
	} else {
		json_t *s = json_loads(text, JSON_DECODE_ANY, NULL);
		const char *dialect = json_string_value(json_object_get(s, "$schema"));
		if (dialect != NULL && strstr(dialect, "draft-04") != NULL)
			*draft = 4;
		json_decref(s);
		/* with references, the bundle is compiled when they are resolved */
		if (reg_schema_parse(text, strlen(text), *draft, *nrefs == 0, &canon, &e) != 0)
			reg_cx_fail(c, &e);
	}
	json_decref(b);
	if (canon == NULL) {
		free(*refs);
		*refs = NULL;
		*nrefs = 0;
	}
	return canon;
}

/* reg_cx_add_refs adds v's references to the answer o ("references", Confluent's form), when
 * it has any. */
static void
reg_cx_add_refs(struct reg_cx *c, const struct reg_version *v, json_t *o)
{
	struct reg_ref *refs = NULL;
	size_t n = 0;
	if (o != NULL && reg_store_refs_of(c->pg, v->id, &refs, &n) == 0 && n > 0)
		json_object_set_new(o, "references", reg_refs_json(refs, n));
	free(refs);
}

static json_t *
reg_cx_schema_obj(struct reg_cx *c, const struct reg_version *v, bool with_subject)
{
	json_t *o = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)v->id, "schemaType", "JSON",
	                      "schema", v->schema);
	if (with_subject) {
		json_object_set_new(o, "subject", json_string(v->subject));
		json_object_set_new(o, "version", json_integer(v->version));
	}
	reg_cx_add_refs(c, v, o);
	return o;
}

/* --- handlers --------------------------------------------------------------------------- */

static void
reg_c_root(struct reg_cx *c)
{
	c->out = json_object();
}

static void
reg_c_subjects(struct reg_cx *c)
{
	int rc = reg_store_subjects(c->pg, c->tenant, reg_cx_flag(c, "deleted"), &c->out);
	if (rc != 0)
		reg_cx_store(c, rc);
}

static void
reg_c_versions(struct reg_cx *c)
{
	struct reg_version *v = NULL;
	size_t n = 0;
	int rc = reg_store_versions(c->pg, c->tenant, c->seg[1], "active,deprecated",
	                            reg_cx_flag(c, "deleted"), &v, &n);
	if (rc != 0) {
		reg_cx_store(c, rc);
		return;
	}
	if (n == 0) {
		reg_versions_free(v, n);
		reg_cx_error(c, 404, 40401, "Subject '%s' not found.", c->seg[1]);
		return;
	}
	c->out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(c->out, json_integer(v[i].version));
	reg_versions_free(v, n);
}

static void
reg_c_register(struct reg_cx *c)
{
	int draft;
	struct reg_ref *refs = NULL;
	size_t nrefs = 0;
	char *canon = reg_cx_schema(c, &draft, &refs, &nrefs);
	if (canon == NULL) {
		reg_count_register(c->st, REG_M_INVALID);
		return;
	}
	struct reg_version v;
	struct reg_err e = { 0 };
	bool created = false;
	if (reg_register(c->pg, c->tenant, c->seg[1], canon, draft, refs, nrefs, c->actor, &v,
	                 &created, &e) != 0) {
		if (e.code == SB__RPC__CODE__ABORTED)
			reg_count_register(c->st, REG_M_INCOMPATIBLE);
		reg_cx_fail(c, &e);
	} else if (strcmp(v.state, "pending") == 0) {
		reg_count_register(c->st, created ? REG_M_PENDING : REG_M_EXISTING);
		/* stored, but not usable until approved: tooling must not take it as registered */
		reg_cx_error(
		    c, 409, 409,
		    "Schema being registered is incompatible with an earlier schema for "
		    "subject \"%s\"; the subject is protected, so it was stored as pending "
		    "version %d (id %lld) awaiting approval (POST "
		    "/api/v1/schemas/%lld/approve)",
		    c->seg[1], v.version, (long long)v.id, (long long)v.id);
		reg_version_clear(&v);
	} else {
		reg_count_register(c->st, created ? REG_M_CREATED : REG_M_EXISTING);
		c->out = json_pack("{s:I}", "id", (json_int_t)v.id);
		reg_version_clear(&v);
	}
	reg_diffs_free(&e.diffs);
	free(refs);
	free(canon);
}

static bool
reg_cx_get_version(struct reg_cx *c, struct reg_version *v)
{
	int ver;
	bool found = false;
	if (!reg_cx_version(c->seg[3], &ver)) {
		reg_cx_error(c, 422, 42202,
		             "The specified version '%s' is not a valid version id. Allowed values "
		             "are between [1, 2^31-1] and the string \"latest\"",
		             c->seg[3]);
		return false;
	}
	int rc = reg_store_version_by_number(c->pg, c->tenant, c->seg[1], ver, false, v, &found);
	if (rc != 0) {
		reg_cx_store(c, rc);
		return false;
	}
	if (!found) {
		struct reg_version *all = NULL;
		size_t n = 0;
		reg_store_versions(c->pg, c->tenant, c->seg[1], NULL, false, &all, &n);
		reg_versions_free(all, n);
		if (n == 0)
			reg_cx_error(c, 404, 40401, "Subject '%s' not found.", c->seg[1]);
		else
			reg_cx_error(c, 404, 40402, "Version %s not found.", c->seg[3]);
		return false;
	}
	return true;
}

static void
reg_c_version(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_get_version(c, &v))
		return;
	c->out = reg_cx_schema_obj(c, &v, true);
	reg_version_clear(&v);
}

/* GET /subjects/{s}/versions/{v}/referencedby: the ids of the versions that refer to it */
static void
reg_c_referenced_by(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_get_version(c, &v))
		return;
	int rc = reg_store_referenced_by(c->pg, c->tenant, v.subject, v.version, false, &c->out);
	reg_version_clear(&v);
	if (rc != 0)
		reg_cx_store(c, rc);
}

static void
reg_c_version_schema(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_get_version(c, &v))
		return;
	c->out = json_loads(v.schema, JSON_DECODE_ANY, NULL);
	reg_version_clear(&v);
}

static void
reg_c_lookup(struct reg_cx *c)
{
	int draft;
	struct reg_ref *refs = NULL;
	size_t nrefs = 0;
	char *canon = reg_cx_schema(c, &draft, &refs, &nrefs);
	if (canon == NULL)
		return;
	struct reg_version *v = NULL;
	size_t n = 0;
	struct reg_err e = { 0 };
	int rc = reg_store_versions(c->pg, c->tenant, c->seg[1], NULL, false, &v, &n);
	if (rc != 0) {
		reg_cx_store(c, rc);
	} else if (n == 0) {
		reg_cx_error(c, 404, 40401, "Subject '%s' not found.", c->seg[1]);
	} else if (nrefs > 0 && reg_refs_resolve(c->pg, c->tenant, refs, nrefs, false, &e) != 0) {
		if (e.code == SB__RPC__CODE__INVALID_ARGUMENT)
			reg_cx_error(c, 404, 40403, "Schema not found");
		else
			reg_cx_fail(c, &e);
	} else {
		/* the same text, draft and references (by name and resolved version) */
		for (size_t i = 0; i < n && c->out == NULL; i++) {
			if (v[i].draft != draft || strcmp(v[i].schema, canon) != 0)
				continue;
			struct reg_ref *have = NULL;
			size_t nh = 0;
			if ((rc = reg_store_refs_of(c->pg, v[i].id, &have, &nh)) != 0) {
				reg_cx_store(c, rc);
				break;
			}
			bool same = nh == nrefs;
			for (size_t k = 0; same && k < nh; k++)
				same = have[k].id == refs[k].id &&
				       strcmp(have[k].name, refs[k].name) == 0;
			free(have);
			if (same)
				c->out = reg_cx_schema_obj(c, &v[i], true);
		}
		if (c->out == NULL && rc == 0)
			reg_cx_error(c, 404, 40403, "Schema not found");
	}
	reg_versions_free(v, n);
	free(refs);
	free(canon);
}

static void
reg_c_delete(struct reg_cx *c)
{
	int ver = 0;
	if (c->nseg == 4 && (!reg_cx_version(c->seg[3], &ver) || ver == -1)) {
		reg_cx_error(c, 422, 42202, "The specified version '%s' is not a valid version id.",
		             c->seg[3]);
		return;
	}
	json_t *deleted = NULL;
	int rc = sb_pg_begin(c->pg);
	if (rc == 0)
		rc = reg_store_delete(c->pg, c->tenant, c->seg[1], ver, &deleted);
	if (rc == 0 && json_array_size(deleted) > 0) {
		/* after the update, which waits for registrations that lock a version they refer
		 * to: a version that another one refers to stays (Confluent's 42206) */
		json_t *by = NULL;
		rc = reg_store_referenced_by(c->pg, c->tenant, c->seg[1], ver, true, &by);
		if (rc == 0 && json_array_size(by) > 0) {
			sb_pg_rollback(c->pg);
			char *ids = json_dumps(by, JSON_COMPACT);
			reg_cx_error(c, 422, 42206,
			             "One or more references exist to the schema {subject=%s, "
			             "version=%s}: referred to by schema id(s) %s",
			             c->seg[1], ver > 0 ? c->seg[3] : "any", ids ? ids : "?");
			free(ids);
			json_decref(by);
			json_decref(deleted);
			return;
		}
		json_decref(by);
	}
	if (rc == 0 && json_array_size(deleted) > 0) {
		char *d = json_dumps(deleted, JSON_COMPACT);
		char detail[700];
		snprintf(detail, sizeof(detail), "{\"versions\":%s}", d ? d : "[]");
		free(d);
		rc = reg_store_audit(c->pg, c->tenant, c->actor, "delete", c->seg[1], 0, detail);
	}
	if (rc == 0)
		rc = sb_pg_commit(c->pg);
	if (rc != 0) {
		sb_pg_rollback(c->pg);
		json_decref(deleted);
		reg_cx_store(c, rc);
		return;
	}
	if (json_array_size(deleted) == 0) {
		json_decref(deleted);
		if (ver > 0)
			reg_cx_error(c, 404, 40402, "Version %d not found.", ver);
		else
			reg_cx_error(c, 404, 40401, "Subject '%s' not found.", c->seg[1]);
		return;
	}
	sb_log_kv(SB_LOG_INFO, "subject versions deleted", "subject", c->seg[1], "actor", c->actor,
	          NULL);
	c->out = ver > 0 ? json_integer(ver) : deleted;
	if (ver > 0)
		json_decref(deleted);
}

static bool
reg_cx_by_id(struct reg_cx *c, struct reg_version *v)
{
	char *end;
	long long id = strtoll(c->seg[2], &end, 10);
	bool found = false;
	if (c->seg[2][0] == '\0' || *end != '\0' || id < 1) {
		reg_cx_error(c, 404, 40403, "Schema %s not found", c->seg[2]);
		return false;
	}
	int rc = reg_store_version_by_id(c->pg, c->tenant, id, false, v, &found);
	if (rc != 0) {
		reg_cx_store(c, rc);
		return false;
	}
	if (!found || v->deleted) {
		if (found)
			reg_version_clear(v);
		reg_cx_error(c, 404, 40403, "Schema %lld not found", id);
		return false;
	}
	return true;
}

static void
reg_c_by_id(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_by_id(c, &v))
		return;
	c->out = json_pack("{s:s,s:s}", "schemaType", "JSON", "schema", v.schema);
	reg_cx_add_refs(c, &v, c->out);
	reg_version_clear(&v);
}

static void
reg_c_by_id_schema(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_by_id(c, &v))
		return;
	c->out = json_loads(v.schema, JSON_DECODE_ANY, NULL);
	reg_version_clear(&v);
}

static void
reg_c_by_id_versions(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_by_id(c, &v))
		return;
	c->out = json_pack("[{s:s,s:i}]", "subject", v.subject, "version", v.version);
	reg_version_clear(&v);
}

static void
reg_c_by_id_subjects(struct reg_cx *c)
{
	struct reg_version v;
	if (!reg_cx_by_id(c, &v))
		return;
	c->out = json_pack("[s]", v.subject);
	reg_version_clear(&v);
}

static void
reg_c_types(struct reg_cx *c)
{
	c->out = json_pack("[s]", "JSON");
}

static void
reg_c_compat(struct reg_cx *c)
{
	int draft, ver = 0;
	bool all = c->nseg == 4;
	if (!all && !reg_cx_version(c->seg[4], &ver)) {
		reg_cx_error(c, 422, 42202, "The specified version '%s' is not a valid version id.",
		             c->seg[4]);
		return;
	}
	struct reg_ref *refs = NULL;
	size_t nrefs = 0;
	char *canon = reg_cx_schema(c, &draft, &refs, &nrefs);
	if (canon == NULL)
		return;
	struct reg_err e = { 0 };
	bool ok = true;
	if (ver == -1) {
		/* latest: the level's own rule (transitive levels check every version) */
		ver = 0;
	}
	if (reg_check_compat(c->pg, c->tenant, c->seg[2], canon, refs, nrefs, ver, all, &ok, &e) !=
	    0) {
		reg_cx_fail(c, &e);
	} else {
		c->out = json_pack("{s:b}", "is_compatible", ok);
		if (reg_cx_flag(c, "verbose")) {
			json_t *m = json_array();
			for (size_t i = 0; i < e.diffs.n; i++) {
				char line[400];
				snprintf(line, sizeof(line),
				         "{errorType:'%s', description:'at %s', "
				         "additionalInfo:''}",
				         e.diffs.v[i].type, e.diffs.v[i].path);
				json_array_append_new(m, json_string(line));
			}
			json_object_set_new(c->out, "messages", m);
		}
	}
	reg_diffs_free(&e.diffs);
	free(refs);
	free(canon);
}

static void
reg_c_get_config(struct reg_cx *c)
{
	char level[32];
	int rc;
	if (c->nseg == 1) {
		if ((rc = reg_store_global_compat(c->pg, c->tenant, level, sizeof(level))) != 0) {
			reg_cx_store(c, rc);
			return;
		}
	} else {
		bool exists, subject_set, prot;
		if ((rc = reg_store_subject_config(c->pg, c->tenant, c->seg[1], false, &exists,
		                                   level, sizeof(level), &subject_set, &prot)) !=
		    0) {
			reg_cx_store(c, rc);
			return;
		}
		if (!subject_set && !reg_cx_flag(c, "defaultToGlobal")) {
			reg_cx_error(
			    c, 404, 40408,
			    "Subject '%s' does not have subject-level compatibility configured",
			    c->seg[1]);
			return;
		}
	}
	c->out = json_pack("{s:s}", "compatibilityLevel", level);
}

static void
reg_c_put_config(struct reg_cx *c)
{
	json_t *b = json_loads(c->in->body ? c->in->body : "", JSON_REJECT_DUPLICATES, NULL);
	const char *level = json_string_value(json_object_get(b, "compatibility"));
	enum reg_compat_level lv;
	if (level == NULL || reg_compat_level_parse(level, &lv) != 0) {
		json_decref(b);
		reg_cx_error(c, 422, 42203,
		             "Invalid compatibility level. Valid values are none, "
		             "backward, forward, full, backward_transitive, "
		             "forward_transitive, and full_transitive");
		return;
	}
	const char *subject = c->nseg == 1 ? "" : c->seg[1];
	char detail[96];
	snprintf(detail, sizeof(detail), "{\"compatibility\":\"%s\"}", level);
	int rc = sb_pg_begin(c->pg);
	if (rc == 0)
		rc = c->nseg == 1 ? reg_store_set_global_compat(c->pg, c->tenant, level)
		                  : reg_store_set_subject(c->pg, c->tenant, subject, level, -1);
	if (rc == 0)
		rc = reg_store_audit(c->pg, c->tenant, c->actor, "config", subject, 0, detail);
	if (rc == 0)
		rc = sb_pg_commit(c->pg);
	if (rc != 0) {
		sb_pg_rollback(c->pg);
		json_decref(b);
		{
			reg_cx_store(c, rc);
			return;
		}
	}
	sb_log_kv(SB_LOG_INFO, "compatibility configured", "subject", subject[0] ? subject : "*",
	          "level", level, "actor", c->actor, NULL);
	c->out = json_pack("{s:s}", "compatibility", level);
	json_decref(b);
}

static void
reg_c_delete_config(struct reg_cx *c)
{
	char level[32];
	bool found = false, exists, subject_set, prot;
	int rc = reg_store_subject_config(c->pg, c->tenant, c->seg[1], false, &exists, level,
	                                  sizeof(level), &subject_set, &prot);
	if (rc == 0 && subject_set)
		rc = reg_store_clear_subject_compat(c->pg, c->tenant, c->seg[1], &found);
	if (rc != 0) {
		reg_cx_store(c, rc);
		return;
	}
	if (!subject_set) {
		reg_cx_error(c, 404, 40401, "Subject '%s' not found.", c->seg[1]);
		return;
	}
	reg_store_audit(c->pg, c->tenant, c->actor, "config", c->seg[1], 0,
	                "{\"compatibility\":null}");
	c->out = json_pack("{s:s}", "compatibilityLevel", level);
}

static const struct reg_croute reg_croutes[] = {
	{ "GET", "/", "registry:read", reg_c_root },
	{ "GET", "/subjects", "registry:read", reg_c_subjects },
	{ "GET", "/subjects/{}/versions", "registry:read", reg_c_versions },
	{ "POST", "/subjects/{}/versions", "registry:write", reg_c_register },
	{ "GET", "/subjects/{}/versions/{}", "registry:read", reg_c_version },
	{ "GET", "/subjects/{}/versions/{}/schema", "registry:read", reg_c_version_schema },
	{ "GET", "/subjects/{}/versions/{}/referencedby", "registry:read", reg_c_referenced_by },
	{ "POST", "/subjects/{}", "registry:read", reg_c_lookup },
	{ "DELETE", "/subjects/{}", "registry:admin", reg_c_delete },
	{ "DELETE", "/subjects/{}/versions/{}", "registry:admin", reg_c_delete },
	{ "GET", "/schemas/types", "registry:read", reg_c_types },
	{ "GET", "/schemas/ids/{}", "registry:read", reg_c_by_id },
	{ "GET", "/schemas/ids/{}/schema", "registry:read", reg_c_by_id_schema },
	{ "GET", "/schemas/ids/{}/versions", "registry:read", reg_c_by_id_versions },
	{ "GET", "/schemas/ids/{}/subjects", "registry:read", reg_c_by_id_subjects },
	{ "POST", "/compatibility/subjects/{}/versions/{}", "registry:read", reg_c_compat },
	{ "POST", "/compatibility/subjects/{}/versions", "registry:read", reg_c_compat },
	{ "GET", "/config", "registry:read", reg_c_get_config },
	{ "PUT", "/config", "registry:admin", reg_c_put_config },
	{ "GET", "/config/{}", "registry:read", reg_c_get_config },
	{ "PUT", "/config/{}", "registry:admin", reg_c_put_config },
	{ "DELETE", "/config/{}", "registry:admin", reg_c_delete_config },
	{ NULL, NULL, NULL, NULL },
};

/* reg_cx_split cuts path into decoded segments. Returns false for a path that cannot be
 * ours (too many or too long segments, a bad escape). */
static bool
reg_cx_split(struct reg_cx *c, const char *path)
{
	c->nseg = 0;
	if (strcmp(path, "/") == 0)
		return true;
	const char *p = path;
	while (*p == '/') {
		p++;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (c->nseg == REG_MAX_SEGS || len == 0 ||
		    sb_pct_decode(p, len, 0, c->seg[c->nseg], sizeof(c->seg[0]), NULL) != 0)
			return false;
		c->nseg++;
		p += len;
	}
	return *p == '\0';
}

static bool
reg_cx_match(const struct reg_cx *c, const char *pattern)
{
	if (strcmp(pattern, "/") == 0)
		return c->nseg == 0;
	size_t i = 0;
	const char *p = pattern;
	while (*p == '/') {
		p++;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i == c->nseg)
			return false;
		if (!(len == 2 && p[0] == '{' && p[1] == '}') &&
		    (strlen(c->seg[i]) != len || strncmp(c->seg[i], p, len) != 0))
			return false;
		i++;
		p += len;
	}
	return i == c->nseg;
}

int
reg_rpc_http(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__HttpRequest *in = req;
	Sb__Registry__HttpResponse *out = resp;
	struct reg_cx *c = sb_rpc_call_alloc(call, sizeof(*c));
	if (c == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	c->call = call;
	c->st = sb_service_state(sb_service_from_call(call));
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	c->pg = w ? w->pg : NULL;
	c->in = in;
	c->status = 200;
	const char *method = in->method ? in->method : "";
	bool known = reg_cx_split(c, in->path ? in->path : "");
	const struct reg_croute *route = NULL;
	bool path_known = false;
	for (const struct reg_croute *r = reg_croutes; known && r->method != NULL; r++) {
		if (!reg_cx_match(c, r->pattern))
			continue;
		path_known = true;
		if (strcmp(r->method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			route = r;
			break;
		}
	}
	if (route == NULL) {
		if (path_known)
			reg_cx_error(c, 405, 405, "HTTP %s is not allowed on %s", method, in->path);
		else
			reg_cx_error(c, 404, 404, "HTTP 404 Not Found");
	} else {
		struct sb_jwt_principal p;
		const char *why = NULL;
		if (reg_http_principal(c->st, in->authorization, &p, &why) != 0) {
			reg_cx_error(c, 401, 40101, "%s", why);
		} else if (c->st->jwt != NULL &&
		           (p.tenant_id[0] == '\0' || strlen(p.tenant_id) > REG_TENANT_MAX)) {
			reg_cx_error(c, 401, 40101, "the access token names no tenant");
		} else if (c->st->jwt != NULL && !sb_jwt_has_scope(&p, route->scope) &&
		           !sb_jwt_has_scope(&p, "registry:admin")) {
			reg_cx_error(c, 403, 40301, "scope %s required", route->scope);
		} else {
			snprintf(c->actor, sizeof(c->actor), "%s:%s", p.client_id, p.user_id);
			/* every subject, id and level below is the caller's tenant's */
			snprintf(c->tenant, sizeof(c->tenant), "%s",
			         c->st->jwt != NULL ? p.tenant_id : REG_TENANT_DEFAULT);
			route->fn(c);
		}
	}
	char *s = c->out ? json_dumps(c->out, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(c->out);
	if (s == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	out->status = c->status;
	out->body = sb_rpc_call_strdup(call, s);
	free(s);
	return out->body ? SB__RPC__CODE__OK
	                 : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
}
