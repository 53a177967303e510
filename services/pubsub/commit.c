/* commit.c: the group commit of publishes. Concurrent Publish and PublishBatch calls queue their
 * rows (a publish is one row, a batch n rows, each the parameters of "publish"); whichever
 * worker finds no group running becomes the leader, takes queued items in order (at most
 * SB_PUBSUB_PUBLISH_GROUP_MAX items and SB_PUBSUB_PUBLISH_GROUP_ROWS rows; an item is never
 * split, and a batch larger than the row cap forms a group of its own) and stores them with
 * one multi-row statement ("publish_group": each column an array) on its own connection: one
 * round trip, one statement and one WAL flush for the group instead of one per request. Every
 * caller is answered only after that statement (its own transaction) committed, so a 202 still
 * means the message is stored. When the group's statement fails (one bad item fails it, or
 * two items carry the same new idempotency key), the leader runs each item alone: a publish
 * with "publish", a batch with its own "publish_group" (still one statement, all or nothing),
 * so one bad item never fails the others and each gets its own error. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"

/* SB_PUBSUB_PUBLISH_GROUP_MAX is at most this (it was the pipeline's size when each publish of
 * a group was a statement of its own; kept so that the setting means the same). */
#define PS_GROUP_MAX (SB_PG_PIPELINE_MAX - 2)
_Static_assert(PS_GROUP_MAX == 14, "SB_PUBSUB_PUBLISH_GROUP_MAX's ceiling is 14");

/* One queued request: n rows (each PS_PUBLISH_NPARAMS parameters), their results and the
 * outcome, which is the same for every row of the item (it is stored whole or not at all). */
struct ps_pub_item {
	const char *const *const *rows;
	size_t n;
	PGresult **res;
	int rv;
	bool done;
	struct ps_pub_item *next;
};

/* The parameter of "publish" that is the same for every publish (the idempotency window). */
#define PS_PUBLISH_WINDOW 8

/* A result of one row (stored, routed, fresh) for one publish of a group, as "publish"
 * answers: row r of the group's result, from its second column on. */
static PGresult *
ps_group_result(const PGresult *res, int r)
{
	static const char *const names[] = { "stored", "routed", "fresh" };
	PGresAttDesc att[3];
	PGresult *out = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	for (int k = 0; k < 3; k++)
		att[k] = (PGresAttDesc){ .name = (char *)names[k],
			                 .typid = PQftype(res, k + 1),
			                 .typlen = PQfsize(res, k + 1),
			                 .atttypmod = -1 };
	if (out == NULL || !PQsetResultAttrs(out, 3, att))
		goto fail;
	for (int k = 0; k < 3; k++)
		if (!PQsetvalue(out, 0, k, PQgetvalue(res, r, k + 1), PQgetlength(res, r, k + 1)))
			goto fail;
	return out;
fail:
	PQclear(out);
	return NULL;
}

/* ps_group_multi stores the rows of items (k of them, with more than one row together) with one
 * "publish_group" statement; 0 with each row's res filled, or an error (no res filled). *ran is
 * set when the statement succeeded (the rows are stored even if its answer could not be read:
 * they must not be run again). */
static int
ps_group_multi(struct sb_pg *pg, struct ps_pub_item **items, size_t k, bool *ran)
{
	struct sb_buf a[PS_PUBLISH_NPARAMS];
	const char *p[PS_PUBLISH_NPARAMS];
	PGresult *res = NULL, **out = NULL;
	size_t n = 0;
	int rv = SB_ENOMEM;
	for (size_t j = 0; j < PS_PUBLISH_NPARAMS; j++)
		a[j] = (struct sb_buf)SB_BUF_INIT;
	for (size_t i = 0; i < k; i++)
		n += items[i]->n;
	/* out[r]: where the answer of row r (0-based, the statement's position r + 1) goes */
	if ((out = calloc(n, sizeof(*out))) == NULL)
		goto done;
	for (size_t j = 0; j < PS_PUBLISH_NPARAMS; j++) {
		if (j == PS_PUBLISH_WINDOW) {
			p[j] = items[0]->rows[0][j];
			continue;
		}
		for (size_t i = 0; i < k; i++)
			for (size_t r = 0; r < items[i]->n; r++)
				if (sb_pg_array_add(&a[j], items[i]->rows[r][j]) != 0)
					goto done;
		if (sb_pg_array_end(&a[j]) != 0)
			goto done;
		p[j] = a[j].data;
	}
	if ((rv = sb_pg_exec_prepared(pg, "publish_group", PS_PUBLISH_NPARAMS, p, &res)) != 0)
		goto done;
	*ran = true;
	rv = SB_EPROTO;
	if ((size_t)PQntuples(res) != n)
		goto done;
	for (size_t r = 0; r < n; r++) {
		long pos = atol(PQgetvalue(res, (int)r, 0));
		if (pos < 1 || (size_t)pos > n || out[pos - 1] != NULL)
			goto unfill;
		if ((out[pos - 1] = ps_group_result(res, (int)r)) == NULL) {
			rv = SB_ENOMEM;
			goto unfill;
		}
	}
	for (size_t i = 0, r = 0; i < k; i++)
		for (size_t j = 0; j < items[i]->n; j++)
			items[i]->res[j] = out[r++];
	rv = 0;
	goto done;
unfill:
	for (size_t r = 0; r < n; r++)
		PQclear(out[r]);
done:
	free(out);
	PQclear(res);
	for (size_t j = 0; j < PS_PUBLISH_NPARAMS; j++)
		sb_buf_free(&a[j]);
	return rv;
}

