/* ingest.h: private header of the ingest service.
 *
 * Its one job: external telemetry feeds (Lightstreamer TLCP 2.x over WebSocket) → validated,
 * normalized events (proto/events/telemetry.proto) on the Kafka topic telemetry.raw.v1, with
 * backpressure. See docs/ingest.md.
 *
 *   sub.c     the subscriber: one lws client thread, TLCP session create/bind/recovery,
 *             subscription, update decoding (tlcp.c), reconnect with backoff and a breaker
 *   event.c   an update (or a test sample) → struct ing_event: typed fields, event id (UUID v5),
 *             the packed TelemetrySample
 *   pipe.c    the bounded queue with watermarks and the producer thread feeding Kafka
 *   topic.c   telemetry.raw.v1 created and verified through the Admin API
 *   rpc.c     ingest.Test (POST /api/v1/ingest/test)
 *   mapping.c the mapping file: source, adapter set, items, fields and their types
 *   service.c start and stop, readiness, metrics
 * Calls go one way: service → sub/rpc → event/pipe → (Kafka); pipe calls back into sub only
 * through the resume hook it was given.
 */
#ifndef SB_INGEST_H
#define SB_INGEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_kafka.h"
#include "sb_metrics.h"
#include "sb_names.h"
#include "sb_service.h"
#include "sb_util_breaker.h"
#include "tlcp.h"

#define ING_CE_TYPE         "io.switchboard.telemetry.sample.v1"
#define ING_SCHEMA_VER      1
#define ING_MAX_NAME        128 /* bytes of an item or field name */
#define ING_MAX_VALUE       4096
#define ING_ORIGIN_TLCP     "tlcp"
#define ING_ORIGIN_TEST     "test"
#define ING_CLEANUP         "delete"
#define TLCP_MAX_FIELDS_MAP 1024 /* as TLCP_MAX_FIELDS */

struct ingest_cfg {
	struct sb_common_cfg common;
	char *feed_url;     /* ws:// or wss://host[:port]; "" = idle */
	char *mapping_file; /* JSON mapping */
	char *feed_user;
	char *feed_password;
	char *ca_file; /* PEM bundle for wss://; "" = the system's */
	char *topic;   /* base name (prefix applied) */
	long long partitions;
	long long retention_ms;
	long long queue_max;
	long long high_watermark;
	long long low_watermark;
	long long retry_after_ms;
	char *pause_max_frequency; /* LS_requested_max_frequency while paused; "": no reconf */
	long long test_max_samples;
	long long reconnect_base_ms;
	long long reconnect_max_ms;
	long long breaker_threshold;
	long long breaker_open_ms;
	long long keepalive_ms;
	long long stall_ms;
	long long linger_ms;
	long long batch_messages;
	long long max_in_flight;
	char *compression;
	long long message_timeout_ms;
	long long topic_timeout_ms;
};

/* The type of a mapped field. */
enum ing_ftype {
	ING_F_STRING = 0,
	ING_F_DOUBLE = 1,
	ING_F_INT64 = 2,
	ING_F_BOOL = 3,
};

/* How a timestamp field's text becomes Unix ms. */
enum ing_ts_unit {
	ING_TS_NONE = 0,
	ING_TS_MS,         /* Unix ms */
	ING_TS_S,          /* Unix seconds, fractions allowed */
	ING_TS_YEAR_HOURS, /* hours since the start of the current UTC year (ISS Live TimeStamp) */
};

struct ing_field {
	char *name;
	enum ing_ftype type;
};

/* The mapping (mapping.c): one subscription, every item with the same schema. */
struct ing_mapping {
	char *source;      /* event source name, e.g. "isslive" */
	char *adapter_set; /* LS_adapter_set, may be NULL */
	char **items;
	size_t nitems;
	struct ing_field *fields;
	size_t nfields;
	int ts_field; /* index of the server timestamp field, or -1 */
	enum ing_ts_unit ts_unit;
};

