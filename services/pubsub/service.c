/* service.c: start and stop hooks: metrics, the long-poll wake-up and the reaper thread that
 * returns expired leases (or dead-letters them after the last attempt) and drops acknowledged
 * messages past their topic's retention. */
#include "pubsub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* A message goes once none of its deliveries is unfinished (all in acked_deliveries since
 * migration 005) and no cursor subscription still has it to deliver (past its cursor) or
 * holds it in a lease (migration 007), and its acknowledged deliveries with it (no foreign key
 * cascades since migration 004); none is added to an old message. */
static const char ps_sql_retention[] =
    "WITH gone AS (DELETE FROM messages m USING topics t WHERE m.topic_id = t.id AND "
    "m.published_at < now() - make_interval(secs => t.retention_ms::double precision / 1000) "
    "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id) AND NOT EXISTS "
    "(SELECT 1 FROM subscriptions s WHERE s.topic_id = m.topic_id AND s.mode = 'cursor' AND "
    "m.seq >= s.first_seq AND (m.seq >= s.next_seq OR EXISTS (SELECT 1 FROM leases l WHERE "
    "l.sub_id = s.id AND m.seq = ANY (l.seqs)))) RETURNING m.id) "
    "DELETE FROM acked_deliveries a USING gone WHERE a.message_id = gone.id; "
    "DELETE FROM cursor_acks WHERE acked_at < now() - interval '2 minutes'; "
    "DELETE FROM idempotency WHERE expires_at < now(); "
    "DELETE FROM consumers WHERE last_seen < now() - interval '1 hour'";

void
ps_wake(struct ps_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->gen++;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

bool
ps_wait_gen(struct ps_state *st, pthread_cond_t *cv, const uint64_t *counter, uint64_t *gen,
            int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->mu);
	while (!st->stopping && *counter == *gen) {
		if (pthread_cond_timedwait(cv, &st->mu, &ts) == ETIMEDOUT)
			break;
	}
	*gen = *counter;
	bool go = !st->stopping;
	pthread_mutex_unlock(&st->mu);
	return go;
}

bool
ps_sleep(struct ps_state *st, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->mu);
	while (!st->stopping && pthread_cond_timedwait(&st->nap_cv, &st->mu, &ts) != ETIMEDOUT)
		;
	bool go = !st->stopping;
	pthread_mutex_unlock(&st->mu);
	return go;
}

/* One pass of the reaper; returns how many leases it handled. */
static int
ps_reap(struct ps_state *st)
{
	char base[24], max[24];
	PGresult *res = NULL;
	snprintf(base, sizeof(base), "%lld", st->cfg->backoff_base_ms);
	snprintf(max, sizeof(max), "%lld", st->cfg->backoff_max_ms);
	const char *p[] = { base, max };
	/* Expired leases of cursor subscriptions become leased rows first, which "expire" then
	 * returns or dead-letters with the others. */
	int rv = sb_pg_exec_prepared(st->rpg, "detach_expired", 0, NULL, &res);
	if (rv != 0) {
		sb_log_kv(SB_LOG_WARN, "cannot detach expired leases", "error", sb_strerror(rv),
		          "detail", sb_pg_errmsg(st->rpg), NULL);
		return 0;
	}
	PQclear(res);
	res = NULL;
	rv = sb_pg_exec_prepared(st->rpg, "expire", 2, p, &res);
	if (rv != 0) {
		sb_log_kv(SB_LOG_WARN, "cannot return expired leases", "error", sb_strerror(rv),
		          "detail", sb_pg_errmsg(st->rpg), NULL);
		return 0;
	}
	int n = PQntuples(res);
	for (int i = 0; i < n; i++)
		if (strcmp(PQgetvalue(res, i, 0), "dead") == 0)
			sb_series_inc(sb_metric_with(st->m_dead, PQgetvalue(res, i, 1),
			                             PQgetvalue(res, i, 2), "expired"));
	PQclear(res);
	if (n > 0) {
		sb_series_add(st->m_expired, n);
		ps_wake(st);
	}
	return n;
}

static void *
ps_reaper_main(void *arg)
{
	struct ps_state *st = arg;
	int64_t next_retention = 0;
	for (;;) {
		int n = ps_reap(st);
		int64_t now = sb_time_now_ms();
		if (now >= next_retention) {
			int rv = sb_pg_exec(st->rpg, ps_sql_retention, NULL);
			if (rv != 0)
				sb_log_kv(SB_LOG_WARN, "retention pass failed", "error",
				          sb_strerror(rv), NULL);
			next_retention = now + st->cfg->retention_pass_ms;
		}
		if (n >= 1000)
			continue;
		if (!ps_sleep(st, st->cfg->reaper_ms))
			break;
	}
	return NULL;
}

static void
ps_state_free(struct ps_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_broadcast(&st->cv);
	pthread_cond_broadcast(&st->nap_cv);
	pthread_cond_broadcast(&st->push_cv);
	pthread_mutex_unlock(&st->mu);
	if (st->reaper_started)
		pthread_join(st->reaper, NULL);
	ps_committer_stop(st);
	ps_push_join(st);
	sb_pg_close(st->rpg);
	ps_pool_close(&st->pool);
	pthread_cond_destroy(&st->cv);
	pthread_cond_destroy(&st->nap_cv);
	pthread_cond_destroy(&st->push_cv);
	pthread_mutex_destroy(&st->push_mu);
	ps_route_free(st);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->gc_work);
	pthread_mutex_destroy(&st->gc_mu);
	free(st);
}

