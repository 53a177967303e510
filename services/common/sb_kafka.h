/* sb_kafka.h: Kafka helpers of the runtime (librdkafka 2.0.2).
 *
 * Producer: idempotent (enable.idempotence=true, acks=all), lz4-compressed by default, small
 * linger. Every message carries the CloudEvents Kafka binding headers and gets its own
 * delivery-report callback. The producer owns a background thread that polls librdkafka (50 ms
 * wait), so delivery reports run on THAT thread (never on a producing or flushing caller's);
 * callers never poll.
 *
 * Consumer: a consumer-group member (auto.offset.reset=earliest) in one of two commit modes:
 * manual, synchronous commits of one message at a time (sb_kafka_consumer_new:
 * enable.auto.commit=false), or stored offsets (sb_kafka_consumer_new_opts with a commit
 * interval): the caller stores the offsets of the messages it has handled
 * (sb_kafka_consumer_store, enable.auto.offset.store=false) and only those are committed,
 * periodically in the background, synchronously when partitions are revoked and at close.
 * Messages are handed out as rd_kafka_message_t, one at a time or in batches.
 *
 * Extra librdkafka settings are given as a NULL-terminated list of "key", "value" pairs (or
 * NULL); they are applied after the defaults above and so may override them (for example
 * "compression.type", "zstd"). A bad setting is logged with its key and fails with SB_EINVAL.
 *
 * Metrics (sb_metrics): kafka_produced_total{topic,result} (result: ok, error, rejected),
 * kafka_delivery_seconds{topic} (produce to successful delivery report) and
 * kafka_producer_queue_depth{client} (messages and events not yet reported). */
#ifndef SB_KAFKA_H
#define SB_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* A CloudEvents context for one message (all strings borrowed for the call only). id, source and
 * type are required; the rest may be NULL. time: RFC 3339, NULL for now (UTC); content_type:
 * NULL for application/x-protobuf. */
struct sb_cloudevent {
	const char *id;
	const char *source;
	const char *type;
	const char *subject;
	const char *time;
	const char *content_type;
	const char *traceparent;
};

#define SB_KAFKA_CONTENT_TYPE_DEFAULT "application/x-protobuf"

struct sb_kafka_producer;
struct sb_kafka_consumer;

/* sb_kafka_dr_fn is a delivery-report callback: err is 0 when the message is durably stored
 * (acks=all), otherwise an sb_err (SB_ETIMEDOUT: message.timeout.ms passed, SB_ECLOSED: purged
 * at sb_kafka_producer_free, SB_EIO: any other broker error) with errstr naming the cause. It
 * runs exactly once per accepted message, on the producer's poll thread (so never two at once),
 * or, for messages purged by sb_kafka_producer_free, on the thread calling it; it must not block
 * long and must not free the producer. */
typedef void (*sb_kafka_dr_fn)(int err, const char *errstr, void *opaque);

/* sb_kafka_dr_error returns, inside an sb_kafka_dr_fn, librdkafka's own error code of the
 * report being served (for a caller that must tell a record the broker refuses for good from
 * an error that a new attempt may overcome); RD_KAFKA_RESP_ERR_NO_ERROR elsewhere. */
rd_kafka_resp_err_t sb_kafka_dr_error(void);

/* --- producer (sb_kafka_producer.c) --- */

/* sb_kafka_producer_new creates a producer for the bootstrap list brokers ("host:port,...") and
 * starts its poll thread. conf: extra settings (see above) or NULL. On success *out is owned by
 * the caller and released with sb_kafka_producer_free. Returns 0, SB_EINVAL (bad argument or
 * setting) or SB_ENOMEM/SB_EIO. Does not contact the brokers. */
int sb_kafka_producer_new(const char *brokers, const char *const *conf,
                          struct sb_kafka_producer **out);

/* sb_kafka_produce enqueues one message for topic with key (may be NULL) and value (copied)
 * and the CloudEvents headers of ce (required). dr (may be NULL) is called once with opaque
 * when the message is delivered or has failed for good; if sb_kafka_produce returns an error,
 * dr is never called. Thread-safe. Returns 0, SB_EINVAL (missing argument or CloudEvents
 * field), SB_EBUSY (local queue full: poll less eagerly or flush), SB_ECLOSED or SB_EIO. */
int sb_kafka_produce(struct sb_kafka_producer *p, const char *topic, const void *key, size_t klen,
                     const void *value, size_t vlen, const struct sb_cloudevent *ce,
                     sb_kafka_dr_fn dr, void *opaque);

/* sb_kafka_flush waits up to timeout_ms until every message produced so far has had its
 * delivery report. Returns 0, or SB_ETIMEDOUT if messages remain. */
