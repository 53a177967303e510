/* recover.c: the merge that makes recovery gap-free and duplicate-free. A subscription has a
 * cursor (the highest seq sent). While history is being fetched, live frames are held; history
 * items are sent when above the cursor; then the held frames still above it are sent, in the
 * order they arrived. Pure: no I/O, unit-tested in recover_test.c. */
#include "realtime.h"

#include <stdlib.h>

#include "sb_err.h"

int
rt_cursor_live(struct rt_cursor *c, struct rt_frame *f)
{
	if (c->recovering) {
		if (c->npending == c->cappending) {
			size_t n = c->cappending ? c->cappending * 2 : 8;
			struct rt_frame **p = realloc(c->pending, n * sizeof(*p));
			if (p == NULL)
				return SB_ENOMEM;
			c->pending = p;
			c->cappending = n;
		}
		c->pending[c->npending++] = rt_frame_ref(f);
		return 2;
	}
	if (f->seq <= 0)
		return 1;
	if (f->seq <= c->last)
		return 0;
	c->last = f->seq;
	return 1;
}

bool
rt_cursor_history(struct rt_cursor *c, int64_t seq)
{
	if (seq <= c->last)
		return false;
	c->last = seq;
	return true;
}

void
rt_cursor_drain(struct rt_cursor *c, void (*emit)(struct rt_frame *f, void *arg), void *arg)
{
	c->recovering = false;
	for (size_t i = 0; i < c->npending; i++) {
		struct rt_frame *f = c->pending[i];
		if (f->seq <= 0 || f->seq > c->last) {
			if (f->seq > 0)
				c->last = f->seq;
			emit(f, arg);
		}
		rt_frame_unref(f);
	}
	free(c->pending);
	c->pending = NULL;
	c->npending = c->cappending = 0;
}

void
rt_cursor_clear(struct rt_cursor *c)
{
	for (size_t i = 0; i < c->npending; i++)
		rt_frame_unref(c->pending[i]);
	free(c->pending);
	c->pending = NULL;
	c->npending = c->cappending = 0;
	c->recovering = false;
}
