/* sb_pg against a real PostgreSQL that restarts: calls during the outage fail with SB_EUNAVAIL
 * within a bounded time, later calls succeed on the same object (prepared statements too),
 * a transaction lost with its connection is never committed by accident, SQLSTATEs are kept;
 * pipelines (sb_pg_exec_pipeline) return every result, stop at their first error, and follow
 * the same transaction rules. A statement that PostgreSQL rolls back to break a deadlock is
 * sent again and succeeds, once, when it ran in its own implicit transaction, and is not when
 * it ran inside sb_pg_begin's transaction.
 * stack: pg
 * labels: pg,sanitize
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "it.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_pg.h"

static const struct sb_pg_stmt stmts[] = {
	{ "add", "SELECT $1::int + $2::int", 2 },
	{ "count_kv", "SELECT count(*) FROM pg_reconnect_kv", 0 },
	{ NULL, NULL, 0 },
};

static const struct sb_pg_opts opts = { .connect_timeout_s = 3,
	                                .backoff_base_ms = 50,
	                                .backoff_max_ms = 400 };

static void
restart_cmd(char *cmd, size_t n)
{
	const char *bin = getenv("SB_TEST_PG_BIN"), *dir = getenv("SB_TEST_PG_DIR");
	if (bin == NULL || dir == NULL)
		fail_msg("SB_TEST_PG_BIN/SB_TEST_PG_DIR unset: run under tests/lib/with-stack.sh");
	snprintf(cmd, n, "runuser -u postgres -- %s/pg_ctl -D %s -m fast -w restart >/dev/null",
	         bin, dir);
}

static struct sb_pg *
open_pg(void)
{
	const char *dsn = getenv("SB_TEST_PG_DSN");
	if (dsn == NULL)
		fail_msg("SB_TEST_PG_DSN unset: run under tests/lib/with-stack.sh");
	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open_opts(dsn, stmts, &opts, &pg), 0);
	assert_true(sb_pg_connected(pg));
	return pg;
}

/* add runs the prepared statement "add" and returns its value, or the error (negative). */
static int
add(struct sb_pg *pg, const char *a, const char *b)
{
	const char *params[] = { a, b };
	PGresult *r = NULL;
	int rv = sb_pg_exec_prepared(pg, "add", 2, params, &r);
	if (rv != 0)
		return rv;
	int v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void
test_sqlstate_and_lazy_prepare(void **state)
{
	(void)state;
	struct sb_pg *pg = open_pg();
	assert_int_equal(add(pg, "1", "2"), 3);
	/* count_kv failed to prepare on connect (no table yet); it is prepared on first use. */
	assert_int_equal(sb_pg_exec_prepared(pg, "count_kv", 0, NULL, NULL), SB_EIO);
	assert_string_equal(sb_pg_sqlstate(pg), "42P01");
	assert_int_equal(sb_pg_exec(pg, "CREATE TABLE pg_reconnect_kv (k text PRIMARY KEY)", NULL),
	                 0);
	PGresult *r = NULL;
	assert_int_equal(sb_pg_exec_prepared(pg, "count_kv", 0, NULL, &r), 0);
	assert_string_equal(PQgetvalue(r, 0, 0), "0");
	PQclear(r);

	const char *k[] = { "a" };
	const char *ins = "INSERT INTO pg_reconnect_kv VALUES ($1)";
	assert_int_equal(sb_pg_exec_params(pg, ins, 1, k, NULL), 0);
	assert_int_equal(sb_pg_exec_params(pg, ins, 1, k, NULL), SB_EEXIST);
	assert_string_equal(sb_pg_sqlstate(pg), "23505");
	assert_int_equal(add(pg, "x", "1"), SB_EINVAL); /* invalid_text_representation */
	assert_string_equal(sb_pg_sqlstate(pg), "22P02");
	assert_int_equal(add(pg, "2", "2"), 4);
	assert_string_equal(sb_pg_sqlstate(pg), "");
	sb_pg_close(pg);
}

/* The deadlock of test_conflict_sent_again: the statement under test (its own connection, a
 * thread) locks row 1 of pg_conflict_kv and waits for row 2, held by the other session, which
 * then asks for row 1. */
struct conflict_run {
	struct sb_pg *pg;
	bool in_tx; /* run the statement inside sb_pg_begin's transaction */
	int rv;
	char sqlstate[6]; /* of its error, read before the rollback clears it */
};

static const char conflict_sql[] = "UPDATE pg_conflict_kv SET v = v + 1 WHERE k IN (1, 2)";

static void *
conflict_thread(void *arg)
{
	struct conflict_run *c = arg;
	if (c->in_tx && (c->rv = sb_pg_begin(c->pg)) != 0)
		return NULL;
	c->rv = sb_pg_exec(c->pg, conflict_sql, NULL);
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", sb_pg_sqlstate(c->pg));
	if (c->in_tx)
		sb_pg_rollback(c->pg);
	return NULL;
}

/* waiting returns how many sessions wait for a lock in the statement under test. */
static int
waiting(struct sb_pg *watch)
{
	PGresult *r = NULL;
	assert_int_equal(sb_pg_exec(watch,
	                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
	                            "'Lock' AND query LIKE 'UPDATE pg_conflict_kv SET v = v + 1%'",
	                            &r),
	                 0);
	int n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* conflict_round makes the deadlock once and returns what the statement under test returned. The
 * statement's session detects the deadlock (deadlock_timeout 300 ms against the other's 60 s),
 * so it is the one PostgreSQL rolls back; the other session commits once its wait ends. */
static int
conflict_round(struct sb_pg *a, struct sb_pg *b, struct sb_pg *watch, bool in_tx, char sqlstate[6])
{
	assert_int_equal(sb_pg_exec(watch, "UPDATE pg_conflict_kv SET v = 0", NULL), 0);
	assert_int_equal(sb_pg_begin(b), 0);
	assert_int_equal(sb_pg_exec(b, "UPDATE pg_conflict_kv SET v = v WHERE k = 2", NULL), 0);
	struct conflict_run c = { .pg = a, .in_tx = in_tx, .rv = 1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, conflict_thread, &c), 0);
	/* a holds row 1 and waits for row 2: only then does b ask for row 1 (the cycle) */
	int i = 0;
	while (waiting(watch) == 0 && i++ < 200)
		it_sleep_ms(10);
	assert_int_equal(waiting(watch), 1);
	assert_int_equal(sb_pg_exec(b, "UPDATE pg_conflict_kv SET v = v WHERE k = 1", NULL), 0);
	assert_int_equal(sb_pg_commit(b), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	memcpy(sqlstate, c.sqlstate, sizeof(c.sqlstate));
	return c.rv;
}

static void
test_conflict_sent_again(void **state)
{
	(void)state;
	struct sb_pg *a = open_pg(), *b = open_pg(), *watch = open_pg();
	assert_int_equal(
	    sb_pg_exec(watch,
	               "DROP TABLE IF EXISTS pg_conflict_kv; CREATE TABLE "
	               "pg_conflict_kv (k int PRIMARY KEY, v int NOT NULL); INSERT INTO "
	               "pg_conflict_kv VALUES (1, 0), (2, 0)",
	               NULL),
	    0);
	assert_int_equal(sb_pg_exec(a, "SET deadlock_timeout = '300ms'", NULL), 0);
	assert_int_equal(sb_pg_exec(b, "SET deadlock_timeout = '60s'", NULL), 0);

	/* On its own: rolled back by the deadlock, sent again, applied once. */
	char sqlstate[6];
	assert_int_equal(conflict_round(a, b, watch, false, sqlstate), 0);
	PGresult *r = NULL;
	assert_int_equal(
	    sb_pg_exec(watch, "SELECT string_agg(v::text, ',' ORDER BY k) FROM pg_conflict_kv", &r),
	    0);
	assert_string_equal(PQgetvalue(r, 0, 0), "1,1");
	PQclear(r);
	struct sb_buf m = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&m), 0);
	assert_non_null(strstr(m.data, "pg_conflict_retries_total{statement=\"sql\"} 1\n"));
	sb_buf_free(&m);

	/* Inside a transaction: SB_EBUSY at once (the transaction is gone), nothing applied. */
	assert_int_equal(conflict_round(a, b, watch, true, sqlstate), SB_EBUSY);
	assert_string_equal(sqlstate, "40P01");
	assert_int_equal(
	    sb_pg_exec(watch, "SELECT string_agg(v::text, ',' ORDER BY k) FROM pg_conflict_kv", &r),
	    0);
	assert_string_equal(PQgetvalue(r, 0, 0), "0,0");
	PQclear(r);
	m = (struct sb_buf)SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&m), 0);
	assert_non_null(strstr(m.data, "pg_conflict_retries_total{statement=\"sql\"} 1\n"));
	sb_buf_free(&m);
	assert_int_equal(sb_pg_exec(watch, "DROP TABLE pg_conflict_kv", NULL), 0);
	sb_pg_close(a);
	sb_pg_close(b);
	sb_pg_close(watch);
}

