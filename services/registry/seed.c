/* seed.c: the seed API's RPCs (gateway routes /api/v1/schemas..., routes_registry.c). Bodies
 * arrive verbatim (field body), answers are JSON documents (RawJson). */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"

/* reg_reply puts the JSON document o (consumed) into the RawJson answer. */
static int
reg_reply(struct sb_rpc_call *call, void *resp, json_t *o)
{
	Sb__Rpc__RawJson *out = resp;
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(o);
	if (s == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	out->json = sb_rpc_call_strdup(call, s);
	free(s);
	return out->json ? SB__RPC__CODE__OK
	                 : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
}

/* reg_fail answers e: its message, and each incompatibility as a violation. */
static int
reg_fail(struct sb_rpc_call *call, struct reg_err *e)
{
	for (size_t i = 0; i < e->diffs.n && i < 50; i++)
		sb_rpc_call_violation(call, e->diffs.v[i].path, e->diffs.v[i].type);
	reg_diffs_free(&e->diffs);
	if (e->code == SB__RPC__CODE__UNAVAILABLE)
		sb_rpc_call_retry_after(call, 1000);
	if (e->code == SB__RPC__CODE__INVALID_ARGUMENT)
		sb_log_kv(SB_LOG_INFO, "registry request refused", "method",
		          sb_rpc_call_method(call), "reason", e->message, NULL);
	return sb_rpc_call_error(call, e->code, "%s", e->message);
}

static struct sb_pg *
reg_pg(struct sb_rpc_call *call)
{
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	return w != NULL ? w->pg : NULL;
}

static struct reg_state *
reg_st(struct sb_rpc_call *call)
{
	return sb_service_state(sb_service_from_call(call));
}

static int
reg_invalid(struct sb_rpc_call *call, const char *field, const char *reason)
{
	sb_rpc_call_violation(call, field, reason);
	sb_log_kv(SB_LOG_INFO, "registry request refused", "method", sb_rpc_call_method(call),
	          "field", field, "reason", reason, NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "%s: %s", field, reason);
}

/* reg_subject_ok tells whether s is a usable subject name: 1 to REG_SUBJECT_MAX bytes of
 * UTF-8 (jansson checked) without control characters. */
static bool
reg_subject_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > REG_SUBJECT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* reg_tenant is the caller's tenant: the principal's (the gateway sets it from the token);
 * REG_TENANT_DEFAULT when tokens are not checked (SB_REGISTRY_AUTH_ENABLED=false) and the
 * caller names none. NULL (answered 401 by the caller) otherwise: a registry without a
 * tenant to scope it to answers nothing. */
static const char *
reg_tenant(struct sb_rpc_call *call)
{
	const Sb__Rpc__Principal *p = sb_rpc_call_principal(call);
	if (p != NULL && p->tenant_id != NULL && p->tenant_id[0] != '\0' &&
	    strlen(p->tenant_id) <= REG_TENANT_MAX)
		return p->tenant_id;
	struct reg_state *st = reg_st(call);
	if (st != NULL && !st->cfg->auth_enabled)
		return REG_TENANT_DEFAULT;
	return NULL;
}

static int
reg_no_tenant(struct sb_rpc_call *call)
{
	sb_log_kv(SB_LOG_INFO, "registry request refused", "method", sb_rpc_call_method(call),
	          "reason", "the caller has no tenant", NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED,
	                         "the caller's token names no tenant");
}

static bool
reg_has_scope(struct sb_rpc_call *call, const char *scope)
{
	const Sb__Rpc__Principal *p = sb_rpc_call_principal(call);
	if (p == NULL)
		return true; /* a service calling (no end user): trusted inside the mesh */
	for (size_t i = 0; i < p->n_scopes; i++)
		if (strcmp(p->scopes[i], scope) == 0)
			return true;
	return false;
}

int
reg_rpc_create(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__CreateSchemaRequest *in = req;
	struct reg_err e = { 0 };
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	json_error_t je;
	json_t *body = json_loads(in->body ? in->body : "", JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(body)) {
		json_decref(body);
		return reg_invalid(call, "", "the body must be a JSON object");
	}
	const char *subject = json_string_value(json_object_get(body, "subject"));
	json_t *schema = json_object_get(body, "schema");
	json_t *draftv = json_object_get(body, "draft");
	int draft = draftv ? (int)json_integer_value(draftv) : 7;
	struct reg_ref *refs = NULL;
	size_t nrefs = 0;
	int rc;
	char why[300];
	if (reg_refs_parse(json_object_get(body, "references"), &refs, &nrefs, why, sizeof(why)) !=
	    0)
		rc = reg_invalid(call, "references", why);
	else if (!reg_subject_ok(subject))
		rc = reg_invalid(call, "subject",
		                 "required: 1 to 255 bytes of UTF-8 without control characters");
	else if (!json_is_object(schema) && !json_is_boolean(schema) && !json_is_string(schema))
		rc = reg_invalid(call, "schema",
		                 "required: a JSON Schema (an object or a boolean, or its text)");
	else if (draftv != NULL && (!json_is_integer(draftv) || (draft != 4 && draft != 7)))
		rc = reg_invalid(call, "draft", "must be 4 or 7");
	else {
		char *text = json_is_string(schema)
		                 ? strdup(json_string_value(schema))
		                 : json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
		char *canon = NULL;
		struct reg_version v;
		bool created = false;
		char actor[600];
		reg_actor(sb_rpc_call_principal(call), actor, sizeof(actor));
		if (text == NULL) {
			rc = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		} else if (reg_schema_parse(text, strlen(text), draft, nrefs == 0, &canon, &e) !=
		           0) {
			reg_count_register(reg_st(call), REG_M_INVALID);
			rc = reg_invalid(call, "schema", e.message);
		} else if (reg_register(reg_pg(call), tenant, subject, canon, draft, refs, nrefs,
		                        actor, &v, &created, &e) != 0) {
			if (e.code == SB__RPC__CODE__ABORTED)
				reg_count_register(reg_st(call), REG_M_INCOMPATIBLE);
			rc = e.code == SB__RPC__CODE__INVALID_ARGUMENT
			         ? reg_invalid(call, nrefs > 0 ? "references" : "schema", e.message)
			         : reg_fail(call, &e);
		} else {
			json_t *o = NULL;
			reg_version_json(&v, &o);
			bool pending = strcmp(v.state, "pending") == 0;
			json_object_set_new(o, "created", json_boolean(created));
			if (pending) {
				json_object_set_new(o, "approval_required", json_true());
				json_t *inc = json_array();
				for (size_t i = 0; i < e.diffs.n; i++)
					json_array_append_new(
					    inc, json_pack("{s:s,s:s}", "type", e.diffs.v[i].type,
					                   "path", e.diffs.v[i].path));
				json_object_set_new(o, "incompatibilities", inc);
			}
			sb_rpc_call_set_http_status(call, !created ? 200 : pending ? 202 : 201);
			reg_count_register(reg_st(call), !created  ? REG_M_EXISTING
			                                 : pending ? REG_M_PENDING
			                                           : REG_M_CREATED);
			reg_version_clear(&v);
			rc = reg_reply(call, resp, o);
		}
		free(text);
		free(canon);
	}
	reg_diffs_free(&e.diffs);
	free(refs);
	json_decref(body);
	return rc;
}

int
reg_rpc_list(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__ListSchemasRequest *in = req;
	struct reg_err e = { 0 };
	if (in->state && in->state[0] && strcmp(in->state, "active") != 0 &&
	    strcmp(in->state, "pending") != 0 && strcmp(in->state, "deprecated") != 0)
		return reg_invalid(call, "state", "must be active, pending or deprecated");
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	struct reg_version *v = NULL;
	size_t n = 0;
	int rc = reg_store_list(reg_pg(call), tenant, in->subject, in->state, &v, &n);
	if (rc != 0) {
		reg_err_store(&e, reg_pg(call), rc);
		return reg_fail(call, &e);
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = NULL;
		if (reg_version_json(&v[i], &o) == 0)
			json_array_append_new(arr, o);
	}
	reg_versions_free(v, n);
	return reg_reply(call, resp, json_pack("{s:o}", "schemas", arr));
}

static int
reg_get_version(struct sb_rpc_call *call, int64_t id, struct reg_version *v)
{
	struct reg_err e = { 0 };
	bool found = false;
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	int rc = reg_store_version_by_id(reg_pg(call), tenant, id, false, v, &found);
	if (rc != 0) {
		reg_err_store(&e, reg_pg(call), rc);
		return reg_fail(call, &e);
	}
	if (!found || v->deleted) {
		reg_version_clear(v);
		sb_log_kv(SB_LOG_INFO, "registry request refused", "method",
		          sb_rpc_call_method(call), "reason", "schema not found", NULL);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "schema %lld not found",
		                         (long long)id);
	}
	return SB__RPC__CODE__OK;
}

