/* consume.c: the consumer pipeline. The events of sb.messages.v1 are handled in batches (up to
 * SB_NOTIFIER_BATCH_MAX, as many as are already fetched), and a batch goes through three
 * stages, each run by its own threads:
 *   1. poll: the consumer thread takes the batch's records, decodes them and numbers the batch;
 *   2. enqueue: one of SB_NOTIFIER_ENQUEUE_CONNS threads, each with its own database
 *      connection, queues the batch's webhook deliveries in one statement (idempotent);
 *      consecutive batches are queued in parallel, since their order does not matter there;
 *   3. publish: one thread takes the batches in their numbered order, publishes each to Redis in
 *      one round trip (deduplicated by ce_id, in order), and only then stores the batch's
 *      offsets, which librdkafka commits every SB_NOTIFIER_COMMIT_INTERVAL_MS, before
 *      partitions are revoked and at close.
 * So while one batch waits for PostgreSQL, the next ones are decoded and queued and the previous
 * one is published, and offsets are stored in poll order, by one thread.
 *
 * A step that fails (database or Redis down) is retried with backoff for the part of the batch
 * not yet done, and the publish stage waits for it: no offset of the batch is stored meanwhile,
 * nor any after it. A crash or restart redelivers the batch (and whatever was handled but not
 * yet committed) and loses nothing; the Redis dedupe mark makes a redelivered event publish
 * nothing again. At shutdown the batches in hand are finished if their steps succeed at once;
 * once one is given up, no later batch stores its offsets. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_span.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

/* Most bytes of event bodies in one webhook enqueue statement; a larger batch takes several. */
#define NTF_PG_CHUNK_BYTES (4u << 20)
/* Enqueue threads at most, and batches in the pipeline at once: one per thread and one waiting
 * in front of each stage. */
#define NTF_MAX_ENQUEUERS 8
#define NTF_MAX_BATCHES   (NTF_MAX_ENQUEUERS + 4)

enum ntf_outcome { NTF_PUBLISHED, NTF_DUPLICATE, NTF_IGNORED, NTF_INVALID };
static const char *const ntf_outcome_names[] = { "published", "duplicate", "ignored", "invalid" };

/* One consumed record and what handling it has reached. */
struct ntf_item {
	const char *type; /* metric label; static */
	enum ntf_outcome outcome;
	bool live;     /* has webhook deliveries to queue and messages to publish */
	bool pg_done;  /* its webhook deliveries are queued (or it has none) */
	bool pub_done; /* the publish script ran for it (outcome published or duplicate) */
	char ce_id[256];
	struct ntf_event ev;
	/* its span (sb_span_resume at publish): begun at decode, when the record had a context */
	bool traced;
	struct sb_trace_ctx span_ctx;
	uint8_t span_parent[8];
	int64_t span_start_ns;
};

/* A batch; its arrays are allocated once, for batch_max records. */
struct ntf_batch {
	rd_kafka_message_t **msgs;
	struct ntf_item *items;
	struct ntf_pub_req *reqs;
	size_t n;
	uint64_t seq;  /* poll order */
	bool given_up; /* at shutdown, before its webhook deliveries were queued */
};

/* A FIFO of batches between two stages (or of free batches). */
struct ntf_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ntf_batch *b[NTF_MAX_BATCHES];
	size_t head, n;
	bool closed; /* the stage that fills it has exited */
};

/* The batches the enqueue threads are done with, handed to the publish stage in poll order.
 * The batches in flight have consecutive seqs, fewer than NTF_MAX_BATCHES: slot seq % size. */
struct ntf_order {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ntf_batch *slot[NTF_MAX_BATCHES];
	uint64_t next; /* seq of the batch the publish stage takes next */
	int producers; /* enqueue threads still running */
};

/* One enqueue thread and its connection. */
struct ntf_enqueuer {
	struct ntf_pipeline *p;
	struct sb_pg *pg; /* st->cpg for the first, its own for the others */
	pthread_t th;
	bool started;
};

struct ntf_pipeline {
	struct ntf_state *st;
	struct ntf_batch batches[NTF_MAX_BATCHES];
	int nbatches;
	struct ntf_queue free_q, enqueue_q;
	struct ntf_order order;
	struct ntf_enqueuer enq[NTF_MAX_ENQUEUERS];
	int nenq;
	pthread_t poll_th, publish_th;
	bool poll_started, publish_started;
	uint64_t next_seq; /* the poll thread's */
	/* Set when a batch was given up at shutdown: no later batch may store its offsets (that
	 * would commit past the abandoned events). */
	atomic_bool abandoned;
};

