/* consume.c: RPCs Consume (long poll; leases what it returns), Ack, Nack, ModifyDeadline and
 * GetMessage. The statements are in store.c; docs/pubsub.md has the delivery states. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_shutdown.h"
#include "sb_util_time.h"
#include "sb_util_uuid.h"

#define PS_CONSUME_MAX 100

/* One consume's long poll: its subscription and the parameters of its looks. */
struct ps_poll {
	char topic[PS_NAME_MAX + 1];
	const char *sub; /* the subscription's name */
	char sub_id[24];
	enum ps_strategy strat;
	bool balanced;      /* a named consumer of a round_robin or least_loaded subscription */
	bool ordering_keys; /* the topic orders by key */
	bool cursor;        /* a cursor subscription (store.c): "claim_cursor" */
	char deadline[16];  /* the topic's ack deadline, ms */
	const char *consumer;
	int max, min;
	int64_t until; /* monotonic ms: the end of the wait */
	bool last;     /* the next look is the last and takes what there is */
	char rr_n[12], rr_k[12], cap[12], min_s[12];
	const char *stmt; /* "claim", "claim_prio" (priority) or "claim_cursor" */
	const char *p[7]; /* its parameters for the next look (ps_poll_params) */
};

/* For round_robin and least_loaded subscriptions with a named consumer: how this poll may
 * claim. rr_n and rr_k: take only deliveries whose seq % n == k (n = 0: any); *cap: at most
 * this many (least_loaded: the consumer may get ahead of the least-loaded other active
 * consumer by one delivery at most). Returns 0 or the statement's error. */
static int
ps_balance(struct sb_rpc_call *call, const char *sub_id, const char *consumer,
           enum ps_strategy strat, int *rr_n, int *rr_k, int *cap)
{
	const struct pubsub_cfg *cfg = ps_ctx(call)->cfg;
	char ttl[24];
	PGresult *res = NULL;
	snprintf(ttl, sizeof(ttl), "%lld", cfg->consumer_ttl_ms);
	const char *p[] = { sub_id, consumer, ttl };
	int rv = sb_pg_exec_prepared(ps_pg(call), "consumer_touch", 3, p, &res);
	if (rv != 0)
		return rv;
	int n = PQntuples(res), k = -1, idx = 0;
	long long own = 0, min_other = -1;
	for (int i = 0; i < n; i++) {
		const char *name = PQgetvalue(res, i, 0);
		long long inflight = atoll(PQgetvalue(res, i, 1));
		int c = strcmp(name, consumer);
		if (c == 0) {
			k = i;
			own = inflight;
			continue;
		}
		if (c < 0)
			idx++;
		if (min_other < 0 || inflight < min_other)
			min_other = inflight;
	}
	/* The first poll of a consumer is not in the list yet: count it where it sorts. */
	int total = k < 0 ? n + 1 : n;
	int self = k < 0 ? idx : k;
	PQclear(res);
	*rr_n = 0;
	*rr_k = 0;
	if (strat == PS_ROUND_ROBIN && total > 1) {
		*rr_n = total;
		*rr_k = self;
	}
	if (strat == PS_LEAST_LOADED && min_other >= 0) {
		long long c = min_other - own + 1;
		*cap = c < 0 ? 0 : (c < *cap ? (int)c : *cap);
	}
	return 0;
}

/* Fills messages with the n leased rows of res from row0 on, their columns from col0 on (as
 * "claim" answers them), and counts them in the metrics. */
