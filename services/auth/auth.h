/* auth.h: private header of the auth service.
 *
 * Its one job: OAuth2 token service: clients, tokens, refresh rotation, revocation, introspection,
 * JWKS, key rotation.
 *
 * Contracts other services rely on:
 *   - Access tokens are JWTs (header typ "at+jwt", kid of the signing key) with claims iss, aud,
 *     sub, user_id (when the client acts for a user), tenant_id, scope, client_id, jti, iat, exp.
 *   - A revoked access token is the Redis key AUTH_REVOKED_PREFIX "<jti>" (e.g.
 *     "sb:revoked:jti:0b5c...") set with a TTL equal to the token's remaining lifetime; every
 *     edge refuses a token whose key exists.
 *   - Token exchange (RFC 8693): grant_type AUTH_GRANT_EXCHANGE by a client holding scope
 *     AUTH_SCOPE_ISSUE, subject_token_type AUTH_SUBJECT_USER_ID and subject_token = the id of a
 *     user of the client's own tenant.
 *   - OAuth errors are RPC errors whose message is "<oauth_error>: <description>".
 */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.pb-c.h"
#include "sb_jwt.h"
#include "sb_metrics.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_redis.h"
#include "sb_service.h"

#define AUTH_REVOKED_PREFIX    SB_REDIS_REVOKED_PREFIX
#define AUTH_GRANT_CLIENT      "client_credentials"
#define AUTH_GRANT_REFRESH     "refresh_token"
#define AUTH_GRANT_EXCHANGE    "urn:ietf:params:oauth:grant-type:token-exchange"
#define AUTH_SUBJECT_USER_ID   "urn:switchboard:token-type:user-id"
#define AUTH_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define AUTH_SCOPE_ISSUE       "tokens:issue" /* may mint tokens for its tenant's users */
#define AUTH_SCOPE_ADMIN       "auth:admin"   /* may revoke any token of its tenant */
#define AUTH_REFRESH_PREFIX    "sbr_"         /* opaque refresh tokens start with this */
#define AUTH_CLI_CLIENT_ID     "sb-auth-cli"  /* client_id of tokens from `sb-auth token issue` */
#define AUTH_ID_MAX            128
#define AUTH_SCOPE_MAX         1024

struct auth_cfg {
	struct sb_common_cfg common;
	char *issuer;
	char *audience;
	long long access_ttl_s;
	long long refresh_ttl_s;
	char *signing_alg;
	char *key_encryption_key; /* 64 hex digits or empty */
	long long pbkdf2_iterations;
	long long key_reload_ms;
};

/* The process state (one per process): configuration, keys, metrics. */
struct auth {
	const struct auth_cfg *cfg;
	struct auth_keys *keys;
	struct sb_series *issued_client, *issued_refresh, *issued_exchange;
	struct sb_series *client_auth_failures, *refresh_reuse;
	struct sb_series *revoked_access, *revoked_refresh;
};

/* What a handler works with: the process state and the connections of the RPC worker thread
 * running it (opened by the runtime: auth_service.worker_conns). Filled per call by
 * auth_worker_of; valid until the handler returns. */
struct auth_worker {
	struct auth *auth;
	struct sb_pg *pg;
	struct sb_redis *redis;
};

/* An OAuth client as stored. */
struct auth_client {
	char client_id[AUTH_ID_MAX];
	char tenant_id[AUTH_ID_MAX];
	char name[AUTH_ID_MAX];
	char user_id[AUTH_ID_MAX]; /* "" when the client acts on its own behalf */
	char scopes[AUTH_SCOPE_MAX];
	bool enabled;
};

/* What an access token says, before signing or after verification. */
struct auth_grant {
	char sub[AUTH_ID_MAX];
	char user_id[AUTH_ID_MAX];
	char tenant_id[AUTH_ID_MAX];
	char client_id[AUTH_ID_MAX];
	char scope[AUTH_SCOPE_MAX];
};

/* config.c */
extern const struct sb_cfg_key auth_config[];
extern const struct sb_service_def auth_service;
/* auth_config_kek decodes cfg's SB_AUTH_KEY_ENCRYPTION_KEY into kek (32 bytes). Returns 1 when
 * a key is configured, 0 when none is, SB_EINVAL when it is malformed. kek is a secret. */
int auth_config_kek(const struct auth_cfg *cfg, unsigned char kek[32]);
/* auth_config_alg maps SB_AUTH_SIGNING_ALG to its sb_jwt algorithm. */
enum sb_jwt_alg auth_config_alg(const struct auth_cfg *cfg);

