/* revoke.c: auth.Revoke (RFC 7009). A refresh token revokes its whole family in the database; an
 * access token is revoked by SET sb:revoked:jti:<jti> in Redis with a TTL of its remaining
 * lifetime (the durable record, read by introspection and by a gateway when it (re)syncs) and,
 * in the same MULTI/EXEC transaction, PUBLISH sb:revocations "<jti> <exp>", which gateways
 * subscribed to it apply to their local revocation sets within milliseconds. Unknown, invalid or
 * foreign tokens are answered OK and left alone (section 2.2). */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_time.h"

void
auth_principal_scope(const struct sb_jwt_principal *p, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < p->nscopes; i++) {
		int w = snprintf(out + used, cap - used, "%s%s", i ? " " : "",
		                 sb_jwt_principal_scope(p, i));
		if (w < 0 || (size_t)w >= cap - used)
			return;
		used += (size_t)w;
	}
}

bool
auth_may_manage(const struct auth_client *c, const char *token_client, const char *token_tenant)
{
	if (strcmp(c->client_id, token_client) == 0)
		return true;
	return strcmp(c->tenant_id, token_tenant) == 0 &&
	       auth_scope_has(c->scopes, AUTH_SCOPE_ADMIN);
}

static int
auth_revoke_refresh(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                    const char *token)
{
	struct auth_refresh_row row;
	PGresult *r = NULL;
	int rv = auth_store_refresh_get(w->pg, token, &row);
	if (rv == SB_ENOTFOUND ||
	    (rv == 0 && !auth_may_manage(c, row.g.client_id, row.g.tenant_id)))
		return SB__RPC__CODE__OK;
	if (rv != 0)
		return auth_db_error(call, w, rv);
	const char *p[] = { row.family };
	if ((rv = sb_pg_exec_prepared(w->pg, "rt_revoke_family", 1, p, &r)) != 0)
		return auth_db_error(call, w, rv);
	bool changed = strcmp(PQcmdTuples(r), "0") != 0;
	PQclear(r);
	if (changed) {
		sb_series_inc(w->auth->revoked_refresh);
		auth_audit(w->pg, "token_revoked", "client_id", c->client_id, "type",
		           "refresh_token", "family_id", row.family, "owner_client_id",
		           row.g.client_id, NULL);
	}
	return SB__RPC__CODE__OK;
}

/* auth_revoke_store runs MULTI, SET key 1 EX ttl, PUBLISH sb:revocations msg, EXEC in one
 * pipelined round trip: the record and the announcement happen together or not at all.
 * Returns 0, SB_EUNAVAIL (Redis unreachable; sb_redis_err tells more) or SB_EIO (refused). */
static int
auth_revoke_store(struct sb_redis *redis, const char *key, const char *ttl, const char *msg)
{
	const char *multi[] = { "MULTI" };
	const char *set[] = { "SET", key, "1", "EX", ttl };
	const char *pub[] = { "PUBLISH", SB_REDIS_REVOCATIONS_CHANNEL, msg };
	const char *exec[] = { "EXEC" };
	redisReply *rep[4] = { NULL };
	if (sb_redis_append_argv(redis, 1, multi, NULL) != 0 ||
	    sb_redis_append_argv(redis, 5, set, NULL) != 0 ||
	    sb_redis_append_argv(redis, 3, pub, NULL) != 0 ||
	    sb_redis_append_argv(redis, 1, exec, NULL) != 0 ||
	    sb_redis_get_replies(redis, rep, 4) != 0) {
		/* A command queued before the failure (only an allocation failure stops a queue
		 * on a live connection) would leave MULTI open: discard it, read every reply. */
		const char *discard[] = { "DISCARD" };
		redisReply *left[5] = { NULL };
		size_t pending = sb_redis_pending(redis);
		if (pending > 0 && pending < 4 &&
		    sb_redis_append_argv(redis, 1, discard, NULL) == 0)
			(void)sb_redis_get_replies(redis, left, pending + 1);
		for (size_t i = 0; i < 5; i++)
			if (left[i] != NULL)
				freeReplyObject(left[i]);
		return SB_EUNAVAIL;
	}
	const redisReply *ex = rep[3];
	int rv = ex->type == REDIS_REPLY_ARRAY && ex->elements == 2 &&
	                 ex->element[0]->type == REDIS_REPLY_STATUS &&
	                 ex->element[1]->type == REDIS_REPLY_INTEGER
	             ? 0
	             : SB_EIO;
	for (size_t i = 0; i < 4; i++)
		freeReplyObject(rep[i]);
	return rv;
}

static int
auth_revoke_access(struct sb_rpc_call *call, struct auth_worker *w, const struct auth_client *c,
                   const char *token)
{
	struct sb_jwt_principal p;
	char key[sizeof(AUTH_REVOKED_PREFIX) + SB_JWT_ID_MAX], ttl[32], msg[SB_JWT_ID_MAX + 32];
	if (auth_keys_verify(w->auth->keys, token, &p) != 0 ||
	    !auth_may_manage(c, p.client_id, p.tenant_id))
		return SB__RPC__CODE__OK;
	int64_t left = p.exp - sb_time_now_ms() / 1000;
	if (left <= 0)
		return SB__RPC__CODE__OK;
	snprintf(key, sizeof(key), AUTH_REVOKED_PREFIX "%s", p.jti);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)left);
	snprintf(msg, sizeof(msg), "%s %lld", p.jti, (long long)p.exp);
	int rv = auth_revoke_store(w->redis, key, ttl, msg);
	if (rv == SB_EUNAVAIL)
		return auth_unavailable(call, w->pg, w->redis);
	if (rv != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: the token store refused the revocation");
	sb_series_inc(w->auth->revoked_access);
	auth_audit(w->pg, "token_revoked", "client_id", c->client_id, "type", "access_token", "jti",
	           p.jti, "owner_client_id", p.client_id, NULL);
	return SB__RPC__CODE__OK;
}

int
auth_rpc_revoke(struct sb_rpc_call *call, const void *req, void *resp)
{
	struct auth_worker wk, *w = auth_worker_of(call, &wk);
	const Sb__Auth__RevokeRequest *rq = req;
	struct auth_client c;
	(void)resp;
	int code = auth_client_authenticate(call, w, rq->client_id, rq->client_secret, &c);
	if (code != SB__RPC__CODE__OK)
		return code;
	if (rq->token[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "invalid_request: token is required");
	/* token_type_hint is only a hint (section 2.1): the token's form tells its type */
	if (strncmp(rq->token, AUTH_REFRESH_PREFIX, strlen(AUTH_REFRESH_PREFIX)) == 0)
		return auth_revoke_refresh(call, w, &c, rq->token);
	return auth_revoke_access(call, w, &c, rq->token);
}
