/* sb_kafka_topics.h: the platform's Kafka topics, named and created from a service's common
 * configuration (SB_KAFKA_TOPIC_PREFIX, SB_KAFKA_PARTITIONS, SB_KAFKA_REPLICATION_FACTOR,
 * SB_KAFKA_RETENTION_MS, SB_KAFKA_DLQ_RETENTION_MS). Base names are in sb_names.h. */
#ifndef SB_KAFKA_TOPICS_H
#define SB_KAFKA_TOPICS_H

#include <stddef.h>

#include "sb_config.h"
#include "sb_kafka.h"

/* sb_kafka_platform_topics makes sure the topics bases (base names, NULL-terminated, at most
 * 16) exist on c's brokers under c's prefix, creating the missing ones with c's partitions,
 * replication factor and retention (a name ending in SB_TOPIC_DLQ_SUFFIX gets the dead-letter
 * retention). Returns what sb_kafka_ensure_topics returns, with the reason in err (size n). */
int sb_kafka_platform_topics(const struct sb_common_cfg *c, const char *const *bases,
                             int timeout_ms, char *err, size_t n);

#endif
