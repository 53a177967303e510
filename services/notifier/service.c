/* service.c: start and stop hooks (consumer pipeline, webhook workers, DLQ producer) and the RPC
 * workers' own connections. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"

const struct sb_pg_opts ntf_pg_opts = { .connect_timeout_s = 2,
	                                .backoff_base_ms = 100,
	                                .backoff_max_ms = 2000,
	                                .options =
	                                    "-c statement_timeout=10000 -c search_path=notifier" };

int
ntf_open_pg(const struct notifier_cfg *cfg, struct sb_pg **out)
{
	return sb_pg_open_opts(cfg->common.database_url, ntf_stmts, &ntf_pg_opts, out);
}

void
ntf_wake_webhooks(struct ntf_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->queued++;
	pthread_cond_broadcast(&st->wake);
	pthread_mutex_unlock(&st->mu);
}

static double
ntf_lag_gauge(void *arg)
{
	struct ntf_state *st = arg;
	return (double)atomic_load(&st->lag);
}

static void
ntf_state_free(struct ntf_state *st)
{
	sb_kafka_consumer_close(st->kc);
	if (st->producer != NULL)
		sb_kafka_flush(st->producer, 2000);
	sb_kafka_producer_free(st->producer);
	sb_pg_close(st->cpg);
	sb_redis_close(st->credis);
	pthread_cond_destroy(&st->wake);
	pthread_mutex_destroy(&st->mu);
	free(st->workers);
	free(st);
}

/* ntf_threads_stop stops and joins every thread started so far. */
static void
ntf_threads_stop(struct ntf_state *st)
{
	atomic_store(&st->stopping, true);
	pthread_mutex_lock(&st->mu);
	pthread_cond_broadcast(&st->wake);
	pthread_mutex_unlock(&st->mu);
	ntf_consumer_stop(st);
	for (int i = 0; i < st->nworkers; i++)
		pthread_join(st->workers[i], NULL);
	st->nworkers = 0;
}