static int
ps_fill_delivered(struct sb_rpc_call *call, const PGresult *res, int row0, int n, int col0,
                  const struct ps_poll *pl, Sb__Pubsub__Delivered ***messages, size_t *n_messages)
{
	struct ps_state *st = ps_ctx(call);
	if (n <= 0)
		return 0;
	Sb__Pubsub__Delivered **arr = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(void *));
	if (arr == NULL)
		return SB_ENOMEM;
	*messages = arr;
	*n_messages = 0;
	struct sb_series *delivered = sb_metric_with(st->m_delivered, pl->topic, pl->sub);
	struct sb_series *redelivered = sb_metric_with(st->m_redeliver, pl->topic, pl->sub);
	for (int i = row0; i < row0 + n; i++) {
		Sb__Pubsub__Delivered *d = sb_rpc_call_alloc(call, sizeof(*d));
		if (d == NULL)
			return SB_ENOMEM;
		sb__pubsub__delivered__init(d);
		d->id = ps_dup(call, PQgetvalue(res, i, col0));
		d->payload = ps_raw(call, PQgetvalue(res, i, col0 + 1));
		if (ps_headers_fill(call, PQgetvalue(res, i, col0 + 2),
		                    &sb__pubsub__delivered__headers_entry__descriptor,
		                    (void ***)&d->headers, &d->n_headers) != 0)
			return SB_ENOMEM;
		d->attempt = atoi(PQgetvalue(res, i, col0 + 3));
		d->subscription = ps_dup(call, pl->sub);
		d->lease_id = ps_dup(call, PQgetvalue(res, i, col0 + 4));
		d->ordering_key = ps_dup(call, PQgetvalue(res, i, col0 + 5));
		d->priority = atoi(PQgetvalue(res, i, col0 + 6));
		d->lease_expires_ms = atoll(PQgetvalue(res, i, col0 + 7));
		if (d->id == NULL || d->payload == NULL || d->subscription == NULL ||
		    d->lease_id == NULL || d->ordering_key == NULL)
			return SB_ENOMEM;
		ps_trace_span("pubsub deliver", SB_SPAN_CONSUMER,
		              ps_trace_of(d->headers, d->n_headers), 0, d->id, pl->sub, d->attempt);
		arr[(*n_messages)++] = d;
		sb_series_inc(delivered);
		if (d->attempt > 1)
			sb_series_inc(redelivered);
	}
	return 0;
}

/* ps_poll_open checks a consume's parameters and reads its topic and subscription
 * ("consume_sub") into pl. Returns OK or the answered error. */
static int
ps_poll_open(struct sb_rpc_call *call, const char *topic, const char *sub, const char *consumer,
             int max, int min, int wait_ms, struct ps_poll *pl)
{
	struct ps_state *st = ps_ctx(call);
	const char *tenant = ps_tenant(call);
	PGresult *res = NULL;
	int rv;
	memset(pl, 0, sizeof(*pl));
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (max < 0 || max > PS_CONSUME_MAX)
		return ps_invalid(call, "max", "1 to 100 (0 means 1)");
	pl->max = max ? max : 1;
	if (min < 0 || min > pl->max)
		return ps_invalid(call, "min", "0 to max (0 and 1: whatever is there)");
	pl->min = min;
	if (wait_ms < 0 || wait_ms > st->cfg->max_wait_ms)
		return ps_invalid(call, "wait_ms", "0 to SB_PUBSUB_MAX_WAIT_MS (20000)");
	if (strlen(consumer) > PS_NAME_MAX)
		return ps_invalid(call, "consumer", "at most 100 characters");
	if (!ps_name_ok(topic))
		return ps_invalid(call, "name",
		                  "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq");
	pl->sub = sub[0] ? sub : PS_DEFAULT_SUB;
	pl->consumer = consumer;
	const char *p[] = { tenant, topic, pl->sub };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "consume_sub", 3, p, &res)) != 0)
		return ps_db_error(call, "consume_sub", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", topic);
	}
	/* Checked after the topic, as before consume_sub read both: an unknown topic is 404. */
	if (!ps_name_ok(pl->sub)) {
		PQclear(res);
		return ps_invalid(call, "subscription", "1 to 100 of A-Z a-z 0-9 . _ -");
	}
	if (PQgetisnull(res, 0, 4)) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no subscription %s",
		                         pl->sub);
	}
	if (PQgetvalue(res, 0, 6)[0] == 't') {
		PQclear(res);
		return ps_invalid(call, "subscription",
		                  "a push subscription: its messages are POSTed to its endpoint");
	}
	snprintf(pl->topic, sizeof(pl->topic), "%s", PQgetvalue(res, 0, 0));
	snprintf(pl->deadline, sizeof(pl->deadline), "%s", PQgetvalue(res, 0, 1));
	pl->ordering_keys = PQgetvalue(res, 0, 2)[0] == 't';
	snprintf(pl->sub_id, sizeof(pl->sub_id), "%s", PQgetvalue(res, 0, 4));
	if (!ps_strategy_parse(PQgetvalue(res, 0, 5), &pl->strat))
		pl->strat = PS_DIRECT;
	pl->cursor = strcmp(PQgetvalue(res, 0, 7), "cursor") == 0;
	PQclear(res);
	pl->balanced =
	    consumer[0] != '\0' && (pl->strat == PS_ROUND_ROBIN || pl->strat == PS_LEAST_LOADED);
	/* Wait at most what was asked, and end early enough to answer within the deadline. */
	int64_t left = sb_rpc_call_remaining_ms(call);
	int64_t wait = wait_ms;
	if (left != INT64_MAX && wait > left - 500)
		wait = left > 500 ? left - 500 : 0;
	pl->until = sb_time_mono_ms() + wait;
	pl->last = wait <= 0;
	return SB__RPC__CODE__OK;
}

