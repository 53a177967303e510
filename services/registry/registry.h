/* registry.h: private header of the registry service.
 *
 * Its one job: schemas. Subjects and their versions in PostgreSQL (schema "registry"), JSON
 * Schema validation (jsv.h, valijson), compatibility between versions (compat.h), an approval
 * workflow for breaking changes to protected subjects, and two APIs over the same store: the
 * seed API (/api/v1/schemas through the gateway, RPCs in seed.c) and the Confluent Schema
 * Registry REST API on the registry's own HTTP port (http.c hands each request to an RPC
 * worker, confluent.c answers it). Everything is scoped by the caller's tenant; schema
 * references are resolved by bundling (refs.c, core.c). docs/registry.md describes both.
 *
 * Calls run one way, top to bottom:
 *   config.c     config table, RPC table, service definition, start/stop
 *   http.c       the HTTP edge of the Confluent API: bearer token check, hand-off to RPC
 *   seed.c confluent.c   the handlers of both APIs
 *   core.c       register, approve, deprecate, validate, compatibility: the operations
 *   store.c      SQL; cache.c: compiled schemas by id
 *   compat.c jsv.cpp     compatibility and validation, no I/O
 */
#ifndef SB_REGISTRY_H
#define SB_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "compat.h"
#include "jsv.h"
#include "refs.h"
#include "sb_buf.h"
#include "sb_service.h"

#define REG_SUBJECT_MAX  255
#define REG_SCHEMA_MAX   (512u << 10) /* bytes of a schema's text */
#define REG_ERRORS_MAX   100          /* violations reported per validation */
#define REG_SCHEMA_DEPTH 128          /* deepest nesting of a schema's JSON */
#define REG_REFS_DEPTH   8            /* references of references ... followed */
#define REG_TENANT_MAX   255
#define REG_TENANT_DEFAULT                                                                         \
	"default" /* the tenant of rows from before tenancy and of callers when auth is off */

struct registry_cfg {
	struct sb_common_cfg common;
	char *http_addr;
	long long http_port;
	long long max_body_bytes;
	char *auth_url;
	char *issuer;
	char *audience;
	long long leeway_s;
	bool auth_enabled;
};

struct sb_http_server;
struct sb_jwt_verifier;
struct sb_rpc_client;

/* Outcomes of a registration, the label of registry_registrations_total. */
enum reg_outcome {
	REG_M_CREATED,
	REG_M_EXISTING,
	REG_M_PENDING,
	REG_M_INCOMPATIBLE,
	REG_M_INVALID,
	REG_M_N
};

struct sb_series;

/* The process state (one per service). */
struct reg_state {
	const struct registry_cfg *cfg;
	struct sb_service *svc;
	struct sb_http_server *http;
	struct sb_rpc_client *self;  /* http.c -> registry.Http */
	struct sb_rpc_client *auth;  /* JWKS */
	struct sb_jwt_verifier *jwt; /* NULL when auth is disabled */
	pthread_mutex_t jwks_mu;
	int64_t jwks_fetched_ms;
	struct reg_basic *basic; /* http.c: access tokens for Basic credentials, cached */
	struct reg_cache *cache;
	struct sb_series *m_register[REG_M_N]; /* registry_registrations_total{result} */
	struct sb_series *m_validate[2];       /* registry_validations_total{result}: ok, not */
};

/* A version of a subject as the store holds it. */
struct reg_version {
	int64_t id;
	char subject[REG_SUBJECT_MAX + 1];
	int version;
	int draft;
	char state[16];
	bool deleted;
	char created_at[40];
	char *schema; /* canonical JSON text, malloc'ed */
};

/* An operation's outcome when it is not OK: an RPC code, a message, and for the Confluent
 * API its error_code (40401 ...). */
struct reg_err {
	int code; /* Sb__Rpc__Code */
	int confluent;
	char message[512];
	struct reg_diffs diffs; /* incompatibilities found, for 409 answers */
};

/* config.c */
/* reg_count_register / reg_count_validation count an outcome (st may be NULL). */
void reg_count_register(struct reg_state *st, enum reg_outcome o);
void reg_count_validation(struct reg_state *st, bool valid);
extern const struct sb_cfg_key registry_config[];
extern const struct sb_service_def registry_service;
extern const struct sb_rpc_method registry_methods[];

/* http.c */
/* reg_http_start starts the Confluent API's HTTP edge of st (and its token verifier); 0 or an
 * error, with nothing left running. reg_http_stop stops it; safe when it did not start. */