int sb_kafka_flush(struct sb_kafka_producer *p, int timeout_ms);

/* sb_kafka_producer_outq_len returns how many messages wait for their delivery report, plus
 * librdkafka events not yet served by the poll thread (rd_kafka_outq_len). */
int sb_kafka_producer_outq_len(struct sb_kafka_producer *p);

/* sb_kafka_producer_handle returns the producer's librdkafka handle, owned by p (for
 * sb_kafka_ping and diagnostics; do not poll or destroy it). */
rd_kafka_t *sb_kafka_producer_handle(struct sb_kafka_producer *p);

/* sb_kafka_producer_free stops the poll thread and destroys p (NULL is allowed). It does not
 * wait for delivery: call sb_kafka_flush first. Messages still pending are purged and their
 * callbacks run with SB_ECLOSED before it returns. */
void sb_kafka_producer_free(struct sb_kafka_producer *p);

/* --- CloudEvents headers (sb_kafka_ce.c) --- */

/* sb_kafka_ce_headers builds the CloudEvents Kafka binding headers of ce: ce_specversion "1.0",
 * ce_id, ce_source, ce_type, ce_subject (if set), ce_time (now in UTC if unset), content-type
 * and traceparent (if set). On success *out is owned by the caller (rd_kafka_headers_destroy,
 * or handed to librdkafka with the message). Returns 0 or SB_EINVAL naming nothing: the
 * caller logs. */
int sb_kafka_ce_headers(const struct sb_cloudevent *ce, rd_kafka_headers_t **out);

/* sb_kafka_ce_time_now writes the current UTC time as RFC 3339 with milliseconds
 * ("2024-01-02T03:04:05.678Z") to buf (at least 32 bytes). Returns 0 or SB_ERANGE. */
int sb_kafka_ce_time_now(char *buf, size_t n);

/* sb_kafka_header copies the last value of header name of msg to buf (size n) as a
 * NUL-terminated string. Returns the value's length, SB_ENOTFOUND when the message has no such
 * header (or no value), or SB_ERANGE when buf is too small. */
int sb_kafka_header(const rd_kafka_message_t *msg, const char *name, char *buf, size_t n);

/* --- consumer (sb_kafka_consumer.c) --- */

/* sb_kafka_consumer_new joins consumer group group_id on brokers and subscribes to topics
 * (NULL-terminated, at least one). Offsets are committed only by sb_kafka_consumer_commit; a
 * group without committed offsets starts at the earliest message. conf: extra settings or
 * NULL. On success *out is owned by the caller (sb_kafka_consumer_close). Returns 0, SB_EINVAL
 * or SB_EIO. Joining completes asynchronously in sb_kafka_consumer_poll. */
int sb_kafka_consumer_new(const char *brokers, const char *group_id, const char *const *topics,
                          const char *const *conf, struct sb_kafka_consumer **out);

/* sb_kafka_consumer_poll waits up to timeout_ms for the next message. Returns a message the
 * caller destroys with rd_kafka_message_destroy, or NULL when none arrived in time (consumer
 * errors such as an unreachable broker are logged and also give NULL). */
rd_kafka_message_t *sb_kafka_consumer_poll(struct sb_kafka_consumer *c, int timeout_ms);

/* sb_kafka_consumer_commit synchronously commits msg's offset + 1 for its partition, so that
 * the group resumes after msg. msg stays owned by the caller. Returns 0, SB_EINVAL or SB_EIO. */
int sb_kafka_consumer_commit(struct sb_kafka_consumer *c, const rd_kafka_message_t *msg);

/* Options of sb_kafka_consumer_new_opts; a zeroed struct gives sb_kafka_consumer_new. */
struct sb_kafka_consumer_opts {
	/* 0: offsets are committed only by sb_kafka_consumer_commit. > 0: stored-offset mode:
	 * librdkafka commits the offsets stored with sb_kafka_consumer_store every
	 * commit_interval_ms (enable.auto.commit=true, enable.auto.offset.store=false); they are
	 * also committed synchronously before partitions are revoked (rebalance) and at
	 * sb_kafka_consumer_close. An offset that was never stored is never committed. */
	int commit_interval_ms;
};

/* sb_kafka_consumer_new_opts is sb_kafka_consumer_new with options (o may be NULL). In
 * stored-offset mode it installs a rebalance callback, which runs inside the poll calls. */
int sb_kafka_consumer_new_opts(const char *brokers, const char *group_id, const char *const *topics,
                               const char *const *conf, const struct sb_kafka_consumer_opts *o,
                               struct sb_kafka_consumer **out);

