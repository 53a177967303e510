/* consume.c: the apply thread. Takes a batch from the consumer group, transforms its events,
 * sends what cannot be applied to the side topics (durably, before anything else), applies the
 * rest in ONE PostgreSQL transaction that also moves the partitions' checkpoints, and only then
 * stores the offsets for the next Kafka commit. A crash anywhere replays the batch: events at or
 * before a checkpoint are skipped, the others are harmless again (version guard), side records
 * carry deterministic ids.
 *
 * Failures: PostgreSQL unreachable (or the breaker open) retries the whole batch with backoff,
 * without limit and without counting against any event. Any other error of the batch statement
 * makes the batch run again with each event in its own savepoint: the events that fail alone
 * are retried with backoff (1 s .. 60 s by default) and after SB_CDCSINK_MAX_ATTEMPTS attempts
 * go to cassandra.cdc.dlq as error records; the partition's checkpoint stays before the first
 * of them until they are resolved. */
#include "cdcsink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* A record for a side topic. */
struct cdc_side_rec {
	const char *topic; /* st's prefixed name */
	char id[300];
	char *value; /* owned JSON */
	const void *key;
	size_t klen;
};

struct cdc_dr {
	atomic_int failed;
};

/* One batch: filled and prepared by the preparer thread, applied by the applier. */
struct cdc_batch {
	rd_kafka_message_t **msgs;
	struct cdc_item *items;
	struct cdc_item **ptrs;
	size_t n;
	struct sb_buf ddl;         /* ALTER TABLE of new columns, run in the batch's transaction */
	struct cdc_side_rec *recs; /* validation and staleness records, produced before the tx */
	size_t nrec;
};

/* The hand-off between the two threads (docs/cdcsink.md "Pipeline"): CDC_PIPE_DEPTH batch
 * slots; the preparer polls and transforms into a FREE slot and marks it READY, the applier
 * applies READY slots in hand-off order and frees them. A batch the applier could not apply
 * is marked FAILED together with every READY one after it, and the applier takes nothing more
 * until the preparer has rewound the consumer to the first offset of each (`rewind`). */
#define CDC_PIPE_DEPTH 3

enum cdc_slot {
	CDC_SLOT_FREE,
	CDC_SLOT_FILLING,
	CDC_SLOT_READY,
	CDC_SLOT_APPLYING,
	CDC_SLOT_FAILED
};

struct cdc_pipe {
	struct cdc_state *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cdc_batch b[CDC_PIPE_DEPTH];
	enum cdc_slot slot[CDC_PIPE_DEPTH];
	uint64_t seq[CDC_PIPE_DEPTH]; /* hand-off order of READY slots */
	uint64_t next_seq;
	bool rewind;       /* set by the applier after a failure, cleared by the preparer */
	bool preparer_out; /* the preparer has stopped: the applier stops too */
};

/* cdc_pipe_wait waits (p->mu held) until signalled or about 100 ms passed, so that a waiter
 * also sees st->stopping. */
static void
cdc_pipe_wait(struct cdc_pipe *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

/* cdc_pipe_drain (preparer) waits until the applier holds no batch, READY or APPLYING: schema
 * evolution changes a table's columns, which the applier reads without a lock. Returns 0, or
 * SB_ECLOSED when the service stops first. */
static int
cdc_pipe_drain(struct cdc_pipe *p)
{
	int rv = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		bool busy = false;
		for (int i = 0; i < CDC_PIPE_DEPTH; i++)
			busy |= p->slot[i] == CDC_SLOT_READY || p->slot[i] == CDC_SLOT_APPLYING;
		if (!busy)
			break;
		if (atomic_load(&p->st->stopping)) {
			rv = SB_ECLOSED;
			break;
		}
		cdc_pipe_wait(p);
	}
	pthread_mutex_unlock(&p->mu);
	return rv;
}

