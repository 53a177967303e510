/* outbox.h: private header of the outbox service.
 *
 * Its one job: Relays committed outbox rows to Kafka, in order per aggregate, at least once.
 *
 * One relay thread per process owns one PostgreSQL session (struct sb_pg). On that session it
 * LISTENs on sb_outbox, holds session advisory locks on its share of the 64 shards (lease.c),
 * selects the unrelayed rows of those shards in id order (store.c), produces them with the
 * idempotent producer, waits for every delivery report, then marks them relayed (relay.c).
 * Rows the broker keeps rejecting go to "<topic>.dlq" (dlq.c). Losing the session loses the
 * leases with it, so another replica takes the shards over. */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_kafka.h"
#include "sb_kafka_topics.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_service.h"

#define OUTBOX_SHARDS     64
#define OUTBOX_LOCK_CLASS 0x5B0B /* first key of the shard advisory locks */
#define OUTBOX_APP_NAME   "sb-outbox-relay"
#define OUTBOX_CHANNEL    "sb_outbox"
#define OUTBOX_DLQ_SUFFIX SB_TOPIC_DLQ_SUFFIX
#define OUTBOX_ERR_HEADER "sb_error"
#define OUTBOX_ERR_MAX    512

struct outbox_cfg {
	struct sb_common_cfg common;
	long long batch_size;
	long long batch_bytes;
	long long poll_ms;
	long long max_attempts;
	long long retention_s;
	long long shards;
	long long delivery_timeout_ms;
	long long lease_interval_ms;
	long long pipeline;
	long long linger_ms;
};

/* One outbox row being relayed. Strings point into the PGresult of its batch. */
struct outbox_row {
	int64_t id;
	const char *aggregate_id;
	const char *event_id;
	const char *event_type;
	const char *topic;
	const char *source;
	const char *subject;     /* NULL when SQL NULL */
	const char *traceparent; /* NULL when SQL NULL */
	const char *created_at;  /* RFC 3339 UTC */
	unsigned char *payload;  /* PQunescapeBytea; freed with PQfreemem */
	size_t payload_len;
	int attempts;
	int shard;
	struct outbox *o;           /* owner, for the delivery report */
	struct outbox_batch *batch; /* its batch, for the delivery report */
	/* Outcome, written by the delivery report (poll thread) before the count drops. */
	int state; /* enum outbox_row_state */
	int err;
	char errstr[OUTBOX_ERR_MAX];
};

enum outbox_row_state {
	OUTBOX_ROW_HELD = 0, /* not produced in this batch (its aggregate is blocked) */
	OUTBOX_ROW_INFLIGHT,
	OUTBOX_ROW_OK,
	OUTBOX_ROW_FAILED, /* a per-message error: counts as an attempt */
	OUTBOX_ROW_RETRY,  /* a transient error (cluster unreachable): no attempt counted */
};

/* A batch of rows selected together. */
struct outbox_batch {
	void *res; /* PGresult * of the select */
	struct outbox_row *rows;
	size_t n;
	bool full;                  /* the row limit or the byte budget cut it: more are waiting */
	bool shards[OUTBOX_SHARDS]; /* shards it has rows of */
	int inflight;               /* reports still awaited (under outbox.mu) */
	int64_t started_ms;
};

#define OUTBOX_PIPELINE_MAX 16

/* Process state of the service (one per process). */
struct outbox {
	const struct outbox_cfg *cfg;
	struct sb_kafka_producer *producer;
	struct outbox_dlq *dlq;
	struct sb_pg *pg;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	long long max_msg_bytes; /* the producer's message.max.bytes */
	int wake_fd;             /* eventfd: written to stop the relay thread */
	/* leases (touched only by the relay thread, except held_count) */
	bool held[OUTBOX_SHARDS];
	atomic_int held_count;
	uint64_t pg_reconnects_seen;
	bool session_ready;  /* LISTEN and application_name done on the current session */
	unsigned rotate;     /* where the next lease attempt starts */
	unsigned next_shard; /* where the next batch's select starts */
	/* batches in flight, oldest first; each on shards no other in-flight batch has */
	pthread_mutex_t mu; /* guards every batch's inflight count */
	pthread_cond_t cv;
	struct outbox_batch batches[OUTBOX_PIPELINE_MAX];
	int nbatches;
};

/* config.c */
extern const struct sb_cfg_key outbox_config[];
extern const struct sb_service_def outbox_service;

/* service.c */

/* outbox_service_start is the start hook: opens the producer, the DLQ producer and the
 * relay's session and starts the relay thread. Non-zero aborts the start. */
int outbox_service_start(struct sb_service *svc);
/* outbox_service_stop is the stop hook: stops the relay (which finishes its batch and
 * releases its leases), flushes and frees everything. */