/* sb_kafka_consumer_poll_batch fills msgs (room for max) with the next messages: it waits up to
 * timeout_ms for the first one, then takes those already fetched, waiting at most linger_ms in
 * all for more (0: only what is already there), until max. Returns how many it wrote (0 when
 * none arrived in time); the caller destroys each with rd_kafka_message_destroy. Consumer
 * errors are logged and skipped, as in sb_kafka_consumer_poll. Rebalance callbacks run inside
 * it. */
size_t sb_kafka_consumer_poll_batch(struct sb_kafka_consumer *c, rd_kafka_message_t **msgs,
                                    size_t max, int timeout_ms, int linger_ms);

/* sb_kafka_consumer_store records that the n messages msgs (obtained from c, in any order) are
 * handled, in stored-offset mode: for each partition the highest offset among them, plus one,
 * becomes the offset the next commit sends. Call it only after every message of the partition
 * up to that one is handled. The messages stay owned by the caller. Returns 0, SB_EINVAL (not
 * in stored-offset mode, or a message with an error), or SB_ECLOSED when some partition is no
 * longer assigned to c (its new owner receives those messages again; the others were stored). */
int sb_kafka_consumer_store(struct sb_kafka_consumer *c, rd_kafka_message_t *const *msgs, size_t n);

/* sb_kafka_consumer_handle returns c's librdkafka handle, owned by c. */
rd_kafka_t *sb_kafka_consumer_handle(struct sb_kafka_consumer *c);

/* sb_kafka_consumer_close leaves the group (so that another member takes over at once),
 * destroys c and frees it (NULL is allowed). In stored-offset mode the stored offsets are
 * committed first. Messages obtained from c must be destroyed first. */
void sb_kafka_consumer_close(struct sb_kafka_consumer *c);

/* --- topics and readiness (sb_kafka_admin.c) --- */

/* A topic the platform creates: its name (prefix included), partition count, replication factor
 * (-1: the broker's default.replication.factor) and retention in ms (0: the broker's default;
 * -1: keep forever). */
struct sb_kafka_topic_spec {
	const char *name;
	int partitions;
	int replication;
	long long retention_ms;
};

/* sb_kafka_ensure_topics makes sure each of the cnt topics of specs exists: it reads the
 * cluster metadata and returns 0 if all exist (an existing topic is left as it is, whatever its
 * settings); otherwise it creates the missing ones with the Admin API (partitions, replication
 * factor, retention.ms) and waits for the result, a topic created meanwhile by someone else
 * counting as success, then until the brokers' metadata lists each created topic with a leader
 * for every partition, so that it can be used at once. Blocks at most about timeout_ms (at
 * least a second for the listing). On error returns SB_EINVAL,
 * SB_EUNAVAIL (brokers unreachable), SB_ETIMEDOUT or SB_EIO and writes a reason naming the
 * topic to err (size n). */
int sb_kafka_ensure_topics(const char *brokers, const struct sb_kafka_topic_spec *specs, int cnt,
                           int timeout_ms, char *err, size_t n);

/* sb_kafka_topic_name writes prefix (may be NULL or empty) followed by base to buf (size n).
 * Returns 0, or SB_ERANGE when it does not fit. */
int sb_kafka_topic_name(const char *prefix, const char *base, char *buf, size_t n);

/* sb_kafka_ping asks the cluster for its metadata through rk (a producer or consumer handle)
 * within timeout_ms; for /ready. On success writes "N brokers" to detail (size n, may be NULL)
 * and returns 0; otherwise SB_EUNAVAIL with the reason in detail. */
int sb_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *detail, size_t n);

/* --- devbus control client (sb_kafka_devbus.c) --- */

/* sb_kafka_devbus_ctl sends one command line (e.g. "down 1") to the control port of devbus at
 * addr ("host:port") and copies its one-line answer, without the newline, to reply (size n).
 * Returns 0 when devbus answered "ok ...", SB_EPROTO when it answered "err ...", SB_EINVAL,
 * SB_EUNAVAIL (cannot connect) or SB_ETIMEDOUT (no answer within timeout_ms). */
int sb_kafka_devbus_ctl(const char *addr, const char *cmd, int timeout_ms, char *reply, size_t n);

/* --- internal, shared by the sb_kafka*.c files --- */

/* sb__kafka_conf_new returns a librdkafka conf with defaults (key, value, ..., NULL) then
 * extra applied, or NULL after logging the first bad key. Caller owns the conf. */
rd_kafka_conf_t *sb__kafka_conf_new(const char *brokers, const char *const *defaults,
                                    const char *const *extra);

#endif
