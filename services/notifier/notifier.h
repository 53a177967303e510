/* notifier.h: private header of the notifier service.
 *
 * Its one job: consumes domain events from Kafka (sb.messages.v1); turns them into realtime
 * pushes (Redis PUBLISH on conv:<id> / user:<id>, see docs/notifier.md), webhooks (a durable
 * queue in notifier.webhook_deliveries, drained by worker threads) and delivery watermarks
 * (RPC notifier.Delivered); owns the webhook DLQ.
 */
#ifndef SB_NOTIFIER_H
#define SB_NOTIFIER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_kafka.h"
#include "sb_kafka_topics.h"
#include "sb_metrics.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_util_trace.h"
#include "sb_redis.h"
#include "sb_service.h"
#include "sb_webhook.h"

#define NTF_TOPIC      SB_TOPIC_MESSAGES
#define NTF_DLQ_TOPIC  SB_TOPIC_NOTIFIER_WEBHOOKS SB_TOPIC_DLQ_SUFFIX
#define NTF_SEEN_TTL_S 86400

struct notifier_cfg {
	struct sb_common_cfg common;
	char *group;
	char *topic;
	long long session_timeout_ms;
	long long heartbeat_ms;
	long long batch_max;          /* events handled together */
	long long batch_wait_ms;      /* after a batch's first event, wait this long for more */
	long long enqueue_conns;      /* threads (connections) queueing webhook deliveries */
	long long commit_interval_ms; /* auto.commit.interval.ms of the stored offsets */
	long long fetch_wait_max_ms;  /* fetch.wait.max.ms */
	long long fetch_min_bytes;    /* fetch.min.bytes */
	long long fetch_max_kbytes;   /* max.partition.fetch.bytes / 1024 */
	long long queued_max_kbytes;  /* queued.max.messages.kbytes */
	long long wh_max_attempts;
	long long wh_timeout_ms;
	bool wh_allow_private;
	long long wh_workers;
	long long wh_backoff_base_ms;
	long long wh_backoff_max_ms;
};

/* One Redis message to publish: channel and payload ("<seq> <ms>\n<frame>"). */
struct ntf_pub {
	char *channel;
	char *payload;
	size_t len;
};

/* One consumed event, decoded and turned into what the notifier does with it. */
struct ntf_event {
	const char *type; /* short type: "message.created", ...; static */
	char *tenant_id;  /* owned */
	struct ntf_pub *pubs;
	size_t npubs;
	char *webhook_body; /* JSON {type, id, time, data}; owned */
	/* the notifier's span for this event: in the Redis frame's header and the message.created
	 * frame ("traceparent"); "" when the record carried no trace context */
	char traceparent[SB_TRACEPARENT_LEN + 1];
};

/* The process state (one per service). */
struct ntf_state {
	const struct notifier_cfg *cfg;
	/* The configured names with SB_KAFKA_TOPIC_PREFIX in front. */
	char topic[256];
	char dlq_topic[256];
	char group[256];
	atomic_bool stopping;
	struct ntf_pipeline *pipe; /* consume.c: the consumer's threads and batches */
	struct sb_kafka_consumer *kc;
	struct sb_pg *cpg;                  /* the first enqueue thread's connection */
	struct sb_redis *credis;            /* the publish stage's connection */
	struct sb_kafka_producer *producer; /* DLQ */
	pthread_t *workers;
	int nworkers;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* signalled when deliveries were queued, or at stop */
	uint64_t queued;     /* bumped under mu when deliveries were queued */
	atomic_llong lag;
	struct sb_series *m_batch;   /* notifier_batch_events */
	struct sb_series *m_retries; /* notifier_batch_retries_total */
	struct sb_series
	    *m_stage[3]; /* notifier_batch_stage_seconds{stage=decode|enqueue|publish} */
};

/* config.c */
extern const struct sb_cfg_key notifier_config[];
extern const struct sb_service_def notifier_service;
extern const struct sb_rpc_method notifier_methods[];

/* service.c */
/* ntf_open_pg opens a connection with search_path notifier for cfg; *out freed with
 * sb_pg_close. Returns 0 or sb_pg_open's error. */
int ntf_open_pg(const struct notifier_cfg *cfg, struct sb_pg **out);
/* ntf_pg_opts: how every connection of the notifier is opened (RPC workers' included). */
extern const struct sb_pg_opts ntf_pg_opts;
/* ntf_service_start opens the consumer, the DLQ producer and starts the consumer and webhook
 * threads; ntf_service_stop stops and frees them all. */