static void
test_transaction_lost_with_connection(void **state)
{
	(void)state;
	struct sb_pg *pg = open_pg();
	assert_int_equal(sb_pg_begin(pg), 0);
	const char *k[] = { "in-lost-tx" };
	assert_int_equal(
	    sb_pg_exec_params(pg, "INSERT INTO pg_reconnect_kv VALUES ($1)", 1, k, NULL), 0);
	char cmd[512];
	restart_cmd(cmd, sizeof(cmd));
	assert_int_equal(system(cmd), 0);

	/* The call that meets the dead connection fails; later ones too, until rollback. */
	assert_int_equal(sb_pg_exec(pg, "SELECT 1", NULL), SB_EUNAVAIL);
	assert_int_equal(add(pg, "1", "1"), SB_EUNAVAIL);
	assert_int_equal(sb_pg_commit(pg), SB_EUNAVAIL);
	assert_non_null(strstr(sb_pg_errmsg(pg), "transaction was lost"));
	assert_int_equal(sb_pg_rollback(pg), 0);

	/* Same object, no reopen: it reconnects and re-prepares. */
	int v = SB_EUNAVAIL;
	for (int i = 0; i < 100 && v == SB_EUNAVAIL; i++) {
		v = add(pg, "20", "22");
		if (v == SB_EUNAVAIL)
			it_sleep_ms(100);
	}
	assert_int_equal(v, 42);
	assert_int_equal(sb_pg_reconnects(pg), 1);
	PGresult *r = NULL;
	assert_int_equal(sb_pg_exec_prepared(pg, "count_kv", 0, NULL, &r), 0);
	assert_string_equal(PQgetvalue(r, 0, 0), "1"); /* the lost insert is not there */
	PQclear(r);
	sb_pg_close(pg);
}

