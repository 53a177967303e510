/* batch.c: RPC PublishBatch. Up to PS_BATCH_MAX messages of one topic, each checked and routed
 * as Publish checks and routes one (publish.c), stored in one transaction (the group commit of
 * commit.c, with concurrent publishes and batches of other workers, or alone with one
 * "publish_group" statement), so every message is stored or none is. A message naming an
 * idempotency key that is live answers the first message's id; one key twice in the batch stores
 * the first of the two and answers its id for the second. docs/pubsub.md "Batch publish". */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

#define PS_BATCH_MAX 1000

/* The batch being published: per message its checked form, the earlier message with its
 * idempotency key (-1: none) and its row in the stored group (-1: not stored itself). */
struct ps_batch {
	size_t n;
	struct ps_msg *m;
	long *first;
	long *row;
};

static void
ps_batch_clear(struct ps_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		ps_msg_free(&b->m[i]);
}

/* Checks every message (all violations are reported, each named messages/<i>/<field>); OK,
 * INVALID_ARGUMENT or another answered error. */
static int
ps_batch_prepare(struct sb_rpc_call *call, struct ps_state *st, const struct ps_topic *t,
                 const PGresult *sres, const Sb__Pubsub__PublishBatchRequest *in,
                 struct ps_batch *b, size_t *nbad)
{
	*nbad = 0;
	for (size_t i = 0; i < b->n; i++) {
		const Sb__Pubsub__PublishRequest *msg = in->messages[i];
		char at[32];
		snprintf(at, sizeof(at), "messages/%zu/", i);
		if (msg->topic[0] != '\0' && strcmp(msg->topic, in->topic) != 0) {
			char f[48];
			snprintf(f, sizeof(f), "%stopic", at);
			ps_invalid(call, f, "empty or the batch's topic");
			(*nbad)++;
			continue;
		}
		int rv = ps_msg_prepare(call, st, t, sres, msg, at, &b->m[i]);
		if (rv == SB__RPC__CODE__INVALID_ARGUMENT)
			(*nbad)++;
		else if (rv != SB__RPC__CODE__OK)
			return rv;
	}
	return *nbad ? SB__RPC__CODE__INVALID_ARGUMENT : SB__RPC__CODE__OK;
}

/* Stores the messages that are not repeats of an earlier one's key; res[k] answers row k.
 * Returns 0 or the error of the statement. */
static int
ps_batch_store(struct sb_rpc_call *call, struct ps_state *st, const struct ps_topic *t,
               const char *version, const Sb__Pubsub__PublishBatchRequest *in, struct ps_batch *b,
               PGresult **res, size_t *nrows)
{
	char window[24];
	snprintf(window, sizeof(window), "%lld", st->cfg->idempotency_window_s);
	const char **p = calloc(b->n * PS_PUBLISH_NPARAMS, sizeof(*p));
	const char *const **rows = calloc(b->n, sizeof(*rows));
	if (p == NULL || rows == NULL) {
		free(p);
		free(rows);
		return SB_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++) {
		const Sb__Pubsub__PublishRequest *msg = in->messages[i];
		b->row[i] = -1;
		if (b->first[i] >= 0)
			continue;
		const char **q = p + k * PS_PUBLISH_NPARAMS;
		q[0] = t->id;
		q[1] = msg->idempotency_key;
		q[2] = b->m[i].id;
		q[3] = msg->payload->json;
		q[4] = b->m[i].htext;
		q[5] = b->m[i].prio;
		q[6] = msg->ordering_key;
		q[7] = b->m[i].subs.data;
		q[8] = window;
		q[9] = t->ordering_keys ? msg->ordering_key : "";
		q[10] = version;
		rows[k] = q;
		b->row[i] = (long)k++;
	}
	*nrows = k;
	int rv = ps_publish_grouped(st, call, rows, k, res);
	free(rows);
	free(p);
	return rv;
}

/* Marks each message whose idempotency key an earlier message of the batch has. */
static void
ps_batch_repeats(const Sb__Pubsub__PublishBatchRequest *in, struct ps_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const char *key = in->messages[i]->idempotency_key;
		b->first[i] = -1;
		if (key[0] == '\0')
			continue;
		for (size_t j = 0; j < i; j++)
			if (b->first[j] < 0 && strcmp(in->messages[j]->idempotency_key, key) == 0) {
				b->first[i] = (long)j;
				break;
			}
	}
}

