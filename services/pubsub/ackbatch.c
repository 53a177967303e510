/* ackbatch.c: RPC AckBatch (POST /api/v1/messages/ack): up to PS_ACK_BATCH_MAX acks in one
 * statement (so one transaction and one WAL flush), each with the rules of a single ack
 * (consume.c) and its own answer. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_uuid.h"

#define PS_ACK_BATCH_MAX 1000

int
ps_rpc_ack_batch(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__AckBatchRequest *in = req;
	Sb__Pubsub__AckBatchResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	const char *tenant = ps_tenant(call);
	struct sb_buf ids = SB_BUF_INIT, subs = SB_BUF_INIT, leases = SB_BUF_INIT;
	PGresult *res = NULL;
	size_t *pos = NULL, nvalid = 0;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (in->n_acks > PS_ACK_BATCH_MAX)
		return ps_invalid(call, "acks", "at most 1000 acks in one batch");
	out->results = sb_rpc_call_alloc(call, (in->n_acks + 1) * sizeof(void *));
	pos = calloc(in->n_acks + 1, sizeof(*pos));
	if (out->results == NULL || pos == NULL)
		goto nomem;
	/* Every ack gets its result; the well-formed ones go to the statement. */
	for (size_t i = 0; i < in->n_acks; i++) {
		const Sb__Pubsub__AckRequest *a = in->acks[i];
		Sb__Pubsub__AckResult *r = sb_rpc_call_alloc(call, sizeof(*r));
		const char *sub = a->subscription[0] ? a->subscription : PS_DEFAULT_SUB;
		struct sb_uuid u;
		if (r == NULL)
			goto nomem;
		sb__pubsub__ack_result__init(r);
		r->id = ps_dup(call, a->id);
		r->subscription = ps_dup(call, sub);
		out->results[out->n_results++] = r;
		if (sb_uuid_parse(a->id, &u) != 0 || !ps_name_ok(sub) ||
		    (a->lease_id[0] != '\0' && sb_uuid_parse(a->lease_id, &u) != 0)) {
			r->error = ps_dup(call, "invalid");
			continue;
		}
		if (sb_pg_array_add(&ids, a->id) != 0 || sb_pg_array_add(&subs, sub) != 0 ||
		    sb_pg_array_add(&leases, a->lease_id) != 0)
			goto nomem;
		pos[nvalid++] = i;
	}
	if (nvalid == 0) {
		rv = SB__RPC__CODE__OK;
		goto done;
	}
	if (sb_pg_array_end(&ids) != 0 || sb_pg_array_end(&subs) != 0 ||
	    sb_pg_array_end(&leases) != 0)
		goto nomem;
	const char *p[] = { ids.data, subs.data, leases.data, tenant };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "ack_batch", 4, p, &res)) != 0) {
		rv = ps_db_error(call, "ack_batch", rv);
		goto done;
	}
	if ((size_t)PQntuples(res) != nvalid) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                       "ack batch answered %d of %zu", PQntuples(res), nvalid);
		goto done;
	}
	for (size_t k = 0; k < nvalid; k++) {
		Sb__Pubsub__AckResult *r = out->results[pos[k]];
		const char *err = PQgetvalue(res, (int)k, 1);
		if (err[0] != '\0') {
			r->error = ps_dup(call, err);
			continue;
		}
		r->ok = true;
		if (PQgetvalue(res, (int)k, 3)[0] == 't') { /* acked by this batch */
			const char *topic = PQgetvalue(res, (int)k, 0);
			sb_series_observe(sb_metric_with(st->m_latency, topic),
			                  atof(PQgetvalue(res, (int)k, 2)));
			sb_series_inc(sb_metric_with(st->m_acked, topic, r->subscription));
			ps_trace_span("pubsub ack", SB_SPAN_CONSUMER, PQgetvalue(res, (int)k, 4), 0,
			              r->id, r->subscription, 0);
		}
	}
	rv = SB__RPC__CODE__OK;
	goto done;
nomem:
	rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
done:
	PQclear(res);
	free(pos);
	sb_buf_free(&ids);
	sb_buf_free(&subs);
	sb_buf_free(&leases);
	return rv;
}
