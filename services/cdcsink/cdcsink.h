/* cdcsink.h: private header of the cdcsink service.
 *
 * Its one job: change events of Cassandra tables (Debezium's Cassandra connector, JSON value
 * with schemas disabled) or of relational tables (Debezium's flat envelope) on Kafka topics →
 * PostgreSQL tables kept equal to the source, with a version guard (the source's write time),
 * versioned tombstones, offsets committed only after the PostgreSQL transaction that applied
 * them, and the side topics of sb_names.h for what cannot be applied. See docs/cdcsink.md.
 */
#ifndef SB_CDCSINK_H
#define SB_CDCSINK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sb_buf.h"
#include "sb_kafka.h"
#include "sb_metrics.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_service.h"
#include "sb_util_backoff.h"
#include "sb_util_breaker.h"

#define CDC_NAME_MAX   64 /* PostgreSQL identifiers we create: at most 63 bytes */
#define CDC_REASON_MAX 256

struct cdcsink_cfg {
	struct sb_common_cfg common;
	char *mapping;                /* path of the mapping file, or "" for the built-in example */
	char *group;                  /* consumer group (prefix added) */
	long long session_timeout_ms; /* session.timeout.ms */
	long long heartbeat_ms;       /* heartbeat.interval.ms */
	long long batch_max;          /* events applied in one transaction */
	long long commit_interval_ms; /* how often stored offsets are committed */
	long long retry_base_ms;      /* first retry delay ceiling (1 s) */
	long long retry_max_ms;       /* every retry delay ceiling (60 s) */
	long long max_attempts;       /* attempts before an event goes to the DLQ (10) */
	long long stale_after_s;      /* older than this: audited and skipped (7 days) */
	long long breaker_failures;   /* consecutive failures that open the breaker */
	long long breaker_open_ms;    /* breaker cool-down */
	long long prepare_threads;    /* threads transforming a batch's events */
};

/* --- types.c: Cassandra types and their PostgreSQL forms --- */

enum cdc_kind {
	CDC_T_UUID,
	CDC_T_TIMEUUID,
	CDC_T_TEXT, /* text, varchar */
	CDC_T_ASCII,
	CDC_T_TINYINT,
	CDC_T_SMALLINT,
	CDC_T_INT,
	CDC_T_BIGINT,
	CDC_T_COUNTER,
	CDC_T_VARINT,
	CDC_T_DECIMAL,
	CDC_T_FLOAT,
	CDC_T_DOUBLE,
	CDC_T_BOOLEAN,
	CDC_T_TIMESTAMP,
	CDC_T_DATE,
	CDC_T_TIME,
	CDC_T_DURATION,
	CDC_T_BLOB,
	CDC_T_INET,
	CDC_T_LIST,
	CDC_T_SET,
	CDC_T_MAP,
	CDC_T_TUPLE,
	CDC_T_UDT,
	CDC_T_JSON, /* any JSON value (columns added by schema evolution from objects/arrays) */
};

/* A parsed type: "int", "set<text>", "map<text, frozen<list<int>>>", "tuple<int, text>",
 * "udt" or "frozen<udt_name>"-like names are UDTs only when spelled "udt<name>". */
struct cdc_type {
	enum cdc_kind kind;
	int nsub;
	struct cdc_type *sub[8]; /* list/set: 1, map: 2, tuple: 1..8 */
};

/* cdc_type_parse parses the type text s into a new tree in *out (free with cdc_type_free).
 * Returns 0, SB_EINVAL (unknown or malformed type, reason in err of size n) or SB_ENOMEM. */
int cdc_type_parse(const char *s, struct cdc_type **out, char *err, size_t n);
/* cdc_type_free frees t and its subtypes (NULL is allowed). */
void cdc_type_free(struct cdc_type *t);
/* cdc_type_pg writes the PostgreSQL type of t ("uuid", "text[]", "jsonb", ...) to out (size
 * n). Returns 0 or SB_ERANGE. */