/* ps_item_alone stores one item with a statement of its own: "publish" for one row, else
 * "publish_group" (one statement: the batch is stored whole or not at all). */
static int
ps_item_alone(struct sb_pg *pg, struct ps_pub_item *it)
{
	if (it->n == 1)
		return sb_pg_exec_prepared(pg, "publish", PS_PUBLISH_NPARAMS, it->rows[0],
		                           &it->res[0]);
	bool ran = false;
	return ps_group_multi(pg, &it, 1, &ran);
}

/* ps_group_run executes items (k) on pg and fills each one's res and rv. */
static void
ps_group_run(struct sb_pg *pg, struct ps_pub_item **items, size_t k)
{
	if (k > 1) {
		bool ran = false;
		int rv = ps_group_multi(pg, items, k, &ran);
		if (rv == 0 || ran || rv == SB_EUNAVAIL) {
			/* Stored, or maybe stored (the commit may have happened before the
			 * connection broke): an error then lets the publishers retry with their
			 * idempotency keys, never a false success nor a second copy. */
			for (size_t i = 0; i < k; i++)
				items[i]->rv = rv;
			return;
		}
	}
	/* Alone, or the group failed: one implicit transaction each. */
	for (size_t i = 0; i < k; i++)
		items[i]->rv = ps_item_alone(pg, items[i]);
}

/* ps_take moves the oldest queued items into batch (a group: at least one item, at most
 * publish_group_max items and, unless its first item alone has more, publish_group_rows rows)
 * and returns how many; with st->gc_mu held. */
static size_t
ps_take(struct ps_state *st, struct ps_pub_item **batch, size_t *rows)
{
	size_t k = 0;
	*rows = 0;
	while (k < (size_t)st->cfg->publish_group_max && st->gc_head != NULL &&
	       (k == 0 || *rows + st->gc_head->n <= (size_t)st->cfg->publish_group_rows)) {
		*rows += st->gc_head->n;
		batch[k++] = st->gc_head;
		st->gc_head = st->gc_head->next;
	}
	if (st->gc_head == NULL)
		st->gc_tail = &st->gc_head;
	return k;
}

int
ps_publish_grouped(struct ps_state *st, struct sb_rpc_call *call, const char *const *const *rows,
                   size_t n, PGresult **res)
{
	struct ps_pub_item me = { .rows = rows, .n = n, .res = res };
	struct ps_pub_item *batch[PS_GROUP_MAX];
	for (size_t r = 0; r < n; r++)
		res[r] = NULL;
	if (st->cfg->publish_group_max <= 1) {
		/* no group commit: each request alone, in parallel */
		me.rv = ps_item_alone(ps_pg(call), &me);
		if (me.rv == 0)
			ps_wake(st);
		return me.rv;
	}
	/* A follower holds no pooled connection while it waits (pool.c): the leader borrows one
	 * for the group's statement and gives it back before it waits again. */
	ps_pool_release();
	pthread_mutex_lock(&st->gc_mu);
	*st->gc_tail = &me;
	st->gc_tail = &me.next;
	while (!me.done) {
		if (st->gc_busy) {
			pthread_cond_wait(&st->gc_cv, &st->gc_mu);
			continue;
		}
		/* Lead: take the oldest queued items (ours among them, or in a later group). */
		size_t nrows = 0, k = ps_take(st, batch, &nrows);
		st->gc_busy = true;
		pthread_mutex_unlock(&st->gc_mu);
		ps_group_run(ps_pg(call), batch, k);
		ps_pool_release();
		/* One wake of the waiting consumers for the whole group: a wake per publish made
		 * every consumer that found nothing claim again for each publish of the group. */
		for (size_t i = 0; i < k; i++)
			if (batch[i]->rv == 0) {
				ps_wake(st);
				break;
			}
		pthread_mutex_lock(&st->gc_mu);
		for (size_t i = 0; i < k; i++)
			batch[i]->done = true;
		st->gc_busy = false;
		sb_series_observe(st->m_group, (double)nrows);
		pthread_cond_broadcast(&st->gc_cv);
	}
	pthread_mutex_unlock(&st->gc_mu);
	if (me.rv != 0)
		for (size_t r = 0; r < n; r++) {
			PQclear(res[r]);
			res[r] = NULL;
		}
	return me.rv;
}