void outbox_service_stop(struct sb_service *svc);

/* store.c */

/* outbox_store_stmts is the prepared-statement table of the relay's session. */
extern const struct sb_pg_stmt outbox_store_stmts[];
/* outbox_store_select fills b with up to limit unrelayed rows of the shards marked in held,
 * shard by shard starting at shard first, each shard's rows in id order, and no more rows than
 * fit in max_bytes of payload (at least one); b->full tells whether either bound cut the batch.
 * Each row's topic is the row's (a base name such as sb.messages.v1) with prefix
 * (SB_KAFKA_TOPIC_PREFIX, may be empty) in front. On 0 the caller releases b with
 * outbox_store_batch_free (also when empty). */
int outbox_store_select(struct sb_pg *pg, const bool held[OUTBOX_SHARDS], unsigned first, int limit,
                        long long max_bytes, const char *prefix, struct outbox_batch *b);
/* outbox_store_batch_free frees what outbox_store_select allocated; b may be zeroed. */
void outbox_store_batch_free(struct outbox_batch *b);
/* outbox_store_mark_relayed sets relayed_at = now() on the rows of b in state OK. Returns 0 or
 * the sb_pg error; *marked (may be NULL) gets the number of rows updated. */
int outbox_store_mark_relayed(struct sb_pg *pg, const struct outbox_batch *b, long *marked);
/* outbox_store_record_error adds one attempt and last_error to row id; when dead is true the
 * row is also marked relayed (it went to the DLQ). */
int outbox_store_record_error(struct sb_pg *pg, int64_t id, const char *error, bool dead);
/* outbox_store_lag_seconds writes the age of the oldest unrelayed row (0 if none) to *out. */
int outbox_store_lag_seconds(struct sb_pg *pg, double *out);
/* outbox_store_gc deletes relayed rows older than retention_s, at most limit of them; the
 * number deleted goes to *deleted. */
int outbox_store_gc(struct sb_pg *pg, long long retention_s, int limit, long *deleted);
/* outbox_store_id_array writes ids as a PostgreSQL array literal "{1,2}" into out (size n).
 * Returns 0 or SB_ERANGE. */
int outbox_store_id_array(const int64_t *ids, size_t nids, char *out, size_t n);

/* lease.c */

/* outbox_lease_share returns how many shards one of live replicas should hold:
 * ceil(shards / live), live < 1 counting as 1. */
int outbox_lease_share(int shards, int live);
/* outbox_lease_session_setup names the session and LISTENs on the channel; call on every new
 * session. */
int outbox_lease_session_setup(struct outbox *o);
/* outbox_lease_lost forgets every lease (the session that held them is gone). */
void outbox_lease_lost(struct outbox *o);
/* outbox_lease_balance counts the live relays, releases leases above the fair share and takes
 * free shards up to it. Returns 0 or the sb_pg error. */
int outbox_lease_balance(struct outbox *o);
/* outbox_lease_release_all releases every lease held (graceful shutdown). */
void outbox_lease_release_all(struct outbox *o);

/* dlq.c */
struct outbox_dlq;
/* outbox_dlq_new creates the dead-letter producer for brokers (idempotent, acks=all). On 0 *out
 * is the caller's (outbox_dlq_free). */
int outbox_dlq_new(const char *brokers, int timeout_ms, struct outbox_dlq **out);
/* outbox_dlq_send produces row to "<row->topic>.dlq" with its CloudEvents headers plus the
 * error in the sb_error header and waits for the delivery report. A payload the broker refuses
 * again is replaced by an empty one (header sb_payload_omitted). Returns 0 once delivered, or
 * an sb_err (the row then stays unrelayed and is retried). */
int outbox_dlq_send(struct outbox_dlq *d, const struct outbox_row *row, const char *error);
/* outbox_dlq_free destroys d (NULL allowed) after flushing for at most a second. */
void outbox_dlq_free(struct outbox_dlq *d);

/* relay.c */

/* outbox_relay_start starts the relay thread of o (o->cfg, o->producer, o->dlq set). */
int outbox_relay_start(struct outbox *o);
/* outbox_relay_stop asks the relay thread to finish the batch in flight, mark it, release the
 * leases and exit, and joins it. */
void outbox_relay_stop(struct outbox *o);

/* metrics.c */

/* Metric series of the relay, registered once by outbox_metrics_init. */
struct outbox_metrics {
	struct sb_series *relayed, *dlq, *batch_size, *shards_held, *lag, *gc_deleted;
	struct sb_series *err_produce, *err_delivery, *err_db, *err_transient;
};
extern struct outbox_metrics outbox_m;
/* outbox_metrics_init registers the families and caches the series (idempotent). */
void outbox_metrics_init(void);

#endif
