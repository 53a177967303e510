/* relay.c: the relay thread, an explicit state machine. It keeps the session and the leases,
 * selects the unrelayed rows of the held shards (each shard's rows in id order), produces them,
 * waits for their delivery reports and marks the acknowledged ones relayed; when idle it waits
 * for NOTIFY sb_outbox or the poll interval.
 *
 * Order per aggregate: rows of one aggregate share a shard and a partition; a shard is read
 * only by its lease holder, in id order. Up to SB_OUTBOX_PIPELINE batches are in flight at
 * once, but never two with rows of the same shard: a shard's next batch is selected only after
 * its previous batch's reports are in and its rows are marked. When a row cannot be produced
 * (queue full, refused), the later rows of its aggregate in the batch are held back, so they
 * never overtake it. Leases change, and the session is re-made, only with no batch in flight.
 * Rows are never skipped by a high-water mark: each select takes whatever is still
 * unrelayed, so a row whose transaction committed late is found by the next one.
 *
 * The machine (outbox.h's relay section has the same table, relay_test.c a test per row):
 * each state's action below does the I/O and reports an event; outbox_relay_next (relay_sm.c,
 * pure) picks the next state from the state, the event and the inputs.
 *
 *   state           action                                 event: next state
 *   START           -                                      choose
 *   MAINTAIN        session (if new), leases, lag, GC      DB_ERROR: BACKOFF_DB; DONE: rules 5-7
 *   SELECT          select a batch of free held shards     ROWS: PRODUCE
 *                                                          EMPTY: FINISH if a batch is in
 *                                                            flight, else WAIT min(poll, maint)
 *                                                          DB_ERROR: BACKOFF_DB if none is in
 *                                                            flight, else trouble, choose
 *                                                          SESSION_LOST: trouble, choose
 *   PRODUCE         produce it: one more batch in flight   choose
 *   FINISH          await, mark, DLQ the oldest batch      TROUBLE, DB_ERROR: trouble, choose;
 *                                                            DONE: choose
 *   LINGER, WAIT    wait for NOTIFY, wait_ms or stop       choose
 *   BACKOFF_DB      sleep the database back-off            choose
 *   BACKOFF_BROKER  sleep the broker back-off              choose
 *   STOPPED         release the leases, exit               -
 *
 *   choose, the first rule that holds:
 *   1. batches in flight and (stopping, trouble, pipeline full, maintenance due): FINISH, drain
 *   2. stopping: STOPPED
 *   3. trouble: BACKOFF_BROKER (trouble cleared)
 *   4. no batch in flight and (session new or lost, maintenance due): MAINTAIN
 *   5. no shard held: WAIT until maintenance
 *   6. lingering after a short batch: FINISH if a batch is in flight, else LINGER
 *   7. SELECT
 *
 * Timers: maintenance every SB_OUTBOX_LEASE_INTERVAL_MS (next_maint), garbage collection every
 * minute or every second while a backlog lasts (next_gc), the linger after a short batch
 * (next_select), and the poll interval of WAIT. */
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_span.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#define OUTBOX_GC_EVERY_MS 60000
#define OUTBOX_GC_CHUNK    1000