/* One normalized event, from its receipt to its delivery report. */
struct ing_event {
	struct ing_event *next; /* queue link */
	struct ing_pipe *pipe;  /* set by ing_pipe_submit */
	char event_id[37];
	char *item;     /* Kafka key; owned */
	uint8_t *value; /* packed TelemetrySample; owned */
	size_t vlen;
	int64_t recv_mono_ms; /* receipt (monotonic), for receive→ack latency */
	int64_t ingest_ts_ms;
};

/* The process state (one per service). */
struct ing_state {
	const struct ingest_cfg *cfg;
	struct ing_mapping map;
	char topic[256];
	struct sb_kafka_producer *producer;
	struct ing_pipe *pipe;
	struct ing_sub *sub;
	atomic_int topic_ok; /* 1 once created and verified */
	char topic_detail[256];
	pthread_mutex_t topic_mu;
	pthread_t topic_thread;
	bool topic_started;
	atomic_bool stopping;
};

/* config.c */
/* ing_validate_frequency accepts "" or a decimal number of updates per second in
 * [0.001, 1000000] (SB_INGEST_PAUSE_MAX_FREQUENCY). */
int ing_validate_frequency(const char *value, char *err, size_t errlen);
extern const struct sb_cfg_key ingest_config[];
extern const struct sb_service_def ingest_service;
extern const struct sb_rpc_method ingest_methods[];

/* mapping.c */
/* ing_mapping_load reads the JSON mapping file path into *m. On error writes why to err (size
 * n) and returns SB_EINVAL, SB_ENOTFOUND (no file) or SB_ENOMEM; *m then holds nothing. */
int ing_mapping_load(const char *path, struct ing_mapping *m, char *err, size_t n);
/* ing_mapping_parse is ing_mapping_load from text (len bytes). */
int ing_mapping_parse(const char *text, size_t len, struct ing_mapping *m, char *err, size_t n);
/* ing_mapping_free releases what ing_mapping_load filled (m may be zeroed). */
void ing_mapping_free(struct ing_mapping *m);
/* ing_mapping_item returns the index of item in m, or -1. */
int ing_mapping_item(const struct ing_mapping *m, const char *item);
/* ing_mapping_field returns the index of field name in m, or -1. */
int ing_mapping_field(const struct ing_mapping *m, const char *name);

/* event.c */
/* One field value of a sample before typing: NULL text means null. */
struct ing_raw {
	const char *text; /* NULL: null */
	size_t len;
};
/* ing_event_build types the values vals[0..m->nfields) of item per m, computes the event id
 * and packs the TelemetrySample (origin, ingest_ts_ms; server_ts_ms < 0 takes it from the
 * mapping's timestamp field, if any, else none). On success *out is owned by the caller
 * (ing_event_free). Returns 0; SB_EINVAL with the index of the bad field in *bad_field (may be
 * NULL) and why in err (size n) when a value does not parse as its type; SB_ENOMEM. */
int ing_event_build(const struct ing_mapping *m, const char *item, const struct ing_raw *vals,
                    int64_t server_ts_ms, const char *origin, int64_t ingest_ts_ms,
                    struct ing_event **out, int *bad_field, char *err, size_t n);
/* ing_event_free frees e (NULL allowed). */
void ing_event_free(struct ing_event *e);
/* ing_uuid_v5 writes the name-based (SHA-1, version 5) UUID of name[0..len) in namespace ns
 * (16 bytes) as 36 lowercase characters plus NUL to out. */
void ing_uuid_v5(const uint8_t ns[16], const void *name, size_t len, char out[37]);
/* ing_ts_parse converts text to Unix ms per unit (now_ms gives the current year for
 * ING_TS_YEAR_HOURS). Returns 0 or SB_EINVAL. */
int ing_ts_parse(const char *text, enum ing_ts_unit unit, int64_t now_ms, int64_t *out);

