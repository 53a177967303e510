/* dlq.c: RPCs ListDeadLetters (GET /api/v1/topics/{name}/dlq: the deliveries of the topic's
 * subscriptions that used up their attempts, with their error history) and ReplayDeadLetter
 * (back to ready, attempts reset, the replay kept in the history). */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_uuid.h"

int
ps_rpc_list_dead_letters(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__ListDeadLettersRequest *in = req;
	Sb__Pubsub__ListDeadLettersResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	char limit[12];
	PGresult *tres, *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (in->limit < 0 || in->limit > 1000)
		return ps_invalid(call, "limit", "1 to 1000 (0 means 100)");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &tres)) != SB__RPC__CODE__OK)
		return rv;
	snprintf(limit, sizeof(limit), "%d", in->limit ? in->limit : 100);
	const char *p[] = { t.id, limit };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "dlq_list", 2, p, &res)) != 0) {
		rv = ps_db_error(call, "dlq_list", rv);
		goto done;
	}
	int n = PQntuples(res);
	rv = SB__RPC__CODE__INTERNAL;
	if ((out->messages = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(void *))) == NULL)
		goto done;
	for (int i = 0; i < n; i++) {
		Sb__Pubsub__DeadLetter *d = sb_rpc_call_alloc(call, sizeof(*d));
		if (d == NULL)
			goto done;
		sb__pubsub__dead_letter__init(d);
		d->id = ps_dup(call, PQgetvalue(res, i, 0));
		d->subscription = ps_dup(call, PQgetvalue(res, i, 1));
		d->attempts = atoi(PQgetvalue(res, i, 2));
		d->errors = ps_raw(call, PQgetvalue(res, i, 3));
		d->payload = ps_raw(call, PQgetvalue(res, i, 4));
		if (ps_headers_fill(call, PQgetvalue(res, i, 5),
		                    &sb__pubsub__dead_letter__headers_entry__descriptor,
		                    (void ***)&d->headers, &d->n_headers) != 0)
			goto done;
		d->published_at = ps_dup(call, PQgetvalue(res, i, 6));
		out->messages[out->n_messages++] = d;
	}
	rv = SB__RPC__CODE__OK;
done:
	if (rv == SB__RPC__CODE__INTERNAL)
		sb_rpc_call_error(call, rv, "out of memory");
	PQclear(res);
	PQclear(tres);
	return rv;
}

int
ps_rpc_replay_dead_letter(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__ReplayRequest *in = req;
	Sb__Pubsub__ReplayResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	struct sb_uuid u;
	PGresult *tres, *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (sb_uuid_parse(in->id, &u) != 0)
		return ps_invalid(call, "id", "a message id (UUID)");
	if (in->subscription[0] != '\0' && !ps_name_ok(in->subscription))
		return ps_invalid(call, "subscription", "1 to 100 of A-Z a-z 0-9 . _ -");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &tres)) != SB__RPC__CODE__OK)
		return rv;
	const char *p[] = { t.id, in->id, in->subscription };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "dlq_replay", 3, p, &res)) != 0) {
		rv = ps_db_error(call, "dlq_replay", rv);
		goto done;
	}
	out->replayed = PQntuples(res);
	if (out->replayed == 0) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "message %s is not in %s%s",
		                       in->id, t.name, PS_DLQ_SUFFIX);
		goto done;
	}
	out->id = ps_dup(call, in->id);
	sb_log_kv(SB_LOG_INFO, "dead letter replayed", "id", in->id, "topic", t.name, "tenant_id",
	          tenant, NULL);
	ps_wake(ps_ctx(call));
	rv = out->id ? SB__RPC__CODE__OK
	             : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
done:
	PQclear(res);
	PQclear(tres);
	return rv;
}
