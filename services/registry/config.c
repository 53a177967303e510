/* config.c: the registry's configuration table and service definition. */
#include "registry.h"

const struct sb_cfg_key registry_config[] = {
	SB_CFG_COMMON(struct registry_cfg, common, 9112, 7112),
	SB_CFG_POSTGRES(struct registry_cfg, common),
	{ NULL },
};

const struct sb_service_def registry_service = {
	.name = "registry",
	.config = registry_config,
	.config_size = sizeof(struct registry_cfg),
	.common_offset = offsetof(struct registry_cfg, common),
};
