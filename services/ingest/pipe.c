/* pipe.c: the bounded queue between the receivers (subscriber, test endpoint) and Kafka, and
 * the producer thread that drains it.
 *
 * Depth counts every event accepted and not yet reported by Kafka (queued here or in
 * librdkafka's queue awaiting acks=all). Reaching the high watermark pauses: the test endpoint
 * is answered 429 and the subscriber stops reading its socket; falling to the low watermark
 * resumes (on_resume). Nothing accepted is dropped: a full librdkafka queue makes the producer
 * thread wait and retry the same event (order per item is kept: one thread produces, in
 * order, and the idempotent producer keeps order per partition through its own retries).
 *
 * An accepted sample (202, or read from the feed) stays in the pipe until Kafka acknowledges
 * it. A delivery report with an error is not the end of it: unless the broker refused the
 * record itself for good (too large, invalid: retrying cannot help; counted and logged), the
 * sample goes back into the pipe (ing_pipe_requeue) and is handed to the producer again after a
 * backoff, ahead of newer samples. A producer that hit a fatal error (the idempotent
 * producer's sequence desynchronization, for one) accepts nothing more and fails what it holds:
 * the pipe replaces it with a new one (o.new_producer), purges the old one (its samples come
 * back through their reports) and keeps the old instance until stop, since others may still
 * hold its handle. */
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
	struct ing_event *head, *tail;   /* accepted, not yet handed to the producer */
	struct ing_event *rhead, *rtail; /* failed deliveries to hand again, in report order */
	int64_t retry_at_ms;             /* monotonic: when the failed ones go again */
	atomic_int retry_backoff_ms;     /* reset by a success (without the lock) */
	atomic_llong depth;
	bool paused;
	bool stopping;
	bool thread_done;         /* the producer thread has exited: requeued ones stay put */
	int64_t stop_deadline_ms; /* monotonic; the producer thread gives up after it */
	struct sb_kafka_producer *p;
	struct sb_kafka_producer *dead[8]; /* replaced after a fatal error; freed at stop */
	int ndead;
	struct ing_pipe_opts o;
	char topic[256];
	char ce_source[160];
	pthread_t th;
	atomic_llong lost; /* given up at shutdown */
	struct sb_series *m_ok, *m_err, *m_purged, *m_requeued, *m_retry, *m_latency, *m_paused,
	    *m_pauses, *m_replaced, *m_wait;
};

#define ING_RETRY_MIN_MS 100
#define ING_RETRY_MAX_MS 5000

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

