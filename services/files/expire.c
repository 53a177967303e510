/* expire.c: files.Expire, the cleanup gc asks for under its leader lease (gc decides when and
 * with which clock; files owns the storage and the rows). Each upload is cleaned in its own
 * transaction under its row lock, re-checking the condition, so an upload resumed meanwhile is
 * left alone and a crash half-way is finished by the next call. */
#include "files.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"

/* files_expire_one cleans upload id (why: "abandoned", "expired" or "terminated") if it still
 * qualifies. Returns 1 when cleaned, 0 when it no longer qualifies, or an error. */
static int
files_expire_one(struct files *f, struct sb_pg *pg, const char *id, const char *why,
                 const char *now_ms, const char *before_ms)
{
	PGresult *res = NULL;
	const char *p[3] = { id, now_ms, before_ms };
	int rv = sb_pg_begin(pg);
	if (rv == 0)
		rv = sb_pg_exec_prepared(pg, "expire_lock", 3, p, &res);
	if (rv != 0)
		goto fail;
	if (PQntuples(res) != 1) { /* resumed, completed or cleaned meanwhile */
		PQclear(res);
		sb_pg_rollback(pg);
		return 0;
	}
	int total = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	/* Bytes first, row last: if this stops half-way, the row still qualifies and the next
	 * call removes what is left (removing a missing object is not an error). */
	char key[64];
	files_key(id, key);
	if ((rv = f->store->ops->remove(f->store, key)) != 0)
		goto fail;
	for (int n = 1; n <= total; n++) {
		files_part_key(id, n, key);
		if ((rv = f->store->ops->remove(f->store, key)) != 0)
			goto fail;
	}
	const char *q[2] = { id, why };
	if ((rv = sb_pg_exec_prepared(pg, "expire_mark", 2, q, NULL)) != 0 ||
	    (rv = sb_pg_commit(pg)) != 0)
		goto fail;
	sb_log_kv(SB_LOG_INFO, "upload cleaned up", "upload_id", id, "reason", why, NULL);
	return 1;
fail:
	sb_pg_rollback(pg);
	sb_log_kv(SB_LOG_WARN, "cannot clean up an upload", "upload_id", id, "error",
	          sb_strerror(rv), NULL);
	return rv;
}

int
files_rpc_expire(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Files__ExpireRequest *in = req;
	Sb__Files__ExpireResponse *out = resp;
	struct sb_service *svc = sb_service_from_call(call);
	struct files *f = sb_service_state(svc);
	struct sb_worker_conns *wc = sb_service_worker_conns(call);
	if (f == NULL || wc == NULL || wc->pg == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if (in->now_ms < 0 || in->abandoned_before_ms < 0 || in->limit < 0)
		return sb_rpc_call_error(
		    call, SB__RPC__CODE__INVALID_ARGUMENT,
		    "now_ms, abandoned_before_ms and limit must not be negative");
	int limit = in->limit == 0 ? 100 : in->limit > 1000 ? 1000 : in->limit;
	char now_s[24], before_s[24], limit_s[16];
	snprintf(now_s, sizeof(now_s), "%" PRId64, in->now_ms);
	snprintf(before_s, sizeof(before_s), "%" PRId64, in->abandoned_before_ms);
	snprintf(limit_s, sizeof(limit_s), "%d", limit);
	const char *p[3] = { now_s, before_s, limit_s };
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(wc->pg, "expire_candidates", 3, p, &res);
	if (rv != 0) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "database: %s",
		                         sb_strerror(rv));
	}
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		const char *why = PQgetvalue(res, i, 1);
		rv = files_expire_one(f, wc->pg, PQgetvalue(res, i, 0), why, now_s, before_s);
		if (rv < 0)
			break;
		if (rv == 1) {
			if (strcmp(why, "abandoned") == 0)
				out->abandoned++;
			else if (strcmp(why, "expired") == 0)
				out->expired++;
			else
				out->terminated++;
		}
	}
	PQclear(res);
	if (rv < 0) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "cleanup stopped: %s",
		                         sb_strerror(rv));
	}
	out->more = n == limit;
	return SB__RPC__CODE__OK;
}
