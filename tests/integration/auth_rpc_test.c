/* auth_rpc_test.c: the auth service's RPCs against real PostgreSQL and Redis, with sb-auth run
 * as a process and administered with its own CLI: client credentials, failed and disabled
 * client authentication (with the audit line), refresh rotation and reuse detection,
 * revocation (database and Redis), introspection, token exchange within and across tenants,
 * key rotation with the JWKS overlap, sealed private keys, and two replicas starting together
 * creating one signing key.
 * stack: pg,redis
 * labels: auth
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "it.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth.pb-c.h"
#include "sb_err.h"
#include "sb_jwt.h"
#include "sb_pg.h"
#include "sb_redis.h"
#include "sb_rpc.h"

#define KEK "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* Everything the scenarios share: one database with two tenants and a few clients. */
static struct {
	char bin[512];
	struct it_proc auth;
	char dsn[512];
	char tenant1[64], tenant2[64];
	char user1[64], user2[64];
	char svc_id[64], svc_secret[128];     /* tenant 1, acts as user1 */
	char admin_id[64], admin_secret[128]; /* tenant 1, tokens:issue auth:admin */
	char other_id[64], other_secret[128]; /* tenant 2 */
} it;

/* it_db creates database name and writes its DSN to dsn. */
static void
it_db(const char *name, char *dsn, size_t n)
{
	const char *admin = getenv("SB_TEST_PG_DSN");
	struct sb_pg *pg = NULL;
	char sql[128];
	assert_non_null(admin);
	assert_int_equal(sb_pg_open(admin, NULL, &pg), 0);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	assert_int_equal(sb_pg_exec(pg, sql, NULL), 0);
	sb_pg_close(pg);
	const char *slash = strrchr(admin, '/');
	snprintf(dsn, n, "%.*s/%s", (int)(slash - admin), admin, name);
}

/* it_start runs sb-auth on dsn with extra environment (NULL-ended "K=V" list) and opens p->cli
 * to it. */
static void
it_start(struct it_proc *p, const char *dsn, const char *tag, const char *const *extra)
{
	char db[600], log[64];
	const char *env[24];
	size_t n = 0;
	snprintf(db, sizeof(db), "DATABASE_URL=%s", dsn);
	snprintf(log, sizeof(log), "auth-%s", tag);
	env[n++] = db;
	env[n++] = "SB_RPC_WORKERS=4";
	env[n++] = "SB_AUTH_PBKDF2_ITERATIONS=100000";
	env[n++] = "SB_AUTH_KEY_RELOAD_MS=200";
	env[n++] = "SB_SHUTDOWN_GRACE_MS=2000";
	env[n++] = "SB_AUTH_KEY_ENCRYPTION_KEY=" KEK;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	assert_int_equal(it_spawn(p, "auth", log, env), 0);
	assert_int_equal(sb_rpc_client_open(p->rpc_url, &p->cli), 0);
}

/* it_wait_ready waits until p answers auth.Jwks. */
static void
it_wait_ready(struct it_proc *p)
{
	Sb__Auth__JwksRequest rq = SB__AUTH__JWKS_REQUEST__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = 500 };
	for (int i = 0; i < 150; i++) {
		struct sb_rpc_result res;
		if (!it_running(p)) {
			it_tail_log(p, 20);
			fail_msg("sb-auth exited during start");
		}
		if (sb_rpc_call(p->cli, "auth.Jwks", &rq.base, &sb__auth__jwks_response__descriptor,
		                &meta, &res) == 0) {
			int code = res.code;
			sb_rpc_result_free(&res);
			if (code == SB__RPC__CODE__OK)
				return;
		}
		it_sleep_ms(100);
	}
	fail_msg("sb-auth not ready");
}

/* auth_stop sends SIGTERM and waits (SIGKILL after 5 s). Returns 0 when sb-auth exited with
 * status 0, as a clean shutdown does (under the sanitizers a leak or an error makes it
 * non-zero). */
static int
auth_stop(struct it_proc *p)
{
	if (p->pid <= 0)
		return 0;
	int status = it_stop(p, SIGTERM, 5000);
	if (status == 0)
		return 0;
	fprintf(stderr, "sb-auth did not exit cleanly (status %d); its log: %s\n", status, p->log);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "grep -v '^{' %s | head -40 >&2", p->log);
	if (system(cmd) != 0)
		fprintf(stderr, "(nothing else in the log)\n");
	return -1;
}

/* has_metric tells whether the samples of series on p's /metrics add up to at least 1. */
static bool
has_metric(const struct it_proc *p, const char *series)
{
	return it_metric(p, series) >= 1;
}