/* outbox_relay_on_dr records a delivery report (poll thread of the producer). */
static void
outbox_relay_on_dr(int err, const char *errstr, void *opaque)
{
	struct outbox_row *row = opaque;
	struct outbox *o = row->o;

	row->err = err;
	if (err == 0) {
		row->state = OUTBOX_ROW_OK;
	} else if (err == SB_EIO) {
		row->state = OUTBOX_ROW_FAILED; /* the broker refused this message */
		sb_series_inc(outbox_m.err_delivery);
	} else {
		row->state = OUTBOX_ROW_RETRY; /* timed out (cluster unreachable) or purged */
		sb_series_inc(outbox_m.err_transient);
	}
	if (err != 0)
		snprintf(row->errstr, sizeof(row->errstr), "delivery failed: %s",
		         errstr ? errstr : sb_strerror(err));
	pthread_mutex_lock(&o->mu);
	row->batch->inflight--;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* outbox_relay_sleep waits ms or until stopped. Returns false once stopped. */
static bool
outbox_relay_sleep(struct outbox *o, int64_t ms)
{
	struct pollfd p = { .fd = o->wake_fd, .events = POLLIN };
	if (atomic_load(&o->stop))
		return false;
	if (ms > 0)
		poll(&p, 1, (int)ms);
	return !atomic_load(&o->stop);
}

/* outbox_relay_drain_notifies reads pending notifications; true if any arrived. */
static bool
outbox_relay_drain_notifies(struct outbox *o)
{
	PGconn *c = sb_pg_conn(o->pg);
	PGnotify *n;
	bool any = false;

	if (c == NULL || !PQconsumeInput(c))
		return false;
	while ((n = PQnotifies(c)) != NULL) {
		any = true;
		PQfreemem(n);
	}
	return any;
}

/* outbox_relay_wait waits for a NOTIFY on our session, ms, or a stop. */
static void
outbox_relay_wait(struct outbox *o, int64_t ms)
{
	PGconn *c = sb_pg_conn(o->pg);
	struct pollfd p[2] = { { .fd = o->wake_fd, .events = POLLIN }, { .fd = -1 } };
	int64_t end = sb_time_mono_ms() + ms;

	if (outbox_relay_drain_notifies(o))
		return;
	if (c != NULL && PQsocket(c) >= 0)
		p[1] = (struct pollfd){ .fd = PQsocket(c), .events = POLLIN };
	while (!atomic_load(&o->stop)) {
		int64_t left = end - sb_time_mono_ms();
		if (left <= 0)
			return;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			return;
		if (p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP)))
			if (outbox_relay_drain_notifies(o) || (p[1].revents & (POLLERR | POLLHUP)))
				return;
	}
}

/* outbox_relay_blocked tells whether aggregate agg was held back earlier in this batch. */
static bool
outbox_relay_blocked(const char **blocked, size_t nblocked, const char *agg)
{
	for (size_t i = 0; i < nblocked; i++)
		if (strcmp(blocked[i], agg) == 0)
			return true;
	return false;
}

/* outbox_relay_produce produces the rows of b, holding back an aggregate after its first row
 * that could not be queued. The reports are awaited by outbox_relay_await. */
static void
outbox_relay_produce(struct outbox *o, struct outbox_batch *b)
{
	const char **blocked = calloc(b->n, sizeof(*blocked));
	size_t nblocked = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct outbox_row *row = &b->rows[i];
		row->o = o;
		row->batch = b;
		row->state = OUTBOX_ROW_HELD;
		if (blocked == NULL || outbox_relay_blocked(blocked, nblocked, row->aggregate_id))
			continue;
		struct sb_cloudevent ce = {
			.id = row->event_id,
			.source = row->source,
			.type = row->event_type,
			.subject = row->subject,
			.time = row->created_at,
			.traceparent = row->traceparent,
		};
		/* The record carries the relay's span, a child of the row's (the send's) context.
		 */
		struct sb_span span;
		char tp[SB_TRACEPARENT_LEN + 1];
		bool traced = row->traceparent != NULL && row->traceparent[0] != '\0';
		if (traced) {
			sb_span_start_tp(&span, "outbox relay", SB_SPAN_PRODUCER, row->traceparent);
			sb_span_attr(&span, "messaging.destination.name", row->topic);
			sb_span_traceparent(&span, tp);
			ce.traceparent = tp;
		}
		int ret;
		pthread_mutex_lock(&o->mu);
		b->inflight++;
		pthread_mutex_unlock(&o->mu);
		row->state = OUTBOX_ROW_INFLIGHT;
		for (;;) {
			ret = sb_kafka_produce(o->producer, row->topic, row->aggregate_id,
			                       strlen(row->aggregate_id), row->payload,
			                       row->payload_len, &ce, outbox_relay_on_dr, row);
			if (ret != SB_EBUSY)
				break;
			/* Local queue full: let reports drain a little, then try again. */
			sb_series_inc(outbox_m.err_transient);
			usleep(10000);
		}
		if (traced) {
			if (ret != 0)
				sb_span_fail(&span, sb_strerror(ret));
			sb_span_end(&span);
		}
		if (ret == 0)
			continue;
		pthread_mutex_lock(&o->mu);
		b->inflight--;
		pthread_mutex_unlock(&o->mu);
		row->err = ret;
		if (ret == SB_EIO || ret == SB_EINVAL) {
			/* Refused before queueing: this message itself is the problem.
			 * sb_kafka_produce only logs librdkafka's reason; name the one a
			 * row can cause, its size. */
			size_t size = row->payload_len + strlen(row->aggregate_id);
			row->state = OUTBOX_ROW_FAILED;
			if (o->max_msg_bytes > 0 && size > (size_t)o->max_msg_bytes)
				snprintf(row->errstr, sizeof(row->errstr),
				         "produce refused: message too large (%zu bytes > "
				         "message.max.bytes %lld)",
				         size, o->max_msg_bytes);
			else
				snprintf(row->errstr, sizeof(row->errstr), "produce refused: %s",
				         sb_strerror(ret));
			sb_series_inc(outbox_m.err_produce);
		} else {
			row->state = OUTBOX_ROW_RETRY;
			snprintf(row->errstr, sizeof(row->errstr), "produce: %s", sb_strerror(ret));
			sb_series_inc(outbox_m.err_transient);
		}
		blocked[nblocked++] = row->aggregate_id;
	}
	free(blocked);
}

