/* config.c: the gc service's configuration table and service definition. */
#include "gc.h"

const struct sb_cfg_key gc_config[] = {
	SB_CFG_COMMON(struct gc_cfg, common, 9108, 7108),
	SB_CFG_POSTGRES(struct gc_cfg, common),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_INTERVAL_MS", interval_ms, "60000", 50, 86400000,
	               "Time between two cleanup rounds of the leader."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_LEASE_RETRY_MS", lease_retry_ms, "2000", 50, 60000,
	               "How often a replica without the lease tries to take it (the takeover time "
	               "after a leader dies)."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_CLOCK_OFFSET_S", clock_offset_s, "0", -315360000,
	               315360000,
	               "Seconds added to the database's clock when tasks decide what is old "
	               "(tests; 0 in production)."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_BATCH", batch, "1000", 1, 100000,
	               "Rows one DELETE removes at most; a task repeats while batches are full."),
	SB_CFG_BOOL_ROW(struct gc_cfg, "SB_GC_TOKENS", tokens, "true",
	                "Delete refresh tokens expired or revoked longer than SB_GC_TOKEN_GRACE_S "
	                "ago (auth.refresh_tokens)."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_TOKEN_GRACE_S", token_grace_s, "604800", 0, 315360000,
	               "How long an expired or revoked refresh token is kept (audit, reuse "
	               "reports)."),
	SB_CFG_BOOL_ROW(struct gc_cfg, "SB_GC_OUTBOX", outbox, "true",
	                "Delete outbox rows relayed longer than SB_GC_OUTBOX_RETENTION_S ago "
	                "(messages.outbox and files.outbox; see SB_OUTBOX_GC)."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_OUTBOX_RETENTION_S", outbox_retention_s, "604800", 0,
	               315360000, "How long a relayed outbox row is kept."),
	SB_CFG_UPSTREAM(struct gc_cfg, files_url, FILES, 7104),
	SB_CFG_BOOL_ROW(struct gc_cfg, "SB_GC_UPLOADS", uploads, "true",
	                "Ask files to clean uploads abandoned longer than SB_GC_UPLOAD_ABANDON_S, "
	                "expired tus uploads and the bytes of terminated ones (files.Expire)."),
	SB_CFG_INT_ROW(struct gc_cfg, "SB_GC_UPLOAD_ABANDON_S", upload_abandon_s, "86400", 60,
	               315360000,
	               "An unfinished upload untouched this long is abandoned: its parts and rows "
	               "go and it becomes FAILED."),
	SB_CFG_BOOL_ROW(struct gc_cfg, "SB_GC_ONCE", once, "false",
	                "Run one round and exit 0 (a Kubernetes CronJob): the round runs if the "
	                "lease is free, and is skipped when another replica holds it."),
	{ NULL },
};

/* files cleans its own storage when asked (files.Expire); gc is ready without it. */
static const struct sb_service_upstream gc_upstreams[] = {
	{ "files", offsetof(struct gc_cfg, files_url), false },
	{ NULL, 0, false },
};

const struct sb_service_def gc_service = {
	.name = "gc",
	.config = gc_config,
	.config_size = sizeof(struct gc_cfg),
	.common_offset = offsetof(struct gc_cfg, common),
	.start = gc_service_start,
	.stop = gc_service_stop,
	.upstreams = gc_upstreams,
};
