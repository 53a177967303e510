/* sb_ops.h: the ops HTTP server every service runs on its ops port.
 *
 * Routes (GET or HEAD; another method gets 405 with Allow, an unknown path 404, both as
 * application/problem+json):
 *   /healthz  200 {"status":"ok"} while the process runs (also as /live).
 *   /ready    200 or 503 {"ready":bool,"draining":bool,"checks":[{"name","ok","detail"}]}: 503
 *             when draining, or when any readiness check fails or exceeds its time limit.
 *   /metrics  sb_metrics_render, Content-Type text/plain; version=0.0.4.
 * Readiness checks may block (a database ping): each /ready runs every check on a thread of
 * its own, in parallel, off the event loop, and waits at most the check time limit (2 s by
 * default); a check that is still running from an earlier /ready is reported failed instead of
 * being started twice. */
#ifndef SB_OPS_H
#define SB_OPS_H

#include <stdbool.h>
#include <stddef.h>

struct sb_ops;

/* A readiness check: returns 0 when the dependency is usable, anything else when not, and may
 * write a short NUL-terminated explanation into detail (n bytes). It must not keep detail. */
typedef int (*sb_ops_check_fn)(void *arg, char *detail, size_t n);

/* sb_ops_start starts the ops server on addr (NULL = 127.0.0.1) and port (0 = ephemeral) and
 * returns it in *out. Returns 0 or the error of sb_http_server_start. Free with sb_ops_stop. */
int sb_ops_start(const char *addr, int port, struct sb_ops **out);
/* sb_ops_start_checked is sb_ops_start with the readiness check name (as sb_ops_add_check)
 * added before the server listens, so that no /ready is ever answered without it: a server
 * that only then adds its "not started yet" check would answer 200 to a /ready that falls
 * between the two calls. */
int sb_ops_start_checked(const char *addr, int port, const char *name, sb_ops_check_fn check,
                         void *arg, struct sb_ops **out);
/* sb_ops_port returns the bound port. */
int sb_ops_port(struct sb_ops *ops);
/* sb_ops_add_check adds the readiness check name (1..63 printable characters, unique) calling
 * check(arg, ...); arg must stay valid until sb_ops_stop returns and every check that was still
 * running has returned. Returns 0, SB_EINVAL, SB_EEXIST or SB_EBUSY (more than 16 checks). */
int sb_ops_add_check(struct sb_ops *ops, const char *name, sb_ops_check_fn check, void *arg);
/* sb_ops_set_check_timeout sets the time limit of each check in milliseconds (default 2000). */
void sb_ops_set_check_timeout(struct sb_ops *ops, int ms);
/* sb_ops_set_draining makes /ready answer 503 (true) so that load balancers stop sending
 * traffic, or normal again (false). Thread-safe. */
void sb_ops_set_draining(struct sb_ops *ops, bool draining);
/* sb_ops_stop answers the /ready requests in progress (waiting at most the check time limit),
 * stops the server and frees ops; checks still running finish on their own threads. */
void sb_ops_stop(struct sb_ops *ops);

/* Internals shared by sb_ops*.c. */
#include <pthread.h>
#include <stdatomic.h>

#include "sb_http.h"

#define SB_OPS_MAX_CHECKS 16

struct sb__ops_check {
	char name[64];
	sb_ops_check_fn fn;
	void *arg;
	atomic_bool running;
};

struct sb_ops {
	struct sb_http_server *http;
	pthread_mutex_t lock; /* guards checks and nchecks */
	struct sb__ops_check checks[SB_OPS_MAX_CHECKS];
	size_t nchecks;
	atomic_bool draining;
	atomic_int check_timeout_ms;
	atomic_int refs; /* the owner's, plus one per running /ready or check thread */
};

/* sb__ops_unref drops a reference to ops, freeing it with the last. */
void sb__ops_unref(struct sb_ops *ops);
/* sb__ops_ready answers GET /ready (on the loop thread; the checks run elsewhere). */
void sb__ops_ready(struct sb_ops *ops, struct sb_http_req *req);

#endif
