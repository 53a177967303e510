/* map.c: a small string-keyed hash map with chaining (FNV-1a), grown at load factor 1. Used by
 * one thread at a time: channels, per-user counts, the membership cache, the subscriber's set. */
#include "realtime.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_hash.h"

/* In-process buckets only: nothing outside this process sees the hash values. */
static size_t
rt_map_hash(const char *s)
{
	return (size_t)sb_hash_fnv1a64_str(s);
}

void *
rt_map_get(const struct rt_map *m, const char *key)
{
	if (m->nslots == 0)
		return NULL;
	for (struct rt_map_ent *e = m->slots[rt_map_hash(key) & (m->nslots - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->val;
	return NULL;
}

static int
rt_map_grow(struct rt_map *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 16;
	struct rt_map_ent **slots = calloc(n, sizeof(*slots));
	if (slots == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < m->nslots; i++) {
		struct rt_map_ent *e = m->slots[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t j = rt_map_hash(e->key) & (n - 1);
			e->next = slots[j];
			slots[j] = e;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return 0;
}

int
rt_map_put(struct rt_map *m, const char *key, void *val)
{
	if (m->nslots > 0) {
		for (struct rt_map_ent *e = m->slots[rt_map_hash(key) & (m->nslots - 1)]; e;
		     e = e->next)
			if (strcmp(e->key, key) == 0) {
				e->val = val;
				return 0;
			}
	}
	if (m->count >= m->nslots && rt_map_grow(m) != 0)
		return SB_ENOMEM;
	size_t klen = strlen(key);
	struct rt_map_ent *e = malloc(sizeof(*e) + klen + 1);
	if (e == NULL)
		return SB_ENOMEM;
	memcpy(e->key, key, klen + 1);
	e->val = val;
	size_t i = rt_map_hash(key) & (m->nslots - 1);
	e->next = m->slots[i];
	m->slots[i] = e;
	m->count++;
	return 0;
}

void *
rt_map_del(struct rt_map *m, const char *key)
{
	if (m->nslots == 0)
		return NULL;
	struct rt_map_ent **pp = &m->slots[rt_map_hash(key) & (m->nslots - 1)];
	for (; *pp; pp = &(*pp)->next) {
		struct rt_map_ent *e = *pp;
		if (strcmp(e->key, key) == 0) {
			void *v = e->val;
			*pp = e->next;
			free(e);
			m->count--;
			return v;
		}
	}
	return NULL;
}

void
rt_map_each(const struct rt_map *m, void (*fn)(const char *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct rt_map_ent *e = m->slots[i]; e; e = e->next)
			fn(e->key, e->val, arg);
}

void
rt_map_free(struct rt_map *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct rt_map_ent *e = m->slots[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
