/* sb_kafka_producer.c: the idempotent producer, its poll thread and delivery reports. */
#include "sb_kafka.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_KAFKA_POLL_MS 50

/* Series of the last topic reported; touched only by the poll thread (delivery reports). */
struct sb_kafka_topic_series {
	char topic[256];
	struct sb_series *ok, *error, *latency;
};

struct sb_kafka_producer {
	rd_kafka_t *rk;
	pthread_t poller;
	atomic_bool stop;
	atomic_bool closing;
	struct sb_series *queue_depth;
	struct sb_kafka_topic_series last;
};

static struct {
	pthread_once_t once;
	struct sb_metric *produced, *delivery, *queue_depth;
} sb_kafka_metrics = { PTHREAD_ONCE_INIT, NULL, NULL, NULL };

static void
sb_kafka_metrics_register(void)
{
	sb_kafka_metrics.produced = sb_metrics_counter(
	    "kafka_produced_total",
	    "Kafka messages produced, by topic and result (ok, error: delivery failed, rejected: "
	    "refused before queueing).",
	    "topic,result");
	sb_kafka_metrics.delivery = sb_metrics_histogram(
	    "kafka_delivery_seconds", "Time from produce to delivery report, by topic.", "topic",
	    NULL, 0);
	sb_kafka_metrics.queue_depth = sb_metrics_gauge(
	    "kafka_producer_queue_depth",
	    "Messages and events of a producer not yet reported, by librdkafka client name.",
	    "client");
}

/* sb_kafka_series returns the cached series of topic, looking them up when the topic changes. */
static struct sb_kafka_topic_series *
sb_kafka_series(struct sb_kafka_producer *p, const char *topic)
{
	struct sb_kafka_topic_series *t = &p->last;
	if (strcmp(t->topic, topic) != 0) {
		snprintf(t->topic, sizeof(t->topic), "%s", topic);
		t->ok = sb_metric_with(sb_kafka_metrics.produced, topic, "ok");
		t->error = sb_metric_with(sb_kafka_metrics.produced, topic, "error");
		t->latency = sb_metric_with(sb_kafka_metrics.delivery, topic);
	}
	return t;
}

/* One per accepted message: who to tell about its delivery. Freed by the report. */
struct sb_kafka_dr {
	sb_kafka_dr_fn fn;
	void *opaque;
};

static const char *const sb_kafka_producer_defaults[] = {
	"enable.idempotence", "true",        "acks",      "all",
	"compression.type",   "lz4",         "linger.ms", "5",
	"client.id",          "switchboard", NULL,
};

static int
sb_kafka_err_map(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return 0;
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
		return SB_ETIMEDOUT;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
		return SB_ECLOSED;
	default:
		return SB_EIO;
	}
}

/* librdkafka's error code of the delivery report being served on this thread. */
static _Thread_local rd_kafka_resp_err_t sb_kafka_dr_code;

rd_kafka_resp_err_t
sb_kafka_dr_error(void)
{
	return sb_kafka_dr_code;
}

static void
sb_kafka_producer_on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *conf_opaque)
{
	struct sb_kafka_producer *p = conf_opaque;
	struct sb_kafka_dr *dr = m->_private;
	int err = sb_kafka_err_map(m->err);
	const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
	struct sb_kafka_topic_series *ts = sb_kafka_series(p, topic);

	(void)rk;
	sb_series_inc(err ? ts->error : ts->ok);
	if (err == 0)
		sb_series_observe(ts->latency, (double)rd_kafka_message_latency(m) / 1e6);
	if (err != 0)
		sb_log_kv(SB_LOG_WARN, "kafka delivery failed", "topic",
		          m->rkt ? rd_kafka_topic_name(m->rkt) : "?", "error",
		          rd_kafka_err2str(m->err), NULL);
	if (dr == NULL)
		return;
	sb_kafka_dr_code = m->err;
	if (dr->fn)
		dr->fn(err, err ? rd_kafka_err2str(m->err) : "", dr->opaque);
	sb_kafka_dr_code = RD_KAFKA_RESP_ERR_NO_ERROR;
	free(dr);
}

static void
sb_kafka_producer_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* Transport errors while a broker is down are retried by librdkafka (and already logged
	 * through the log callback): only a fatal error is worth an error line. */
	bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
	sb_log_kv(fatal ? SB_LOG_ERROR : SB_LOG_DEBUG, "kafka error", "error",
	          rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason, NULL);
}

