/* authn.c: access-token verification at the edge (RFC 6750 bearer tokens, RFC 8725 checks in
 * sb_jwt). Keys come from auth's JWKS over RPC: fetched at the first need, refetched when a
 * token names an unknown kid (at most once per SB_JWKS_MIN_REFRESH_MS), and every few minutes. */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_time.h"

#define GW_JWKS_MAX_AGE_MS (5 * 60 * 1000)

/* Verified tokens are remembered (keyed by the SHA-256 of the whole token) until they expire,
 * so a client presenting the same token again costs a hash, not a signature verification. An
 * entry is valid only for the key set it was verified with: replacing the keys (rotation,
 * removal) forgets every entry. Expiry is checked on every hit; revocation is checked on every
 * request, cached or not, in the local revocation set (revocation.c), with no I/O.
 * Direct-mapped, with striped locks. */
#define GW_TOKCACHE_SLOTS   2048
#define GW_TOKCACHE_STRIPES 32

struct gw_tokcache_entry {
	unsigned char hash[32];
	uint64_t gen; /* key-set generation at verification; 0 = empty */
	struct sb_jwt_principal principal;
};

struct gw_authn {
	struct sb_jwt_verifier *verifier;
	pthread_mutex_t fetch_mu; /* one fetch at a time */
	int64_t last_fetch_ms;    /* monotonic; 0 = never */
	bool have_keys;
	_Atomic uint64_t gen; /* incremented whenever the key set is replaced */
	int64_t leeway_s;
	/* gateway_token_cache_total{result}: checks answered by the cache (hit) or by verifying
	 * the signature (miss: not cached, evicted, expired or verified with an older key set). */
	struct sb_series *m_hit, *m_miss;
	pthread_mutex_t stripe[GW_TOKCACHE_STRIPES];
	struct gw_tokcache_entry cache[GW_TOKCACHE_SLOTS];
};

static bool
gw_tokcache_get(struct gw_authn *a, const unsigned char hash[32], struct sb_jwt_principal *out)
{
	uint64_t h;
	memcpy(&h, hash, sizeof(h));
	size_t slot = h % GW_TOKCACHE_SLOTS;
	pthread_mutex_t *mu = &a->stripe[slot % GW_TOKCACHE_STRIPES];
	bool hit = false;
	pthread_mutex_lock(mu);
	struct gw_tokcache_entry *e = &a->cache[slot];
	if (e->gen != 0 && e->gen == a->gen && memcmp(e->hash, hash, 32) == 0 &&
	    sb_time_now_ms() / 1000 < e->principal.exp + a->leeway_s) {
		*out = e->principal;
		hit = true;
	}
	pthread_mutex_unlock(mu);
	return hit;
}

static void
gw_tokcache_put(struct gw_authn *a, const unsigned char hash[32], uint64_t gen,
                const struct sb_jwt_principal *p)
{
	uint64_t h;
	memcpy(&h, hash, sizeof(h));
	size_t slot = h % GW_TOKCACHE_SLOTS;
	pthread_mutex_t *mu = &a->stripe[slot % GW_TOKCACHE_STRIPES];
	pthread_mutex_lock(mu);
	struct gw_tokcache_entry *e = &a->cache[slot];
	memcpy(e->hash, hash, 32);
	e->gen = gen;
	e->principal = *p;
	pthread_mutex_unlock(mu);
}

int
gw_authn_init(struct gw *gw)
{
	struct gw_authn *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SB_ENOMEM;
	struct sb_jwt_policy policy = {
		.issuer = gw->cfg->issuer,
		.audience = gw->cfg->audience,
		.typ = "at+jwt",
		.leeway_s = gw->cfg->leeway_s,
	};
	int rv = sb_jwt_verifier_new(&policy, NULL, &a->verifier);
	if (rv != 0) {
		free(a);
		return rv;
	}
	pthread_mutex_init(&a->fetch_mu, NULL);
	for (size_t i = 0; i < GW_TOKCACHE_STRIPES; i++)
		pthread_mutex_init(&a->stripe[i], NULL);
	a->gen = 1;
	a->leeway_s = gw->cfg->leeway_s;
	/* Registered once per process: registering again returns the same family. */
	struct sb_metric *m = sb_metrics_counter(
	    "gateway_token_cache_total",
	    "Access-token checks answered by the verified-token cache (hit) or by a signature "
	    "verification (miss).",
	    "result");
	a->m_hit = sb_metric_with(m, "hit");
	a->m_miss = sb_metric_with(m, "miss");
	gw->authn = a;
	return 0;
}

void
gw_authn_fini(struct gw *gw)
{
	struct gw_authn *a = gw->authn;
	if (a == NULL)
		return;
	sb_jwt_verifier_free(a->verifier);
	pthread_mutex_destroy(&a->fetch_mu);
	for (size_t i = 0; i < GW_TOKCACHE_STRIPES; i++)
		pthread_mutex_destroy(&a->stripe[i]);
	free(a);
	gw->authn = NULL;
}

