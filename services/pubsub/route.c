/* route.c: the publishers' cache of topic routes. A publish needs its topic's row and the
 * filters of the topic's subscriptions ("pub_route"); reading them is one statement and one
 * round trip per publish, as many as all the rest of a publish's statements together. The
 * answer is kept here per (tenant, topic), with the topic's route_version in it; the publish
 * statements store nothing when that version is no longer the topic's (a subscription was
 * created or the topic changed, through any instance), and the publisher then drops the entry
 * and reads the route again (publish.c). A direct-mapped table: a colliding topic replaces
 * the entry, which only costs a read. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS_ROUTE_SLOTS 256

struct ps_route_slot {
	char *key; /* tenant '\n' topic */
	PGresult *res;
};

static size_t
ps_route_slot_of(const char *tenant, const char *topic)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over tenant '\n' topic */
	for (const char *p = tenant; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '\n') * 1099511628211ULL;
	for (const char *p = topic; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h % PS_ROUTE_SLOTS);
}

static bool
ps_route_key_is(const char *key, const char *tenant, const char *topic)
{
	size_t n = strlen(tenant);
	return key != NULL && strncmp(key, tenant, n) == 0 && key[n] == '\n' &&
	       strcmp(key + n + 1, topic) == 0;
}

int
ps_route_init(struct ps_state *st)
{
	pthread_mutex_init(&st->rc_mu, NULL);
	st->rc = calloc(PS_ROUTE_SLOTS, sizeof(*st->rc));
	return st->rc ? 0 : -1;
}

void
ps_route_free(struct ps_state *st)
{
	if (st->rc != NULL)
		for (size_t i = 0; i < PS_ROUTE_SLOTS; i++) {
			free(st->rc[i].key);
			PQclear(st->rc[i].res);
		}
	free(st->rc);
	st->rc = NULL;
	pthread_mutex_destroy(&st->rc_mu);
}

PGresult *
ps_route_get(struct ps_state *st, const char *tenant, const char *topic)
{
	struct ps_route_slot *s = &st->rc[ps_route_slot_of(tenant, topic)];
	PGresult *copy = NULL;
	pthread_mutex_lock(&st->rc_mu);
	if (ps_route_key_is(s->key, tenant, topic))
		copy = PQcopyResult(s->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	pthread_mutex_unlock(&st->rc_mu);
	return copy;
}

void
ps_route_put(struct ps_state *st, const char *tenant, const char *topic, const PGresult *res)
{
	struct ps_route_slot *s = &st->rc[ps_route_slot_of(tenant, topic)];
	size_t n = strlen(tenant) + strlen(topic) + 2;
	char *key = malloc(n);
	PGresult *copy = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	if (key == NULL || copy == NULL) { /* not cached: the next publish reads it again */
		free(key);
		PQclear(copy);
		return;
	}
	snprintf(key, n, "%s\n%s", tenant, topic);
	pthread_mutex_lock(&st->rc_mu);
	char *old_key = s->key;
	PGresult *old = s->res;
	s->key = key;
	s->res = copy;
	pthread_mutex_unlock(&st->rc_mu);
	free(old_key);
	PQclear(old);
}

void
ps_route_drop(struct ps_state *st, const char *tenant, const char *topic)
{
	struct ps_route_slot *s = &st->rc[ps_route_slot_of(tenant, topic)];
	char *old_key = NULL;
	PGresult *old = NULL;
	pthread_mutex_lock(&st->rc_mu);
	if (ps_route_key_is(s->key, tenant, topic)) {
		old_key = s->key;
		old = s->res;
		s->key = NULL;
		s->res = NULL;
	}
	pthread_mutex_unlock(&st->rc_mu);
	free(old_key);
	PQclear(old);
}
