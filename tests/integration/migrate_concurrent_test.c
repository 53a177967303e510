/* Migrations against a real PostgreSQL: two processes migrating the same schema at the same
 * moment apply each migration once; a changed migration is refused naming its file; a failing
 * migration is rolled back; a migration appended later is applied on the next start.
 * stack: pg
 * labels: pg,migrate
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_migrate.h"
#include "sb_pg.h"

#define SCHEMA "mig_conc"

/* v1 sleeps so that the second process surely arrives while the first holds the lock. */
static const struct sb_migration migs_v2[] = {
	{ 1, "001_init.sql",
	  "CREATE TABLE " SCHEMA ".applied_marks (id serial PRIMARY KEY);"
	  "SELECT pg_sleep(0.3);" },
	{ 2, "002_mark.sql", "INSERT INTO " SCHEMA ".applied_marks DEFAULT VALUES;" },
	{ 0, NULL, NULL },
};

static const struct sb_migration migs_changed[] = {
	{ 1, "001_init.sql",
	  "CREATE TABLE " SCHEMA ".applied_marks (id serial PRIMARY KEY);"
	  "SELECT pg_sleep(0.3);" },
	{ 2, "002_mark.sql", "INSERT INTO " SCHEMA ".applied_marks DEFAULT VALUES; -- edited" },
	{ 0, NULL, NULL },
};

static const struct sb_migration migs_v3[] = {
	{ 1, "001_init.sql",
	  "CREATE TABLE " SCHEMA ".applied_marks (id serial PRIMARY KEY);"
	  "SELECT pg_sleep(0.3);" },
	{ 2, "002_mark.sql", "INSERT INTO " SCHEMA ".applied_marks DEFAULT VALUES;" },
	/* unqualified: search_path points at the schema during a migration */
	{ 3, "003_note.sql", "ALTER TABLE applied_marks ADD COLUMN note text;" },
	{ 0, NULL, NULL },
};

static const struct sb_migration migs_v4_bad[] = {
	{ 1, "001_init.sql",
	  "CREATE TABLE " SCHEMA ".applied_marks (id serial PRIMARY KEY);"
	  "SELECT pg_sleep(0.3);" },
	{ 2, "002_mark.sql", "INSERT INTO " SCHEMA ".applied_marks DEFAULT VALUES;" },
	{ 3, "003_note.sql", "ALTER TABLE applied_marks ADD COLUMN note text;" },
	{ 4, "004_broken.sql", "CREATE TABLE half_done (id int); SELECT 1 / 0;" },
	{ 0, NULL, NULL },
};

static const char *
dsn(void)
{
	const char *d = getenv("SB_TEST_PG_DSN");
	if (d == NULL)
		fail_msg("SB_TEST_PG_DSN is not set: run under tests/lib/with-stack.sh");
	return d;
}