static void *
sb_kafka_producer_run(void *arg)
{
	struct sb_kafka_producer *p = arg;

	while (!atomic_load(&p->stop)) {
		rd_kafka_poll(p->rk, SB_KAFKA_POLL_MS);
		sb_series_set(p->queue_depth, rd_kafka_outq_len(p->rk));
	}
	return NULL;
}

int
sb_kafka_producer_new(const char *brokers, const char *const *conf, struct sb_kafka_producer **out)
{
	char errstr[512];
	struct sb_kafka_producer *p;
	rd_kafka_conf_t *c;

	if (brokers == NULL || brokers[0] == '\0' || out == NULL)
		return SB_EINVAL;
	c = sb__kafka_conf_new(brokers, sb_kafka_producer_defaults, conf);
	if (c == NULL)
		return SB_EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		rd_kafka_conf_destroy(c);
		return SB_ENOMEM;
	}
	pthread_once(&sb_kafka_metrics.once, sb_kafka_metrics_register);
	rd_kafka_conf_set_opaque(c, p);
	rd_kafka_conf_set_dr_msg_cb(c, sb_kafka_producer_on_dr);
	rd_kafka_conf_set_error_cb(c, sb_kafka_producer_on_error);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
	if (p->rk == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cannot create kafka producer", "error", errstr, NULL);
		rd_kafka_conf_destroy(c);
		free(p);
		return SB_EINVAL;
	}
	p->queue_depth = sb_metric_with(sb_kafka_metrics.queue_depth, rd_kafka_name(p->rk));
	if (pthread_create(&p->poller, NULL, sb_kafka_producer_run, p) != 0) {
		rd_kafka_destroy(p->rk);
		free(p);
		return SB_EIO;
	}
	*out = p;
	return 0;
}

int
sb_kafka_produce(struct sb_kafka_producer *p, const char *topic, const void *key, size_t klen,
                 const void *value, size_t vlen, const struct sb_cloudevent *ce, sb_kafka_dr_fn dr,
                 void *opaque)
{
	rd_kafka_headers_t *h = NULL;
	struct sb_kafka_dr *d;
	rd_kafka_resp_err_t err;
	int ret;

	if (p == NULL || topic == NULL || topic[0] == '\0' || (value == NULL && vlen > 0) ||
	    (key == NULL && klen > 0))
		return SB_EINVAL;
	if (atomic_load(&p->closing))
		return SB_ECLOSED;
	if ((ret = sb_kafka_ce_headers(ce, &h)) != 0)
		return ret;
	d = malloc(sizeof(*d));
	if (d == NULL) {
		rd_kafka_headers_destroy(h);
		return SB_ENOMEM;
	}
	d->fn = dr;
	d->opaque = opaque;
	err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
	                        RD_KAFKA_V_VALUE((void *)value, vlen),
	                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
	                        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* On failure the headers stay ours. */
		rd_kafka_headers_destroy(h);
		free(d);
		sb_series_inc(sb_metric_with(sb_kafka_metrics.produced, topic, "rejected"));
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return SB_EBUSY;
		sb_log_kv(SB_LOG_WARN, "kafka produce failed", "topic", topic, "error",
		          rd_kafka_err2str(err), NULL);
		return err == RD_KAFKA_RESP_ERR__FATAL ? SB_ECLOSED : SB_EIO;
	}
	return 0;
}

int
sb_kafka_flush(struct sb_kafka_producer *p, int timeout_ms)
{
	struct timespec start, now, tick = { 0, 2 * 1000000L };

	if (p == NULL)
		return SB_EINVAL;
	/* Not rd_kafka_flush: it would serve delivery reports on this thread; the poll thread
	 * alone runs them. Waiting for the queue to drain is the same contract. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (rd_kafka_outq_len(p->rk) == 0)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms =
		    (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= timeout_ms)
			return SB_ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
}

int
sb_kafka_producer_outq_len(struct sb_kafka_producer *p)
{
	return p ? rd_kafka_outq_len(p->rk) : 0;
}

rd_kafka_t *
sb_kafka_producer_handle(struct sb_kafka_producer *p)
{
	return p ? p->rk : NULL;
}

void
sb_kafka_producer_free(struct sb_kafka_producer *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->closing, true);
	atomic_store(&p->stop, true);
	pthread_join(p->poller, NULL);
	/* Whatever is still queued or in flight is reported as SB_ECLOSED. */
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(p->rk, 5000);
	rd_kafka_poll(p->rk, 0);
	sb_series_set(p->queue_depth, 0);
	rd_kafka_destroy(p->rk);
	free(p);
}