/* gw_authn_fetch asks auth for its JWKS (blocking) unless another thread fetched within the
 * minimum interval; replaces the verifier's key set. Returns 0 when keys were (re)loaded. */
static int
gw_authn_fetch(struct gw *gw, bool force)
{
	struct gw_authn *a = gw->authn;
	int rv = SB_EBUSY;
	pthread_mutex_lock(&a->fetch_mu);
	int64_t now = sb_time_mono_ms();
	if (!force && a->last_fetch_ms != 0 &&
	    now - a->last_fetch_ms < gw->cfg->jwks_min_refresh_ms)
		goto done;
	a->last_fetch_ms = now;
	struct sb_rpc_client *cli = gw_upstream(gw, "auth");
	if (cli == NULL) {
		rv = SB_EUNAVAIL;
		goto done;
	}
	size_t skipped = 0;
	if ((rv = sb_service_fetch_jwks(cli, a->verifier, true, &skipped)) != 0)
		goto done;
	a->gen++; /* forget tokens verified with the previous set */
	a->have_keys = true;
	char n[16];
	snprintf(n, sizeof(n), "%zu", skipped);
	sb_log_kv(SB_LOG_INFO, "JWKS loaded from auth", "skipped_keys", n, NULL);
done:
	pthread_mutex_unlock(&a->fetch_mu);
	return rv;
}

/* gw_authn_reject answers 401 (WWW-Authenticate: Bearer, with error="invalid_token" when a
 * token was given), counts the reason and writes an audit line. Returns -1. */
static int
gw_authn_reject(struct gw_req *r, const char *reason, const char *description, bool token_given)
{
	sb_series_inc(sb_metric_with(r->gw->m_authfail, reason));
	gw_audit(r, "authentication_failed", reason);
	char www[256];
	if (token_given)
		snprintf(www, sizeof(www),
		         "Bearer error=\"invalid_token\", error_description=\"%s\"", description);
	else
		snprintf(www, sizeof(www), "Bearer");
	const struct sb_http_header h = { "WWW-Authenticate", www };
	gw_reply_problem_extra(r, 401, description, NULL, 0, &h, 1);
	return -1;
}

/* gw_authn_revoked applies the revocation set to r's verified token: 0 to go on, or answers r
 * (401 revoked; 503 while the set is not in sync and SB_REDIS_FAIL_OPEN=false) and returns -1. */
static int
gw_authn_revoked(struct gw_req *r)
{
	switch (gw_revocation_check(r->gw, r->principal.jti)) {
	case GW_REVO_REVOKED:
		return gw_authn_reject(r, "revoked", "the access token has been revoked", true);
	case GW_REVO_UNSYNCED:
		return gw_redis_unavailable(r);
	case GW_REVO_OK:
		break;
	}
	return 0;
}

static const char *
gw_authn_reason(int rv)
{
	const char *name = sb_jwt_reason_name(rv);
	return name != NULL ? name : "error";
}

int
gw_authn_verify(struct gw_req *r)
{
	struct gw *gw = r->gw;
	struct gw_authn *a = gw->authn;
	const char *h = sb_http_req_header(r->http, "Authorization");
	if (h == NULL)
		return gw_authn_reject(r, "missing", "an access token is required", false);
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return gw_authn_reject(r, "malformed", "the Authorization header is not Bearer",
		                       true);
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t len = strlen(tok);

	if (!a->have_keys || sb_time_mono_ms() - a->last_fetch_ms > GW_JWKS_MAX_AGE_MS)
		gw_authn_fetch(gw, false);
	unsigned char hash[32];
	if (len <= SB_JWT_MAX_TOKEN && SHA256((const unsigned char *)tok, len, hash) != NULL &&
	    gw_tokcache_get(a, hash, &r->principal)) {
		sb_series_inc(a->m_hit);
		r->authenticated = true;
		return gw_authn_revoked(r);
	}
	sb_series_inc(a->m_miss);
	uint64_t gen = a->gen;
	int rv = sb_jwt_verify(a->verifier, tok, len, &r->principal);
	if (rv == SB_JWT_UNKNOWN_KID && gw_authn_fetch(gw, false) == 0) {
		gen = a->gen;
		rv = sb_jwt_verify(a->verifier, tok, len, &r->principal);
	}
	if (rv != 0) {
		const char *reason = gw_authn_reason(rv);
		char desc[96];
		snprintf(desc, sizeof(desc), "the access token is invalid (%s)", reason);
		return gw_authn_reject(r, reason, desc, true);
	}
	if (len <= SB_JWT_MAX_TOKEN)
		gw_tokcache_put(a, hash, gen, &r->principal);
	r->authenticated = true;
	return gw_authn_revoked(r);
}