int
reg_rpc_get(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__SchemaRef *in = req;
	struct reg_version v;
	int rc = reg_get_version(call, in->id, &v);
	if (rc != SB__RPC__CODE__OK)
		return rc;
	json_t *o = NULL, *audit = NULL;
	reg_version_json(&v, &o);
	reg_version_clear(&v);
	struct reg_ref *refs = NULL;
	size_t nrefs = 0;
	if (reg_store_refs_of(reg_pg(call), in->id, &refs, &nrefs) == 0 && nrefs > 0)
		json_object_set_new(o, "references", reg_refs_json(refs, nrefs));
	free(refs);
	if (reg_store_audit_of(reg_pg(call), in->id, &audit) == 0)
		json_object_set_new(o, "audit", audit);
	return reg_reply(call, resp, o);
}

int
reg_rpc_validate(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__ValidateDocumentRequest *in = req;
	struct reg_err e = { 0 };
	struct reg_jsv_error errs[REG_ERRORS_MAX];
	size_t nerrs = 0;
	bool valid = false;
	struct reg_version v;
	const char *doc = in->body ? in->body : "";
	if (doc[0] == '\0')
		return reg_invalid(call, "", "the body must be the JSON document to validate");
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	if (reg_validate(reg_st(call), reg_pg(call), tenant, in->id, doc, strlen(doc), &valid, errs,
	                 REG_ERRORS_MAX, &nerrs, &v, &e) != 0)
		return e.code == SB__RPC__CODE__INVALID_ARGUMENT ? reg_invalid(call, "", e.message)
		                                                 : reg_fail(call, &e);
	reg_count_validation(reg_st(call), valid);
	json_t *arr = json_array();
	for (size_t i = 0; i < nerrs && i < REG_ERRORS_MAX; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s}", "pointer", errs[i].pointer,
		                                     "message", errs[i].message));
	json_t *o =
	    json_pack("{s:b,s:I,s:s,s:i,s:s,s:o}", "valid", valid, "id", (json_int_t)v.id,
	              "subject", v.subject, "version", v.version, "state", v.state, "errors", arr);
	reg_version_clear(&v);
	return reg_reply(call, resp, o);
}

