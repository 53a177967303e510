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
/* Telemetry samples from external feeds, normalized (proto/events/telemetry.proto): written by
 * ingest. Key: item id; ce_id: the sample's deterministic event id. */
#define SB_TOPIC_TELEMETRY_RAW "telemetry.raw.v1"
/* The first part of the name a telemetry event id (UUID v5) is made from (docs/ingest.md): a
 * consumer that recomputes an id to check it must use the same. */
#define SB_TELEMETRY_ID_NAMESPACE "sb.telemetry.v1"
/* A topic's dead-letter topic is its name followed by this. */
#define SB_TOPIC_DLQ_SUFFIX ".dlq"

/* cdcsink (docs/cdcsink.md): change events it could not apply. Error records of events that
 * failed every attempt (original event, error, attempts, times); events that failed validation
 * or transformation (with the reason; resubmittable through the admin API); events older than
 * the staleness threshold, skipped unless the table is in backfill mode. These are where
 * failed events end, so they have no .dlq of their own (marked "sink" for the deployment
 * check, tests/deploy/validate.mjs). */
#define SB_TOPIC_CDC_DLQ        "cassandra.cdc.dlq"               /* sink */
#define SB_TOPIC_CDC_VALIDATION "cassandra.cdc.validation_errors" /* sink */
#define SB_TOPIC_CDC_STALENESS  "cassandra.cdc.staleness_audit"   /* sink */

/* Redis pub/sub channels of the realtime contract (docs/realtime.md): the notifier publishes
 * frames (sb_rtframe.h) on "conv:<conversation id>" and "user:<user id>"; every realtime
 * instance with a subscriber there forwards them. */
#define SB_REDIS_CONV_CHANNEL "conv:"
#define SB_REDIS_USER_CHANNEL "user:"
/* Revoked access tokens: auth SETs "sb:revoked:jti:<jti>" (TTL = the token's remaining
 * lifetime) and PUBLISHes "<jti> <exp>" on "sb:revocations"; gateways keep a local set. */
#define SB_REDIS_REVOKED_PREFIX      "sb:revoked:jti:"
#define SB_REDIS_REVOCATIONS_CHANNEL "sb:revocations"
/* The notifier's publish-once marks: "sb:seen:<ce_id>" (TTL one day). */
#define SB_REDIS_SEEN_PREFIX "sb:seen:"

/* files (docs/files.md): merge requests of chunked uploads, written by sb-files through its
 * outbox (files.outbox) when a client completes an upload and consumed by sb-files' merge
 * worker; and the files' domain events (FileUploadCompleted). Key: upload id. Both are
 * proto/events/files_events.proto payloads with CloudEvents headers. */
#define SB_TOPIC_FILE_MERGE "sb.file-merge.v1"
#define SB_TOPIC_FILES      "sb.files.v1"

/* PostgreSQL NOTIFY channel: messages notifies it when it commits outbox rows; the outbox relay
 * LISTENs. */
#define SB_PG_OUTBOX_CHANNEL "sb_outbox"

/* Headers of a signed webhook or push request (sb_webhook.c; notifier webhooks, pubsub push
 * subscriptions): the Unix time in seconds and "v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>". */
#define SB_HDR_WEBHOOK_TIMESTAMP "Switchboard-Timestamp"
#define SB_HDR_WEBHOOK_SIGNATURE "Switchboard-Signature"

#endif
