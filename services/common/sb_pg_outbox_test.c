/* sb_pg_outbox_test.c: table names the relay and writers accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sb_err.h"
#include "sb_pg_outbox.h"

static void
test_table_valid(void **state)
{
	(void)state;
	assert_true(sb_pg_outbox_table_valid("messages.outbox"));
	assert_true(sb_pg_outbox_table_valid("files.outbox"));
	assert_true(sb_pg_outbox_table_valid("_a1.b_2"));
	assert_false(sb_pg_outbox_table_valid("outbox"));
	assert_false(sb_pg_outbox_table_valid("files."));
	assert_false(sb_pg_outbox_table_valid(".outbox"));
	assert_false(sb_pg_outbox_table_valid("files.out.box"));
	assert_false(sb_pg_outbox_table_valid("Files.outbox"));
	assert_false(sb_pg_outbox_table_valid("files.outbox;drop"));
	assert_false(sb_pg_outbox_table_valid("1files.outbox"));
	assert_false(sb_pg_outbox_table_valid(NULL));
}

static void
test_table_list(void **state)
{
	char t[4][SB_PG_OUTBOX_TABLE_MAX + 1];
	(void)state;
	assert_int_equal(sb_pg_outbox_table_list("messages.outbox", t, 4), 1);
	assert_string_equal(t[0], "messages.outbox");
	assert_int_equal(sb_pg_outbox_table_list(" messages.outbox , files.outbox", t, 4), 2);
	assert_string_equal(t[0], "messages.outbox");
	assert_string_equal(t[1], "files.outbox");
	assert_int_equal(sb_pg_outbox_table_list("", t, 4), SB_EINVAL);
	assert_int_equal(sb_pg_outbox_table_list("a.b,", t, 4), SB_EINVAL);
	assert_int_equal(sb_pg_outbox_table_list("a.b,a.b", t, 4), SB_EINVAL);
	assert_int_equal(sb_pg_outbox_table_list("a.b,c.d,e.f", t, 2), SB_EINVAL);
	assert_int_equal(sb_pg_outbox_table_list("a.b,c d.e", t, 4), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_valid),
		cmocka_unit_test(test_table_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