int cdc_type_pg(const struct cdc_type *t, char *out, size_t n);
/* cdc_value_to_pg checks the JSON value v (not null) against t and appends its PostgreSQL text
 * form to out (a parameter in text format). Returns 0; SB_EINVAL when v has the right JSON
 * kind but a bad content (dirty data: bad uuid, out of range, ...); SB_EPROTO when the JSON kind
 * cannot be this type at all (a string for an int, an object for a text: the source's type
 * changed); SB_ENOMEM. On error a reason is in err (size n) and out may hold a partial value. */
int cdc_value_to_pg(const struct cdc_type *t, const json_t *v, struct sb_buf *out, char *err,
                    size_t n);
/* cdc_type_infer returns the type text of a new column judged from its first value v (may be
 * NULL or JSON null: "text"). */
const char *cdc_type_infer(const json_t *v);
/* cdc_ident_ok tells whether s is an identifier we accept for a column or table: [a-z_]
 * followed by [a-z0-9_], at most 63 bytes, and not starting with "_cdc". */
bool cdc_ident_ok(const char *s);

/* --- mapping.c: the table mapping (configuration) --- */

struct cdc_column {
	char *name;
	char *type_text;
	struct cdc_type *type;
	bool key;
	bool pii;      /* masked in logs */
	bool inferred; /* added by schema evolution */
};

enum cdc_format { CDC_FMT_CASSANDRA, CDC_FMT_RELATIONAL };

/* Counters of one table's events by outcome (also exported as metrics). */
enum cdc_outcome {
	CDC_OUT_APPLIED,
	CDC_OUT_SKIPPED, /* older than the row or its tombstone, or a replay */
	CDC_OUT_INVALID,
	CDC_OUT_QUARANTINED,
	CDC_OUT_STALE,
	CDC_OUT_DLQ,
	CDC_OUT_COUNT
};

struct cdc_table {
	char *topic;    /* base topic name (no prefix) */
	char *schema;   /* target schema */
	char *name;     /* target table */
	char *keyspace; /* expected source.keyspace (or relational source.schema), NULL: any */
	char *source_table;
	enum cdc_format format;
	struct cdc_column *cols;
	size_t ncols;
	size_t capcols;
	/* Runtime state, changed by the consumer thread and the admin RPCs under mu. */
	pthread_mutex_t mu;
	bool paused;
	bool backfill;
	bool quarantined;
	char quarantine_reason[CDC_REASON_MAX];
	uint64_t outcomes[CDC_OUT_COUNT];
	int64_t last_version_us; /* newest applied source time */
	int64_t last_commit_ms;
	struct sb_series *m_out[CDC_OUT_COUNT];
	struct sb_series *m_schema_changes;
};

struct cdc_mapping {
	struct cdc_table *tables;
	size_t n;
};

/* cdc_mapping_parse reads the JSON mapping text (docs/cdcsink.md) into *out (free with
 * cdc_mapping_free). Returns 0, SB_EINVAL with a reason in err (size n), or SB_ENOMEM. */
int cdc_mapping_parse(const char *text, struct cdc_mapping *out, char *err, size_t n);
/* cdc_mapping_load reads path ("" for the built-in example of make run) and parses it. */
int cdc_mapping_load(const char *path, struct cdc_mapping *out, char *err, size_t n);
/* cdc_mapping_free frees what m holds and zeroes it. */
void cdc_mapping_free(struct cdc_mapping *m);
/* cdc_mapping_find returns the table of base topic, or NULL. */
struct cdc_table *cdc_mapping_find(struct cdc_mapping *m, const char *topic);
/* cdc_table_col returns the index of column name in t, or -1. */
int cdc_table_col(const struct cdc_table *t, const char *name);
/* cdc_table_add_col adds a nullable column (schema evolution) to t. Returns 0, SB_EINVAL or
 * SB_ENOMEM. */
int cdc_table_add_col(struct cdc_table *t, const char *name, const char *type_text);
/* cdc_table_ddl appends the statements that create t's schema, table (its columns,
 * _cdc_version bigint, _cdc_updated_at) and tombstone table _cdc_tomb_<name> if missing, and
 * add any missing column, to b. Returns 0 or SB_ENOMEM/SB_ERANGE. */
int cdc_table_ddl(const struct cdc_table *t, struct sb_buf *b);
/* cdc_table_tomb writes "<name>" of t's tombstone table (unquoted, no schema) to out. */
int cdc_table_tomb(const struct cdc_table *t, char *out, size_t n);

