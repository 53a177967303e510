/* sb_migrate.c: applies a service's embedded SQL migrations under an advisory lock. */
#include "sb_migrate.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"
#include "sb_util_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_MIGRATE_LOCK_WAIT_MS 120000 /* how long to wait for another replica's migration */
#define SB_MIGRATE_LOCK_POLL_MS 50

/* One row of <schema>.schema_migrations. */
struct sb_migrate_row {
	int version;
	char name[128];
	char checksum[65];
};

struct sb_migrate_run {
	struct sb_pg *pg;
	const char *schema;
	char key[24]; /* the advisory lock key as text */
	struct sb_migrate_row *rows;
	int nrows;
	char *err;
	size_t n;
};

static int
sb_migrate_fail(struct sb_migrate_run *run, int rv, const char *what)
{
	const char *state = sb_pg_sqlstate(run->pg);
	snprintf(run->err, run->n, "schema %s: %s: %s%s%s%s", run->schema, what,
	         sb_pg_errmsg(run->pg)[0] ? sb_pg_errmsg(run->pg) : sb_strerror(rv),
	         state[0] ? " (SQLSTATE " : "", state, state[0] ? ")" : "");
	return rv;
}

/* sb_migrate_lock waits for the schema's advisory lock, polling so the wait is bounded. */
static int
sb_migrate_lock(struct sb_migrate_run *run)
{
	const char *params[] = { run->key };
	int64_t deadline = sb_time_mono_ms() + SB_MIGRATE_LOCK_WAIT_MS;
	int logged = 0;
	for (;;) {
		PGresult *r = NULL;
		int rv = sb_pg_exec_params(run->pg, "SELECT pg_try_advisory_lock($1::bigint)", 1,
		                           params, &r);
		if (rv != 0)
			return sb_migrate_fail(run, rv, "taking the migration lock");
		int got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		if (got)
			return 0;
		if (!logged) {
			sb_log_kv(SB_LOG_INFO, "waiting for another instance's migrations",
			          "schema", run->schema, NULL);
			logged = 1;
		}
		if (sb_time_mono_ms() >= deadline) {
			snprintf(run->err, run->n,
			         "schema %s: another instance held the migration lock for %d s",
			         run->schema, SB_MIGRATE_LOCK_WAIT_MS / 1000);
			return SB_ETIMEDOUT;
		}
		struct timespec ts = { 0, SB_MIGRATE_LOCK_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void
sb_migrate_unlock(struct sb_migrate_run *run)
{
	const char *params[] = { run->key };
	/* On a lost connection the server has released the lock already. */
	if (!sb_pg_connected(run->pg))
		return;
	(void)sb_pg_exec_params(run->pg, "SELECT pg_advisory_unlock($1::bigint)", 1, params, NULL);
}

/* sb_migrate_read creates the schema and its history table, then reads the history. */
static int
sb_migrate_read(struct sb_migrate_run *run)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "CREATE SCHEMA IF NOT EXISTS \"%s\";"
	         "CREATE TABLE IF NOT EXISTS \"%s\".schema_migrations ("
	         " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
	         " applied_at timestamptz NOT NULL DEFAULT now())",
	         run->schema, run->schema);
	int rv = sb_pg_exec(run->pg, sql, NULL);
	if (rv != 0)
		return sb_migrate_fail(run, rv, "creating schema_migrations");
	snprintf(sql, sizeof(sql),
	         "SELECT version, name, checksum FROM \"%s\".schema_migrations ORDER BY version",
	         run->schema);
	PGresult *r = NULL;
	if ((rv = sb_pg_exec(run->pg, sql, &r)) != 0)
		return sb_migrate_fail(run, rv, "reading schema_migrations");
	run->nrows = PQntuples(r);
	run->rows = calloc((size_t)run->nrows + 1, sizeof(*run->rows));
	if (run->rows == NULL) {
		PQclear(r);
		snprintf(run->err, run->n, "out of memory");
		return SB_ENOMEM;
	}
	for (int i = 0; i < run->nrows; i++) {
		run->rows[i].version = atoi(PQgetvalue(r, i, 0));
		snprintf(run->rows[i].name, sizeof(run->rows[i].name), "%s", PQgetvalue(r, i, 1));
		snprintf(run->rows[i].checksum, sizeof(run->rows[i].checksum), "%s",
		         PQgetvalue(r, i, 2));
	}
	PQclear(r);
	return 0;
}

static const struct sb_migrate_row *
sb_migrate_applied(const struct sb_migrate_run *run, int version)
{
	for (int i = 0; i < run->nrows; i++) {
		if (run->rows[i].version == version)
			return &run->rows[i];
	}
	return NULL;
}

/* sb_migrate_verify refuses changed or out-of-order migrations before anything is applied. */
static int
sb_migrate_verify(struct sb_migrate_run *run, const struct sb_migration *migs)
{
	int max_applied = run->nrows > 0 ? run->rows[run->nrows - 1].version : 0;
	for (int i = 0; i < run->nrows; i++) {
		const struct sb_migration *m = migs;
		while (m->version != 0 && m->version != run->rows[i].version)
			m++;
		if (m->version == 0) {
			char v[16];
			snprintf(v, sizeof(v), "%d", run->rows[i].version);
			sb_log_kv(SB_LOG_WARN, "applied migration unknown to this build", "schema",
			          run->schema, "version", v, "name", run->rows[i].name, NULL);
		}
	}
	for (const struct sb_migration *m = migs; m->version != 0; m++) {
		const struct sb_migrate_row *row = sb_migrate_applied(run, m->version);
		char sum[65];
		if (sb_migrate_checksum(m->sql, sum) != 0) {
			snprintf(run->err, run->n, "migration %s: cannot compute its checksum",
			         m->name);
			return SB_EIO;
		}
		if (row != NULL && strcmp(row->checksum, sum) != 0) {
			snprintf(
			    run->err, run->n,
			    "schema %s: migration %s (version %d) was changed after it was applied "
			    "(checksum %.12s in the database, %.12s in this build); add a new "
			    "migration instead of editing an applied one",
			    run->schema, m->name, m->version, row->checksum, sum);
			return SB_EEXIST;
		}
		if (row == NULL && m->version < max_applied) {
			snprintf(run->err, run->n,
			         "schema %s: migration %s (version %d) is older than the applied "
			         "version %d; renumber it after the applied ones",
			         run->schema, m->name, m->version, max_applied);
			return SB_EEXIST;
		}
	}
	return 0;
}

/* sb_migrate_apply runs one migration and records it, in one transaction. */
static int
sb_migrate_apply(struct sb_migrate_run *run, const struct sb_migration *m)
{
	char sum[65], ver[16], sql[256], what[192];
	sb_migrate_checksum(m->sql, sum);
	snprintf(ver, sizeof(ver), "%d", m->version);
	snprintf(what, sizeof(what), "migration %s failed", m->name);
	int64_t t0 = sb_time_mono_ms();

	int rv = sb_pg_begin(run->pg);
	if (rv != 0)
		return sb_migrate_fail(run, rv, what);
	snprintf(sql, sizeof(sql), "SET LOCAL search_path TO \"%s\", public", run->schema);
	if ((rv = sb_pg_exec(run->pg, sql, NULL)) != 0)
		goto fail;
	if ((rv = sb_pg_exec(run->pg, m->sql, NULL)) != 0)
		goto fail;
	snprintf(sql, sizeof(sql),
	         "INSERT INTO \"%s\".schema_migrations (version, name, checksum) "
	         "VALUES ($1::integer, $2, $3)",
	         run->schema);
	const char *params[] = { ver, m->name, sum };
	if ((rv = sb_pg_exec_params(run->pg, sql, 3, params, NULL)) != 0)
		goto fail;
	if ((rv = sb_pg_commit(run->pg)) != 0)
		goto fail;
	char ms[24];
	snprintf(ms, sizeof(ms), "%" PRId64, sb_time_mono_ms() - t0);
	sb_log_kv(SB_LOG_INFO, "migration applied", "schema", run->schema, "version", ver, "name",
	          m->name, "duration_ms", ms, NULL);
	return 0;
fail:
	sb_migrate_fail(run, rv, what);
	sb_pg_rollback(run->pg);
	return rv;
}

int
sb_migrate(struct sb_pg *pg, const char *schema, const struct sb_migration *migs, char *err,
           size_t n)
{
	if (n > 0)
		err[0] = '\0';
	if (pg == NULL || !sb_migrate_valid_schema(schema)) {
		snprintf(err, n, "invalid schema name '%s' (want [a-z_][a-z0-9_]*, at most 63)",
		         schema ? schema : "(null)");
		return SB_EINVAL;
	}
	int rv = sb_migrate_validate(migs, err, n);
	if (rv != 0)
		return rv;
	struct sb_migrate_run run = { .pg = pg, .schema = schema, .err = err, .n = n };
	snprintf(run.key, sizeof(run.key), "%" PRId64, sb_migrate_lock_key(schema));
	if ((rv = sb_migrate_lock(&run)) != 0)
		return rv;

	int applied = 0;
	if ((rv = sb_migrate_read(&run)) != 0)
		goto done;
	if ((rv = sb_migrate_verify(&run, migs)) != 0)
		goto done;
	for (const struct sb_migration *m = migs; m->version != 0; m++) {
		if (sb_migrate_applied(&run, m->version) != NULL)
			continue;
		if ((rv = sb_migrate_apply(&run, m)) != 0)
			goto done;
		applied++;
	}
	char count[16];
	snprintf(count, sizeof(count), "%d", applied);
	sb_log_kv(SB_LOG_INFO, "schema up to date", "schema", schema, "applied", count, NULL);
done:
	sb_migrate_unlock(&run);
	free(run.rows);
	return rv;
}
