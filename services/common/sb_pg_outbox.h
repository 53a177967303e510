/* sb_pg_outbox.h: the transactional outbox, written once for every service.
 *
 * A service that emits domain events owns an outbox table in its schema, "<schema>.outbox",
 * with the columns of the contract below. It inserts an event row in the same transaction as
 * the change the event describes (sb_pg_outbox_insert), and sb-outbox relays the committed rows
 * of every table listed in SB_OUTBOX_TABLES to Kafka, in id order per shard, at least once
 * (docs/decisions.md, "One outbox relay for every service").
 *
 * The table's DDL is sb_pg_outbox.sql beside this header: a service's migration directory
 * carries it as a symbolic link (services/files/migrations/002_outbox.sql), so the contract is
 * written once. messages.outbox predates it and has the same columns (messages 001, 003).
 *
 * Contract columns: id bigserial, aggregate_type, aggregate_id uuid, shard (generated: 64
 * shards by aggregate), event_id uuid, event_type, topic (a base name, the relay adds
 * SB_KAFKA_TOPIC_PREFIX), source, subject, payload bytea, traceparent, created_at, attempts,
 * last_error, relayed_at; and the partial index (shard, id) WHERE relayed_at IS NULL. */
#ifndef SB_PG_OUTBOX_H
#define SB_PG_OUTBOX_H

#include <stddef.h>

#include "sb_util_uuid.h"

struct sb_pg;

/* The columns a writer fills, in the order of sb_pg_outbox_insert's parameters. */
#define SB_PG_OUTBOX_INSERT_COLUMNS                                                                \
	"aggregate_type, aggregate_id, event_id, event_type, topic, source, subject, payload, "    \
	"traceparent"
/* Number of contract columns (sb_pg_outbox_check counts them). */
#define SB_PG_OUTBOX_NCOLUMNS 15
/* Longest table name accepted ("schema.table"). */
#define SB_PG_OUTBOX_TABLE_MAX 127

/* One event to write. Strings are borrowed; subject and traceparent may be NULL. */
struct sb_pg_outbox_event {
	const char *aggregate_type; /* e.g. "upload" */
	const char *aggregate_id;   /* a UUID: the Kafka key and the shard */
	const char *event_type;     /* CloudEvents type, e.g. "sb.files.FileMergeRequested" */
	const char *topic;          /* base topic name (sb_names.h) */
	const char *source;         /* CloudEvents source */
	const char *subject;
	const char *traceparent;
	const void *payload; /* packed protobuf */
	size_t payload_len;
	char event_id[SB_UUID_STR_LEN + 1]; /* out: the row's event id (UUIDv7, the ce_id) */
};

/* sb_pg_outbox_insert inserts ev into table ("schema.outbox", checked with
 * sb_pg_outbox_table_valid) and NOTIFYs the relay's channel (delivered at commit). Call it
 * inside the caller's transaction (sb_pg_begin), so the row commits with the change it
 * describes, or not at all. Writes the new event id to ev->event_id. Returns 0, SB_EINVAL for a
 * bad table name or a missing field, or the sb_pg error. */
int sb_pg_outbox_insert(struct sb_pg *pg, const char *table, struct sb_pg_outbox_event *ev);

/* sb_pg_outbox_table_valid tells (1/0) whether s names a table as "schema.table", both lower
 * case SQL identifiers ([a-z_][a-z0-9_]*), at most SB_PG_OUTBOX_TABLE_MAX bytes: safe to paste
 * into SQL. */
int sb_pg_outbox_table_valid(const char *s);

/* sb_pg_outbox_table_list splits a comma-separated list ("messages.outbox,files.outbox",
 * blanks allowed around names) into at most max names of out (each SB_PG_OUTBOX_TABLE_MAX + 1
 * bytes). Returns the number of names (>= 1), or SB_EINVAL (an invalid or repeated name, an
 * empty list or more than max). */
int sb_pg_outbox_table_list(const char *list, char (*out)[SB_PG_OUTBOX_TABLE_MAX + 1], int max);

/* sb_pg_outbox_check tells whether table exists with every contract column: 0, SB_ENOTFOUND when
 * it does not (or lacks a column), or the sb_pg error. */
int sb_pg_outbox_check(struct sb_pg *pg, const char *table);

#endif