/* query_text runs sql and returns the first column of the first row (static buffer). */
static const char *
query_text(struct sb_pg *pg, const char *sql)
{
	static char out[256];
	PGresult *r = NULL;
	int rv = sb_pg_exec(pg, sql, &r);
	if (rv != 0)
		fail_msg("%s: %s (%s)", sql, sb_strerror(rv), sb_pg_errmsg(pg));
	snprintf(out, sizeof(out), "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return out;
}

/* migrate_child opens its own connection, waits for the start signal, migrates, exits. */
static void
migrate_child(int start_fd)
{
	struct sb_pg *pg = NULL;
	if (sb_pg_open(dsn(), NULL, &pg) != 0)
		_exit(10);
	char c;
	if (read(start_fd, &c, 1) < 0)
		_exit(11);
	char err[512] = "";
	int rv = sb_migrate(pg, SCHEMA, migs_v2, err, sizeof(err));
	if (rv != 0)
		fprintf(stderr, "child migrate: %s\n", err);
	sb_pg_close(pg);
	_exit(rv == 0 ? 0 : 1);
}

static void
test_concurrent_start_applies_once(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			close(p[1]);
			migrate_child(p[0]);
		}
	}
	close(p[0]);
	sleep(1);    /* both children connected and blocked on the pipe */
	close(p[1]); /* EOF: both start at the same moment */
	for (int i = 0; i < 2; i++) {
		int st = 0;
		int waited = 0;
		while (waitpid(kids[i], &st, WNOHANG) == 0 && waited < 300) {
			struct timespec ts = { 0, 100000000 };
			nanosleep(&ts, NULL);
			waited++;
		}
		if (waited >= 300) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &st, 0);
			fail_msg("migrating child %d hung", i);
		}
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}

	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open(dsn(), NULL, &pg), 0);
	assert_string_equal(query_text(pg, "SELECT count(*) FROM " SCHEMA ".applied_marks"), "1");
	assert_string_equal(query_text(pg, "SELECT string_agg(version::text, ',' ORDER BY version)"
	                                   " FROM " SCHEMA ".schema_migrations"),
	                    "1,2");
	char sum[65];
	sb_migrate_checksum(migs_v2[1].sql, sum);
	assert_string_equal(
	    query_text(pg, "SELECT checksum FROM " SCHEMA ".schema_migrations WHERE version = 2"),
	    sum);
	assert_string_equal(
	    query_text(pg, "SELECT name FROM " SCHEMA ".schema_migrations WHERE version = 2"),
	    "002_mark.sql");
	/* The advisory lock was released: a third run takes it and applies nothing. */
	char err[512] = "";
	assert_int_equal(sb_migrate(pg, SCHEMA, migs_v2, err, sizeof(err)), 0);
	assert_string_equal(query_text(pg, "SELECT count(*) FROM " SCHEMA ".applied_marks"), "1");
	sb_pg_close(pg);
}

static void
test_changed_checksum_refused(void **state)
{
	(void)state;
	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open(dsn(), NULL, &pg), 0);
	char err[512] = "";
	assert_int_equal(sb_migrate(pg, SCHEMA, migs_changed, err, sizeof(err)), SB_EEXIST);
	assert_non_null(strstr(err, "002_mark.sql"));
	assert_non_null(strstr(err, "changed"));
	assert_string_equal(query_text(pg, "SELECT count(*) FROM " SCHEMA ".applied_marks"), "1");
	sb_pg_close(pg);
}

static void
test_appended_migration_applied_later(void **state)
{
	(void)state;
	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open(dsn(), NULL, &pg), 0);
	char err[512] = "";
	assert_int_equal(sb_migrate(pg, SCHEMA, migs_v3, err, sizeof(err)), 0);
	assert_string_equal(query_text(pg, "SELECT count(*) FROM information_schema.columns"
	                                   " WHERE table_schema = '" SCHEMA "'"
	                                   " AND table_name = 'applied_marks'"
	                                   " AND column_name = 'note'"),
	                    "1");
	assert_string_equal(query_text(pg, "SELECT string_agg(version::text, ',' ORDER BY version)"
	                                   " FROM " SCHEMA ".schema_migrations"),
	                    "1,2,3");
	assert_string_equal(query_text(pg, "SELECT count(*) FROM " SCHEMA ".applied_marks"), "1");

	/* A failing migration is rolled back whole and named; earlier ones stay. */
	assert_int_not_equal(sb_migrate(pg, SCHEMA, migs_v4_bad, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "004_broken.sql"));
	assert_non_null(strstr(err, "22012")); /* division_by_zero */
	assert_string_equal(query_text(pg, "SELECT count(*) FROM information_schema.tables"
	                                   " WHERE table_name = 'half_done'"),
	                    "0");
	assert_string_equal(query_text(pg, "SELECT max(version) FROM " SCHEMA ".schema_migrations"),
	                    "3");
	/* The connection is usable afterwards (not left inside the failed transaction). */
	assert_string_equal(query_text(pg, "SELECT 41 + 1"), "42");
	sb_pg_close(pg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_start_applies_once),
		cmocka_unit_test(test_changed_checksum_refused),
		cmocka_unit_test(test_appended_migration_applied_later),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
