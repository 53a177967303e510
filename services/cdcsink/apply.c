/* apply.c: the SQL that applies a batch of transformed events, with the version guard.
 *
 * Per table, the batch's events are grouped by key and ordered by version; the r-th event of
 * every key goes into round r, so that no statement touches a row twice (ON CONFLICT refuses
 * that). Each round is one multi-row upsert per set of columns present (Cassandra changes may
 * carry only some cells; usually every event of a table has the same set) and one multi-row
 * delete. An upsert writes a row only when no tombstone of the same or a newer version exists,
 * and overwrites only an older row; a delete records a versioned tombstone and removes the row
 * only when the row is older. */
#include "cdcsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

#define CDC_MAX_ROWS 5000 /* rows of one statement */

/* Statements collected to be sent together in libpq's pipeline mode (one round trip for
 * several; cdc_apply_items_commit), leaving room for the caller's tail steps. */
#define CDC_Q_MAX (SB_PG_PIPELINE_MAX - 4)

struct cdc_q {
	size_t n;
	struct sb_buf sql[CDC_Q_MAX];
	struct sb_buf *arrs[CDC_Q_MAX]; /* nbufs[i] buffers each, the text[] parameters */
	size_t nbufs[CDC_Q_MAX];
	const char **params[CDC_Q_MAX];
	int np[CDC_Q_MAX];
};

static void
cdc_q_clear(struct cdc_q *q)
{
	for (size_t i = 0; i < q->n; i++) {
		sb_buf_free(&q->sql[i]);
		for (size_t c = 0; c < q->nbufs[i]; c++)
			sb_buf_free(&q->arrs[i][c]);
		free(q->arrs[i]);
		free(q->params[i]);
	}
	q->n = 0;
}

/* cdc_q_send sends the collected statements followed by the ntail steps in one pipeline and
 * adds the rows the statements wrote to *applied. The statements are freed either way. */
static int
cdc_q_send(struct sb_pg *pg, struct cdc_q *q, const struct sb_pg_step *tail, size_t ntail,
           long *applied)
{
	struct sb_pg_step steps[SB_PG_PIPELINE_MAX];
	PGresult *res[CDC_Q_MAX] = { 0 };
	size_t k = 0;
	int rv = 0;

	for (size_t i = 0; i < q->n; i++)
		steps[k++] = (struct sb_pg_step){ .sql = q->sql[i].data,
			                          .nparams = q->np[i],
			                          .params = q->params[i],
			                          .res = &res[i] };
	for (size_t i = 0; i < ntail && k < SB_PG_PIPELINE_MAX; i++)
		steps[k++] = tail[i];
	if (k > 0)
		rv = sb_pg_exec_pipeline(pg, steps, k);
	for (size_t i = 0; i < q->n; i++) {
		if (rv == 0 && res[i] != NULL)
			*applied += atol(PQcmdTuples(res[i]));
		PQclear(res[i]);
	}
	cdc_q_clear(q);
	return rv;
}

static int
cdc_item_cmp(const void *a, const void *b)
{
	const struct cdc_item *x = *(struct cdc_item *const *)a, *y = *(struct cdc_item *const *)b;
	int c = strcmp(x->row.keytext, y->row.keytext);
	if (c != 0)
		return c;
	if (x->row.version_us != y->row.version_us)
		return x->row.version_us < y->row.version_us ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : (x->offset > y->offset);
}

/* cdc_st returns the state of column c of r: a row transformed before schema evolution added
 * columns to its table has none of them. */
static enum cdc_val_state
cdc_st(const struct cdc_row *r, size_t c)
{
	return c < r->ncols ? r->state[c] : CDC_V_ABSENT;
}

/* cdc_same_cols tells whether two upserts of t carry the same columns. */
static bool
cdc_same_cols(const struct cdc_table *t, const struct cdc_row *a, const struct cdc_row *b)
{
	for (size_t c = 0; c < t->ncols; c++)
		if ((cdc_st(a, c) == CDC_V_ABSENT) != (cdc_st(b, c) == CDC_V_ABSENT))
			return false;
	return true;
}

static int
cdc_exec(struct sb_pg *pg, struct sb_buf *sql, const char **params, int np, long *affected)
{
	PGresult *res = NULL;
	int rv = sb_pg_exec_params(pg, sql->data, np, params, &res);
	if (rv == 0) {
		*affected = atol(PQcmdTuples(res));
		PQclear(res);
	}
	return rv;
}

