/* config.c: the pubsub service's configuration table, RPC table and service definition. */
#include "pubsub.h"

#include "sb_migrate.h"

extern const struct sb_migration pubsub_migrations[];

const struct sb_cfg_key pubsub_config[] = {
	/* Long polls hold a worker each while they wait: more workers than other services. */
	SB_CFG_COMMON_W(struct pubsub_cfg, common, 9110, 7110, 32),
	SB_CFG_POSTGRES(struct pubsub_cfg, common),
	SB_CFG_UPSTREAM(struct pubsub_cfg, registry_url, REGISTRY, 7112),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_BACKOFF_BASE_MS", backoff_base_ms, "2000", 1,
	               3600000,
	               "Delay before the second attempt of a delivery; doubles with every failed "
	               "attempt (2, 4, 8, 16, 32 s by default)."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_BACKOFF_MAX_MS", backoff_max_ms, "32000", 1,
	               86400000, "Ceiling of the delay between attempts of a delivery."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_REAPER_MS", reaper_ms, "200", 10, 60000,
	               "How often expired leases are returned for redelivery (or dead-lettered)."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_RETENTION_PASS_MS", retention_pass_ms, "10000", 50,
	    3600000,
	    "How often messages whose deliveries are all acknowledged and that are older "
	    "than their topic's retention_ms are deleted (with expired idempotency keys)."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_POLL_MS", poll_ms, "100", 5, 10000,
	    "A long-polling consumer looks for deliveries at least this often (publishes "
	    "of this instance wake it at once)."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_FILL_POLL_MS", fill_poll_ms, "25", 1, 10000,
	    "A consume with a min that is not yet met looks again this often (publishes do not "
	    "wake it), and takes what there is at its wait_ms."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_MAX_WAIT_MS", max_wait_ms, "20000", 0, 120000,
	               "Longest wait_ms of a consume (also bounded by the caller's deadline)."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_CONSUMER_TTL_MS", consumer_ttl_ms, "10000", 100, 3600000,
	    "A named consumer of a load-balanced subscription counts as active this long "
	    "after its last consume."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_IDEMPOTENCY_WINDOW_S", idempotency_window_s,
	               "86400", 1, 2592000,
	               "How long an idempotency key names its first message (duplicates within "
	               "the window are not stored again)."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_MAX_PAYLOAD_BYTES", max_payload_bytes,
	               "262144", 16, 1048576, "Largest payload of one message (its JSON text)."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_DEFAULT_ATTEMPTS", default_attempts, "5", 1,
	               1000, "max_delivery_attempts of a topic created without one."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_DEFAULT_DEADLINE_MS", default_deadline_ms,
	               "30000", 100, 3600000, "ack_deadline_ms of a topic created without one."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_DEFAULT_RETENTION_MS", default_retention_ms,
	               "604800000", 1000, 31536000000LL,
	               "retention_ms of a topic created without one: how long acknowledged "
	               "messages are kept."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_PUBLISH_GROUP_MAX", publish_group_max, "14", 1,
	               14,
	               "Most concurrent publish requests (single or batch) committed in one "
	               "transaction (group commit); 1 turns the group commit off (each request "
	               "commits alone, in parallel)."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_PUBLISH_GROUP_ROWS", publish_group_rows, "128",
	               1, 1000,
	               "Most messages one group commit stores (a batch is never split: one with "
	               "more messages is committed alone)."),
	SB_CFG_BOOL_ROW(struct pubsub_cfg, "SB_PUBSUB_CURSOR", cursor, "true",
	                "Subscriptions created while this is on read their topic as a cursor when "
	                "they can (direct or fan_out, no filter, no push endpoint, a topic without "
	                "ordering keys): no delivery row per message (docs/pubsub.md \"Cursor "
	                "subscriptions\"). Off: every new subscription keeps a row per delivery."),
	SB_CFG_BOOL_ROW(struct pubsub_cfg, "SB_PUBSUB_PUSH_ALLOW_PRIVATE", push_allow_private,
	                "false",
	                "Let push endpoints be loopback, private or link-local addresses (tests "
	                "only: they are refused otherwise, at creation and at every attempt)."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_PUSH_WORKERS", push_workers, "4", 1, 64,
	               "Threads POSTing the deliveries of push subscriptions."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_PUSH_PER_SUBSCRIPTION", push_per_sub, "2", 1, 64,
	    "Most pushes of one subscription in flight at once in this instance, so that "
	    "an endpoint that hangs holds at most this many push workers."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_PUSH_TIMEOUT_MS", push_timeout_ms, "10000",
	               100, 120000,
	               "Longest push POST (connect included); a timeout is a failed attempt."),
	SB_CFG_INT_ROW(struct pubsub_cfg, "SB_PUBSUB_PUSH_LEASE_MARGIN_MS", push_lease_margin_ms,
	               "30000", 100, 600000,
	               "A push delivery is leased for SB_PUBSUB_PUSH_TIMEOUT_MS plus this: after a "
	               "crash mid-POST it is pushed again once that lease expires."),
	SB_CFG_INT_ROW(
	    struct pubsub_cfg, "SB_PUBSUB_DB_CONNECTIONS", db_connections, "4", 1, 256,
	    "PostgreSQL connections the RPC workers share (a worker holds one only while "
	    "it runs statements, not while a long poll waits); about twice the "
	    "database's cores."),
	{ NULL },
};