/* --- event.c: change events --- */

enum cdc_op { CDC_OP_UPSERT, CDC_OP_DELETE };

/* One column value of an event, after transformation. */
enum cdc_val_state { CDC_V_ABSENT = 0, CDC_V_NULL, CDC_V_SET };

struct cdc_new_col {
	char name[CDC_NAME_MAX];
	const char *type_text; /* static, from cdc_type_infer */
};

/* A parsed and transformed event, ready to apply. */
struct cdc_row {
	enum cdc_op op;
	char op_char;       /* c, u, d or r as sent */
	int64_t version_us; /* the source's write time, µs since the epoch */
	size_t ncols;       /* = the table's ncols when transformed */
	enum cdc_val_state *state;
	char **val;        /* owned text values, NULL unless state is CDC_V_SET */
	char keytext[512]; /* key values joined (for grouping and logs) */
	struct cdc_new_col newcols[8];
	int nnew;
};

/* Classes of failure of cdc_event_transform. */
enum cdc_fail {
	CDC_FAIL_NONE = 0,
	CDC_FAIL_INVALID,  /* dirty data: to the validation topic, replication goes on */
	CDC_FAIL_BREAKING, /* the source's schema broke the mapping: quarantine the table */
	CDC_FAIL_NEWCOLS,  /* valid, but has columns the mapping lacks (listed in newcols) */
};

/* cdc_event_transform parses the event value (len bytes) of table t and transforms it into
 * *row (free with cdc_row_free, whatever the result). Returns CDC_FAIL_NONE, or the class of
 * failure with a reason in err (size n); CDC_FAIL_NEWCOLS leaves the new columns in row->newcols:
 * add them to t and call again. Pure: no I/O. */
enum cdc_fail cdc_event_transform(const struct cdc_table *t, const char *value, size_t len,
                                  struct cdc_row *row, char *err, size_t n);
/* cdc_event_tree is cdc_event_transform through a jansson tree of the whole event: every
 * event, every reason. cdc_event_transform tries cdc_event_fast first. */
enum cdc_fail cdc_event_tree(const struct cdc_table *t, const char *value, size_t len,
                             struct cdc_row *row, char *err, size_t n);
/* cdc_event_fast (event_fast.c) reads the common shape of a Cassandra connector event without
 * a jansson tree. Returns true with *row filled exactly as cdc_event_tree would fill it (and
 * return CDC_FAIL_NONE), or false when it is not sure (then *row holds partial work: free it
 * with cdc_row_free). Pure. */
bool cdc_event_fast(const struct cdc_table *t, const char *value, size_t len, struct cdc_row *row);
/* cdc_row_free frees what row holds and zeroes it. */
void cdc_row_free(struct cdc_row *row);
/* cdc_event_masked writes the event value with the values of t's PII columns replaced by
 * "***" (or a truncated copy when it is not JSON) to out, for logs. */
int cdc_event_masked(const struct cdc_table *t, const char *value, size_t len, struct sb_buf *out);

/* --- apply.c: SQL of a batch --- */

/* Where an event goes instead of its table. */
enum cdc_side { CDC_SIDE_NONE = 0, CDC_SIDE_VALIDATION, CDC_SIDE_STALE, CDC_SIDE_IGNORE };

/* One event in a batch. */
struct cdc_item {
	struct cdc_table *table;
	struct cdc_row row;
	int32_t partition;
	int64_t offset;
	const rd_kafka_message_t *msg;
	enum cdc_side side;
	enum cdc_outcome outcome; /* for the quarantined/invalid distinction */
	char reason[CDC_REASON_MAX];
	char sqlstate[6]; /* of the last failure alone */
	int attempts;
	bool replay;        /* at or before the partition's checkpoint: applied already */
	bool failed;        /* failed alone (isolation); retried, then the DLQ */
	bool resolved;      /* applied alone, or sent to the DLQ */
	bool done;          /* cdc_apply_items skips it */
	enum cdc_fail fail; /* result of the first transformation (the reason in reason) */
};