/* --- queues ---------------------------------------------------------------------------------- */

static void
ntf_queue_init(struct ntf_queue *q)
{
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
}

static void
ntf_queue_destroy(struct ntf_queue *q)
{
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

static void
ntf_queue_put(struct ntf_queue *q, struct ntf_batch *b)
{
	pthread_mutex_lock(&q->mu);
	q->b[(q->head + q->n++) % NTF_MAX_BATCHES] = b; /* never full: fewer batches exist */
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void
ntf_queue_close(struct ntf_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* ntf_queue_take waits for the next batch. Returns NULL when the queue is empty and closed,
 * or, when stop is not NULL, as soon as *stop is set. */
static struct ntf_batch *
ntf_queue_take(struct ntf_queue *q, const atomic_bool *stop)
{
	struct ntf_batch *b = NULL;
	pthread_mutex_lock(&q->mu);
	while (q->n == 0 && !q->closed && !(stop != NULL && atomic_load(stop)))
		pthread_cond_wait(&q->cv, &q->mu);
	if (q->n > 0 && !(stop != NULL && atomic_load(stop))) {
		b = q->b[q->head];
		q->head = (q->head + 1) % NTF_MAX_BATCHES;
		q->n--;
	}
	pthread_mutex_unlock(&q->mu);
	return b;
}

static void
ntf_queue_wake(struct ntf_queue *q)
{
	pthread_mutex_lock(&q->mu);
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* ntf_order_put hands b (done with its webhook deliveries, or given up) to the publish stage. */
static void
ntf_order_put(struct ntf_order *o, struct ntf_batch *b)
{
	pthread_mutex_lock(&o->mu);
	o->slot[b->seq % NTF_MAX_BATCHES] = b;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* ntf_order_done says that one enqueue thread (all = every one) has exited. */
static void
ntf_order_done(struct ntf_order *o, bool all)
{
	pthread_mutex_lock(&o->mu);
	o->producers = all ? 0 : o->producers - 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* ntf_order_take waits for the batch that comes next in poll order. Returns NULL when it is
 * not there and every enqueue thread has exited. */
static struct ntf_batch *
ntf_order_take(struct ntf_order *o)
{
	struct ntf_batch *b = NULL;
	size_t i;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		i = o->next % NTF_MAX_BATCHES;
		if (o->slot[i] != NULL && o->slot[i]->seq == o->next)
			break;
		if (o->producers <= 0)
			goto done;
		pthread_cond_wait(&o->cv, &o->mu);
	}
	b = o->slot[i];
	o->slot[i] = NULL;
	o->next++;
done:
	pthread_mutex_unlock(&o->mu);
	return b;
}

/* --- helpers --------------------------------------------------------------------------------- */

static int64_t
ntf_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ntf_sleep_ms sleeps ms, waking early when the service stops. */
static void
ntf_sleep_ms(struct ntf_state *st, int ms)
{
	while (ms > 0 && !atomic_load(&st->stopping)) {
		int step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* ntf_update_lag sets the lag gauge: high watermark minus position over the assignment, from
 * librdkafka's cached watermarks (no broker round trip). */
static void
ntf_update_lag(struct ntf_state *st)
{
	rd_kafka_t *rk = sb_kafka_consumer_handle(st->kc);
	rd_kafka_topic_partition_list_t *parts = NULL;
	long long lag = 0;
	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	rd_kafka_position(rk, parts);
	for (int i = 0; i < parts->cnt; i++) {
		int64_t lo = -1, hi = -1;
		rd_kafka_topic_partition_t *p = &parts->elems[i];
		if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) != 0 ||
		    hi < 0)
			continue;
		int64_t pos = p->offset >= 0 ? p->offset : lo;
		if (pos >= 0 && hi > pos)
			lag += hi - pos;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	atomic_store(&st->lag, lag);
}

/* ntf_batch_clear frees what the batch's items hold and destroys its records. */
static void
ntf_batch_clear(struct ntf_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		ntf_event_free(&b->items[i].ev);
		rd_kafka_message_destroy(b->msgs[i]);
	}
	b->n = 0;
}

/* --- stage 1: decode ------------------------------------------------------------------------- */

/* ntf_item_prepare reads the record's CloudEvents headers and decodes its payload. A record
 * the notifier skips for good (no ce_id or ce_type, a payload that does not decode, a type it
 * does not handle) is prepared with live false. Returns 0, or SB_ENOMEM (retry). */
static int
ntf_item_prepare(struct ntf_item *it, const rd_kafka_message_t *msg)
{
	char ce_type[256], ce_time[64];
	int rv;

	memset(it, 0, sizeof(*it));
	it->type = "unknown";
	it->outcome = NTF_INVALID;
	if (sb_kafka_header(msg, "ce_id", it->ce_id, sizeof(it->ce_id)) <= 0 ||
	    sb_kafka_header(msg, "ce_type", ce_type, sizeof(ce_type)) <= 0) {
		sb_log_kv(SB_LOG_ERROR, "event without ce_id or ce_type skipped", "topic",
		          rd_kafka_topic_name(msg->rkt), NULL);
		return 0;
	}
	if (sb_kafka_header(msg, "ce_time", ce_time, sizeof(ce_time)) < 0)
		ce_time[0] = '\0';
	/* the notifier's span: a child of the record's (the relay's), handed on in the frames */
	char tp_in[SB_TRACEPARENT_LEN + 8], tp[SB_TRACEPARENT_LEN + 1] = "";
	if (sb_kafka_header(msg, "traceparent", tp_in, sizeof(tp_in)) > 0) {
		struct sb_span span;
		sb_span_start_tp(&span, "notifier", SB_SPAN_CONSUMER, tp_in);
		it->traced = span.has_parent;
		it->span_ctx = span.ctx;
		memcpy(it->span_parent, span.parent, sizeof(it->span_parent));
		it->span_start_ns = span.start_ns;
		if (it->traced)
			sb_span_traceparent(&span, tp);
	}
	rv = ntf_event_build(ce_type, it->ce_id, ce_time, tp, msg->payload, msg->len, &it->ev);
	if (rv == SB_ENOTFOUND) {
		sb_log_kv(SB_LOG_DEBUG, "event type not handled", "ce_type", ce_type, "ce_id",
		          it->ce_id, NULL);
		it->type = "other";
		it->outcome = NTF_IGNORED;
		return 0;
	}
	if (rv == SB_EPROTO) {
		sb_log_kv(SB_LOG_ERROR, "malformed event skipped", "ce_type", ce_type, "ce_id",
		          it->ce_id, NULL);
		return 0;
	}
	if (rv != 0)
		return rv;
	it->type = it->ev.type;
	it->live = true;
	it->pg_done = it->ev.tenant_id == NULL || it->ev.tenant_id[0] == '\0';
	return 0;
}

/* ntf_batch_decode decodes the n records in b->msgs, retrying (out of memory) with backoff.
 * Returns 0, or SB_ECLOSED when the service stops first. */
static int
ntf_batch_decode(struct ntf_state *st, struct ntf_batch *b, size_t n, struct sb_backoff *bo)
{
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		int rv;
		while ((rv = ntf_item_prepare(&b->items[i], b->msgs[i])) != 0) {
			sb_log_kv(SB_LOG_WARN, "cannot decode event; retrying", "error",
			          sb_strerror(rv), NULL);
			sb_series_inc(st->m_retries);
			if (atomic_load(&st->stopping)) {
				for (size_t j = 0; j < i; j++)
					ntf_event_free(&b->items[j].ev);
				for (size_t j = i; j < n; j++)
					memset(&b->items[j], 0, sizeof(b->items[j]));
				return SB_ECLOSED;
			}
			ntf_sleep_ms(st, (int)sb_backoff_next(bo) + 10);
		}
	}
	sb_backoff_reset(bo);
	return 0;
}

static void *
ntf_poll_main(void *arg)
{
	struct ntf_pipeline *p = arg;
	struct ntf_state *st = p->st;
	size_t max = (size_t)st->cfg->batch_max;
	struct sb_backoff bo;
	int64_t next_lag = 0;

	sb_backoff_init(&bo, 100, 5000);
	while (!atomic_load(&st->stopping)) {
		struct ntf_batch *b = ntf_queue_take(&p->free_q, &st->stopping);
		if (b == NULL)
			break;
		size_t n = 0;
		while (n == 0 && !atomic_load(&st->stopping)) {
			n = sb_kafka_consumer_poll_batch(st->kc, b->msgs, max, 200,
			                                 (int)st->cfg->batch_wait_ms);
			if (sb_time_mono_ms() >= next_lag) {
				ntf_update_lag(st);
				next_lag = sb_time_mono_ms() + 1000;
			}
		}
		int64_t t0 = ntf_mono_us();
		if (n > 0 && ntf_batch_decode(st, b, n, &bo) != 0) {
			/* Given up undecoded at shutdown: nothing after it may be stored. */
			atomic_store(&p->abandoned, true);
			ntf_batch_clear(b);
		}
		if (b->n > 0) {
			sb_series_observe(st->m_stage[0], (double)(ntf_mono_us() - t0) / 1e6);
			b->seq = p->next_seq++;
			b->given_up = false;
		}
		ntf_queue_put(b->n > 0 ? &p->enqueue_q : &p->free_q, b);
	}
	ntf_queue_close(&p->enqueue_q);
	return NULL;
}

/* --- stage 2: webhook deliveries ------------------------------------------------------------- */

/* ntf_batch_enqueue queues the webhook deliveries of the batch's events not yet queued, in one
 * statement per NTF_PG_CHUNK_BYTES of bodies. Returns 0 when all are queued, or the error of
 * the statement that failed (the events before it stay queued). */
static int
ntf_batch_enqueue(struct ntf_state *st, void *ctx, struct ntf_batch *b)
{
	struct sb_pg *pg = ctx;
	struct sb_buf a[4] = { SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT };
	size_t i = 0;
	int rv = 0;

	while (rv == 0 && i < b->n) {
		size_t first = i, cnt = 0;
		for (int k = 0; k < 4; k++)
			sb_buf_reset(&a[k]);
		for (; i < b->n && a[2].len < NTF_PG_CHUNK_BYTES; i++) {
			struct ntf_item *it = &b->items[i];
			if (!it->live || it->pg_done)
				continue;
			if (sb_pg_array_add(&a[0], it->ce_id) != 0 ||
			    sb_pg_array_add(&a[1], it->ev.type) ||
			    sb_pg_array_add(&a[2], it->ev.webhook_body) ||
			    sb_pg_array_add(&a[3], it->ev.tenant_id)) {
				rv = SB_ENOMEM;
				break;
			}
			cnt++;
		}
		if (rv != 0 || cnt == 0)
			break;
		for (int k = 0; k < 4; k++)
			if (sb_pg_array_end(&a[k]) != 0)
				rv = SB_ENOMEM;
		if (rv != 0)
			break;
		const char *p[] = { a[0].data, a[1].data, a[2].data, a[3].data };
		PGresult *res = NULL;
		if ((rv = sb_pg_exec_prepared(pg, "wh_enqueue_batch", 4, p, &res)) != 0) {
			sb_log_kv(SB_LOG_WARN, "cannot queue webhook deliveries; retrying", "error",
			          sb_pg_errmsg(pg), NULL);
			break;
		}
		if (atoi(PQcmdTuples(res)) > 0)
			ntf_wake_webhooks(st);
		PQclear(res);
		for (size_t j = first; j < i; j++)
			b->items[j].pg_done = true;
	}
	for (int k = 0; k < 4; k++)
		sb_buf_free(&a[k]);
	return rv;
}

/* --- stage 3: publish and store -------------------------------------------------------------- */

/* ntf_batch_publish publishes the batch's events not yet published, in one round trip. */
static int
ntf_batch_publish(struct ntf_state *st, void *ctx, struct ntf_batch *b)
{
	size_t n = 0;
	int rv;
	(void)ctx;

	/* reqs holds the live items not yet done, in batch order: a retry sends only those. */
	for (size_t i = 0; i < b->n; i++) {
		struct ntf_item *it = &b->items[i];
		if (it->live && !it->pub_done)
			b->reqs[n++] = (struct ntf_pub_req){ .ce_id = it->ce_id, .ev = &it->ev };
	}
	rv = ntf_publish_batch(st->credis, b->reqs, n);
	for (size_t i = 0, r = 0; i < b->n && r < n; i++) {
		struct ntf_item *it = &b->items[i];
		if (!it->live || it->pub_done)
			continue;
		if (b->reqs[r].done) {
			it->pub_done = true;
			it->outcome = b->reqs[r].published ? NTF_PUBLISHED : NTF_DUPLICATE;
			if (it->traced) {
				struct sb_span span;
				sb_span_resume(&span, "notifier", SB_SPAN_CONSUMER, &it->span_ctx,
				               it->span_parent, it->span_start_ns);
				sb_span_attr(&span, "notifier.event", it->ev.type);
				sb_span_attr(&span, "notifier.outcome",
				             b->reqs[r].published ? "published" : "duplicate");
				sb_span_end(&span);
			}
		}
		r++;
	}
	if (rv != 0)
		sb_log_kv(SB_LOG_WARN, "cannot publish to Redis; retrying", "error",
		          sb_redis_errmsg(st->credis)[0] ? sb_redis_errmsg(st->credis)
		                                         : sb_strerror(rv),
		          NULL);
	return rv;
}

/* ntf_batch_count adds the batch's outcomes to notifier_events_total, one series update per
 * distinct (type, outcome). */
static void
ntf_batch_count(struct ntf_state *st, const struct ntf_batch *b)
{
	struct ntf_tally {
		const char *type;
		enum ntf_outcome o;
		double n;
	} tally[16];
	size_t nt = 0;
	struct sb_metric *m = sb_metrics_counter(
	    "notifier_events_total", "Events consumed, by type and outcome.", "type,result");

	for (size_t i = 0; i < b->n; i++) {
		const struct ntf_item *it = &b->items[i];
		size_t k = 0;
		while (k < nt &&
		       !(tally[k].o == it->outcome && strcmp(tally[k].type, it->type) == 0))
			k++;
		if (k == nt) {
			if (nt == sizeof(tally) / sizeof(tally[0])) {
				sb_series_inc(
				    sb_metric_with(m, it->type, ntf_outcome_names[it->outcome]));
				continue;
			}
			tally[nt++] = (struct ntf_tally){ it->type, it->outcome, 0 };
		}
		tally[k].n++;
	}
	for (size_t k = 0; k < nt; k++)
		sb_series_add(sb_metric_with(m, tally[k].type, ntf_outcome_names[tally[k].o]),
		              tally[k].n);
	sb_series_observe(st->m_batch, (double)b->n);
}

/* ntf_stage_run runs step on b until it succeeds, retrying with backoff. At shutdown a batch
 * whose step fails is given up (returns false) and, from then on, so is every later one. */
static bool
ntf_stage_run(struct ntf_pipeline *p, struct ntf_batch *b,
              int (*step)(struct ntf_state *, void *, struct ntf_batch *), void *ctx,
              struct sb_backoff *bo, struct sb_series *timing)
{
	struct ntf_state *st = p->st;
	int64_t t0 = ntf_mono_us();
	if (atomic_load(&p->abandoned))
		return false;
	while (step(st, ctx, b) != 0) {
		sb_series_inc(st->m_retries);
		if (atomic_load(&st->stopping)) {
			sb_log(SB_LOG_WARN, "stopping with a batch not handled; it is redelivered "
			                    "at the next start");
			atomic_store(&p->abandoned, true);
			return false;
		}
		ntf_sleep_ms(st, (int)sb_backoff_next(bo) + 10);
	}
	sb_backoff_reset(bo);
	sb_series_observe(timing, (double)(ntf_mono_us() - t0) / 1e6);
	return true;
}

static void *
ntf_enqueue_main(void *arg)
{
	struct ntf_enqueuer *e = arg;
	struct ntf_pipeline *p = e->p;
	struct ntf_batch *b;
	struct sb_backoff bo;

	sb_backoff_init(&bo, 100, 5000);
	while ((b = ntf_queue_take(&p->enqueue_q, NULL)) != NULL) {
		if (!ntf_stage_run(p, b, ntf_batch_enqueue, e->pg, &bo, p->st->m_stage[1]))
			b->given_up = true;
		ntf_order_put(&p->order, b);
	}
	ntf_order_done(&p->order, false);
	return NULL;
}

static void *
ntf_publish_main(void *arg)
{
	struct ntf_pipeline *p = arg;
	struct ntf_state *st = p->st;
	struct ntf_batch *b;
	struct sb_backoff bo;

	sb_backoff_init(&bo, 100, 5000);
	while ((b = ntf_order_take(&p->order)) != NULL) {
		/* Every record of the batch handled, every batch before it too: only now may its
		 * offsets be committed. */
		if (!b->given_up &&
		    ntf_stage_run(p, b, ntf_batch_publish, NULL, &bo, st->m_stage[2])) {
			if (sb_kafka_consumer_store(st->kc, b->msgs, b->n) != 0)
				sb_log(SB_LOG_INFO,
				       "some offsets of a handled batch were not stored "
				       "(partitions revoked meanwhile); their events are "
				       "delivered again");
			ntf_batch_count(st, b);
		}
		ntf_batch_clear(b);
		ntf_queue_put(&p->free_q, b);
	}
	return NULL;
}

/* --- start and stop -------------------------------------------------------------------------- */

static void
ntf_pipeline_free(struct ntf_pipeline *p)
{
	for (int i = 0; i < NTF_MAX_BATCHES; i++) {
		struct ntf_batch *b = &p->batches[i];
		if (b->msgs != NULL)
			ntf_batch_clear(b);
		free(b->msgs);
		free(b->items);
		free(b->reqs);
	}
	for (int i = 1; i < p->nenq; i++)
		sb_pg_close(p->enq[i].pg);
	ntf_queue_destroy(&p->free_q);
	ntf_queue_destroy(&p->enqueue_q);
	pthread_cond_destroy(&p->order.cv);
	pthread_mutex_destroy(&p->order.mu);
	free(p);
}

void
ntf_consumer_stop(struct ntf_state *st)
{
	struct ntf_pipeline *p = st->pipe;
	if (p == NULL)
		return;
	/* st->stopping is set: the poll stage exits, closing its queue; the enqueue threads finish
	 * what they hold (or give it up) and exit, then the publish stage. */
	ntf_queue_wake(&p->free_q);
	if (p->poll_started)
		pthread_join(p->poll_th, NULL);
	else
		ntf_queue_close(&p->enqueue_q);
	for (int i = 0; i < p->nenq; i++)
		if (p->enq[i].started)
			pthread_join(p->enq[i].th, NULL);
	ntf_order_done(&p->order, true);
	if (p->publish_started)
		pthread_join(p->publish_th, NULL);
	ntf_pipeline_free(p);
	st->pipe = NULL;
}

int
ntf_consumer_start(struct ntf_state *st)
{
	size_t max = (size_t)st->cfg->batch_max;
	struct ntf_pipeline *p = calloc(1, sizeof(*p));
	int rv;

	if (p == NULL)
		return SB_ENOMEM;
	p->st = st;
	p->nenq = (int)st->cfg->enqueue_conns;
	p->nbatches = p->nenq + 4;
	ntf_queue_init(&p->free_q);
	ntf_queue_init(&p->enqueue_q);
	pthread_mutex_init(&p->order.mu, NULL);
	pthread_cond_init(&p->order.cv, NULL);
	p->order.producers = p->nenq;
	st->pipe = p;
	for (int i = 0; i < p->nbatches; i++) {
		struct ntf_batch *b = &p->batches[i];
		b->msgs = calloc(max, sizeof(*b->msgs));
		b->items = calloc(max, sizeof(*b->items));
		b->reqs = calloc(max, sizeof(*b->reqs));
		if (b->msgs == NULL || b->items == NULL || b->reqs == NULL)
			return SB_ENOMEM; /* the caller stops: ntf_consumer_stop frees */
		ntf_queue_put(&p->free_q, b);
	}
	for (int i = 0; i < p->nenq; i++) {
		p->enq[i].p = p;
		p->enq[i].pg = i == 0 ? st->cpg : NULL;
		if (i > 0 && (rv = ntf_open_pg(st->cfg, &p->enq[i].pg)) != 0)
			return rv;
	}
	/* From the last stage back, so that no stage hands work to one that does not run. */
	if (pthread_create(&p->publish_th, NULL, ntf_publish_main, p) != 0)
		return SB_EIO;
	p->publish_started = true;
	for (int i = 0; i < p->nenq; i++) {
		if (pthread_create(&p->enq[i].th, NULL, ntf_enqueue_main, &p->enq[i]) != 0)
			return SB_EIO;
		p->enq[i].started = true;
	}
	if (pthread_create(&p->poll_th, NULL, ntf_poll_main, p) != 0)
		return SB_EIO;
	p->poll_started = true;
	return 0;
}