/* cdc_arr_add appends one element to the text[] literal being built in b ('{' first): NULL, or
 * the value double-quoted with '"' and '\\' escaped. */
static int
cdc_arr_add(struct sb_buf *b, const char *v)
{
	int e = sb_buf_puts(b, b->len > 1 ? "," : "");
	if (v == NULL)
		return e | sb_buf_puts(b, "NULL");
	e |= sb_buf_puts(b, "\"");
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			e |= sb_buf_puts(b, "\\");
		e |= sb_buf_append(b, p, 1);
	}
	return e | sb_buf_puts(b, "\"");
}

/* cdc_columns_param builds one text[] parameter per column in cols (and one of the versions
 * last) from the n rows: the statement unnests them, so that its text and plan do not grow
 * with the batch. arrs has room for ncols + 1 buffers. */
static int
cdc_columns_param(const struct cdc_table *t, const bool *cols, struct cdc_item **rows, size_t n,
                  struct sb_buf *arrs, const char **params, int *np)
{
	int e = 0;
	*np = 0;
	for (size_t c = 0; c <= t->ncols; c++) {
		if (c < t->ncols && !cols[c])
			continue;
		struct sb_buf *a = &arrs[*np];
		e |= sb_buf_puts(a, "{");
		for (size_t i = 0; i < n; i++) {
			const struct cdc_row *r = &rows[i]->row;
			if (c == t->ncols) {
				char ver[24];
				snprintf(ver, sizeof(ver), "%lld", (long long)r->version_us);
				e |= cdc_arr_add(a, ver);
			} else {
				e |= cdc_arr_add(a, cdc_st(r, c) == CDC_V_SET ? r->val[c] : NULL);
			}
		}
		e |= sb_buf_puts(a, "}");
		params[(*np)++] = a->data;
	}
	return e != 0 ? SB_ENOMEM : 0;
}

/* cdc_unnest_select appends "SELECT u.c0::type AS "name", ..., u.cv::bigint AS _cdc_version
 * FROM unnest($1::text[], ...) AS u(c0, ..., cv)" for the columns in cols. */
static int
cdc_unnest_select(struct sb_buf *sql, const struct cdc_table *t, const bool *cols)
{
	char pg_t[96];
	int e = sb_buf_puts(sql, "SELECT "), k = 0;
	for (size_t c = 0; c < t->ncols; c++) {
		if (!cols[c])
			continue;
		cdc_type_pg(t->cols[c].type, pg_t, sizeof(pg_t));
		e |= sb_buf_printf(sql, "u.c%d::%s AS \"%s\", ", k++, pg_t, t->cols[c].name);
	}
	e |= sb_buf_puts(sql, "u.cv::bigint AS _cdc_version FROM unnest(");
	for (int i = 1; i <= k + 1; i++)
		e |= sb_buf_printf(sql, "%s$%d::text[]", i > 1 ? ", " : "", i);
	e |= sb_buf_puts(sql, ") AS u(");
	for (int i = 0; i < k; i++)
		e |= sb_buf_printf(sql, "c%d, ", i);
	return e | sb_buf_puts(sql, "cv)");
}

