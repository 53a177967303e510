/* sb_service.h: the shape every Switchboard daemon shares.
 *
 * A service is a struct sb_service_def: its name, its config table, its RPC handler table, its
 * upstream services and a few hooks. Dependencies present in the config table (DATABASE_URL,
 * REDIS_URL, KAFKA_BROKERS) and upstreams marked needed_ready become readiness checks by
 * themselves. sb_service_main does the rest, identically for every daemon:
 *
 *   argv        --check-config (exit 0/1), --config-reference (Markdown rows), --version,
 *               --routes (the public HTTP routes, "METHOD /path/{param}" lines; edge services)
 *   config      loaded from the environment; a bad value exits 2 naming the variable
 *   logging     JSON lines, level from SB_LOG_LEVEL, effective config logged (secrets masked)
 *   ops         /healthz, /ready (the service's dependency checks), /metrics on SB_OPS_PORT
 *   start hook  the service opens its connections and starts its background work
 *   RPC         SB_RPC_WORKERS workers on SB_RPC_URL serving the table plus "<name>.Health";
 *               each worker with its own PostgreSQL and/or Redis connection if worker_conns
 *   SIGTERM     /ready turns 503, RPC stops taking work and drains in-flight calls up to
 *               SB_SHUTDOWN_GRACE_MS, the stop hook flushes (Kafka) and closes, exit 0.
 */
#ifndef SB_SERVICE_H
#define SB_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "sb_config.h"
#include "sb_migrate.h"
#include "sb_rpc.h"

struct sb_buf;
struct sb_pg;
struct sb_pg_opts;
struct sb_pg_stmt;
struct sb_redis;
struct sb_service;

/* Flags of sb_service_def.worker_conns: the connections the runtime opens for each RPC worker
 * thread, from the common configuration. */
#define SB_WORKER_PG    1u /* one PostgreSQL connection to DATABASE_URL */
#define SB_WORKER_REDIS 2u /* one Redis connection to REDIS_URL */

/* The connections of one RPC worker thread (sb_service_worker_conns). Only the worker thread
 * that owns them uses them, so handlers may block on them (libpq, sync hiredis). */
struct sb_worker_conns {
	struct sb_pg *pg;       /* with SB_WORKER_PG, else NULL */
	struct sb_redis *redis; /* with SB_WORKER_REDIS, else NULL */
	void *state;            /* what def->worker_init stored, or NULL */
};

/* An upstream service this one calls over RPC. */
struct sb_service_upstream {
	const char *peer;  /* "messages": its methods are "messages.<Rpc>" */
	size_t url_offset; /* offset of its URL (char *) in the config struct */
	bool needed_ready; /* this service is not ready while the peer is not */
};