/* it_cli runs `sb-auth ARGS` on dsn and returns its stdout (caller frees), asserting exit 0. */
static char *
it_cli(const char *dsn, const char *args)
{
	char cmd[2048];
	char *out = calloc(1, 8192);
	size_t n = 0;
	snprintf(cmd, sizeof(cmd),
	         "DATABASE_URL='%s' SB_AUTH_PBKDF2_ITERATIONS=100000 SB_AUTH_KEY_ENCRYPTION_KEY=%s "
	         "%s %s",
	         dsn, KEK, it.bin, args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(out);
	while (n < 8191) {
		size_t r = fread(out + n, 1, 8191 - n, f);
		if (r == 0)
			break;
		n += r;
	}
	int st = pclose(f);
	if (st != 0)
		fail_msg("sb-auth %s exited with %d", args, st);
	return out;
}

/* it_cli_json runs a CLI command printing one JSON object and copies member key to out. */
static void
it_cli_field(const char *dsn, const char *args, const char *key, char *out, size_t n,
             const char *key2, char *out2, size_t n2)
{
	char *text = it_cli(dsn, args);
	json_t *o = json_loads(text, 0, NULL);
	if (o == NULL)
		fail_msg("not JSON: %s", text);
	snprintf(out, n, "%s", json_string_value(json_object_get(o, key)));
	if (key2 != NULL)
		snprintf(out2, n2, "%s", json_string_value(json_object_get(o, key2)));
	json_decref(o);
	free(text);
}

/* ---- RPC helpers ---------------------------------------------------------------------- */

struct it_token {
	int code;
	char message[256];
	char access[4096];
	char refresh[128];
	char scope[256];
	int expires_in;
	char json[8192];
};

static void
it_token(const char *id, const char *secret, const char *grant, const char *refresh,
         const char *scope, const char *subject, struct it_token *t)
{
	Sb__Auth__TokenRequest rq = SB__AUTH__TOKEN_REQUEST__INIT;
	struct sb_rpc_result res;
	rq.grant_type = (char *)grant;
	rq.client_id = (char *)id;
	rq.client_secret = (char *)secret;
	if (refresh != NULL)
		rq.refresh_token = (char *)refresh;
	if (scope != NULL)
		rq.scope = (char *)scope;
	if (subject != NULL) {
		rq.subject_token = (char *)subject;
		rq.subject_token_type = "urn:switchboard:token-type:user-id";
	}
	memset(t, 0, sizeof(*t));
	assert_int_equal(sb_rpc_call(it.auth.cli, "auth.Token", &rq.base,
	                             &sb__auth__token_response__descriptor, NULL, &res),
	                 0);
	t->code = res.code;
	snprintf(t->message, sizeof(t->message), "%s", res.message);
	if (res.code == SB__RPC__CODE__OK) {
		Sb__Auth__TokenResponse *rs = (Sb__Auth__TokenResponse *)res.resp;
		snprintf(t->access, sizeof(t->access), "%s", rs->access_token);
		snprintf(t->refresh, sizeof(t->refresh), "%s", rs->refresh_token);
		snprintf(t->scope, sizeof(t->scope), "%s", rs->scope);
		snprintf(t->json, sizeof(t->json), "%s", rs->json);
		t->expires_in = rs->expires_in;
	}
	sb_rpc_result_free(&res);
}

/* it_introspect returns the response document (caller json_decref) or NULL with *code set. */
static json_t *
it_introspect(const char *id, const char *secret, const char *token, int *code)
{
	Sb__Auth__IntrospectRequest rq = SB__AUTH__INTROSPECT_REQUEST__INIT;
	struct sb_rpc_result res;
	json_t *doc = NULL;
	rq.client_id = (char *)id;
	rq.client_secret = (char *)secret;
	rq.token = (char *)token;
	assert_int_equal(sb_rpc_call(it.auth.cli, "auth.Introspect", &rq.base,
	                             &sb__auth__introspect_response__descriptor, NULL, &res),
	                 0);
	*code = res.code;
	if (res.code == SB__RPC__CODE__OK) {
		Sb__Auth__IntrospectResponse *rs = (Sb__Auth__IntrospectResponse *)res.resp;
		doc = json_loads(rs->json, 0, NULL);
		assert_non_null(doc);
		assert_int_equal(json_is_true(json_object_get(doc, "active")), rs->active);
	}
	sb_rpc_result_free(&res);
	return doc;
}

static bool
it_active(const char *id, const char *secret, const char *token)
{
	int code;
	json_t *doc = it_introspect(id, secret, token, &code);
	assert_int_equal(code, SB__RPC__CODE__OK);
	bool active = json_is_true(json_object_get(doc, "active"));
	if (!active)
		assert_int_equal(json_object_size(doc), 1); /* exactly {"active":false} */
	json_decref(doc);
	return active;
}

static int
it_revoke(const char *id, const char *secret, const char *token, const char *hint)
{
	Sb__Auth__RevokeRequest rq = SB__AUTH__REVOKE_REQUEST__INIT;
	struct sb_rpc_result res;
	rq.client_id = (char *)id;
	rq.client_secret = (char *)secret;
	rq.token = (char *)token;
	rq.token_type_hint = (char *)hint;
	assert_int_equal(sb_rpc_call(it.auth.cli, "auth.Revoke", &rq.base,
	                             &sb__auth__revoke_response__descriptor, NULL, &res),
	                 0);
	int code = res.code;
	sb_rpc_result_free(&res);
	return code;
}

/* it_jwks returns the JWKS document of p (caller frees). */
static char *
it_jwks(struct it_proc *p)
{
	Sb__Auth__JwksRequest rq = SB__AUTH__JWKS_REQUEST__INIT;
	struct sb_rpc_result res;
	assert_int_equal(sb_rpc_call(p->cli, "auth.Jwks", &rq.base,
	                             &sb__auth__jwks_response__descriptor, NULL, &res),
	                 0);
	assert_int_equal(res.code, SB__RPC__CODE__OK);
	char *s = strdup(((Sb__Auth__JwksResponse *)res.resp)->json);
	sb_rpc_result_free(&res);
	return s;
}

/* it_verify checks token against p's JWKS as an edge would; returns the sb_jwt result. */
static int
it_verify(struct it_proc *p, const char *token, struct sb_jwt_principal *pr)
{
	char *jwks = it_jwks(p);
	struct sb_jwt_keyset *set = NULL;
	struct sb_jwt_verifier *v = NULL;
	struct sb_jwt_policy pol = { .issuer = "http://127.0.0.1:8000",
		                     .audience = "switchboard",
		                     .typ = "at+jwt" };
	assert_int_equal(sb_jwt_keyset_parse_jwks(jwks, strlen(jwks), &set, NULL), 0);
	assert_int_equal(sb_jwt_verifier_new(&pol, set, &v), 0);
	int rv = sb_jwt_verify(v, token, strlen(token), pr);
	sb_jwt_verifier_free(v);
	sb_jwt_keyset_release(set);
	free(jwks);
	return rv;
}

/* it_header_kid writes the kid of token's header to kid. */
static void
it_header_kid(const char *token, char *kid, size_t n)
{
	unsigned char buf[1024];
	size_t len = 0;
	const char *dot = strchr(token, '.');
	assert_non_null(dot);
	assert_int_equal(
	    sb_jwt_b64url_decode(token, (size_t)(dot - token), buf, sizeof(buf) - 1, &len), 0);
	buf[len] = '\0';
	json_t *h = json_loads((char *)buf, 0, NULL);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "at+jwt");
	snprintf(kid, n, "%s", json_string_value(json_object_get(h, "kid")));
	json_decref(h);
}

