/* timer.c: deadlines in one binary min-heap behind one real timer. lws 4.1 keeps its timers in a
 * sorted linked list and inserts by walking it, so one lws timer per connection made every
 * re-arm cost a walk over all connections: at 15,000 connections that insertion was two thirds
 * of the loop thread's CPU (docs/benchmarks.md). Here a re-arm is O(log n), and the owner's one
 * real timer (edge.c: an lws timer) only moves when the earliest deadline does. Depends on
 * nothing: what a deadline means is the fire callback's business. One thread. */
#include "realtime.h"

#include <stdlib.h>

#include "sb_err.h"

void
rt_timers_init(struct rt_timers *t, void (*fire)(struct rt_timer *tm, void *arg),
               void (*arm)(int64_t at_ms, void *arg), void *arg)
{
	*t = (struct rt_timers){ .armed = -1, .fire = fire, .arm = arm, .arg = arg };
}

static bool
rt_timer_less(const struct rt_timers *t, size_t a, size_t b)
{
	return t->heap[a]->at < t->heap[b]->at;
}

static void
rt_timer_place(struct rt_timers *t, size_t i, struct rt_timer *tm)
{
	t->heap[i] = tm;
	tm->idx = i + 1;
}

static void
rt_timer_swap(struct rt_timers *t, size_t a, size_t b)
{
	struct rt_timer *x = t->heap[a];
	rt_timer_place(t, a, t->heap[b]);
	rt_timer_place(t, b, x);
}

static void
rt_timer_up(struct rt_timers *t, size_t i)
{
	while (i > 0 && rt_timer_less(t, i, (i - 1) / 2)) {
		rt_timer_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
rt_timer_down(struct rt_timers *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && rt_timer_less(t, l, m))
			m = l;
		if (r < t->n && rt_timer_less(t, r, m))
			m = r;
		if (m == i)
			return;
		rt_timer_swap(t, i, m);
		i = m;
	}
}

/* rt_timers_arm tells arm the earliest deadline when it changed (not while running). */
static void
rt_timers_arm(struct rt_timers *t)
{
	int64_t at = rt_timers_next(t);
	if (t->running || at == t->armed)
		return;
	t->armed = at;
	if (t->arm != NULL)
		t->arm(at, t->arg);
}

static void
rt_timer_remove(struct rt_timers *t, struct rt_timer *tm)
{
	size_t i = tm->idx - 1, last = --t->n;
	tm->idx = 0;
	if (i == last)
		return;
	rt_timer_place(t, i, t->heap[last]);
	rt_timer_down(t, i);
	rt_timer_up(t, i);
}

int
rt_timer_set(struct rt_timers *t, struct rt_timer *tm, int64_t at_ms)
{
	if (tm->idx == 0) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 1024;
			struct rt_timer **h = realloc(t->heap, cap * sizeof(*h));
			if (h == NULL)
				return SB_ENOMEM;
			t->heap = h;
			t->cap = cap;
		}
		tm->at = at_ms;
		rt_timer_place(t, t->n++, tm);
		rt_timer_up(t, tm->idx - 1);
	} else {
		int64_t was = tm->at;
		tm->at = at_ms;
		if (at_ms < was)
			rt_timer_up(t, tm->idx - 1);
		else
			rt_timer_down(t, tm->idx - 1);
	}
	rt_timers_arm(t);
	return 0;
}

void
rt_timer_cancel(struct rt_timers *t, struct rt_timer *tm)
{
	if (tm->idx == 0)
		return;
	rt_timer_remove(t, tm);
	rt_timers_arm(t);
}

int64_t
rt_timers_next(const struct rt_timers *t)
{
	return t->n > 0 ? t->heap[0]->at : -1;
}

void
rt_timers_run(struct rt_timers *t, int64_t now_ms)
{
	t->armed = -1; /* the real timer went off: nothing is scheduled now */
	t->running = true;
	while (t->n > 0 && t->heap[0]->at <= now_ms) {
		struct rt_timer *tm = t->heap[0];
		rt_timer_remove(t, tm);
		t->fire(tm, t->arg);
	}
	t->running = false;
	rt_timers_arm(t);
}

void
rt_timers_free(struct rt_timers *t)
{
	for (size_t i = 0; i < t->n; i++)
		t->heap[i]->idx = 0;
	free(t->heap);
	t->heap = NULL;
	t->n = t->cap = 0;
	t->armed = -1;
}
