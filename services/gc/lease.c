/* lease.c: the leader lease, a session advisory lock on the gc's own connection. */
#include "gc.h"

#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

/* gc_lease_query runs a one-boolean query and returns its value in *yes. */
static int
gc_lease_query(struct gc *g, const char *name, const char *sql, bool *yes)
{
	PGresult *res = NULL;
	int ret = name != NULL ? sb_pg_exec_prepared(g->pg, name, 0, NULL, &res)
	                       : sb_pg_exec(g->pg, sql, &res);
	if (ret != 0)
		return ret;
	*yes = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

int
gc_lease_check(struct gc *g)
{
	bool held = false;
	int ret;

	if (g->leader) {
		/* Held by this very session: a reconnected connection is a new session, whose
		 * predecessor's lock the server dropped (and another replica may hold now). */
		if (sb_pg_reconnects(g->pg) == g->lease_reconnects &&
		    (ret = gc_lease_query(g, "holds_lease", NULL, &held)) != 0) {
			g->leader = false;
			sb_log_kv(SB_LOG_WARN, "gc lease lost", "error", sb_strerror(ret), NULL);
			return ret;
		}
		if (held)
			return 0;
		g->leader = false;
		sb_log_kv(SB_LOG_WARN, "gc lease lost", "error", "connection replaced or lock gone",
		          NULL);
	}
	ret = gc_lease_query(
	    g, NULL,
	    "SELECT pg_try_advisory_lock(" GC_STR(GC_LOCK_CLASS) ", " GC_STR(GC_LOCK_ID) ")",
	    &held);
	if (ret != 0)
		return ret;
	if (held) {
		g->leader = true;
		g->lease_reconnects = sb_pg_reconnects(g->pg);
		sb_log_kv(SB_LOG_INFO, "gc lease taken: this replica cleans up", NULL);
	}
	return 0;
}
