/* config.c: the notifier service's configuration table and service definition. */
#include "notifier.h"

const struct sb_cfg_key notifier_config[] = {
	SB_CFG_COMMON(struct notifier_cfg, common, 9107, 7107),
	SB_CFG_POSTGRES(struct notifier_cfg, common),
	SB_CFG_REDIS(struct notifier_cfg, common),
	SB_CFG_KAFKA(struct notifier_cfg, common),
	{ NULL },
};

const struct sb_service_def notifier_service = {
	.name = "notifier",
	.config = notifier_config,
	.config_size = sizeof(struct notifier_cfg),
	.common_offset = offsetof(struct notifier_cfg, common),
};
