/* config.c: the outbox service's configuration table and service definition. */
#include "outbox.h"

#include <stdio.h>

#include "sb_pg_outbox.h"

/* outbox_config_tables checks SB_OUTBOX_TABLES. */
static int
outbox_config_tables(const char *v, char *err, size_t errlen)
{
	char t[OUTBOX_TABLES_MAX][SB_PG_OUTBOX_TABLE_MAX + 1];
	if (sb_pg_outbox_table_list(v, t, OUTBOX_TABLES_MAX) > 0)
		return 0;
	snprintf(err, errlen,
	         "must be 1 to %d distinct schema.table names (lower case), comma-separated",
	         OUTBOX_TABLES_MAX);
	return -1;
}

const struct sb_cfg_key outbox_config[] = {
	SB_CFG_COMMON(struct outbox_cfg, common, 9103, 7103),
	SB_CFG_POSTGRES(struct outbox_cfg, common),
	SB_CFG_KAFKA(struct outbox_cfg, common),
	SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_BATCH_SIZE", batch_size, "2000", 1, 10000,
	               "Most rows produced per batch before waiting for their delivery reports."),
	SB_CFG_INT_ROW(
	    struct outbox_cfg, "SB_OUTBOX_BATCH_BYTES", batch_bytes, "4194304", 65536, 1073741824,
	    "Most payload bytes per batch (a larger single row still goes alone). Bounds the "
	    "relay's memory: SB_OUTBOX_PIPELINE batches of this, each held about four times (the "
	    "query's hex text, the decoded copy, the producer's copy)."),
	SB_CFG_INT_ROW(
	    struct outbox_cfg, "SB_OUTBOX_LINGER_MS", linger_ms, "10", 0, 1000,
	    "After a select that found less than a full batch, the next one waits this long, so "
	    "that a steady stream of commits is relayed in fewer, larger batches (0: at once)."),
	SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_POLL_MS", poll_ms, "500", 10, 60000,
	               "Polling interval when no NOTIFY sb_outbox arrives."),
	SB_CFG_INT_ROW(
	    struct outbox_cfg, "SB_OUTBOX_MAX_ATTEMPTS", max_attempts, "5", 1, 1000,
	    "Attempts with a per-message broker error before a row goes to <topic>.dlq."),
	SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_RETENTION_S", retention_s, "604800", 0,
	               315360000, "Relayed rows older than this many seconds are deleted."),
	SB_CFG_BOOL_ROW(struct outbox_cfg, "SB_OUTBOX_GC", gc, "true",
	                "The relay deletes relayed rows past SB_OUTBOX_RETENTION_S itself; false "
	                "where sb-gc does it (SB_GC_OUTBOX, docs/gc.md)."),
	SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_SHARDS", shards, "64", 64, 64,
	               "Shards of messages.outbox (fixed by the table's generated column: 64)."),
	SB_CFG_INT_ROW(
	    struct outbox_cfg, "SB_OUTBOX_DELIVERY_TIMEOUT_MS", delivery_timeout_ms, "30000", 1000,
	    900000,
	    "librdkafka message.timeout.ms: a batch not acknowledged by then is produced again."),
	SB_CFG_INT_ROW(struct outbox_cfg, "SB_OUTBOX_LEASE_INTERVAL_MS", lease_interval_ms, "1000",
	               100, 60000,
	               "How often shard leases are rebalanced and the lag metric refreshed."),
	SB_CFG_INT_ROW(
	    struct outbox_cfg, "SB_OUTBOX_PIPELINE", pipeline, "4", 1, OUTBOX_PIPELINE_MAX,
	    "Batches in flight at once, each on shards the others do not have (1: strictly one)."),
	SB_CFG_STR_ROW(struct outbox_cfg, "SB_OUTBOX_TABLES", tables, "messages.outbox",
	               outbox_config_tables,
	               "Outbox tables relayed (schema.table, comma-separated), each with the "
	               "columns of services/common/sb_pg_outbox.sql, e.g. "
	               "messages.outbox,files.outbox. While one of them is missing the relay "
	               "relays nothing and retries with back-off."),
	{ NULL },
};

const struct sb_service_def outbox_service = {
	.name = "outbox",
	.config = outbox_config,
	.config_size = sizeof(struct outbox_cfg),
	.common_offset = offsetof(struct outbox_cfg, common),
	.start = outbox_service_start,
	.stop = outbox_service_stop,
};