/* outbox_relay_lag refreshes the lag gauges: per table, and the oldest of them all. Returns 0
 * or the first sb_pg error (gauges of tables not read keep their value). */
static int
outbox_relay_lag(struct outbox *o)
{
	double max = 0;
	int ret;

	for (int k = 0; k < o->tables.n; k++) {
		double lag = 0;
		if ((ret = outbox_store_lag_seconds(o->pg, k, &lag)) != 0)
			return ret;
		sb_series_set(sb_metric_with(outbox_m.table_lag, o->tables.name[k]), lag);
		if (lag > max)
			max = lag;
	}
	sb_series_set(outbox_m.lag, max);
	return 0;
}

/* outbox_relay_await waits for every delivery report of b. */
static void
outbox_relay_await(struct outbox *o, struct outbox_batch *b)
{
	/* Every report comes: librdkafka fails a message after message.timeout.ms at the latest.
	 * While the cluster is unreachable that is long, so the lag gauge keeps being refreshed
	 * meanwhile (the leases are not touched in the middle of a batch). */
	pthread_mutex_lock(&o->mu);
	while (b->inflight > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += o->cfg->lease_interval_ms / 1000;
		ts.tv_nsec += (o->cfg->lease_interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&o->cv, &o->mu, &ts) == ETIMEDOUT && b->inflight > 0) {
			pthread_mutex_unlock(&o->mu);
			(void)outbox_relay_lag(o);
			pthread_mutex_lock(&o->mu);
		}
	}
	pthread_mutex_unlock(&o->mu);
}

/* outbox_relay_settle marks the acknowledged rows and deals with the failed ones. Returns
 * 0, or the database error; *trouble is set when something should be retried later. */
static int
outbox_relay_settle(struct outbox *o, struct outbox_batch *b, bool *trouble)
{
	long marked = 0;
	int ret;

	if ((ret = outbox_store_mark_relayed(o->pg, o->tables.n, b, &marked)) != 0)
		return ret;
	sb_series_add(outbox_m.relayed, (double)marked);
	*trouble = false;
	for (size_t i = 0; i < b->n; i++) {
		struct outbox_row *row = &b->rows[i];
		if (row->state == OUTBOX_ROW_RETRY)
			*trouble = true;
		if (row->state != OUTBOX_ROW_FAILED)
			continue;
		*trouble = true;
		bool dead = row->attempts + 1 >= o->cfg->max_attempts;
		if (dead) {
			int dret = outbox_dlq_send(o->dlq, row, row->errstr);
			if (dret != 0) {
				/* Try again later; the attempt still counts. */
				sb_log_kv(SB_LOG_WARN, "cannot send row to the dlq", "error",
				          sb_strerror(dret), NULL);
				dead = false;
			}
		}
		char idbuf[24];
		snprintf(idbuf, sizeof(idbuf), "%" PRId64, row->id);
		sb_log_kv(dead ? SB_LOG_ERROR : SB_LOG_WARN,
		          dead ? "row sent to the dlq" : "row refused by kafka; will retry", "id",
		          idbuf, "event_id", row->event_id, "error", row->errstr, NULL);
		if ((ret = outbox_store_record_error(o->pg, row, row->errstr, dead)) != 0)
			return ret;
		if (dead)
			sb_series_inc(outbox_m.dlq);
	}
	return 0;
}