/* cdc_apply_items applies the n items (all of one batch, already transformed, none done) to pg
 * inside the caller's transaction: per table, rounds of one multi-row upsert and one
 * multi-row delete with the version guard. Returns 0 or the sb_pg error of the failing
 * statement; *applied gets the rows written or deleted. */
int cdc_apply_items(struct sb_pg *pg, struct cdc_item **items, size_t n, long *applied);
/* cdc_apply_items_tail is cdc_apply_items with the statements sent in libpq's pipeline mode
 * (one round trip for up to SB_PG_PIPELINE_MAX - 4 of them) and the ntail steps (at most 4;
 * the caller's, e.g. the checkpoint update and COMMIT) sent in the last pipeline, after them.
 * Returns 0 or the error of the first step that failed. */
int cdc_apply_items_tail(struct sb_pg *pg, struct cdc_item **items, size_t n,
                         const struct sb_pg_step *tail, size_t ntail, long *applied);

/* --- consume.c / service.c / rpc.c --- */

struct cdc_state {
	const struct cdcsink_cfg *cfg;
	struct cdc_mapping map;
	char group[256];
	char dlq_topic[256];
	char val_topic[256];
	char stale_topic[256];
	char prefix[128];
	atomic_bool stopping;
	pthread_t thread;
	bool thread_started;
	struct sb_kafka_consumer *kc;
	struct sb_kafka_producer *producer;
	struct sb_pg *pg;
	struct sb_breaker breaker;
	atomic_int_least64_t lag_s;     /* seconds between now and the newest applied source time */
	atomic_int_least64_t dlq_total; /* events sent to the DLQ by this process */
	struct sb_series *m_latency;    /* cdc_replication_latency_seconds */
	struct sb_series *m_errors;     /* cdc_errors_total */
	struct sb_series *m_retries;    /* cdc_retries_total */
	struct sb_series *m_validation; /* cdc_validation_errors_total */
	struct sb_series *m_dlq;        /* cdc_dlq_events_total */
	struct sb_series *m_batch;      /* cdc_batch_events */
	/* cdc_batch_stage_seconds{stage=poll|prepare|side|apply|apply_wait|prepare_wait} */
	struct sb_series *m_stage[6];
};

/* dlq.c: the DLQ processor (`sb-cdcsink dlq`) */
/* cdc_dlq_category returns "transient" for a SQLSTATE that a later attempt may not meet
 * (class 40 transaction rollback, 53 insufficient resources, 55P03 lock not available, 57014
 * statement timeout, 08 connection), else "permanent". */
const char *cdc_dlq_category(const char *sqlstate);
/* cdc_dlq_main runs the DLQ processor with the command line after "dlq" (docs/cdcsink.md):
 * reads cassandra.cdc.dlq in its own consumer group until it is idle, re-enqueues transient
 * records' events to their topics and appends the others to an export file. Returns the
 * process exit status. */
int cdc_dlq_main(int argc, char **argv);

/* config.c */
extern const struct sb_cfg_key cdcsink_config[];
extern const struct sb_service_def cdcsink_service;
extern const struct sb_pg_opts cdc_pg_opts;

/* rpc.c: the admin API (gateway routes of routes_cdc.c, scope cdc:admin). */
int cdc_rpc_status(struct sb_rpc_call *call, const void *req, void *resp);
int cdc_rpc_pause(struct sb_rpc_call *call, const void *req, void *resp);
int cdc_rpc_resume(struct sb_rpc_call *call, const void *req, void *resp);
int cdc_rpc_set_backfill(struct sb_rpc_call *call, const void *req, void *resp);
int cdc_rpc_resubmit(struct sb_rpc_call *call, const void *req, void *resp);

/* service.c */
int cdc_service_start(struct sb_service *svc);
void cdc_service_stop(struct sb_service *svc);
/* cdc_record_outcome counts one event of t with outcome o. */
void cdc_record_outcome(struct cdc_table *t, enum cdc_outcome o);

/* consume.c */
/* cdc_consumer_main is the apply thread (arg: struct cdc_state *). */
void *cdc_consumer_main(void *arg);
/* cdc_prepare_tables creates every mapped table (and the checkpoint table). Returns 0 or the
 * sb_pg error. */
int cdc_prepare_tables(struct cdc_state *st, struct sb_pg *pg);

#endif