/* cdc_write runs one statement for the n upserts (same columns) or n deletes of t in rows. */
static int
cdc_write(struct sb_pg *pg, struct cdc_q *q, const struct cdc_table *t, struct cdc_item **rows,
          size_t n, bool del, long *applied)
{
	struct sb_buf sql = SB_BUF_INIT, *arrs = calloc(t->ncols + 1, sizeof(*arrs));
	const char **params = calloc(t->ncols + 1, sizeof(*params));
	bool *cols = calloc(t->ncols + 1, sizeof(*cols));
	char tomb[CDC_NAME_MAX + 16];
	int np = 0, rv = SB_ENOMEM, e = 0;
	size_t c;
	bool comma = false;

	if (arrs == NULL || params == NULL || cols == NULL)
		goto done;
	for (c = 0; c < t->ncols; c++)
		cols[c] = del ? t->cols[c].key : cdc_st(&rows[0]->row, c) != CDC_V_ABSENT;
	if ((rv = cdc_columns_param(t, cols, rows, n, arrs, params, &np)) != 0)
		goto done;
	cdc_table_tomb(t, tomb, sizeof(tomb));
	if (del) {
		/* A versioned tombstone, and the row removed when it is older. */
		e |= sb_buf_puts(&sql, "WITH v AS (");
		e |= cdc_unnest_select(&sql, t, cols);
		e |= sb_buf_printf(
		    &sql,
		    "), tomb AS (INSERT INTO \"%s\".\"%s\" AS d SELECT v.*, now() FROM v "
		    "ON CONFLICT (",
		    t->schema, tomb);
	} else {
		e |= sb_buf_printf(&sql, "INSERT INTO \"%s\".\"%s\" AS t (", t->schema, t->name);
		for (c = 0; c < t->ncols; c++)
			if (cols[c])
				e |= sb_buf_printf(&sql, "\"%s\", ", t->cols[c].name);
		e |= sb_buf_puts(&sql, "_cdc_version) SELECT v.* FROM (");
		e |= cdc_unnest_select(&sql, t, cols);
		e |= sb_buf_printf(&sql,
		                   ") AS v WHERE NOT EXISTS (SELECT 1 FROM \"%s\".\"%s\" d WHERE ",
		                   t->schema, tomb);
		for (c = 0; c < t->ncols; c++)
			if (t->cols[c].key)
				e |= sb_buf_printf(&sql, "d.\"%s\" = v.\"%s\" AND ",
				                   t->cols[c].name, t->cols[c].name);
		e |= sb_buf_puts(&sql, "d._cdc_version >= v._cdc_version) ON CONFLICT (");
	}
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key) {
			e |= sb_buf_printf(&sql, "%s\"%s\"", comma ? ", " : "", t->cols[c].name);
			comma = true;
		}
	if (del) {
		e |= sb_buf_printf(
		    &sql,
		    ") DO UPDATE SET _cdc_version = EXCLUDED._cdc_version, "
		    "_cdc_deleted_at = now() WHERE d._cdc_version < "
		    "EXCLUDED._cdc_version) DELETE FROM \"%s\".\"%s\" t USING v WHERE ",
		    t->schema, t->name);
		for (c = 0; c < t->ncols; c++)
			if (t->cols[c].key)
				e |= sb_buf_printf(&sql, "t.\"%s\" = v.\"%s\" AND ",
				                   t->cols[c].name, t->cols[c].name);
		e |= sb_buf_puts(&sql, "t._cdc_version < v._cdc_version");
	} else {
		e |= sb_buf_puts(&sql, ") DO UPDATE SET ");
		for (c = 0; c < t->ncols; c++)
			if (!t->cols[c].key && cols[c])
				e |= sb_buf_printf(&sql, "\"%s\" = EXCLUDED.\"%s\", ",
				                   t->cols[c].name, t->cols[c].name);
		e |= sb_buf_puts(&sql,
		                 "_cdc_version = EXCLUDED._cdc_version, _cdc_updated_at = now() "
		                 "WHERE t._cdc_version < EXCLUDED._cdc_version");
	}
	if (e != 0) {
		rv = SB_ENOMEM;
	} else if (q == NULL) {
		rv = cdc_exec(pg, &sql, params, np, applied);
	} else {
		/* Into the pipeline (sent first when it is full): the buffers move to q. */
		if (q->n == CDC_Q_MAX && (rv = cdc_q_send(pg, q, NULL, 0, applied)) != 0)
			goto done;
		q->sql[q->n] = sql;
		q->arrs[q->n] = arrs;
		q->nbufs[q->n] = t->ncols + 1;
		q->params[q->n] = params;
		q->np[q->n++] = np;
		sql = (struct sb_buf)SB_BUF_INIT;
		arrs = NULL;
		params = NULL;
		rv = 0;
	}
done:
	if (arrs != NULL)
		for (c = 0; c <= t->ncols; c++)
			sb_buf_free(&arrs[c]);
	free(arrs);
	free(params);
	free(cols);
	sb_buf_free(&sql);
	return rv;
}

static int
cdc_upsert(struct sb_pg *pg, struct cdc_q *q, const struct cdc_table *t, struct cdc_item **rows,
           size_t n, long *applied)
{
	return cdc_write(pg, q, t, rows, n, false, applied);
}

static int
cdc_delete(struct sb_pg *pg, struct cdc_q *q, const struct cdc_table *t, struct cdc_item **rows,
           size_t n, long *applied)
{
	return cdc_write(pg, q, t, rows, n, true, applied);
}

