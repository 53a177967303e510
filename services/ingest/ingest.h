/* ingest.h: private header of the ingest service.
 *
 * Its one job: external telemetry feeds (Lightstreamer TLCP 2.x over WebSocket) → validated,
 * normalized events (proto/events/telemetry.proto) on Kafka topic telemetry.raw.v1, with
 * backpressure. See docs/ingest.md.
 */
#ifndef SB_INGEST_H
#define SB_INGEST_H

#include "sb_service.h"

struct ingest_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key ingest_config[];
extern const struct sb_service_def ingest_service;

#endif
