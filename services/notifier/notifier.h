/* notifier.h: private header of the notifier service.
 *
 * Its one job: Consumes domain events from Kafka; turns them into realtime pushes, webhooks and
 * delivery watermarks; owns DLQs.
 */
#ifndef SB_NOTIFIER_H
#define SB_NOTIFIER_H

#include "sb_service.h"

struct notifier_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key notifier_config[];
extern const struct sb_service_def notifier_service;

#endif