static int
reg_move(struct sb_rpc_call *call, const void *req, void *resp, const char *state)
{
	const Sb__Registry__SchemaRef *in = req;
	struct reg_err e = { 0 };
	struct reg_version v;
	char actor[600];
	if (!reg_has_scope(call, "registry:admin"))
		return sb_rpc_call_error(call, SB__RPC__CODE__PERMISSION_DENIED,
		                         "scope registry:admin required");
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	reg_actor(sb_rpc_call_principal(call), actor, sizeof(actor));
	if (reg_set_state(reg_pg(call), tenant, in->id, state, actor, &v, &e) != 0)
		return reg_fail(call, &e);
	json_t *o = NULL;
	reg_version_json(&v, &o);
	reg_version_clear(&v);
	return reg_reply(call, resp, o);
}

int
reg_rpc_approve(struct sb_rpc_call *call, const void *req, void *resp)
{
	return reg_move(call, req, resp, "active");
}

int
reg_rpc_deprecate(struct sb_rpc_call *call, const void *req, void *resp)
{
	return reg_move(call, req, resp, "deprecated");
}

int
reg_rpc_subject_config(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__SetSubjectConfigRequest *in = req;
	struct reg_err e = { 0 };
	if (!reg_has_scope(call, "registry:admin"))
		return sb_rpc_call_error(call, SB__RPC__CODE__PERMISSION_DENIED,
		                         "scope registry:admin required");
	if (!reg_subject_ok(in->subject))
		return reg_invalid(call, "subject", "1 to 255 bytes without control characters");
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	json_t *body = json_loads(in->body ? in->body : "", JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		return reg_invalid(call, "", "the body must be a JSON object");
	}
	json_t *cv = json_object_get(body, "compatibility"),
	       *pv = json_object_get(body, "protected");
	enum reg_compat_level lv;
	int rc;
	if (cv != NULL && reg_compat_level_parse(json_string_value(cv), &lv) != 0)
		rc = reg_invalid(call, "compatibility",
		                 "one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, "
		                 "FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE");
	else if (pv != NULL && !json_is_boolean(pv))
		rc = reg_invalid(call, "protected", "must be a boolean");
	else if (cv == NULL && pv == NULL)
		rc = reg_invalid(call, "", "set compatibility, protected or both");
	else {
		struct sb_pg *pg = reg_pg(call);
		char actor[600], level[32];
		bool exists, subject_set, prot;
		reg_actor(sb_rpc_call_principal(call), actor, sizeof(actor));
		char *detail = json_dumps(body, JSON_COMPACT);
		if ((rc = sb_pg_begin(pg)) != 0 ||
		    (rc = reg_store_set_subject(pg, tenant, in->subject,
		                                cv ? json_string_value(cv) : NULL,
		                                pv ? json_is_true(pv) : -1)) != 0 ||
		    (rc = reg_store_audit(pg, tenant, actor, "config", in->subject, 0, detail)) !=
		        0 ||
		    (rc = sb_pg_commit(pg)) != 0 ||
		    (rc = reg_store_subject_config(pg, tenant, in->subject, false, &exists, level,
		                                   sizeof(level), &subject_set, &prot)) != 0) {
			sb_pg_rollback(pg);
			reg_err_store(&e, pg, rc);
			rc = reg_fail(call, &e);
		} else {
			sb_log_kv(SB_LOG_INFO, "subject configured", "subject", in->subject,
			          "config", detail ? detail : "", "actor", actor, NULL);
			rc = reg_reply(call, resp,
			               json_pack("{s:s,s:s,s:b}", "subject", in->subject,
			                         "compatibility", level, "protected", prot));
		}
		free(detail);
	}
	json_decref(body);
	return rc;
}