static void
cdc_sleep(struct cdc_state *st, int64_t ms)
{
	while (ms > 0 && !atomic_load(&st->stopping)) {
		int64_t step = ms > 50 ? 50 : ms;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static const char *
cdc_base_topic(const struct cdc_state *st, const char *topic)
{
	size_t pl = strlen(st->prefix);
	return strncmp(topic, st->prefix, pl) == 0 ? topic + pl : topic;
}

static bool
cdc_conn_err(int rv)
{
	return rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT || rv == SB_ECLOSED;
}

static void
cdc_dr_cb(int err, const char *errstr, void *opaque)
{
	struct cdc_dr *dr = opaque;
	if (err != 0) {
		atomic_fetch_add(&dr->failed, 1);
		sb_log_kv(SB_LOG_WARN, "side record not delivered", "error", errstr, NULL);
	}
}

/* cdc_produce_all writes every record to its topic and waits until all are stored; on failure
 * it retries them all (at least once: the ids make repeats recognisable). Returns 0, or
 * SB_ECLOSED when the service stops first. */
static int
cdc_produce_all(struct cdc_state *st, struct cdc_side_rec *recs, size_t n)
{
	struct sb_backoff bo;
	char now[40];

	if (n == 0)
		return 0;
	sb_backoff_init(&bo, (uint32_t)st->cfg->retry_base_ms, (uint32_t)st->cfg->retry_max_ms);
	while (!atomic_load(&st->stopping)) {
		static struct cdc_dr dr;
		bool ok = true;
		atomic_store(&dr.failed, 0);
		sb_kafka_ce_time_now(now, sizeof(now));
		for (size_t i = 0; i < n && ok; i++) {
			struct sb_cloudevent ce = { .id = recs[i].id,
				                    .source = "sb-cdcsink",
				                    .type = recs[i].topic,
				                    .time = now,
				                    .content_type = "application/json" };
			int rv;
			while ((rv = sb_kafka_produce(st->producer, recs[i].topic, recs[i].key,
			                              recs[i].klen, recs[i].value,
			                              strlen(recs[i].value), &ce, cdc_dr_cb,
			                              &dr)) == SB_EBUSY)
				sb_kafka_flush(st->producer, 100);
			if (rv != 0) {
				sb_log_kv(SB_LOG_WARN, "cannot produce a side record", "topic",
				          recs[i].topic, "error", sb_strerror(rv), NULL);
				ok = false;
			}
		}
		if (sb_kafka_flush(st->producer, 30000) != 0 || atomic_load(&dr.failed) > 0)
			ok = false;
		if (ok)
			return 0;
		sb_series_inc(st->m_errors);
		cdc_sleep(st, sb_backoff_next(&bo));
	}
	return SB_ECLOSED;
}

/* ---- table state shared by the replicas (cdcsink.table_state) ---- */

static void
cdc_refresh_state(struct cdc_state *st, int64_t *seen_seq, bool *was_paused)
{
	PGresult *res = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (sb_pg_exec(st->pg, "SELECT target_table, paused, backfill, resume_seq FROM table_state",
	               &res) != 0)
		return;
	for (size_t i = 0; i < st->map.n; i++) {
		struct cdc_table *t = &st->map.tables[i];
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
		for (int r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, 0), full) != 0)
				continue;
			int64_t seq = atoll(PQgetvalue(res, r, 3));
			pthread_mutex_lock(&t->mu);
			t->paused = PQgetvalue(res, r, 1)[0] == 't';
			if (!PQgetisnull(res, r, 2))
				t->backfill = PQgetvalue(res, r, 2)[0] == 't';
			if (seq != seen_seq[i] && t->quarantined) {
				t->quarantined = false;
				sb_log_kv(SB_LOG_WARN, "quarantine lifted by resume", "table", full,
				          NULL);
			}
			seen_seq[i] = seq;
			pthread_mutex_unlock(&t->mu);
		}
	}
	PQclear(res);
	/* Pause or resume the assigned partitions of each table. */
	rd_kafka_t *rk = sb_kafka_consumer_handle(st->kc);
	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(parts->cnt + 1);
	rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(parts->cnt + 1);
	for (int i = 0; i < parts->cnt; i++) {
		struct cdc_table *t =
		    cdc_mapping_find(&st->map, cdc_base_topic(st, parts->elems[i].topic));
		if (t == NULL)
			continue;
		pthread_mutex_lock(&t->mu);
		bool paused = t->paused;
		pthread_mutex_unlock(&t->mu);
		/* Resuming a partition that is not paused makes librdkafka fetch it again from the
		 * last committed position: only what was paused is resumed. */
		if (paused)
			rd_kafka_topic_partition_list_add(pause, parts->elems[i].topic,
			                                  parts->elems[i].partition);
		else if (was_paused[t - st->map.tables])
			rd_kafka_topic_partition_list_add(resume, parts->elems[i].topic,
			                                  parts->elems[i].partition);
	}
	if (pause->cnt > 0)
		rd_kafka_pause_partitions(rk, pause);
	if (resume->cnt > 0)
		rd_kafka_resume_partitions(rk, resume);
	for (size_t i = 0; i < st->map.n; i++) {
		pthread_mutex_lock(&st->map.tables[i].mu);
		was_paused[i] = st->map.tables[i].paused;
		pthread_mutex_unlock(&st->map.tables[i].mu);
	}
	rd_kafka_topic_partition_list_destroy(pause);
	rd_kafka_topic_partition_list_destroy(resume);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* ---- preparing a batch ---- */

static void
cdc_quarantine(struct cdc_table *t, const char *why)
{
	pthread_mutex_lock(&t->mu);
	if (!t->quarantined) {
		t->quarantined = true;
		snprintf(t->quarantine_reason, sizeof(t->quarantine_reason), "%s", why);
		sb_log_kv(
		    SB_LOG_ERROR,
		    "breaking schema change: table quarantined, its events go to the validation "
		    "topic until the mapping is updated and the table resumed",
		    "table", t->name, "schema", t->schema, "reason", why, NULL);
	}
	pthread_mutex_unlock(&t->mu);
}

/* cdc_evolve adds the new columns of row to t (in memory) and their DDL to ddl. */
static int
cdc_evolve(struct cdc_table *t, const struct cdc_row *row, struct sb_buf *ddl)
{
	int rv = 0;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < row->nnew && rv == 0; i++) {
		char pg[96];
		if (cdc_table_col(t, row->newcols[i].name) >= 0)
			continue;
		if ((rv = cdc_table_add_col(t, row->newcols[i].name, row->newcols[i].type_text)) !=
		    0)
			break;
		cdc_type_pg(t->cols[t->ncols - 1].type, pg, sizeof(pg));
		rv = sb_buf_printf(ddl,
		                   "ALTER TABLE \"%s\".\"%s\" ADD COLUMN IF NOT EXISTS \"%s\" %s;",
		                   t->schema, t->name, row->newcols[i].name, pg);
		sb_series_inc(t->m_schema_changes);
		sb_log_kv(SB_LOG_WARN, "schema change: new nullable column added", "table", t->name,
		          "column", row->newcols[i].name, "type", pg, NULL);
	}
	pthread_mutex_unlock(&t->mu);
	return rv;
}

/* cdc_transform_item finds the table of the item's message and transforms its event, keeping
 * the result in it->fail and it->reason. Pure (reads the mapping): the transform workers run
 * it on disjoint items of one batch at the same time. */
static void
cdc_transform_item(const struct cdc_state *st, struct cdc_item *it)
{
	const rd_kafka_message_t *m = it->msg;

	it->partition = m->partition;
	it->offset = m->offset;
	it->table = cdc_mapping_find((struct cdc_mapping *)&st->map,
	                             cdc_base_topic(st, rd_kafka_topic_name(m->rkt)));
	if (it->table == NULL) {
		it->side = CDC_SIDE_IGNORE;
		return;
	}
	if (m->payload == NULL || m->len == 0) {
		/* A Kafka tombstone (Debezium writes one after each delete, for compaction): the
		 * delete event before it did the work. */
		it->side = CDC_SIDE_IGNORE;
		it->outcome = CDC_OUT_SKIPPED;
		return;
	}
	it->fail = cdc_event_transform(it->table, m->payload, m->len, &it->row, it->reason,
	                               sizeof(it->reason));
}

