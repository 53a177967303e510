/* ackbatch.c: RPC AckBatch (POST /api/v1/messages/ack): up to PS_ACK_BATCH_MAX acks in one
 * transaction, each with the rules of a single ack (consume.c) and its own answer. One commit
 * (one WAL flush) for the batch instead of one per message. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_uuid.h"

#define PS_ACK_BATCH_MAX 1000

/* Acks one item inside the open transaction; fills res. Returns 0, or a database error (the
 * caller rolls the batch back). */
static int
ps_ack_item(struct sb_rpc_call *call, const char *tenant, const Sb__Pubsub__AckRequest *in,
            Sb__Pubsub__AckResult *res)
{
	struct ps_state *st = ps_ctx(call);
	struct sb_pg *pg = ps_pg(call);
	struct sb_uuid u;
	PGresult *r = NULL;
	const char *sub = in->subscription[0] ? in->subscription : PS_DEFAULT_SUB;
	int rv;
	res->id = ps_dup(call, in->id);
	res->subscription = ps_dup(call, sub);
	if (sb_uuid_parse(in->id, &u) != 0 || !ps_name_ok(sub) ||
	    (in->lease_id[0] != '\0' && sb_uuid_parse(in->lease_id, &u) != 0)) {
		res->error = ps_dup(call, "invalid");
		return 0;
	}
	const char *p[] = { in->id, tenant, sub };
	if ((rv = sb_pg_exec_prepared(pg, "msg_sub", 3, p, &r)) != 0)
		return rv;
	if (PQntuples(r) != 1) {
		PQclear(r);
		res->error = ps_dup(call, "not_found");
		return 0;
	}
	char sub_id[24], topic[PS_NAME_MAX + 1];
	snprintf(sub_id, sizeof(sub_id), "%s", PQgetvalue(r, 0, 0));
	snprintf(topic, sizeof(topic), "%s", PQgetvalue(r, 0, 1));
	bool strict = strcmp(PQgetvalue(r, 0, 2), "exactly_once") == 0;
	PQclear(r);
	if (strict && in->lease_id[0] == '\0') {
		res->error = ps_dup(call, "lease_required");
		return 0;
	}
	const char *ap[] = { in->id, sub_id, in->lease_id, strict ? "true" : "false" };
	if ((rv = sb_pg_exec_prepared(pg, "ack", 4, ap, &r)) != 0)
		return rv;
	if (PQntuples(r) == 1) {
		sb_series_observe(sb_metric_with(st->m_latency, topic), atof(PQgetvalue(r, 0, 0)));
		sb_series_inc(sb_metric_with(st->m_acked, topic, sub));
		PQclear(r);
		res->ok = true;
		return 0;
	}
	PQclear(r);
	const char *sp[] = { in->id, sub_id };
	if ((rv = sb_pg_exec_prepared(pg, "delivery_state", 2, sp, &r)) != 0)
		return rv;
	if (PQntuples(r) != 1)
		res->error = ps_dup(call, "not_found");
	else if (strcmp(PQgetvalue(r, 0, 0), "acked") == 0)
		res->ok = true;
	else
		res->error = ps_dup(call, "no_lease");
	PQclear(r);
	return 0;
}

int
ps_rpc_ack_batch(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__AckBatchRequest *in = req;
	Sb__Pubsub__AckBatchResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct sb_pg *pg = ps_pg(call);
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (in->n_acks > PS_ACK_BATCH_MAX)
		return ps_invalid(call, "acks", "at most 1000 acks in one batch");
	out->results = sb_rpc_call_alloc(call, (in->n_acks + 1) * sizeof(void *));
	if (out->results == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	if (in->n_acks == 0)
		return SB__RPC__CODE__OK;
	if ((rv = sb_pg_begin(pg)) != 0)
		return ps_db_error(call, "ack_batch", rv);
	for (size_t i = 0; i < in->n_acks; i++) {
		Sb__Pubsub__AckResult *res = sb_rpc_call_alloc(call, sizeof(*res));
		if (res == NULL) {
			sb_pg_rollback(pg);
			return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		}
		sb__pubsub__ack_result__init(res);
		if ((rv = ps_ack_item(call, tenant, in->acks[i], res)) != 0) {
			sb_pg_rollback(pg);
			return ps_db_error(call, "ack_batch", rv);
		}
		out->results[out->n_results++] = res;
	}
	if ((rv = sb_pg_commit(pg)) != 0) {
		sb_pg_rollback(pg);
		return ps_db_error(call, "ack_batch", rv);
	}
	return SB__RPC__CODE__OK;
}
