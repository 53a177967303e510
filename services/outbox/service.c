/* service.c: the start and stop hooks of sb-outbox. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"

/* outbox_free releases what outbox_service_start made (after the relay thread is joined). */
static void
outbox_free(struct outbox *o)
{
	if (o == NULL)
		return;
	if (o->producer != NULL && sb_kafka_flush(o->producer, 5000) != 0)
		sb_log_kv(SB_LOG_WARN, "kafka flush timed out at shutdown", NULL);
	sb_kafka_producer_free(o->producer);
	outbox_dlq_free(o->dlq);
	sb_pg_close(o->pg);
	outbox_store_tables_free(&o->tables);
	if (o->wake_fd >= 0)
		close(o->wake_fd);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

int
outbox_service_start(struct sb_service *svc)
{
	const struct outbox_cfg *cfg = sb_service_config(svc);
	char tmo[24];
	struct outbox *o;
	int ret;

	if (cfg->shards != OUTBOX_SHARDS) {
		sb_log_kv(SB_LOG_ERROR, "SB_OUTBOX_SHARDS must be 64 (the table's shard column)",
		          NULL);
		return SB_EINVAL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return SB_ENOMEM;
	o->cfg = cfg;
	o->wake_fd = -1;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	outbox_metrics_init();
	/* Create the topics the relay writes, with the partitions, replication and retention of
	 * the configuration (docs/kafka.md); existing topics are left as they are. A failure is
	 * not fatal: rows wait, and producing retries, until the topics exist. */
	static const char *const topics[] = { SB_TOPIC_MESSAGES,
		                              SB_TOPIC_MESSAGES SB_TOPIC_DLQ_SUFFIX,
		                              SB_TOPIC_FILE_MERGE,
		                              SB_TOPIC_FILE_MERGE SB_TOPIC_DLQ_SUFFIX,
		                              SB_TOPIC_FILES,
		                              SB_TOPIC_FILES SB_TOPIC_DLQ_SUFFIX,
		                              NULL };
	char terr[256] = "";
	if (sb_kafka_platform_topics(&cfg->common, topics, 10000, terr, sizeof(terr)) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot make sure the Kafka topics exist", "error", terr,
		          NULL);
	snprintf(tmo, sizeof(tmo), "%lld", cfg->delivery_timeout_ms);
	/* linger.ms 0: the relay hands a whole batch over at once, so waiting for more adds
	 * nothing; with linger 1-5 ms, half the batches waited about 50 ms for their acks on
	 * devbus (measured with bench/relay_bench). */
	const char *const conf[] = { "message.timeout.ms",
		                     tmo,
		                     "reconnect.backoff.max.ms",
		                     "1000",
		                     "linger.ms",
		                     "0",
		                     "socket.nagle.disable",
		                     "true",
		                     NULL };
	if ((ret = sb_kafka_producer_new(cfg->common.kafka_brokers, conf, &o->producer)) != 0)
		goto fail;
	char mmb[32];
	size_t mmbn = sizeof(mmb);
	if (rd_kafka_conf_get(rd_kafka_conf(sb_kafka_producer_handle(o->producer)),
	                      "message.max.bytes", mmb, &mmbn) == RD_KAFKA_CONF_OK)
		o->max_msg_bytes = atoll(mmb);
	if ((ret = outbox_dlq_new(cfg->common.kafka_brokers, (int)cfg->delivery_timeout_ms,
	                          &o->dlq)) != 0)
		goto fail;
	/* Custom plans: the outbox is a churning table whose size a cached generic plan does not
	 * follow (a sequential scan chosen while it was empty marked each batch in 25 ms). */
	const struct sb_pg_opts pgo = { .options = "-c plan_cache_mode=force_custom_plan" };
	if ((ret = outbox_store_tables_init(&o->tables, cfg->tables)) != 0)
		goto fail;
	if ((ret = sb_pg_open_opts(cfg->common.database_url, o->tables.stmts, &pgo, &o->pg)) != 0)
		goto fail;
	for (int k = 0; k < o->tables.n; k++) {
		/* Not fatal: the database may be down, or a service may not have migrated yet. */
		int cret = sb_pg_outbox_check(o->pg, o->tables.name[k]);
		if (cret != 0)
			sb_log_kv(SB_LOG_WARN, "outbox table missing or not of the contract",
			          "table", o->tables.name[k], "error", sb_strerror(cret), NULL);
	}
	if ((o->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		ret = SB_EIO;
		goto fail;
	}
	if ((ret = outbox_relay_start(o)) != 0)
		goto fail;
	sb_service_set_state(svc, o);
	return 0;
fail:
	sb_log_kv(SB_LOG_ERROR, "outbox start failed", "error", sb_strerror(ret), NULL);
	outbox_free(o);
	return ret;
}

void
outbox_service_stop(struct sb_service *svc)
{
	struct outbox *o = sb_service_state(svc);

	if (o == NULL)
		return;
	outbox_relay_stop(o);
	outbox_free(o);
	sb_service_set_state(svc, NULL);
}
