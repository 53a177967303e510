/* commit.c: the group commit of publishes. Concurrent Publish calls queue their "publish"
 * statement; whichever worker finds no batch running becomes the leader, takes up to
 * PS_GROUP_MAX queued statements and sends BEGIN, them and COMMIT as one pipeline on its own
 * connection: one round trip and one WAL flush for the batch instead of one per publish. Every
 * caller is answered only after the COMMIT of its statement returned, so a 202 still means the
 * message is stored. When the batch fails (one bad statement aborts the transaction), the
 * leader rolls back and runs each statement of the batch alone, so one bad publish never fails
 * the others and each gets its own error. */
#include "pubsub.h"

#include <string.h>

#include "sb_err.h"

/* BEGIN + the statements + COMMIT fit in one pipeline (SB_PUBSUB_PUBLISH_GROUP_MAX is at most
 * this). */
#define PS_GROUP_MAX (SB_PG_PIPELINE_MAX - 2)
_Static_assert(PS_GROUP_MAX == 14, "SB_PUBSUB_PUBLISH_GROUP_MAX's ceiling is 14");

struct ps_pub_item {
	const char *const *params;
	PGresult *res;
	int rv;
	bool done;
	struct ps_pub_item *next;
};

/* ps_group_run executes items (n) on pg and fills each one's res and rv. */
static void
ps_group_run(struct sb_pg *pg, struct ps_pub_item **items, size_t n)
{
	struct sb_pg_step steps[SB_PG_PIPELINE_MAX];
	size_t k = 0;
	int rv;
	if (n > 1) {
		steps[k++] = (struct sb_pg_step){ .sql = "BEGIN" };
		for (size_t i = 0; i < n; i++)
			steps[k++] = (struct sb_pg_step){ .name = "publish",
				                          .nparams = PS_PUBLISH_NPARAMS,
				                          .params = items[i]->params,
				                          .res = &items[i]->res };
		steps[k++] = (struct sb_pg_step){ .sql = "COMMIT" };
		rv = sb_pg_exec_pipeline(pg, steps, k);
		if (rv == 0) {
			for (size_t i = 0; i < n; i++)
				items[i]->rv = 0;
			return;
		}
		sb_pg_rollback(pg);
		if (rv == SB_EUNAVAIL) {
			/* The COMMIT may have run: answering "unavailable" lets the publishers
			 * retry (with their idempotency keys), never a false success. */
			for (size_t i = 0; i < n; i++) {
				PQclear(items[i]->res);
				items[i]->res = NULL;
				items[i]->rv = rv;
			}
			return;
		}
		for (size_t i = 0; i < n; i++) {
			PQclear(items[i]->res);
			items[i]->res = NULL;
		}
	}
	/* Alone, or the batch failed: one implicit transaction each. */
	for (size_t i = 0; i < n; i++)
		items[i]->rv = sb_pg_exec_prepared(pg, "publish", PS_PUBLISH_NPARAMS,
		                                   items[i]->params, &items[i]->res);
}

int
ps_publish_grouped(struct ps_state *st, struct sb_pg *pg, const char *const *params, PGresult **res)
{
	struct ps_pub_item me = { .params = params };
	struct ps_pub_item *batch[PS_GROUP_MAX];
	if (st->cfg->publish_group_max <= 1) /* no group commit: each publish alone, in parallel */
		return sb_pg_exec_prepared(pg, "publish", PS_PUBLISH_NPARAMS, params, res);
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
