/* it.h: the integration tests' harness, one copy for every test in tests/integration.
 *
 * What a test that drives real servers and real service binaries needs: the stack's
 * environment (tests/lib/with-stack.sh exports SB_TEST_*), a monotonic clock, free loopback
 * ports, starting a built service (build/bin/sb-<name>) on free ports with the stack's
 * addresses and stopping it cleanly, its Health RPC and its ops port (/metrics), and a few
 * PostgreSQL shortcuts. Linked into every it_* executable as the static library sb_it
 * (tests/integration/CMakeLists.txt).
 *
 * Failures of the harness itself (a variable the stack should have set, a connection the test
 * cannot do without) print what happened and exit: the test fails, it never goes on with a
 * half-made fixture. Services started here die with the test (PR_SET_PDEATHSIG) and are killed
 * at exit if still running, so a failed assertion leaves nothing behind. */
#ifndef SB_IT_H
#define SB_IT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

struct sb_rpc_client;

/* ---- environment ---- */

/* it_env returns the value of name; exits (status 2) when it is unset or empty, naming it. */
const char *it_env(const char *name);
/* it_build_root returns SB_BUILD_ROOT (set by ctest) or "build". */
const char *it_build_root(void);
/* it_kafka_name writes SB_KAFKA_TOPIC_PREFIX (this test's, may be unset) followed by base to
 * out (size n), the name a topic or group base has in this test as the services build it;
 * returns out. */
const char *it_kafka_name(const char *base, char *out, size_t n);

/* ---- clock ---- */

int64_t it_now_ms(void); /* CLOCK_MONOTONIC in milliseconds */
void it_sleep_ms(int ms);

/* ---- ports ---- */

/* it_free_port returns a port in [10000, start of the kernel's ephemeral range) that could be
 * bound on 127.0.0.1 just now (below that range, so that an outgoing connection's local port
 * cannot take it before the service binds it), or -1 after many attempts. */
int it_free_port(void);

/* ---- service processes ---- */

struct it_proc {
	pid_t pid; /* 0 when not running (never started, stopped or reaped) */
	int rpc_port, ops_port;
	char rpc_url[64];
	char log[512];             /* the process's stdout and stderr, appended */
	char name[32];             /* the service, e.g. "outbox" */
	int status;                /* as it_stop returns it, once the process has been reaped */
	struct sb_rpc_client *cli; /* opened by it_wait_health, freed by it_stop */
};

/* it_spawn starts <build>/bin/sb-<service> with, in this order (later wins):
 *   - the stack's addresses when the stack has them: DATABASE_URL (SB_TEST_PG_DSN), REDIS_URL
 *     (SB_TEST_REDIS_URL), KAFKA_BROKERS (SB_TEST_KAFKA_BROKERS); SB_KAFKA_TOPIC_PREFIX is
 *     inherited;
 *   - free ports: SB_RPC_URL=tcp://127.0.0.1:<rpc_port>, SB_OPS_PORT=<ops_port>;
 *   - SB_LOG_LEVEL=info;
 *   - env: "NAME=value" strings ending with NULL (may be NULL).
 * Its output is appended to $SB_TEST_TMP/<log_name>.log. Returns 0, or -1 when the binary is not
 * built (said on stderr). */
int it_spawn(struct it_proc *p, const char *service, const char *log_name, const char *const *env);
/* it_running tells whether p is still running; reaps it (and records p->status) when not. */
bool it_running(struct it_proc *p);
/* it_stop sends sig and waits up to wait_ms for p to exit; frees p->cli. Returns the exit
 * status, 128 + n when a signal n ended it, -1 when it had to be killed after the wait (or was
 * not running). */
int it_stop(struct it_proc *p, int sig, int wait_ms);
/* it_wait_health opens p->cli if needed and calls method (an Sb__Rpc__HealthRequest, e.g.
 * "outbox.Health") until it answers OK; returns 0, or -1 when p exited or ms passed (the end of
 * its log is printed). */
int it_wait_health(struct it_proc *p, const char *method, int ms);
/* it_tail_log prints the last lines of p's log to stderr. */
void it_tail_log(const struct it_proc *p, int lines);

/* ---- ops port ---- */

/* it_http_get GETs path from 127.0.0.1:port (5-s timeout) into buf (size n, NUL-ended, the
 * whole response with its head); returns the HTTP status, or -1 when it could not connect or
 * read a status line. */
int it_http_get(int port, const char *path, char *buf, size_t n);
/* it_metric_port reads /metrics from port and returns the sum of the samples of series: a
 * metric name (every sample of it, with or without labels) or a name with the start of its
 * labels ("x_total{kind=\"a\"" or a whole "x_total{kind=\"a\"}"). Returns -1 when /metrics
 * cannot be read, 0 when no sample matches. */
double it_metric_port(int port, const char *series);
double it_metric(const struct it_proc *p, const char *series); /* on p->ops_port */
/* it_wait_metric waits up to ms until it_metric(p, series) >= min. */
bool it_wait_metric(const struct it_proc *p, const char *series, double min, int ms);

/* ---- PostgreSQL (SB_TEST_PG_DSN) ---- */

PGconn *it_pg(void);                          /* connected, or exits */
PGresult *it_sql(PGconn *c, const char *sql); /* the result (caller PQclears), or exits */
void it_exec(PGconn *c, const char *sql);
/* it_scalar returns the first column of the first row of sql as a number (-1 when none). */
long long it_scalar(PGconn *c, const char *sql);

#endif
