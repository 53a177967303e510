/* core.c: the registry's operations, shared by both APIs: parse a schema, register a version
 * (compatibility, approval workflow, audit), move a version's state, check compatibility,
 * validate a document. */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"
#include "sb_util_hex.h"

int
reg_err_set(struct reg_err *e, int code, int confluent, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->code = code;
	e->confluent = confluent;
	return code;
}

int
reg_err_store(struct reg_err *e, struct sb_pg *pg, int rv)
{
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT)
		return reg_err_set(e, SB__RPC__CODE__UNAVAILABLE, 50003, "database unavailable");
	sb_log_kv(SB_LOG_ERROR, "registry store failed", "error", pg ? sb_pg_errmsg(pg) : "",
	          "code", sb_strerror(rv), NULL);
	return reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "registry store failed");
}

void
reg_actor(const Sb__Rpc__Principal *p, char *out, size_t n)
{
	if (p == NULL || ((p->client_id == NULL || !p->client_id[0]) &&
	                  (p->user_id == NULL || !p->user_id[0]))) {
		snprintf(out, n, "anonymous");
		return;
	}
	snprintf(out, n, "%s:%s", p->client_id ? p->client_id : "", p->user_id ? p->user_id : "");
}

/* reg_depth tells whether v nests deeper than max (arrays and objects). */
static bool
reg_too_deep(const json_t *v, int max)
{
	if (max < 0)
		return true;
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) if (reg_too_deep(x, max - 1)) return true;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) if (reg_too_deep(x, max - 1)) return true;
	}
	return false;
}

int
reg_schema_parse(const char *text, size_t len, int draft, bool compile, char **canon,
                 struct reg_err *e)
{
	*canon = NULL;
	if (draft != 4 && draft != 7)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "draft must be 4 or 7 (draft 2020-12 is not supported)");
	if (len > REG_SCHEMA_MAX)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "the schema is larger than %u bytes", REG_SCHEMA_MAX);
	json_error_t je;
	json_t *s = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (s == NULL)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "the schema is not JSON: %s", je.text);
	if (!json_is_object(s) && !json_is_boolean(s)) {
		json_decref(s);
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "a schema is a JSON object or a boolean");
	}
	if (reg_too_deep(s, REG_SCHEMA_DEPTH)) {
		json_decref(s);
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "the schema nests deeper than %d levels", REG_SCHEMA_DEPTH);
	}
	char *c = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(s);
	if (c == NULL)
		return reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "out of memory");
	if (!compile) {
		*canon = c;
		return 0;
	}
	struct reg_jsv *v = NULL;
	char why[256];
	int rc = reg_jsv_compile(c, strlen(c), (enum reg_jsv_draft)draft, NULL, NULL, &v, why,
	                         sizeof(why));
	if (rc != 0) {
		free(c);
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "the schema is not a valid draft %d JSON Schema: %s", draft,
		                   why);
	}
	reg_jsv_free(v);
	*canon = c;
	return 0;
}

static int
reg_fingerprint(const char *schema, int draft, const struct reg_ref *refs, size_t nrefs,
                char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char d[8];
	snprintf(d, sizeof(d), "%d:", draft);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, d, strlen(d)) != 1 ||
	    EVP_DigestUpdate(ctx, schema, strlen(schema)) != 1) {
		EVP_MD_CTX_free(ctx);
		return SB_ENOMEM;
	}
	/* references make another schema of the same text (none: the fingerprint of before) */
	for (size_t i = 0; i < nrefs; i++) {
		char rid[48];
		snprintf(rid, sizeof(rid), "\n%lld\n", (long long)refs[i].id);
		if (EVP_DigestUpdate(ctx, rid, strlen(rid)) != 1 ||
		    EVP_DigestUpdate(ctx, refs[i].name, strlen(refs[i].name)) != 1) {
			EVP_MD_CTX_free(ctx);
			return SB_ENOMEM;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		EVP_MD_CTX_free(ctx);
		return SB_ENOMEM;
	}
	EVP_MD_CTX_free(ctx);
	sb_hex_encode(md, 32, out);
	out[64] = '\0';
	return 0;
}

