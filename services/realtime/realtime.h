/* realtime.h: private header of the realtime service.
 *
 * Its one job: WebSocket edge for browsers: auth, subscriptions, fan-out, recovery from seq.
 */
#ifndef SB_REALTIME_H
#define SB_REALTIME_H

#include "sb_service.h"

struct realtime_cfg {
	struct sb_common_cfg common;
	char *messages_url;
};

/* config.c */
extern const struct sb_cfg_key realtime_config[];
extern const struct sb_service_def realtime_service;

#endif