static void
test_outage_during_restart(void **state)
{
	(void)state;
	struct sb_pg *pg = open_pg();
	assert_int_equal(add(pg, "1", "2"), 3);
	char cmd[512];
	restart_cmd(cmd, sizeof(cmd));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Hammer the database while it restarts; record what the calls return and how long. */
	int unavail = 0, ok_after = 0, other = 0, restarted = 0;
	int64_t worst = 0, t_end = it_now_ms() + 20000;
	while (it_now_ms() < t_end) {
		int64_t t0 = it_now_ms();
		int v = add(pg, "2", "3");
		int64_t took = it_now_ms() - t0;
		if (took > worst)
			worst = took;
		if (v == SB_EUNAVAIL) {
			unavail++;
			assert_true(sb_pg_retry_after_ms(pg) <= 400);
		} else if (v == 5) {
			ok_after += unavail > 0;
		} else {
			other++;
			fprintf(stderr, "unexpected result %d: %s\n", v, sb_pg_errmsg(pg));
		}
		if (!restarted) {
			int st = 0;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				restarted = 1;
				assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			}
		}
		if (restarted && ok_after >= 3)
			break;
		it_sleep_ms(20);
	}
	if (!restarted) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("pg_ctl restart did not finish");
	}
	fprintf(stderr, "outage: %d unavailable calls, worst call %lld ms, %d reconnects\n",
	        unavail, (long long)worst, (int)sb_pg_reconnects(pg));
	assert_true(unavail >= 1);  /* the outage was seen as SB_EUNAVAIL */
	assert_int_equal(other, 0); /* and as nothing else */
	assert_true(ok_after >= 3); /* then calls succeed again on the same object */
	assert_true(worst < 3500);  /* no call hung beyond the connect timeout */
	assert_true(sb_pg_reconnects(pg) >= 1);
	char detail[128];
	assert_int_equal(sb_pg_ping(pg, detail, sizeof(detail)), 0);
	/* What /metrics shows: both restarts counted, statement latencies by name. */
	struct sb_buf m = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&m), 0);
	assert_non_null(strstr(m.data, "pg_reconnects_total 2\n"));
	assert_non_null(strstr(m.data, "pg_query_duration_seconds_count{statement=\"add\"}"));
	assert_non_null(strstr(m.data, "pg_query_duration_seconds_count{statement=\"sql\"}"));
	sb_buf_free(&m);
	sb_pg_close(pg);
}

