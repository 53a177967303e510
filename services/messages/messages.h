/* messages.h: private header of the messages service.
 *
 * Its one job: Conversations, members, messages with per-conversation seq, read markers, history;
 * writes its outbox in the same transaction.
 */
#ifndef SB_MESSAGES_H
#define SB_MESSAGES_H

#include "sb_service.h"

struct messages_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key messages_config[];
extern const struct sb_service_def messages_service;

#endif
