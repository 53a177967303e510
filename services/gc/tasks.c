/* tasks.c: the cleanup tasks, one row each, and how one runs. */
#include "gc.h"

#include <stdio.h>
#include <stdlib.h>

#include "sb_log.h"

/* Refresh tokens: expired, or revoked, longer than the grace ago. A token rotated (used_at)
 * but neither expired nor revoked is kept: its family's reuse detection needs it. */
#define GC_SQL_TOKENS                                                                              \
	"DELETE FROM auth.refresh_tokens WHERE token_hash IN (SELECT token_hash FROM "             \
	"auth.refresh_tokens WHERE (expires_at < " GC_NOW " - make_interval(secs => $3::float8) "  \
	"OR revoked_at < " GC_NOW                                                                  \
	" - make_interval(secs => $3::float8)) LIMIT $2) AND " GC_HOLDS_LEASE

/* Outbox rows relayed longer than the retention ago; an unrelayed row is never deleted. One
 * task per outbox table of the platform (services/common/sb_pg_outbox.h). */
#define GC_SQL_OUTBOX_OF(table)                                                                    \
	"DELETE FROM " table " WHERE id IN (SELECT id FROM " table " WHERE "                       \
	"relayed_at < " GC_NOW                                                                     \
	" - make_interval(secs => $3::float8) LIMIT $2) AND " GC_HOLDS_LEASE
#define GC_SQL_OUTBOX       GC_SQL_OUTBOX_OF("messages.outbox")
#define GC_SQL_FILES_OUTBOX GC_SQL_OUTBOX_OF("files.outbox")

const struct gc_task gc_tasks[] = {
	{ "tokens", offsetof(struct gc_cfg, tokens), offsetof(struct gc_cfg, token_grace_s),
	  GC_SQL_TOKENS },
	{ "outbox", offsetof(struct gc_cfg, outbox), offsetof(struct gc_cfg, outbox_retention_s),
	  GC_SQL_OUTBOX },
	{ "files_outbox", offsetof(struct gc_cfg, outbox),
	  offsetof(struct gc_cfg, outbox_retention_s), GC_SQL_FILES_OUTBOX },
	{ NULL, 0, 0, NULL },
};

const struct sb_pg_stmt gc_stmts[] = {
	{ "tokens", GC_SQL_TOKENS, 3 },
	{ "outbox", GC_SQL_OUTBOX, 3 },
	{ "files_outbox", GC_SQL_FILES_OUTBOX, 3 },
	{ "holds_lease", "SELECT " GC_HOLDS_LEASE, 0 },
	{ NULL, NULL, 0 },
};

bool
gc_task_enabled(const struct gc_task *t, const struct gc_cfg *cfg)
{
	return *(const bool *)((const char *)cfg + t->enabled_offset);
}

int
gc_task_run(struct sb_pg *pg, const struct gc_task *t, const struct gc_cfg *cfg,
            const atomic_bool *stop, long *deleted)
{
	char offset[24], batch[24], age[24];
	long n;
	int ret;

	*deleted = 0;
	snprintf(offset, sizeof(offset), "%lld", cfg->clock_offset_s);
	snprintf(batch, sizeof(batch), "%lld", cfg->batch);
	snprintf(age, sizeof(age), "%lld", *(const long long *)((const char *)cfg + t->age_offset));
	const char *const params[] = { offset, batch, age };
	do {
		PGresult *res = NULL;
		if ((ret = sb_pg_exec_prepared(pg, t->name, 3, params, &res)) != 0)
			return ret;
		n = atol(PQcmdTuples(res));
		PQclear(res);
		*deleted += n;
	} while (n >= cfg->batch && !atomic_load(stop));
	return 0;
}
