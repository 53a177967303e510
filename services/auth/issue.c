/* issue.c: minting tokens: the signed access token and the opaque refresh token, and the
 * RFC 6749 section 5.1 response document. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"
#include "sb_util_uuid.h"

int
auth_refresh_insert(struct auth_worker *w, const struct auth_grant *g, const char *family,
                    char *token, size_t cap)
{
	char hash[65], ttl[32], fam[SB_UUID_STR_LEN + 1];
	PGresult *r = NULL;
	int rv;
	if (family == NULL) {
		struct sb_uuid u;
		if ((rv = sb_uuid_v4(&u)) != 0)
			return rv;
		sb_uuid_format(&u, fam);
		family = fam;
	}
	if ((rv = auth_random_token(AUTH_REFRESH_PREFIX, 32, token, cap)) != 0 ||
	    (rv = auth_sha256_hex(token, hash)) != 0)
		return rv;
	snprintf(ttl, sizeof(ttl), "%lld", w->auth->cfg->refresh_ttl_s);
	const char *p[] = { hash,       family, g->client_id, g->tenant_id,
		            g->user_id, g->sub, g->scope,     ttl };
	rv = sb_pg_exec_prepared(w->pg, "rt_insert", 8, p, &r);
	PQclear(r);
	if (rv != 0)
		explicit_bzero(token, cap);
	return rv;
}

/* auth_issue_json renders the token response document into the call's arena. */
static char *
auth_issue_json(struct sb_rpc_call *call, const Sb__Auth__TokenResponse *rs)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:i, s:s}", "access_token", rs->access_token, "token_type",
	              rs->token_type, "expires_in", (int)rs->expires_in, "scope", rs->scope);
	char *out = NULL;
	if (o == NULL)
		return NULL;
	if (rs->refresh_token[0] != '\0')
		json_object_set_new(o, "refresh_token", json_string(rs->refresh_token));
	if (rs->issued_token_type[0] != '\0')
		json_object_set_new(o, "issued_token_type", json_string(rs->issued_token_type));
	char *s = json_dumps(o, JSON_COMPACT);
	if (s != NULL) {
		out = sb_rpc_call_strdup(call, s);
		explicit_bzero(s, strlen(s));
		free(s);
	}
	json_decref(o);
	return out;
}

int
auth_claims_new(const struct auth_cfg *cfg, const struct auth_grant *g, long long ttl_s,
                json_t **out)
{
	char jti[SB_UUID_STR_LEN + 1];
	struct sb_uuid u;
	if (sb_uuid_v4(&u) != 0)
		return SB_EIO;
	sb_uuid_format(&u, jti);
	json_int_t now = sb_time_now_ms() / 1000;
	json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss",
	                           cfg->issuer, "aud", cfg->audience, "sub", g->sub, "tenant_id",
	                           g->tenant_id, "scope", g->scope, "client_id", g->client_id,
	                           "jti", jti, "iat", now, "exp", now + (json_int_t)ttl_s);
	if (claims == NULL)
		return SB_ENOMEM;
	if (g->user_id[0] != '\0' &&
	    json_object_set_new(claims, "user_id", json_string(g->user_id)) != 0) {
		json_decref(claims);
		return SB_ENOMEM;
	}
	*out = claims;
	return 0;
}

int
auth_issue(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_grant *g,
           bool want_refresh, const char *family, struct sb_series *counter,
           Sb__Auth__TokenResponse *rs)
{
	const struct auth_cfg *cfg = w->auth->cfg;
	char refresh[128] = "";
	json_t *claims = NULL;
	char *at = NULL;
	int rv;

	if ((rv = auth_claims_new(cfg, g, cfg->access_ttl_s, &claims)) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "server_error: %s",
		                         rv == SB_EIO ? "no entropy" : "out of memory");
	rv = auth_keys_sign(w->auth->keys, claims, &at);
	json_decref(claims);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot sign access token", "error", sb_strerror(rv), NULL);
		if (rv == SB_EUNAVAIL)
			sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(
		    call, rv == SB_EUNAVAIL ? SB__RPC__CODE__UNAVAILABLE : SB__RPC__CODE__INTERNAL,
		    "server_error: cannot sign the access token");
	}
	rs->access_token = sb_rpc_call_strdup(call, at);
	free(at);
	if (want_refresh && (rv = auth_refresh_insert(w, g, family, refresh, sizeof(refresh))) != 0)
		return auth_db_error(call, w, rv);
	rs->token_type = "Bearer";
	rs->expires_in = (int32_t)cfg->access_ttl_s;
	rs->refresh_token = sb_rpc_call_strdup(call, refresh);
	explicit_bzero(refresh, sizeof(refresh));
	rs->scope = sb_rpc_call_strdup(call, g->scope);
	if (rs->access_token == NULL || rs->refresh_token == NULL || rs->scope == NULL ||
	    (rs->json = auth_issue_json(call, rs)) == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	sb_series_inc(counter);
	return SB__RPC__CODE__OK;
}