/* Each handler runs through PS_POOLED(handler): the connection it borrowed from the pool (ps_pg)
 * goes back when it returns. */
#define PS_POOLED(FN)                                                                              \
	static int FN##_pooled(struct sb_rpc_call *call, const void *req, void *resp)              \
	{                                                                                          \
		int rv = FN(call, req, resp);                                                      \
		ps_pool_release();                                                                 \
		return rv;                                                                         \
	}

PS_POOLED(ps_rpc_ack)
PS_POOLED(ps_rpc_ack_batch)
PS_POOLED(ps_rpc_consume)
PS_POOLED(ps_rpc_consume_ack)
PS_POOLED(ps_rpc_create_subscription)
PS_POOLED(ps_rpc_create_topic)
PS_POOLED(ps_rpc_delete_topic)
PS_POOLED(ps_rpc_get_message)
PS_POOLED(ps_rpc_get_topic)
PS_POOLED(ps_rpc_list_dead_letters)
PS_POOLED(ps_rpc_list_subscriptions)
PS_POOLED(ps_rpc_list_topics)
PS_POOLED(ps_rpc_modify_deadline)
PS_POOLED(ps_rpc_nack)
PS_POOLED(ps_rpc_publish)
PS_POOLED(ps_rpc_publish_batch)
PS_POOLED(ps_rpc_replay_dead_letter)
PS_POOLED(ps_rpc_topic_metrics)
PS_POOLED(ps_rpc_update_topic)

const struct sb_rpc_method pubsub_methods[] = {
	SB_RPC_ROW(pubsub, CreateTopic, topic, topic, ps_rpc_create_topic_pooled, 0),
	SB_RPC_ROW(pubsub, ListTopics, list_topics_request, list_topics_response,
	           ps_rpc_list_topics_pooled, 0),
	SB_RPC_ROW(pubsub, GetTopic, topic_ref, topic, ps_rpc_get_topic_pooled, 0),
	SB_RPC_ROW(pubsub, UpdateTopic, topic, topic, ps_rpc_update_topic_pooled, 0),
	SB_RPC_ROW(pubsub, DeleteTopic, topic_ref, delete_topic_response,
	           ps_rpc_delete_topic_pooled, 0),
	SB_RPC_ROW(pubsub, TopicMetrics, topic_ref, topic_metrics_response,
	           ps_rpc_topic_metrics_pooled, 0),
	SB_RPC_ROW(pubsub, CreateSubscription, subscription, subscription,
	           ps_rpc_create_subscription_pooled, 0),
	SB_RPC_ROW(pubsub, ListSubscriptions, topic_ref, list_subscriptions_response,
	           ps_rpc_list_subscriptions_pooled, 0),
	SB_RPC_ROW(pubsub, Publish, publish_request, publish_response, ps_rpc_publish_pooled, 0),
	SB_RPC_ROW(pubsub, PublishBatch, publish_batch_request, publish_batch_response,
	           ps_rpc_publish_batch_pooled, 0),
	SB_RPC_ROW(pubsub, Consume, consume_request, consume_response, ps_rpc_consume_pooled, 0),
	SB_RPC_ROW(pubsub, Ack, ack_request, ack_response, ps_rpc_ack_pooled, 0),
	SB_RPC_ROW(pubsub, AckBatch, ack_batch_request, ack_batch_response, ps_rpc_ack_batch_pooled,
	           0),
	SB_RPC_ROW(pubsub, ConsumeAck, consume_ack_request, consume_ack_response,
	           ps_rpc_consume_ack_pooled, 0),
	SB_RPC_ROW(pubsub, Nack, nack_request, ack_response, ps_rpc_nack_pooled, 0),
	SB_RPC_ROW(pubsub, ModifyDeadline, modify_deadline_request, ack_response,
	           ps_rpc_modify_deadline_pooled, 0),
	SB_RPC_ROW(pubsub, GetMessage, get_message_request, message_info, ps_rpc_get_message_pooled,
	           0),
	SB_RPC_ROW(pubsub, ListDeadLetters, list_dead_letters_request, list_dead_letters_response,
	           ps_rpc_list_dead_letters_pooled, 0),
	SB_RPC_ROW(pubsub, ReplayDeadLetter, replay_request, replay_response,
	           ps_rpc_replay_dead_letter_pooled, 0),
	SB_RPC_END,
};

/* The registry validates publishes to topics with a schema subject; pubsub stays ready without
 * it (such publishes then answer 503). */
static const struct sb_service_upstream ps_upstreams[] = {
	{ "registry", offsetof(struct pubsub_cfg, registry_url), false },
	{ NULL, 0, false },
};

const struct sb_service_def pubsub_service = {
	.name = "pubsub",
	.config = pubsub_config,
	.config_size = sizeof(struct pubsub_cfg),
	.common_offset = offsetof(struct pubsub_cfg, common),
	.methods = pubsub_methods,
	.upstreams = ps_upstreams,
	.schema = "pubsub",
	.migrations = pubsub_migrations,
	.start = ps_service_start,
	.stop = ps_service_stop,
};