/* cdc_prepare_item (preparer, in batch order, after cdc_transform_item) evolves the table for
 * new columns, quarantines on a breaking change, and decides where the event goes. */
static void
cdc_prepare_item(struct cdc_pipe *p, struct cdc_batch *b, struct cdc_item *it)
{
	struct cdc_state *st = p->st;
	const rd_kafka_message_t *m = it->msg;
	char err[CDC_REASON_MAX];
	enum cdc_fail f = it->fail;
	int64_t now_us = sb_time_now_ms() * 1000;

	if (it->table == NULL || it->side == CDC_SIDE_IGNORE)
		return;
	snprintf(err, sizeof(err), "%s", it->reason);
	it->reason[0] = '\0';
	for (int tries = 0; f == CDC_FAIL_NEWCOLS && tries < 2; tries++) {
		if (cdc_pipe_drain(p) != 0 || cdc_evolve(it->table, &it->row, &b->ddl) != 0)
			break;
		cdc_row_free(&it->row);
		f = cdc_event_transform(it->table, m->payload, m->len, &it->row, err, sizeof(err));
	}
	pthread_mutex_lock(&it->table->mu);
	bool quarantined = it->table->quarantined, backfill = it->table->backfill;
	char qreason[CDC_REASON_MAX];
	snprintf(qreason, sizeof(qreason), "%s", it->table->quarantine_reason);
	pthread_mutex_unlock(&it->table->mu);
	if (f == CDC_FAIL_BREAKING) {
		cdc_quarantine(it->table, err);
		quarantined = true;
		snprintf(qreason, sizeof(qreason), "%s", err);
	}
	if (quarantined) {
		it->side = CDC_SIDE_VALIDATION;
		it->outcome = CDC_OUT_QUARANTINED;
		snprintf(it->reason, sizeof(it->reason), "table quarantined: %.200s", qreason);
	} else if (f != CDC_FAIL_NONE) {
		struct sb_buf masked = SB_BUF_INIT;
		it->side = CDC_SIDE_VALIDATION;
		it->outcome = CDC_OUT_INVALID;
		snprintf(it->reason, sizeof(it->reason), "%s", err);
		cdc_event_masked(it->table, m->payload, m->len, &masked);
		sb_log_kv(SB_LOG_WARN, "invalid change event", "table", it->table->name, "reason",
		          err, "event", masked.data ? masked.data : "", NULL);
		sb_buf_free(&masked);
	} else if (!backfill && it->row.version_us < now_us - st->cfg->stale_after_s * 1000000LL) {
		it->side = CDC_SIDE_STALE;
		it->outcome = CDC_OUT_STALE;
		snprintf(it->reason, sizeof(it->reason), "source time %" PRId64 " s old",
		         (now_us - it->row.version_us) / 1000000);
	}
}

/* cdc_side_value builds the JSON record of a validation, staleness or DLQ record of it. */
static char *
cdc_side_value(const struct cdc_item *it, const char *kind, const char *id, const char *error,
               int64_t first_ms)
{
	json_t *o = json_object();
	char now[40];
	sb_kafka_ce_time_now(now, sizeof(now));
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "topic", json_string(rd_kafka_topic_name(it->msg->rkt)));
	json_object_set_new(o, "partition", json_integer(it->partition));
	json_object_set_new(o, "offset", json_integer(it->offset));
	if (it->table != NULL) {
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", it->table->schema, it->table->name);
		json_object_set_new(o, "table", json_string(full));
	}
	json_object_set_new(o, "reason", json_string(error));
	json_object_set_new(
	    o, "event",
	    json_stringn_nocheck(it->msg->payload ? it->msg->payload : "", it->msg->len));
	if (it->row.version_us > 0)
		json_object_set_new(o, "source_ts_us", json_integer(it->row.version_us));
	if (first_ms > 0) {
		char first[40];
		sb_time_format_rfc3339(first_ms, first, sizeof(first));
		json_object_set_new(o, "attempts", json_integer(it->attempts));
		json_object_set_new(o, "first_attempt", json_string(first));
		json_object_set_new(o, "last_attempt", json_string(now));
		json_object_set_new(o, "sqlstate", json_string(it->sqlstate));
		json_object_set_new(o, "category", json_string(cdc_dlq_category(it->sqlstate)));
	}
	json_object_set_new(o, "time", json_string(now));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void
cdc_item_id(const struct cdc_item *it, char *out, size_t n)
{
	snprintf(out, n, "%s:%d:%" PRId64, rd_kafka_topic_name(it->msg->rkt), (int)it->partition,
	         it->offset);
}

/* ---- the transaction ---- */

struct cdc_part {
	const char *topic;
	int32_t partition;
	int64_t next;   /* checkpoint read under lock */
	int64_t max;    /* highest offset in the batch */
	int64_t failed; /* lowest offset that failed alone, or -1 */
};

static int
cdc_part_find(struct cdc_part *p, size_t np, const char *topic, int32_t part)
{
	for (size_t i = 0; i < np; i++)
		if (p[i].partition == part && strcmp(p[i].topic, topic) == 0)
			return (int)i;
	return -1;
}

/* cdc_parts_arrays writes the topics, partitions and (with next) next offsets of the np
 * partitions as array literals into ta, pa and na. */
static int
cdc_parts_arrays(const struct cdc_part *parts, size_t np, bool next, struct sb_buf *ta,
                 struct sb_buf *pa, struct sb_buf *na)
{
	int e = 0;
	sb_buf_reset(ta);
	sb_buf_reset(pa);
	sb_buf_reset(na);
	for (size_t k = 0; k < np; k++) {
		e |= sb_pg_array_add(ta, parts[k].topic);
		e |= sb_buf_printf(pa, "%s%d", k ? "," : "{", (int)parts[k].partition);
		e |= sb_buf_printf(
		    na, "%s%lld", k ? "," : "{",
		    (long long)(next && parts[k].failed >= 0 ? parts[k].failed : parts[k].max + 1));
	}
	e |= sb_pg_array_end(ta);
	e |= sb_buf_puts(pa, "}");
	e |= sb_buf_puts(na, "}");
	return e != 0 ? SB_ENOMEM : 0;
}

