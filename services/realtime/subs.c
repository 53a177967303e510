/* subs.c: channels and their local members. One Redis subscription per channel per instance:
 * the first member of a channel asks for SUBSCRIBE, the last one leaving for UNSUBSCRIBE. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_chan *
rt_subs_find(struct rt_subs *s, const char *name)
{
	return rt_map_get(&s->chans, name);
}

struct rt_chan *
rt_subs_join(struct rt_subs *s, const char *name, struct rt_sub *member, size_t *idx)
{
	struct rt_chan *c = rt_map_get(&s->chans, name);
	bool created = false;
	if (c == NULL) {
		if (strlen(name) >= sizeof(c->name))
			return NULL;
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return NULL;
		snprintf(c->name, sizeof(c->name), "%s", name);
		if (rt_map_put(&s->chans, name, c) != 0) {
			free(c);
			return NULL;
		}
		created = true;
	}
	if (c->n == c->cap) {
		size_t n = c->cap ? c->cap * 2 : 2;
		struct rt_sub **m = realloc(c->members, n * sizeof(*m));
		if (m == NULL) {
			if (created) {
				rt_map_del(&s->chans, name);
				free(c);
			}
			return NULL;
		}
		c->members = m;
		c->cap = n;
	}
	*idx = c->n;
	c->members[c->n++] = member;
	if (created && s->redis_op != NULL)
		s->redis_op(true, name, s->arg);
	return c;
}

void
rt_subs_leave(struct rt_subs *s, struct rt_chan *c, size_t idx,
              void (*fix_idx)(struct rt_sub *moved, size_t new_idx))
{
	if (idx >= c->n)
		return;
	c->n--;
	if (idx != c->n) {
		c->members[idx] = c->members[c->n];
		if (fix_idx != NULL)
			fix_idx(c->members[idx], idx);
	}
	if (c->n > 0)
		return;
	rt_map_del(&s->chans, c->name);
	if (s->redis_op != NULL)
		s->redis_op(false, c->name, s->arg);
	free(c->members);
	free(c);
}

static void
rt_subs_free_one(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	struct rt_chan *c = val;
	free(c->members);
	free(c);
}

void
rt_subs_free(struct rt_subs *s)
{
	rt_map_each(&s->chans, rt_subs_free_one, NULL);
	rt_map_free(&s->chans);
}