/* ps_poll_params makes the claim's parameters of one look into pl (the balance of a named
 * consumer of a load-balanced subscription read first): the 7 of "claim".
 * Returns OK or the answered error; *cap 0 means this consumer may take nothing now. */
static int
ps_poll_params(struct sb_rpc_call *call, struct ps_poll *pl, int *cap)
{
	int rr_n = 0, rr_k = 0, rv;
	*cap = pl->max;
	if (pl->balanced &&
	    (rv = ps_balance(call, pl->sub_id, pl->consumer, pl->strat, &rr_n, &rr_k, cap)) != 0)
		return ps_db_error(call, "consumer_touch", rv);
	/* A look that must take what there is (the last one) has no min; a consumer allowed
	 * fewer than its min (least_loaded) waits for no more than it may take. */
	int min = pl->last ? 1 : (pl->min < *cap ? pl->min : *cap);
	snprintf(pl->rr_n, sizeof(pl->rr_n), "%d", rr_n);
	snprintf(pl->rr_k, sizeof(pl->rr_k), "%d", rr_k);
	snprintf(pl->cap, sizeof(pl->cap), "%d", *cap);
	snprintf(pl->min_s, sizeof(pl->min_s), "%d", min < 1 ? 1 : min);
	pl->p[0] = pl->sub_id;
	pl->p[1] = pl->cap;
	pl->p[2] = pl->deadline;
	pl->p[3] = pl->consumer;
	pl->p[4] = pl->rr_n;
	pl->p[5] = pl->rr_k;
	pl->p[6] = pl->min_s;
	pl->stmt = pl->cursor ? "claim_cursor" : pl->strat == PS_PRIORITY ? "claim_prio" : "claim";
	return SB__RPC__CODE__OK;
}

/* ps_poll_run is the long poll: it looks ("claim") until something is leased, the wait ends or
 * the service stops, and fills messages. Without a min (0 or 1) a publish, nack or replay of
 * this instance wakes it at once and it looks at least every SB_PUBSUB_POLL_MS; with a min it
 * looks every SB_PUBSUB_FILL_POLL_MS (publishes do not wake it: each would cost a look), leases
 * only when min are there, and at the end of the wait takes what there is. looked: the caller
 * already made the first look (finding nothing) after reading *looked as st->gen; NULL: look
 * first. Returns OK or the answered error. */