/* crypto.c: pure helpers (unit-tested in crypto_test.c). */
/* auth_secret_hash writes the PBKDF2-HMAC-SHA256 hash of secret with a fresh 16-byte salt and
 * iterations rounds as "pbkdf2-sha256$<iter>$<salt>$<hash>" into out (cap bytes, >= 128).
 * Returns 0, SB_EINVAL or SB_EIO. */
int auth_secret_hash(const char *secret, long long iterations, char *out, size_t cap);
/* auth_secret_verify tells whether secret matches stored (constant-time compare of the
 * derived hash): 1 yes, 0 no (also for a malformed stored value). */
int auth_secret_verify(const char *secret, const char *stored);
/* auth_random_token writes prefix followed by the base64url form of nbytes random bytes into
 * out (cap bytes). Returns 0, SB_ERANGE or SB_EIO. */
int auth_random_token(const char *prefix, size_t nbytes, char *out, size_t cap);
/* auth_sha256_hex writes the lower-case hex SHA-256 of s (65 bytes with the NUL) to out. */
int auth_sha256_hex(const char *s, char out[65]);
/* auth_seal encrypts n bytes of plain with AES-256-GCM under kek with aad, as
 * "aes256gcm:<iv>:<ct+tag>" in *out (caller frees). Returns 0, SB_ENOMEM or SB_EIO. */
int auth_seal(const unsigned char kek[32], const char *aad, const char *plain, size_t n,
              char **out);
/* auth_open decrypts what auth_seal wrote into *out (NUL-terminated, a SECRET the caller wipes
 * and frees with sb_jwt_secret_free). Returns 0, SB_EINVAL (malformed, wrong key or aad:
 * authentication failed) or SB_ENOMEM. */
int auth_open(const unsigned char kek[32], const char *aad, const char *sealed, char **out);

/* scope.c: pure helpers (unit-tested in scope_test.c). */
/* auth_scope_has tells whether the space-separated list contains scope exactly. */
bool auth_scope_has(const char *list, const char *scope);
/* auth_scope_grant decides the scope of a new token: requested (space-separated, may be empty
 * or NULL for "all allowed") must be a subset of allowed; the scopes of the list deny (may be
 * NULL) are left out of the default and refused when requested. Writes the granted list
 * (deduplicated, in request order) to out. Returns 0, SB_EINVAL (a scope not allowed:
 * invalid_scope) or SB_ERANGE. */
int auth_scope_grant(const char *allowed, const char *requested, const char *deny, char *out,
                     size_t cap);

/* A stored refresh token. */
struct auth_refresh_row {
	struct auth_grant g;
	char family[AUTH_ID_MAX];
	bool active; /* neither used, revoked nor expired */
	int64_t exp, iat;
};

/* store.c */
/* auth_store_stmts is the prepared-statement table every connection of the service uses. */
extern const struct sb_pg_stmt auth_store_stmts[];
/* auth_store_client_get loads client_id into *c. Returns 0, SB_ENOTFOUND, or a database error.
 * *secret_hash (cap hcap) receives the stored hash when not NULL. */
int auth_store_client_get(struct sb_pg *pg, const char *client_id, struct auth_client *c,
                          char *secret_hash, size_t hcap);
/* auth_store_refresh_get loads the refresh token token (looked up by its hash) into *row.
 * Returns 0, SB_ENOTFOUND or a database error. */
int auth_store_refresh_get(struct sb_pg *pg, const char *token, struct auth_refresh_row *row);
/* auth_store_audit inserts an audit row (detail is a JSON object text). Errors are returned
 * but callers only log them: the log line is the primary audit record. */
int auth_store_audit(struct sb_pg *pg, const char *event, const char *client_id,
                     const char *detail);

/* audit.c */
/* auth_audit writes one JSON log line {"audit":true,"event":event,...} with the string fields
 * given as key, value pairs ended by NULL (never secrets or tokens), and records the event in
 * auth.audit_events through pg (may be NULL). */
void auth_audit(struct sb_pg *pg, const char *event, ...) __attribute__((sentinel));
/* auth_audit_set_fd sends audit lines to fd (default stdout); call before other threads run. */
void auth_audit_set_fd(int fd);
/* auth_metrics_init registers the service's metrics into a. */
void auth_metrics_init(struct auth *a);

