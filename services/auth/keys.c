/* keys.c: signing keys. Every replica signs with the one active key stored in auth.signing_keys
 * (private key sealed with AES-256-GCM when SB_AUTH_KEY_ENCRYPTION_KEY is set). The first start
 * creates a key under an advisory lock; `sb-auth keys rotate` retires the active key and adds a
 * new one; each process reloads the keys every SB_AUTH_KEY_RELOAD_MS. A retired key stays in
 * the JWKS until the last token it signed has expired: retired_at + access TTL + one reload
 * interval (a replica may sign with it until its next reload). */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"

#define AUTH_KEYS_LOCK "7101001" /* pg_advisory_xact_lock key of key creation */

struct auth_keys {
	const struct auth_cfg *cfg;
	unsigned char kek[32];
	int has_kek;
	pthread_rwlock_t mu;            /* guards active and jwks */
	struct sb_jwt_key *active;      /* private key of the active kid, or NULL */
	char *jwks;                     /* {"keys":[...]} */
	struct sb_jwt_verifier *verify; /* holds the published keys */
	struct sb_pg *pg;               /* the reload thread's connection */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stopping;
};

/* auth_keys_insert_new generates a key of the configured algorithm and inserts it active. */
static int
auth_keys_insert_new(struct sb_pg *pg, const struct auth_cfg *cfg, char *kid_out)
{
	struct sb_jwt_key *key = NULL;
	json_t *jwk = NULL;
	char *jwk_text = NULL, *pem = NULL, *stored = NULL;
	unsigned char kek[32];
	PGresult *r = NULL;
	int ret, has_kek = auth_config_kek(cfg, kek);

	if (has_kek < 0)
		return has_kek;
	if ((ret = sb_jwt_key_generate(auth_config_alg(cfg), 2048, &key)) != 0 ||
	    (ret = sb_jwt_key_public_jwk(key, &jwk)) != 0 ||
	    (ret = sb_jwt_key_private_pem(key, &pem)) != 0)
		goto done;
	ret = SB_ENOMEM;
	if ((jwk_text = json_dumps(jwk, JSON_COMPACT)) == NULL)
		goto done;
	const char *kid = sb_jwt_key_kid(key);
	if (has_kek) {
		if ((ret = auth_seal(kek, kid, pem, strlen(pem), &stored)) != 0)
			goto done;
	} else {
		size_t n = strlen(pem) + 5;
		if ((stored = malloc(n)) == NULL)
			goto done;
		snprintf(stored, n, "pem:%s", pem);
	}
	const char *p[] = { kid, sb_jwt_alg_name(sb_jwt_key_alg(key)), jwk_text, stored };
	ret = sb_pg_exec_params(pg,
	                        "INSERT INTO auth.signing_keys (kid, alg, public_jwk, private_key) "
	                        "VALUES ($1, $2, $3::jsonb, $4)",
	                        4, p, &r);
	if (ret == 0 && kid_out != NULL)
		snprintf(kid_out, AUTH_ID_MAX, "%s", kid);
done:
	explicit_bzero(kek, sizeof(kek));
	PQclear(r);
	sb_jwt_secret_free(stored);
	sb_jwt_secret_free(pem);
	free(jwk_text);
	json_decref(jwk);
	sb_jwt_key_free(key);
	return ret;
}

/* auth_keys_locked_txn runs BEGIN, takes the key-creation lock and retires the active key when
 * retire is set, or returns 1 in *have when an active key exists. */
static int
auth_keys_change(struct sb_pg *pg, const struct auth_cfg *cfg, bool retire, char *kid)
{
	PGresult *r = NULL;
	int rv = sb_pg_begin(pg);
	if (rv != 0)
		return rv;
	if ((rv = sb_pg_exec(pg, "SELECT pg_advisory_xact_lock(" AUTH_KEYS_LOCK ")", NULL)) != 0)
		goto fail;
	if (retire) {
		rv = sb_pg_exec(
		    pg,
		    "UPDATE auth.signing_keys SET retired_at = now() WHERE retired_at IS "
		    "NULL",
		    NULL);
	} else {
		rv = sb_pg_exec(pg, "SELECT kid FROM auth.signing_keys WHERE retired_at IS NULL",
		                &r);
		if (rv == 0 && PQntuples(r) > 0) {
			if (kid != NULL)
				snprintf(kid, AUTH_ID_MAX, "%s", PQgetvalue(r, 0, 0));
			PQclear(r);
			return sb_pg_commit(pg);
		}
		PQclear(r);
	}
	if (rv != 0 || (rv = auth_keys_insert_new(pg, cfg, kid)) != 0)
		goto fail;
	if ((rv = sb_pg_commit(pg)) == 0)
		sb_log_kv(SB_LOG_INFO, retire ? "signing key rotated" : "signing key created",
		          "kid", kid ? kid : "", "alg", cfg->signing_alg, NULL);
	return rv;
fail:
	sb_pg_rollback(pg);
	return rv;
}

