/* pipe.c: the bounded queue between the receivers (subscriber, test endpoint) and Kafka, and
 * the producer thread that drains it.
 *
 * Depth counts every event accepted and not yet reported by Kafka (queued here or in
 * librdkafka's queue awaiting acks=all). Reaching the high watermark pauses: the test endpoint
 * is answered 429 and the subscriber stops reading its socket; falling to the low watermark
 * resumes (on_resume). Nothing accepted is dropped: a full librdkafka queue makes the producer
 * thread wait and retry the same event (order per item is kept: one thread produces, in
 * order, and the idempotent producer keeps order per partition through its own retries). */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

struct ing_pipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ing_event *head, *tail;
	atomic_llong depth;
	bool paused;
	bool stopping;
	int64_t stop_deadline_ms; /* monotonic; the producer thread gives up after it */
	struct sb_kafka_producer *p;
	struct ing_pipe_opts o;
	char topic[256];
	char ce_source[160];
	pthread_t th;
	atomic_llong lost; /* given up at shutdown */
	struct sb_series *m_ok, *m_err, *m_purged, *m_retry, *m_latency, *m_paused, *m_pauses;
};

static double
ing_pipe_depth_fn(void *arg)
{
	return (double)atomic_load(&((struct ing_pipe *)arg)->depth);
}

bool
ing_pipe_paused(struct ing_pipe *pp)
{
	pthread_mutex_lock(&pp->mu);
	bool p = pp->paused;
	pthread_mutex_unlock(&pp->mu);
	return p;
}

long long
ing_pipe_depth(struct ing_pipe *pp)
{
	return atomic_load(&pp->depth);
}

/* ing_pipe_done accounts for one event leaving the pipe, resuming at the low watermark. */
static void
ing_pipe_done(struct ing_pipe *pp)
{
	long long d = atomic_fetch_sub(&pp->depth, 1) - 1;
	if (d > pp->o.low)
		return;
	bool resume = false;
	pthread_mutex_lock(&pp->mu);
	if (pp->paused && atomic_load(&pp->depth) <= pp->o.low) {
		pp->paused = false;
		resume = true;
		/* under the lock, as where it is set to 1: the gauge follows paused in order */
		sb_series_set(pp->m_paused, 0);
	}
	pthread_mutex_unlock(&pp->mu);
	if (resume) {
		sb_log(SB_LOG_INFO, "ingest: queue depth %lld at the low watermark: resumed", d);
		if (pp->o.on_resume)
			pp->o.on_resume(pp->o.resume_arg);
	}
}

static void
ing_pipe_dr(int err, const char *errstr, void *opaque)
{
	struct ing_event *e = opaque;
	struct ing_pipe *pp = e->pipe;
	if (err == 0) {
		sb_series_inc(pp->m_ok);
		sb_series_observe(pp->m_latency,
		                  (double)(sb_time_mono_ms() - e->recv_mono_ms) / 1000.0);
	} else if (err == SB_ECLOSED) {
		/* purged when the producer closed (shutdown): counted once, logged by the stop */
		sb_series_inc(pp->m_purged);
	} else {
		sb_series_inc(pp->m_err);
		sb_log(SB_LOG_ERROR, "ingest: sample %s of item %s not delivered: %s", e->event_id,
		       e->item, errstr ? errstr : sb_strerror(err));
	}
	ing_event_free(e);
	ing_pipe_done(pp);
}

static void
ing_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ing_pipe_produce hands e to librdkafka, waiting while its queue is full. Returns false when
 * the stop deadline passed first (e is then freed and counted lost). */
static bool
ing_pipe_produce(struct ing_pipe *pp, struct ing_event *e)
{
	char now[32];
	for (;;) {
		struct sb_cloudevent ce = { .id = e->event_id,
			                    .source = pp->ce_source,
			                    .type = ING_CE_TYPE,
			                    .subject = e->item,
			                    .time = NULL };
		if (sb_kafka_ce_time_now(now, sizeof(now)) == 0)
			ce.time = now;
		int rc = sb_kafka_produce(pp->p, pp->topic, e->item, strlen(e->item), e->value,
		                          e->vlen, &ce, ing_pipe_dr, e);
		if (rc == 0)
			return true;
		if (rc != SB_EBUSY) {
			sb_series_inc(pp->m_err);
			sb_log(SB_LOG_ERROR,
			       "ingest: sample %s of item %s refused by the producer: %s",
			       e->event_id, e->item, sb_strerror(rc));
			ing_event_free(e);
			ing_pipe_done(pp);
			return true;
		}
		sb_series_inc(pp->m_retry);
		pthread_mutex_lock(&pp->mu);
		bool late = pp->stopping && sb_time_mono_ms() > pp->stop_deadline_ms;
		pthread_mutex_unlock(&pp->mu);
		if (late) {
			ing_event_free(e);
			atomic_fetch_add(&pp->lost, 1);
			ing_pipe_done(pp);
			return false;
		}
		ing_sleep_ms(2);
	}
}

