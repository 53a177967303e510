/* push.c: the push workers. Each leases the oldest ready delivery of any push subscription
 * ("push_claim", for the POST's timeout plus SB_PUBSUB_PUSH_LEASE_MARGIN_MS, so that a crashed
 * worker's delivery comes back through the reaper), POSTs it to the subscription's endpoint signed
 * with its secret (sb_webhook_attempt, the notifier's mechanism), and records the outcome with the
 * statements pull consumers use: a 2xx acks it; a failure that may pass (5xx, 408, 429,
 * timeout, no connection) nacks it with the topic's backoff, which dead-letters it into
 * {name}.dlq after the topic's last attempt; a permanent failure (another status, a refused
 * address) dead-letters it at once. Every failure joins the delivery's error history. */
#include "pubsub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_trace.h"
#include "sb_webhook.h"

enum {
	P_MID,
	P_SUB_ID,
	P_ATTEMPT,
	P_LEASE,
	P_PAYLOAD,
	P_HEADERS,
	P_PUBLISHED,
	P_SUB,
	P_URL,
	P_SECRET,
	P_TOPIC,
	P_MAX_ATTEMPTS,
	P_TRACE,
};

/* ps_push_body writes the JSON body of a push: every string in it is a UUID, a name of
 * [A-Za-z0-9._-], a timestamp or JSON text from the store, so none needs escaping. */
static int
ps_push_body(PGresult *row, struct sb_buf *b)
{
	return sb_buf_printf(
	    b,
	    "{\"id\":\"%s\",\"topic\":\"%s\",\"subscription\":\"%s\",\"attempt\":%s,"
	    "\"published_at\":\"%s\",\"headers\":%s,\"payload\":%s}",
	    PQgetvalue(row, 0, P_MID), PQgetvalue(row, 0, P_TOPIC), PQgetvalue(row, 0, P_SUB),
	    PQgetvalue(row, 0, P_ATTEMPT), PQgetvalue(row, 0, P_PUBLISHED),
	    PQgetvalue(row, 0, P_HEADERS), PQgetvalue(row, 0, P_PAYLOAD));
}

/* ps_push_record stores the outcome of one attempt of the leased delivery in row. */
static void
ps_push_record(struct ps_state *st, struct sb_pg *pg, PGresult *row, enum sb_webhook_outcome o,
               const char *err)
{
	const char *mid = PQgetvalue(row, 0, P_MID), *topic = PQgetvalue(row, 0, P_TOPIC),
	           *sub = PQgetvalue(row, 0, P_SUB);
	PGresult *r = NULL;
	int rv;
	if (o == SB_WEBHOOK_DELIVERED) {
		const char *p[] = { mid, PQgetvalue(row, 0, P_SUB_ID), PQgetvalue(row, 0, P_LEASE),
			            "false" };
		if ((rv = sb_pg_exec_prepared(pg, "ack", 4, p, &r)) != 0) {
			sb_log_kv(SB_LOG_WARN,
			          "cannot record a push delivery; it will be pushed again",
			          "message_id", mid, "error", sb_strerror(rv), NULL);
			return;
		}
		if (PQntuples(r) == 1) {
			sb_series_inc(sb_metric_with(st->m_acked, topic, sub));
			sb_series_observe(sb_metric_with(st->m_latency, topic),
			                  atof(PQgetvalue(r, 0, 0)));
		}
		PQclear(r);
		return;
	}
	int attempt = atoi(PQgetvalue(row, 0, P_ATTEMPT));
	char delay[24], base[24], max[24], reason[480];
	snprintf(delay, sizeof(delay), "%lld",
	         (long long)sb_webhook_backoff_ms(st->cfg->backoff_base_ms, st->cfg->backoff_max_ms,
	                                          attempt));
	snprintf(base, sizeof(base), "%lld", st->cfg->backoff_base_ms);
	snprintf(max, sizeof(max), "%lld", st->cfg->backoff_max_ms);
	snprintf(reason, sizeof(reason), "push: %s%s", err,
	         o == SB_WEBHOOK_PERMANENT ? " (permanent)" : "");
	/* A permanent failure is the last attempt: "0" makes the nack dead-letter it. */
	const char *p[] = { mid,
		            PQgetvalue(row, 0, P_SUB_ID),
		            PQgetvalue(row, 0, P_LEASE),
		            delay,
		            reason,
		            base,
		            max,
		            o == SB_WEBHOOK_PERMANENT ? "0" : PQgetvalue(row, 0, P_MAX_ATTEMPTS) };
	if ((rv = sb_pg_exec_prepared(pg, "nack", 8, p, &r)) != 0) {
		sb_log_kv(SB_LOG_WARN, "cannot record a failed push; the lease expiry retries it",
		          "message_id", mid, "error", sb_strerror(rv), NULL);
		return;
	}
	bool dead = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "dead") == 0;
	PQclear(r);
	sb_series_inc(sb_metric_with(st->m_nacked, topic, sub));
	if (dead)
		sb_series_inc(sb_metric_with(st->m_dead, topic, sub, "push"));
	sb_log_kv(dead ? SB_LOG_WARN : SB_LOG_INFO,
	          dead ? "push delivery dead-lettered" : "push delivery failed; will retry",
	          "message_id", mid, "topic", topic, "subscription", sub, "attempt",
	          PQgetvalue(row, 0, P_ATTEMPT), "error", err, "delay_ms", dead ? "" : delay, NULL);
}

