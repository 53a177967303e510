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
#include "sb_pg_outbox.h"
#include "sb_service.h"

#define OUTBOX_SHARDS     64
#define OUTBOX_LOCK_CLASS 0x5B0B /* first key of the shard advisory locks */
#define OUTBOX_APP_NAME   "sb-outbox-relay"
#define OUTBOX_CHANNEL    SB_PG_OUTBOX_CHANNEL
#define OUTBOX_DLQ_SUFFIX SB_TOPIC_DLQ_SUFFIX
#define OUTBOX_ERR_HEADER "sb_error"
#define OUTBOX_ERR_MAX    512
#define OUTBOX_TABLES_MAX 8 /* tables in SB_OUTBOX_TABLES */

struct outbox_cfg {
	struct sb_common_cfg common;
	long long batch_size;
	long long batch_bytes;
	long long poll_ms;
	long long max_attempts;
	long long retention_s;
	bool gc; /* delete relayed rows past retention_s (SB_OUTBOX_GC; sb-gc can do it instead) */
	long long shards;
	long long delivery_timeout_ms;
	long long lease_interval_ms;
	long long pipeline;
	long long linger_ms;
	char *tables; /* SB_OUTBOX_TABLES: "schema.outbox" names, comma-separated */
};

/* The outbox tables the relay reads and its statements over them (store.c). */
struct outbox_tables {
	int n;
	char name[OUTBOX_TABLES_MAX][SB_PG_OUTBOX_TABLE_MAX + 1];
	struct sb_pg_stmt *stmts; /* the session's statement table, ended by a NULL row */
	char **text;              /* the statements' names and SQL, owned */
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
	int table;                  /* index in struct outbox_tables */
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
	struct outbox_tables tables;
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

/* outbox_store_tables_init parses list (SB_OUTBOX_TABLES) into t and builds the statement table
 * of the relay's session over those tables: outbox_select over all of them, and per table k
 * outbox_mark_<k>, outbox_error_<k>, outbox_lag_<k>, outbox_gc_<k>. Returns 0 (then free t with
 * outbox_store_tables_free), SB_EINVAL for a bad list, or SB_ENOMEM. */
int outbox_store_tables_init(struct outbox_tables *t, const char *list);
/* outbox_store_tables_free frees what outbox_store_tables_init made (t may be zeroed). */
void outbox_store_tables_free(struct outbox_tables *t);
/* outbox_store_select fills b with up to limit unrelayed rows of the shards marked in held,
 * shard by shard starting at shard first, each shard's rows table by table in id order (each
 * row's table index in row->table), and no more rows than
 * fit in max_bytes of payload (at least one); b->full tells whether either bound cut the batch.
 * Each row's topic is the row's (a base name such as sb.messages.v1) with prefix
 * (SB_KAFKA_TOPIC_PREFIX, may be empty) in front. On 0 the caller releases b with
 * outbox_store_batch_free (also when empty). */
int outbox_store_select(struct sb_pg *pg, const bool held[OUTBOX_SHARDS], unsigned first, int limit,
                        long long max_bytes, const char *prefix, struct outbox_batch *b);
/* outbox_store_batch_free frees what outbox_store_select allocated; b may be zeroed. */
void outbox_store_batch_free(struct outbox_batch *b);
/* outbox_store_mark_relayed sets relayed_at = now() on the rows of b in state OK, one statement
 * per table of the ntables that has such rows. Returns 0 or the sb_pg error; *marked (may be
 * NULL) gets the number of rows updated. */
int outbox_store_mark_relayed(struct sb_pg *pg, int ntables, const struct outbox_batch *b,
                              long *marked);
/* outbox_store_record_error adds one attempt and last_error to row (in its table); when dead is
 * true the row is also marked relayed (it went to the DLQ). */
int outbox_store_record_error(struct sb_pg *pg, const struct outbox_row *row, const char *error,
                              bool dead);
/* outbox_store_lag_seconds writes the age of the oldest unrelayed row of table number table (0
 * if none) to *out. */
int outbox_store_lag_seconds(struct sb_pg *pg, int table, double *out);
/* outbox_store_gc deletes relayed rows of table number table older than retention_s, at most
 * limit of them; the number deleted goes to *deleted. */
int outbox_store_gc(struct sb_pg *pg, int table, long long retention_s, int limit, long *deleted);
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

/* relay.c, relay_sm.c
 *
 * The relay thread is an explicit state machine. Each state's action (relay.c) does the I/O and
 * reports one event; the pure function outbox_relay_next (relay_sm.c) picks the next state from
 * the state, that event and a snapshot of the relay's inputs (struct outbox_relay_in).
 *
 *   state           action (relay.c)                                    events
 *   START           none (the thread has just started)                  DONE
 *   MAINTAIN        make the session if new (name, LISTEN), rebalance   DONE, DB_ERROR
 *                   the leases, refresh the lag gauge, delete old rows
 *   SELECT          select a batch from the held shards that no batch   ROWS, EMPTY, DB_ERROR,
 *                   in flight has rows of                               SESSION_LOST
 *   PRODUCE         hand the batch to the producer (now in flight)      DONE
 *   FINISH          await the oldest batch's reports, mark it relayed,  DONE (clean), TROUBLE,
 *                   record errors, hand dead rows to the DLQ            DB_ERROR
 *   LINGER          wait wait_ms (the rest of the linger), a NOTIFY     DONE
 *                   or a stop
 *   WAIT            wait wait_ms, a NOTIFY or a stop                    DONE
 *   BACKOFF_DB      sleep wait_ms (the database back-off) or to a stop  DONE
 *   BACKOFF_BROKER  sleep the broker back-off or to a stop              DONE
 *   STOPPED         release the leases; the thread exits                -
 *
 *   from      event         to
 *   START     DONE          choose
 *   MAINTAIN  DONE          work (rules 5-7)
 *   MAINTAIN  DB_ERROR      BACKOFF_DB
 *   SELECT    ROWS          PRODUCE
 *   SELECT    EMPTY         FINISH with a batch in flight, else WAIT min(poll, until maintenance)
 *   SELECT    DB_ERROR      BACKOFF_DB with no batch in flight, else trouble, choose
 *   SELECT    SESSION_LOST  trouble, choose
 *   PRODUCE   DONE          choose
 *   FINISH    DONE          choose
 *   FINISH    TROUBLE       trouble, choose
 *   FINISH    DB_ERROR      trouble, choose
 *   LINGER, WAIT, BACKOFF_DB, BACKOFF_BROKER  DONE  choose
 *   STOPPED   any           STOPPED
 *
 *   choose: the first rule that holds
 *   1. batches in flight, and stopping, trouble, the pipeline full or maintenance due
 *                                          -> FINISH, a drain (only a clean batch finished by
 *                                             a drain resets the broker back-off)
 *   2. stopping                            -> STOPPED
 *   3. trouble                             -> BACKOFF_BROKER, trouble cleared
 *   4. no batch in flight, and the session new or lost, or maintenance due  -> MAINTAIN
 *   work:
 *   5. no shard held                       -> WAIT until maintenance is due
 *   6. lingering (the last select found less than a full batch, linger_ms ago at most)
 *                                          -> FINISH with a batch in flight, else LINGER
 *   7.                                     -> SELECT
 * "trouble" (rows to retry: a broker error, a failed mark or select, a lost session) is the
 * machine's one flag besides its state. */

enum outbox_relay_state {
	OUTBOX_RELAY_START = 0,
	OUTBOX_RELAY_MAINTAIN,
	OUTBOX_RELAY_SELECT,
	OUTBOX_RELAY_PRODUCE,
	OUTBOX_RELAY_FINISH,
	OUTBOX_RELAY_LINGER,
	OUTBOX_RELAY_WAIT,
	OUTBOX_RELAY_BACKOFF_DB,
	OUTBOX_RELAY_BACKOFF_BROKER,
	OUTBOX_RELAY_STOPPED,
};

/* What a state's action reports. */
enum outbox_relay_ev {
	OUTBOX_RELAY_EV_DONE = 0,     /* done (FINISH: the batch was clean) */
	OUTBOX_RELAY_EV_ROWS,         /* SELECT: a batch to produce */
	OUTBOX_RELAY_EV_EMPTY,        /* SELECT: no rows, or stopping */
	OUTBOX_RELAY_EV_TROUBLE,      /* FINISH: rows failed or must be retried */
	OUTBOX_RELAY_EV_DB_ERROR,     /* a statement failed (counted and logged by the action) */
	OUTBOX_RELAY_EV_SESSION_LOST, /* SELECT: it ran on a new session, which holds no lease */
};

struct outbox_relay_event {
	enum outbox_relay_ev kind;
	int64_t backoff_ms; /* DB_ERROR: how long to wait before the database is tried again */
};

/* The relay's inputs, read just before each transition. */
struct outbox_relay_in {
	bool stopping;        /* outbox_relay_stop was called */
	int nbatches;         /* batches in flight */
	int pipeline;         /* SB_OUTBOX_PIPELINE */
	bool session_ok;      /* the session is set up and is the one the leases were taken on */
	bool held;            /* at least one shard is held */
	int64_t until_maint;  /* ms until the next maintenance (<= 0: due) */
	int64_t until_select; /* ms until the linger ends (<= 0: not lingering) */
	int64_t poll_ms;      /* SB_OUTBOX_POLL_MS */
};

/* The machine: its state, its flag and the parameter of the state. */
struct outbox_relay_sm {
	enum outbox_relay_state state;
	bool trouble;    /* something must be retried: back off once no batch is in flight */
	bool drain;      /* FINISH: chosen by rule 1 (not while lingering or idle) */
	int64_t wait_ms; /* LINGER, WAIT, BACKOFF_DB: how long at most */
};

/* outbox_relay_next is the transition function: the machine after cur's action reported ev,
 * given in. Pure (relay_sm.c). */
struct outbox_relay_sm outbox_relay_next(struct outbox_relay_sm cur, struct outbox_relay_event ev,
                                         const struct outbox_relay_in *in);
/* outbox_relay_state_name returns a state's name in lower case ("?" if unknown). */
const char *outbox_relay_state_name(enum outbox_relay_state s);

/* outbox_relay_start starts the relay thread of o (o->cfg, o->producer, o->dlq set). */
int outbox_relay_start(struct outbox *o);
/* outbox_relay_stop asks the relay thread to finish the batches in flight, mark them, release
 * the leases and exit, and joins it. */
void outbox_relay_stop(struct outbox *o);

/* metrics.c */

/* Metric series of the relay, registered once by outbox_metrics_init. */
struct outbox_metrics {
	struct sb_series *relayed, *dlq, *batch_size, *shards_held, *lag, *gc_deleted;
	struct sb_metric *table_lag; /* outbox_table_lag_seconds{table} */
	struct sb_series *err_produce, *err_delivery, *err_db, *err_transient;
};
extern struct outbox_metrics outbox_m;
/* outbox_metrics_init registers the families and caches the series (idempotent). */
void outbox_metrics_init(void);

#endif