static int
ps_poll_run(struct sb_rpc_call *call, struct ps_poll *pl, const uint64_t *looked,
            Sb__Pubsub__Delivered ***messages, size_t *n_messages)
{
	struct ps_state *st = ps_ctx(call);
	PGresult *res = NULL;
	int rv, cap;
	bool fill = pl->min > 1, skip = looked != NULL;
	uint64_t gen = looked ? *looked : 0;
	for (;;) {
		if (!skip) {
			pthread_mutex_lock(&st->mu);
			gen = st->gen;
			pthread_mutex_unlock(&st->mu);
			if ((rv = ps_poll_params(call, pl, &cap)) != SB__RPC__CODE__OK)
				return rv;
		}
		if (!skip && cap > 0) {
			if ((rv = sb_pg_exec_prepared(ps_pg(call), pl->stmt, 7, pl->p, &res)) != 0)
				return ps_db_error(call, pl->stmt, rv);
			if (PQntuples(res) > 0)
				break;
			PQclear(res);
			res = NULL;
		}
		skip = false;
		if (pl->last || sb_shutdown_requested())
			break;
		int64_t now = sb_time_mono_ms();
		if (now >= pl->until) {
			if (!fill)
				break;
			pl->last = true; /* one more look, taking what there is */
			continue;
		}
		int64_t nap = fill ? st->cfg->fill_poll_ms : st->cfg->poll_ms;
		if (pl->until - now < nap)
			nap = pl->until - now;
		/* no connection held while napping: the next look borrows one (pool.c) */
		ps_pool_release();
		if (fill ? !ps_sleep(st, nap) : !ps_wait_gen(st, &st->cv, &st->gen, &gen, nap))
			break;
	}
	rv = SB__RPC__CODE__OK;
	if (res != NULL &&
	    ps_fill_delivered(call, res, 0, PQntuples(res), 0, pl, messages, n_messages) != 0)
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	PQclear(res);
	return rv;
}

int
ps_rpc_consume(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__ConsumeRequest *in = req;
	Sb__Pubsub__ConsumeResponse *out = resp;
	struct ps_poll pl;
	int rv = ps_poll_open(call, in->topic, in->subscription, in->consumer, in->max, 0,
	                      in->wait_ms, &pl);
	if (rv != SB__RPC__CODE__OK)
		return rv;
	return ps_poll_run(call, &pl, NULL, &out->messages, &out->n_messages);
}

int
ps_rpc_consume_ack(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__ConsumeAckRequest *in = req;
	Sb__Pubsub__ConsumeAckResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_poll pl;
	struct ps_acks a;
	PGresult *res = NULL;
	int rv, cap;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_poll_open(call, in->topic, in->subscription, in->consumer, in->max, in->min,
	                       in->wait_ms, &pl)) != SB__RPC__CODE__OK)
		return rv;
	if ((rv = ps_acks_prepare(call, in->acks, in->n_acks, &a)) != SB__RPC__CODE__OK)
		return rv;
	out->acks = a.results;
	out->n_acks = a.n_results;
	/* The acks and the first look in one statement, unless the look must see the acks'
	 * effect: the next delivery of an ordering key waits for the ack of the one before, and a
	 * least_loaded consumer's share counts its leases in flight; and not for priority
	 * subscriptions ("consume_ack" takes seq order). Then the acks go first, alone (committed
	 * before the look), and the consume polls as GET consume does. */
	bool together = a.nvalid > 0 && !pl.ordering_keys && pl.strat != PS_PRIORITY &&
	                !(pl.balanced && pl.strat == PS_LEAST_LOADED);
	if (!together) {
		if ((rv = ps_acks_run(call, &a, tenant)) != SB__RPC__CODE__OK)
			goto done;
		rv = ps_poll_run(call, &pl, NULL, &out->messages, &out->n_messages);
		goto done;
	}
	struct ps_state *st = ps_ctx(call);
	uint64_t gen;
	pthread_mutex_lock(&st->mu);
	gen = st->gen;
	pthread_mutex_unlock(&st->mu);
	if ((rv = ps_poll_params(call, &pl, &cap)) != SB__RPC__CODE__OK)
		goto done;
	const char *p[11] = { a.ids.data, a.subs.data, a.leases.data, tenant };
	for (int i = 0; i < 7; i++)
		p[4 + i] = pl.p[i];
	if (cap <= 0)
		p[5] = "0"; /* no lease for this consumer now: the acks only */
	const char *stmt = pl.cursor ? "consume_ack_cursor" : "consume_ack";
	if ((rv = sb_pg_exec_prepared(ps_pg(call), stmt, 11, p, &res)) != 0) {
		rv = ps_db_error(call, stmt, rv);
		goto done;
	}
	/* Rows: the acks (k = 0), then the leased (k = 1). */
	int n = PQntuples(res), nack = 0, nmsg = 0;
	while (nack < n && PQgetvalue(res, nack, 0)[0] == '0')
		nack++;
	while (nack + nmsg < n && PQgetvalue(res, nack + nmsg, 0)[0] == '1')
		nmsg++;
	if ((rv = ps_acks_apply(call, &a, res, 0, 2)) != SB__RPC__CODE__OK)
		goto done;
	/* what a cursor subscription's statement left to the rules of "ack_batch" */
	if (pl.cursor &&
	    (rv = ps_acks_settle_rest(call, in->acks, in->n_acks, &a, tenant)) != SB__RPC__CODE__OK)
		goto done;
	if (nmsg > 0) {
		if (ps_fill_delivered(call, res, nack, nmsg, 2, &pl, &out->messages,
		                      &out->n_messages) != 0)
			rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		goto done;
	}
	/* Nothing leased by the first look: the acks are committed; wait as a consume does. */
	rv = ps_poll_run(call, &pl, &gen, &out->messages, &out->n_messages);
