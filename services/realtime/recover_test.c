/* recover_test.c: recovery merges history and live frames with no gap and no duplicate, in
 * seq order, whatever overlap the two have. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "realtime.h"

struct out {
	int64_t seqs[64];
	size_t n;
};

static void
emit(struct rt_frame *f, void *arg)
{
	struct out *o = arg;
	o->seqs[o->n++] = f->seq;
}

static struct rt_frame *
frame(int64_t seq)
{
	char t[32];
	snprintf(t, sizeof(t), "{\"seq\":%lld}", (long long)seq);
	return rt_frame_new(t, strlen(t), seq, 0);
}

/* live frames 5..9 arrive while history 3..7 is read (since 2): client sees 3..9 once each */
static void
test_overlap(void **st)
{
	(void)st;
	struct rt_cursor c = { .last = 2, .recovering = true };
	struct out o = { .n = 0 };
	for (int s = 5; s <= 9; s++) {
		struct rt_frame *f = frame(s);
		assert_int_equal(rt_cursor_live(&c, f), 2);
		rt_frame_unref(f);
	}
	for (int s = 3; s <= 7; s++)
		if (rt_cursor_history(&c, s))
			o.seqs[o.n++] = s;
	rt_cursor_drain(&c, emit, &o);
	assert_int_equal(o.n, 7);
	for (size_t i = 0; i < o.n; i++)
		assert_int_equal(o.seqs[i], 3 + (int64_t)i);
	assert_false(c.recovering);
	assert_int_equal(c.last, 9);
	/* live again: a duplicate is dropped, the next one goes */
	struct rt_frame *f = frame(9);
	assert_int_equal(rt_cursor_live(&c, f), 0);
	rt_frame_unref(f);
	f = frame(10);
	assert_int_equal(rt_cursor_live(&c, f), 1);
	assert_int_equal(c.last, 10);
	rt_frame_unref(f);
}

/* history went further than live (notifier lagging): held frames it covered are dropped */
static void
test_history_ahead(void **st)
{
	(void)st;
	struct rt_cursor c = { .last = 0, .recovering = true };
	struct out o = { .n = 0 };
	struct rt_frame *f4 = frame(4), *ev = frame(0);
	assert_int_equal(rt_cursor_live(&c, f4), 2);
	assert_int_equal(rt_cursor_live(&c, ev), 2); /* a non-message frame: always delivered */
	rt_frame_unref(f4);
	rt_frame_unref(ev);
	for (int s = 1; s <= 6; s++)
		assert_true(rt_cursor_history(&c, s));
	assert_false(rt_cursor_history(&c, 6));
	rt_cursor_drain(&c, emit, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.seqs[0], 0);
	assert_int_equal(c.last, 6);
	struct rt_frame *f5 = frame(5), *f7 = frame(7);
	assert_int_equal(rt_cursor_live(&c, f5), 0);
	assert_int_equal(rt_cursor_live(&c, f7), 1);
	rt_frame_unref(f5);
	rt_frame_unref(f7);
}

/* refcounts: a held frame survives its publisher's unref; clear releases it */
static void
test_clear(void **st)
{
	(void)st;
	struct rt_cursor c = { .recovering = true };
	struct rt_frame *f = frame(3);
	assert_int_equal(rt_cursor_live(&c, f), 2);
	assert_int_equal(f->refs, 2);
	rt_cursor_clear(&c);
	assert_int_equal(f->refs, 1);
	assert_int_equal(c.npending, 0);
	rt_frame_unref(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_history_ahead),
		cmocka_unit_test(test_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