static int
cdc_apply_one(struct sb_pg *pg, struct cdc_item *it, long *applied)
{
	struct cdc_item *one[1] = { it };
	bool was = it->done;
	it->done = false;
	int rv = cdc_apply_items(pg, one, 1, applied);
	it->done = was;
	return rv;
}

/* Moves the checkpoints of a batch's partitions ($2 topics, $3 partitions, $4 next offsets). */
#define CDC_CHECKPOINT_UPDATE                                                                      \
	"UPDATE _cdc_checkpoints c SET next_offset = GREATEST(c.next_offset, x.n), updated_at = "  \
	"now() FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n) WHERE "              \
	"c.consumer_group = $1 AND c.topic = x.t AND c.kpartition = x.p"

/* cdc_tx runs the batch's transaction: DDL, checkpoint lock, validation rows, the events
 * (together, or each in a savepoint when isolate), checkpoints moved. */
static int
cdc_tx(struct cdc_state *st, struct cdc_batch *b, bool isolate, long *applied)
{
	struct cdc_part parts[1024];
	struct sb_buf ta = SB_BUF_INIT, pa = SB_BUF_INIT, na = SB_BUF_INIT;
	size_t np = 0;
	PGresult *res = NULL;
	int rv;
	char num[3][32];

	*applied = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct cdc_item *it = &b->items[i];
		const char *topic = rd_kafka_topic_name(it->msg->rkt);
		int k = cdc_part_find(parts, np, topic, it->partition);
		it->replay = false;
		if (isolate)
			it->failed = false;
		if (k < 0) {
			if (np == sizeof(parts) / sizeof(parts[0]))
				return SB_ERANGE;
			parts[np] = (struct cdc_part){ topic, it->partition, 0, it->offset, -1 };
			k = (int)np++;
		}
		if (it->offset > parts[k].max)
			parts[k].max = it->offset;
	}
	/* New columns first (several statements: not in a pipeline). */
	if (b->ddl.len > 0 &&
	    ((rv = sb_pg_begin(st->pg)) != 0 || (rv = sb_pg_exec(st->pg, b->ddl.data, NULL)) != 0))
		goto fail;
	/* The batch's partitions: their rows made if missing, then locked in a fixed order (a
	 * replica that took a partition over waits here for the one still applying it). One
	 * round trip with BEGIN. */
	if ((rv = cdc_parts_arrays(parts, np, false, &ta, &pa, &na)) != 0)
		goto fail;
	{
		const char *p[3] = { st->group, ta.data, pa.data };
		const struct sb_pg_step steps[] = {
			{ .sql = "BEGIN" },
			{ .sql = "INSERT INTO _cdc_checkpoints (consumer_group, topic, kpartition, "
			         "next_offset) SELECT $1, x.t, x.p, 0 FROM unnest($2::text[], "
			         "$3::int[]) AS x(t, p) ON CONFLICT DO NOTHING",
			  .nparams = 3,
			  .params = p },
			{ .sql = "SELECT c.topic, c.kpartition, c.next_offset FROM "
			         "_cdc_checkpoints c JOIN unnest($2::text[], $3::int[]) AS x(t, p) "
			         "ON c.topic = x.t AND c.kpartition = x.p WHERE c.consumer_group "
			         "= $1 ORDER BY 1, 2 FOR UPDATE OF c",
			  .nparams = 3,
			  .params = p,
			  .res = &res },
		};
		bool began = b->ddl.len > 0;
		rv = sb_pg_exec_pipeline(st->pg, began ? steps + 1 : steps, began ? 2 : 3);
		if (rv != 0)
			goto fail;
		for (int r = 0; r < PQntuples(res); r++) {
			int k = cdc_part_find(parts, np, PQgetvalue(res, r, 0),
			                      (int32_t)atoi(PQgetvalue(res, r, 1)));
			if (k >= 0)
				parts[k].next = atoll(PQgetvalue(res, r, 2));
		}
		PQclear(res);
		res = NULL;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct cdc_item *it = &b->items[i];
		int k = cdc_part_find(parts, np, rd_kafka_topic_name(it->msg->rkt), it->partition);
		it->replay = it->offset < parts[k].next;
		it->done = it->replay || it->side != CDC_SIDE_NONE || it->resolved;
		if (isolate && it->replay && it->side == CDC_SIDE_NONE)
			it->outcome = CDC_OUT_SKIPPED;
		if (it->replay || it->side != CDC_SIDE_VALIDATION)
			continue;
		char id[300], target[160];
		cdc_item_id(it, id, sizeof(id));
		snprintf(target, sizeof(target), "%s.%s", it->table->schema, it->table->name);
		snprintf(num[0], sizeof(num[0]), "%d", (int)it->partition);
		snprintf(num[1], sizeof(num[1]), "%" PRId64, it->offset);
		const char *p[7] = { id,     rd_kafka_topic_name(it->msg->rkt),
			             num[0], num[1],
			             target, it->reason,
			             NULL };
		const char *vals[8];
		int lens[8] = { 0 }, fmts[8] = { 0 };
		memcpy(vals, p, sizeof(p));
		vals[6] = it->msg->key;
		vals[7] = it->msg->payload ? it->msg->payload : "";
		lens[6] = (int)it->msg->key_len;
		lens[7] = (int)it->msg->len;
		fmts[6] = fmts[7] = 1;
		PGconn *c = sb_pg_conn(st->pg);
		if (c == NULL) {
			rv = SB_EUNAVAIL;
			goto fail;
		}
		res = PQexecParams(
		    c,
		    "INSERT INTO validation_errors (id, topic, kpartition, koffset, "
		    "target_table, reason, event_key, event) VALUES ($1, $2, $3, $4, $5, "
		    "$6, $7, $8) ON CONFLICT (id) DO NOTHING",
		    8, NULL, vals, lens, fmts, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rv = sb_pg_sqlstate_err(PQresultErrorField(res, PG_DIAG_SQLSTATE));
			if (PQstatus(c) != CONNECTION_OK)
				rv = SB_EUNAVAIL;
			sb_log_kv(SB_LOG_WARN, "cannot record a validation error", "error",
			          PQresultErrorMessage(res), NULL);
			PQclear(res);
			res = NULL;
			goto fail;
		}
		PQclear(res);
		res = NULL;
	}
	if (!isolate) {
		/* The statements, the checkpoints moved past the batch and COMMIT: one round trip
		 * (more only for a batch of many statements). */
		if ((rv = cdc_parts_arrays(parts, np, true, &ta, &pa, &na)) != 0)
			goto fail;
		const char *p[4] = { st->group, ta.data, pa.data, na.data };
		const struct sb_pg_step tail[] = {
			{ .sql = CDC_CHECKPOINT_UPDATE, .nparams = 4, .params = p },
			{ .sql = "COMMIT" },
		};
		if ((rv = cdc_apply_items_tail(st->pg, b->ptrs, b->n, tail, 2, applied)) != 0)
			goto fail;
		goto committed;
	} else {
		for (size_t i = 0; i < b->n; i++) {
			struct cdc_item *it = &b->items[i];
			long one = 0;
			if (it->done)
				continue;
			if ((rv = sb_pg_exec(st->pg, "SAVEPOINT cdc_one", NULL)) != 0)
				goto fail;
			rv = cdc_apply_one(st->pg, it, &one);
			if (rv == 0) {
				*applied += one;
				it->outcome = one > 0 ? CDC_OUT_APPLIED : CDC_OUT_SKIPPED;
				if ((rv = sb_pg_exec(st->pg, "RELEASE SAVEPOINT cdc_one", NULL)) !=
				    0)
					goto fail;
				continue;
			}
			if (cdc_conn_err(rv))
				goto fail;
			snprintf(it->reason, sizeof(it->reason), "%s", sb_pg_errmsg(st->pg));
			snprintf(it->sqlstate, sizeof(it->sqlstate), "%s", sb_pg_sqlstate(st->pg));
			if ((rv = sb_pg_exec(st->pg, "ROLLBACK TO SAVEPOINT cdc_one", NULL)) != 0)
				goto fail;
			it->failed = true;
			int k = cdc_part_find(parts, np, rd_kafka_topic_name(it->msg->rkt),
			                      it->partition);
			if (parts[k].failed < 0 || it->offset < parts[k].failed)
				parts[k].failed = it->offset;
		}
	}
	if ((rv = cdc_parts_arrays(parts, np, true, &ta, &pa, &na)) != 0)
		goto fail;
	{
		const char *p[4] = { st->group, ta.data, pa.data, na.data };
		rv = sb_pg_exec_params(st->pg, CDC_CHECKPOINT_UPDATE, 4, p, NULL);
		if (rv != 0)
			goto fail;
	}
	if ((rv = sb_pg_commit(st->pg)) != 0)
		goto fail;
