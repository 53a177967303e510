/* sb_config.h: declarative configuration tables, read from the environment.
 *
 * A service describes every setting in one table of struct sb_cfg_key rows (variable, type,
 * bounds, default, validator, help) pointing into its config struct by offset. Loading checks
 * every row and reports the first bad value by variable name; the effective configuration can
 * be logged (secrets masked) and rendered as the Markdown reference in README.md. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "sb_buf.h"

enum sb_cfg_type {
	SB_CFG_STR,  /* char *, owned by the config struct (sb_config_free) */
	SB_CFG_INT,  /* long long, within [min, max] */
	SB_CFG_BOOL, /* bool: true/false/1/0/yes/no/on/off */
};

enum {
	SB_CFG_SECRET = 1 << 0,   /* never logged or printed */
	SB_CFG_REQUIRED = 1 << 1, /* no default: must be set */
};

struct sb_cfg_key {
	const char *env; /* environment variable, e.g. "SB_RPC_WORKERS"; NULL ends a table */
	enum sb_cfg_type type;
	size_t offset;   /* offset of the field in the service's config struct */
	const char *def; /* default as text (NULL: empty string / 0 / false) */
	long long min;   /* SB_CFG_INT bounds, inclusive */
	long long max;
	unsigned flags;
	/* Optional extra check of a string value; returns 0 or writes a reason to err. */
	int (*validate)(const char *value, char *err, size_t errlen);
	const char *help; /* one line for README's configuration reference */
};

/* Rows of a service's own settings, in its table after the common ones: the field FIELD of
 * config struct `type`, environment variable ENV, default DEF as text, HELP the line of README's
 * reference. INT: bounds MIN..MAX inclusive. STR: VALIDATE, a validator or NULL. SECRET: a
 * string never logged or printed (masked). BOOL: true/false/1/0/yes/no/on/off. E.g.
 *   SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_POLL_MS", poll_ms, "500", 10, 60000,
 *                  "Polling interval when no NOTIFY sb_outbox arrives."),  */
// clang-format off
#define SB_CFG_INT_ROW(type, ENV, FIELD, DEF, MIN, MAX, HELP)                                      \
	{ ENV, SB_CFG_INT, offsetof(type, FIELD), DEF, MIN, MAX, 0, NULL, HELP }
#define SB_CFG_STR_ROW(type, ENV, FIELD, DEF, VALIDATE, HELP)                                      \
	{ ENV, SB_CFG_STR, offsetof(type, FIELD), DEF, 0, 0, 0, VALIDATE, HELP }
#define SB_CFG_SECRET_ROW(type, ENV, FIELD, DEF, VALIDATE, HELP)                                   \
	{ ENV, SB_CFG_STR, offsetof(type, FIELD), DEF, 0, 0, SB_CFG_SECRET, VALIDATE, HELP }
#define SB_CFG_BOOL_ROW(type, ENV, FIELD, DEF, HELP)                                               \
	{ ENV, SB_CFG_BOOL, offsetof(type, FIELD), DEF, 0, 0, 0, NULL, HELP }
// clang-format on

/* Settings every service has. Each service's config struct embeds one of these. */
struct sb_common_cfg {
	char *log_level;
	char *ops_addr;
	long long ops_port;
	char *rpc_url;
	long long rpc_workers;
	long long shutdown_grace_ms;
	/* Tracing (sb_span.h): the OTLP/HTTP collector ("" = no export) and the share of new
	 * traces sampled. */
	char *otlp_endpoint;
	long long trace_sample_percent;
	/* Dependencies; present in a service's table only through the macros below. */
	char *database_url;
	char *redis_url;
	char *kafka_brokers;
	/* The platform's Kafka topics (SB_CFG_KAFKA): prefix of every name, and what a service
	 * that creates a topic gives it (sb_kafka_platform_topics). */
	char *kafka_topic_prefix;
	long long kafka_partitions;
	long long kafka_replication;
	long long kafka_retention_ms;
	long long kafka_dlq_retention_ms;
};

