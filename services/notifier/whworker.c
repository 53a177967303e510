/* whworker.c: webhook delivery threads. Each claims one due row of notifier.webhook_deliveries
 * at a time (FOR UPDATE SKIP LOCKED, with a lease so that a crashed worker's row comes back),
 * POSTs the signed body (one sb_webhook_attempt, services/common), and records the outcome:
 * delivered; retried later with exponential backoff (5xx, 408, 429, timeouts, connection errors);
 * or, after SB_WEBHOOK_MAX_ATTEMPTS or on a permanent failure (other 4xx, refused address), sent to
 * the DLQ topic with the error. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#define NTF_DLQ_TYPE "io.switchboard.notifier.webhook.failed.v1"

enum { C_ID, C_ATTEMPTS, C_EVENT_ID, C_TYPE, C_BODY, C_URL, C_SECRET, C_WH_ID, C_TENANT };

struct ntf_dr_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int err;
};

static void
ntf_dr(int err, const char *errstr, void *opaque)
{
	struct ntf_dr_wait *w = opaque;
	(void)errstr;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->err = err;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
ntf_count(const char *outcome)
{
	struct sb_metric *m = sb_metrics_counter("notifier_webhook_deliveries_total",
	                                         "Webhook POST attempts, by outcome "
	                                         "(delivered, retry, dlq).",
	                                         "outcome");
	sb_series_inc(sb_metric_with(m, outcome));
	if (strcmp(outcome, "dlq") == 0)
		sb_series_inc(
		    sb_metric_with(sb_metrics_counter("notifier_dlq_total",
		                                      "Events sent to a DLQ topic.", "topic"),
		                   NTF_DLQ_TOPIC));
}

/* ntf_dlq_send produces the failed delivery to the DLQ topic and waits for its report. The
 * value is JSON: webhook_id, event_id, event_type, attempts, error and the event body. */