int
auth_keys_ensure(struct sb_pg *pg, const struct auth_cfg *cfg)
{
	char kid[AUTH_ID_MAX] = "";
	return auth_keys_change(pg, cfg, false, kid);
}

int
auth_keys_rotate(struct sb_pg *pg, const struct auth_cfg *cfg, char *kid)
{
	return auth_keys_change(pg, cfg, true, kid);
}

/* auth_keys_private reads a stored private key ("pem:" or sealed) of kid. */
static int
auth_keys_private(const unsigned char *kek, int has_kek, const char *kid, const char *stored,
                  struct sb_jwt_key **out)
{
	char *pem = NULL;
	int rv;
	if (strncmp(stored, "pem:", 4) == 0) {
		if (has_kek)
			sb_log_kv(
			    SB_LOG_WARN,
			    "signing key stored unencrypted although SB_AUTH_KEY_ENCRYPTION_KEY "
			    "is set (created before the key was); `sb-auth keys rotate` replaces "
			    "it with a sealed one",
			    "kid", kid, NULL);
		rv = sb_jwt_key_from_pem(stored + 4, strlen(stored + 4), out);
	} else if (!has_kek) {
		sb_log_kv(SB_LOG_ERROR,
		          "signing key is sealed but SB_AUTH_KEY_ENCRYPTION_KEY is unset", "kid",
		          kid, NULL);
		return SB_EINVAL;
	} else if ((rv = auth_open(kek, kid, stored, &pem)) == 0) {
		rv = sb_jwt_key_from_pem(pem, strlen(pem), out);
		sb_jwt_secret_free(pem);
	} else {
		sb_log_kv(SB_LOG_ERROR, "cannot unseal signing key (wrong encryption key?)", "kid",
		          kid, NULL);
	}
	return rv;
}

int
auth_keys_load_active(struct sb_pg *pg, const struct auth_cfg *cfg, struct sb_jwt_key **out)
{
	unsigned char kek[32];
	PGresult *r = NULL;
	int rv, has_kek = auth_config_kek(cfg, kek);
	if (has_kek < 0)
		return has_kek;
	rv = sb_pg_exec(
	    pg, "SELECT kid, private_key FROM auth.signing_keys WHERE retired_at IS NULL", &r);
	if (rv == 0 && PQntuples(r) != 1)
		rv = SB_ENOTFOUND;
	if (rv == 0)
		rv = auth_keys_private(kek, has_kek, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), out);
	explicit_bzero(kek, sizeof(kek));
	PQclear(r);
	return rv;
}

/* auth_keys_load reads the published keys and the active private key from the database and
 * swaps them in. */
static int
auth_keys_load(struct auth_keys *k)
{
	PGresult *r = NULL;
	struct sb_buf doc = SB_BUF_INIT;
	struct sb_jwt_keyset *set = NULL;
	struct sb_jwt_key *active = NULL;
	char window[32];
	snprintf(window, sizeof(window), "%lld",
	         k->cfg->access_ttl_s + (k->cfg->key_reload_ms + 999) / 1000 + 1);
	const char *p[] = { window };
	int rv = sb_pg_exec_params(
	    k->pg,
	    "SELECT kid, public_jwk::text, CASE WHEN retired_at IS NULL THEN private_key END "
	    "FROM auth.signing_keys WHERE retired_at IS NULL OR retired_at > now() - "
	    "make_interval(secs => $1::int) ORDER BY created_at DESC",
	    1, p, &r);
	if (rv != 0)
		return rv;
	sb_buf_puts(&doc, "{\"keys\":[");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *kid = PQgetvalue(r, i, 0);
		sb_buf_printf(&doc, "%s%s", i ? "," : "", PQgetvalue(r, i, 1));
		if (!PQgetisnull(r, i, 2) && active == NULL) {
			bool same = false;
			pthread_rwlock_rdlock(&k->mu);
			same = k->active != NULL && strcmp(sb_jwt_key_kid(k->active), kid) == 0;
			pthread_rwlock_unlock(&k->mu);
			if (!same && (rv = auth_keys_private(k->kek, k->has_kek, kid,
			                                     PQgetvalue(r, i, 2), &active)) != 0)
				goto done;
		}
	}
	sb_buf_puts(&doc, "]}");
	rv = SB_ENOMEM;
	if (doc.data == NULL)
		goto done;
	if ((rv = sb_jwt_keyset_parse_jwks(doc.data, doc.len, &set, NULL)) != 0)
		goto done;
	sb_jwt_verifier_set_keys(k->verify, set);
	pthread_rwlock_wrlock(&k->mu);
	char *old_doc = k->jwks;
	struct sb_jwt_key *old_key = NULL;
	k->jwks = sb_buf_steal(&doc);
	if (active != NULL) {
		old_key = k->active;
		k->active = active;
		active = NULL;
	}
	pthread_rwlock_unlock(&k->mu);
	free(old_doc);
	if (old_key != NULL) {
		sb_log_kv(SB_LOG_INFO, "signing key loaded", "kid", sb_jwt_key_kid(k->active),
		          NULL);
		sb_jwt_key_free(old_key);
	} else if (k->active != NULL && k->thread_started == false) {
		sb_log_kv(SB_LOG_INFO, "signing key loaded", "kid", sb_jwt_key_kid(k->active),
		          NULL);
	}
	rv = 0;