static bool
it_jwks_has(struct it_proc *p, const char *kid)
{
	char *jwks = it_jwks(p);
	char needle[200];
	snprintf(needle, sizeof(needle), "\"kid\": \"%s\"", kid);
	bool has = strstr(jwks, needle) != NULL;
	snprintf(needle, sizeof(needle), "\"kid\":\"%s\"", kid);
	has = has || strstr(jwks, needle) != NULL;
	free(jwks);
	return has;
}

/* it_log_has tells whether p's log has a line containing every one of the strings. */
static bool
it_log_has(struct it_proc *p, const char *a, const char *b, const char *c)
{
	char line[8192];
	bool found = false;
	FILE *f = fopen(p->log, "r");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, a) && strstr(line, b) && (c == NULL || strstr(line, c));
	fclose(f);
	return found;
}

static bool
it_log_contains(struct it_proc *p, const char *s)
{
	return it_log_has(p, s, s, NULL);
}

/* ---- scenarios ------------------------------------------------------------------------ */

static void
test_client_credentials(void **state)
{
	struct it_token t;
	struct sb_jwt_principal pr;
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__OK);
	assert_int_equal(t.expires_in, 900);
	assert_string_equal(t.scope, "messages:read messages:write");
	assert_true(strncmp(t.refresh, "sbr_", 4) == 0);
	/* the document the gateway serves verbatim */
	json_t *doc = json_loads(t.json, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(doc, "expires_in")), 900);
	assert_string_equal(json_string_value(json_object_get(doc, "access_token")), t.access);
	assert_string_equal(json_string_value(json_object_get(doc, "refresh_token")), t.refresh);
	json_decref(doc);
	/* an edge verifies it from the JWKS: claims name the user, tenant and client */
	assert_int_equal(it_verify(&it.auth, t.access, &pr), 0);
	assert_string_equal(pr.sub, it.user1);
	assert_string_equal(pr.user_id, it.user1);
	assert_string_equal(pr.tenant_id, it.tenant1);
	assert_string_equal(pr.client_id, it.svc_id);
	assert_true(sb_jwt_has_scope(&pr, "messages:write"));
	assert_int_equal(strlen(pr.jti), 36);
	assert_int_equal(pr.exp - pr.iat, 900);
	/* a narrower scope may be asked for, a wider one not */
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, "messages:read", NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__OK);
	assert_string_equal(t.scope, "messages:read");
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, "auth:admin", NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "invalid_scope: ", 15) == 0);
	it_token(it.svc_id, it.svc_secret, "password", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "unsupported_grant_type: ", 24) == 0);
	it_token(it.svc_id, it.svc_secret, "", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "invalid_request: ", 17) == 0);
}

