/* Tests of sb_pg that need no server: SQLSTATE mapping, bad DSNs, behaviour while the
 * database is unreachable (open succeeds, calls fail fast, reconnect attempts back off). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_pg.h"

/* closed_port returns a loopback TCP port nothing listens on (bound, then released). */
static int
closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void
test_sqlstate_mapping(void **state)
{
	(void)state;
	static const struct {
		const char *state;
		int err;
		enum sb_pg_class cls;
	} cases[] = {
		{ "23505", SB_EEXIST, SB_PG_UNIQUE },
		{ "23503", SB_EINVAL, SB_PG_CONSTRAINT },
		{ "40001", SB_EBUSY, SB_PG_RETRY },
		{ "40P01", SB_EBUSY, SB_PG_RETRY },
		{ "08006", SB_EUNAVAIL, SB_PG_CONNECTION },
		{ "08001", SB_EUNAVAIL, SB_PG_CONNECTION },
		{ "57P01", SB_EUNAVAIL, SB_PG_CONNECTION },
		{ "57P03", SB_EUNAVAIL, SB_PG_CONNECTION },
		{ "57014", SB_ETIMEDOUT, SB_PG_CANCELED },
		{ "22P02", SB_EINVAL, SB_PG_BAD_INPUT },
		{ "42P01", SB_EIO, SB_PG_UNDEFINED_OBJECT },
		{ "42601", SB_EIO, SB_PG_OTHER },
		{ "57000", SB_EIO, SB_PG_OTHER },
		{ "", SB_EIO, SB_PG_OTHER },
		{ "0800", SB_EIO, SB_PG_OTHER },
		{ "080060", SB_EIO, SB_PG_OTHER },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(sb_pg_sqlstate_err(cases[i].state), cases[i].err);
		assert_int_equal(sb_pg_sqlstate_class(cases[i].state), cases[i].cls);
	}
	assert_int_equal(sb_pg_sqlstate_err(NULL), SB_EIO);
}

static void
test_bad_dsn_refused(void **state)
{
	(void)state;
	struct sb_pg *pg = (struct sb_pg *)1;
	assert_int_equal(sb_pg_open("nosuchkeyword=1", NULL, &pg), SB_EINVAL);
	assert_null(pg);
	assert_int_equal(sb_pg_open("postgresql://[::1", NULL, &pg), SB_EINVAL);
	assert_int_equal(sb_pg_open(NULL, NULL, &pg), SB_EINVAL);
}

static const struct sb_pg_stmt stmts[] = {
	{ "get_one", "SELECT $1::int", 1 },
	{ NULL, NULL, 0 },
};

static void
test_down_database_fails_fast_and_backs_off(void **state)
{
	(void)state;
	char dsn[128];
	snprintf(dsn, sizeof(dsn), "postgresql://postgres@127.0.0.1:%d/postgres", closed_port());
	struct sb_pg_opts opts = { .connect_timeout_s = 2,
		                   .backoff_base_ms = 200,
		                   .backoff_max_ms = 800 };
	struct sb_pg *pg = NULL;
	int64_t t0 = now_ms();
	assert_int_equal(sb_pg_open_opts(dsn, stmts, &opts, &pg), 0); /* a down DB is no error */
	assert_non_null(pg);
	assert_false(sb_pg_connected(pg));
	assert_null(sb_pg_conn(pg));

	/* The failed attempt in open scheduled the next one within [base/2, base]. */
	int64_t ra = sb_pg_retry_after_ms(pg);
	assert_true(ra > 0 && ra <= 200);

	/* Calls before that fail at once, without an attempt. */
	const char *params[] = { "1" };
	PGresult *res = (PGresult *)1;
	assert_int_equal(sb_pg_exec_prepared(pg, "get_one", 1, params, &res), SB_EUNAVAIL);
	assert_null(res);
	assert_string_equal(sb_pg_sqlstate(pg), "");
	assert_non_null(strstr(sb_pg_errmsg(pg), "next attempt"));
	char detail[256];
	assert_int_equal(sb_pg_ping(pg, detail, sizeof(detail)), SB_EUNAVAIL);
	assert_true(detail[0] != '\0');

	/* The next due attempt fails again and the ceiling doubles (at most 2 * base). */
	sleep_ms(sb_pg_retry_after_ms(pg) + 5);
	assert_int_equal(sb_pg_exec(pg, "SELECT 1", &res), SB_EUNAVAIL);
	assert_null(strstr(sb_pg_errmsg(pg), "next attempt")); /* a real attempt: libpq's text */
	ra = sb_pg_retry_after_ms(pg);
	assert_true(ra >= 1 && ra <= 400);
	for (int i = 0; i < 4; i++) {
		sleep_ms(sb_pg_retry_after_ms(pg) + 5);
		assert_int_equal(sb_pg_exec(pg, "SELECT 1", NULL), SB_EUNAVAIL);
		assert_true(sb_pg_retry_after_ms(pg) <= 800); /* capped at max */
	}
	assert_int_equal(sb_pg_reconnects(pg), 0);
	assert_true(now_ms() - t0 < 6000);
	sb_pg_close(pg);
}

static void
test_statement_checks(void **state)
{
	(void)state;
	char dsn[128];
	snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d user=postgres", closed_port());
	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open(dsn, stmts, &pg), 0);
	const char *params[] = { "1", "2" };
	assert_int_equal(sb_pg_exec_prepared(pg, "nope", 1, params, NULL), SB_ENOTFOUND);
	assert_int_equal(sb_pg_exec_prepared(pg, "get_one", 2, params, NULL), SB_EINVAL);
	assert_int_equal(sb_pg_exec_prepared(pg, NULL, 1, params, NULL), SB_EINVAL);
	/* Rolling back with no connection is harmless. */
	assert_int_equal(sb_pg_rollback(pg), 0);
	sb_pg_close(pg);
	sb_pg_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlstate_mapping),
		cmocka_unit_test(test_bad_dsn_refused),
		cmocka_unit_test(test_down_database_fails_fast_and_backs_off),
		cmocka_unit_test(test_statement_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