struct sb_kafka_producer *
ing_pipe_producer(struct ing_pipe *pp)
{
	pthread_mutex_lock(&pp->mu);
	struct sb_kafka_producer *p = pp->p;
	pthread_mutex_unlock(&pp->mu);
	return p;
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

/* ing_pipe_requeue puts e (still counted in the depth) on the list of failed deliveries; the
 * producer thread hands it again after the backoff, which doubles while failures go on. */
static void
ing_pipe_requeue(struct ing_pipe *pp, struct ing_event *e)
{
	e->next = NULL;
	pthread_mutex_lock(&pp->mu);
	if (pp->rtail)
		pp->rtail->next = e;
	else
		pp->rhead = e;
	pp->rtail = e;
	if (pp->rhead == e) {
		int b = atomic_load(&pp->retry_backoff_ms);
		pp->retry_at_ms = sb_time_mono_ms() + b;
		atomic_store(&pp->retry_backoff_ms,
		             b * 2 > ING_RETRY_MAX_MS ? ING_RETRY_MAX_MS : b * 2);
	}
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
}

/* ing_pipe_refused_for_good tells the broker's verdicts on the record itself, which no new
 * attempt can change. */
static bool
ing_pipe_refused_for_good(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return true;
	default:
		return false;
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
		if (atomic_load_explicit(&pp->retry_backoff_ms, memory_order_relaxed) !=
		    ING_RETRY_MIN_MS)
			atomic_store(&pp->retry_backoff_ms, ING_RETRY_MIN_MS);
	} else if (err != SB_ECLOSED && ing_pipe_refused_for_good(sb_kafka_dr_error())) {
		sb_series_inc(pp->m_err);
		sb_log(SB_LOG_ERROR, "ingest: sample %s of item %s refused by Kafka for good: %s",
		       e->event_id, e->item, errstr ? errstr : sb_strerror(err));
	} else {
		pthread_mutex_lock(&pp->mu);
		bool keep = !pp->thread_done;
		pthread_mutex_unlock(&pp->mu);
		if (keep) {
			/* Timed out, failed with the producer (fatal), purged from a replaced
			 * producer, or any error a new attempt may overcome: it goes again. */
			sb_series_inc(pp->m_requeued);
			sb_log(SB_LOG_WARN,
			       "ingest: delivery of sample %s of item %s failed (%s): sending it "
			       "again",
			       e->event_id, e->item, errstr ? errstr : sb_strerror(err));
			ing_pipe_requeue(pp, e);
			return;
		}
		/* at shutdown, after the producer thread ended: counted once, logged by the stop */
		sb_series_inc(pp->m_purged);
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

/* ing_pipe_replace swaps a producer that hit a fatal error for a new one and purges the old
 * one: what it held comes back through the reports (ing_pipe_dr requeues it). Returns true when
 * the pipe has a usable producer afterwards. */
static bool
ing_pipe_replace(struct ing_pipe *pp)
{
	char why[512] = "";
	rd_kafka_t *rk = sb_kafka_producer_handle(pp->p);
	rd_kafka_resp_err_t fe = rd_kafka_fatal_error(rk, why, sizeof(why));
	if (fe == RD_KAFKA_RESP_ERR_NO_ERROR)
		return true;
	if (!pp->o.new_producer || pp->ndead >= (int)(sizeof(pp->dead) / sizeof(pp->dead[0]))) {
		sb_log(SB_LOG_ERROR,
		       "ingest: the Kafka producer failed for good (%s) and cannot be "
		       "replaced: samples wait in the queue",
		       why);
		return false;
	}
	struct sb_kafka_producer *np = NULL;
	if (pp->o.new_producer(pp->o.producer_arg, &np) != 0) {
		sb_log(SB_LOG_ERROR,
		       "ingest: cannot create a Kafka producer to replace the failed one");
		return false;
	}
	sb_log(SB_LOG_ERROR,
	       "ingest: the Kafka producer failed for good (%s: %s): replaced by a new one, its "
	       "unacknowledged samples are sent again",
	       rd_kafka_err2name(fe), why);
	sb_series_inc(pp->m_replaced);
	pthread_mutex_lock(&pp->mu);
	struct sb_kafka_producer *old = pp->p;
	pp->dead[pp->ndead++] = old;
	pp->p = np;
	pthread_mutex_unlock(&pp->mu);
	/* The old producer's poll thread serves the purge reports (requeued). */
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	return true;
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
		if (rc == 0) {
			sb_series_observe(pp->m_wait,
			                  (double)(sb_time_mono_ms() - e->recv_mono_ms) / 1000.0);
			return true;
		}
		if (rc == SB_EINVAL || rc == SB_ENOMEM) {
			/* a sample that can never be produced (a CloudEvents field it lacks) */
			sb_series_inc(pp->m_err);
			sb_log(SB_LOG_ERROR,
			       "ingest: sample %s of item %s refused by the producer: %s",
			       e->event_id, e->item, sb_strerror(rc));
			ing_event_free(e);
			ing_pipe_done(pp);
			return true;
		}
		if (rc == SB_EBUSY) {
			sb_series_inc(pp->m_retry);
		} else if (ing_pipe_replace(pp)) {
			continue; /* a new producer: try it at once */
		}
		pthread_mutex_lock(&pp->mu);
		bool late = pp->stopping && sb_time_mono_ms() > pp->stop_deadline_ms;
		pthread_mutex_unlock(&pp->mu);
		if (late) {
			ing_event_free(e);
			atomic_fetch_add(&pp->lost, 1);
			ing_pipe_done(pp);
			return false;
		}
		ing_sleep_ms(rc == SB_EBUSY ? 2 : 100);
	}
}

static void
ing_pipe_free_list(struct ing_pipe *pp, struct ing_event *list)
{
	while (list) {
		struct ing_event *e = list;
		list = e->next;
		ing_event_free(e);
		atomic_fetch_add(&pp->lost, 1);
		ing_pipe_done(pp);
	}
}

static void *
ing_pipe_main(void *arg)
{
	struct ing_pipe *pp = arg;
	pthread_mutex_lock(&pp->mu);
	for (;;) {
		int64_t now = sb_time_mono_ms();
		bool retry_due = pp->rhead && now >= pp->retry_at_ms;
		if (pp->stopping && ((!pp->head && !pp->rhead && atomic_load(&pp->depth) == 0) ||
		                     now > pp->stop_deadline_ms))
			break;
		if (!pp->head && !retry_due) {
			/* wait for samples, the retry time, or (stopping) the last reports */
			int64_t until =
			    pp->rhead ? pp->retry_at_ms : now + (pp->stopping ? 20 : 1000);
			if (pp->stopping && until > pp->stop_deadline_ms)
				until = pp->stop_deadline_ms + 1;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = until - now;
			if (wait < 1)
				wait = 1;
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&pp->cv, &pp->mu, &ts);
			continue;
		}
		/* Failed deliveries first (they were accepted before what is queued now). */
		struct ing_event *list = NULL;
		if (retry_due) {
			list = pp->rhead;
			pp->rtail->next = pp->head;
			pp->rhead = pp->rtail = NULL;
		} else {
			list = pp->head;
		}
		pp->head = pp->tail = NULL;
		pthread_mutex_unlock(&pp->mu);
		bool alive = true;
		while (list) {
			struct ing_event *e = list;
			list = e->next;
			e->next = NULL;
			if (alive)
				alive = ing_pipe_produce(pp, e);
			else
				ing_pipe_free_list(pp, e);
		}
		pthread_mutex_lock(&pp->mu);
	}
	/* Past the deadline: what was never handed over, or came back, is given up. */
	struct ing_event *q = pp->head, *r = pp->rhead;
	pp->head = pp->tail = pp->rhead = pp->rtail = NULL;
	pp->thread_done = true;
	pthread_mutex_unlock(&pp->mu);
	ing_pipe_free_list(pp, q);
	ing_pipe_free_list(pp, r);
	return NULL;
}