/* reg_history loads the versions compatibility is checked against: active and deprecated,
 * not deleted, oldest first, parsed. */
static int
reg_history(struct sb_pg *pg, const char *tenant, const char *subject, json_t ***out, size_t *n)
{
	struct reg_version *v = NULL;
	size_t nv = 0;
	*out = NULL;
	*n = 0;
	int rc = reg_store_versions(pg, tenant, subject, "active,deprecated", false, &v, &nv);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < nv; i++) {
		struct reg_err e = { 0 };
		char *b = NULL;
		/* a version with references is compared as its bundle */
		if ((rc = reg_version_bundle(pg, tenant, &v[i], &b, &e)) != 0) {
			reg_versions_free(v, nv);
			return e.code == SB__RPC__CODE__UNAVAILABLE ? SB_EUNAVAIL : SB_EIO;
		}
		if (b != NULL) {
			free(v[i].schema);
			v[i].schema = b;
		}
	}
	json_t **h = calloc(nv ? nv : 1, sizeof(*h));
	if (h == NULL) {
		reg_versions_free(v, nv);
		return SB_ENOMEM;
	}
	for (size_t i = 0; i < nv; i++) {
		h[i] = json_loads(v[i].schema, JSON_DECODE_ANY, NULL);
		if (h[i] == NULL)
			h[i] = json_true();
	}
	reg_versions_free(v, nv);
	*out = h;
	*n = nv;
	return 0;
}

static void
reg_history_free(json_t **h, size_t n)
{
	for (size_t i = 0; h != NULL && i < n; i++)
		json_decref(h[i]);
	free(h);
}

static char *
reg_diffs_detail(const struct reg_diffs *d, const char *level)
{
	json_t *o = json_pack("{s:s,s:[]}", "compatibility", level, "incompatibilities");
	json_t *arr = json_object_get(o, "incompatibilities");
	for (size_t i = 0; arr != NULL && i < d->n && i < 50; i++)
		json_array_append_new(
		    arr, json_pack("{s:s,s:s}", "type", d->v[i].type, "path", d->v[i].path));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* --- references: bundling ------------------------------------------------------------- */

/* A schema with references is validated and compared as its bundle: the schema itself, with
 * every referenced version (and theirs, transitively) under the reserved root key "$sbrefs",
 * keyed by version id, and every "$ref" that names a reference ("address.json",
 * "address.json#/definitions/x") rewritten to the local pointer "#/$sbrefs/<id>..."; local
 * "#..." refs inside a referenced schema are rewritten to stay within it. The bundle needs no
 * fetching, so the validator and compat.c, which follow local refs only, work on it as is. */

struct reg_bundle {
	struct sb_pg *pg;
	const char *tenant;
	json_t *defs; /* id -> schema */
	struct reg_err *e;
};

static int
reg_rewrite_e(json_t *s, const char *prefix, const struct reg_ref *refs, size_t n,
              struct reg_err *e)
{
	char why[300];
	if (reg_refs_rewrite(s, prefix, refs, n, why, sizeof(why)) == 0)
		return 0;
	reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201, "%s", why);
	return -1;
}