/* outbox_relay_db_error counts a database error and forgets the leases if the session is
 * gone; returns how long to wait before trying again. */
static int64_t
outbox_relay_db_error(struct outbox *o, int ret, const char *what, struct sb_backoff *bo)
{
	sb_series_inc(outbox_m.err_db);
	if (ret == SB_EUNAVAIL || !sb_pg_connected(o->pg))
		outbox_lease_lost(o);
	sb_log_kv(SB_LOG_WARN, "outbox database error", "during", what, "error", sb_strerror(ret),
	          "detail", sb_pg_errmsg(o->pg), NULL);
	int64_t wait = sb_backoff_next(bo);
	int64_t ra = sb_pg_retry_after_ms(o->pg);
	return ra > wait ? ra : wait;
}

/* outbox_relay_maintain rebalances leases, refreshes the lag gauge and collects garbage. */
static int
outbox_relay_maintain(struct outbox *o, int64_t *next_gc)
{
	long deleted = 0;
	int ret;

	if ((ret = outbox_lease_balance(o)) != 0)
		return ret;
	if ((ret = outbox_relay_lag(o)) != 0)
		return ret;
	if (!o->cfg->gc || sb_time_mono_ms() < *next_gc)
		return 0;
	bool backlog = false;
	for (int k = 0; k < o->tables.n; k++) {
		for (int i = 0; i < 10 && !atomic_load(&o->stop); i++) {
			if ((ret = outbox_store_gc(o->pg, k, o->cfg->retention_s, OUTBOX_GC_CHUNK,
			                           &deleted)) != 0)
				return ret;
			sb_series_add(outbox_m.gc_deleted, (double)deleted);
			if (deleted < OUTBOX_GC_CHUNK)
				break;
		}
		if (deleted >= OUTBOX_GC_CHUNK)
			backlog = true;
	}
	/* Come back soon while there is a backlog, else in a minute. */
	*next_gc = sb_time_mono_ms() + (backlog ? 1000 : OUTBOX_GC_EVERY_MS);
	return 0;
}

/* outbox_relay_finish waits for the oldest batch in flight, marks it and frees it. Returns
 * 0 or the database error; *trouble is set when something should be retried later. */
static int
outbox_relay_finish(struct outbox *o, int *head, bool *trouble)
{
	struct outbox_batch *b = &o->batches[*head];
	int64_t t_ack, t_prod = sb_time_mono_ms();
	int ret;

	outbox_relay_await(o, b);
	t_ack = sb_time_mono_ms();
	sb_series_observe(outbox_m.batch_size, (double)b->n);
	ret = outbox_relay_settle(o, b, trouble);
	if (sb_log_enabled(SB_LOG_DEBUG))
		sb_log(SB_LOG_DEBUG,
		       "batch of %zu: acked %lld ms after it was produced (%lld ms waited), marked "
		       "in %lld ms, %d batches in flight",
		       b->n, (long long)(t_ack - b->started_ms), (long long)(t_ack - t_prod),
		       (long long)(sb_time_mono_ms() - t_ack), o->nbatches);
	outbox_store_batch_free(b);
	*head = (*head + 1) % OUTBOX_PIPELINE_MAX;
	o->nbatches--;
	return ret;
}

/* The relay thread's own data besides struct outbox: timers, back-offs, the pipeline's head. */
struct outbox_relay_ctx {
	struct outbox *o;
	struct sb_backoff db_bo, kafka_bo;
	int64_t next_maint, next_gc, next_select; /* sb_time_mono_ms */
	int head;                                 /* oldest batch in flight in o->batches */
};

/* outbox_relay_db_event reports a database error as an event carrying the wait before the
 * next try. */
