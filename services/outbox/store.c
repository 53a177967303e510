/* store.c: the relay's SQL on messages.outbox and row <-> struct. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

/* Columns of outbox_select, in this order. */
enum {
	COL_ID,
	COL_AGG,
	COL_EVENT,
	COL_TYPE,
	COL_TOPIC,
	COL_SOURCE,
	COL_SUBJECT,
	COL_TRACE,
	COL_TIME,
	COL_PAYLOAD,
	COL_ATTEMPTS,
	COL_SHARD,
	COL_FOUND,
	COL_COUNT
};

const struct sb_pg_stmt outbox_store_stmts[] = {
	/* Shard by shard, each in id order through outbox_pending: order matters only within an
	 * aggregate, hence within a shard. The caller rotates the shard list between batches so
	 * that a backlog in the first shards cannot starve the others. The inner LIMIT stops the
	 * nested loop once $2 rows are found (later shards are not read); the outer level then
	 * keeps the longest prefix of them, in the same order, whose payloads fit in $3 bytes
	 * (and the first row whatever its size), so each shard's part stays a prefix of its
	 * pending rows. found is how many rows there were before that cut. */
	{ "outbox_select",
	  "SELECT b.id, b.aggregate_id::text, b.event_id::text, b.event_type, $4::text || b.topic, "
	  "b.source, "
	  "b.subject, b.traceparent, to_char(b.created_at AT TIME ZONE 'UTC', "
	  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), b.payload, b.attempts, b.shard, b.found "
	  "FROM (SELECT q.*, count(*) OVER () AS found, row_number() OVER w AS pos, "
	  "sum(octet_length(q.payload)) OVER w AS upto "
	  "FROM (SELECT s.ord, o.* FROM unnest($1::int[]) WITH ORDINALITY AS s(shard, ord) "
	  "CROSS JOIN LATERAL (SELECT * FROM messages.outbox x WHERE x.shard = s.shard AND "
	  "x.relayed_at IS NULL ORDER BY x.id LIMIT $2) o LIMIT $2) q "
	  "WINDOW w AS (ORDER BY q.ord, q.id ROWS UNBOUNDED PRECEDING)) b "
	  "WHERE b.upto <= $3 OR b.pos = 1 ORDER BY b.ord, b.id",
	  4 },
	/* By primary key only: "AND relayed_at IS NULL" let the planner AND in a scan of the
	 * whole outbox_pending index (every unrelayed row) for each batch. */
	{ "outbox_mark",
	  "UPDATE messages.outbox SET relayed_at = now() WHERE id = ANY($1::bigint[])", 1 },
	{ "outbox_error",
	  "UPDATE messages.outbox SET attempts = attempts + 1, last_error = $2, "
	  "relayed_at = CASE WHEN $3::bool THEN now() ELSE relayed_at END WHERE id = $1",
	  3 },
	{ "outbox_lag",
	  "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
	  "FROM messages.outbox WHERE relayed_at IS NULL",
	  0 },
	{ "outbox_gc",
	  "DELETE FROM messages.outbox WHERE id IN (SELECT id FROM messages.outbox "
	  "WHERE relayed_at < now() - make_interval(secs => $1::float8) LIMIT $2)",
	  2 },
	{ NULL, NULL, 0 },
};

int
outbox_store_id_array(const int64_t *ids, size_t nids, char *out, size_t n)
{
	size_t len = 0;
	int w;

	if (out == NULL || n < 3)
		return SB_ERANGE;
	out[len++] = '{';
	for (size_t i = 0; i < nids; i++) {
		w = snprintf(out + len, n - len, "%s%" PRId64, i ? "," : "", ids[i]);
		if (w < 0 || (size_t)w >= n - len)
			return SB_ERANGE;
		len += (size_t)w;
	}
	if (len + 2 > n)
		return SB_ERANGE;
	out[len++] = '}';
	out[len] = '\0';
	return 0;
}