static void
test_wrong_secret_is_invalid_client_and_audited(void **state)
{
	struct it_token t;
	(void)state;
	it_token(it.svc_id, "not-the-secret-XYZZY", "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__UNAUTHENTICATED);
	assert_true(strncmp(t.message, "invalid_client: ", 16) == 0);
	it_token("cl_nobody", "whatever", "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__UNAUTHENTICATED);
	it_token(it.svc_id, "", "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__UNAUTHENTICATED);
	assert_true(
	    it_log_has(&it.auth, "\"audit\":true", "\"event\":\"client_auth_failed\"", it.svc_id));
	assert_true(it_log_has(&it.auth, "\"audit\":true", "\"reason\":\"wrong secret\"", NULL));
	assert_true(it_log_has(&it.auth, "\"audit\":true", "\"reason\":\"unknown client\"", NULL));
	/* neither the presented nor the real secret ever reaches the log */
	assert_false(it_log_contains(&it.auth, "XYZZY"));
	assert_false(it_log_contains(&it.auth, it.svc_secret));
	/* the counter moved */
	assert_true(has_metric(&it.auth, "auth_client_auth_failures_total"));
	/* and the audit table has the rows */
	struct sb_pg *pg = NULL;
	PGresult *r = NULL;
	assert_int_equal(sb_pg_open(it.dsn, NULL, &pg), 0);
	assert_int_equal(sb_pg_exec(pg,
	                            "SELECT count(*) FROM auth.audit_events WHERE event = "
	                            "'client_auth_failed'",
	                            &r),
	                 0);
	assert_true(atoi(PQgetvalue(r, 0, 0)) >= 3);
	PQclear(r);
	sb_pg_close(pg);
}

static void
test_disabled_client_refused(void **state)
{
	struct it_token t;
	char id[64], secret[128], cmd[256];
	(void)state;
	it_cli_field(it.dsn,
	             "client create --tenant t1 --name doomed --scopes 'messages:read' --user u1",
	             "client_id", id, sizeof(id), "client_secret", secret, sizeof(secret));
	it_token(id, secret, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__OK);
	char refresh[128];
	snprintf(refresh, sizeof(refresh), "%s", t.refresh);
	snprintf(cmd, sizeof(cmd), "client disable %s", id);
	free(it_cli(it.dsn, cmd));
	it_token(id, secret, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__UNAUTHENTICATED);
	assert_true(strncmp(t.message, "invalid_client: ", 16) == 0);
	/* its refresh tokens were revoked with it */
	assert_false(it_active(it.svc_id, it.svc_secret, refresh));
	/* the list shows it disabled */
	char *list = it_cli(it.dsn, "client list --tenant t1");
	char *row = strstr(list, id);
	assert_non_null(row);
	assert_non_null(strstr(row, " no "));
	free(list);
	/* rotate-secret: the old secret stops working, the new one works */
	char id2[64], s2[128], s3[128];
	it_cli_field(it.dsn, "client create --tenant t1 --name rotated --scopes 'messages:read'",
	             "client_id", id2, sizeof(id2), "client_secret", s2, sizeof(s2));
	snprintf(cmd, sizeof(cmd), "client rotate-secret %s", id2);
	it_cli_field(it.dsn, cmd, "client_secret", s3, sizeof(s3), NULL, NULL, 0);
	assert_string_not_equal(s2, s3);
	it_token(id2, s2, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__UNAUTHENTICATED);
	it_token(id2, s3, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__OK);
}

static void
test_refresh_rotation(void **state)
{
	struct it_token t1, t2, t3;
	struct sb_jwt_principal pr;
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t1);
	assert_int_equal(t1.code, SB__RPC__CODE__OK);
	assert_true(it_active(it.svc_id, it.svc_secret, t1.refresh));
	it_token(it.svc_id, it.svc_secret, "refresh_token", t1.refresh, NULL, NULL, &t2);
	assert_int_equal(t2.code, SB__RPC__CODE__OK);
	assert_string_not_equal(t2.refresh, t1.refresh);
	assert_int_equal(it_verify(&it.auth, t2.access, &pr), 0);
	assert_string_equal(pr.sub, it.user1);
	/* the old one is used up, the new one is live */
	assert_false(it_active(it.svc_id, it.svc_secret, t1.refresh));
	assert_true(it_active(it.svc_id, it.svc_secret, t2.refresh));
	/* /auth/refresh sends no grant_type: the refresh token alone selects the grant */
	it_token(it.svc_id, it.svc_secret, "", t2.refresh, NULL, NULL, &t3);
	assert_int_equal(t3.code, SB__RPC__CODE__OK);
	/* another client cannot use it */
	it_token(it.admin_id, it.admin_secret, "refresh_token", t3.refresh, NULL, NULL, &t2);
	assert_int_equal(t2.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t2.message, "invalid_grant: ", 15) == 0);
	it_token(it.svc_id, it.svc_secret, "refresh_token", "sbr_garbage", NULL, NULL, &t2);
	assert_int_equal(t2.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t2.message, "invalid_grant: ", 15) == 0);
}