int
ing_pipe_start(struct sb_kafka_producer *p, const struct ing_pipe_opts *o, struct ing_pipe **out)
{
	/* Fine around the 50 ms target (5 ms steps from 10 to 50 ms), so that a bucket's upper
	 * bound, which is what a p99 read from /metrics reports, is within 5 ms of the truth. */
	static const double lat_buckets[] = { 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
		                              0.015, 0.02,  0.025, 0.03,  0.035, 0.04,   0.045,
		                              0.05,  0.06,  0.075, 0.1,   0.15,  0.2,    0.3,
		                              0.5,   1,     2.5,   5,     10,    30 };
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
	pp->m_requeued = sb_metric_with(pub, "requeued");
	pp->m_replaced = sb_metric_with(sb_metrics_counter(
	    "ingest_producer_replacements_total",
	    "Kafka producers replaced after a fatal error (their samples sent again).", NULL));
	atomic_init(&pp->retry_backoff_ms, ING_RETRY_MIN_MS);
	pp->m_retry = sb_metric_with(
	    sb_metrics_counter("ingest_publish_retries_total",
	                       "Times the producer's queue was full and a sample waited.", NULL));
	pp->m_latency = sb_metric_with(
	    sb_metrics_histogram("ingest_ack_latency_seconds",
	                         "From receipt of a sample to Kafka's acknowledgement (acks=all).",
	                         NULL, lat_buckets, sizeof(lat_buckets) / sizeof(lat_buckets[0])));
	pp->m_wait = sb_metric_with(sb_metrics_histogram(
	    "ingest_queue_wait_seconds",
	    "From receipt of a sample to its hand-over to the Kafka producer (the pipe's share of "
	    "receive→ack).",
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
	/* Producers replaced after a fatal error were purged then; whatever they still report
	 * now is counted as purged (the thread is done). */
	for (int i = 0; i < pp->ndead; i++)
		sb_kafka_producer_free(pp->dead[i]);
	pp->ndead = 0;
	long long undelivered = atomic_load(&pp->depth) + atomic_load(&pp->lost);
	sb_metrics_gauge_fn_remove("ingest_queue_depth");
	/* Events still in librdkafka point at pp: the caller frees the producer
	 * (ing_pipe_producer: the current one, purging them through ing_pipe_dr) before freeing
	 * pp with ing_pipe_free. */
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