static void *
ing_pipe_main(void *arg)
{
	struct ing_pipe *pp = arg;
	for (;;) {
		pthread_mutex_lock(&pp->mu);
		while (!pp->head && !pp->stopping)
			pthread_cond_wait(&pp->cv, &pp->mu);
		struct ing_event *list = pp->head;
		pp->head = pp->tail = NULL;
		bool stopping = pp->stopping;
		pthread_mutex_unlock(&pp->mu);
		bool alive = true;
		while (list) {
			struct ing_event *e = list;
			list = e->next;
			e->next = NULL;
			if (alive) {
				alive = ing_pipe_produce(pp, e);
			} else {
				ing_event_free(e);
				atomic_fetch_add(&pp->lost, 1);
				ing_pipe_done(pp);
			}
		}
		if (stopping) {
			pthread_mutex_lock(&pp->mu);
			bool empty = pp->head == NULL;
			pthread_mutex_unlock(&pp->mu);
			if (empty)
				return NULL;
		}
	}
}

int
ing_pipe_start(struct sb_kafka_producer *p, const struct ing_pipe_opts *o, struct ing_pipe **out)
{
	static const double lat_buckets[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.03,
		                              0.04,  0.05,  0.075, 0.1,  0.2,  0.5,
		                              1,     2.5,   5,     10,   30 };
	struct ing_pipe *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return SB_ENOMEM;
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	pp->p = p;
	pp->o = *o;
	snprintf(pp->topic, sizeof(pp->topic), "%s", o->topic);
	snprintf(pp->ce_source, sizeof(pp->ce_source), "sb-ingest/%s", o->source);
	pp->o.topic = pp->topic;
	pp->o.source = NULL;
	struct sb_metric *pub = sb_metrics_counter(
	    "ingest_published_total", "Samples whose Kafka delivery report came back.", "result");
	pp->m_ok = sb_metric_with(pub, "ok");
	pp->m_err = sb_metric_with(pub, "error");
	pp->m_purged = sb_metric_with(pub, "purged");
	pp->m_retry = sb_metric_with(
	    sb_metrics_counter("ingest_publish_retries_total",
	                       "Times the producer's queue was full and a sample waited.", NULL));
	pp->m_latency = sb_metric_with(
	    sb_metrics_histogram("ingest_ack_latency_seconds",
	                         "From receipt of a sample to Kafka's acknowledgement (acks=all).",
	                         NULL, lat_buckets, sizeof(lat_buckets) / sizeof(lat_buckets[0])));
	pp->m_paused = sb_metric_with(sb_metrics_gauge(
	    "ingest_paused", "1 while the queue is above its high watermark.", NULL));
	pp->m_pauses = sb_metric_with(sb_metrics_counter(
	    "ingest_pauses_total", "Times the queue reached its high watermark.", NULL));
	sb_metrics_gauge_fn("ingest_queue_depth",
	                    "Samples accepted and not yet acknowledged by Kafka.",
	                    ing_pipe_depth_fn, pp);
	if (pthread_create(&pp->th, NULL, ing_pipe_main, pp) != 0) {
		sb_metrics_gauge_fn_remove("ingest_queue_depth");
		pthread_mutex_destroy(&pp->mu);
		pthread_cond_destroy(&pp->cv);
		free(pp);
		return SB_EIO;
	}
	*out = pp;
	return 0;
}

int
ing_pipe_submit(struct ing_pipe *pp, struct ing_event **evs, size_t n, bool force)
{
	if (n == 0)
		return 0;
	bool paused_now = false;
	pthread_mutex_lock(&pp->mu);
	if (pp->stopping) {
		pthread_mutex_unlock(&pp->mu);
		return SB_ECLOSED;
	}
	long long d = atomic_load(&pp->depth);
	if (!force && (pp->paused || d + (long long)n > pp->o.capacity)) {
		pthread_mutex_unlock(&pp->mu);
		return SB_EBUSY;
	}
	for (size_t i = 0; i < n; i++) {
		evs[i]->pipe = pp;
		evs[i]->next = NULL;
		if (pp->tail)
			pp->tail->next = evs[i];
		else
			pp->head = evs[i];
		pp->tail = evs[i];
	}
	d = atomic_fetch_add(&pp->depth, (long long)n) + (long long)n;
	if (!pp->paused && d >= pp->o.high) {
		pp->paused = true;
		paused_now = true;
		/* under the lock: a resume on the producer's thread cannot be overtaken by it */
		sb_series_set(pp->m_paused, 1);
	}
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
	if (paused_now) {
		sb_series_inc(pp->m_pauses);
		sb_log(SB_LOG_WARN,
		       "ingest: queue depth %lld at the high watermark: subscription paused, test "
		       "endpoint answers 429",
		       d);
	}
	return 0;
}

long long
ing_pipe_stop(struct ing_pipe *pp, int grace_ms)
{
	int64_t t0 = sb_time_mono_ms();
	pthread_mutex_lock(&pp->mu);
	pp->stopping = true;
	pp->stop_deadline_ms = t0 + grace_ms;
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
	pthread_join(pp->th, NULL);
	int left = grace_ms - (int)(sb_time_mono_ms() - t0);
	if (sb_kafka_flush(pp->p, left > 0 ? left : 0) != 0)
		sb_log(SB_LOG_WARN,
		       "ingest: %lld samples still unacknowledged after the grace period",
		       atomic_load(&pp->depth));
	long long undelivered = atomic_load(&pp->depth) + atomic_load(&pp->lost);
	sb_metrics_gauge_fn_remove("ingest_queue_depth");
	/* Events still in librdkafka point at pp: the caller frees the producer (purging them
	 * through ing_pipe_dr) before freeing pp with ing_pipe_free. */
	return undelivered;
}

void
ing_pipe_free(struct ing_pipe *pp)
{
	if (!pp)
		return;
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->cv);
	free(pp);
}
