/* lease.c: shard leases as PostgreSQL session advisory locks, shared fairly between replicas.
 *
 * Each live relay names its session OUTBOX_APP_NAME, so the number of live replicas is the
 * number of such sessions in pg_stat_activity: a replica that dies loses its session, its
 * locks and its place in the count together, with no registry to clean up. Each replica holds
 * ceil(64 / live) shards: above that it releases the surplus (between batches, so the batch of
 * a released shard has been acknowledged and marked), below it tries free shards. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"

int
outbox_lease_share(int shards, int live)
{
	if (live < 1)
		live = 1;
	return (shards + live - 1) / live;
}

int
outbox_lease_session_setup(struct outbox *o)
{
	int ret = sb_pg_exec(
	    o->pg, "SET application_name = '" OUTBOX_APP_NAME "'; LISTEN " OUTBOX_CHANNEL, NULL);
	if (ret != 0)
		return ret;
	o->pg_reconnects_seen = sb_pg_reconnects(o->pg);
	o->session_ready = true;
	return 0;
}

static void
outbox_lease_publish(struct outbox *o)
{
	int n = 0;
	for (int s = 0; s < OUTBOX_SHARDS; s++)
		n += o->held[s];
	atomic_store(&o->held_count, n);
	sb_series_set(outbox_m.shards_held, n);
}

void
outbox_lease_lost(struct outbox *o)
{
	bool had = atomic_load(&o->held_count) > 0;
	for (int s = 0; s < OUTBOX_SHARDS; s++)
		o->held[s] = false;
	o->session_ready = false;
	outbox_lease_publish(o);
	if (had)
		sb_log_kv(SB_LOG_WARN, "database session lost: shard leases dropped", NULL);
}

/* outbox_lease_call runs fn(class, shard) and returns its boolean result in *got. */
static int
outbox_lease_call(struct outbox *o, const char *fn, int shard, bool *got)
{
	char sql[96];
	PGresult *res = NULL;
	int ret;

	snprintf(sql, sizeof(sql), "SELECT %s(%d, %d)", fn, OUTBOX_LOCK_CLASS, shard);
	if ((ret = sb_pg_exec(o->pg, sql, &res)) != 0)
		return ret;
	*got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

static int
outbox_lease_live(struct outbox *o, int *live)
{
	PGresult *res = NULL;
	int ret = sb_pg_exec(
	    o->pg,
	    "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" OUTBOX_APP_NAME
	    "' AND datname = current_database()",
	    &res);
	if (ret != 0)
		return ret;
	*live = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 1;
	PQclear(res);
	return 0;
}

int
outbox_lease_balance(struct outbox *o)
{
	int live = 1, held = 0, ret, share;
	bool got;

	if ((ret = outbox_lease_live(o, &live)) != 0)
		return ret;
	share = outbox_lease_share((int)o->cfg->shards, live);
	for (int s = 0; s < OUTBOX_SHARDS; s++)
		held += o->held[s];
	/* Release the surplus from the top. */
	for (int s = OUTBOX_SHARDS - 1; s >= 0 && held > share; s--) {
		if (!o->held[s])
			continue;
		if ((ret = outbox_lease_call(o, "pg_advisory_unlock", s, &got)) != 0)
			goto done;
		o->held[s] = false;
		held--;
	}
	/* Take free shards, starting at a rotating point so replicas do not all race for 0. */
	for (int i = 0; i < OUTBOX_SHARDS && held < share; i++) {
		int s = (int)((o->rotate + (unsigned)i) % OUTBOX_SHARDS);
		if (o->held[s])
			continue;
		if ((ret = outbox_lease_call(o, "pg_try_advisory_lock", s, &got)) != 0)
			goto done;
		if (got) {
			o->held[s] = true;
			held++;
		}
	}
	o->rotate += 7;
	ret = 0;
done:
	outbox_lease_publish(o);
	return ret;
}

void
outbox_lease_release_all(struct outbox *o)
{
	if (atomic_load(&o->held_count) > 0 && o->session_ready)
		sb_pg_exec(o->pg, "SELECT pg_advisory_unlock_all()", NULL);
	for (int s = 0; s < OUTBOX_SHARDS; s++)
		o->held[s] = false;
	outbox_lease_publish(o);
}