committed:
	sb_buf_free(&ta);
	sb_buf_free(&pa);
	sb_buf_free(&na);
	return 0;
fail:
	PQclear(res);
	sb_pg_rollback(st->pg);
	sb_buf_free(&ta);
	sb_buf_free(&pa);
	sb_buf_free(&na);
	return rv;
}

/* cdc_with_retry runs fn until it succeeds or fails for a reason other than the database being
 * unreachable, behind the breaker, with backoff between attempts. Returns fn's last result, or
 * SB_ECLOSED when the service stops. */
static int
cdc_tx_retry(struct cdc_state *st, struct cdc_batch *b, bool isolate, long *applied)
{
	struct sb_backoff bo;
	sb_backoff_init(&bo, (uint32_t)st->cfg->retry_base_ms, (uint32_t)st->cfg->retry_max_ms);
	while (!atomic_load(&st->stopping)) {
		if (!sb_breaker_allow(&st->breaker)) {
			cdc_sleep(st, 100);
			continue;
		}
		int rv = cdc_tx(st, b, isolate, applied);
		if (rv == 0 || !cdc_conn_err(rv)) {
			sb_breaker_success(&st->breaker);
			return rv;
		}
		sb_breaker_failure(&st->breaker);
		sb_series_inc(st->m_errors);
		sb_series_inc(st->m_retries);
		uint32_t d = sb_backoff_next(&bo);
		sb_log_kv(SB_LOG_WARN, "PostgreSQL unavailable, batch retried", "error",
		          sb_pg_errmsg(st->pg), "breaker",
		          sb_breaker_state_name(sb_breaker_state(&st->breaker)), NULL);
		cdc_sleep(st, d);
	}
	return SB_ECLOSED;
}

/* cdc_resolve_failed retries each event that failed alone until it applies, or sends it to the
 * DLQ after max_attempts; then moves the checkpoints past the batch. */