/* SB_CFG_COMMON(type, member, ops_port, rpc_port) expands to the table rows of the common
 * settings for a config struct `type` embedding struct sb_common_cfg as `member`, with this
 * service's default ports; SB_CFG_COMMON_W also sets the default number of RPC workers. */
// clang-format off
#define SB_CFG_COMMON(type, member, OPS_PORT, RPC_PORT) \
	SB_CFG_COMMON_W(type, member, OPS_PORT, RPC_PORT, 8)
#define SB_CFG_COMMON_W(type, member, OPS_PORT, RPC_PORT, WORKERS) \
	{ "SB_LOG_LEVEL", SB_CFG_STR, offsetof(type, member.log_level), "info", 0, 0, 0, \
	  sb_config_validate_log_level, "Minimum log level: debug, info, warn or error." }, \
	{ "SB_OPS_ADDR", SB_CFG_STR, offsetof(type, member.ops_addr), "127.0.0.1", 0, 0, 0, NULL, \
	  "Address of the ops HTTP server (/healthz, /ready, /metrics)." }, \
	{ "SB_OPS_PORT", SB_CFG_INT, offsetof(type, member.ops_port), #OPS_PORT, 1, 65535, 0, \
	  NULL, "Port of the ops HTTP server." }, \
	{ "SB_RPC_URL", SB_CFG_STR, offsetof(type, member.rpc_url), "tcp://127.0.0.1:" #RPC_PORT, \
	  0, 0, 0, sb_config_validate_nng_url, "nng URL the RPC server listens on." }, \
	{ "SB_RPC_WORKERS", SB_CFG_INT, offsetof(type, member.rpc_workers), #WORKERS, 1, 256, 0, \
	  NULL, "RPC worker threads (concurrent requests in progress)." }, \
	{ "SB_SHUTDOWN_GRACE_MS", SB_CFG_INT, offsetof(type, member.shutdown_grace_ms), "10000", \
	  0, 600000, 0, NULL, "On SIGTERM, how long in-flight work may take to finish." }, \
	{ "SB_OTLP_ENDPOINT", SB_CFG_STR, offsetof(type, member.otlp_endpoint), "", 0, 0, 0, \
	  NULL, "OTLP/HTTP collector for traces, http://host:port (empty: spans are not " \
	  "exported; trace context is still propagated)." }, \
	{ "SB_TRACE_SAMPLE_PERCENT", SB_CFG_INT, offsetof(type, member.trace_sample_percent), \
	  "100", 0, 100, 0, NULL, \
	  "Share of new traces (started here without a sampled parent) that are recorded." }
// clang-format on

/* Rows for the dependencies a service uses; the runtime checks each one present for /ready. */
#define SB_CFG_POSTGRES(type, member)                                                              \
	{                                                                                          \
		"DATABASE_URL", SB_CFG_STR, offsetof(type, member.database_url),                   \
		    "postgresql://postgres@127.0.0.1:5432/switchboard", 0, 0, 0,                   \
		    sb_config_validate_pg_dsn,                                                     \
		    "PostgreSQL connection URL (a password in it is masked in logs)."              \
	}
#define SB_CFG_REDIS(type, member)                                                                 \
	{                                                                                          \
		"REDIS_URL", SB_CFG_STR, offsetof(type, member.redis_url),                         \
		    "redis://127.0.0.1:6379", 0, 0, 0, sb_config_validate_url,                     \
		    "Redis URL: redis://[:password@]host:port[/db]."                               \
	}