/* ps_push_one POSTs the leased delivery in row and records the outcome. */
static void
ps_push_one(struct ps_state *st, struct sb_pg *pg, PGresult *row)
{
	struct sb_buf body = SB_BUF_INIT;
	struct sb_trace_ctx tc;
	char hdrs[768], err[420];
	const char *tp = PQgetvalue(row, 0, P_TRACE);
	bool traced = tp[0] != '\0' && sb_trace_parse(tp, &tc) == 0;
	enum sb_webhook_outcome o;

	if (ps_push_body(row, &body) != 0) {
		snprintf(err, sizeof(err), "out of memory");
		o = SB_WEBHOOK_RETRY;
		goto record;
	}
	/* The trace header only when it is a valid traceparent (it came from a publisher). */
	snprintf(hdrs, sizeof(hdrs),
	         "Switchboard-Message-Id: %s\r\nSwitchboard-Topic: %s\r\n"
	         "Switchboard-Subscription: %s\r\nSwitchboard-Attempt: %s\r\n%s%s%s",
	         PQgetvalue(row, 0, P_MID), PQgetvalue(row, 0, P_TOPIC), PQgetvalue(row, 0, P_SUB),
	         PQgetvalue(row, 0, P_ATTEMPT), traced ? "traceparent: " : "", traced ? tp : "",
	         traced ? "\r\n" : "");
	struct sb_webhook_req req = { .url = PQgetvalue(row, 0, P_URL),
		                      .secret = PQgetvalue(row, 0, P_SECRET),
		                      .body = body.data,
		                      .blen = body.len,
		                      .headers = hdrs,
		                      .timeout_ms = (int)st->cfg->push_timeout_ms,
		                      .allow_private = st->cfg->push_allow_private };
	sb_series_inc(sb_metric_with(st->m_delivered, PQgetvalue(row, 0, P_TOPIC),
	                             PQgetvalue(row, 0, P_SUB)));
	if (atoi(PQgetvalue(row, 0, P_ATTEMPT)) > 1)
		sb_series_inc(sb_metric_with(st->m_redeliver, PQgetvalue(row, 0, P_TOPIC),
		                             PQgetvalue(row, 0, P_SUB)));
	int64_t t0 = ps_trace_now_ns();
	o = sb_webhook_attempt(&req, err, sizeof(err));
	ps_trace_span("pubsub deliver", SB_SPAN_CLIENT, traced ? tp : NULL, t0,
	              PQgetvalue(row, 0, P_MID), PQgetvalue(row, 0, P_SUB),
	              atoi(PQgetvalue(row, 0, P_ATTEMPT)));
record:
	ps_push_record(st, pg, row, o, err);
	sb_buf_free(&body);
}

void
ps_push_wake(struct ps_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->push_gen++;
	pthread_cond_broadcast(&st->push_cv);
	pthread_mutex_unlock(&st->mu);
}

/* ps_push_claim leases the next delivery for a push worker, skipping the subscriptions that
 * have push_per_sub pushes in flight in this process, and marks the worker busy with its
 * subscription (*slot, for ps_push_done). Claims are serialized by push_mu so that two workers
 * cannot both take a subscription's last free place. Returns sb_pg_exec_prepared's result. */