static int
cdc_resolve_failed(struct cdc_state *st, struct cdc_batch *b)
{
	int64_t first_ms = sb_time_now_ms();
	for (size_t i = 0; i < b->n; i++) {
		struct cdc_item *it = &b->items[i];
		struct sb_backoff bo;
		if (!it->failed)
			continue;
		it->attempts = 1;
		sb_backoff_init(&bo, (uint32_t)st->cfg->retry_base_ms,
		                (uint32_t)st->cfg->retry_max_ms);
		while (!it->resolved) {
			if (atomic_load(&st->stopping))
				return SB_ECLOSED;
			if (it->attempts >= st->cfg->max_attempts) {
				char id[300];
				struct cdc_side_rec rec = { .topic = st->dlq_topic };
				cdc_item_id(it, id, sizeof(id));
				snprintf(rec.id, sizeof(rec.id), "%s", id);
				rec.value = cdc_side_value(it, "dlq", id, it->reason, first_ms);
				rec.key = it->msg->key;
				rec.klen = it->msg->key_len;
				int rv =
				    rec.value == NULL ? SB_ENOMEM : cdc_produce_all(st, &rec, 1);
				free(rec.value);
				if (rv != 0)
					return rv;
				sb_log_kv(SB_LOG_ERROR,
				          "event sent to the DLQ after every attempt failed", "id",
				          id, "error", it->reason, NULL);
				it->resolved = true;
				it->outcome = CDC_OUT_DLQ;
				sb_series_inc(st->m_dlq);
				atomic_fetch_add(&st->dlq_total, 1);
				break;
			}
			cdc_sleep(st, sb_backoff_next(&bo));
			sb_series_inc(st->m_retries);
			if (!sb_breaker_allow(&st->breaker))
				continue;
			long one = 0;
			int rv = sb_pg_begin(st->pg);
			if (rv == 0)
				rv = cdc_apply_one(st->pg, it, &one);
			if (rv == 0)
				rv = sb_pg_commit(st->pg);
			if (rv != 0) {
				if (!cdc_conn_err(rv)) {
					snprintf(it->reason, sizeof(it->reason), "%s",
					         sb_pg_errmsg(st->pg));
					snprintf(it->sqlstate, sizeof(it->sqlstate), "%s",
					         sb_pg_sqlstate(st->pg));
				}
				sb_pg_rollback(st->pg);
			}
			if (cdc_conn_err(rv)) {
				sb_breaker_failure(&st->breaker);
				continue; /* the database's fault, not the event's */
			}
			sb_breaker_success(&st->breaker);
			if (rv == 0) {
				it->resolved = true;
				it->outcome = one > 0 ? CDC_OUT_APPLIED : CDC_OUT_SKIPPED;
			} else {
				it->attempts++;
				sb_log_kv(SB_LOG_WARN, "event failed again", "table",
				          it->table->name, "error", it->reason, NULL);
			}
		}
	}
	/* Every failed event is resolved: the checkpoints move past the batch. */
	long applied;
	for (size_t i = 0; i < b->n; i++)
		b->items[i].resolved = true;
	return cdc_tx_retry(st, b, false, &applied);
}

/* ---- one batch ---- */

static void
cdc_batch_reset(struct cdc_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		cdc_row_free(&b->items[i].row);
		rd_kafka_message_destroy(b->msgs[i]);
	}
	for (size_t i = 0; i < b->nrec; i++)
		free(b->recs[i].value);
	b->n = 0;
	b->nrec = 0;
	sb_buf_reset(&b->ddl);
}

/* cdc_batch_prepare (preparer) parses, validates and transforms the batch's events and builds
 * the side records of those that cannot be applied. Pure CPU, no PostgreSQL. */
struct cdc_xf_job {
	const struct cdc_state *st;
	struct cdc_item *items;
	size_t n;
	atomic_size_t next; /* next chunk to take */
};

#define CDC_XF_CHUNK 64

static void *
cdc_xf_worker(void *arg)
{
	struct cdc_xf_job *j = arg;
	for (;;) {
		size_t lo = atomic_fetch_add(&j->next, CDC_XF_CHUNK);
		if (lo >= j->n)
			break;
		size_t hi = lo + CDC_XF_CHUNK < j->n ? lo + CDC_XF_CHUNK : j->n;
		for (size_t i = lo; i < hi; i++)
			cdc_transform_item(j->st, &j->items[i]);
	}
	return NULL;
}

/* cdc_batch_transform runs cdc_transform_item on every item, on SB_CDCSINK_PREPARE_THREADS
 * threads (this one and helpers started for the batch; a helper that cannot start leaves its
 * share to the others). */
static void
cdc_batch_transform(struct cdc_state *st, struct cdc_batch *b)
{
	struct cdc_xf_job job = { .st = st, .items = b->items, .n = b->n };
	pthread_t helper[16];
	int nh = 0, want = (int)st->cfg->prepare_threads - 1;

	atomic_init(&job.next, 0);
	if ((size_t)want * CDC_XF_CHUNK >= b->n)
		want = (int)(b->n / CDC_XF_CHUNK); /* a small batch is not worth a thread */
	for (int i = 0; i < want && i < 16; i++)
		if (pthread_create(&helper[nh], NULL, cdc_xf_worker, &job) == 0)
			nh++;
	cdc_xf_worker(&job);
	for (int i = 0; i < nh; i++)
		pthread_join(helper[i], NULL);
}

static int
cdc_batch_prepare(struct cdc_pipe *p, struct cdc_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		memset(&b->items[i], 0, sizeof(b->items[i]));
		b->items[i].msg = b->msgs[i];
		b->ptrs[i] = &b->items[i];
	}
	cdc_batch_transform(p->st, b);
	for (size_t i = 0; i < b->n; i++) {
		struct cdc_item *it = &b->items[i];
		cdc_prepare_item(p, b, it);
		if (it->side == CDC_SIDE_VALIDATION || it->side == CDC_SIDE_STALE) {
			struct cdc_side_rec *r = &b->recs[b->nrec++];
			cdc_item_id(it, r->id, sizeof(r->id));
			r->topic =
			    it->side == CDC_SIDE_STALE ? p->st->stale_topic : p->st->val_topic;
			r->value =
			    cdc_side_value(it, it->side == CDC_SIDE_STALE ? "stale" : "validation",
			                   r->id, it->reason, 0);
			r->key = it->msg->key;
			r->klen = it->msg->key_len;
			if (r->value == NULL)
				return SB_ENOMEM;
		}
	}
	return 0;
}

/* cdc_batch_apply (applier) produces the batch's side records and awaits them, runs its
 * transaction (retried, or event by event), counts, and stores its offsets. */