/* cdc_apply_round applies (or queues in q) the m items of one round of table t. */
static int
cdc_apply_round(struct sb_pg *pg, struct cdc_q *q, struct cdc_table *t, struct cdc_item **r,
                size_t m, struct cdc_item **tmp, long *applied)
{
	size_t i, k, cap = CDC_MAX_ROWS;
	int rv;
	/* Deletes. */
	k = 0;
	for (i = 0; i < m; i++)
		if (r[i]->row.op == CDC_OP_DELETE) {
			tmp[k++] = r[i];
			if (k == cap) {
				if ((rv = cdc_delete(pg, q, t, tmp, k, applied)) != 0)
					return rv;
				k = 0;
			}
		}
	if (k > 0 && (rv = cdc_delete(pg, q, t, tmp, k, applied)) != 0)
		return rv;
	/* Upserts, one statement per set of columns. */
	bool *taken = calloc(m, sizeof(*taken));
	if (taken == NULL)
		return SB_ENOMEM;
	rv = 0;
	for (i = 0; i < m && rv == 0; i++) {
		if (taken[i] || r[i]->row.op != CDC_OP_UPSERT)
			continue;
		k = 0;
		for (size_t j = i; j < m && rv == 0; j++) {
			if (taken[j] || r[j]->row.op != CDC_OP_UPSERT ||
			    !cdc_same_cols(t, &r[i]->row, &r[j]->row))
				continue;
			taken[j] = true;
			tmp[k++] = r[j];
			if (k == cap) {
				rv = cdc_upsert(pg, q, t, tmp, k, applied);
				k = 0;
			}
		}
		if (rv == 0 && k > 0)
			rv = cdc_upsert(pg, q, t, tmp, k, applied);
	}
	free(taken);
	return rv;
}

static int
cdc_apply(struct sb_pg *pg, struct cdc_q *q, struct cdc_item **items, size_t n, long *applied)
{
	struct cdc_item **mine = calloc(n + 1, sizeof(*mine)), **tmp = calloc(n + 1, sizeof(*tmp)),
	                **round = calloc(n + 1, sizeof(*round));
	int *rno = calloc(n + 1, sizeof(*rno));
	int rv = SB_ENOMEM;
	bool *seen = calloc(n + 1, sizeof(*seen));

	*applied = 0;
	if (mine == NULL || tmp == NULL || round == NULL || rno == NULL || seen == NULL)
		goto done;
	rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		struct cdc_table *t = items[i]->table;
		size_t m = 0;
		if (seen[i] || items[i]->done)
			continue;
		for (size_t j = i; j < n; j++)
			if (!seen[j] && !items[j]->done && items[j]->table == t) {
				seen[j] = true;
				mine[m++] = items[j];
			}
		qsort(mine, m, sizeof(*mine), cdc_item_cmp);
		int maxr = 0;
		for (size_t j = 0; j < m; j++) {
			rno[j] =
			    j > 0 && strcmp(mine[j]->row.keytext, mine[j - 1]->row.keytext) == 0
			        ? rno[j - 1] + 1
			        : 0;
			if (rno[j] > maxr)
				maxr = rno[j];
		}
		for (int r = 0; r <= maxr && rv == 0; r++) {
			size_t k = 0;
			for (size_t j = 0; j < m; j++)
				if (rno[j] == r)
					round[k++] = mine[j];
			rv = cdc_apply_round(pg, q, t, round, k, tmp, applied);
		}
	}
done:
	free(mine);
	free(tmp);
	free(round);
	free(rno);
	free(seen);
	return rv;
}

int
cdc_apply_items(struct sb_pg *pg, struct cdc_item **items, size_t n, long *applied)
{
	*applied = 0;
	return cdc_apply(pg, NULL, items, n, applied);
}

int
cdc_apply_items_tail(struct sb_pg *pg, struct cdc_item **items, size_t n,
                     const struct sb_pg_step *tail, size_t ntail, long *applied)
{
	struct cdc_q q = { 0 };
	int rv;

	*applied = 0;
	if (ntail > SB_PG_PIPELINE_MAX - CDC_Q_MAX)
		return SB_EINVAL;
	rv = cdc_apply(pg, &q, items, n, applied);
	if (rv == 0)
		rv = cdc_q_send(pg, &q, tail, ntail, applied);
	cdc_q_clear(&q);
	return rv;
}