static int
ps_push_claim(struct ps_state *st, struct sb_pg *pg, const char *lease, PGresult **row, int *slot)
{
	struct sb_buf full = SB_BUF_INIT;
	int rv = SB_ENOMEM;
	*row = NULL;
	*slot = -1;
	int nw = (int)st->cfg->push_workers; /* push_busy's size */
	pthread_mutex_lock(&st->push_mu);
	if (sb_buf_puts(&full, "{") != 0)
		goto done;
	int nfull = 0;
	for (int i = 0; i < nw; i++) {
		long long sub = st->push_busy[i];
		int n = 0, first = 1;
		if (sub == 0)
			continue;
		for (int k = 0; k < nw; k++) {
			if (st->push_busy[k] != sub)
				continue;
			first =
			    first && k >= i; /* count each subscription once, at its first slot */
			n++;
		}
		if (!first || n < st->cfg->push_per_sub)
			continue;
		if (sb_buf_printf(&full, "%s%lld", nfull++ ? "," : "", sub) != 0)
			goto done;
	}
	if (sb_buf_puts(&full, "}") != 0)
		goto done;
	const char *p[] = { lease, full.data };
	rv = sb_pg_exec_prepared(pg, "push_claim", 2, p, row);
	if (rv == 0 && PQntuples(*row) == 1) {
		for (int i = 0; i < nw && *slot < 0; i++)
			if (st->push_busy[i] == 0)
				*slot = i;
		if (*slot >= 0)
			st->push_busy[*slot] = atoll(PQgetvalue(*row, 0, P_SUB_ID));
	}
done:
	pthread_mutex_unlock(&st->push_mu);
	sb_buf_free(&full);
	return rv;
}

/* ps_push_done frees the worker's place taken by ps_push_claim. */
static void
ps_push_done(struct ps_state *st, int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&st->push_mu);
	st->push_busy[slot] = 0;
	pthread_mutex_unlock(&st->push_mu);
}

static void *
ps_push_main(void *arg)
{
	struct ps_state *st = arg;
	struct sb_pg *pg = NULL;
	char lease[24];
	uint64_t gen = 0;
	int rv;
	snprintf(lease, sizeof(lease), "%lld",
	         st->cfg->push_timeout_ms + st->cfg->push_lease_margin_ms);
	while ((rv = sb_pg_open_opts(st->cfg->common.database_url, ps_stmts, &ps_pg_opts, &pg)) !=
	       0) {
		sb_log_kv(SB_LOG_WARN, "push worker cannot open the database", "error",
		          sb_strerror(rv), NULL);
		if (!ps_wait_gen(st, &st->push_cv, &st->push_gen, &gen, 1000))
			return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&st->mu);
		bool stop = st->stopping;
		gen = st->push_gen;
		pthread_mutex_unlock(&st->mu);
		if (stop)
			break;
		PGresult *row = NULL;
		int slot;
		rv = ps_push_claim(st, pg, lease, &row, &slot);
		if (rv != 0 || PQntuples(row) == 0) {
			if (rv != 0)
				sb_log_kv(SB_LOG_WARN, "push claim failed", "error",
				          sb_strerror(rv), "detail", sb_pg_errmsg(pg), NULL);
			PQclear(row);
			if (!ps_wait_gen(st, &st->push_cv, &st->push_gen, &gen,
			                 rv != 0 ? 1000 : st->cfg->poll_ms))
				break;
			continue;
		}
		ps_push_one(st, pg, row);
		ps_push_done(st, slot);
		PQclear(row);
	}
	sb_pg_close(pg);
	return NULL;
}

int
ps_push_start(struct ps_state *st)
{
	st->push = calloc((size_t)st->cfg->push_workers, sizeof(*st->push));
	st->push_busy = calloc((size_t)st->cfg->push_workers, sizeof(*st->push_busy));
	if (st->push == NULL || st->push_busy == NULL)
		return SB_ENOMEM;
	for (long long i = 0; i < st->cfg->push_workers; i++) {
		if (pthread_create(&st->push[i], NULL, ps_push_main, st) != 0)
			return SB_EIO;
		st->npush++;
	}
	return 0;
}

void
ps_push_join(struct ps_state *st)
{
	for (int i = 0; i < st->npush; i++)
		pthread_join(st->push[i], NULL);
	free(st->push);
	st->push = NULL;
	free(st->push_busy);
	st->push_busy = NULL;
	st->npush = 0;
}