/* pipe.c */
struct ing_pipe_opts {
	const char *topic;
	const char *source;
	long long capacity;        /* events the test endpoint may fill up to */
	long long high, low;       /* watermarks of depth (queued + awaiting a delivery report) */
	void (*on_resume)(void *); /* called (any thread) when depth falls to the low watermark */
	void *resume_arg;
	/* makes a producer like the first one, to replace it after a fatal error (may be NULL:
	 * then samples wait); returns 0 or an sb_err */
	int (*new_producer)(void *arg, struct sb_kafka_producer **out);
	void *producer_arg;
};
/* ing_pipe_start starts the producer thread over producer p (owned by the caller, who frees
 * ing_pipe_producer(pp) after ing_pipe_stop: p, or the producer that replaced it).
 * Returns 0 or SB_ENOMEM/SB_EIO. */
int ing_pipe_start(struct sb_kafka_producer *p, const struct ing_pipe_opts *o,
                   struct ing_pipe **out);
/* ing_pipe_submit queues evs[0..n) in order (ownership moves to the pipe on success). force:
 * the subscriber's path, accepted whatever the depth (it pauses itself at the high
 * watermark); otherwise (the test endpoint) refused with SB_EBUSY while paused or when the
 * events would take the depth past capacity. SB_ECLOSED after stop began. */
int ing_pipe_submit(struct ing_pipe *pp, struct ing_event **evs, size_t n, bool force);
/* ing_pipe_paused tells whether the depth has reached the high watermark and not yet fallen
 * back to the low one. */
bool ing_pipe_paused(struct ing_pipe *pp);
/* ing_pipe_depth returns the events queued or awaiting their delivery report. */
long long ing_pipe_depth(struct ing_pipe *pp);
/* ing_pipe_stop stops taking events, hands everything queued to the producer and flushes for
 * up to grace_ms, then stops the thread. Returns the events not delivered by then. The caller
 * then frees the producer (which reports what is left through the pipe) and ing_pipe_free. */
long long ing_pipe_stop(struct ing_pipe *pp, int grace_ms);
/* ing_pipe_producer returns the producer the pipe uses now (the one given to ing_pipe_start,
 * or its replacement after a fatal error); the caller frees it after ing_pipe_stop. */
struct sb_kafka_producer *ing_pipe_producer(struct ing_pipe *pp);
/* ing_pipe_free frees pp after ing_pipe_stop and the producer's end (NULL allowed). */
void ing_pipe_free(struct ing_pipe *pp);

/* topic.c */
/* ing_topic_ensure creates the topic if missing (partitions, replication, retention.ms,
 * cleanup.policy=delete) and verifies through the Admin API (metadata and DescribeConfigs) that
 * it has them. Returns 0; SB_EPROTO when the topic exists with other settings; SB_EUNAVAIL,
 * SB_ETIMEDOUT or SB_EIO; why in err (size n). */
int ing_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                     long long retention_ms, int timeout_ms, char *err, size_t n);

/* sub.c */
struct ing_sub_opts {
	const struct ingest_cfg *cfg;
	const struct ing_mapping *map;
	struct ing_pipe *pipe;
};
/* ing_sub_start starts the subscriber thread (only when cfg->feed_url is set); it connects to
 * the feed only after ing_sub_go. */
int ing_sub_start(const struct ing_sub_opts *o, struct ing_sub **out);
/* ing_sub_go lets the subscriber connect (called once the topic is verified; s may be NULL). */
void ing_sub_go(struct ing_sub *s);
/* ing_sub_resume wakes the subscriber after the pipe fell below its low watermark (any
 * thread). */
void ing_sub_resume(void *sub);
/* ing_sub_check is the readiness check: 0 when a session is live (streaming or paused by
 * backpressure). */
int ing_sub_check(void *sub, char *detail, size_t n);
/* ing_sub_stop stops the thread and frees s (NULL allowed). */
void ing_sub_stop(struct ing_sub *s);

/* service.c */
int ing_service_start(struct sb_service *svc);
void ing_service_stop(struct sb_service *svc);

/* rpc.c */
int ing_rpc_test(struct sb_rpc_call *call, const void *req, void *resp);

#endif