static void
test_refresh_reuse_revokes_family(void **state)
{
	struct it_token t1, t2, t3;
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t1);
	it_token(it.svc_id, it.svc_secret, "refresh_token", t1.refresh, NULL, NULL, &t2);
	assert_int_equal(t2.code, SB__RPC__CODE__OK);
	/* the thief (or the victim) presents the used token again */
	it_token(it.svc_id, it.svc_secret, "refresh_token", t1.refresh, NULL, NULL, &t3);
	assert_int_equal(t3.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t3.message, "invalid_grant: ", 15) == 0);
	/* now the newest token of the family fails too */
	assert_false(it_active(it.svc_id, it.svc_secret, t2.refresh));
	it_token(it.svc_id, it.svc_secret, "refresh_token", t2.refresh, NULL, NULL, &t3);
	assert_int_equal(t3.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(it_log_has(&it.auth, "\"audit\":true", "\"event\":\"refresh_reuse\"", NULL));
	assert_false(it_log_contains(&it.auth, t1.refresh + 4));
}

static void
test_revoke_refresh_token(void **state)
{
	struct it_token t, t2;
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t);
	/* another tenant's client cannot revoke it (answered OK, nothing happens) */
	assert_int_equal(it_revoke(it.other_id, it.other_secret, t.refresh, "refresh_token"),
	                 SB__RPC__CODE__OK);
	assert_true(it_active(it.svc_id, it.svc_secret, t.refresh));
	assert_int_equal(it_revoke(it.svc_id, it.svc_secret, t.refresh, "refresh_token"),
	                 SB__RPC__CODE__OK);
	assert_false(it_active(it.svc_id, it.svc_secret, t.refresh));
	it_token(it.svc_id, it.svc_secret, "refresh_token", t.refresh, NULL, NULL, &t2);
	assert_int_equal(t2.code, SB__RPC__CODE__INVALID_ARGUMENT);
	/* unknown tokens are OK too (RFC 7009 section 2.2); bad credentials are not */
	assert_int_equal(it_revoke(it.svc_id, it.svc_secret, "sbr_unknown", ""), SB__RPC__CODE__OK);
	assert_int_equal(it_revoke(it.svc_id, it.svc_secret, "garbage", ""), SB__RPC__CODE__OK);
	assert_int_equal(it_revoke(it.svc_id, "wrong", t.refresh, ""),
	                 SB__RPC__CODE__UNAUTHENTICATED);
	assert_true(it_log_has(&it.auth, "\"event\":\"token_revoked\"",
	                       "\"type\":\"refresh_token\"", NULL));
}

static void
test_revoke_access_token_sets_redis_key(void **state)
{
	struct it_token t;
	struct sb_jwt_principal pr;
	struct sb_redis *r = NULL;
	char key[300];
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t);
	assert_int_equal(it_verify(&it.auth, t.access, &pr), 0);
	assert_true(it_active(it.svc_id, it.svc_secret, t.access));
	assert_int_equal(it_revoke(it.svc_id, it.svc_secret, t.access, "access_token"),
	                 SB__RPC__CODE__OK);
	assert_int_equal(sb_redis_open(getenv("SB_TEST_REDIS_URL"), &r), 0);
	snprintf(key, sizeof(key), "sb:revoked:jti:%s", pr.jti);
	redisReply *rep = sb_redis_command(r, "TTL %s", key);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	long long left = pr.exp - time(NULL);
	assert_true(rep->integer > 0);
	assert_true(rep->integer <= left + 1);
	assert_true(rep->integer >= left - 5);
	freeReplyObject(rep);
	sb_redis_close(r);
	assert_false(it_active(it.svc_id, it.svc_secret, t.access));
}

