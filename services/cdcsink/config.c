/* config.c: the cdcsink service's configuration table, RPC table and service definition. */
#include "cdcsink.h"

#include "cdcsink.pb-c.h"
#include "sb_migrate.h"

extern const struct sb_migration cdcsink_migrations[];

/* cdc_validate_mapping loads and checks the mapping file, so that --check-config and the start
 * name a bad file (or a bad table in it) with the variable. */
static int
cdc_validate_mapping(const char *value, char *err, size_t errlen)
{
	struct cdc_mapping m;
	int rv = cdc_mapping_load(value, &m, err, errlen);
	if (rv == 0)
		cdc_mapping_free(&m);
	return rv;
}

const struct sb_cfg_key cdcsink_config[] = {
	SB_CFG_COMMON_W(struct cdcsink_cfg, common, 9111, 7111, 2),
	SB_CFG_POSTGRES(struct cdcsink_cfg, common),
	SB_CFG_KAFKA(struct cdcsink_cfg, common),
	SB_CFG_STR_ROW(struct cdcsink_cfg, "SB_CDCSINK_MAPPING", mapping, "", cdc_validate_mapping,
	               "Path of the table mapping (JSON, docs/cdcsink.md); empty: the built-in "
	               "example cassandra.shop.users -> shop.users."),
	SB_CFG_STR_ROW(struct cdcsink_cfg, "SB_CDCSINK_GROUP", group, "sb-cdcsink", NULL,
	               "Kafka consumer group shared by the sink's replicas."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_SESSION_TIMEOUT_MS", session_timeout_ms,
	               "45000", 3000, 300000,
	               "Kafka consumer session.timeout.ms (tests use 4000)."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_HEARTBEAT_MS", heartbeat_ms, "3000", 100,
	               60000, "Kafka consumer heartbeat.interval.ms (tests use 1000)."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_BATCH_MAX", batch_max, "2000", 1, 20000,
	               "Most events applied in one PostgreSQL transaction."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_PREPARE_THREADS", prepare_threads, "2", 1,
	               16,
	               "Threads that parse and transform a batch's events while the previous batch "
	               "is applied."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_COMMIT_INTERVAL_MS", commit_interval_ms,
	               "1000", 10, 60000,
	               "How often the offsets of applied events are committed to Kafka."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_RETRY_BASE_MS", retry_base_ms, "1000", 1,
	               600000, "Ceiling of the first retry delay (exponential, full jitter)."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_RETRY_MAX_MS", retry_max_ms, "60000", 1,
	               3600000, "Ceiling of every retry delay."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_MAX_ATTEMPTS", max_attempts, "10", 1, 1000,
	               "Attempts to apply an event that keeps failing before it goes to "
	               "cassandra.cdc.dlq."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_STALE_AFTER_S", stale_after_s, "604800", 1,
	               315360000,
	               "Events whose source time is older than this many seconds go to "
	               "cassandra.cdc.staleness_audit and are skipped (unless backfill)."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_BREAKER_FAILURES", breaker_failures, "5", 1,
	               1000, "Consecutive PostgreSQL failures that open the circuit breaker."),
	SB_CFG_INT_ROW(struct cdcsink_cfg, "SB_CDCSINK_BREAKER_OPEN_MS", breaker_open_ms, "5000", 1,
	               600000, "How long the open breaker refuses PostgreSQL calls."),
	{ NULL },
};

const struct sb_rpc_method cdcsink_methods[] = {
	SB_RPC_ROW(cdcsink, Status, status_request, status_response, cdc_rpc_status, 0),
	SB_RPC_ROW(cdcsink, Pause, table_request, table_status, cdc_rpc_pause, 0),
	SB_RPC_ROW(cdcsink, Resume, table_request, table_status, cdc_rpc_resume, 0),
	SB_RPC_ROW(cdcsink, SetBackfill, backfill_request, table_status, cdc_rpc_set_backfill, 0),
	SB_RPC_ROW(cdcsink, Resubmit, resubmit_request, resubmit_response, cdc_rpc_resubmit, 0),
	SB_RPC_END,
};

const struct sb_pg_opts cdc_pg_opts = { .connect_timeout_s = 2,
	                                .backoff_base_ms = 100,
	                                .backoff_max_ms = 2000,
	                                .options =
	                                    "-c statement_timeout=30000 -c search_path=cdcsink" };

const struct sb_service_def cdcsink_service = {
	.name = "cdcsink",
	.config = cdcsink_config,
	.config_size = sizeof(struct cdcsink_cfg),
	.common_offset = offsetof(struct cdcsink_cfg, common),
	.methods = cdcsink_methods,
	.schema = "cdcsink",
	.migrations = cdcsink_migrations,
	.start = cdc_service_start,
	.stop = cdc_service_stop,
	.worker_conns = SB_WORKER_PG,
	.worker_pg_opts = &cdc_pg_opts,
};
