/* sb_service.h: the shape every Switchboard daemon shares.
 *
 * A service is a struct sb_service_def: its name, its config table, its RPC handler table, its
 * upstream services and a few hooks. Dependencies present in the config table (DATABASE_URL,
 * REDIS_URL, KAFKA_BROKERS) and upstreams marked needed_ready become readiness checks by
 * themselves. sb_service_main does the rest, identically for every daemon:
 *
 *   argv        --check-config (exit 0/1), --config-reference (Markdown rows), --version
 *   config      loaded from the environment; a bad value exits 2 naming the variable
 *   logging     JSON lines, level from SB_LOG_LEVEL, effective config logged (secrets masked)
 *   ops         /healthz, /ready (the service's dependency checks), /metrics on SB_OPS_PORT
 *   start hook  the service opens its connections and starts its background work
 *   RPC         SB_RPC_WORKERS workers on SB_RPC_URL serving the table plus "<name>.Health"
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

struct sb_service;

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
	/* Names of methods whose handlers never block (sb_rpc_server_opts.inline_methods; they
	 * may answer later with SB_RPC_DEFER), NULL-ended, or NULL. */
	const char *const *inline_methods;
	const struct sb_service_upstream *upstreams; /* NULL-peer ended, or NULL */
	const char *schema;                          /* PostgreSQL schema owned, or NULL */
	const struct sb_migration *migrations;       /* applied at start under a lock, or NULL */
	/* start runs after config, logging and the ops server, before the RPC server: open
	 * connections, add readiness checks, start background threads. Non-zero aborts start. */
	int (*start)(struct sb_service *svc);
	/* stop runs after the RPC server has drained: stop background work, flush, close. */
	void (*stop)(struct sb_service *svc);
	/* worker_init/fini give each RPC worker thread its own state (e.g. a DB connection). */
	int (*worker_init)(struct sb_service *svc, void **state);
	void (*worker_fini)(struct sb_service *svc, void *state);
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
