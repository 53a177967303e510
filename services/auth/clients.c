/* clients.c: client authentication of the OAuth endpoints, and the answers for dependency
 * failures shared by every handler. */
#include "auth.h"

#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

/* A well-formed hash of a secret nobody knows: an unknown client_id costs the same PBKDF2 work
 * as a known one, so response times do not tell which client ids exist. */
static const char auth_dummy_hash[] =
    "pbkdf2-sha256$210000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

int
auth_unavailable(struct sb_rpc_call *call, struct sb_pg *pg, struct sb_redis *redis)
{
	int64_t ms = redis ? sb_redis_retry_after_ms(redis) : sb_pg_retry_after_ms(pg);
	sb_rpc_call_retry_after(call, ms > 0 ? ms : 1000);
	return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "temporarily_unavailable: %s",
	                         redis ? "token store unreachable" : "database unreachable");
}

int
auth_db_error(struct sb_rpc_call *call, struct auth_worker *w, int rv)
{
	if (rv == SB_EUNAVAIL)
		return auth_unavailable(call, w->pg, NULL);
	sb_log_kv(SB_LOG_ERROR, "database error", "method", sb_rpc_call_method(call), "error",
	          sb_pg_errmsg(w->pg), NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "server_error: database error");
}

static int
auth_client_refuse(struct sb_rpc_call *call, struct auth_worker *w, const char *client_id,
                   const char *reason)
{
	sb_series_inc(w->auth->client_auth_failures);
	auth_audit(w->pg, "client_auth_failed", "client_id", client_id, "reason", reason,
	           "request_id", sb_rpc_call_request_id(call), NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED,
	                         "invalid_client: client authentication failed");
}

int
auth_client_authenticate(struct sb_rpc_call *call, struct auth_worker *w, const char *client_id,
                         const char *secret, struct auth_client *c)
{
	char hash[256] = "";
	if (client_id == NULL || client_id[0] == '\0' || secret == NULL || secret[0] == '\0')
		return auth_client_refuse(call, w, client_id ? client_id : "", "no credentials");
	if (strlen(client_id) >= AUTH_ID_MAX)
		return auth_client_refuse(call, w, "", "client_id too long");
	int rv = auth_store_client_get(w->pg, client_id, c, hash, sizeof(hash));
	if (rv == SB_ENOTFOUND) {
		auth_secret_verify(secret, auth_dummy_hash);
		return auth_client_refuse(call, w, client_id, "unknown client");
	}
	if (rv != 0)
		return auth_db_error(call, w, rv);
	int ok = auth_secret_verify(secret, hash);
	explicit_bzero(hash, sizeof(hash));
	if (!ok)
		return auth_client_refuse(call, w, client_id, "wrong secret");
	if (!c->enabled)
		return auth_client_refuse(call, w, client_id, "client disabled");
	return SB__RPC__CODE__OK;
}