static int
reg_bundle_add(struct reg_bundle *b, int64_t id, int depth)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)id);
	if (json_object_get(b->defs, key) != NULL)
		return 0;
	if (depth > REG_REFS_DEPTH) {
		reg_err_set(b->e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		            "references nest deeper than %d", REG_REFS_DEPTH);
		return -1;
	}
	struct reg_version v;
	bool found = false;
	struct reg_ref *refs = NULL;
	size_t n = 0;
	int rc = reg_store_version_by_id(b->pg, b->tenant, id, false, &v, &found);
	if (rc == 0 && found)
		rc = reg_store_refs_of(b->pg, id, &refs, &n);
	if (rc != 0) {
		if (found)
			reg_version_clear(&v);
		reg_err_store(b->e, b->pg, rc);
		return -1;
	}
	if (!found) {
		reg_err_set(b->e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		            "referenced schema %lld not found", (long long)id);
		return -1;
	}
	json_t *s = json_loads(v.schema, JSON_DECODE_ANY, NULL);
	reg_version_clear(&v);
	char prefix[48];
	snprintf(prefix, sizeof(prefix), "/" REG_BUNDLE_KEY "/%lld", (long long)id);
	/* placed before its own references are added: a cycle ends here */
	int out = s != NULL && json_object_set(b->defs, key, s) == 0 ? 0 : -1;
	if (out != 0)
		reg_err_set(b->e, SB__RPC__CODE__INTERNAL, 50001, "out of memory");
	else
		out = reg_rewrite_e(s, prefix, refs, n, b->e);
	for (size_t i = 0; out == 0 && i < n; i++)
		out = reg_bundle_add(b, refs[i].id, depth + 1);
	json_decref(s);
	free(refs);
	return out;
}

int
reg_bundle(struct sb_pg *pg, const char *tenant, const char *schema, const struct reg_ref *refs,
           size_t n, char **out, struct reg_err *e)
{
	*out = NULL;
	json_t *root = json_loads(schema, JSON_DECODE_ANY, NULL);
	if (root == NULL)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201, "bad schema");
	struct reg_bundle b = { pg, tenant, json_object(), e };
	int rc = 0;
	if (json_is_object(root) && json_object_get(root, REG_BUNDLE_KEY) != NULL)
		rc = reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                 "\"" REG_BUNDLE_KEY "\" is reserved in a schema with references");
	else if (reg_rewrite_e(root, "", refs, n, e) != 0)
		rc = e->code;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (reg_bundle_add(&b, refs[i].id, 1) != 0)
			rc = e->code;
	if (rc == 0 && json_is_object(root))
		json_object_set(root, REG_BUNDLE_KEY, b.defs);
	if (rc == 0 &&
	    (*out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)) == NULL)
		rc = reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "out of memory");
	json_decref(b.defs);
	json_decref(root);
	return rc;
}

int
reg_version_bundle(struct sb_pg *pg, const char *tenant, const struct reg_version *v, char **out,
                   struct reg_err *e)
{
	struct reg_ref *refs = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = reg_store_refs_of(pg, v->id, &refs, &n);
	if (rc != 0)
		return reg_err_store(e, pg, rc);
	rc = n > 0 ? reg_bundle(pg, tenant, v->schema, refs, n, out, e) : 0;
	free(refs);
	return rc;
}

int
reg_refs_resolve(struct sb_pg *pg, const char *tenant, struct reg_ref *refs, size_t n, bool share,
                 struct reg_err *e)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(refs[i].name, refs[j].name) == 0)
				return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
				                   "reference name \"%s\" given twice",
				                   refs[i].name);
		struct reg_version v;
		bool found = false;
		int rc = reg_store_version_by_number(pg, tenant, refs[i].subject, refs[i].version,
		                                     share, &v, &found);
		if (rc != 0)
			return reg_err_store(e, pg, rc);
		if (!found)
			return reg_err_set(
			    e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
			    "Invalid schema: reference \"%s\": subject \"%s\" version %d "
			    "not found",
			    refs[i].name, refs[i].subject, refs[i].version);
		refs[i].id = v.id;
		refs[i].version = v.version;
		reg_version_clear(&v);
	}
	return 0;
}

/* reg_compile_check compiles text as a schema of draft (a bundle: its references resolved). */
static int
reg_compile_check(const char *text, int draft, struct reg_err *e)
{
	struct reg_jsv *v = NULL;
	char why[256];
	if (reg_jsv_compile(text, strlen(text), (enum reg_jsv_draft)draft, NULL, NULL, &v, why,
	                    sizeof(why)) != 0)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201,
		                   "the schema is not a valid draft %d JSON Schema: %s", draft,
		                   why);
	reg_jsv_free(v);
	return 0;
}