static void
test_introspect(void **state)
{
	struct it_token t;
	int code;
	(void)state;
	it_token(it.svc_id, it.svc_secret, "client_credentials", NULL, NULL, NULL, &t);
	json_t *doc = it_introspect(it.svc_id, it.svc_secret, t.access, &code);
	assert_int_equal(code, SB__RPC__CODE__OK);
	assert_true(json_is_true(json_object_get(doc, "active")));
	assert_string_equal(json_string_value(json_object_get(doc, "client_id")), it.svc_id);
	assert_string_equal(json_string_value(json_object_get(doc, "sub")), it.user1);
	assert_string_equal(json_string_value(json_object_get(doc, "user_id")), it.user1);
	assert_string_equal(json_string_value(json_object_get(doc, "tenant_id")), it.tenant1);
	assert_string_equal(json_string_value(json_object_get(doc, "scope")),
	                    "messages:read messages:write");
	assert_string_equal(json_string_value(json_object_get(doc, "iss")),
	                    "http://127.0.0.1:8000");
	assert_string_equal(json_string_value(json_object_get(doc, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(doc, "exp")) -
	                     json_integer_value(json_object_get(doc, "iat")),
	                 900);
	json_decref(doc);
	/* garbage, a forged token and another tenant's view are all inactive */
	assert_false(it_active(it.svc_id, it.svc_secret, "garbage"));
	assert_false(it_active(it.svc_id, it.svc_secret, "a.b.c"));
	char forged[4096];
	snprintf(forged, sizeof(forged), "%s", t.access);
	char *sig = strrchr(forged, '.') + 1;
	sig[3] = sig[3] == 'A' ? 'B' : 'A';
	assert_false(it_active(it.svc_id, it.svc_secret, forged));
	assert_false(it_active(it.other_id, it.other_secret, t.access));
	/* client authentication is required */
	doc = it_introspect(it.svc_id, "nope", t.access, &code);
	assert_null(doc);
	assert_int_equal(code, SB__RPC__CODE__UNAUTHENTICATED);
}

static void
test_token_exchange(void **state)
{
	struct it_token t;
	struct sb_jwt_principal pr;
	const char *ex = "urn:ietf:params:oauth:grant-type:token-exchange";
	(void)state;
	it_token(it.admin_id, it.admin_secret, ex, NULL, NULL, it.user1, &t);
	assert_int_equal(t.code, SB__RPC__CODE__OK);
	assert_string_equal(t.refresh, "");
	assert_int_equal(it_verify(&it.auth, t.access, &pr), 0);
	assert_string_equal(pr.sub, it.user1);
	assert_string_equal(pr.user_id, it.user1);
	assert_string_equal(pr.tenant_id, it.tenant1);
	assert_string_equal(pr.client_id, it.admin_id);
	/* the issuing powers are not delegated to the user's token */
	assert_false(sb_jwt_has_scope(&pr, "tokens:issue"));
	assert_false(sb_jwt_has_scope(&pr, "auth:admin"));
	assert_true(sb_jwt_has_scope(&pr, "messages:read"));
	json_t *doc = json_loads(t.json, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(doc, "issued_token_type")),
	                    "urn:ietf:params:oauth:token-type:access_token");
	json_decref(doc);
	/* another tenant's user is refused, like an unknown one */
	it_token(it.admin_id, it.admin_secret, ex, NULL, NULL, it.user2, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "invalid_grant: ", 15) == 0);
	it_token(it.admin_id, it.admin_secret, ex, NULL, NULL, "not-a-uuid", &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	it_token(it.admin_id, it.admin_secret, ex, NULL, "tokens:issue", it.user1, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "invalid_scope: ", 15) == 0);
	/* a client without tokens:issue may not */
	it_token(it.svc_id, it.svc_secret, ex, NULL, NULL, it.user1, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "unauthorized_client: ", 21) == 0);
	/* the subject must be named as documented */
	it_token(it.admin_id, it.admin_secret, ex, NULL, NULL, NULL, &t);
	assert_int_equal(t.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(strncmp(t.message, "invalid_request: ", 17) == 0);
}

static void
test_metrics(void **state)
{
	(void)state;
	assert_true(has_metric(&it.auth, "auth_tokens_issued_total{grant=\"client_credentials\"}"));
	assert_true(has_metric(&it.auth, "auth_tokens_issued_total{grant=\"refresh_token\"}"));
	assert_true(has_metric(&it.auth, "auth_tokens_issued_total{grant=\"token_exchange\"}"));
	assert_true(has_metric(&it.auth, "auth_client_auth_failures_total"));
	assert_true(has_metric(&it.auth, "auth_refresh_reuse_total"));
	assert_true(has_metric(&it.auth, "auth_revocations_total{type=\"access_token\"}"));
	assert_true(has_metric(&it.auth, "auth_revocations_total{type=\"refresh_token\"}"));
	assert_false(has_metric(&it.auth, "auth_no_such_metric_total"));
}

