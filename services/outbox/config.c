/* config.c: the outbox service's configuration table and service definition. */
#include "outbox.h"

const struct sb_cfg_key outbox_config[] = {
	SB_CFG_COMMON(struct outbox_cfg, common, 9103, 7103),
	SB_CFG_POSTGRES(struct outbox_cfg, common),
	SB_CFG_KAFKA(struct outbox_cfg, common),
	{ NULL },
};

const struct sb_service_def outbox_service = {
	.name = "outbox",
	.config = outbox_config,
	.config_size = sizeof(struct outbox_cfg),
	.common_offset = offsetof(struct outbox_cfg, common),
};