static int
cdc_batch_apply(struct cdc_state *st, struct cdc_batch *b)
{
	long applied = 0;
	bool isolated = false;
	int rv;
	int64_t t1 = sb_time_mono_ms(), t2;

	if ((rv = cdc_produce_all(st, b->recs, b->nrec)) != 0)
		return rv;
	t2 = sb_time_mono_ms();
	sb_series_observe(st->m_stage[2], (double)(t2 - t1) / 1e3);
	rv = cdc_tx_retry(st, b, false, &applied);
	if (rv != 0 && rv != SB_ECLOSED) {
		sb_series_inc(st->m_errors);
		sb_log_kv(SB_LOG_WARN, "batch failed; applying its events one by one", "error",
		          sb_pg_errmsg(st->pg), NULL);
		isolated = true;
		rv = cdc_tx_retry(st, b, true, &applied);
		if (rv == 0)
			rv = cdc_resolve_failed(st, b);
	}
	if (rv != 0)
		return rv;
	sb_series_observe(st->m_stage[3], (double)(sb_time_mono_ms() - t2) / 1e3);
	/* Committed: count, measure, then store the offsets for the next commit. */
	int64_t now_us = sb_time_now_ms() * 1000, lag = 0;
	long left = applied;
	for (size_t i = 0; i < b->n; i++) {
		struct cdc_item *it = &b->items[i];
		enum cdc_outcome o;
		if (it->table == NULL)
			continue;
		if (it->side != CDC_SIDE_NONE || isolated)
			o = it->outcome;
		else if (it->replay)
			o = CDC_OUT_SKIPPED;
		else
			o = left-- > 0 ? CDC_OUT_APPLIED : CDC_OUT_SKIPPED;
		cdc_record_outcome(it->table, o);
		if (o == CDC_OUT_INVALID || o == CDC_OUT_QUARANTINED)
			sb_series_inc(st->m_validation);
		if (it->row.version_us > 0 && it->side == CDC_SIDE_NONE) {
			int64_t d = now_us - it->row.version_us;
			sb_series_observe(st->m_latency, (double)d / 1e6);
			if (d / 1000000 > lag)
				lag = d / 1000000;
			pthread_mutex_lock(&it->table->mu);
			if (it->row.version_us > it->table->last_version_us)
				it->table->last_version_us = it->row.version_us;
			it->table->last_commit_ms = now_us / 1000;
			pthread_mutex_unlock(&it->table->mu);
		}
	}
	atomic_store(&st->lag_s, lag);
	sb_series_observe(st->m_batch, (double)b->n);
	rv = sb_kafka_consumer_store(st->kc, b->msgs, b->n);
	if (rv == SB_ECLOSED)
		rv = 0; /* a partition moved to another member, which replays it harmlessly */
	return rv;
}

int
cdc_prepare_tables(struct cdc_state *st, struct sb_pg *pg)
{
	struct sb_buf sql = SB_BUF_INIT;
	int rv = 0;
	/* Under a lock: two replicas starting together must not race on CREATE. */
	rv = sb_buf_puts(&sql, "BEGIN; SELECT pg_advisory_xact_lock(7111001);\n");
	for (size_t i = 0; i < st->map.n && rv == 0; i++)
		rv = cdc_table_ddl(&st->map.tables[i], &sql);
	if (rv == 0)
		rv = sb_buf_puts(&sql, "COMMIT;");
	if (rv == 0)
		rv = sb_pg_exec(pg, sql.data, NULL);
	if (rv != 0)
		sb_pg_rollback(pg);
	sb_buf_free(&sql);
	return rv;
}

/* cdc_rewind (preparer, p->mu held, the applier idle) seeks each partition of the FAILED
 * batches back to its first offset in them, so that what was not applied (its offsets not
 * stored) is consumed again, and frees those slots. */
