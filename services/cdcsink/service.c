/* service.c: start and stop hooks of sb-cdcsink (mapping, topics, consumer, producer, apply
 * thread) and the per-table metrics. */
#include "cdcsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_kafka_topics.h"
#include "sb_log.h"

static const char *const cdc_outcome_names[CDC_OUT_COUNT] = {
	"applied", "skipped", "invalid", "quarantined", "stale", "dlq",
};

void
cdc_record_outcome(struct cdc_table *t, enum cdc_outcome o)
{
	pthread_mutex_lock(&t->mu);
	t->outcomes[o]++;
	pthread_mutex_unlock(&t->mu);
	sb_series_inc(t->m_out[o]);
}

static double
cdc_lag_gauge(void *arg)
{
	struct cdc_state *st = arg;
	return (double)atomic_load(&st->lag_s);
}

static int
cdc_pg_check(void *arg, char *detail, size_t n)
{
	struct cdc_state *st = arg;
	/* The apply thread owns st->pg; readiness asks the breaker instead of the connection. */
	enum sb_breaker_state s = sb_breaker_state(&st->breaker);
	if (s == SB_BREAKER_OPEN) {
		snprintf(detail, n, "PostgreSQL circuit breaker open");
		return SB_EUNAVAIL;
	}
	snprintf(detail, n, "breaker %s", sb_breaker_state_name(s));
	return 0;
}

static int
cdc_kafka_check(void *arg, char *detail, size_t n)
{
	struct cdc_state *st = arg;
	return sb_kafka_ping(sb_kafka_producer_handle(st->producer), 2000, detail, n);
}

static void
cdc_state_free(struct cdc_state *st)
{
	sb_kafka_consumer_close(st->kc);
	if (st->producer != NULL)
		sb_kafka_flush(st->producer, 5000);
	sb_kafka_producer_free(st->producer);
	sb_pg_close(st->pg);
	cdc_mapping_free(&st->map);
	sb_breaker_fini(&st->breaker);
	free(st);
}

static void
cdc_metrics(struct cdc_state *st)
{
	static const double lat_buckets[] = {
		0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120
	};
	static const double batch_buckets[] = { 1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000 };
	struct sb_metric *events = sb_metrics_counter(
	    "cdc_events_total", "Change events handled, by target table and outcome.",
	    "table,outcome");
	struct sb_metric *schema = sb_metrics_counter(
	    "schema_changes_detected_total",
	    "Nullable columns added to a target table because events carried them.", "table");
	for (size_t i = 0; i < st->map.n; i++) {
		struct cdc_table *t = &st->map.tables[i];
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
		for (int o = 0; o < CDC_OUT_COUNT; o++)
			t->m_out[o] = sb_metric_with(events, full, cdc_outcome_names[o]);
		t->m_schema_changes = sb_metric_with(schema, full);
	}
	st->m_latency = sb_metric_with(sb_metrics_histogram(
	    "cdc_replication_latency_seconds",
	    "Time from the source's write time to the commit of the event in PostgreSQL.", NULL,
	    lat_buckets, sizeof(lat_buckets) / sizeof(lat_buckets[0])));
	st->m_batch = sb_metric_with(
	    sb_metrics_histogram("cdc_batch_events", "Events per applied batch.", NULL,
	                         batch_buckets, sizeof(batch_buckets) / sizeof(batch_buckets[0])));
	struct sb_metric *stage = sb_metrics_histogram(
	    "cdc_batch_stage_seconds",
	    "Time a batch spent in each stage: poll (waiting for Kafka), prepare (parse, validate, "
	    "transform), side (side records produced and acknowledged), apply (the PostgreSQL "
	    "transaction, retries included); apply_wait (the applier waited for a prepared batch), "
	    "prepare_wait (the preparer waited for a free batch slot).",
	    "stage", NULL, 0);
	static const char *const stages[6] = { "poll",  "prepare",    "side",
		                               "apply", "apply_wait", "prepare_wait" };
	for (int i = 0; i < 6; i++)
		st->m_stage[i] = sb_metric_with(stage, stages[i]);
	st->m_errors = sb_metric_with(sb_metrics_counter(
	    "cdc_errors_total",
	    "Failed attempts: PostgreSQL unavailable, a batch statement failing, a side record not "
	    "delivered.",
	    NULL));
	st->m_retries = sb_metric_with(sb_metrics_counter(
	    "cdc_retries_total", "Retries of batches and of single events.", NULL));
	st->m_validation = sb_metric_with(sb_metrics_counter(
	    "cdc_validation_errors_total",
	    "Events sent to cassandra.cdc.validation_errors (invalid, or of a quarantined table).",
	    NULL));
	st->m_dlq = sb_metric_with(sb_metrics_counter(
	    "cdc_dlq_events_total", "Events sent to cassandra.cdc.dlq after every attempt failed.",
	    NULL));
	sb_metrics_gauge_fn("cdc_lag_seconds",
	                    "Age of the oldest event of the last applied batch (source time to "
	                    "now); 0 when caught up.",
	                    cdc_lag_gauge, st);
}