int
ntf_service_start(struct sb_service *svc)
{
	const struct notifier_cfg *cfg = sb_service_config(svc);
	struct ntf_state *st = calloc(1, sizeof(*st));
	char sto[24], hb[24], fw[24], fmin[24], fmax[24], qmax[24];
	int rv = SB_ENOMEM;
	static const double batch_buckets[] = { 1,   2,   5,    10,   20,   50,   100,
		                                200, 500, 1000, 2000, 5000, 10000 };

	if (st == NULL)
		return rv;
	st->cfg = cfg;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->wake, NULL);
	snprintf(sto, sizeof(sto), "%lld", cfg->session_timeout_ms);
	snprintf(hb, sizeof(hb), "%lld", cfg->heartbeat_ms);
	snprintf(fw, sizeof(fw), "%lld", cfg->fetch_wait_max_ms);
	snprintf(fmin, sizeof(fmin), "%lld", cfg->fetch_min_bytes);
	snprintf(fmax, sizeof(fmax), "%lld", cfg->fetch_max_kbytes * 1024);
	snprintf(qmax, sizeof(qmax), "%lld", cfg->queued_max_kbytes);
	/* Low latency on a real broker: fetches answered as soon as there is data, no Nagle delay
	 * on the small fetch and commit requests; prefetch bounded by queued.max.messages.kbytes.
	 */
	const char *const conf[] = { "session.timeout.ms",
		                     sto,
		                     "heartbeat.interval.ms",
		                     hb,
		                     "fetch.wait.max.ms",
		                     fw,
		                     "fetch.min.bytes",
		                     fmin,
		                     "max.partition.fetch.bytes",
		                     fmax,
		                     "queued.max.messages.kbytes",
		                     qmax,
		                     "socket.nagle.disable",
		                     "true",
		                     NULL };
	const struct sb_kafka_consumer_opts kopts = { .commit_interval_ms =
		                                          (int)cfg->commit_interval_ms };
	const char *const topics[] = { st->topic, NULL };
	const char *const ensure[] = { cfg->topic, NTF_DLQ_TOPIC, NULL };
	const char *pre = cfg->common.kafka_topic_prefix;
	char terr[256] = "";
	if (sb_kafka_topic_name(pre, cfg->topic, st->topic, sizeof(st->topic)) != 0 ||
	    sb_kafka_topic_name(pre, NTF_DLQ_TOPIC, st->dlq_topic, sizeof(st->dlq_topic)) != 0 ||
	    sb_kafka_topic_name(pre, cfg->group, st->group, sizeof(st->group)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "topic or group name too long with SB_KAFKA_TOPIC_PREFIX",
		          NULL);
		rv = SB_EINVAL;
		goto fail;
	}
	/* The topic it consumes and its DLQ (whoever starts first, outbox or notifier, creates
	 * them with the same settings). Not fatal: the consumer waits for the topic. */
	if (sb_kafka_platform_topics(&cfg->common, ensure, 10000, terr, sizeof(terr)) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot make sure the Kafka topics exist", "error", terr,
		          NULL);
	if ((rv = ntf_open_pg(cfg, &st->cpg)) != 0 ||
	    (rv = sb_redis_open(cfg->common.redis_url, &st->credis)) != 0 ||
	    (rv = sb_kafka_producer_new(cfg->common.kafka_brokers, NULL, &st->producer)) != 0 ||
	    (rv = sb_kafka_consumer_new_opts(cfg->common.kafka_brokers, st->group, topics, conf,
	                                     &kopts, &st->kc)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "notifier cannot start", "error", sb_strerror(rv), NULL);
		goto fail;
	}
	st->m_batch = sb_metric_with(
	    sb_metrics_histogram("notifier_batch_events", "Events per handled batch.", NULL,
	                         batch_buckets, sizeof(batch_buckets) / sizeof(batch_buckets[0])));
	st->m_retries = sb_metric_with(
	    sb_metrics_counter("notifier_batch_retries_total",
	                       "Attempts to handle a batch that failed (database or Redis "
	                       "unavailable) and were retried.",
	                       NULL));
	struct sb_metric *stage = sb_metrics_histogram(
	    "notifier_batch_stage_seconds",
	    "Time a batch spent in each stage of the consumer (decode, enqueue: the webhook "
	    "statement, publish: Redis and the offset store), retries included.",
	    "stage", NULL, 0);
	st->m_stage[0] = sb_metric_with(stage, "decode");
	st->m_stage[1] = sb_metric_with(stage, "enqueue");
	st->m_stage[2] = sb_metric_with(stage, "publish");
	sb_metrics_gauge_fn("notifier_consumer_lag_messages",
	                    "Messages of sb.messages.v1 not yet consumed by this member "
	                    "(high watermark minus position).",
	                    ntf_lag_gauge, st);
	rv = SB_EIO;
	if ((st->workers = calloc((size_t)cfg->wh_workers, sizeof(pthread_t))) == NULL)
		goto fail;
	if ((rv = ntf_consumer_start(st)) != 0)
		goto fail;
	rv = SB_EIO;
	for (; st->nworkers < cfg->wh_workers; st->nworkers++)
		if (pthread_create(&st->workers[st->nworkers], NULL, ntf_webhook_worker_main, st) !=
		    0)
			goto fail;
	sb_service_set_state(svc, st);
	sb_log_kv(SB_LOG_INFO, "notifier consuming", "topic", st->topic, "group", st->group, NULL);
	return 0;
fail:
	ntf_threads_stop(st);
	sb_metrics_gauge_fn_remove("notifier_consumer_lag_messages");
	ntf_state_free(st);
	return rv;
}

void
ntf_service_stop(struct sb_service *svc)
{
	struct ntf_state *st = sb_service_state(svc);
	if (st == NULL)
		return;
	ntf_threads_stop(st);
	sb_metrics_gauge_fn_remove("notifier_consumer_lag_messages");
	ntf_state_free(st);
	sb_service_set_state(svc, NULL);
}