int
ps_rpc_publish_batch(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__PublishBatchRequest *in = req;
	Sb__Pubsub__PublishBatchResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	const char *tenant = ps_tenant(call);
	struct ps_topic t = { 0 };
	struct ps_batch b = { .n = in->n_messages };
	PGresult *sres = NULL, **res = NULL;
	size_t nrows = 0, nbad = 0;
	int rv, tries = 0;
	bool cached = false;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (!ps_name_ok(in->topic)) {
		sb_log_kv(SB_LOG_INFO, "publish batch refused", "field", "topic", "tenant_id",
		          tenant, NULL);
		return ps_invalid(call, "topic",
		                  "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq");
	}
	if (b.n == 0 || b.n > PS_BATCH_MAX) {
		sb_log_kv(SB_LOG_INFO, "publish batch refused", "field", "messages", "tenant_id",
		          tenant, NULL);
		return ps_invalid(call, "messages", "1 to 1000 messages");
	}
	b.m = calloc(b.n, sizeof(*b.m));
	b.first = calloc(b.n, sizeof(*b.first));
	b.row = calloc(b.n, sizeof(*b.row));
	res = calloc(b.n, sizeof(*res));
	out->ids = sb_rpc_call_alloc(call, b.n * sizeof(*out->ids));
	out->results = sb_rpc_call_alloc(call, b.n * sizeof(*out->results));
	Sb__Pubsub__PublishResponse *r = sb_rpc_call_alloc(call, b.n * sizeof(*r));
	if (b.m == NULL || b.first == NULL || b.row == NULL || res == NULL || out->ids == NULL ||
	    out->results == NULL || r == NULL) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		goto done;
	}
	ps_batch_repeats(in, &b);
again:
	if ((rv = ps_route_load(call, st, tenant, in->topic, tries == 0, &sres, &cached)) !=
	    SB__RPC__CODE__OK)
		goto done;
	ps_topic_of_route(sres, &t);
	int64_t route_ns = ps_trace_now_ns();
	rv = ps_batch_prepare(call, st, &t, sres, in, &b, &nbad);
	if (rv == SB__RPC__CODE__INVALID_ARGUMENT) {
		if (cached) {
			/* refused with a cached route: check again with the store's (as Publish) */
			sb_rpc_call_clear_violations(call);
			ps_route_drop(st, tenant, in->topic);
			tries++;
			goto reroute;
		}
		sb_series_inc(sb_metric_with(st->m_invalid, t.name));
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                       "%zu of %zu messages are invalid; none was stored", nbad,
		                       b.n);
		sb_log_kv(SB_LOG_INFO, "publish batch refused", "topic", t.name, "tenant_id",
		          tenant, NULL);
		goto done;
	}
	if (rv != SB__RPC__CODE__OK)
		goto done;
	if ((rv = ps_batch_store(call, st, &t, PQgetvalue(sres, 0, 8), in, &b, res, &nrows)) != 0) {
		rv = rv == SB_EINVAL
		         ? ps_invalid(call, "messages", "a payload is not storable JSON")
		         : ps_db_error(call, "publish_group", rv);
		goto done;
	}
	if (PQgetvalue(res[0], 0, 2)[0] != 't') {
		/* the topic's route_version moved: nothing was stored (one topic, one version) */
		ps_route_drop(st, tenant, in->topic);
		sb_series_inc(st->m_route_stale);
		if (++tries < 3)
			goto reroute;
		sb_rpc_call_retry_after(call, 100);
		rv = sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                       "topic %s kept changing during the publish", in->topic);
		goto done;
	}
	/* the waiting consumers were woken by ps_publish_grouped, once per group */
	bool stored = false, push = false;
	const char *tp = sb_rpc_call_traceparent(call);
	for (size_t i = 0; i < b.n; i++) {
		sb__pubsub__publish_response__init(&r[i]);
		out->results[i] = &r[i];
		if (b.first[i] >= 0) {
			/* the key of an earlier message of this batch: its answer */
			r[i].id = r[b.first[i]].id;
			r[i].duplicate = true;
		} else if (atoi(PQgetvalue(res[b.row[i]], 0, 0)) == 0) {
			/* a live idempotency key from an earlier publish */
			if ((rv = ps_idem_get(call, &t, in->messages[i]->idempotency_key,
			                      &r[i].id)) != SB__RPC__CODE__OK)
				goto done;
			r[i].duplicate = true;
		} else {
			r[i].id = ps_dup(call, b.m[i].id);
			r[i].subscriptions = atoi(PQgetvalue(res[b.row[i]], 0, 1)) + b.m[i].ncursor;
			ps_trace_span("pubsub route", SB_SPAN_INTERNAL, tp, route_ns, b.m[i].id,
			              NULL, 0);
			stored = true;
			push = push || b.m[i].push;
		}
		if (r[i].id == NULL) {
			rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
			goto done;
		}
		out->ids[i] = r[i].id;
		sb_series_inc(
		    sb_metric_with(r[i].duplicate ? st->m_duplicates : st->m_published, t.name));
	}
	out->n_ids = out->n_results = b.n;
	if (push)
		ps_push_wake(st);
	/* 202 when a message was stored; 200 when every one was a repeat (as Publish) */
	if (!stored)
		sb_rpc_call_set_http_status(call, 200);
	rv = SB__RPC__CODE__OK;
	goto done;
reroute:
	ps_batch_clear(&b);
	for (size_t k = 0; k < nrows; k++) {
		PQclear(res[k]);
		res[k] = NULL;
	}
	nrows = 0;
	PQclear(sres);
	sres = NULL;
	goto again;
done:
	if (b.m != NULL)
		ps_batch_clear(&b);
	for (size_t k = 0; k < nrows; k++)
		PQclear(res[k]);
	PQclear(sres);
	free(res);
	free(b.row);
	free(b.first);
	free(b.m);
	return rv;
}