/* count_rows returns how many rows pg_pipe_kv has whose key is k. */
static int
count_rows(struct sb_pg *pg, const char *k)
{
	const char *p[] = { k };
	PGresult *r = NULL;
	assert_int_equal(
	    sb_pg_exec_params(pg, "SELECT count(*) FROM pg_pipe_kv WHERE k = $1", 1, p, &r), 0);
	int n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

static void
test_pipeline(void **state)
{
	(void)state;
	struct sb_pg *pg = open_pg();
	assert_int_equal(sb_pg_exec(pg, "CREATE TABLE pg_pipe_kv (k text PRIMARY KEY)", NULL), 0);
	const char *two_three[] = { "2", "3" };
	PGresult *sum = NULL, *ins = NULL;

	/* Every step's result comes back; the transaction spans the pipeline. */
	const struct sb_pg_step ok[] = {
		{ .sql = "BEGIN" },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('a')", .res = &ins },
		{ .name = "add", .nparams = 2, .params = two_three, .res = &sum },
		{ .sql = "COMMIT" },
	};
	assert_int_equal(sb_pg_exec_pipeline(pg, ok, 4), 0);
	assert_string_equal(PQgetvalue(sum, 0, 0), "5");
	assert_string_equal(PQcmdTuples(ins), "1");
	PQclear(sum);
	PQclear(ins);
	assert_int_equal(count_rows(pg, "a"), 1);

	/* The first failure is returned and the rest is skipped; nothing of it is committed. */
	const struct sb_pg_step dup[] = {
		{ .sql = "BEGIN" },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('b')", .res = &ins },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('a')" },
		{ .name = "add", .nparams = 2, .params = two_three, .res = &sum },
	};
	assert_int_equal(sb_pg_exec_pipeline(pg, dup, 4), SB_EEXIST);
	assert_string_equal(sb_pg_sqlstate(pg), "23505");
	assert_null(ins);
	assert_null(sum);
	assert_int_equal(sb_pg_rollback(pg), 0);
	assert_int_equal(count_rows(pg, "b"), 0);

	/* Without BEGIN the steps are one implicit transaction. */
	const struct sb_pg_step implicit[] = {
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('c')" },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('a')" },
	};
	assert_int_equal(sb_pg_exec_pipeline(pg, implicit, 2), SB_EEXIST);
	assert_int_equal(count_rows(pg, "c"), 0);

	/* A transaction opened by one pipeline is committed by the next. */
	const struct sb_pg_step open_tx[] = {
		{ .sql = "BEGIN" },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('d')" },
	};
	const struct sb_pg_step close_tx[] = {
		{ .name = "add", .nparams = 2, .params = two_three, .res = &sum },
		{ .sql = "COMMIT" },
	};
	assert_int_equal(sb_pg_exec_pipeline(pg, open_tx, 2), 0);
	assert_int_equal(sb_pg_exec_pipeline(pg, close_tx, 2), 0);
	assert_string_equal(PQgetvalue(sum, 0, 0), "5");
	PQclear(sum);
	assert_int_equal(count_rows(pg, "d"), 1);

	/* Bad steps are refused before anything is sent; the connection stays usable. */
	const struct sb_pg_step unknown[] = { { .name = "nope" } };
	const struct sb_pg_step wrong_n[] = {
		{ .name = "add", .nparams = 1, .params = two_three }
	};
	const struct sb_pg_step empty[] = { { .res = &sum } };
	assert_int_equal(sb_pg_exec_pipeline(pg, unknown, 1), SB_ENOTFOUND);
	assert_int_equal(sb_pg_exec_pipeline(pg, wrong_n, 1), SB_EINVAL);
	assert_int_equal(sb_pg_exec_pipeline(pg, empty, 1), SB_EINVAL);
	assert_int_equal(sb_pg_exec_pipeline(pg, empty, 0), SB_EINVAL);
	assert_null(sum);
	assert_int_equal(add(pg, "20", "22"), 42);
	sb_pg_close(pg);
}

/* test_pipeline_transaction_lost: a transaction a pipeline opened is lost with its connection
 * like one sb_pg_begin opened; the pipeline that would commit it fails and commits nothing. */
static void
test_pipeline_transaction_lost(void **state)
{
	(void)state;
	struct sb_pg *pg = open_pg();
	const struct sb_pg_step open_tx[] = {
		{ .sql = "BEGIN" },
		{ .sql = "INSERT INTO pg_pipe_kv VALUES ('lost')" },
	};
	const struct sb_pg_step commit[] = { { .sql = "COMMIT" } };
	assert_int_equal(sb_pg_exec_pipeline(pg, open_tx, 2), 0);
	char cmd[512];
	restart_cmd(cmd, sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(sb_pg_exec_pipeline(pg, commit, 1), SB_EUNAVAIL);
	assert_int_equal(sb_pg_exec_pipeline(pg, commit, 1), SB_EUNAVAIL);
	assert_non_null(strstr(sb_pg_errmsg(pg), "transaction was lost"));
	assert_int_equal(sb_pg_rollback(pg), 0);
	int v = SB_EUNAVAIL;
	for (int i = 0; i < 100 && v == SB_EUNAVAIL; i++) {
		v = add(pg, "1", "1");
		if (v == SB_EUNAVAIL)
			it_sleep_ms(100);
	}
	assert_int_equal(v, 2);
	assert_int_equal(count_rows(pg, "lost"), 0);
	sb_pg_close(pg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlstate_and_lazy_prepare),
		cmocka_unit_test(test_transaction_lost_with_connection),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_outage_during_restart),
		cmocka_unit_test(test_pipeline_transaction_lost),
		cmocka_unit_test(test_conflict_sent_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
