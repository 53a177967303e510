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

#define CDC_MAX_PARAMS 60000

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

/* cdc_upsert runs one statement for the n upserts of t in rows (same columns). */
static int
cdc_upsert(struct sb_pg *pg, const struct cdc_table *t, struct cdc_item **rows, size_t n,
           long *applied)
{
	struct sb_buf sql = SB_BUF_INIT;
	const struct cdc_row *first = &rows[0]->row;
	char pg_t[96], tomb[CDC_NAME_MAX + 16], ver[n][24];
	const char **params = NULL;
	int np = 0, rv = SB_ENOMEM, e = 0;
	size_t c, i;
	bool comma;

	cdc_table_tomb(t, tomb, sizeof(tomb));
	e |= sb_buf_printf(&sql, "INSERT INTO \"%s\".\"%s\" AS t (", t->schema, t->name);
	for (c = 0; c < t->ncols; c++)
		if (cdc_st(first, c) != CDC_V_ABSENT)
			e |= sb_buf_printf(&sql, "\"%s\", ", t->cols[c].name);
	e |= sb_buf_puts(&sql, "_cdc_version) SELECT v.* FROM (VALUES ");
	size_t per = 1;
	for (c = 0; c < t->ncols; c++)
		per += cdc_st(first, c) != CDC_V_ABSENT;
	if ((params = calloc(n * per, sizeof(*params))) == NULL)
		goto done;
	for (i = 0; i < n; i++) {
		const struct cdc_row *r = &rows[i]->row;
		e |= sb_buf_puts(&sql, i > 0 ? ", (" : "(");
		for (c = 0; c < t->ncols; c++) {
			if (cdc_st(first, c) == CDC_V_ABSENT)
				continue;
			cdc_type_pg(t->cols[c].type, pg_t, sizeof(pg_t));
			params[np++] = cdc_st(r, c) == CDC_V_SET ? r->val[c] : NULL;
			e |= sb_buf_printf(&sql, "$%d::%s, ", np, pg_t);
		}
		snprintf(ver[i], sizeof(ver[i]), "%lld", (long long)r->version_us);
		params[np++] = ver[i];
		e |= sb_buf_printf(&sql, "$%d::bigint)", np);
	}
	e |= sb_buf_puts(&sql, ") AS v(");
	for (c = 0; c < t->ncols; c++)
		if (cdc_st(first, c) != CDC_V_ABSENT)
			e |= sb_buf_printf(&sql, "\"%s\", ", t->cols[c].name);
	e |= sb_buf_printf(&sql,
	                   "_cdc_version) WHERE NOT EXISTS (SELECT 1 FROM \"%s\".\"%s\" d WHERE ",
	                   t->schema, tomb);
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key)
			e |= sb_buf_printf(&sql, "d.\"%s\" = v.\"%s\" AND ", t->cols[c].name,
			                   t->cols[c].name);
	e |= sb_buf_puts(&sql, "d._cdc_version >= v._cdc_version) ON CONFLICT (");
	comma = false;
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key) {
			e |= sb_buf_printf(&sql, "%s\"%s\"", comma ? ", " : "", t->cols[c].name);
			comma = true;
		}
	e |= sb_buf_puts(&sql, ") DO UPDATE SET ");
	for (c = 0; c < t->ncols; c++)
		if (!t->cols[c].key && cdc_st(first, c) != CDC_V_ABSENT)
			e |= sb_buf_printf(&sql, "\"%s\" = EXCLUDED.\"%s\", ", t->cols[c].name,
			                   t->cols[c].name);
	e |= sb_buf_puts(&sql, "_cdc_version = EXCLUDED._cdc_version, _cdc_updated_at = now() "
	                       "WHERE t._cdc_version < EXCLUDED._cdc_version");
	if (e != 0)
		goto done;
	rv = cdc_exec(pg, &sql, params, np, applied);
done:
	free(params);
	sb_buf_free(&sql);
	return rv;
}