int
reg_rpc_validate_subject(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Registry__ValidateSubjectRequest *in = req;
	Sb__Registry__ValidateSubjectResponse *out = resp;
	struct reg_err e = { 0 };
	struct sb_pg *pg = reg_pg(call);
	struct reg_version latest;
	bool found = false;
	if (!reg_subject_ok(in->subject))
		return reg_invalid(call, "subject", "1 to 255 bytes without control characters");
	/* the publisher's tenant: pubsub forwards its caller's principal */
	const char *tenant = reg_tenant(call);
	if (tenant == NULL)
		return reg_no_tenant(call);
	/* the latest active version */
	struct reg_version *v = NULL;
	size_t n = 0;
	int rc = reg_store_versions(pg, tenant, in->subject, "active", false, &v, &n);
	if (rc != 0) {
		reg_err_store(&e, pg, rc);
		return reg_fail(call, &e);
	}
	found = n > 0;
	int64_t id = found ? v[n - 1].id : 0;
	reg_versions_free(v, n);
	if (!found)
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND,
		                         "subject %s has no active version", in->subject);
	struct reg_jsv_error *errs = sb_rpc_call_alloc(call, REG_ERRORS_MAX * sizeof(*errs));
	size_t nerrs = 0;
	bool valid = false;
	const char *doc = in->document ? in->document : "";
	if (errs == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	if (reg_validate(reg_st(call), pg, tenant, id, doc, strlen(doc), &valid, errs,
	                 REG_ERRORS_MAX, &nerrs, &latest, &e) != 0)
		return e.code == SB__RPC__CODE__INVALID_ARGUMENT
		           ? reg_invalid(call, "document", e.message)
		           : reg_fail(call, &e);
	reg_count_validation(reg_st(call), valid);
	out->valid = valid;
	out->schema_id = latest.id;
	out->version = latest.version;
	reg_version_clear(&latest);
	size_t k = nerrs < REG_ERRORS_MAX ? nerrs : REG_ERRORS_MAX;
	out->violations = sb_rpc_call_alloc(call, (k ? k : 1) * sizeof(*out->violations));
	Sb__Registry__Violation *vs = sb_rpc_call_alloc(call, (k ? k : 1) * sizeof(*vs));
	if (out->violations == NULL || vs == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	for (size_t i = 0; i < k; i++) {
		sb__registry__violation__init(&vs[i]);
		vs[i].pointer = errs[i].pointer;
		vs[i].message = errs[i].message;
		out->violations[i] = &vs[i];
	}
	out->n_violations = k;
	return SB__RPC__CODE__OK;
}
