/* commit.c: the group commit of publishes. Concurrent Publish calls queue the parameters of
 * their "publish" statement; whichever worker finds no batch running becomes the leader, takes
 * up to PS_GROUP_MAX queued publishes and stores them with one multi-row statement
 * ("publish_group": each column an array) on its own connection: one round trip, one statement
 * and one WAL flush for the batch instead of one per publish. Every caller is answered only
 * after that statement (its own transaction) committed, so a 202 still means the message is
 * stored. When the batch fails (one bad publish fails the statement), the leader runs each
 * publish of the batch alone with "publish", so one bad publish never fails the others and each
 * gets its own error. */
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

struct ps_pub_item {
	const char *const *params;
	PGresult *res;
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

/* ps_group_multi stores items (n > 1) with one "publish_group" statement; 0 with each item's
 * res filled, or an error (no item filled). *ran is set when the statement succeeded (the
 * publishes are stored even if its answer could not be read: they must not be run again). */
static int
ps_group_multi(struct sb_pg *pg, struct ps_pub_item **items, size_t n, bool *ran)
{
	struct sb_buf a[PS_PUBLISH_NPARAMS];
	const char *p[PS_PUBLISH_NPARAMS];
	PGresult *res = NULL;
	int rv = SB_ENOMEM;
	for (size_t k = 0; k < PS_PUBLISH_NPARAMS; k++)
		a[k] = (struct sb_buf)SB_BUF_INIT;
	for (size_t k = 0; k < PS_PUBLISH_NPARAMS; k++) {
		if (k == PS_PUBLISH_WINDOW) {
			p[k] = items[0]->params[k];
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (sb_pg_array_add(&a[k], items[i]->params[k]) != 0)
				goto done;
		if (sb_pg_array_end(&a[k]) != 0)
			goto done;
		p[k] = a[k].data;
	}
	if ((rv = sb_pg_exec_prepared(pg, "publish_group", PS_PUBLISH_NPARAMS, p, &res)) != 0)
		goto done;
	*ran = true;
	rv = SB_EPROTO;
	if ((size_t)PQntuples(res) != n)
		goto done;
	for (size_t i = 0; i < n; i++) {
		long pos = atol(PQgetvalue(res, (int)i, 0));
		if (pos < 1 || (size_t)pos > n || items[pos - 1]->res != NULL)
			goto unfill;
		items[pos - 1]->res = ps_group_result(res, (int)i);
		if (items[pos - 1]->res == NULL) {
			rv = SB_ENOMEM;
			goto unfill;
		}
	}
	rv = 0;
	goto done;
unfill:
	for (size_t i = 0; i < n; i++) {
		PQclear(items[i]->res);
		items[i]->res = NULL;
	}
done:
	PQclear(res);
	for (size_t k = 0; k < PS_PUBLISH_NPARAMS; k++)
		sb_buf_free(&a[k]);
	return rv;
}

/* ps_group_run executes items (n) on pg and fills each one's res and rv. */
static void
ps_group_run(struct sb_pg *pg, struct ps_pub_item **items, size_t n)
{
	if (n > 1) {
		bool ran = false;
		int rv = ps_group_multi(pg, items, n, &ran);
		if (rv == 0 || ran || rv == SB_EUNAVAIL) {
			/* Stored, or maybe stored (the commit may have happened before the
			 * connection broke): an error then lets the publishers retry with their
			 * idempotency keys, never a false success nor a second copy. */
			for (size_t i = 0; i < n; i++)
				items[i]->rv = rv;
			return;
		}
	}
	/* Alone, or the group failed: one implicit transaction each. */
	for (size_t i = 0; i < n; i++)
		items[i]->rv = sb_pg_exec_prepared(pg, "publish", PS_PUBLISH_NPARAMS,
		                                   items[i]->params, &items[i]->res);
}

int
ps_publish_grouped(struct ps_state *st, struct sb_pg *pg, const char *const *params, PGresult **res)
{
	struct ps_pub_item me = { .params = params };
	struct ps_pub_item *batch[PS_GROUP_MAX];
	if (st->cfg->publish_group_max <=
	    1) { /* no group commit: each publish alone, in parallel */
		int rv = sb_pg_exec_prepared(pg, "publish", PS_PUBLISH_NPARAMS, params, res);
		if (rv == 0)
			ps_wake(st);
		return rv;
	}
	pthread_mutex_lock(&st->gc_mu);
	*st->gc_tail = &me;
	st->gc_tail = &me.next;
	while (!me.done) {
		if (st->gc_busy) {
			pthread_cond_wait(&st->gc_cv, &st->gc_mu);
			continue;
		}
		/* Lead: take the oldest queued statements (ours among them, or in a later batch).
		 */
		size_t n = 0;
		while (n < (size_t)st->cfg->publish_group_max && st->gc_head != NULL) {
			batch[n++] = st->gc_head;
			st->gc_head = st->gc_head->next;
		}
		if (st->gc_head == NULL)
			st->gc_tail = &st->gc_head;
		st->gc_busy = true;
		pthread_mutex_unlock(&st->gc_mu);
		ps_group_run(pg, batch, n);
		/* One wake of the waiting consumers for the whole group: a wake per publish made
		 * every consumer that found nothing claim again for each publish of the group. */
		for (size_t i = 0; i < n; i++)
			if (batch[i]->rv == 0) {
				ps_wake(st);
				break;
			}
		pthread_mutex_lock(&st->gc_mu);
		for (size_t i = 0; i < n; i++)
			batch[i]->done = true;
		st->gc_busy = false;
		sb_series_observe(st->m_group, (double)n);
		pthread_cond_broadcast(&st->gc_cv);
	}
	pthread_mutex_unlock(&st->gc_mu);
	*res = me.res;
	return me.rv;
}

int
ps_publish_many(struct sb_pg *pg, const char *const *const *params, size_t n, PGresult **res)
{
	struct ps_pub_item *items = calloc(n, sizeof(*items));
	struct ps_pub_item **ptrs = calloc(n, sizeof(*ptrs));
	bool ran = false;
	int rv = SB_ENOMEM;
	if (items == NULL || ptrs == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		items[i].params = params[i];
		ptrs[i] = &items[i];
	}
	/* one statement is one transaction: every publish stored, or none */
	if ((rv = ps_group_multi(pg, ptrs, n, &ran)) == 0)
		for (size_t i = 0; i < n; i++)
			res[i] = items[i].res;
done:
	free(ptrs);
	free(items);
	return rv;
}
