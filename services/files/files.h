/* files.h: private header of the files service.
 *
 * Its one job: Resumable uploads (tus 1.0 and the chunk API), storage and the merge worker.
 */
#ifndef SB_FILES_H
#define SB_FILES_H

#include "sb_service.h"

struct files_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key files_config[];
extern const struct sb_service_def files_service;

#endif
