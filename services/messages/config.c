/* config.c: the messages service's configuration table and service definition. */
#include "messages.h"

#include <stddef.h>

/* More RPC workers by default than other services: Send holds no worker (it is answered by the
 * committer), but its requests in flight are bounded by the RPC contexts, two per worker, and
 * the other methods wait on the database in their workers. */
const struct sb_cfg_key messages_config[] = {
	SB_CFG_COMMON_W(struct messages_cfg, common, 9102, 7102, 64),
	SB_CFG_POSTGRES(struct messages_cfg, common),
	SB_CFG_INT_ROW(struct messages_cfg, "SB_MESSAGES_BATCH_MAX", batch_max, "256", 1, 4096,
	               "Most sends committed together in one group-commit transaction."),
	SB_CFG_INT_ROW(struct messages_cfg, "SB_MESSAGES_COMMITTERS", committers, "2", 1, 64,
	               "Group-commit lanes: committer threads, each with its own database "
	               "connection; a conversation always uses the same one. Two let one lane's "
	               "statements run while the other's wait (see docs/benchmarks.md)."),
	SB_CFG_INT_ROW(struct messages_cfg, "SB_MESSAGES_COMMIT_DELAY_US", commit_delay_us, "0", 0,
	               100000,
	               "When the previous group commit had several sends, wait this many "
	               "microseconds before the next, so that more sends join it (0: never wait)."),
	SB_CFG_INT_ROW(struct messages_cfg, "SB_MESSAGES_PG_TIMEOUT_MS", pg_timeout_ms, "5000", 100,
	               600000,
	               "statement_timeout of the service's database sessions, in milliseconds."),
	SB_CFG_UPSTREAM(struct messages_cfg, files_url, FILES, 7104),
	{ NULL },
};

/* files is asked about attachments only (a send without any never waits on it), so messages
 * stays ready without it. */
static const struct sb_service_upstream messages_upstreams[] = {
	{ "files", offsetof(struct messages_cfg, files_url), false },
	{ NULL, 0, false },
};

const struct sb_service_def messages_service = {
	.name = "messages",
	.config = messages_config,
	.config_size = sizeof(struct messages_cfg),
	.common_offset = offsetof(struct messages_cfg, common),
	.methods = messages_methods,
	.upstreams = messages_upstreams,
	.schema = "messages",
	.migrations = messages_migrations,
	.start = msg_service_start,
	.stop = msg_service_stop,
	.worker_init = msg_worker_init,
	.worker_fini = msg_worker_fini,
};