done:
	PQclear(res);
	ps_acks_free(&a);
	return rv;
}

/* The subscription of a message for ack, nack and modify: checks the id, finds the message's
 * topic in the caller's tenant and its subscription sub. */
struct ps_target {
	char sub_id[24];
	char topic[PS_NAME_MAX + 1];
	bool strict; /* exactly_once topic */
	char max_attempts[12];
	const char *sub;
	bool cursor; /* a cursor subscription: the message is detached from its lease first */
};

static int
ps_target_load(struct sb_rpc_call *call, const char *id, const char *sub, const char *lease,
               struct ps_target *tg)
{
	const char *tenant = ps_tenant(call);
	struct sb_uuid u;
	PGresult *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (sb_uuid_parse(id, &u) != 0)
		return ps_invalid(call, "id", "a message id (UUID)");
	if (lease[0] != '\0' && sb_uuid_parse(lease, &u) != 0)
		return ps_invalid(call, "lease_id", "a lease id (UUID) from consume");
	tg->sub = sub[0] ? sub : PS_DEFAULT_SUB;
	if (!ps_name_ok(tg->sub))
		return ps_invalid(call, "subscription", "1 to 100 of A-Z a-z 0-9 . _ -");
	const char *p[] = { id, tenant, tg->sub };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "msg_sub", 3, p, &res)) != 0)
		return ps_db_error(call, "msg_sub", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND,
		                         "no message %s for subscription %s", id, tg->sub);
	}
	snprintf(tg->sub_id, sizeof(tg->sub_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(tg->topic, sizeof(tg->topic), "%s", PQgetvalue(res, 0, 1));
	tg->strict = strcmp(PQgetvalue(res, 0, 2), "exactly_once") == 0;
	snprintf(tg->max_attempts, sizeof(tg->max_attempts), "%s", PQgetvalue(res, 0, 3));
	tg->cursor = strcmp(PQgetvalue(res, 0, 4), "cursor") == 0;
	PQclear(res);
	return SB__RPC__CODE__OK;
}

/* For a cursor subscription: message id, held by a lease of lease id lease ('' = any), moves
 * into a row of deliveries ("detach"), where ack, nack and modify-deadline find it. Nothing
 * when no such lease holds it (the statement that follows then finds no lease). */
static int
ps_target_detach(struct sb_rpc_call *call, const char *id, const char *lease,
                 const struct ps_target *tg)
{
	PGresult *res = NULL;
	int rv;
	if (!tg->cursor)
		return SB__RPC__CODE__OK;
	const char *p[] = { id, tg->sub_id, lease };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "detach", 3, p, &res)) != 0)
		return ps_db_error(call, "detach", rv);
	PQclear(res);
	return SB__RPC__CODE__OK;
}

