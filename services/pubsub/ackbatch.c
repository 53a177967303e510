/* ackbatch.c: RPC AckBatch (POST /api/v1/messages/ack): up to PS_ACK_BATCH_MAX acks in one
 * statement (so one transaction and one WAL flush), each with the rules of a single ack
 * (consume.c) and its own answer. ConsumeAck (consume.c) carries the same acks with its
 * consume and answers them with the same code. */
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
ps_acks_prepare(struct sb_rpc_call *call, Sb__Pubsub__AckRequest *const *acks, size_t n,
                struct ps_acks *a)
{
	memset(a, 0, sizeof(*a)); /* the sb_bufs empty, as SB_BUF_INIT */
	if (n > PS_ACK_BATCH_MAX)
		return ps_invalid(call, "acks", "at most 1000 acks in one batch");
	a->results = sb_rpc_call_alloc(call, (n + 1) * sizeof(void *));
	a->pos = calloc(n + 1, sizeof(*a->pos));
	if (a->results == NULL || a->pos == NULL)
		goto nomem;
	/* Every ack gets its result; the well-formed ones go to the statement. */
	for (size_t i = 0; i < n; i++) {
		const Sb__Pubsub__AckRequest *q = acks[i];
		Sb__Pubsub__AckResult *r = sb_rpc_call_alloc(call, sizeof(*r));
		const char *sub = q->subscription[0] ? q->subscription : PS_DEFAULT_SUB;
		struct sb_uuid u;
		if (r == NULL)
			goto nomem;
		sb__pubsub__ack_result__init(r);
		r->id = ps_dup(call, q->id);
		r->subscription = ps_dup(call, sub);
		if (r->id == NULL || r->subscription == NULL)
			goto nomem;
		a->results[a->n_results++] = r;
		if (sb_uuid_parse(q->id, &u) != 0 || !ps_name_ok(sub) ||
		    (q->lease_id[0] != '\0' && sb_uuid_parse(q->lease_id, &u) != 0)) {
			r->error = ps_dup(call, "invalid");
			continue;
		}
		if (sb_pg_array_add(&a->ids, q->id) != 0 || sb_pg_array_add(&a->subs, sub) != 0 ||
		    sb_pg_array_add(&a->leases, q->lease_id) != 0)
			goto nomem;
		a->pos[a->nvalid++] = i;
	}
	if (sb_pg_array_end(&a->ids) != 0 || sb_pg_array_end(&a->subs) != 0 ||
	    sb_pg_array_end(&a->leases) != 0)
		goto nomem;
	return SB__RPC__CODE__OK;
nomem:
	ps_acks_free(a);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
}

int
ps_acks_apply(struct sb_rpc_call *call, struct ps_acks *a, const PGresult *res, int row0, int col0)
{
	struct ps_state *st = ps_ctx(call);
	if (PQntuples(res) - row0 < (int)a->nvalid)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "ack batch answered %d of %zu", PQntuples(res) - row0,
		                         a->nvalid);
	for (size_t k = 0; k < a->nvalid; k++) {
		Sb__Pubsub__AckResult *r = a->results[a->pos[k]];
		int row = row0 + (int)k;
		const char *err = PQgetvalue(res, row, col0 + 1);
		if (err[0] != '\0') {
			r->error = ps_dup(call, err);
			continue;
		}
		r->ok = true;
		if (PQgetvalue(res, row, col0 + 3)[0] == 't') { /* acked by this statement */
			const char *topic = PQgetvalue(res, row, col0);
			sb_series_observe(sb_metric_with(st->m_latency, topic),
			                  atof(PQgetvalue(res, row, col0 + 2)));
			sb_series_inc(sb_metric_with(st->m_acked, topic, r->subscription));
			ps_trace_span("pubsub ack", SB_SPAN_CONSUMER,
			              PQgetvalue(res, row, col0 + 4), 0, r->id, r->subscription, 0);
		}
	}
	return SB__RPC__CODE__OK;
}

int
ps_acks_run(struct sb_rpc_call *call, struct ps_acks *a, const char *tenant)
{
	PGresult *res = NULL;
	int rv;
	if (a->nvalid == 0)
		return SB__RPC__CODE__OK;
	const char *p[] = { a->ids.data, a->subs.data, a->leases.data, tenant };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "ack_batch", 4, p, &res)) != 0)
		return ps_db_error(call, "ack_batch", rv);
	rv = ps_acks_apply(call, a, res, 0, 0);
	PQclear(res);
	return rv;
}

int
ps_acks_settle_rest(struct sb_rpc_call *call, Sb__Pubsub__AckRequest *const *acks, size_t n,
                    struct ps_acks *a, const char *tenant)
{
	Sb__Pubsub__AckRequest **rest = sb_rpc_call_alloc(call, (n + 1) * sizeof(void *));
	size_t *at = sb_rpc_call_alloc(call, (n + 1) * sizeof(size_t));
	size_t k = 0;
	struct ps_acks b;
	int rv;
	if (rest == NULL || at == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	for (size_t i = 0; i < a->n_results && i < n; i++) {
		Sb__Pubsub__AckResult *r = a->results[i];
		if (r->error != NULL && strcmp(r->error, PS_ACK_RETRY) == 0) {
			at[k] = i;
			rest[k++] = acks[i];
		}
	}
	if (k == 0)
		return SB__RPC__CODE__OK;
	if ((rv = ps_acks_prepare(call, rest, k, &b)) != SB__RPC__CODE__OK)
		return rv;
	if ((rv = ps_acks_run(call, &b, tenant)) == SB__RPC__CODE__OK)
		for (size_t j = 0; j < k; j++)
			a->results[at[j]] = b.results[j];
	ps_acks_free(&b);
	return rv;
}

void
ps_acks_free(struct ps_acks *a)
{
	free(a->pos);
	a->pos = NULL;
	sb_buf_free(&a->ids);
	sb_buf_free(&a->subs);
	sb_buf_free(&a->leases);
}

int
ps_rpc_ack_batch(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__AckBatchRequest *in = req;
	Sb__Pubsub__AckBatchResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_acks a;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_acks_prepare(call, in->acks, in->n_acks, &a)) != SB__RPC__CODE__OK)
		return rv;
	rv = ps_acks_run(call, &a, tenant);
	if (rv == SB__RPC__CODE__OK) {
		out->results = a.results;
		out->n_results = a.n_results;
	}
	ps_acks_free(&a);
	return rv;
}
