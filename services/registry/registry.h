/* registry.h: private header of the registry service. */
#ifndef SB_REGISTRY_H
#define SB_REGISTRY_H

#include "sb_service.h"

struct registry_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key registry_config[];
extern const struct sb_service_def registry_service;

#endif
