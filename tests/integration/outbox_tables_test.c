/* outbox_tables_test.c: one relay for every service's outbox (SB_OUTBOX_TABLES): rows of
 * messages.outbox and of files.outbox (made from the shared DDL, services/common/
 * sb_pg_outbox.sql) reach Kafka once each, in order per aggregate, and are marked relayed in
 * their own table; each table has its lag gauge. A table left out of the list is not read.
 * stack: pg,kafka
 * labels: outbox,sanitize
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox_it.h"
#include "sb_pg_outbox.h"

/* it_files_ddl creates files.outbox from the shared DDL file, as a files migration does. */
static void
it_files_ddl(PGconn *c)
{
	char path[1024], *sql;
	snprintf(path, sizeof(path), "%s/services/common/sb_pg_outbox.sql",
	         it_env("SB_SOURCE_ROOT"));
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	sql = calloc(1, 1 << 16);
	size_t n = fread(sql, 1, (1 << 16) - 1, fp);
	fclose(fp);
	assert_true(n > 100);
	it_exec(c, "CREATE SCHEMA IF NOT EXISTS files; DROP TABLE IF EXISTS files.outbox; "
	           "SET search_path = files");
	it_exec(c, sql);
	it_exec(c, "SET search_path = public");
	free(sql);
}

/* it_files_insert inserts n rows into files.outbox over naggs aggregates numbered from
 * agg_base, topic IT_TOPIC. */
static void
it_files_insert(PGconn *c, int n, int naggs, int agg_base)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO files.outbox (" SB_PG_OUTBOX_INSERT_COLUMNS ") SELECT 'upload', "
	         "('00000000-0000-0000-0000-' || lpad(to_hex(%d + g %% %d), 12, '0'))::uuid, "
	         "gen_random_uuid(), 'sb.files.Test', '" IT_TOPIC "', '/files', 'f' || g, "
	         "convert_to('file-row-' || g, 'UTF8'), NULL FROM generate_series(1, %d) g "
	         "ORDER BY g",
	         agg_base, naggs, n);
	it_exec(c, sql);
}

static void
test_two_tables_one_relay(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;
	const char *const extra[] = { "SB_OUTBOX_TABLES=messages.outbox, files.outbox",
		                      "SB_OUTBOX_BATCH_SIZE=100", NULL };

	it_exec(c, it_ddl);
	it_exec(c, "TRUNCATE messages.outbox");
	it_files_ddl(c);
	it_insert(c, 400, 8, 0, 8);
	it_files_insert(c, 400, 8, 1000);
	it_relay_start(&relay, "relay", extra);
	/* more while it runs, in both tables */
	it_insert(c, 100, 8, 0, 8);
	it_files_insert(c, 100, 8, 1000);
	it_exec(c, "NOTIFY sb_outbox");
	long long left = -1;
	for (long long end = it_now_ms() + 20000; it_now_ms() < end; it_sleep_ms(100)) {
		left =
		    it_scalar(c, "SELECT (SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
		                 "NULL) + (SELECT count(*) FROM files.outbox WHERE relayed_at IS "
		                 "NULL)");
		if (left == 0)
			break;
	}
	assert_int_equal(left, 0);

	/* Every row of both tables on the topic once, in id order per aggregate (aggregates of
	 * the two tables are distinct). */
	struct it_check k;
	PGresult *r =
	    it_sql(c, "SELECT event_id, id, dense_rank() OVER (ORDER BY aggregate_id) - 1 "
	              "FROM (SELECT event_id, id, aggregate_id FROM messages.outbox UNION "
	              "ALL SELECT event_id, id, aggregate_id FROM files.outbox) u");
	memset(&k, 0, sizeof(k));
	k.n = PQntuples(r);
	assert_int_equal(k.n, 1000);
	k.rows = calloc((size_t)k.n + 1, sizeof(*k.rows));
	for (int i = 0; i < k.n; i++) {
		snprintf(k.rows[i].event_id, sizeof(k.rows[i].event_id), "%s", PQgetvalue(r, i, 0));
		k.rows[i].id = atoll(PQgetvalue(r, i, 1));
		k.rows[i].agg = atoi(PQgetvalue(r, i, 2));
		if (k.rows[i].agg + 1 > k.naggs)
			k.naggs = k.rows[i].agg + 1;
	}
	PQclear(r);
	assert_int_equal(k.naggs, 16);
	qsort(k.rows, (size_t)k.n, sizeof(*k.rows), it_row_cmp);
	it_consume(&k, IT_TOPIC, 20000);
	assert_int_equal(k.distinct, 1000);
	assert_int_equal(k.bad_order, 0);
	assert_int_equal(k.bad_dup, 0);
	free(k.rows);

	/* one lag gauge per table */
	static char metrics[1 << 20];
	assert_int_equal(it_http_get(relay.ops_port, "/metrics", metrics, sizeof(metrics)), 200);
	assert_non_null(strstr(metrics, "outbox_table_lag_seconds{table=\"messages.outbox\"}"));
	assert_non_null(strstr(metrics, "outbox_table_lag_seconds{table=\"files.outbox\"}"));
	assert_true(it_metric(&relay, "outbox_rows_relayed_total") >= 1000);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

/* The default list is messages.outbox alone: files.outbox rows wait. */
static void
test_table_not_listed_is_not_read(void **state)
{
	(void)state;
	PGconn *c = it_pg();
	struct it_proc relay;

	it_exec(c, it_ddl);
	it_files_ddl(c);
	it_files_insert(c, 10, 2, 2000);
	it_insert(c, 10, 2, 3000, 8);
	it_relay_start(&relay, "relay-default", NULL);
	assert_int_equal(it_wait_relayed(c, 15000), 0);
	it_sleep_ms(1000);
	assert_int_equal(it_scalar(c, "SELECT count(*) FROM files.outbox WHERE relayed_at IS NULL"),
	                 10);
	assert_int_equal(it_relay_stop(&relay, SIGTERM), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_tables_one_relay),
		cmocka_unit_test(test_table_not_listed_is_not_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
