/* sb_names.h: names two services must agree on, defined once.
 *
 * Kafka topics are base names: a deployment may put SB_KAFKA_TOPIC_PREFIX in front of every
 * topic (sb_kafka_topic_name), so that several platforms, or several tests, share one cluster
 * without meeting. Every producer and consumer of a topic builds its name from these macros and
 * the prefix; the table of topics, with their partitions, replication and retention, is in
 * docs/kafka.md. */
#ifndef SB_NAMES_H
#define SB_NAMES_H

/* Domain events of conversations and messages: written by messages (its outbox rows), relayed
 * by outbox, consumed by notifier. Key: conversation id. */
#define SB_TOPIC_MESSAGES "sb.messages.v1"
/* Webhook deliveries that failed for good (notifier). */
#define SB_TOPIC_NOTIFIER_WEBHOOKS "sb.notifier.webhooks.v1"
/* A topic's dead-letter topic is its name followed by this. */
#define SB_TOPIC_DLQ_SUFFIX ".dlq"

#endif