int
ps_service_start(struct sb_service *svc)
{
	const struct pubsub_cfg *cfg = sb_service_config(svc);
	struct ps_state *st = calloc(1, sizeof(*st));
	int rv;
	static const double lat_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
		                              0.5,   1,     2.5,  5,     10,   30,  60 };
	if (st == NULL)
		return SB_ENOMEM;
	st->cfg = cfg;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_cond_init(&st->nap_cv, NULL);
	pthread_cond_init(&st->push_cv, NULL);
	pthread_mutex_init(&st->push_mu, NULL);
	pthread_mutex_init(&st->gc_mu, NULL);
	pthread_cond_init(&st->gc_work, NULL);
	st->gc_tail = &st->gc_head;
	if (ps_route_init(st) != 0) {
		ps_state_free(st);
		return SB_ENOMEM;
	}
	st->m_published =
	    sb_metrics_counter("pubsub_published_total", "Messages stored by Publish.", "topic");
	st->m_duplicates = sb_metrics_counter(
	    "pubsub_duplicate_publishes_total",
	    "Publishes answered with an earlier message's id (idempotency key in its window).",
	    "topic");
	st->m_invalid = sb_metrics_counter("pubsub_validation_failures_total",
	                                   "Publishes refused by validation.", "topic");
	st->m_delivered = sb_metrics_counter("pubsub_delivered_total",
	                                     "Deliveries leased to consumers (every attempt).",
	                                     "topic,subscription");
	st->m_redeliver = sb_metrics_counter("pubsub_redelivered_total",
	                                     "Deliveries leased again after a failed attempt.",
	                                     "topic,subscription");
	st->m_acked = sb_metrics_counter("pubsub_acked_total", "Deliveries acknowledged.",
	                                 "topic,subscription");
	st->m_nacked = sb_metrics_counter("pubsub_nacked_total", "Deliveries refused by nack.",
	                                  "topic,subscription");
	st->m_dead =
	    sb_metrics_counter("pubsub_dead_lettered_total",
	                       "Deliveries moved to their topic's DLQ, by cause (nack, expired).",
	                       "topic,subscription,cause");
	st->m_latency = sb_metrics_histogram(
	    "pubsub_publish_to_ack_seconds", "Time from publish to the acknowledgement.", "topic",
	    lat_buckets, sizeof(lat_buckets) / sizeof(lat_buckets[0]));
	static const double group_buckets[] = { 1, 2, 4, 8, 16, 32, 64, 128 };
	st->m_group = sb_metric_with(sb_metrics_histogram(
	    "pubsub_publish_group_size",
	    "Messages committed together by one group commit (publishes and batches' messages).",
	    NULL, group_buckets, sizeof(group_buckets) / sizeof(group_buckets[0])));
	st->m_expired = sb_metric_with(
	    sb_metrics_counter("pubsub_lease_expiries_total",
	                       "Leases that passed their ack deadline unanswered.", NULL));
	st->m_route_reads = sb_metric_with(sb_metrics_counter(
	    "pubsub_route_reads_total",
	    "Topic routes read from the store by publishes (the others used the cached one).",
	    NULL));
	st->m_route_stale = sb_metric_with(sb_metrics_counter(
	    "pubsub_route_stale_total",
	    "Publishes whose cached route was stale (a subscription created or the topic changed "
	    "since it was read), routed again.",
	    NULL));
	if ((rv = sb_pg_open_opts(cfg->common.database_url, ps_stmts, &ps_pg_opts, &st->rpg)) !=
	    0) {
		sb_log_kv(SB_LOG_ERROR, "pubsub cannot open its reaper connection", "error",
		          sb_strerror(rv), NULL);
		ps_state_free(st);
		return rv;
	}
	if ((rv = ps_pool_open(&st->pool, cfg->common.database_url, (size_t)cfg->db_connections)) !=
	    0) {
		sb_log_kv(SB_LOG_ERROR, "pubsub cannot open its connection pool", "error",
		          sb_strerror(rv), NULL);
		ps_state_free(st);
		return rv;
	}
	if ((rv = ps_committer_start(st)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "pubsub cannot start its committer", "error",
		          sb_strerror(rv), NULL);
		ps_state_free(st);
		return rv;
	}
	if (pthread_create(&st->reaper, NULL, ps_reaper_main, st) != 0) {
		ps_state_free(st);
		return SB_EIO;
	}
	st->reaper_started = true;
	if ((rv = ps_push_start(st)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "pubsub cannot start its push workers", "error",
		          sb_strerror(rv), NULL);
		ps_state_free(st);
		return rv;
	}
	sb_service_set_state(svc, st);
	sb_log_kv(SB_LOG_INFO, "pubsub serving", NULL);
	return 0;
}

void
ps_service_stop(struct sb_service *svc)
{
	struct ps_state *st = sb_service_state(svc);
	if (st == NULL)
		return;
	ps_state_free(st);
	sb_service_set_state(svc, NULL);
}
