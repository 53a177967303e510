/* outbox.h: private header of the outbox service.
 *
 * Its one job: Relays committed outbox rows to Kafka, in order per aggregate, at least once.
 */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include "sb_service.h"

struct outbox_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key outbox_config[];
extern const struct sb_service_def outbox_service;

#endif
