/* commit.c: the group commit of publishes. Concurrent Publish and PublishBatch calls queue their
 * rows (a publish is one row, a batch n rows, each the parameters of "publish") and wait; the
 * committer thread takes queued items in order (at most
 * SB_PUBSUB_PUBLISH_GROUP_MAX items and SB_PUBSUB_PUBLISH_GROUP_ROWS rows; an item is never
 * split, and a batch larger than the row cap forms a group of its own) and stores them with
 * one multi-row statement ("publish_group": each column an array) on its own connection: one
 * round trip, one statement and one WAL flush for the group instead of one per request. Every
 * caller is answered only after that statement (its own transaction) committed, so a 202 still
 * means the message is stored. When the group's statement fails (one bad item fails it, or
 * two items carry the same new idempotency key), the committer runs each item alone: a publish
 * with "publish", a batch with its own "publish_group" (still one statement, all or nothing),
 * so one bad item never fails the others and each gets its own error. A thread of its own rather
 * than a leader among the waiting workers: the next group starts as soon as one is stored,
 * without waiting for a waiting worker to be scheduled to lead it (docs/pubsub.md). */
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
	pthread_cond_t cv; /* signalled (with gc_mu) when done */
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

/* The committer: stores queued items a group at a time until stopped with nothing queued. */
static void *
ps_committer_main(void *arg)
{
	struct ps_state *st = arg;
	struct ps_pub_item *batch[PS_GROUP_MAX];
	pthread_mutex_lock(&st->gc_mu);
	for (;;) {
		if (st->gc_head == NULL) {
			if (st->gc_stop)
				break;
			pthread_cond_wait(&st->gc_work, &st->gc_mu);
			continue;
		}
		size_t nrows = 0, k = ps_take(st, batch, &nrows);
		pthread_mutex_unlock(&st->gc_mu);
		ps_group_run(st->gcpg, batch, k);
		/* One wake of the waiting consumers for the whole group: a wake per publish made
		 * every consumer that found nothing claim again for each publish of the group. */
		for (size_t i = 0; i < k; i++)
			if (batch[i]->rv == 0) {
				ps_wake(st);
				break;
			}
		sb_series_observe(st->m_group, (double)nrows);
		pthread_mutex_lock(&st->gc_mu);
		for (size_t i = 0; i < k; i++) {
			batch[i]->done = true;
			pthread_cond_signal(&batch[i]->cv);
		}
	}
	pthread_mutex_unlock(&st->gc_mu);
	return NULL;
}

int
ps_committer_start(struct ps_state *st)
{
	if (st->cfg->publish_group_max <= 1)
		return 0; /* no group commit: each publish commits on its own connection */
	int rv = sb_pg_open_opts(st->cfg->common.database_url, ps_stmts, &ps_pg_opts, &st->gcpg);
	if (rv != 0)
		return rv;
	if (pthread_create(&st->gc_thread, NULL, ps_committer_main, st) != 0)
		return SB_EIO;
	st->gc_started = true;
	return 0;
}

void
ps_committer_stop(struct ps_state *st)
{
	if (st->gc_started) {
		pthread_mutex_lock(&st->gc_mu);
		st->gc_stop = true;
		pthread_cond_signal(&st->gc_work);
		pthread_mutex_unlock(&st->gc_mu);
		pthread_join(st->gc_thread, NULL);
		st->gc_started = false;
	}
	sb_pg_close(st->gcpg);
	st->gcpg = NULL;
}

int
ps_publish_grouped(struct ps_state *st, struct sb_rpc_call *call, const char *const *const *rows,
                   size_t n, PGresult **res)
{
	struct ps_pub_item me = { .rows = rows, .n = n, .res = res };
	for (size_t r = 0; r < n; r++)
		res[r] = NULL;
	if (st->cfg->publish_group_max <= 1) {
		/* no group commit: each request alone, in parallel */
		me.rv = ps_item_alone(ps_pg(call), &me);
		if (me.rv == 0)
			ps_wake(st);
		return me.rv;
	}
	/* No pooled connection is held while waiting (pool.c): the committer has its own. */
	ps_pool_release();
	pthread_cond_init(&me.cv, NULL);
	pthread_mutex_lock(&st->gc_mu);
	*st->gc_tail = &me;
	st->gc_tail = &me.next;
	pthread_cond_signal(&st->gc_work);
	while (!me.done)
		pthread_cond_wait(&me.cv, &st->gc_mu);
	pthread_mutex_unlock(&st->gc_mu);
	pthread_cond_destroy(&me.cv);
	if (me.rv != 0)
		for (size_t r = 0; r < n; r++) {
			PQclear(res[r]);
			res[r] = NULL;
		}
	return me.rv;
}