struct sb_service_def {
	const char *name;                    /* "messages": log service, metrics, "<name>.Health" */
	const struct sb_cfg_key *config;     /* table with SB_CFG_COMMON rows, ended by NULL env */
	size_t config_size;                  /* sizeof the service's config struct */
	size_t common_offset;                /* offsetof(config struct, struct sb_common_cfg) */
	const struct sb_rpc_method *methods; /* service RPCs (NULL-name ended) or NULL */
	const struct sb_service_upstream *upstreams; /* NULL-peer ended, or NULL */
	const char *schema;                          /* PostgreSQL schema owned, or NULL */
	const struct sb_migration *migrations;       /* applied at start under a lock, or NULL */
	/* start runs after config, logging and the ops server, before the RPC server: open
	 * connections, add readiness checks, start background threads. Non-zero aborts start. */
	int (*start)(struct sb_service *svc);
	/* stop runs after the RPC server has drained: stop background work, flush, close. */
	void (*stop)(struct sb_service *svc);
	/* worker_conns (SB_WORKER_PG, SB_WORKER_REDIS, both, or 0) has the runtime open those
	 * connections for each RPC worker thread before it serves and close them after it stops;
	 * handlers find them with sb_service_worker_conns. The PostgreSQL one prepares
	 * worker_stmts (NULL-name ended, or NULL) and is opened with worker_pg_opts (NULL: the
	 * defaults). A database or Redis that is down does not fail the start (the connections
	 * reconnect by themselves); a flag whose URL is not in the config table does. */
	unsigned worker_conns;
	const struct sb_pg_stmt *worker_stmts;
	const struct sb_pg_opts *worker_pg_opts;
	/* worker_init/fini give each RPC worker thread its own state (worker_init runs after the
	 * worker_conns are open, worker_fini before they close). Without worker_conns the state
	 * is what sb_rpc_call_worker_state returns; with them it is sb_worker_conns.state. */
	int (*worker_init)(struct sb_service *svc, void **state);
	void (*worker_fini)(struct sb_service *svc, void *state);
	/* routes appends the service's public HTTP routes to out, one "METHOD PATH\n" line per
	 * row of the table its server matches requests with (PATH as the row's template,
	 * "/v1/conversations/{id}"), for `sb-<name> --routes`: tests compare them with
	 * docs/api/openapi.yaml. Called without config or connections. Returns 0 or SB_ENOMEM.
	 * NULL for a service without an HTTP edge of its own (--routes then exits 1). */
	int (*routes)(struct sb_buf *out);
};

/* sb_service_main runs the daemon described by def until SIGTERM/SIGINT; returns the process
 * exit status (0 after a clean shutdown, 1 when start failed, 2 for a configuration error). */
int sb_service_main(const struct sb_service_def *def, int argc, char **argv);

/* sb_service_config returns the loaded config struct (the service casts it to its type). */
void *sb_service_config(struct sb_service *svc);
/* sb_service_common returns the settings every service has. */
const struct sb_common_cfg *sb_service_common(struct sb_service *svc);
/* sb_service_name returns def->name. */
const char *sb_service_name(struct sb_service *svc);
/* sb_service_set_state/sb_service_state keep the service's own process state. */
void sb_service_set_state(struct sb_service *svc, void *state);
void *sb_service_state(struct sb_service *svc);
/* sb_service_upstream returns the shared, thread-safe RPC client of an upstream named in
 * def->upstreams, or NULL. Valid from the start hook until the stop hook has returned. */
struct sb_rpc_client *sb_service_upstream(struct sb_service *svc, const char *peer);
/* sb_service_from_call returns the service a handler runs in (the RPC server's context). */
struct sb_service *sb_service_from_call(struct sb_rpc_call *call);
/* sb_service_worker_conns returns the connections of the worker thread running call (see
 * sb_service_def.worker_conns), valid until the handler returns; NULL when the service has
 * no worker_conns or the call runs inline (SB_RPC_INLINE: no worker thread). */
struct sb_worker_conns *sb_service_worker_conns(struct sb_rpc_call *call);

/* A readiness check: returns 0 when the dependency is reachable, else writes why to detail. */
typedef int (*sb_service_check_fn)(void *arg, char *detail, size_t n);
/* sb_service_add_check adds a dependency check to /ready and to the Health RPC. Call from the
 * start hook. name is copied; arg must live until the stop hook has returned. */
int sb_service_add_check(struct sb_service *svc, const char *name, sb_service_check_fn fn,
                         void *arg);

struct sb_jwt_verifier;
/* sb_service_fetch_jwks calls auth.Jwks on auth (2-s timeout, blocking) and installs the key
 * set on v. An unanswered call is logged when warn_unanswered; an unusable key set always.
 * *skipped (may be NULL) gets the number of keys the set had that cannot be used. Returns 0,
 * the RPC error, SB_EUNAVAIL when auth answered an error, or the parse error. */
int sb_service_fetch_jwks(struct sb_rpc_client *auth, struct sb_jwt_verifier *v,
                          bool warn_unanswered, size_t *skipped);

#endif