// clang-format off
#define SB_CFG_KAFKA(type, member) \
	{ "KAFKA_BROKERS", SB_CFG_STR, offsetof(type, member.kafka_brokers), "127.0.0.1:9092", \
	  0, 0, 0, NULL, "Kafka bootstrap servers, comma-separated host:port." }, \
	{ "SB_KAFKA_TOPIC_PREFIX", SB_CFG_STR, offsetof(type, member.kafka_topic_prefix), "", \
	  0, 0, 0, sb_config_validate_topic_prefix, \
	  "Put in front of every Kafka topic name and consumer group id (letters, digits, " \
	  "'.', '_', '-'), so that several platforms share one cluster; the same in every " \
	  "service." }, \
	{ "SB_KAFKA_PARTITIONS", SB_CFG_INT, offsetof(type, member.kafka_partitions), "6", \
	  1, 10000, 0, NULL, "Partitions of a topic this service creates (docs/kafka.md)." }, \
	{ "SB_KAFKA_REPLICATION_FACTOR", SB_CFG_INT, offsetof(type, member.kafka_replication), \
	  "-1", -1, 32, 0, NULL, \
	  "Replication factor of a topic this service creates; -1: the broker's " \
	  "default.replication.factor." }, \
	{ "SB_KAFKA_RETENTION_MS", SB_CFG_INT, offsetof(type, member.kafka_retention_ms), \
	  "604800000", -1, 9223372036854775807LL, 0, NULL, \
	  "retention.ms of an event topic this service creates (7 days; -1: forever)." }, \
	{ "SB_KAFKA_DLQ_RETENTION_MS", SB_CFG_INT, offsetof(type, member.kafka_dlq_retention_ms), \
	  "2592000000", -1, 9223372036854775807LL, 0, NULL, \
	  "retention.ms of a dead-letter topic this service creates (30 days; -1: forever)." }
// clang-format on
/* An upstream service's RPC URL, e.g. SB_CFG_UPSTREAM(struct cfg, messages_url, MESSAGES, 7102) */
#define SB_CFG_UPSTREAM(type, field, NAME, PORT)                                                   \
	{                                                                                          \
		"SB_" #NAME "_RPC_URL", SB_CFG_STR, offsetof(type, field),                         \
		    "tcp://127.0.0.1:" #PORT, 0, 0, 0, sb_config_validate_nng_url,                 \
		    "nng URL of the " #NAME " service's RPC server."                               \
	}

/* Lookup function for the environment; the default is getenv. Tests pass their own. */
typedef const char *(*sb_cfg_getenv_fn)(const char *name, void *arg);

/* sb_config_load fills cfg from the environment according to tbl (ended by a row with a NULL
 * env). On error returns SB_EINVAL and writes "VARIABLE: reason" to err; fields already set are
 * freed by sb_config_free. getenv_fn may be NULL for getenv. */
int sb_config_load(const struct sb_cfg_key *tbl, void *cfg, sb_cfg_getenv_fn getenv_fn, void *arg,
                   char *err, size_t errlen);
/* sb_config_free frees the strings of cfg set by sb_config_load (secrets wiped first). */
void sb_config_free(const struct sb_cfg_key *tbl, void *cfg);
/* sb_config_log logs the effective configuration at info level, secrets masked. */
void sb_config_log(const struct sb_cfg_key *tbl, const void *cfg);
/* sb_config_markdown appends the reference table rows of tbl (| variable | default | ... |). */
int sb_config_markdown(const struct sb_cfg_key *tbl, struct sb_buf *out);

/* Validators usable in tables. */
int sb_config_validate_log_level(const char *v, char *err, size_t errlen);
int sb_config_validate_nng_url(const char *v, char *err, size_t errlen);
int sb_config_validate_url(const char *v, char *err, size_t errlen);
/* sb_config_validate_pg_dsn accepts what libpq accepts as a connection string in form: a URL
 * (postgresql://..., several host:port allowed) or keyword/value pairs (host=a,b port=p,q
 * target_session_attrs=read-write), values optionally single-quoted. */
int sb_config_validate_pg_dsn(const char *v, char *err, size_t errlen);
int sb_config_validate_topic_prefix(const char *v, char *err, size_t errlen);

#endif