done:
	sb_jwt_keyset_release(set);
	sb_jwt_key_free(active);
	sb_buf_free(&doc);
	PQclear(r);
	return rv;
}

static void *
auth_keys_thread(void *arg)
{
	struct auth_keys *k = arg;
	int last = 0;
	pthread_mutex_lock(&k->stop_mu);
	while (!k->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		long long ns = ts.tv_nsec + (k->cfg->key_reload_ms % 1000) * 1000000LL;
		ts.tv_sec += (time_t)(k->cfg->key_reload_ms / 1000 + ns / 1000000000LL);
		ts.tv_nsec = (long)(ns % 1000000000LL);
		int w = 0;
		while (!k->stopping && w != ETIMEDOUT)
			w = pthread_cond_timedwait(&k->stop_cv, &k->stop_mu, &ts);
		if (k->stopping)
			break;
		pthread_mutex_unlock(&k->stop_mu);
		int rv = auth_keys_load(k);
		if (rv != 0 && rv != last)
			sb_log_kv(SB_LOG_WARN, "cannot reload signing keys", "error",
			          sb_strerror(rv), NULL);
		last = rv;
		pthread_mutex_lock(&k->stop_mu);
	}
	pthread_mutex_unlock(&k->stop_mu);
	return NULL;
}

int
auth_keys_start(const struct auth_cfg *cfg, struct auth_keys **out)
{
	struct auth_keys *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	int rv;
	if (k == NULL)
		return SB_ENOMEM;
	k->cfg = cfg;
	pthread_rwlock_init(&k->mu, NULL);
	pthread_mutex_init(&k->stop_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((k->has_kek = auth_config_kek(cfg, k->kek)) < 0) {
		rv = SB_EINVAL;
		goto fail;
	}
	if (!k->has_kek)
		sb_log_kv(SB_LOG_WARN,
		          "SB_AUTH_KEY_ENCRYPTION_KEY is empty: private signing keys are stored in "
		          "PostgreSQL UNENCRYPTED; anyone who can read auth.signing_keys can mint "
		          "tokens. Set it (64 hex digits, from a secret store) everywhere but a "
		          "local run; see docs/decisions.md, 'Safe defaults'",
		          NULL);
	struct sb_jwt_policy pol = {
		.issuer = cfg->issuer,
		.audience = cfg->audience,
		.typ = "at+jwt",
	};
	if ((rv = sb_jwt_verifier_new(&pol, NULL, &k->verify)) != 0 ||
	    (rv = sb_pg_open(cfg->common.database_url, NULL, &k->pg)) != 0 ||
	    (rv = auth_keys_load(k)) != 0)
		goto fail;
	if (pthread_create(&k->thread, NULL, auth_keys_thread, k) != 0) {
		rv = SB_EIO;
		goto fail;
	}
	k->thread_started = true;
	*out = k;
	return 0;
fail:
	auth_keys_stop(k);
	return rv;
}

void
auth_keys_stop(struct auth_keys *k)
{
	if (k == NULL)
		return;
	if (k->thread_started) {
		pthread_mutex_lock(&k->stop_mu);
		k->stopping = true;
		pthread_cond_signal(&k->stop_cv);
		pthread_mutex_unlock(&k->stop_mu);
		pthread_join(k->thread, NULL);
	}
	sb_pg_close(k->pg);
	sb_jwt_verifier_free(k->verify);
	sb_jwt_key_free(k->active);
	free(k->jwks);
	explicit_bzero(k->kek, sizeof(k->kek));
	pthread_rwlock_destroy(&k->mu);
	pthread_mutex_destroy(&k->stop_mu);
	pthread_cond_destroy(&k->stop_cv);
	free(k);
}

int
auth_keys_sign(struct auth_keys *k, const json_t *claims, char **out)
{
	int rv = SB_EUNAVAIL;
	pthread_rwlock_rdlock(&k->mu);
	if (k->active != NULL)
		rv = sb_jwt_sign(k->active, claims, "at+jwt", out);
	pthread_rwlock_unlock(&k->mu);
	return rv;
}

int
auth_keys_verify(struct auth_keys *k, const char *token, struct sb_jwt_principal *p)
{
	return sb_jwt_verify(k->verify, token, strlen(token), p);
}

char *
auth_keys_jwks(struct auth_keys *k, struct sb_rpc_call *call)
{
	pthread_rwlock_rdlock(&k->mu);
	char *s = sb_rpc_call_strdup(call, k->jwks ? k->jwks : "{\"keys\":[]}");
	pthread_rwlock_unlock(&k->mu);
	return s;
}
