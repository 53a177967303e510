/* store.c: the relay's SQL on the outbox tables of SB_OUTBOX_TABLES and row <-> struct. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_pg_outbox.h"

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
	COL_TABLE,
	COL_COUNT
};

/* The SQL of one table's part of outbox_select: up to $2 pending rows of one shard, in id
 * order, tagged with the table's index k. */
#define OUTBOX_SQL_PART                                                                            \
	"(SELECT %d AS tbl, x.id, x.aggregate_id, x.event_id, x.event_type, x.topic, x.source, "   \
	"x.subject, x.traceparent, x.created_at, x.payload, x.attempts, x.shard FROM %s x WHERE "  \
	"x.shard = s.shard AND x.relayed_at IS NULL ORDER BY x.id LIMIT $2)"

/* outbox_store_build_select writes the select over every table of t to b. */
static int
outbox_store_build_select(const struct outbox_tables *t, struct sb_buf *b)
{
	int rv = 0;

	/* Shard by shard, each in id order through each table's outbox_pending: order matters
	 * only within an aggregate, hence within a shard of one table (an aggregate belongs to
	 * the service, hence the table, that writes it). The caller rotates the shard list
	 * between batches so that a backlog in the first shards cannot starve the others. The
	 * inner LIMIT stops the nested loop once $2 rows are found (later shards are not read);
	 * the outer level then keeps the longest prefix of them, in the same order, whose
	 * payloads fit in $3 bytes (and the first row whatever its size), so each shard's part
	 * of each table stays a prefix of its pending rows. found is how many rows there were
	 * before that cut. */
	rv |= sb_buf_puts(
	    b, "SELECT b.id, b.aggregate_id::text, b.event_id::text, b.event_type, "
	       "$4::text || b.topic, b.source, b.subject, b.traceparent, "
	       "to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
	       "b.payload, b.attempts, b.shard, b.found, b.tbl "
	       "FROM (SELECT q.*, count(*) OVER () AS found, row_number() OVER w AS pos, "
	       "sum(octet_length(q.payload)) OVER w AS upto "
	       "FROM (SELECT s.ord, o.* FROM unnest($1::int[]) WITH ORDINALITY AS s(shard, ord) "
	       "CROSS JOIN LATERAL (");
	for (int k = 0; k < t->n; k++) {
		if (k > 0)
			rv |= sb_buf_puts(b, " UNION ALL ");
		rv |= sb_buf_printf(b, OUTBOX_SQL_PART, k, t->name[k]);
	}
	rv |=
	    sb_buf_puts(b, ") o ORDER BY s.ord, o.tbl, o.id LIMIT $2) q "
	                   "WINDOW w AS (ORDER BY q.ord, q.tbl, q.id ROWS UNBOUNDED PRECEDING)) b "
	                   "WHERE b.upto <= $3 OR b.pos = 1 ORDER BY b.ord, b.tbl, b.id");
	return rv ? SB_ENOMEM : 0;
}

/* Per-table statements: name format and SQL format (the table's name is pasted in; it was
 * checked by sb_pg_outbox_table_valid). */
static const struct {
	const char *name, *sql;
	int nparams;
} outbox_store_per_table[] = {
	/* By primary key only: "AND relayed_at IS NULL" let the planner AND in a scan of the
	 * whole outbox_pending index (every unrelayed row) for each batch. */
	{ "outbox_mark_%d", "UPDATE %s SET relayed_at = now() WHERE id = ANY($1::bigint[])", 1 },
	{ "outbox_error_%d",
	  "UPDATE %s SET attempts = attempts + 1, last_error = $2, "
	  "relayed_at = CASE WHEN $3::bool THEN now() ELSE relayed_at END WHERE id = $1",
	  3 },
	{ "outbox_lag_%d",
	  "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
	  "FROM %s WHERE relayed_at IS NULL",
	  0 },
	{ "outbox_gc_%d",
	  "DELETE FROM %1$s WHERE id IN (SELECT id FROM %1$s "
	  "WHERE relayed_at < now() - make_interval(secs => $1::float8) LIMIT $2)",
	  2 },
};
#define OUTBOX_STORE_PER_TABLE (sizeof(outbox_store_per_table) / sizeof(outbox_store_per_table[0]))

