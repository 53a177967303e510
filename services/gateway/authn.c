/* authn.c: access-token verification at the edge (RFC 6750 bearer tokens, RFC 8725 checks in
 * sb_jwt). Keys come from auth's JWKS over RPC: fetched at the first need, refetched when a
 * token names an unknown kid (at most once per SB_JWKS_MIN_REFRESH_MS), and every few minutes. */
#include "gw_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rpc.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

#define GW_JWKS_MAX_AGE_MS (5 * 60 * 1000)

struct gw_authn {
	struct sb_jwt_verifier *verifier;
	pthread_mutex_t fetch_mu; /* one fetch at a time */
	int64_t last_fetch_ms;    /* monotonic; 0 = never */
	bool have_keys;
};

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
	Sb__Rpc__Empty req = SB__RPC__EMPTY__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = 2000 };
	struct sb_rpc_result res;
	rv = sb_rpc_call(cli, "auth.Jwks", &req.base, &sb__rpc__raw_json__descriptor, &meta, &res);
	if (rv != 0)
		goto done;
	if (res.code != 0 || res.resp == NULL) {
		sb_log_kv(SB_LOG_WARN, "cannot fetch JWKS from auth", "code",
		          sb_rpc_code_name(res.code), "error", res.message, NULL);
		sb_rpc_result_free(&res);
		rv = SB_EUNAVAIL;
		goto done;
	}
	const char *json = ((Sb__Rpc__RawJson *)res.resp)->json;
	struct sb_jwt_keyset *set = NULL;
	size_t skipped = 0;
	rv = sb_jwt_keyset_parse_jwks(json, strlen(json), &set, &skipped);
	sb_rpc_result_free(&res);
	if (rv != 0) {
		sb_log_kv(SB_LOG_WARN, "auth answered an unusable JWKS", NULL);
		goto done;
	}
	sb_jwt_verifier_set_keys(a->verifier, set);
	sb_jwt_keyset_release(set);
	a->have_keys = true;
	char n[16];
	snprintf(n, sizeof(n), "%zu", skipped);
	sb_log_kv(SB_LOG_INFO, "JWKS loaded from auth", "skipped_keys", n, NULL);
done:
	pthread_mutex_unlock(&a->fetch_mu);
	return rv;
}

int
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
	json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
	                         "Unauthorized", "status", 401, "detail", description);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	const struct sb_http_header h = { "WWW-Authenticate", www };
	gw_reply(r, 401, "application/problem+json", &h, 1, text, strlen(text));
	free(text);
	return -1;
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
	int rv = sb_jwt_verify(a->verifier, tok, len, &r->principal);
	if (rv == SB_JWT_UNKNOWN_KID && gw_authn_fetch(gw, false) == 0)
		rv = sb_jwt_verify(a->verifier, tok, len, &r->principal);
	if (rv != 0) {
		const char *reason = gw_authn_reason(rv);
		char desc[96];
		snprintf(desc, sizeof(desc), "the access token is invalid (%s)", reason);
		return gw_authn_reject(r, reason, desc, true);
	}
	r->authenticated = true;
	return 0;
}