int ntf_service_start(struct sb_service *svc);
void ntf_service_stop(struct sb_service *svc);
/* ntf_wake_webhooks tells the webhook workers that deliveries were queued. */
void ntf_wake_webhooks(struct ntf_state *st);

/* store.c */
extern const struct sb_pg_stmt ntf_stmts[];

/* frames.c */
/* ntf_event_build decodes payload (len bytes) of CloudEvents type ce_type into *out: the Redis
 * messages of the contract and the webhook body. ce_id and ce_time are copied into the body;
 * traceparent (NULL, "", or a valid value: anything else is left out) goes into the Redis
 * frames.
 * On success the caller frees *out with ntf_event_free. Returns 0, SB_ENOTFOUND for a type the
 * notifier does not handle, SB_EPROTO for a payload that does not decode or lacks required
 * fields, or SB_ENOMEM. On error *out holds nothing. */
int ntf_event_build(const char *ce_type, const char *ce_id, const char *ce_time,
                    const char *traceparent, const void *payload, size_t len,
                    struct ntf_event *out);
/* ntf_event_free frees what ev holds and zeroes it; a zeroed ev is allowed. */
void ntf_event_free(struct ntf_event *ev);
/* ntf_frame_delivered builds the message.delivered publication for recipient user_id of seq in
 * conversation conv, sent by sender, stamped now_ms. On success *out is freed with
 * ntf_pub_free. Returns 0 or SB_ENOMEM. */
int ntf_frame_delivered(const char *conv, const char *user_id, int64_t seq, const char *sender,
                        int64_t now_ms, struct ntf_pub *out);
/* ntf_pub_free frees p's strings and zeroes it. */
void ntf_pub_free(struct ntf_pub *p);
/* ntf_event_type_known tells whether t is a webhook event type ("message.created", ...). */
bool ntf_event_type_known(const char *t);

/* publish.c */
/* One event to publish once: its id, its Redis messages, and what became of it. */
struct ntf_pub_req {
	const char *ce_id;
	const struct ntf_event *ev;
	bool done;      /* out: the script ran for it (it was published, or seen before) */
	bool published; /* out: this call published it (its ce_id was not seen before) */
};
/* ntf_publish_batch publishes each of the n events of reqs whose done is false exactly once per
 * ce_id, in order: for each, in one Lua script run, SET sb:seen:<ce_id> NX EX 86400 and, only
 * if the mark was new, every PUBLISH of the event. The events travel in chunks (one EVAL each)
 * sent in one pipeline: one round trip for the batch. Sets done and published of each event
 * whose chunk ran. Returns 0 when every event is done, else the Redis error (the events left
 * not done are to be retried; a chunk whose reply was lost may have run, and its events are
 * then found seen and not published again). */
int ntf_publish_batch(struct sb_redis *r, struct ntf_pub_req *reqs, size_t n);

/* consume.c */
/* ntf_consumer_start starts the consumer pipeline on st (kc, cpg, credis open): a poll thread
 * takes up to cfg->batch_max events at a time and decodes them; cfg->enqueue_conns threads (the
 * first on cpg, the others on connections of their own) queue the webhook deliveries of
 * consecutive batches, one statement each; a publish thread publishes the batches in poll
 * order, one Redis round trip each, and only then stores their offsets for the next commit.
 * Returns 0, SB_ENOMEM, SB_EIO or ntf_open_pg's error; on error the caller sets st->stopping
 * and calls ntf_consumer_stop. */
int ntf_consumer_start(struct ntf_state *st);
/* ntf_consumer_stop, once st->stopping is set, lets the pipeline finish the batches it holds
 * (a failing one is given up, and nothing after it is stored), joins its threads and frees it.
 * Does nothing when it was not started. */
void ntf_consumer_stop(struct ntf_state *st);

/* delivered.c */
int ntf_rpc_delivered(struct sb_rpc_call *call, const void *req, void *resp);

/* webhooks.c */
int ntf_rpc_create_webhook(struct sb_rpc_call *call, const void *req, void *resp);
int ntf_rpc_list_webhooks(struct sb_rpc_call *call, const void *req, void *resp);
int ntf_rpc_delete_webhook(struct sb_rpc_call *call, const void *req, void *resp);

/* whworker.c */
/* ntf_webhook_worker_main is one webhook delivery thread (arg: struct ntf_state *). */
void *ntf_webhook_worker_main(void *arg);

#endif
