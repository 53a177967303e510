/* rpc.c: the admin API of the sink (behind the gateway's /api/v1/cdc/ routes, scope
 * cdc:admin): status per table and partition, pause/resume, backfill mode, resubmission of an
 * event that failed validation. Pause and backfill live in cdcsink.table_state, so that every
 * replica follows them (each reads the table every second). */
#include "cdcsink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcsink.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"

static struct cdc_state *
cdc_state_of(struct sb_rpc_call *call)
{
	return sb_service_state(sb_service_from_call(call));
}

static int
cdc_unavailable(struct sb_rpc_call *call, struct sb_pg *pg, int rv)
{
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "database unavailable");
	}
	sb_log_kv(SB_LOG_ERROR, "cdcsink admin query failed", "error", sb_pg_errmsg(pg), NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "query failed");
}

static struct cdc_table *
cdc_table_named(struct cdc_state *st, const char *name)
{
	for (size_t i = 0; name != NULL && i < st->map.n; i++) {
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", st->map.tables[i].schema,
		         st->map.tables[i].name);
		if (strcmp(full, name) == 0)
			return &st->map.tables[i];
	}
	return NULL;
}

/* cdc_fill_table fills out with t's state; partitions from res (topic, partition, next,
 * updated) whose topic is t's. */
static void
cdc_fill_table(struct sb_rpc_call *call, struct cdc_state *st, struct cdc_table *t,
               Sb__Cdcsink__TableStatus *out, PGresult *res)
{
	char full[160], topic[256];
	snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
	sb_kafka_topic_name(st->prefix, t->topic, topic, sizeof(topic));
	out->table = sb_rpc_call_strdup(call, full);
	out->topic = sb_rpc_call_strdup(call, topic);
	pthread_mutex_lock(&t->mu);
	out->paused = t->paused;
	out->backfill = t->backfill;
	out->quarantined = t->quarantined;
	out->quarantine_reason =
	    sb_rpc_call_strdup(call, t->quarantined ? t->quarantine_reason : "");
	out->applied = (int64_t)t->outcomes[CDC_OUT_APPLIED];
	out->skipped = (int64_t)t->outcomes[CDC_OUT_SKIPPED];
	out->invalid = (int64_t)t->outcomes[CDC_OUT_INVALID];
	out->quarantined_events = (int64_t)t->outcomes[CDC_OUT_QUARANTINED];
	out->stale = (int64_t)t->outcomes[CDC_OUT_STALE];
	out->dlq = (int64_t)t->outcomes[CDC_OUT_DLQ];
	pthread_mutex_unlock(&t->mu);
	if (res == NULL)
		return;
	int rows = PQntuples(res), k = 0;
	out->partitions = sb_rpc_call_alloc(call, sizeof(*out->partitions) * (size_t)(rows + 1));
	if (out->partitions == NULL)
		return;
	for (int r = 0; r < rows; r++) {
		if (strcmp(PQgetvalue(res, r, 0), topic) != 0)
			continue;
		Sb__Cdcsink__PartitionStatus *p = sb_rpc_call_alloc(call, sizeof(*p));
		if (p == NULL)
			return;
		sb__cdcsink__partition_status__init(p);
		p->topic = out->topic;
		p->partition = atoi(PQgetvalue(res, r, 1));
		p->next_offset = atoll(PQgetvalue(res, r, 2));
		p->updated_at = sb_rpc_call_strdup(call, PQgetvalue(res, r, 3));
		out->partitions[k++] = p;
	}
	out->n_partitions = (size_t)k;
}

