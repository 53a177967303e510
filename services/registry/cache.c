/* cache.c: compiled schemas by version id. A version's schema never changes, so an entry is
 * valid for the life of the process. The cache is bounded: past REG_CACHE_MAX entries, a
 * schema not cached is compiled for each use and handed to the caller to free. */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

#define REG_CACHE_SLOTS 4096
#define REG_CACHE_MAX   (REG_CACHE_SLOTS / 2)

struct reg_cache_entry {
	int64_t id; /* 0: empty */
	struct reg_jsv *jsv;
};

struct reg_cache {
	pthread_mutex_t mu;
	size_t n;
	struct reg_cache_entry slot[REG_CACHE_SLOTS];
};

int
reg_cache_new(struct reg_cache **out)
{
	struct reg_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return SB_ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void
reg_cache_free(struct reg_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < REG_CACHE_SLOTS; i++)
		reg_jsv_free(c->slot[i].jsv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t
reg_cache_find(struct reg_cache *c, int64_t id)
{
	size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 52) % REG_CACHE_SLOTS;
	while (c->slot[i].id != 0 && c->slot[i].id != id)
		i = (i + 1) % REG_CACHE_SLOTS;
	return i;
}

const struct reg_jsv *
reg_cache_peek(struct reg_cache *c, int64_t id)
{
	pthread_mutex_lock(&c->mu);
	size_t i = reg_cache_find(c, id);
	struct reg_jsv *hit = c->slot[i].id == id ? c->slot[i].jsv : NULL;
	pthread_mutex_unlock(&c->mu);
	return hit;
}

const struct reg_jsv *
reg_cache_get(struct reg_cache *c, const struct reg_version *v, struct reg_jsv **owned)
{
	*owned = NULL;
	pthread_mutex_lock(&c->mu);
	size_t i = reg_cache_find(c, v->id);
	struct reg_jsv *hit = c->slot[i].id == v->id ? c->slot[i].jsv : NULL;
	pthread_mutex_unlock(&c->mu);
	if (hit != NULL)
		return hit;
	struct reg_jsv *js = NULL;
	char why[256];
	if (reg_jsv_compile(v->schema, strlen(v->schema), (enum reg_jsv_draft)v->draft, NULL, NULL,
	                    &js, why, sizeof(why)) != 0)
		return NULL;
	pthread_mutex_lock(&c->mu);
	i = reg_cache_find(c, v->id);
	if (c->slot[i].id == v->id) {
		/* another thread compiled it meanwhile */
		struct reg_jsv *keep = c->slot[i].jsv;
		pthread_mutex_unlock(&c->mu);
		reg_jsv_free(js);
		return keep;
	}
	if (c->n < REG_CACHE_MAX) {
		c->slot[i].id = v->id;
		c->slot[i].jsv = js;
		c->n++;
	} else {
		*owned = js;
	}
	pthread_mutex_unlock(&c->mu);
	return js;
}
