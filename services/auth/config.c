/* config.c: the auth service's configuration table and service definition. */
#include "auth.h"

const struct sb_cfg_key auth_config[] = {
	SB_CFG_COMMON(struct auth_cfg, common, 9101, 7101),
	SB_CFG_POSTGRES(struct auth_cfg, common),
	SB_CFG_REDIS(struct auth_cfg, common),
	{ NULL },
};

const struct sb_service_def auth_service = {
	.name = "auth",
	.config = auth_config,
	.config_size = sizeof(struct auth_cfg),
	.common_offset = offsetof(struct auth_cfg, common),
};
