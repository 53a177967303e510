/* sb_kafka_topics.c: the platform's topics as a service's configuration describes them. */
#include "sb_kafka_topics.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_names.h"

static int
sb_kafka_is_dlq(const char *base)
{
	size_t n = strlen(base), s = strlen(SB_TOPIC_DLQ_SUFFIX);
	return n > s && strcmp(base + n - s, SB_TOPIC_DLQ_SUFFIX) == 0;
}

int
sb_kafka_platform_topics(const struct sb_common_cfg *c, const char *const *bases, int timeout_ms,
                         char *err, size_t n)
{
	struct sb_kafka_topic_spec specs[16];
	char names[16][256];
	int cnt = 0;

	for (const char *const *b = bases; *b != NULL; b++) {
		if (cnt == 16) {
			snprintf(err, n, "more than 16 topics");
			return SB_EINVAL;
		}
		if (sb_kafka_topic_name(c->kafka_topic_prefix, *b, names[cnt],
		                        sizeof(names[cnt])) != 0) {
			snprintf(err, n, "topic name too long: %s%s", c->kafka_topic_prefix, *b);
			return SB_EINVAL;
		}
		specs[cnt] = (struct sb_kafka_topic_spec){
			.name = names[cnt],
			.partitions = (int)c->kafka_partitions,
			.replication = (int)c->kafka_replication,
			.retention_ms =
			    sb_kafka_is_dlq(*b) ? c->kafka_dlq_retention_ms : c->kafka_retention_ms,
		};
		cnt++;
	}
	return sb_kafka_ensure_topics(c->kafka_brokers, specs, cnt, timeout_ms, err, n);
}