/* Answers an ack, nack or modify that matched no leased delivery: why not. */
static int
ps_not_leased(struct sb_rpc_call *call, const char *id, const struct ps_target *tg,
              Sb__Pubsub__AckResponse *out, bool ack)
{
	PGresult *res = NULL;
	const char *p[] = { id, tg->sub_id };
	int rv = sb_pg_exec_prepared(ps_pg(call), "delivery_state", 2, p, &res);
	if (rv != 0)
		return ps_db_error(call, "delivery_state", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND,
		                         "message %s was not routed to subscription %s", id,
		                         tg->sub);
	}
	const char *state = PQgetvalue(res, 0, 0);
	if (ack && strcmp(state, "acked") == 0) {
		/* Acking twice is harmless: the answer says it is acked. */
		out->id = ps_dup(call, id);
		out->state = ps_dup(call, "acked");
		PQclear(res);
		return SB__RPC__CODE__OK;
	}
	rv = sb_rpc_call_error(call, SB__RPC__CODE__FAILED_PRECONDITION,
	                       "message %s is %s for subscription %s: no lease of yours to %s", id,
	                       state, tg->sub, ack ? "ack" : "change");
	PQclear(res);
	return rv;
}

int
ps_rpc_ack(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__AckRequest *in = req;
	Sb__Pubsub__AckResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	struct ps_target tg;
	PGresult *res = NULL;
	int rv;
	if ((rv = ps_target_load(call, in->id, in->subscription, in->lease_id, &tg)) !=
	    SB__RPC__CODE__OK)
		return rv;
	if (tg.strict && in->lease_id[0] == '\0')
		return ps_invalid(call, "lease_id", "required on exactly_once topics");
	if ((rv = ps_target_detach(call, in->id, in->lease_id, &tg)) != SB__RPC__CODE__OK)
		return rv;
	const char *p[] = { in->id, tg.sub_id, in->lease_id, tg.strict ? "true" : "false" };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "ack", 4, p, &res)) != 0)
		return ps_db_error(call, "ack", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ps_not_leased(call, in->id, &tg, out, true);
	}
	sb_series_observe(sb_metric_with(st->m_latency, tg.topic), atof(PQgetvalue(res, 0, 0)));
	sb_series_inc(sb_metric_with(st->m_acked, tg.topic, tg.sub));
	ps_trace_span("pubsub ack", SB_SPAN_CONSUMER, PQgetvalue(res, 0, 1), 0, in->id, tg.sub, 0);
	PQclear(res);
	out->id = ps_dup(call, in->id);
	out->state = ps_dup(call, "acked");
	return SB__RPC__CODE__OK;
}

int
ps_rpc_nack(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__NackRequest *in = req;
	Sb__Pubsub__AckResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	struct ps_target tg;
	char delay[16], base[24], max[24];
	PGresult *res = NULL;
	int rv;
	if (in->delay_ms < 0 || in->delay_ms > 86400000)
		return ps_invalid(call, "delay_ms", "0 (the backoff) to 86400000");
	if (strlen(in->reason) > 1000)
		return ps_invalid(call, "reason", "at most 1000 characters");
	if ((rv = ps_target_load(call, in->id, in->subscription, in->lease_id, &tg)) !=
	    SB__RPC__CODE__OK)
		return rv;
	if ((rv = ps_target_detach(call, in->id, in->lease_id, &tg)) != SB__RPC__CODE__OK)
		return rv;
	snprintf(delay, sizeof(delay), "%d", in->delay_ms);
	snprintf(base, sizeof(base), "%lld", st->cfg->backoff_base_ms);
	snprintf(max, sizeof(max), "%lld", st->cfg->backoff_max_ms);
	const char *p[] = {
		in->id, tg.sub_id, in->lease_id,   delay, in->reason[0] ? in->reason : "nack",
		base,   max,       tg.max_attempts
	};
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "nack", 8, p, &res)) != 0)
		return ps_db_error(call, "nack", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ps_not_leased(call, in->id, &tg, out, false);
	}
	out->id = ps_dup(call, in->id);
	out->state = ps_dup(call, PQgetvalue(res, 0, 0));
	sb_series_inc(sb_metric_with(st->m_nacked, tg.topic, tg.sub));
	if (strcmp(out->state, "dead") == 0) {
		sb_series_inc(sb_metric_with(st->m_dead, tg.topic, tg.sub, "nack"));
		sb_log_kv(SB_LOG_INFO, "delivery dead-lettered", "id", in->id, "topic", tg.topic,
		          "subscription", tg.sub, "attempts", PQgetvalue(res, 0, 1), NULL);
	}
	PQclear(res);
	ps_wake(st);
	return SB__RPC__CODE__OK;
}