static struct outbox_relay_event
outbox_relay_db_event(struct outbox_relay_ctx *x, int ret, const char *what)
{
	return (struct outbox_relay_event){ OUTBOX_RELAY_EV_DB_ERROR,
		                            outbox_relay_db_error(x->o, ret, what, &x->db_bo) };
}

/* MAINTAIN: a new session (after a reconnect) first loses the leases and is set up again;
 * maintenance runs when due, and always on a new session. */
static struct outbox_relay_event
outbox_relay_act_maintain(struct outbox_relay_ctx *x)
{
	struct outbox *o = x->o;
	int ret;

	if (o->session_ready && sb_pg_reconnects(o->pg) != o->pg_reconnects_seen)
		outbox_lease_lost(o);
	if (!o->session_ready) {
		if ((ret = outbox_lease_session_setup(o)) != 0)
			return outbox_relay_db_event(x, ret, "session");
		x->next_maint = 0;
	}
	if (sb_time_mono_ms() >= x->next_maint) {
		if ((ret = outbox_relay_maintain(o, &x->next_gc)) != 0)
			return outbox_relay_db_event(x, ret, "leases");
		x->next_maint = sb_time_mono_ms() + o->cfg->lease_interval_ms;
	}
	return (struct outbox_relay_event){ OUTBOX_RELAY_EV_DONE, 0 };
}

/* SELECT: the next batch, into the slot after the last batch in flight, from held shards no
 * batch in flight has rows of. */
static struct outbox_relay_event
outbox_relay_act_select(struct outbox_relay_ctx *x)
{
	struct outbox *o = x->o;
	bool free_shards[OUTBOX_SHARDS];
	int ret;

	for (int s = 0; s < OUTBOX_SHARDS; s++) {
		free_shards[s] = o->held[s];
		for (int k = 0; k < o->nbatches; k++)
			if (o->batches[(x->head + k) % OUTBOX_PIPELINE_MAX].shards[s])
				free_shards[s] = false;
	}
	struct outbox_batch *b = &o->batches[(x->head + o->nbatches) % OUTBOX_PIPELINE_MAX];
	ret = outbox_store_select(o->pg, free_shards, o->next_shard++, (int)o->cfg->batch_size,
	                          o->cfg->batch_bytes, o->cfg->common.kafka_topic_prefix, b);
	if (ret != 0)
		return outbox_relay_db_event(x, ret, "select");
	sb_backoff_reset(&x->db_bo);
	/* After a short batch, let rows accumulate for linger_ms. */
	if (!b->full)
		x->next_select = sb_time_mono_ms() + o->cfg->linger_ms;
	if (sb_pg_reconnects(o->pg) != o->pg_reconnects_seen) {
		/* The select ran on a new session, which holds none of our leases. */
		outbox_store_batch_free(b);
		outbox_lease_lost(o);
		return (struct outbox_relay_event){ OUTBOX_RELAY_EV_SESSION_LOST, 0 };
	}
	if (b->n == 0 || atomic_load(&o->stop)) {
		/* Nothing to do, or stopping: no new batch is started. */
		outbox_store_batch_free(b);
		return (struct outbox_relay_event){ OUTBOX_RELAY_EV_EMPTY, 0 };
	}
	return (struct outbox_relay_event){ OUTBOX_RELAY_EV_ROWS, 0 };
}

/* PRODUCE: the batch SELECT filled joins the pipeline. */
static struct outbox_relay_event
outbox_relay_act_produce(struct outbox_relay_ctx *x)
{
	struct outbox *o = x->o;
	struct outbox_batch *b = &o->batches[(x->head + o->nbatches) % OUTBOX_PIPELINE_MAX];

	b->started_ms = sb_time_mono_ms();
	o->nbatches++;
	outbox_relay_produce(o, b);
	return (struct outbox_relay_event){ OUTBOX_RELAY_EV_DONE, 0 };
}

/* FINISH: the oldest batch in flight. A clean one finished to drain the pipeline resets the
 * broker back-off. */
