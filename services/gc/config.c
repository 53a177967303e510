/* config.c: the gc service's configuration table and service definition. */
#include "gc.h"

const struct sb_cfg_key gc_config[] = {
	SB_CFG_COMMON(struct gc_cfg, common, 9108, 7108),
	SB_CFG_POSTGRES(struct gc_cfg, common),
	{ NULL },
};

const struct sb_service_def gc_service = {
	.name = "gc",
	.config = gc_config,
	.config_size = sizeof(struct gc_cfg),
	.common_offset = offsetof(struct gc_cfg, common),
};