int
ps_rpc_modify_deadline(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__ModifyDeadlineRequest *in = req;
	Sb__Pubsub__AckResponse *out = resp;
	struct ps_target tg;
	char ms[16];
	PGresult *res = NULL;
	int rv;
	if (in->ack_deadline_ms < 0 || in->ack_deadline_ms > 3600000)
		return ps_invalid(call, "ack_deadline_ms", "0 (give the lease up) to 3600000");
	if ((rv = ps_target_load(call, in->id, in->subscription, in->lease_id, &tg)) !=
	    SB__RPC__CODE__OK)
		return rv;
	if ((rv = ps_target_detach(call, in->id, in->lease_id, &tg)) != SB__RPC__CODE__OK)
		return rv;
	snprintf(ms, sizeof(ms), "%d", in->ack_deadline_ms);
	const char *p[] = { in->id, tg.sub_id, in->lease_id, ms };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "modify", 4, p, &res)) != 0)
		return ps_db_error(call, "modify", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ps_not_leased(call, in->id, &tg, out, false);
	}
	out->id = ps_dup(call, in->id);
	out->state = ps_dup(call, PQgetvalue(res, 0, 0));
	PQclear(res);
	if (in->ack_deadline_ms == 0)
		ps_wake(ps_ctx(call));
	return SB__RPC__CODE__OK;
}

int
ps_rpc_get_message(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__GetMessageRequest *in = req;
	Sb__Pubsub__MessageInfo *out = resp;
	const char *tenant = ps_tenant(call);
	struct sb_uuid u;
	PGresult *res = NULL, *dres = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (sb_uuid_parse(in->id, &u) != 0)
		return ps_invalid(call, "id", "a message id (UUID)");
	const char *p[] = { in->id, tenant };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "msg_get", 2, p, &res)) != 0)
		return ps_db_error(call, "msg_get", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no message %s", in->id);
	}
	const char *dp[] = { in->id };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "msg_deliveries", 1, dp, &dres)) != 0) {
		rv = ps_db_error(call, "msg_deliveries", rv);
		goto done;
	}
	rv = SB__RPC__CODE__INTERNAL;
	out->id = ps_dup(call, PQgetvalue(res, 0, 0));
	out->topic = ps_dup(call, PQgetvalue(res, 0, 1));
	out->payload = ps_raw(call, PQgetvalue(res, 0, 2));
	if (ps_headers_fill(call, PQgetvalue(res, 0, 3),
	                    &sb__pubsub__message_info__headers_entry__descriptor,
	                    (void ***)&out->headers, &out->n_headers) != 0)
		goto done;
	out->priority = atoi(PQgetvalue(res, 0, 4));
	out->ordering_key = ps_dup(call, PQgetvalue(res, 0, 5));
	out->idempotency_key = ps_dup(call, PQgetvalue(res, 0, 6));
	out->published_at = ps_dup(call, PQgetvalue(res, 0, 7));
	int n = PQntuples(dres);
	if ((out->deliveries = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(void *))) == NULL)
		goto done;
	for (int i = 0; i < n; i++) {
		Sb__Pubsub__DeliveryState *d = sb_rpc_call_alloc(call, sizeof(*d));
		if (d == NULL)
			goto done;
		sb__pubsub__delivery_state__init(d);
		d->subscription = ps_dup(call, PQgetvalue(dres, i, 0));
		d->state = ps_dup(call, PQgetvalue(dres, i, 1));
		d->attempt = atoi(PQgetvalue(dres, i, 2));
		d->errors = ps_raw(call, PQgetvalue(dres, i, 3));
		out->deliveries[out->n_deliveries++] = d;
	}
	rv = SB__RPC__CODE__OK;
done:
	if (rv == SB__RPC__CODE__INTERNAL)
		sb_rpc_call_error(call, rv, "out of memory");
	PQclear(dres);
	PQclear(res);
	return rv;
}