static void
test_metadata(void **state)
{
	Sb__Auth__MetadataRequest rq = SB__AUTH__METADATA_REQUEST__INIT;
	struct sb_rpc_result res;
	(void)state;
	assert_int_equal(sb_rpc_call(it.auth.cli, "auth.Metadata", &rq.base,
	                             &sb__auth__metadata_response__descriptor, NULL, &res),
	                 0);
	assert_int_equal(res.code, SB__RPC__CODE__OK);
	json_t *m = json_loads(((Sb__Auth__MetadataResponse *)res.resp)->json, 0, NULL);
	sb_rpc_result_free(&res);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "issuer")),
	                    "http://127.0.0.1:8000");
	assert_string_equal(json_string_value(json_object_get(m, "token_endpoint")),
	                    "http://127.0.0.1:8000/auth/token");
	assert_string_equal(json_string_value(json_object_get(m, "jwks_uri")),
	                    "http://127.0.0.1:8000/.well-known/jwks.json");
	assert_string_equal(json_string_value(json_object_get(m, "introspection_endpoint")),
	                    "http://127.0.0.1:8000/auth/introspect");
	assert_string_equal(json_string_value(json_object_get(m, "revocation_endpoint")),
	                    "http://127.0.0.1:8000/auth/revoke");
	assert_int_equal(json_array_size(json_object_get(m, "grant_types_supported")), 3);
	assert_int_equal(
	    json_array_size(json_object_get(m, "token_endpoint_auth_methods_supported")), 2);
	json_decref(m);
}