/* --- operations ------------------------------------------------------------------------- */

int
reg_register(struct sb_pg *pg, const char *tenant, const char *subject, const char *schema,
             int draft, struct reg_ref *refs, size_t nrefs, const char *actor,
             struct reg_version *out, bool *created, struct reg_err *e)
{
	char fp[65], level[32];
	bool exists, subject_set, prot;
	int rc;
	*created = false;
	memset(out, 0, sizeof(*out));
	json_t *sj = NULL;
	char *bundled = NULL;
	json_t **hist = NULL;
	size_t nh = 0;
	if ((rc = sb_pg_begin(pg)) != 0)
		goto store;
	/* references resolved in the caller's tenant and locked against deletion until commit */
	if (nrefs > 0) {
		if (reg_refs_resolve(pg, tenant, refs, nrefs, true, e) != 0 ||
		    reg_bundle(pg, tenant, schema, refs, nrefs, &bundled, e) != 0 ||
		    reg_compile_check(bundled, draft, e) != 0) {
			sb_pg_rollback(pg);
			free(bundled);
			return e->code;
		}
	}
	if (reg_fingerprint(schema, draft, refs, nrefs, fp) != 0) {
		sb_pg_rollback(pg);
		free(bundled);
		return reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "cannot hash the schema");
	}
	sj = json_loads(bundled ? bundled : schema, JSON_DECODE_ANY, NULL);
	free(bundled);
	if (sj == NULL) {
		sb_pg_rollback(pg);
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201, "bad schema");
	}
	/* the subject's row, locked: registrations of one subject are serialized */
	if ((rc = reg_store_set_subject(pg, tenant, subject, NULL, -1)) != 0 ||
	    (rc = reg_store_subject_config(pg, tenant, subject, true, &exists, level, sizeof(level),
	                                   &subject_set, &prot)) != 0)
		goto store;
	bool found = false;
	if ((rc = reg_store_find_fingerprint(pg, tenant, subject, fp, out, &found)) != 0)
		goto store;
	if (found) {
		/* the same schema again: its version, nothing written */
		sb_pg_rollback(pg);
		json_decref(sj);
		return 0;
	}
	if ((rc = reg_history(pg, tenant, subject, &hist, &nh)) != 0)
		goto store;
	enum reg_compat_level lv = REG_COMPAT_BACKWARD;
	reg_compat_level_parse(level, &lv);
	bool ok = true;
	if ((rc = reg_compat_check(lv, sj, (const json_t *const *)hist, nh, &ok, &e->diffs)) != 0)
		goto store;
	if (!ok && !prot) {
		sb_pg_rollback(pg);
		reg_history_free(hist, nh);
		json_decref(sj);
		sb_log_kv(SB_LOG_INFO, "schema refused: incompatible", "subject", subject, "level",
		          level, "actor", actor, NULL);
		return reg_err_set(
		    e, SB__RPC__CODE__ABORTED, 409,
		    "Schema being registered is incompatible with an earlier schema "
		    "for subject \"%s\" (%s): %zu incompatible change(s), first %s at %s",
		    subject, level, e->diffs.n, e->diffs.v[0].type, e->diffs.v[0].path);
	}
	const char *state = ok ? "active" : "pending";
	if ((rc = reg_store_insert_version(pg, tenant, subject, draft, schema, fp, state, actor,
	                                   out)) != 0 ||
	    (rc = reg_store_refs_insert(pg, out->id, refs, nrefs)) != 0)
		goto store;
	char *detail = reg_diffs_detail(&e->diffs, level);
	rc = reg_store_audit(pg, tenant, actor, ok ? "register" : "pending", subject, out->id,
	                     detail);
	free(detail);
	if (rc != 0 || (rc = sb_pg_commit(pg)) != 0)
		goto store;
	*created = true;
	reg_history_free(hist, nh);
	json_decref(sj);
	char ids[24], vs[16];
	snprintf(ids, sizeof(ids), "%lld", (long long)out->id);
	snprintf(vs, sizeof(vs), "%d", out->version);
	sb_log_kv(SB_LOG_INFO, ok ? "schema registered" : "schema pending approval", "subject",
	          subject, "version", vs, "id", ids, "actor", actor, NULL);
	return 0;
