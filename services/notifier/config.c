/* config.c: the notifier service's configuration table, RPC table and service definition. */
#include "notifier.h"

#include "notifier.pb-c.h"
#include "sb_migrate.h"

extern const struct sb_migration notifier_migrations[];

const struct sb_cfg_key notifier_config[] = {
	SB_CFG_COMMON(struct notifier_cfg, common, 9107, 7107),
	SB_CFG_POSTGRES(struct notifier_cfg, common),
	SB_CFG_REDIS(struct notifier_cfg, common),
	SB_CFG_KAFKA(struct notifier_cfg, common),
	SB_CFG_STR_ROW(struct notifier_cfg, "SB_NOTIFIER_GROUP", group, "sb-notifier", NULL,
	               "Kafka consumer group of the notifier."),
	SB_CFG_STR_ROW(struct notifier_cfg, "SB_NOTIFIER_TOPIC", topic, NTF_TOPIC, NULL,
	               "Topic of the message and conversation events."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_NOTIFIER_SESSION_TIMEOUT_MS", session_timeout_ms,
	               "45000", 3000, 300000,
	               "Kafka consumer session.timeout.ms (tests use 4000)."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_NOTIFIER_HEARTBEAT_MS", heartbeat_ms, "3000", 100,
	               60000, "Kafka consumer heartbeat.interval.ms (tests use 1000)."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_BATCH_MAX", batch_max, "1000", 1, 10000,
	    "Most events handled together: one webhook enqueue statement and one Redis round "
	    "trip per batch, then their offsets are stored for commit."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_BATCH_WAIT_MS", batch_wait_ms, "0", 0, 1000,
	    "After a batch's first event, how long to wait for more (0: take only what is "
	    "already fetched; batches still grow under load)."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_ENQUEUE_CONNS", enqueue_conns, "2", 1, 8,
	    "Database connections (threads) that queue the webhook deliveries of consecutive "
	    "batches in parallel; batches are still published and committed in order."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_COMMIT_INTERVAL_MS", commit_interval_ms, "1000", 10,
	    60000,
	    "How often the offsets of handled events are committed (auto.commit.interval.ms); "
	    "also before partitions are revoked and at shutdown. After a crash, up to this "
	    "much is delivered again (and deduplicated)."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_FETCH_WAIT_MAX_MS", fetch_wait_max_ms, "100", 0,
	    10000,
	    "Kafka consumer fetch.wait.max.ms: longest time the broker holds a fetch that has "
	    "less than SB_NOTIFIER_FETCH_MIN_BYTES."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_FETCH_MIN_BYTES", fetch_min_bytes, "1", 1, 100000000,
	    "Kafka consumer fetch.min.bytes: the broker answers a fetch as soon as this much "
	    "is there (1: at once, lowest latency)."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_FETCH_MAX_KBYTES", fetch_max_kbytes, "1024", 1, 51200,
	    "Kafka consumer max.partition.fetch.bytes, in KiB: most fetched per partition "
	    "per request."),
	SB_CFG_INT_ROW(
	    struct notifier_cfg, "SB_NOTIFIER_QUEUED_MAX_KBYTES", queued_max_kbytes, "65536", 1024,
	    2097151,
	    "Kafka consumer queued.max.messages.kbytes: most prefetched while a batch is "
	    "handled (bounds the consumer's memory)."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_WEBHOOK_MAX_ATTEMPTS", wh_max_attempts, "8", 1, 100,
	               "Webhook POST attempts before the event goes to the DLQ topic."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_WEBHOOK_TIMEOUT_MS", wh_timeout_ms, "5000", 100,
	               120000, "Total time one webhook POST may take (connect included)."),
	SB_CFG_BOOL_ROW(
	    struct notifier_cfg, "SB_WEBHOOK_ALLOW_PRIVATE", wh_allow_private, "false",
	    "Allow webhooks to loopback, private and link-local addresses (tests only)."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_WEBHOOK_WORKERS", wh_workers, "2", 1, 64,
	               "Webhook delivery threads."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_WEBHOOK_BACKOFF_BASE_MS", wh_backoff_base_ms,
	               "1000", 1, 3600000,
	               "Ceiling of the first webhook retry delay (exponential, full jitter)."),
	SB_CFG_INT_ROW(struct notifier_cfg, "SB_WEBHOOK_BACKOFF_MAX_MS", wh_backoff_max_ms,
	               "300000", 1, 86400000, "Ceiling of every webhook retry delay."),
	{ NULL },
};

const struct sb_rpc_method notifier_methods[] = {
	SB_RPC_ROW(notifier, Delivered, delivered_request, delivered_response, ntf_rpc_delivered,
	           0),
	SB_RPC_ROW(notifier, CreateWebhook, create_webhook_request, webhook, ntf_rpc_create_webhook,
	           0),
	SB_RPC_ROW(notifier, ListWebhooks, list_webhooks_request, list_webhooks_response,
	           ntf_rpc_list_webhooks, 0),
	SB_RPC_ROW(notifier, DeleteWebhook, delete_webhook_request, delete_webhook_response,
	           ntf_rpc_delete_webhook, 0),
	SB_RPC_END,
};

const struct sb_service_def notifier_service = {
	.name = "notifier",
	.config = notifier_config,
	.config_size = sizeof(struct notifier_cfg),
	.common_offset = offsetof(struct notifier_cfg, common),
	.methods = notifier_methods,
	.schema = "notifier",
	.migrations = notifier_migrations,
	.start = ntf_service_start,
	.stop = ntf_service_stop,
	.worker_conns = SB_WORKER_PG | SB_WORKER_REDIS,
	.worker_stmts = ntf_stmts,
	.worker_pg_opts = &ntf_pg_opts,
};