static void
cdc_rewind(struct cdc_pipe *p)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	for (int s = 0; s < CDC_PIPE_DEPTH; s++) {
		struct cdc_batch *b = &p->b[s];
		if (p->slot[s] != CDC_SLOT_FAILED)
			continue;
		for (size_t i = 0; i < b->n; i++) {
			const char *topic = rd_kafka_topic_name(b->msgs[i]->rkt);
			rd_kafka_topic_partition_t *tp =
			    rd_kafka_topic_partition_list_find(l, topic, b->msgs[i]->partition);
			if (tp == NULL)
				rd_kafka_topic_partition_list_add(l, topic, b->msgs[i]->partition)
				    ->offset = b->msgs[i]->offset;
			else if (b->msgs[i]->offset < tp->offset)
				tp->offset = b->msgs[i]->offset;
		}
	}
	if (l->cnt > 0 && !atomic_load(&p->st->stopping)) {
		rd_kafka_error_t *e =
		    rd_kafka_seek_partitions(sb_kafka_consumer_handle(p->st->kc), l, 5000);
		if (e != NULL) {
			sb_log_kv(SB_LOG_WARN, "cannot rewind the batch", "error",
			          rd_kafka_error_string(e), NULL);
			rd_kafka_error_destroy(e);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	for (int s = 0; s < CDC_PIPE_DEPTH; s++)
		if (p->slot[s] == CDC_SLOT_FAILED) {
			cdc_batch_reset(&p->b[s]);
			p->slot[s] = CDC_SLOT_FREE;
		}
	p->rewind = false;
	pthread_cond_broadcast(&p->cv);
}

/* cdc_applier_main is the applier thread (arg: struct cdc_pipe *): creates the tables, reads
 * the shared table state every second, and applies the READY batches in hand-off order. */
static void *
cdc_applier_main(void *arg)
{
	struct cdc_pipe *p = arg;
	struct cdc_state *st = p->st;
	int64_t *seen_seq = calloc(st->map.n, sizeof(*seen_seq));
	bool *was_paused = calloc(st->map.n, sizeof(*was_paused));
	int64_t refreshed = 0;
	bool tables_ready = false;

	if (seen_seq == NULL || was_paused == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cdcsink: out of memory", NULL);
		atomic_store(&st->stopping, true);
		goto out;
	}
	while (!atomic_load(&st->stopping)) {
		if (!tables_ready) {
			int rv = cdc_prepare_tables(st, st->pg);
			if (rv != 0) {
				sb_log_kv(SB_LOG_WARN, "cannot create the target tables yet",
				          "error", sb_pg_errmsg(st->pg), NULL);
				cdc_sleep(st, 1000);
				continue;
			}
			tables_ready = true;
		}
		if (sb_time_mono_ms() - refreshed >= 1000) {
			cdc_refresh_state(st, seen_seq, was_paused);
			refreshed = sb_time_mono_ms();
		}
		/* The oldest READY batch, unless a rewind is pending. */
		int64_t t_wait = sb_time_mono_ms();
		int take = -1;
		pthread_mutex_lock(&p->mu);
		while (!atomic_load(&st->stopping) && !p->preparer_out &&
		       sb_time_mono_ms() - t_wait < 200) {
			for (int i = 0; i < CDC_PIPE_DEPTH && !p->rewind; i++)
				if (p->slot[i] == CDC_SLOT_READY &&
				    (take < 0 || p->seq[i] < p->seq[take]))
					take = i;
			if (take >= 0)
				break;
			cdc_pipe_wait(p);
		}
		if (take >= 0)
			p->slot[take] = CDC_SLOT_APPLYING;
		bool out = p->preparer_out;
		pthread_mutex_unlock(&p->mu);
		if (take < 0) {
			if (out)
				break;
			continue;
		}
		sb_series_observe(st->m_stage[4], (double)(sb_time_mono_ms() - t_wait) / 1e3);
		struct cdc_batch *b = &p->b[take];
		int rv = cdc_batch_apply(st, b);
		if (rv != 0 && rv != SB_ECLOSED)
			sb_log_kv(SB_LOG_ERROR, "batch not applied; it will be consumed again",
			          "error", sb_strerror(rv), NULL);
		if (rv == 0)
			cdc_batch_reset(b);
		pthread_mutex_lock(&p->mu);
		if (rv == 0) {
			p->slot[take] = CDC_SLOT_FREE;
		} else {
			/* This batch and every later one go back to Kafka. */
			p->slot[take] = CDC_SLOT_FAILED;
			for (int i = 0; i < CDC_PIPE_DEPTH; i++)
				if (p->slot[i] == CDC_SLOT_READY)
					p->slot[i] = CDC_SLOT_FAILED;
			p->rewind = true;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
out:
	free(seen_seq);
	free(was_paused);
	return NULL;
}

/* cdc_pipe_take (preparer) waits for a FREE slot, doing a pending rewind first. Returns the
 * slot (now FILLING), or -1 when the service stops. */
static int
cdc_pipe_take(struct cdc_pipe *p)
{
	int slot = -1;
	int64_t t0 = sb_time_mono_ms();
	pthread_mutex_lock(&p->mu);
	while (!atomic_load(&p->st->stopping)) {
		if (p->rewind)
			cdc_rewind(p);
		for (int i = 0; i < CDC_PIPE_DEPTH && slot < 0; i++)
			if (p->slot[i] == CDC_SLOT_FREE)
				slot = i;
		if (slot >= 0) {
			p->slot[slot] = CDC_SLOT_FILLING;
			break;
		}
		cdc_pipe_wait(p);
	}
	pthread_mutex_unlock(&p->mu);
	sb_series_observe(p->st->m_stage[5], (double)(sb_time_mono_ms() - t0) / 1e3);
	return slot;
}

/* cdc_pipe_give (preparer) hands the prepared slot to the applier; when a rewind is pending
 * (the applier failed an earlier batch) the slot goes back to Kafka with the failed ones. */
static void
cdc_pipe_give(struct cdc_pipe *p, int slot, bool ok)
{
	pthread_mutex_lock(&p->mu);
	if (ok && !p->rewind && !atomic_load(&p->st->stopping)) {
		p->slot[slot] = CDC_SLOT_READY;
		p->seq[slot] = p->next_seq++;
	} else {
		p->slot[slot] = CDC_SLOT_FAILED;
		p->rewind = true;
		cdc_rewind(p);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* cdc_consumer_main is the preparer thread: it starts the applier, then polls batches and
 * prepares them while the applier applies the previous one. */
void *
cdc_consumer_main(void *arg)
{
	struct cdc_state *st = arg;
	struct cdc_pipe *p = calloc(1, sizeof(*p));
	size_t max = (size_t)st->cfg->batch_max;
	pthread_t applier;
	bool applier_alive = false;

	if (p == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cdcsink: out of memory", NULL);
		return NULL;
	}
	p->st = st;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 0; i < CDC_PIPE_DEPTH; i++) {
		struct cdc_batch *b = &p->b[i];
		b->msgs = calloc(max, sizeof(*b->msgs));
		b->items = calloc(max, sizeof(*b->items));
		b->ptrs = calloc(max, sizeof(*b->ptrs));
		b->recs = calloc(max, sizeof(*b->recs));
		if (b->msgs == NULL || b->items == NULL || b->ptrs == NULL || b->recs == NULL) {
			sb_log_kv(SB_LOG_ERROR, "cdcsink: out of memory", NULL);
			goto out;
		}
	}
	if (pthread_create(&applier, NULL, cdc_applier_main, p) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cdcsink: cannot start the applier thread", NULL);
		goto out;
	}
	applier_alive = true;
	while (!atomic_load(&st->stopping)) {
		int s = cdc_pipe_take(p);
		if (s < 0)
			break;
		struct cdc_batch *b = &p->b[s];
		int64_t t_poll = sb_time_mono_ms();
		b->n = sb_kafka_consumer_poll_batch(st->kc, b->msgs, max, 200, 0);
		if (b->n == 0) {
			atomic_store(&st->lag_s, 0);
			pthread_mutex_lock(&p->mu);
			p->slot[s] = CDC_SLOT_FREE;
			pthread_mutex_unlock(&p->mu);
			continue;
		}
		int64_t t0 = sb_time_mono_ms();
		sb_series_observe(st->m_stage[0], (double)(t0 - t_poll) / 1e3);
		int rv = cdc_batch_prepare(p, b);
		if (rv != 0)
			sb_log_kv(SB_LOG_ERROR, "batch not prepared; it will be consumed again",
			          "error", sb_strerror(rv), NULL);
		sb_series_observe(st->m_stage[1], (double)(sb_time_mono_ms() - t0) / 1e3);
		cdc_pipe_give(p, s, rv == 0);
	}
out:
	if (applier_alive) {
		pthread_mutex_lock(&p->mu);
		p->preparer_out = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(applier, NULL);
	}
	for (int i = 0; i < CDC_PIPE_DEPTH; i++) {
		struct cdc_batch *b = &p->b[i];
		if (b->msgs != NULL)
			cdc_batch_reset(b);
		sb_buf_free(&b->ddl);
		free(b->msgs);
		free(b->items);
		free(b->ptrs);
		free(b->recs);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return NULL;
}