store:
	sb_pg_rollback(pg);
	reg_history_free(hist, nh);
	json_decref(sj);
	reg_version_clear(out);
	return reg_err_store(e, pg, rc);
}

int
reg_set_state(struct sb_pg *pg, const char *tenant, int64_t id, const char *state,
              const char *actor, struct reg_version *out, struct reg_err *e)
{
	bool found = false;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = sb_pg_begin(pg)) != 0 ||
	    (rc = reg_store_version_by_id(pg, tenant, id, true, out, &found)) != 0)
		goto store;
	if (!found || out->deleted) {
		sb_pg_rollback(pg);
		reg_version_clear(out);
		return reg_err_set(e, SB__RPC__CODE__NOT_FOUND, 40403, "schema %lld not found",
		                   (long long)id);
	}
	bool approve = strcmp(state, "active") == 0;
	bool allowed =
	    approve ? strcmp(out->state, "pending") == 0 : strcmp(out->state, "deprecated") != 0;
	if (!allowed) {
		sb_pg_rollback(pg);
		reg_err_set(e, SB__RPC__CODE__FAILED_PRECONDITION, 40901,
		            "schema %lld is %s: only %s versions can be %s", (long long)id,
		            out->state, approve ? "pending" : "active or pending",
		            approve ? "approved" : "deprecated");
		reg_version_clear(out);
		return e->code;
	}
	char detail[96];
	snprintf(detail, sizeof(detail), "{\"from\":\"%s\",\"to\":\"%s\"}", out->state, state);
	if ((rc = reg_store_update_state(pg, id, state)) != 0 ||
	    (rc = reg_store_audit(pg, tenant, actor, approve ? "approve" : "deprecate",
	                          out->subject, id, detail)) != 0 ||
	    (rc = sb_pg_commit(pg)) != 0)
		goto store;
	snprintf(out->state, sizeof(out->state), "%s", state);
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	sb_log_kv(SB_LOG_INFO, approve ? "schema approved" : "schema deprecated", "id", ids,
	          "subject", out->subject, "actor", actor, NULL);
	return 0;
store:
	sb_pg_rollback(pg);
	reg_version_clear(out);
	return reg_err_store(e, pg, rc);
}