static void
test_private_keys_sealed_at_rest(void **state)
{
	struct sb_pg *pg = NULL;
	PGresult *r = NULL;
	(void)state;
	assert_int_equal(sb_pg_open(it.dsn, NULL, &pg), 0);
	assert_int_equal(sb_pg_exec(pg,
	                            "SELECT count(*), count(*) FILTER (WHERE private_key LIKE "
	                            "'aes256gcm:%' AND private_key NOT LIKE '%PRIVATE%') FROM "
	                            "auth.signing_keys",
	                            &r),
	                 0);
	assert_true(atoi(PQgetvalue(r, 0, 0)) >= 1);
	assert_string_equal(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	/* and secrets are hashes, never the secret */
	const char *p[] = { it.svc_id };
	assert_int_equal(sb_pg_exec_params(pg,
	                                   "SELECT secret_hash FROM auth.clients WHERE client_id = "
	                                   "$1",
	                                   1, p, &r),
	                 0);
	assert_true(strncmp(PQgetvalue(r, 0, 0), "pbkdf2-sha256$100000$", 21) == 0);
	assert_null(strstr(PQgetvalue(r, 0, 0), it.svc_secret));
	PQclear(r);
	sb_pg_close(pg);
}

/* Key rotation on its own database with 5 s access tokens: old tokens keep verifying against
 * the JWKS, new tokens carry the new kid, and the old key leaves the JWKS only after its last
 * token has expired. The expired token is then inactive. */
static void
test_key_rotation(void **state)
{
	char dsn[512], id[64], secret[128], kid1[128], kid2[128], newkid[128];
	const char *env[] = { "SB_AUTH_ACCESS_TTL_S=5", "SB_AUTH_SIGNING_ALG=RS256", NULL };
	struct it_proc saved = it.auth;
	struct it_token t1, t2;
	struct sb_jwt_principal pr, pr1;
	(void)state;
	it_db("auth_rot", dsn, sizeof(dsn));
	it_start(&it.auth, dsn, "rot", env);
	it_wait_ready(&it.auth);
	it_cli_field(dsn, "client create --tenant rt --name c --scopes 'a b'", "client_id", id,
	             sizeof(id), "client_secret", secret, sizeof(secret));
	it_token(id, secret, "client_credentials", NULL, NULL, NULL, &t1);
	assert_int_equal(t1.code, SB__RPC__CODE__OK);
	it_header_kid(t1.access, kid1, sizeof(kid1));
	char *jwks = it_jwks(&it.auth);
	assert_non_null(strstr(jwks, "\"RS256\""));
	free(jwks);

	it_cli_field(dsn, "keys rotate", "kid", newkid, sizeof(newkid), NULL, NULL, 0);
	assert_string_not_equal(newkid, kid1);
	assert_int_equal(it_verify(&it.auth, t1.access, &pr1), 0);
	/* the running replica picks the rotation up within its reload interval */
	kid2[0] = '\0';
	for (int i = 0; i < 30 && strcmp(kid2, newkid) != 0; i++) {
		it_sleep_ms(100);
		it_token(id, secret, "client_credentials", NULL, NULL, NULL, &t2);
		assert_int_equal(t2.code, SB__RPC__CODE__OK);
		it_header_kid(t2.access, kid2, sizeof(kid2));
	}
	assert_string_equal(kid2, newkid);
	assert_true(it_jwks_has(&it.auth, kid1));
	assert_true(it_jwks_has(&it.auth, kid2));
	assert_int_equal(it_verify(&it.auth, t2.access, &pr), 0);

	/* the old key stays while a token it signed may live, then leaves */
	bool gone = false;
	for (int ms = 0; ms < 15000 && !gone; ms += 100) {
		gone = !it_jwks_has(&it.auth, kid1);
		if (!gone)
			it_sleep_ms(100);
	}
	assert_true(gone);
	assert_true(time(NULL) >= pr1.exp); /* not before t1 had expired */
	assert_true(it_jwks_has(&it.auth, kid2));
	/* an expired token is inactive */
	assert_false(it_active(id, secret, t1.access));
	assert_int_equal(auth_stop(&it.auth), 0);
	it.auth = saved;
}

/* Two replicas starting together on a fresh database create exactly one signing key. */
static void
test_two_replicas_one_key(void **state)
{
	char dsn[512];
	struct it_proc a, b;
	struct sb_pg *pg = NULL;
	PGresult *r = NULL;
	(void)state;
	it_db("auth_race", dsn, sizeof(dsn));
	it_start(&a, dsn, "race-a", NULL);
	it_start(&b, dsn, "race-b", NULL);
	it_wait_ready(&a);
	it_wait_ready(&b);
	assert_int_equal(sb_pg_open(dsn, NULL, &pg), 0);
	assert_int_equal(sb_pg_exec(pg, "SELECT count(*) FROM auth.signing_keys", &r), 0);
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	sb_pg_close(pg);
	char *ja = it_jwks(&a), *jb = it_jwks(&b);
	assert_string_equal(ja, jb);
	free(ja);
	free(jb);
	assert_int_equal(auth_stop(&a), 0);
	assert_int_equal(auth_stop(&b), 0);
}

static int
setup(void **state)
{
	const char *build = getenv("SB_BUILD_ROOT");
	(void)state;
	assert_non_null(build);
	snprintf(it.bin, sizeof(it.bin), "%s/bin/sb-auth", build);
	if (access(it.bin, X_OK) != 0)
		fail_msg("%s is not built", it.bin);
	it_db("auth_it", it.dsn, sizeof(it.dsn));
	it_start(&it.auth, it.dsn, "main", NULL);
	it_wait_ready(&it.auth);
	it_cli_field(it.dsn, "user create --tenant t1 --name u1", "user_id", it.user1,
	             sizeof(it.user1), "tenant_id", it.tenant1, sizeof(it.tenant1));
	it_cli_field(it.dsn, "user create --tenant t2 --name u2", "user_id", it.user2,
	             sizeof(it.user2), "tenant_id", it.tenant2, sizeof(it.tenant2));
	it_cli_field(it.dsn,
	             "client create --tenant t1 --name svc --scopes 'messages:read "
	             "messages:write' --user u1",
	             "client_id", it.svc_id, sizeof(it.svc_id), "client_secret", it.svc_secret,
	             sizeof(it.svc_secret));
	it_cli_field(it.dsn,
	             "client create --tenant t1 --name admin --scopes 'tokens:issue auth:admin "
	             "messages:read'",
	             "client_id", it.admin_id, sizeof(it.admin_id), "client_secret",
	             it.admin_secret, sizeof(it.admin_secret));
	it_cli_field(it.dsn, "client create --tenant t2 --name other --scopes 'messages:read'",
	             "client_id", it.other_id, sizeof(it.other_id), "client_secret",
	             it.other_secret, sizeof(it.other_secret));
	/* the CLI refuses bad input with a clear message and a non-zero status */
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "DATABASE_URL='%s' %s client create --tenant t1 2>&1", it.dsn,
	         it.bin);
	assert_int_not_equal(system(cmd), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return auth_stop(&it.auth); /* any other sb-auth left is killed at exit (it.h) */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_credentials),
		cmocka_unit_test(test_wrong_secret_is_invalid_client_and_audited),
		cmocka_unit_test(test_disabled_client_refused),
		cmocka_unit_test(test_refresh_rotation),
		cmocka_unit_test(test_refresh_reuse_revokes_family),
		cmocka_unit_test(test_revoke_refresh_token),
		cmocka_unit_test(test_revoke_access_token_sets_redis_key),
		cmocka_unit_test(test_introspect),
		cmocka_unit_test(test_token_exchange),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_private_keys_sealed_at_rest),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_two_replicas_one_key),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
