/* timer.c: every connection's next deadline (ping, pong, auth, token expiry) in one binary
 * min-heap, driven by a single lws timer. lws 4.1 keeps its timers in a sorted linked list
 * and inserts by walking it, so one lws timer per connection made every re-arm cost a walk over
 * all connections: at 15,000 connections that insertion was two thirds of the loop thread's
 * CPU (docs/benchmarks.md). Here a re-arm is O(log n) and lws sees one entry. Runs on the lws
 * thread only; the callbacks run from lws's timer service like any other lws timer. */
#include "realtime.h"

#include <stdlib.h>

#include <libwebsockets.h>

#include "sb_util_time.h"

static struct {
	struct rt_conn **heap; /* heap[i]->timer_idx == i + 1 */
	size_t n, cap;
	lws_sorted_usec_list_t sul;
	int64_t armed_ms; /* deadline the sul is scheduled for, 0 when none */
	bool closed;      /* rt_timer_shutdown ran: no more lws scheduling */
} rt_timers;

static void rt_timer_fire(lws_sorted_usec_list_t *sul);

static bool
rt_timer_less(size_t a, size_t b)
{
	return rt_timers.heap[a]->timer_at < rt_timers.heap[b]->timer_at;
}

static void
rt_timer_place(size_t i, struct rt_conn *c)
{
	rt_timers.heap[i] = c;
	c->timer_idx = i + 1;
}

static void
rt_timer_swap(size_t a, size_t b)
{
	struct rt_conn *t = rt_timers.heap[a];
	rt_timer_place(a, rt_timers.heap[b]);
	rt_timer_place(b, t);
}

static void
rt_timer_up(size_t i)
{
	while (i > 0 && rt_timer_less(i, (i - 1) / 2)) {
		rt_timer_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
rt_timer_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < rt_timers.n && rt_timer_less(l, m))
			m = l;
		if (r < rt_timers.n && rt_timer_less(r, m))
			m = r;
		if (m == i)
			return;
		rt_timer_swap(i, m);
		i = m;
	}
}

/* rt_timer_arm schedules the lws timer for the earliest deadline, when that changed. */
static void
rt_timer_arm(void)
{
	if (rt_timers.closed || rt_g.lws == NULL)
		return;
	if (rt_timers.n == 0) {
		if (rt_timers.armed_ms != 0)
			lws_sul_cancel(&rt_timers.sul);
		rt_timers.armed_ms = 0;
		return;
	}
	int64_t at = rt_timers.heap[0]->timer_at;
	if (at == rt_timers.armed_ms)
		return;
	int64_t wait = at - sb_time_mono_ms();
	lws_sul_schedule(rt_g.lws, 0, &rt_timers.sul, rt_timer_fire,
	                 (lws_usec_t)(wait < 1 ? 1 : wait) * LWS_US_PER_MS);
	rt_timers.armed_ms = at;
}

static void
rt_timer_remove(struct rt_conn *c)
{
	size_t i = c->timer_idx - 1, last = --rt_timers.n;
	c->timer_idx = 0;
	if (i == last)
		return;
	rt_timer_place(i, rt_timers.heap[last]);
	rt_timer_down(i);
	rt_timer_up(i);
}

static void
rt_timer_fire(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	rt_timers.armed_ms = 0;
	int64_t now = sb_time_mono_ms();
	/* rt_conn_timer sets the connection's next deadline (later than now) or none */
	while (rt_timers.n > 0 && rt_timers.heap[0]->timer_at <= now) {
		struct rt_conn *c = rt_timers.heap[0];
		rt_timer_remove(c);
		rt_conn_timer(c);
	}
	rt_timer_arm();
}

void
rt_timer_set(struct rt_conn *c, int64_t at_ms)
{
	if (c->timer_idx == 0) {
		if (rt_timers.n == rt_timers.cap) {
			size_t cap = rt_timers.cap ? rt_timers.cap * 2 : 1024;
			struct rt_conn **h = realloc(rt_timers.heap, cap * sizeof(*h));
			if (h == NULL) {
				rt_conn_close(c, 1011, "out of memory");
				return;
			}
			rt_timers.heap = h;
			rt_timers.cap = cap;
		}
		c->timer_at = at_ms;
		rt_timer_place(rt_timers.n++, c);
		rt_timer_up(c->timer_idx - 1);
	} else {
		int64_t was = c->timer_at;
		c->timer_at = at_ms;
		if (at_ms < was)
			rt_timer_up(c->timer_idx - 1);
		else
			rt_timer_down(c->timer_idx - 1);
	}
	rt_timer_arm();
}

void
rt_timer_cancel(struct rt_conn *c)
{
	if (c->timer_idx == 0)
		return;
	rt_timer_remove(c);
	rt_timer_arm();
}

int64_t
rt_timer_next(void)
{
	return rt_timers.n > 0 ? rt_timers.heap[0]->timer_at : -1;
}

void
rt_timer_shutdown(void)
{
	if (rt_timers.armed_ms != 0 && rt_g.lws != NULL)
		lws_sul_cancel(&rt_timers.sul);
	rt_timers.armed_ms = 0;
	rt_timers.closed = true;
}

void
rt_timer_free(void)
{
	free(rt_timers.heap);
	rt_timers.heap = NULL;
	rt_timers.n = rt_timers.cap = 0;
}