int reg_http_start(struct reg_state *st);
void reg_http_stop(struct reg_state *st);
/* reg_http_principal verifies the bearer token in authorization (the header's value) and
 * fills *p; may block (JWKS refetch on an unknown key). Basic credentials (a client's id and
 * secret, as Confluent clients send with basic.auth.user.info) are exchanged with auth for an
 * access token of that client (client_credentials), cached until shortly before it expires,
 * and verified the same way. Returns 0, or SB_EINVAL with a reason in why. Without auth
 * (SB_REGISTRY_AUTH_ENABLED=false) every caller holds every scope. */
struct sb_jwt_principal;
int reg_http_principal(struct reg_state *st, const char *authorization, struct sb_jwt_principal *p,
                       const char **why);

/* seed.c: the seed API's RPCs */
int reg_rpc_create(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_list(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_get(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_validate(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_approve(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_deprecate(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_subject_config(struct sb_rpc_call *call, const void *req, void *resp);
int reg_rpc_validate_subject(struct sb_rpc_call *call, const void *req, void *resp);

/* confluent.c */
int reg_rpc_http(struct sb_rpc_call *call, const void *req, void *resp);

/* core.c: every operation acts in the caller's tenant (docs/registry.md, "Tenants") */
/* reg_schema_parse reads text as a schema of draft (4 or 7): JSON, and when compile is set,
 * compiled by the validator (a schema with references is compiled as its bundle instead, by
 * reg_register). On success *canon is its canonical text (sorted keys, compact; caller
 * frees). Returns 0 or fills e (INVALID_ARGUMENT, 42201). */
int reg_schema_parse(const char *text, size_t len, int draft, bool compile, char **canon,
                     struct reg_err *e);
/* reg_register adds schema (canonical text) with its nrefs references (unresolved: name,
 * subject, version; resolved in place) to subject as a new version, or finds the version that
 * already holds it: checks compatibility at the subject's level against its active and
 * deprecated versions; a breaking change is refused (ABORTED, 409) unless the subject is
 * protected, in which case it is stored pending. Audited. *out filled on 0 (its schema freed
 * by the caller with reg_version_clear); *created tells whether a row was added. Returns 0 or
 * fills e. */
int reg_register(struct sb_pg *pg, const char *tenant, const char *subject, const char *schema,
                 int draft, struct reg_ref *refs, size_t nrefs, const char *actor,
                 struct reg_version *out, bool *created, struct reg_err *e);
/* reg_set_state moves version id to state ("active" from pending: approve; "deprecated" from
 * active or pending), audited with actor. Returns 0 or fills e (NOT_FOUND, FAILED_PRECONDITION
 * when the move is not allowed). */
int reg_set_state(struct sb_pg *pg, const char *tenant, int64_t id, const char *state,
                  const char *actor, struct reg_version *out, struct reg_err *e);
/* reg_check_compat checks schema (with its references) against subject's versions at its
 * level (or only against version `against` when > 0; latest when 0 and not transitive).
 * *ok, incompatibilities in e->diffs. Returns 0 or fills e. */
int reg_check_compat(struct sb_pg *pg, const char *tenant, const char *subject, const char *schema,
                     struct reg_ref *refs, size_t nrefs, int against, bool all, bool *ok,
                     struct reg_err *e);
/* reg_validate validates doc (JSON text) against version id (compiled once, cached). *valid;
 * up to max violations in errs, their count in *nerrs. Returns 0 or fills e (NOT_FOUND, or
 * INVALID_ARGUMENT when doc is not JSON). */
int reg_validate(struct reg_state *st, struct sb_pg *pg, const char *tenant, int64_t id,
                 const char *doc, size_t len, bool *valid, struct reg_jsv_error *errs, size_t max,
                 size_t *nerrs, struct reg_version *v, struct reg_err *e);
/* reg_refs_resolve finds each reference's version in tenant (version -1: the latest), setting
 * its id and version; share locks them against deletion until the transaction ends. Returns 0
 * or fills e (INVALID_ARGUMENT 42201 for a reference that is not found). */
int reg_refs_resolve(struct sb_pg *pg, const char *tenant, struct reg_ref *refs, size_t n,
                     bool share, struct reg_err *e);
/* reg_bundle makes the self-contained bundle of schema with its resolved references (*out,
 * canonical text, caller frees). reg_version_bundle does it for a stored version: *out NULL
 * when it has no references. Return 0 or fill e. */
int reg_bundle(struct sb_pg *pg, const char *tenant, const char *schema, const struct reg_ref *refs,
               size_t n, char **out, struct reg_err *e);
int reg_version_bundle(struct sb_pg *pg, const char *tenant, const struct reg_version *v,
                       char **out, struct reg_err *e);
/* reg_err_set fills e; returns e->code. */
int reg_err_set(struct reg_err *e, int code, int confluent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* reg_err_store fills e for a store error rv (UNAVAILABLE when the database is down). */
int reg_err_store(struct reg_err *e, struct sb_pg *pg, int rv);
/* reg_version_json makes v's JSON object of the seed API (with the schema parsed) in *out, for
 * the caller to json_decref. Returns 0 or SB_ENOMEM. */
int reg_version_json(const struct reg_version *v, json_t **out);
/* reg_actor names the caller for the audit trail ("client:user" or "anonymous"). */
void reg_actor(const Sb__Rpc__Principal *p, char *out, size_t n);

/* store.c: every function takes the caller's tenant and sees that tenant's rows only */
int reg_store_subject_config(struct sb_pg *pg, const char *tenant, const char *subject, bool lock,
                             bool *exists, char *compat, size_t n, bool *subject_set,
                             bool *protected_);
int reg_store_global_compat(struct sb_pg *pg, const char *tenant, char *compat, size_t n);
int reg_store_set_global_compat(struct sb_pg *pg, const char *tenant, const char *compat);
int reg_store_set_subject(struct sb_pg *pg, const char *tenant, const char *subject,
                          const char *compat, int protected_);
int reg_store_clear_subject_compat(struct sb_pg *pg, const char *tenant, const char *subject,
                                   bool *found);
/* reg_store_versions lists subject's versions (deleted ones only when with_deleted), ordered
 * by version; states filters ("active,deprecated"; NULL: all). *out malloc'ed array the
 * caller frees with reg_versions_free. */
int reg_store_versions(struct sb_pg *pg, const char *tenant, const char *subject,
                       const char *states, bool with_deleted, struct reg_version **out, size_t *n);
int reg_store_version_by_id(struct sb_pg *pg, const char *tenant, int64_t id, bool lock,
                            struct reg_version *out, bool *found);
int reg_store_version_by_number(struct sb_pg *pg, const char *tenant, const char *subject,
                                int version, bool share, struct reg_version *out, bool *found);
int reg_store_find_fingerprint(struct sb_pg *pg, const char *tenant, const char *subject,
                               const char *fp, struct reg_version *out, bool *found);
int reg_store_insert_version(struct sb_pg *pg, const char *tenant, const char *subject, int draft,
                             const char *schema, const char *fp, const char *state,
                             const char *actor, struct reg_version *out);
int reg_store_update_state(struct sb_pg *pg, int64_t id, const char *state);
int reg_store_audit(struct sb_pg *pg, const char *tenant, const char *actor, const char *action,
                    const char *subject, int64_t version_id, const char *detail_json);
/* reg_store_audit_of returns the audit rows of a version as a JSON array in *out. */
int reg_store_audit_of(struct sb_pg *pg, int64_t version_id, json_t **out);
int reg_store_list(struct sb_pg *pg, const char *tenant, const char *subject, const char *state,
                   struct reg_version **out, size_t *n);
int reg_store_subjects(struct sb_pg *pg, const char *tenant, bool with_deleted, json_t **out);
int reg_store_delete(struct sb_pg *pg, const char *tenant, const char *subject, int version,
                     json_t **deleted);
/* reg_store_refs_insert records the n references of version_id (resolved: ids set). */
int reg_store_refs_insert(struct sb_pg *pg, int64_t version_id, const struct reg_ref *refs,
                          size_t n);
/* reg_store_refs_of lists version_id's references in their order; *out freed with free(). */
int reg_store_refs_of(struct sb_pg *pg, int64_t version_id, struct reg_ref **out, size_t *n);
/* reg_store_referenced_by lists (JSON array in *ids) the ids of versions, not deleted, that
 * refer to version `version` of subject (0: any version); outside leaves out referrers that
 * are those versions themselves. */
int reg_store_referenced_by(struct sb_pg *pg, const char *tenant, const char *subject, int version,
                            bool outside, json_t **ids);
void reg_version_clear(struct reg_version *v);
void reg_versions_free(struct reg_version *v, size_t n);

/* cache.c */
struct reg_cache;
int reg_cache_new(struct reg_cache **out);
void reg_cache_free(struct reg_cache *c);
/* reg_cache_get returns the compiled schema of version v, compiling (and keeping) v's schema
 * when absent; a version's schema never changes, so entries never go stale. NULL when the
 * schema does not compile (it did when stored) or memory runs out. A cached entry lives as
 * long as the cache; when the cache is full the schema is compiled for this use only and
 * *owned is set to it, for the caller to free with reg_jsv_free (else *owned is NULL). */
/* reg_cache_peek returns the compiled schema of version id when cached, else NULL. */
const struct reg_jsv *reg_cache_peek(struct reg_cache *c, int64_t id);
const struct reg_jsv *reg_cache_get(struct reg_cache *c, const struct reg_version *v,
                                    struct reg_jsv **owned);

#endif
