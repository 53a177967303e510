/* tasks_test.c: the task table's invariants, which the lease's safety rests on: every task has
 * its prepared statement, a DELETE taking the three parameters gc_task_run passes, guarded by
 * holding the lease; every task's switch and age limit are rows of the config table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gc.h"

static const struct sb_pg_stmt *
stmt(const char *name)
{
	for (const struct sb_pg_stmt *s = gc_stmts; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static const struct sb_cfg_key *
key_at(size_t offset, enum sb_cfg_type type)
{
	for (const struct sb_cfg_key *k = gc_config; k->env != NULL; k++)
		if (k->offset == offset && k->type == type)
			return k;
	return NULL;
}

static void
test_every_task_is_guarded(void **state)
{
	(void)state;
	int n = 0;
	for (const struct gc_task *t = gc_tasks; t->name != NULL; t++, n++) {
		const struct sb_pg_stmt *s = stmt(t->name);
		assert_non_null(s);
		assert_ptr_equal(s->sql, t->sql);
		assert_int_equal(s->nparams, 3);
		assert_int_equal(strncmp(t->sql, "DELETE FROM ", 12), 0);
		assert_non_null(strstr(t->sql, GC_HOLDS_LEASE));
		assert_non_null(strstr(t->sql, GC_NOW));
		assert_non_null(strstr(t->sql, "LIMIT $2"));
		assert_non_null(strstr(t->sql, "$3::float8"));
		assert_non_null(key_at(t->enabled_offset, SB_CFG_BOOL));
		assert_non_null(key_at(t->age_offset, SB_CFG_INT));
	}
	assert_true(n >= 2);
	/* The lease check names the lock the loop takes. */
	assert_non_null(strstr(GC_HOLDS_LEASE, "classid = " GC_STR(GC_LOCK_CLASS)));
	assert_non_null(strstr(GC_HOLDS_LEASE, "objid = " GC_STR(GC_LOCK_ID)));
	assert_non_null(strstr(GC_HOLDS_LEASE, "objsubid = 2"));
}

static void
test_switches(void **state)
{
	(void)state;
	struct gc_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	for (const struct gc_task *t = gc_tasks; t->name != NULL; t++)
		assert_false(gc_task_enabled(t, &cfg));
	cfg.outbox = true;
	for (const struct gc_task *t = gc_tasks; t->name != NULL; t++)
		assert_int_equal(gc_task_enabled(t, &cfg),
		                 strcmp(t->name, "outbox") == 0 ||
		                     strcmp(t->name, "files_outbox") == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_task_is_guarded),
		cmocka_unit_test(test_switches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