int
outbox_store_tables_init(struct outbox_tables *t, const char *list)
{
	size_t nstmts;
	int ret;

	memset(t, 0, sizeof(*t));
	if ((ret = sb_pg_outbox_table_list(list, t->name, OUTBOX_TABLES_MAX)) < 0)
		return ret;
	t->n = ret;
	nstmts = 1 + OUTBOX_STORE_PER_TABLE * (size_t)t->n;
	if ((t->stmts = calloc(nstmts + 1, sizeof(*t->stmts))) == NULL ||
	    (t->text = calloc(nstmts * 2, sizeof(*t->text))) == NULL)
		goto nomem;
	struct sb_buf b = SB_BUF_INIT;
	if (outbox_store_build_select(t, &b) != 0) {
		sb_buf_free(&b);
		goto nomem;
	}
	t->text[0] = strdup("outbox_select");
	t->text[1] = b.data; /* owned by text now */
	t->stmts[0] = (struct sb_pg_stmt){ t->text[0], t->text[1], 4 };
	size_t i = 1;
	for (int k = 0; k < t->n; k++) {
		for (size_t j = 0; j < OUTBOX_STORE_PER_TABLE; j++, i++) {
			char name[32];
			struct sb_buf sql = SB_BUF_INIT;
			snprintf(name, sizeof(name), outbox_store_per_table[j].name, k);
			t->text[2 * i] = strdup(name);
			if (sb_buf_printf(&sql, outbox_store_per_table[j].sql, t->name[k]) != 0) {
				sb_buf_free(&sql);
				goto nomem;
			}
			t->text[2 * i + 1] = sql.data;
			if (t->text[2 * i] == NULL)
				goto nomem;
			t->stmts[i] = (struct sb_pg_stmt){ t->text[2 * i], t->text[2 * i + 1],
				                           outbox_store_per_table[j].nparams };
		}
	}
	if (t->text[0] == NULL)
		goto nomem;
	return 0;
nomem:
	outbox_store_tables_free(t);
	return SB_ENOMEM;
}

void
outbox_store_tables_free(struct outbox_tables *t)
{
	if (t->text != NULL)
		for (size_t i = 0; i < 2 * (1 + OUTBOX_STORE_PER_TABLE * (size_t)t->n); i++)
			free(t->text[i]);
	free(t->text);
	free(t->stmts);
	memset(t, 0, sizeof(*t));
}

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
		row->table = atoi(PQgetvalue(res, r, COL_TABLE));
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
outbox_store_mark_relayed(struct sb_pg *pg, int ntables, const struct outbox_batch *b, long *marked)
{
	int64_t *ids = NULL;
	char *arr = NULL;
	size_t cap = b->n * 21 + 3;
	int ret = SB_ENOMEM;

	if (marked)
		*marked = 0;
	if (b->n == 0)
		return 0;
	ids = malloc(b->n * sizeof(*ids));
	arr = malloc(cap);
	if (ids == NULL || arr == NULL)
		goto done;
	ret = 0;
	for (int k = 0; k < ntables && ret == 0; k++) {
		size_t nids = 0;
		char name[32];
		PGresult *res = NULL;
		for (size_t i = 0; i < b->n; i++)
			if (b->rows[i].state == OUTBOX_ROW_OK && b->rows[i].table == k)
				ids[nids++] = b->rows[i].id;
		if (nids == 0)
			continue;
		if ((ret = outbox_store_id_array(ids, nids, arr, cap)) != 0)
			break;
		snprintf(name, sizeof(name), "outbox_mark_%d", k);
		const char *params[] = { arr };
		if ((ret = sb_pg_exec_prepared(pg, name, 1, params, &res)) != 0)
			break;
		if (marked)
			*marked += atol(PQcmdTuples(res));
		PQclear(res);
	}
done:
	free(ids);
	free(arr);
	return ret;
}

int
outbox_store_record_error(struct sb_pg *pg, const struct outbox_row *row, const char *error,
                          bool dead)
{
	char idbuf[24], name[32];
	PGresult *res = NULL;
	int ret;

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, row->id);
	snprintf(name, sizeof(name), "outbox_error_%d", row->table);
	const char *params[] = { idbuf, error ? error : "unknown error", dead ? "true" : "false" };
	if ((ret = sb_pg_exec_prepared(pg, name, 3, params, &res)) != 0)
		return ret;
	PQclear(res);
	return 0;
}

int
outbox_store_lag_seconds(struct sb_pg *pg, int table, double *out)
{
	PGresult *res = NULL;
	char name[32];
	int ret;

	snprintf(name, sizeof(name), "outbox_lag_%d", table);
	if ((ret = sb_pg_exec_prepared(pg, name, 0, NULL, &res)) != 0)
		return ret;
	*out = PQntuples(res) == 1 ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
	PQclear(res);
	return 0;
}

int
outbox_store_gc(struct sb_pg *pg, int table, long long retention_s, int limit, long *deleted)
{
	char secs[24], lim[16], name[32];
	PGresult *res = NULL;
	int ret;

	*deleted = 0;
	snprintf(secs, sizeof(secs), "%lld", retention_s);
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *params[] = { secs, lim };
	snprintf(name, sizeof(name), "outbox_gc_%d", table);
	if ((ret = sb_pg_exec_prepared(pg, name, 2, params, &res)) != 0)
		return ret;
	*deleted = atol(PQcmdTuples(res));
	PQclear(res);
	return 0;
}