/* clients.c */
/* auth_client_authenticate checks client_id and secret of an RPC call: on success fills *c and
 * returns SB__RPC__CODE__OK; otherwise it has described the error on call (UNAUTHENTICATED
 * "invalid_client: ..." with an audit line and metric, or UNAVAILABLE) and returns its code. */
int auth_client_authenticate(struct sb_rpc_call *call, struct auth_worker *w, const char *client_id,
                             const char *secret, struct auth_client *c);
/* auth_unavailable answers call UNAVAILABLE with the retry_after of the failing dependency
 * (pg when redis is NULL). */
int auth_unavailable(struct sb_rpc_call *call, struct sb_pg *pg, struct sb_redis *redis);
/* auth_db_error maps a database error rv to the RPC answer (UNAVAILABLE or INTERNAL). */
int auth_db_error(struct sb_rpc_call *call, struct auth_worker *w, int rv);

/* keys.c */
struct auth_keys;
/* auth_keys_ensure creates the first signing key if none is active, under a transaction-level
 * advisory lock so replicas starting together create one. Returns 0 or an error. */
int auth_keys_ensure(struct sb_pg *pg, const struct auth_cfg *cfg);
/* auth_keys_rotate retires the active key and makes a new one active; writes its kid to kid
 * (AUTH_ID_MAX). Returns 0 or an error. */
int auth_keys_rotate(struct sb_pg *pg, const struct auth_cfg *cfg, char *kid);
/* auth_keys_load_active reads the active signing key from pg with its private key (unsealed
 * with SB_AUTH_KEY_ENCRYPTION_KEY when sealed), for a process that signs without the reload
 * thread (the CLI): one read, then sign with sb_jwt_sign(key, claims, "at+jwt", ...). On
 * success *out is freed with sb_jwt_key_free. Returns 0, SB_ENOTFOUND (no active key),
 * SB_EINVAL (sealed without the right encryption key) or a database error. */
int auth_keys_load_active(struct sb_pg *pg, const struct auth_cfg *cfg, struct sb_jwt_key **out);
/* auth_keys_start loads the keys and starts the thread that reloads them every
 * SB_AUTH_KEY_RELOAD_MS (so replicas pick up a rotation). On success *out is freed with
 * auth_keys_stop. */
int auth_keys_start(const struct auth_cfg *cfg, struct auth_keys **out);
/* auth_keys_stop stops the reload thread and frees k, wiping key material. NULL allowed. */
void auth_keys_stop(struct auth_keys *k);
/* auth_keys_sign signs claims with the active key (typ at+jwt). *out is the caller's (free).
 * Returns 0, SB_EUNAVAIL (no key loaded yet) or an sb_jwt error. */
int auth_keys_sign(struct auth_keys *k, const json_t *claims, char **out);
/* auth_keys_verify verifies an access token against the published keys and policy; fills *p.
 * Returns 0 or an sb_jwt reason. */
int auth_keys_verify(struct auth_keys *k, const char *token, struct sb_jwt_principal *p);
/* auth_keys_jwks copies the current JWKS document into the call's arena. NULL on ENOMEM. */
char *auth_keys_jwks(struct auth_keys *k, struct sb_rpc_call *call);

/* issue.c */
/* auth_claims_new builds the claims of an access token for g valid ttl_s seconds from now (iss,
 * aud, sub, tenant_id, scope, client_id, a fresh jti, iat, exp, and user_id when g has one):
 * the one definition of an access token's claims, used by the token endpoint and the CLI.
 * On success *out is the caller's (json_decref). Returns 0, SB_EIO (no entropy) or SB_ENOMEM. */
int auth_claims_new(const struct auth_cfg *cfg, const struct auth_grant *g, long long ttl_s,
                    json_t **out);
/* auth_issue mints an access token for g (and, when want_refresh, a refresh token in family,
 * or in a new family when family is NULL), fills resp and counts the token in counter. Runs
 * inside the caller's transaction if any. Returns an RPC code (errors described on call). */
int auth_issue(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_grant *g,
               bool want_refresh, const char *family, struct sb_series *counter,
               Sb__Auth__TokenResponse *resp);
/* auth_refresh_insert stores a new refresh token of family for g and writes it to token
 * (cap >= 64). Returns 0 or a database error. */
int auth_refresh_insert(struct auth_worker *w, const struct auth_grant *g, const char *family,
                        char *token, size_t cap);

/* token.c */
/* auth_rpc_token serves auth.Token: client authentication, then the grant of grant_type (an
 * empty grant_type with a refresh_token is the refresh grant: the /auth/refresh alias). */