static struct outbox_relay_event
outbox_relay_act_finish(struct outbox_relay_ctx *x, const struct outbox_relay_sm *sm)
{
	bool t = false;
	int ret = outbox_relay_finish(x->o, &x->head, &t);

	if (ret != 0) {
		/* Acknowledged rows stay unrelayed: sent again (same ce_id). */
		outbox_relay_db_error(x->o, ret, "mark", &x->db_bo);
		return (struct outbox_relay_event){ OUTBOX_RELAY_EV_DB_ERROR, 0 };
	}
	if (t)
		return (struct outbox_relay_event){ OUTBOX_RELAY_EV_TROUBLE, 0 };
	if (sm->drain)
		sb_backoff_reset(&x->kafka_bo);
	return (struct outbox_relay_event){ OUTBOX_RELAY_EV_DONE, 0 };
}

/* outbox_relay_act runs the action of sm's state and returns the event it reports. */
static struct outbox_relay_event
outbox_relay_act(struct outbox_relay_ctx *x, const struct outbox_relay_sm *sm)
{
	const struct outbox_relay_event done = { OUTBOX_RELAY_EV_DONE, 0 };

	switch (sm->state) {
	case OUTBOX_RELAY_MAINTAIN:
		return outbox_relay_act_maintain(x);
	case OUTBOX_RELAY_SELECT:
		return outbox_relay_act_select(x);
	case OUTBOX_RELAY_PRODUCE:
		return outbox_relay_act_produce(x);
	case OUTBOX_RELAY_FINISH:
		return outbox_relay_act_finish(x, sm);
	case OUTBOX_RELAY_LINGER:
	case OUTBOX_RELAY_WAIT:
		outbox_relay_wait(x->o, sm->wait_ms);
		return done;
	case OUTBOX_RELAY_BACKOFF_DB:
		outbox_relay_sleep(x->o, sm->wait_ms);
		return done;
	case OUTBOX_RELAY_BACKOFF_BROKER:
		outbox_relay_sleep(x->o, sb_backoff_next(&x->kafka_bo));
		return done;
	case OUTBOX_RELAY_STOPPED:
		outbox_lease_release_all(x->o);
		return done;
	case OUTBOX_RELAY_START:
	default:
		return done;
	}
}

/* outbox_relay_inputs reads what the next transition depends on. */
static struct outbox_relay_in
outbox_relay_inputs(const struct outbox_relay_ctx *x)
{
	const struct outbox *o = x->o;
	int64_t now = sb_time_mono_ms();

	return (struct outbox_relay_in){
		.stopping = atomic_load(&o->stop),
		.nbatches = o->nbatches,
		.pipeline = (int)o->cfg->pipeline,
		.session_ok = o->session_ready && sb_pg_reconnects(o->pg) == o->pg_reconnects_seen,
		.held = atomic_load(&o->held_count) > 0,
		.until_maint = x->next_maint - now,
		.until_select = x->next_select - now,
		.poll_ms = o->cfg->poll_ms,
	};
}

static void *
outbox_relay_run(void *arg)
{
	struct outbox_relay_ctx x = { .o = arg };
	struct outbox_relay_sm sm = { .state = OUTBOX_RELAY_START };

	sb_backoff_init(&x.db_bo, 100, 5000);
	sb_backoff_init(&x.kafka_bo, 100, 5000);
	for (;;) {
		struct outbox_relay_event ev = outbox_relay_act(&x, &sm);
		if (sm.state == OUTBOX_RELAY_STOPPED)
			break;
		struct outbox_relay_in in = outbox_relay_inputs(&x);
		sm = outbox_relay_next(sm, ev, &in);
	}
	return NULL;
}

int
outbox_relay_start(struct outbox *o)
{
	if (pthread_create(&o->thread, NULL, outbox_relay_run, o) != 0)
		return SB_EIO;
	o->thread_started = true;
	return 0;
}

void
outbox_relay_stop(struct outbox *o)
{
	uint64_t one = 1;

	if (!o->thread_started)
		return;
	atomic_store(&o->stop, true);
	if (write(o->wake_fd, &one, sizeof(one)) < 0)
		sb_log_kv(SB_LOG_WARN, "cannot wake the relay thread", NULL);
	pthread_join(o->thread, NULL);
	o->thread_started = false;
}