int
cdc_rpc_status(struct sb_rpc_call *call, const void *req, void *resp)
{
	Sb__Cdcsink__StatusResponse *out = resp;
	struct cdc_state *st = cdc_state_of(call);
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	PGresult *res = NULL;
	const char *p[1];
	int rv;

	(void)req;
	if (st == NULL || w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	p[0] = st->group;
	rv = sb_pg_exec_params(
	    w->pg,
	    "SELECT topic, kpartition, next_offset, to_char(updated_at AT TIME "
	    "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM _cdc_checkpoints "
	    "WHERE consumer_group = $1 ORDER BY topic, kpartition",
	    1, p, &res);
	if (rv != 0)
		return cdc_unavailable(call, w->pg, rv);
	out->tables = sb_rpc_call_alloc(call, sizeof(*out->tables) * (st->map.n + 1));
	if (out->tables == NULL) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < st->map.n; i++) {
		Sb__Cdcsink__TableStatus *t = sb_rpc_call_alloc(call, sizeof(*t));
		if (t == NULL)
			break;
		sb__cdcsink__table_status__init(t);
		cdc_fill_table(call, st, &st->map.tables[i], t, res);
		out->tables[out->n_tables++] = t;
	}
	out->lag_seconds = atomic_load(&st->lag_s);
	PQclear(res);
	return SB__RPC__CODE__OK;
}

/* cdc_set_state writes one table's pause/backfill/resume to table_state and to this replica,
 * then answers its status. what: 'p' pause, 'r' resume, 'b' backfill (on). */
static int
cdc_set_state(struct sb_rpc_call *call, const char *name, char what, bool on, void *resp)
{
	struct cdc_state *st = cdc_state_of(call);
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	struct cdc_table *t;
	int rv;

	if (st == NULL || w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if ((t = cdc_table_named(st, name)) == NULL) {
		sb_rpc_call_violation(call, "table", "not a mapped table (schema.table)");
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no mapped table %.100s",
		                         name ? name : "");
	}
	const char *p[2] = { name, on ? "true" : "false" };
	const char *sql =
	    what == 'p'
	        ? "INSERT INTO table_state (target_table, paused) VALUES ($1, true) ON CONFLICT "
	          "(target_table) DO UPDATE SET paused = true, updated_at = now()"
	    : what == 'r'
	        ? "INSERT INTO table_state (target_table, paused, resume_seq) VALUES ($1, false, "
	          "1) "
	          "ON CONFLICT (target_table) DO UPDATE SET paused = false, resume_seq = "
	          "table_state.resume_seq + 1, updated_at = now()"
	        : "INSERT INTO table_state (target_table, backfill) VALUES ($1, $2::boolean) ON "
	          "CONFLICT (target_table) DO UPDATE SET backfill = $2::boolean, updated_at = "
	          "now()";
	rv = sb_pg_exec_params(w->pg, sql, what == 'b' ? 2 : 1, p, NULL);
	if (rv != 0)
		return cdc_unavailable(call, w->pg, rv);
	pthread_mutex_lock(&t->mu);
	if (what == 'p')
		t->paused = true;
	else if (what == 'r')
		t->paused = false;
	else
		t->backfill = on;
	pthread_mutex_unlock(&t->mu);
	sb_log_kv(SB_LOG_INFO, "cdcsink table state changed", "table", name, "change",
	          what == 'p'   ? "pause"
	          : what == 'r' ? "resume"
	          : on          ? "backfill on"
	                        : "backfill off",
	          NULL);
	cdc_fill_table(call, st, t, resp, NULL);
	return SB__RPC__CODE__OK;
}

int
cdc_rpc_pause(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Cdcsink__TableRequest *in = req;
	return cdc_set_state(call, in->table, 'p', true, resp);
}

int
cdc_rpc_resume(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Cdcsink__TableRequest *in = req;
	return cdc_set_state(call, in->table, 'r', true, resp);
}

int
cdc_rpc_set_backfill(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Cdcsink__BackfillRequest *in = req;
	return cdc_set_state(call, in->table, 'b', in->enabled, resp);
}

struct cdc_resubmit_dr {
	atomic_int done;
	atomic_int err;
};

