/* config.c: the ingest service's configuration table, RPC table and service definition. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ingest.pb-c.h"

int
ing_validate_frequency(const char *value, char *err, size_t errlen)
{
	if (!*value)
		return 0;
	char *end = NULL;
	errno = 0;
	double f = strtod(value, &end);
	if (errno || end == value || *end || !isfinite(f) || f < 0.001 || f > 1000000) {
		snprintf(err, errlen,
		         "must be empty or a number of updates per second from 0.001 to 1000000");
		return -1;
	}
	return 0;
}

const struct sb_cfg_key ingest_config[] = {
	SB_CFG_COMMON(struct ingest_cfg, common, 9109, 7109),
	SB_CFG_KAFKA(struct ingest_cfg, common),
	SB_CFG_STR_ROW(
	    struct ingest_cfg, "SB_INGEST_FEED_URL", feed_url, "", NULL,
	    "Lightstreamer server to subscribe to: ws://host[:port] or wss://host[:port] "
	    "(path /lightstreamer is added). Empty: the subscriber stays idle and only "
	    "POST /api/v1/ingest/test feeds the pipeline."),
	SB_CFG_STR_ROW(
	    struct ingest_cfg, "SB_INGEST_MAPPING", mapping_file,
	    "services/ingest/mappings/isslive.json", NULL,
	    "Mapping file (JSON): source name, adapter set, items, fields and their types "
	    "(docs/ingest.md)."),
	SB_CFG_STR_ROW(struct ingest_cfg, "SB_INGEST_FEED_USER", feed_user, "", NULL,
	               "LS_user sent with create_session (empty: none)."),
	SB_CFG_SECRET_ROW(struct ingest_cfg, "SB_INGEST_FEED_PASSWORD", feed_password, "", NULL,
	                  "LS_password sent with create_session (empty: none)."),
	SB_CFG_STR_ROW(
	    struct ingest_cfg, "SB_INGEST_CA_FILE", ca_file, "", NULL,
	    "CA certificates (PEM) that a wss:// feed's certificate must chain to; empty: "
	    "the system's bundle (/etc/ssl/certs/ca-certificates.crt)."),
	SB_CFG_STR_ROW(struct ingest_cfg, "SB_INGEST_TOPIC", topic, SB_TOPIC_TELEMETRY_RAW, NULL,
	               "Topic the samples go to (SB_KAFKA_TOPIC_PREFIX goes in front)."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_PARTITIONS", partitions, "6", 1, 10000,
	               "Partitions of the telemetry topic (created and verified at start)."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_RETENTION_MS", retention_ms, "604800000", -1,
	               9223372036854775807LL,
	               "retention.ms of the telemetry topic (7 days; -1: forever); cleanup.policy "
	               "is delete."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_QUEUE_MAX", queue_max, "100000", 10, 10000000,
	               "Samples the pipeline holds (queued or awaiting Kafka's acknowledgement) "
	               "before the test endpoint answers 429."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_HIGH_WATERMARK", high_watermark, "80000", 1,
	               10000000,
	               "Depth at which the subscription is paused and the test endpoint answers "
	               "429."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_LOW_WATERMARK", low_watermark, "40000", 0,
	               10000000, "Depth at which a paused subscription resumes."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_RETRY_AFTER_MS", retry_after_ms, "1000", 1,
	               600000, "Retry-After given with a 429 from the test endpoint."),
	SB_CFG_STR_ROW(
	    struct ingest_cfg, "SB_INGEST_PAUSE_MAX_FREQUENCY", pause_max_frequency, "1",
	    ing_validate_frequency,
	    "While paused by backpressure, ask the feed (TLCP control LS_op=reconf) for at most "
	    "this many updates per second per item, so that its server merges updates instead of "
	    "queueing them; \"unlimited\" is asked again on resume. Empty: only stop reading."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_TEST_MAX_SAMPLES", test_max_samples, "1000", 1,
	               100000, "Samples one POST /api/v1/ingest/test may carry."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_RECONNECT_BASE_MS", reconnect_base_ms, "250",
	               1, 600000,
	               "First reconnect delay ceiling (exponential backoff, full jitter)."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_RECONNECT_MAX_MS", reconnect_max_ms, "30000",
	               1, 3600000, "Largest reconnect delay."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_BREAKER_THRESHOLD", breaker_threshold, "3", 1,
	               1000, "Consecutive refusals (CONERR) that open the feed's circuit breaker."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_BREAKER_OPEN_MS", breaker_open_ms, "5000", 1,
	               3600000, "How long the breaker stays open before a half-open trial."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_KEEPALIVE_MS", keepalive_ms, "5000", 0, 600000,
	               "LS_keepalive_millis asked of the server (0: its default)."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_STALL_MS", stall_ms, "15000", 100, 3600000,
	               "A connection that receives nothing (not even a PROBE) this long is dropped "
	               "and the session recovered."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_LINGER_MS", linger_ms, "5", 0, 10000,
	               "Producer linger.ms: how long a batch waits for more samples."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_BATCH_MESSAGES", batch_messages, "10000", 1,
	               1000000, "Producer batch.num.messages."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_MAX_IN_FLIGHT", max_in_flight, "1", 1, 5,
	               "Producer max.in.flight.requests.per.connection. Keep 1: with more, "
	               "librdkafka 2.0.2 reported as delivered records that a broker in controlled "
	               "shutdown never appended (docs/ingest.md)."),
	SB_CFG_STR_ROW(struct ingest_cfg, "SB_INGEST_COMPRESSION", compression, "lz4", NULL,
	               "Producer compression.type: none, gzip, snappy, lz4 or zstd."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_MESSAGE_TIMEOUT_MS", message_timeout_ms, "0",
	               0, 86400000,
	               "Producer message.timeout.ms; 0 (the default) retries a sample until the "
	               "broker takes it, so an outage loses nothing."),
	SB_CFG_INT_ROW(struct ingest_cfg, "SB_INGEST_TOPIC_TIMEOUT_MS", topic_timeout_ms, "10000",
	               100, 600000, "Deadline of one create-and-verify attempt of the topic."),
	{ NULL },
};

const struct sb_rpc_method ingest_methods[] = {
	SB_RPC_ROW(ingest, Test, test_request, test_response, ing_rpc_test, 0),
	SB_RPC_END,
};

const struct sb_service_def ingest_service = {
	.name = "ingest",
	.config = ingest_config,
	.config_size = sizeof(struct ingest_cfg),
	.common_offset = offsetof(struct ingest_cfg, common),
	.methods = ingest_methods,
	.start = ing_service_start,
	.stop = ing_service_stop,
};