static const char *
outbox_store_opt(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

int
outbox_store_select(struct sb_pg *pg, const bool held[OUTBOX_SHARDS], unsigned first, int limit,
                    long long max_bytes, const char *prefix, struct outbox_batch *b)
{
	char shards[OUTBOX_SHARDS * 4 + 3], lim[16], bytes[24];
	size_t len = 0;
	PGresult *res = NULL;
	int ret;

	memset(b, 0, sizeof(*b));
	shards[len++] = '{';
	for (unsigned i = 0; i < OUTBOX_SHARDS; i++) {
		unsigned s = (first + i) % OUTBOX_SHARDS;
		if (held[s])
			len += (size_t)snprintf(shards + len, sizeof(shards) - len, "%s%u",
			                        len > 1 ? "," : "", s);
	}
	shards[len++] = '}';
	shards[len] = '\0';
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(bytes, sizeof(bytes), "%lld", max_bytes);
	const char *params[] = { shards, lim, bytes, prefix != NULL ? prefix : "" };
	if ((ret = sb_pg_exec_prepared(pg, "outbox_select", 4, params, &res)) != 0)
		return ret;
	if (PQnfields(res) != COL_COUNT) {
		PQclear(res);
		return SB_EPROTO;
	}
	int n = PQntuples(res);
	b->res = res;
	if (n == 0)
		return 0;
	/* Full: the limit was reached or the byte budget cut rows off; more are waiting. */
	b->full = n >= limit || atoll(PQgetvalue(res, 0, COL_FOUND)) > n;
	b->rows = calloc((size_t)n, sizeof(*b->rows));
	if (b->rows == NULL) {
		outbox_store_batch_free(b);
		return SB_ENOMEM;
	}
	for (int r = 0; r < n; r++) {
		struct outbox_row *row = &b->rows[r];
		row->id = strtoll(PQgetvalue(res, r, COL_ID), NULL, 10);
		row->aggregate_id = PQgetvalue(res, r, COL_AGG);
		row->event_id = PQgetvalue(res, r, COL_EVENT);
		row->event_type = PQgetvalue(res, r, COL_TYPE);
		row->topic = PQgetvalue(res, r, COL_TOPIC);
		row->source = PQgetvalue(res, r, COL_SOURCE);
		row->subject = outbox_store_opt(res, r, COL_SUBJECT);
		row->traceparent = outbox_store_opt(res, r, COL_TRACE);
		row->created_at = PQgetvalue(res, r, COL_TIME);
		row->attempts = atoi(PQgetvalue(res, r, COL_ATTEMPTS));
		row->shard = atoi(PQgetvalue(res, r, COL_SHARD));
		if (row->shard >= 0 && row->shard < OUTBOX_SHARDS)
			b->shards[row->shard] = true;
		row->payload = PQunescapeBytea(
		    (const unsigned char *)PQgetvalue(res, r, COL_PAYLOAD), &row->payload_len);
		b->n = (size_t)r + 1;
		if (row->payload == NULL) {
			outbox_store_batch_free(b);
			return SB_ENOMEM;
		}
	}
	return 0;
}

void
outbox_store_batch_free(struct outbox_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		PQfreemem(b->rows[i].payload);
	free(b->rows);
	PQclear(b->res);
	memset(b, 0, sizeof(*b));
}

int
outbox_store_mark_relayed(struct sb_pg *pg, const struct outbox_batch *b, long *marked)
{
	int64_t *ids = NULL;
	char *arr = NULL;
	size_t nids = 0, cap = b->n * 21 + 3;
	PGresult *res = NULL;
	int ret = SB_ENOMEM;

	if (marked)
		*marked = 0;
	if (b->n == 0)
		return 0;
	ids = malloc(b->n * sizeof(*ids));
	arr = malloc(cap);
	if (ids == NULL || arr == NULL)
		goto done;
	for (size_t i = 0; i < b->n; i++)
		if (b->rows[i].state == OUTBOX_ROW_OK)
			ids[nids++] = b->rows[i].id;
	ret = 0;
	if (nids == 0)
		goto done;
	if ((ret = outbox_store_id_array(ids, nids, arr, cap)) != 0)
		goto done;
	const char *params[] = { arr };
	if ((ret = sb_pg_exec_prepared(pg, "outbox_mark", 1, params, &res)) != 0)
		goto done;
	if (marked)
		*marked = atol(PQcmdTuples(res));
	PQclear(res);
done:
	free(ids);
	free(arr);
	return ret;
}

int
outbox_store_record_error(struct sb_pg *pg, int64_t id, const char *error, bool dead)
{
	char idbuf[24];
	PGresult *res = NULL;
	int ret;

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	const char *params[] = { idbuf, error ? error : "unknown error", dead ? "true" : "false" };
	if ((ret = sb_pg_exec_prepared(pg, "outbox_error", 3, params, &res)) != 0)
		return ret;
	PQclear(res);
	return 0;
}

int
outbox_store_lag_seconds(struct sb_pg *pg, double *out)
{
	PGresult *res = NULL;
	int ret;

	if ((ret = sb_pg_exec_prepared(pg, "outbox_lag", 0, NULL, &res)) != 0)
		return ret;
	*out = PQntuples(res) == 1 ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
	PQclear(res);
	return 0;
}

int
outbox_store_gc(struct sb_pg *pg, long long retention_s, int limit, long *deleted)
{
	char secs[24], lim[16];
	PGresult *res = NULL;
	int ret;

	*deleted = 0;
	snprintf(secs, sizeof(secs), "%lld", retention_s);
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *params[] = { secs, lim };
	if ((ret = sb_pg_exec_prepared(pg, "outbox_gc", 2, params, &res)) != 0)
		return ret;
	*deleted = atol(PQcmdTuples(res));
	PQclear(res);
	return 0;
}
