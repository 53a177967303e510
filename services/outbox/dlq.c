/* dlq.c: dead letters. A row the broker keeps rejecting is produced to "<topic>.dlq" with its
 * CloudEvents headers and the error in the sb_error header, synchronously (a DLQ message is
 * rare), on a producer of its own: the runtime's producer has no way to add a header. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

struct outbox_dlq {
	rd_kafka_t *rk;
	int timeout_ms;
};

/* Delivery outcome of the one message in flight (reports are served by our own poll). */
struct outbox_dlq_wait {
	bool done;
	bool abandoned; /* the sender gave up: the report frees it */
	rd_kafka_resp_err_t err;
};

static void
outbox_dlq_on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct outbox_dlq_wait *w = m->_private;
	(void)rk;
	(void)opaque;
	if (w == NULL)
		return;
	if (w->abandoned) {
		free(w);
		return;
	}
	w->err = m->err;
	w->done = true;
}

int
outbox_dlq_new(const char *brokers, int timeout_ms, struct outbox_dlq **out)
{
	static const char *const conf[] = {
		"enable.idempotence",
		"true",
		"acks",
		"all",
		"compression.type",
		"lz4",
		"linger.ms",
		"0",
		"socket.nagle.disable",
		"true",
		"client.id",
		"switchboard-outbox-dlq",
		NULL,
	};
	char errstr[512], tmo[16];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	struct outbox_dlq *d;

	snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
	if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(c, "message.timeout.ms", tmo, errstr, sizeof(errstr))) {
		sb_log_kv(SB_LOG_ERROR, "dlq producer setting refused", "error", errstr, NULL);
		rd_kafka_conf_destroy(c);
		return SB_EINVAL;
	}
	for (int i = 0; conf[i] != NULL; i += 2)
		if (rd_kafka_conf_set(c, conf[i], conf[i + 1], errstr, sizeof(errstr))) {
			sb_log_kv(SB_LOG_ERROR, "dlq producer setting refused", "key", conf[i],
			          "error", errstr, NULL);
			rd_kafka_conf_destroy(c);
			return SB_EINVAL;
		}
	rd_kafka_conf_set_dr_msg_cb(c, outbox_dlq_on_dr);
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		rd_kafka_conf_destroy(c);
		return SB_ENOMEM;
	}
	d->timeout_ms = timeout_ms;
	d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
	if (d->rk == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cannot create dlq producer", "error", errstr, NULL);
		rd_kafka_conf_destroy(c);
		free(d);
		return SB_EINVAL;
	}
	*out = d;
	return 0;
}

/* outbox_dlq_produce enqueues one message; headers are consumed on success only. */
static rd_kafka_resp_err_t
outbox_dlq_produce(struct outbox_dlq *d, const char *topic, const struct outbox_row *row,
                   const void *value, size_t vlen, rd_kafka_headers_t *h, struct outbox_dlq_wait *w)
{
	return rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(topic),
	                         RD_KAFKA_V_KEY(row->aggregate_id, strlen(row->aggregate_id)),
	                         RD_KAFKA_V_VALUE((void *)value, vlen),
	                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
	                         RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
}

int
outbox_dlq_send(struct outbox_dlq *d, const struct outbox_row *row, const char *error)
{
	char topic[512], attempts[16];
	struct sb_cloudevent ce = {
		.id = row->event_id,
		.source = row->source,
		.type = row->event_type,
		.subject = row->subject,
		.time = row->created_at,
		.traceparent = row->traceparent,
	};
	struct outbox_dlq_wait *w;
	rd_kafka_headers_t *h = NULL;
	rd_kafka_resp_err_t err;
	int ret;

	if (d == NULL || row == NULL)
		return SB_EINVAL;
	if ((size_t)snprintf(topic, sizeof(topic), "%s" OUTBOX_DLQ_SUFFIX, row->topic) >=
	    sizeof(topic))
		return SB_EINVAL;
	snprintf(attempts, sizeof(attempts), "%d", row->attempts + 1);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SB_ENOMEM;
	for (int omit = 0; omit < 2; omit++) {
		if ((ret = sb_kafka_ce_headers(&ce, &h)) != 0) {
			free(w);
			return ret;
		}
		rd_kafka_header_add(h, OUTBOX_ERR_HEADER, -1, error, -1);
		rd_kafka_header_add(h, "sb_attempts", -1, attempts, -1);
		rd_kafka_header_add(h, "sb_original_topic", -1, row->topic, -1);
		if (omit)
			rd_kafka_header_add(h, "sb_payload_omitted", -1, "true", -1);
		err = outbox_dlq_produce(d, topic, row, omit ? "" : (const char *)row->payload,
		                         omit ? 0 : row->payload_len, h, w);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		rd_kafka_headers_destroy(h);
		if (err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || omit) {
			sb_log_kv(SB_LOG_WARN, "dlq produce failed", "topic", topic, "error",
			          rd_kafka_err2str(err), NULL);
			free(w);
			return SB_EIO;
		}
	}
	/* Serve reports until ours arrives; message.timeout.ms bounds the wait. */
	int64_t deadline = sb_time_mono_ms() + d->timeout_ms + 5000;
	while (!w->done && sb_time_mono_ms() < deadline)
		rd_kafka_poll(d->rk, 50);
	if (!w->done) {
		w->abandoned = true; /* its report frees it, whenever it comes */
		return SB_ETIMEDOUT;
	}
	err = w->err;
	free(w);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_WARN, "dlq delivery failed", "topic", topic, "error",
		          rd_kafka_err2str(err), NULL);
		return err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ? SB_ETIMEDOUT : SB_EIO;
	}
	return 0;
}

void
outbox_dlq_free(struct outbox_dlq *d)
{
	if (d == NULL)
		return;
	rd_kafka_flush(d->rk, 1000);
	/* Reports of purged messages run inside destroy and free what was abandoned. */
	rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(d->rk, 0);
	rd_kafka_destroy(d->rk);
	free(d);
}