static int
ntf_dlq_send(struct ntf_state *st, PGresult *row, int attempts, const char *error)
{
	json_t *o = json_object(), *ev = json_loads(PQgetvalue(row, 0, C_BODY), 0, NULL);
	char *val = NULL, source[512];
	struct ntf_dr_wait w = { .done = false };
	int rv = SB_ENOMEM;

	if (o == NULL ||
	    json_object_set_new(o, "webhook_id", json_string(PQgetvalue(row, 0, C_WH_ID))) != 0 ||
	    json_object_set_new(o, "event_id", json_string(PQgetvalue(row, 0, C_EVENT_ID))) != 0 ||
	    json_object_set_new(o, "event_type", json_string(PQgetvalue(row, 0, C_TYPE))) != 0 ||
	    json_object_set_new(o, "attempts", json_integer(attempts)) != 0 ||
	    json_object_set_new(o, "error", json_string(error)) != 0 ||
	    json_object_set(o, "event", ev ? ev : json_null()) != 0 ||
	    (val = json_dumps(o, JSON_COMPACT)) == NULL)
		goto done;
	snprintf(source, sizeof(source), "/tenants/%s/webhooks/%s", PQgetvalue(row, 0, C_TENANT),
	         PQgetvalue(row, 0, C_WH_ID));
	struct sb_cloudevent ce = { .id = PQgetvalue(row, 0, C_EVENT_ID),
		                    .source = source,
		                    .type = NTF_DLQ_TYPE,
		                    .content_type = "application/json" };
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	const char *key = PQgetvalue(row, 0, C_WH_ID);
	rv = sb_kafka_produce(st->producer, st->dlq_topic, key, strlen(key), val, strlen(val), &ce,
	                      ntf_dr, &w);
	if (rv == 0) {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		rv = w.err;
		pthread_mutex_unlock(&w.mu);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
done:
	free(val);
	json_decref(ev);
	json_decref(o);
	return rv;
}

/* ntf_deliver_one POSTs the claimed row and records the outcome. */
static void
ntf_deliver_one(struct ntf_state *st, struct sb_pg *pg, struct sb_backoff *b, PGresult *row)
{
	const struct notifier_cfg *cfg = st->cfg;
	const char *id = PQgetvalue(row, 0, C_ID), *body = PQgetvalue(row, 0, C_BODY);
	int attempts = atoi(PQgetvalue(row, 0, C_ATTEMPTS)) + 1;
	char hdrs[768], err[420];
	int rv;

	snprintf(hdrs, sizeof(hdrs), "Switchboard-Event-Id: %s\r\nSwitchboard-Event-Type: %s\r\n",
	         PQgetvalue(row, 0, C_EVENT_ID), PQgetvalue(row, 0, C_TYPE));
	struct sb_webhook_req req = { .url = PQgetvalue(row, 0, C_URL),
		                      .secret = PQgetvalue(row, 0, C_SECRET),
		                      .body = body,
		                      .blen = (size_t)PQgetlength(row, 0, C_BODY),
		                      .headers = hdrs,
		                      .timeout_ms = (int)cfg->wh_timeout_ms,
		                      .allow_private = cfg->wh_allow_private };
	enum sb_webhook_outcome o = sb_webhook_attempt(&req, err, sizeof(err));
	if (o == SB_WEBHOOK_DELIVERED) {
		const char *p[] = { id };
		PGresult *r = NULL;
		if (sb_pg_exec_prepared(pg, "wh_done", 1, p, &r) == 0)
			PQclear(r);
		ntf_count("delivered");
		return;
	}
	bool retryable = o == SB_WEBHOOK_RETRY;
	if (retryable && attempts < cfg->wh_max_attempts) {
		char delay[24];
		b->attempt = (uint32_t)(attempts - 1);
		snprintf(delay, sizeof(delay), "%u", sb_backoff_next(b));
		const char *p[] = { id, delay, err };
		PGresult *r = NULL;
		if (sb_pg_exec_prepared(pg, "wh_retry", 3, p, &r) == 0)
			PQclear(r);
		sb_log_kv(SB_LOG_INFO, "webhook delivery failed; will retry", "delivery_id", id,
		          "error", err, "delay_ms", delay, NULL);
		ntf_count("retry");
		return;
	}
	if ((rv = ntf_dlq_send(st, row, attempts, err)) != 0) {
		sb_log_kv(SB_LOG_WARN, "cannot send a failed webhook delivery to the DLQ; retrying",
		          "delivery_id", id, "error", sb_strerror(rv), NULL);
		return; /* the lease expires and the row is tried again */
	}
	char n[16];
	snprintf(n, sizeof(n), "%d", attempts);
	const char *p[] = { id, n, err };
	PGresult *r = NULL;
	if (sb_pg_exec_prepared(pg, "wh_dead", 3, p, &r) == 0)
		PQclear(r);
	sb_log_kv(SB_LOG_WARN, "webhook delivery sent to the DLQ", "delivery_id", id, "error", err,
	          "topic", st->dlq_topic, NULL);
	ntf_count("dlq");
}

/* ntf_idle waits up to ms for new deliveries or the stop. */
static void
ntf_idle(struct ntf_state *st, uint64_t *seen, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->mu);
	while (st->queued == *seen && !atomic_load(&st->stopping))
		if (pthread_cond_timedwait(&st->wake, &st->mu, &ts) != 0)
			break;
	*seen = st->queued;
	pthread_mutex_unlock(&st->mu);
}

void *
ntf_webhook_worker_main(void *arg)
{
	struct ntf_state *st = arg;
	struct sb_pg *pg = NULL;
	struct sb_backoff b;
	char lease[24];
	uint64_t seen = 0;

	if (ntf_open_pg(st->cfg, &pg) != 0) {
		sb_log(SB_LOG_ERROR, "webhook worker cannot open the database");
		return NULL;
	}
	sb_backoff_init(&b, (uint32_t)st->cfg->wh_backoff_base_ms,
	                (uint32_t)st->cfg->wh_backoff_max_ms);
	/* The lease outlives one attempt (total timeout, plus the DLQ wait) with a margin. */
	snprintf(lease, sizeof(lease), "%lld", st->cfg->wh_timeout_ms / 1000 + 60);
	while (!atomic_load(&st->stopping)) {
		const char *p[] = { lease };
		PGresult *row = NULL;
		if (sb_pg_exec_prepared(pg, "wh_claim", 1, p, &row) != 0 || PQntuples(row) == 0) {
			PQclear(row);
			ntf_idle(st, &seen, 250);
			continue;
		}
		ntf_deliver_one(st, pg, &b, row);
		PQclear(row);
	}
	sb_pg_close(pg);
	return NULL;
}