int auth_rpc_token(struct sb_rpc_call *call, const void *req, void *resp);
/* refresh.c */
/* auth_grant_refresh rotates rq->refresh_token for the authenticated client c, or revokes its
 * family when it was already used. Returns an RPC code. */
int auth_grant_refresh(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                       const Sb__Auth__TokenRequest *rq, Sb__Auth__TokenResponse *rs);
/* exchange.c */
/* auth_grant_exchange mints an access token for a user of c's tenant (RFC 8693). Returns an
 * RPC code. */
int auth_grant_exchange(struct sb_rpc_call *call, struct auth_worker *w,
                        const struct auth_client *c, const Sb__Auth__TokenRequest *rq,
                        Sb__Auth__TokenResponse *rs);
/* revoke.c */
/* auth_principal_scope writes p's scopes, space-separated, to out (cap bytes). */
void auth_principal_scope(const struct sb_jwt_principal *p, char *out, size_t cap);
/* auth_may_manage tells whether client c may revoke a token issued to token_client of
 * token_tenant: its own tokens, or any of its tenant's with scope auth:admin. */
bool auth_may_manage(const struct auth_client *c, const char *token_client,
                     const char *token_tenant);
/* auth_rpc_revoke serves auth.Revoke (RFC 7009). */
int auth_rpc_revoke(struct sb_rpc_call *call, const void *req, void *resp);
/* introspect.c */
/* auth_rpc_introspect serves auth.Introspect (RFC 7662). */
int auth_rpc_introspect(struct sb_rpc_call *call, const void *req, void *resp);
/* wellknown.c */
/* auth_rpc_jwks serves auth.Jwks; auth_rpc_metadata serves auth.Metadata (RFC 8414). */
int auth_rpc_jwks(struct sb_rpc_call *call, const void *req, void *resp);
int auth_rpc_metadata(struct sb_rpc_call *call, const void *req, void *resp);

/* rpc.c */
extern const struct sb_rpc_method auth_methods[];
/* auth_start (the start hook) creates the first signing key if needed, loads the keys and
 * starts their reload thread; auth_stop undoes it. */
int auth_start(struct sb_service *svc);
void auth_stop(struct sb_service *svc);
/* auth_worker_of fills w for call, a call of a worker-run method, and returns w. */
struct auth_worker *auth_worker_of(struct sb_rpc_call *call, struct auth_worker *w);

/* cli.c */
/* auth_cli_is_command tells whether argv[1] names a CLI subcommand of sb-auth. */
bool auth_cli_is_command(int argc, char **argv);
/* auth_cli_main runs the subcommand in argv with the service's configuration (DATABASE_URL...)
 * and returns the process exit status (0 ok, 1 failure, 2 usage or configuration error). */
int auth_cli_main(int argc, char **argv);

/* admin.c: database operations shared by the CLI and seed-dev. */
/* auth_admin_tenant returns the id of tenant name, creating it if missing, in id. */
int auth_admin_tenant(struct sb_pg *pg, const char *name, char id[AUTH_ID_MAX]);
/* auth_admin_user returns the id of user name (or id) of tenant, creating it if missing when
 * create is true. Returns 0, SB_ENOTFOUND or a database error. */
int auth_admin_user(struct sb_pg *pg, const char *tenant_id, const char *name, bool create,
                    char id[AUTH_ID_MAX]);
/* auth_admin_client_create creates a client and writes its id and new secret (a SECRET, cap
 * >= 64) out. Returns 0, SB_EEXIST (name taken in the tenant) or a database error. */
int auth_admin_client_create(struct sb_pg *pg, const struct auth_cfg *cfg, const char *tenant_id,
                             const char *name, const char *scopes, const char *user_id,
                             char id[AUTH_ID_MAX], char *secret, size_t cap);
/* auth_admin_client_rotate gives client_id a new secret (written to secret, cap >= 64).
 * Returns 0, SB_ENOTFOUND or a database error. */
int auth_admin_client_rotate(struct sb_pg *pg, const struct auth_cfg *cfg, const char *client_id,
                             char *secret, size_t cap);

/* seed.c */
/* auth_seed_dev creates (or reuses) the dev tenant, users alice and bob and clients admin,
 * alice and bob, and writes their credentials to path (mode 0600). Returns 0 or an error
 * (reason printed to stderr). */
int auth_seed_dev(struct sb_pg *pg, const struct auth_cfg *cfg, const char *path);

#endif
