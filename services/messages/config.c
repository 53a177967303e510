/* config.c: the messages service's configuration table and service definition. */
#include "messages.h"

const struct sb_cfg_key messages_config[] = {
	SB_CFG_COMMON(struct messages_cfg, common, 9102, 7102),
	SB_CFG_POSTGRES(struct messages_cfg, common),
	SB_CFG_REDIS(struct messages_cfg, common),
	{ NULL },
};

const struct sb_service_def messages_service = {
	.name = "messages",
	.config = messages_config,
	.config_size = sizeof(struct messages_cfg),
	.common_offset = offsetof(struct messages_cfg, common),
};