int
reg_check_compat(struct sb_pg *pg, const char *tenant, const char *subject, const char *schema,
                 struct reg_ref *refs, size_t nrefs, int against, bool all, bool *ok,
                 struct reg_err *e)
{
	char level[32];
	bool exists, subject_set, prot;
	int rc = reg_store_subject_config(pg, tenant, subject, false, &exists, level, sizeof(level),
	                                  &subject_set, &prot);
	if (rc != 0)
		return reg_err_store(e, pg, rc);
	char *bundled = NULL;
	if (nrefs > 0 && (reg_refs_resolve(pg, tenant, refs, nrefs, false, e) != 0 ||
	                  reg_bundle(pg, tenant, schema, refs, nrefs, &bundled, e) != 0)) {
		free(bundled);
		return e->code;
	}
	json_t *sj = json_loads(bundled ? bundled : schema, JSON_DECODE_ANY, NULL);
	free(bundled);
	json_t **hist = NULL;
	size_t nh = 0;
	if (sj == NULL)
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42201, "bad schema");
	if ((rc = reg_history(pg, tenant, subject, &hist, &nh)) != 0) {
		json_decref(sj);
		return reg_err_store(e, pg, rc);
	}
	enum reg_compat_level lv = REG_COMPAT_BACKWARD;
	reg_compat_level_parse(level, &lv);
	if (against > 0) {
		/* one version: compared with it alone, at the level's direction */
		struct reg_version v;
		bool found = false;
		reg_history_free(hist, nh);
		hist = NULL;
		nh = 0;
		if ((rc = reg_store_version_by_number(pg, tenant, subject, against, false, &v,
		                                      &found)) != 0) {
			json_decref(sj);
			return reg_err_store(e, pg, rc);
		}
		if (!found) {
			json_decref(sj);
			return reg_err_set(e, SB__RPC__CODE__NOT_FOUND, 40402,
			                   "version %d not found", against);
		}
		char *vb = NULL;
		if (reg_version_bundle(pg, tenant, &v, &vb, e) != 0) {
			reg_version_clear(&v);
			json_decref(sj);
			return e->code;
		}
		hist = calloc(1, sizeof(*hist));
		if (hist != NULL)
			hist[0] = json_loads(vb ? vb : v.schema, JSON_DECODE_ANY, NULL);
		nh = hist != NULL && hist[0] != NULL;
		free(vb);
		reg_version_clear(&v);
	}
	if (all && lv == REG_COMPAT_BACKWARD)
		lv = REG_COMPAT_BACKWARD_TRANSITIVE;
	else if (all && lv == REG_COMPAT_FORWARD)
		lv = REG_COMPAT_FORWARD_TRANSITIVE;
	else if (all && lv == REG_COMPAT_FULL)
		lv = REG_COMPAT_FULL_TRANSITIVE;
	rc = reg_compat_check(lv, sj, (const json_t *const *)hist, nh, ok, &e->diffs);
	reg_history_free(hist, nh);
	json_decref(sj);
	return rc == 0 ? 0 : reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "out of memory");
}

int
reg_validate(struct reg_state *st, struct sb_pg *pg, const char *tenant, int64_t id,
             const char *doc, size_t len, bool *valid, struct reg_jsv_error *errs, size_t max,
             size_t *nerrs, struct reg_version *v, struct reg_err *e)
{
	bool found = false;
	int rc = reg_store_version_by_id(pg, tenant, id, false, v, &found);
	if (rc != 0)
		return reg_err_store(e, pg, rc);
	if (!found || v->deleted) {
		if (found)
			reg_version_clear(v);
		return reg_err_set(e, SB__RPC__CODE__NOT_FOUND, 40403, "schema %lld not found",
		                   (long long)id);
	}
	struct reg_jsv *owned = NULL;
	const struct reg_jsv *js = reg_cache_peek(st->cache, v->id);
	if (js == NULL) {
		/* not compiled yet: a version with references compiles as its bundle (which never
		 * changes either: a referenced version is never deleted while referred to) */
		char *b = NULL;
		if (reg_version_bundle(pg, tenant, v, &b, e) != 0) {
			reg_version_clear(v);
			return e->code;
		}
		if (b != NULL) {
			free(v->schema);
			v->schema = b;
		}
		js = reg_cache_get(st->cache, v, &owned);
	}
	if (js == NULL) {
		reg_version_clear(v);
		return reg_err_set(e, SB__RPC__CODE__INTERNAL, 50001, "schema cannot be compiled");
	}
	rc = reg_jsv_validate(js, doc, len, errs, max, nerrs);
	reg_jsv_free(owned);
	if (rc < 0) {
		reg_version_clear(v);
		return reg_err_set(e, SB__RPC__CODE__INVALID_ARGUMENT, 42203,
		                   "the document is not JSON: %s",
		                   max > 0 ? errs[0].message : "parse error");
	}
	*valid = rc == 0;
	return 0;
}

int
reg_version_json(const struct reg_version *v, json_t **out)
{
	json_t *schema = json_loads(v->schema, JSON_DECODE_ANY, NULL);
	*out = json_pack("{s:I,s:s,s:i,s:i,s:s,s:s,s:o}", "id", (json_int_t)v->id, "subject",
	                 v->subject, "version", v->version, "draft", v->draft, "state", v->state,
	                 "created_at", v->created_at, "schema", schema ? schema : json_null());
	return *out != NULL ? 0 : SB_ENOMEM;
}
