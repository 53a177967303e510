/* subs_test.c: one Redis subscription per channel per instance: SUBSCRIBE with the first local
 * member, UNSUBSCRIBE with the last, members' slots kept right as others leave; and the map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "realtime.h"

static char ops[16][80];
static int nops;

static void
record(bool sub, const char *chan, void *arg)
{
	(void)arg;
	snprintf(ops[nops++], sizeof(ops[0]), "%s %s", sub ? "SUB" : "UNSUB", chan);
}

struct member {
	size_t idx;
};

static void
fix(struct rt_sub *moved, size_t idx)
{
	((struct member *)(void *)moved)->idx = idx;
}

static void
test_refcount(void **st)
{
	(void)st;
	struct rt_subs s = { .redis_op = record };
	struct member a, b, c;
	nops = 0;
	struct rt_chan *ch = rt_subs_join(&s, "conv:1", (struct rt_sub *)(void *)&a, &a.idx);
	assert_non_null(ch);
	assert_ptr_equal(rt_subs_join(&s, "conv:1", (struct rt_sub *)(void *)&b, &b.idx), ch);
	assert_ptr_equal(rt_subs_join(&s, "conv:1", (struct rt_sub *)(void *)&c, &c.idx), ch);
	assert_int_equal(nops, 1);
	assert_string_equal(ops[0], "SUB conv:1");
	assert_int_equal(ch->n, 3);
	rt_subs_leave(&s, ch, a.idx, fix); /* c moves into a's slot */
	assert_int_equal(c.idx, 0);
	assert_ptr_equal(ch->members[c.idx], (struct rt_sub *)(void *)&c);
	rt_subs_leave(&s, ch, c.idx, fix);
	assert_int_equal(nops, 1);
	assert_ptr_equal(rt_subs_find(&s, "conv:1"), ch);
	rt_subs_leave(&s, ch, b.idx, fix);
	assert_int_equal(nops, 2);
	assert_string_equal(ops[1], "UNSUB conv:1");
	assert_null(rt_subs_find(&s, "conv:1"));
	/* again: a fresh subscription */
	ch = rt_subs_join(&s, "conv:1", (struct rt_sub *)(void *)&a, &a.idx);
	assert_int_equal(nops, 3);
	assert_false(ch->active);
	rt_subs_free(&s);
}

static void
test_map(void **st)
{
	(void)st;
	struct rt_map m = { 0 };
	char k[32];
	for (long i = 1; i <= 1000; i++) {
		snprintf(k, sizeof(k), "user:%ld", i);
		assert_int_equal(rt_map_put(&m, k, (void *)i), 0);
	}
	assert_int_equal(m.count, 1000);
	for (long i = 1; i <= 1000; i++) {
		snprintf(k, sizeof(k), "user:%ld", i);
		assert_int_equal((long)rt_map_get(&m, k), i);
	}
	assert_int_equal(rt_map_put(&m, "user:5", (void *)55L), 0);
	assert_int_equal(m.count, 1000);
	assert_int_equal((long)rt_map_del(&m, "user:5"), 55);
	assert_null(rt_map_get(&m, "user:5"));
	assert_null(rt_map_del(&m, "user:5"));
	assert_int_equal(m.count, 999);
	rt_map_free(&m);
	assert_null(rt_map_get(&m, "user:1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
