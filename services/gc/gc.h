/* gc.h: private header of the gc service.
 *
 * Its one job: Periodic cleanup under a leader lease: abandoned uploads, expired tokens, relayed
 * outbox rows, stale keys.
 */
#ifndef SB_GC_H
#define SB_GC_H

#include "sb_service.h"

struct gc_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key gc_config[];
extern const struct sb_service_def gc_service;

#endif
