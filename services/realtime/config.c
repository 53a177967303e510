/* config.c: the realtime service's configuration table and service definition. */
#include "realtime.h"

const struct sb_cfg_key realtime_config[] = {
	SB_CFG_COMMON(struct realtime_cfg, common, 9106, 7106),
	SB_CFG_REDIS(struct realtime_cfg, common),
	SB_CFG_UPSTREAM(struct realtime_cfg, messages_url, MESSAGES, 7102),
	{ NULL },
};

static const struct sb_service_upstream realtime_upstreams[] = {
	{ "messages", offsetof(struct realtime_cfg, messages_url), true },
	{ NULL, 0, false },
};

const struct sb_service_def realtime_service = {
	.name = "realtime",
	.config = realtime_config,
	.config_size = sizeof(struct realtime_cfg),
	.common_offset = offsetof(struct realtime_cfg, common),
	.upstreams = realtime_upstreams,
};
