/* config.c: the ingest service's configuration table and service definition. */
#include "ingest.h"

const struct sb_cfg_key ingest_config[] = {
	SB_CFG_COMMON(struct ingest_cfg, common, 9109, 7109),
	{ NULL },
};

const struct sb_service_def ingest_service = {
	.name = "ingest",
	.config = ingest_config,
	.config_size = sizeof(struct ingest_cfg),
	.common_offset = offsetof(struct ingest_cfg, common),
};