int
cdc_service_start(struct sb_service *svc)
{
	const struct cdcsink_cfg *cfg = sb_service_config(svc);
	struct cdc_state *st = calloc(1, sizeof(*st));
	char err[300] = "", sto[24], hb[24];
	const char *pre =
	    cfg->common.kafka_topic_prefix != NULL ? cfg->common.kafka_topic_prefix : "";
	char(*topics)[256] = NULL;
	const char **tlist = NULL, **ensure = NULL;
	int rv = SB_ENOMEM;

	if (st == NULL)
		return rv;
	st->cfg = cfg;
	struct sb_breaker_opts bo = { .failure_threshold = (uint32_t)cfg->breaker_failures,
		                      .open_ms = (uint32_t)cfg->breaker_open_ms,
		                      .half_open_trials = 1 };
	if (sb_breaker_init(&st->breaker, &bo) != 0) {
		free(st);
		return SB_EINVAL;
	}
	if ((rv = cdc_mapping_load(cfg->mapping, &st->map, err, sizeof(err))) != 0) {
		sb_log_kv(SB_LOG_ERROR, "bad table mapping", "file", cfg->mapping, "error", err,
		          NULL);
		goto fail;
	}
	snprintf(st->prefix, sizeof(st->prefix), "%s", pre);
	if (sb_kafka_topic_name(pre, cfg->group, st->group, sizeof(st->group)) != 0 ||
	    sb_kafka_topic_name(pre, SB_TOPIC_CDC_DLQ, st->dlq_topic, sizeof(st->dlq_topic)) != 0 ||
	    sb_kafka_topic_name(pre, SB_TOPIC_CDC_VALIDATION, st->val_topic,
	                        sizeof(st->val_topic)) != 0 ||
	    sb_kafka_topic_name(pre, SB_TOPIC_CDC_STALENESS, st->stale_topic,
	                        sizeof(st->stale_topic)) != 0) {
		rv = SB_EINVAL;
		goto fail;
	}
	topics = calloc(st->map.n, sizeof(*topics));
	tlist = calloc(st->map.n + 1, sizeof(*tlist));
	ensure = calloc(st->map.n + 4, sizeof(*ensure));
	rv = SB_ENOMEM;
	if (topics == NULL || tlist == NULL || ensure == NULL)
		goto fail;
	for (size_t i = 0; i < st->map.n; i++) {
		if (sb_kafka_topic_name(pre, st->map.tables[i].topic, topics[i],
		                        sizeof(topics[i])) != 0) {
			rv = SB_EINVAL;
			goto fail;
		}
		tlist[i] = topics[i];
		ensure[i] = st->map.tables[i].topic;
	}
	ensure[st->map.n] = SB_TOPIC_CDC_DLQ;
	ensure[st->map.n + 1] = SB_TOPIC_CDC_VALIDATION;
	ensure[st->map.n + 2] = SB_TOPIC_CDC_STALENESS;
	/* The side topics, and the source topics so that the group can form before the source
	 * writes (an existing topic is left as it is). Not fatal. */
	if (st->map.n + 3 <= 16 &&
	    sb_kafka_platform_topics(&cfg->common, ensure, 10000, err, sizeof(err)) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot make sure the Kafka topics exist", "error", err,
		          NULL);
	snprintf(sto, sizeof(sto), "%lld", cfg->session_timeout_ms);
	snprintf(hb, sizeof(hb), "%lld", cfg->heartbeat_ms);
	const char *const conf[] = { "session.timeout.ms",
		                     sto,
		                     "heartbeat.interval.ms",
		                     hb,
		                     "fetch.wait.max.ms",
		                     "100",
		                     "socket.nagle.disable",
		                     "true",
		                     NULL };
	const struct sb_kafka_consumer_opts kopts = { .commit_interval_ms =
		                                          (int)cfg->commit_interval_ms };
	if ((rv = sb_pg_open_opts(cfg->common.database_url, NULL, &cdc_pg_opts, &st->pg)) != 0 ||
	    (rv = sb_kafka_producer_new(cfg->common.kafka_brokers, NULL, &st->producer)) != 0 ||
	    (rv = sb_kafka_consumer_new_opts(cfg->common.kafka_brokers, st->group, tlist, conf,
	                                     &kopts, &st->kc)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cdcsink cannot start", "error", sb_strerror(rv), NULL);
		goto fail;
	}
	cdc_metrics(st);
	sb_service_add_check(svc, "postgres_breaker", cdc_pg_check, st);
	sb_service_add_check(svc, "kafka_producer", cdc_kafka_check, st);
	if (pthread_create(&st->thread, NULL, cdc_consumer_main, st) != 0) {
		rv = SB_EIO;
		sb_metrics_gauge_fn_remove("cdc_lag_seconds");
		goto fail;
	}
	st->thread_started = true;
	sb_service_set_state(svc, st);
	for (size_t i = 0; i < st->map.n; i++)
		sb_log_kv(SB_LOG_INFO, "cdcsink replicating", "topic", topics[i], "table",
		          st->map.tables[i].name, "schema", st->map.tables[i].schema, "group",
		          st->group, NULL);
	free(topics);
	free(tlist);
	free(ensure);
	return 0;
fail:
	free(topics);
	free(tlist);
	free(ensure);
	cdc_state_free(st);
	return rv;
}

void
cdc_service_stop(struct sb_service *svc)
{
	struct cdc_state *st = sb_service_state(svc);
	if (st == NULL)
		return;
	atomic_store(&st->stopping, true);
	if (st->thread_started)
		pthread_join(st->thread, NULL);
	sb_metrics_gauge_fn_remove("cdc_lag_seconds");
	cdc_state_free(st);
	sb_service_set_state(svc, NULL);
}