/* cdc_delete runs one statement for the n deletes of t in rows. */
static int
cdc_delete(struct sb_pg *pg, const struct cdc_table *t, struct cdc_item **rows, size_t n,
           long *applied)
{
	struct sb_buf sql = SB_BUF_INIT;
	char pg_t[96], tomb[CDC_NAME_MAX + 16], ver[n][24];
	const char **params = NULL;
	int np = 0, rv = SB_ENOMEM, e = 0;
	size_t c, i, per = 1;
	bool comma;

	for (c = 0; c < t->ncols; c++)
		per += t->cols[c].key;
	cdc_table_tomb(t, tomb, sizeof(tomb));
	if ((params = calloc(n * per, sizeof(*params))) == NULL)
		goto done;
	e |= sb_buf_puts(&sql, "WITH v(");
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key)
			e |= sb_buf_printf(&sql, "\"%s\", ", t->cols[c].name);
	e |= sb_buf_puts(&sql, "_cdc_version) AS (VALUES ");
	for (i = 0; i < n; i++) {
		const struct cdc_row *r = &rows[i]->row;
		e |= sb_buf_puts(&sql, i > 0 ? ", (" : "(");
		for (c = 0; c < t->ncols; c++) {
			if (!t->cols[c].key)
				continue;
			cdc_type_pg(t->cols[c].type, pg_t, sizeof(pg_t));
			params[np++] = r->val[c];
			e |= sb_buf_printf(&sql, "$%d::%s, ", np, pg_t);
		}
		snprintf(ver[i], sizeof(ver[i]), "%lld", (long long)r->version_us);
		params[np++] = ver[i];
		e |= sb_buf_printf(&sql, "$%d::bigint)", np);
	}
	e |= sb_buf_printf(&sql,
	                   "), tomb AS (INSERT INTO \"%s\".\"%s\" AS d SELECT v.*, now() FROM v "
	                   "ON CONFLICT (",
	                   t->schema, tomb);
	comma = false;
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key) {
			e |= sb_buf_printf(&sql, "%s\"%s\"", comma ? ", " : "", t->cols[c].name);
			comma = true;
		}
	e |= sb_buf_printf(&sql,
	                   ") DO UPDATE SET _cdc_version = EXCLUDED._cdc_version, "
	                   "_cdc_deleted_at = now() WHERE d._cdc_version < "
	                   "EXCLUDED._cdc_version) DELETE FROM \"%s\".\"%s\" t USING v WHERE ",
	                   t->schema, t->name);
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].key)
			e |= sb_buf_printf(&sql, "t.\"%s\" = v.\"%s\" AND ", t->cols[c].name,
			                   t->cols[c].name);
	e |= sb_buf_puts(&sql, "t._cdc_version < v._cdc_version");
	if (e != 0)
		goto done;
	rv = cdc_exec(pg, &sql, params, np, applied);
done:
	free(params);
	sb_buf_free(&sql);
	return rv;
}

/* cdc_apply_round applies the m items of one round of table t. */
static int
cdc_apply_round(struct sb_pg *pg, struct cdc_table *t, struct cdc_item **r, size_t m,
                struct cdc_item **tmp, long *applied)
{
	size_t per = 1, i, k;
	int rv;
	for (size_t c = 0; c < t->ncols; c++)
		per++;
	size_t cap = CDC_MAX_PARAMS / per;
	/* Deletes. */
	k = 0;
	for (i = 0; i < m; i++)
		if (r[i]->row.op == CDC_OP_DELETE) {
			tmp[k++] = r[i];
			if (k == cap) {
				if ((rv = cdc_delete(pg, t, tmp, k, applied)) != 0)
					return rv;
				k = 0;
			}
		}
	if (k > 0 && (rv = cdc_delete(pg, t, tmp, k, applied)) != 0)
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
				rv = cdc_upsert(pg, t, tmp, k, applied);
				k = 0;
			}
		}
		if (rv == 0 && k > 0)
			rv = cdc_upsert(pg, t, tmp, k, applied);
	}
	free(taken);
	return rv;
}

int
cdc_apply_items(struct sb_pg *pg, struct cdc_item **items, size_t n, long *applied)
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
			rv = cdc_apply_round(pg, t, round, k, tmp, applied);
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
