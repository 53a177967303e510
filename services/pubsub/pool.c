/* pool.c: the PostgreSQL connections the RPC handlers share (SB_PUBSUB_DB_CONNECTIONS).
 *
 * pubsub runs many RPC workers (SB_RPC_WORKERS, 32) because a long poll holds one for up to
 * SB_PUBSUB_MAX_WAIT_MS, but a worker needs a connection only while it runs statements. With a
 * connection per worker the statements of a busy instance spread over 32 server processes: each
 * plans every prepared statement on its own and none stays warm in the CPU caches; measured on
 * the bench's load, PostgreSQL's CPU per message fell by a quarter with 5 connections instead of
 * 32 (docs/pubsub.md "Connection pool"). So a handler borrows a connection the first time it asks
 * for one (ps_pg), keeps it for the rest of the call (a transaction spanning statements stays on
 * one connection) and gives it back when the call ends (the method table's wrappers, config.c),
 * or before it waits for something other workers do: a long poll's nap (consume.c) and a
 * publish's wait for its group commit (commit.c). A worker never waits for the pool while
 * holding a connection, so the pool cannot deadlock. */
#include "pubsub.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"

/* The connection the calling worker thread holds, and the pool it came from. */
static __thread struct sb_pg *ps_held;
static __thread struct ps_pool *ps_held_pool;

int
ps_pool_open(struct ps_pool *pool, const char *dsn, size_t n)
{
	int rv;
	pool->all = calloc(n, sizeof(*pool->all));
	pool->free = calloc(n, sizeof(*pool->free));
	if (pool->all == NULL || pool->free == NULL)
		return SB_ENOMEM;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->ready = true;
	for (size_t i = 0; i < n; i++) {
		/* like the per-worker connections before: a database that is down does not fail
		 * the start, each connection reconnects by itself */
		if ((rv = sb_pg_open_opts(dsn, ps_stmts, &ps_pg_opts, &pool->all[i])) != 0)
			return rv;
		pool->free[pool->nfree++] = pool->all[i];
		pool->n++;
	}
	return 0;
}

void
ps_pool_close(struct ps_pool *pool)
{
	if (!pool->ready)
		return;
	for (size_t i = 0; i < pool->n; i++)
		sb_pg_close(pool->all[i]);
	free(pool->all);
	free(pool->free);
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	pool->ready = false;
}

struct sb_pg *
ps_pool_hold(struct ps_pool *pool)
{
	if (ps_held != NULL)
		return ps_held;
	pthread_mutex_lock(&pool->mu);
	while (pool->nfree == 0)
		pthread_cond_wait(&pool->cv, &pool->mu);
	ps_held = pool->free[--pool->nfree];
	pthread_mutex_unlock(&pool->mu);
	ps_held_pool = pool;
	return ps_held;
}

void
ps_pool_release(void)
{
	struct ps_pool *pool = ps_held_pool;
	if (ps_held == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->free[pool->nfree++] = ps_held;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	ps_held = NULL;
	ps_held_pool = NULL;
}
