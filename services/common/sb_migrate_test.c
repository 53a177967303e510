/* Tests of sb_migrate that need no server: table validation, checksums, schema names, lock
 * keys, and refusals that happen before the database is touched. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_migrate.h"
#include "sb_pg.h"

static void
test_valid_table(void **state)
{
	(void)state;
	const struct sb_migration migs[] = {
		{ 1, "001_init.sql", "CREATE TABLE t (id int);" },
		{ 2, "002_more.sql", "ALTER TABLE t ADD COLUMN x int;" },
		{ 10, "010_later.sql", "SELECT 1;" },
		{ 0, NULL, NULL },
	};
	char err[256] = "";
	assert_int_equal(sb_migrate_validate(migs, err, sizeof(err)), 0);
	const struct sb_migration empty[] = { { 0, NULL, NULL } };
	assert_int_equal(sb_migrate_validate(empty, err, sizeof(err)), 0);
}

static void
test_non_increasing_versions_rejected(void **state)
{
	(void)state;
	char err[256] = "";
	const struct sb_migration dup[] = {
		{ 1, "001_init.sql", "SELECT 1;" },
		{ 1, "001_again.sql", "SELECT 2;" },
		{ 0, NULL, NULL },
	};
	assert_int_equal(sb_migrate_validate(dup, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "001_again.sql"));
	assert_non_null(strstr(err, "strictly increasing"));

	const struct sb_migration down[] = {
		{ 2, "002_b.sql", "SELECT 1;" },
		{ 1, "001_a.sql", "SELECT 2;" },
		{ 0, NULL, NULL },
	};
	assert_int_equal(sb_migrate_validate(down, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "001_a.sql"));

	const struct sb_migration neg[] = {
		{ -3, "x.sql", "SELECT 1;" },
		{ 0, NULL, NULL },
	};
	assert_int_equal(sb_migrate_validate(neg, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "x.sql"));

	const struct sb_migration nosql[] = {
		{ 1, "001_a.sql", NULL },
		{ 0, NULL, NULL },
	};
	assert_int_equal(sb_migrate_validate(nosql, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "001_a.sql"));
	assert_int_equal(sb_migrate_validate(NULL, err, sizeof(err)), SB_EINVAL);
}

static void
test_checksum_is_sha256_hex(void **state)
{
	(void)state;
	char sum[65];
	assert_int_equal(sb_migrate_checksum("", sum), 0);
	assert_string_equal(sum,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(sb_migrate_checksum("abc", sum), 0);
	assert_string_equal(sum,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_schema_names(void **state)
{
	(void)state;
	assert_true(sb_migrate_valid_schema("messages"));
	assert_true(sb_migrate_valid_schema("_t1"));
	assert_false(sb_migrate_valid_schema("Messages"));
	assert_false(sb_migrate_valid_schema("1abc"));
	assert_false(sb_migrate_valid_schema("a-b"));
	assert_false(sb_migrate_valid_schema("a\"; DROP SCHEMA public; --"));
	assert_false(sb_migrate_valid_schema(""));
	assert_false(sb_migrate_valid_schema(NULL));
	char longname[65];
	memset(longname, 'a', 64);
	longname[64] = '\0';
	assert_false(sb_migrate_valid_schema(longname));
	longname[63] = '\0';
	assert_true(sb_migrate_valid_schema(longname));
}

static void
test_lock_keys(void **state)
{
	(void)state;
	assert_true(sb_migrate_lock_key("auth") == sb_migrate_lock_key("auth"));
	assert_true(sb_migrate_lock_key("auth") != sb_migrate_lock_key("messages"));
	assert_true(sb_migrate_lock_key("files") != sb_migrate_lock_key("notifier"));
}

static void
test_refusals_before_database(void **state)
{
	(void)state;
	/* A database that is down: every refusal below must happen before it is needed. */
	struct sb_pg_opts opts = { .connect_timeout_s = 1 };
	struct sb_pg *pg = NULL;
	assert_int_equal(sb_pg_open_opts("host=127.0.0.1 port=1 user=postgres", NULL, &opts, &pg),
	                 0);
	const struct sb_migration ok[] = { { 1, "001_a.sql", "SELECT 1;" }, { 0, NULL, NULL } };
	const struct sb_migration bad[] = {
		{ 2, "002_b.sql", "SELECT 1;" },
		{ 2, "002_c.sql", "SELECT 1;" },
		{ 0, NULL, NULL },
	};
	char err[256];
	assert_int_equal(sb_migrate(pg, "Bad-Name", ok, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "Bad-Name"));
	assert_int_equal(sb_migrate(pg, "svc", bad, err, sizeof(err)), SB_EINVAL);
	assert_non_null(strstr(err, "002_c.sql"));
	assert_int_equal(sb_migrate(NULL, "svc", ok, err, sizeof(err)), SB_EINVAL);
	/* A valid table with the database down: unavailable, with a reason. */
	assert_int_equal(sb_migrate(pg, "svc", ok, err, sizeof(err)), SB_EUNAVAIL);
	assert_non_null(strstr(err, "migration lock"));
	sb_pg_close(pg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table),
		cmocka_unit_test(test_non_increasing_versions_rejected),
		cmocka_unit_test(test_checksum_is_sha256_hex),
		cmocka_unit_test(test_schema_names),
		cmocka_unit_test(test_lock_keys),
		cmocka_unit_test(test_refusals_before_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