static void
cdc_resubmit_cb(int err, const char *errstr, void *opaque)
{
	struct cdc_resubmit_dr *dr = opaque;
	(void)errstr;
	atomic_store(&dr->err, err);
	atomic_store(&dr->done, 1);
}

int
cdc_rpc_resubmit(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Cdcsink__ResubmitRequest *in = req;
	Sb__Cdcsink__ResubmitResponse *out = resp;
	struct cdc_state *st = cdc_state_of(call);
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	PGresult *res = NULL;
	char err[CDC_REASON_MAX];
	int rv;

	if (st == NULL || w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if (in->event == NULL || in->event[0] == '\0') {
		sb_rpc_call_violation(call, "event", "the corrected event (JSON text) is required");
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "event: required");
	}
	const char *p[1] = { in->id != NULL ? in->id : "" };
	rv = sb_pg_exec_params(w->pg,
	                       "SELECT topic, target_table, event_key FROM validation_errors WHERE "
	                       "id = $1",
	                       1, p, &res);
	if (rv != 0)
		return cdc_unavailable(call, w->pg, rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND,
		                         "no validation error %.200s", p[0]);
	}
	char topic[256];
	snprintf(topic, sizeof(topic), "%s", PQgetvalue(res, 0, 0));
	struct cdc_table *t = cdc_table_named(st, PQgetvalue(res, 0, 1));
	size_t klen = 0;
	unsigned char *key =
	    PQgetisnull(res, 0, 2)
	        ? NULL
	        : PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &klen);
	PQclear(res);
	if (t == NULL) {
		PQfreemem(key);
		return sb_rpc_call_error(call, SB__RPC__CODE__FAILED_PRECONDITION,
		                         "the table of this event is no longer mapped");
	}
	/* The corrected event must pass the checks it failed (new columns are fine). */
	struct cdc_row row;
	pthread_mutex_lock(&t->mu);
	enum cdc_fail f =
	    cdc_event_transform(t, in->event, strlen(in->event), &row, err, sizeof(err));
	pthread_mutex_unlock(&t->mu);
	cdc_row_free(&row);
	if (f == CDC_FAIL_INVALID || f == CDC_FAIL_BREAKING) {
		PQfreemem(key);
		sb_rpc_call_violation(call, "event", err);
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "event: %s", err);
	}
	char now[40];
	sb_kafka_ce_time_now(now, sizeof(now));
	struct sb_cloudevent ce = { .id = p[0],
		                    .source = "sb-cdcsink/resubmit",
		                    .type = "cdc.resubmitted",
		                    .time = now,
		                    .content_type = "application/json" };
	struct cdc_resubmit_dr dr = { 0 };
	rv = sb_kafka_produce(st->producer, topic, key, klen, in->event, strlen(in->event), &ce,
	                      cdc_resubmit_cb, &dr);
	PQfreemem(key);
	if (rv == 0) {
		for (int i = 0; i < 300 && !atomic_load(&dr.done); i++)
			sb_kafka_flush(st->producer, 100);
		/* The callback owns &dr until it ran: wait for it whatever happens. */
		while (!atomic_load(&dr.done))
			sb_kafka_flush(st->producer, 1000);
		rv = atomic_load(&dr.err);
	}
	if (rv != 0) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "Kafka did not take the event");
	}
	rv = sb_pg_exec_params(w->pg,
	                       "UPDATE validation_errors SET resubmitted_at = now(), resubmits = "
	                       "resubmits + 1 WHERE id = $1",
	                       1, p, NULL);
	if (rv != 0)
		sb_log_kv(SB_LOG_WARN, "resubmitted, but not marked", "id", p[0], NULL);
	sb_log_kv(SB_LOG_INFO, "validation error resubmitted", "id", p[0], "topic", topic, NULL);
	out->id = sb_rpc_call_strdup(call, p[0]);
	out->topic = sb_rpc_call_strdup(call, topic);
	out->resubmitted_at = sb_rpc_call_strdup(call, now);
	return SB__RPC__CODE__OK;
}
