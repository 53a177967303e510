/* config.c: the files service's configuration table and service definition. */
#include "files.h"

const struct sb_cfg_key files_config[] = {
	SB_CFG_COMMON(struct files_cfg, common, 9104, 7104),
	SB_CFG_POSTGRES(struct files_cfg, common),
	SB_CFG_KAFKA(struct files_cfg, common),
	{ NULL },
};

const struct sb_service_def files_service = {
	.name = "files",
	.config = files_config,
	.config_size = sizeof(struct files_cfg),
	.common_offset = offsetof(struct files_cfg, common),
};
