/* sb_service.c: start-up, serving and graceful shutdown shared by every daemon. */
#include "sb_service.h"

#include <stdatomic.h>

#include "sb_span.h"
#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_ops.h"
#include "sb_pg.h"
#include "sb_redis.h"
#include "sb_util_backoff.h"
#include "sb_util_shutdown.h"
#include "sb_util_time.h"

#include "rpc.pb-c.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_SERVICE_MAX_CHECKS 16

struct sb_service_check {
	char name[48];
	sb_service_check_fn fn;
	void *arg;
};

/* A dependency checked through a connection owned by the checker (one at a time). */
struct sb_service_dep {
	pthread_mutex_t mu;
	char *target; /* DSN, URL or broker list */
	void *conn;   /* struct sb_pg *, struct sb_redis *, struct sb_rpc_client * or NULL */
	void (*close)(void *conn);
	char peer[32];
	struct sb_service_dep *next;
};

struct sb_service {
	const struct sb_service_def *def;
	void *cfg;
	struct sb_common_cfg *common;
	void *state;
	struct sb_ops *ops;
	struct sb_rpc_server *rpc;
	struct sb_rpc_method *methods; /* def->methods plus Health */
	char health_method[64];
	long long started_ms;
	atomic_bool running; /* the start hook and the RPC server are up: /ready may say 200 */
	pthread_mutex_t checks_mu;
	struct sb_service_check checks[SB_SERVICE_MAX_CHECKS];
	size_t nchecks;
	struct sb_service_dep *deps;
};

void *
sb_service_config(struct sb_service *svc)
{
	return svc->cfg;
}

const struct sb_common_cfg *
sb_service_common(struct sb_service *svc)
{
	return svc->common;
}

const char *
sb_service_name(struct sb_service *svc)
{
	return svc->def->name;
}

void
sb_service_set_state(struct sb_service *svc, void *state)
{
	svc->state = state;
}

void *
sb_service_state(struct sb_service *svc)
{
	return svc->state;
}

struct sb_service *
sb_service_from_call(struct sb_rpc_call *call)
{
	return sb_rpc_call_server_ctx(call);
}

struct sb_worker_conns *
sb_service_worker_conns(struct sb_rpc_call *call)
{
	const struct sb_service *svc = sb_service_from_call(call);
	return svc->def->worker_conns != 0 ? sb_rpc_call_worker_state(call) : NULL;
}

int
sb_service_add_check(struct sb_service *svc, const char *name, sb_service_check_fn fn, void *arg)
{
	pthread_mutex_lock(&svc->checks_mu);
	if (svc->nchecks == SB_SERVICE_MAX_CHECKS) {
		pthread_mutex_unlock(&svc->checks_mu);
		return SB_EBUSY;
	}
	struct sb_service_check *c = &svc->checks[svc->nchecks++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_unlock(&svc->checks_mu);
	return sb_ops_add_check(svc->ops, name, fn, arg);
}

/* ---- ready-made dependency checks ---- */

/* sb_service_started_check keeps /ready at 503 until the service has started: before the start
 * hook returns, its own checks are not registered yet and its servers may not listen. */
static int
sb_service_started_check(void *arg, char *detail, size_t n)
{
	struct sb_service *svc = arg;
	if (atomic_load(&svc->running))
		return 0;
	snprintf(detail, n, "starting");
	return SB_EUNAVAIL;
}

static struct sb_service_dep *
sb_service_dep_new(struct sb_service *svc, const char *target)
{
	struct sb_service_dep *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->target = strdup(target);
	if (d->target == NULL) {
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	d->next = svc->deps;
	svc->deps = d;
	return d;
}

static int
sb_service_pg_check(void *arg, char *detail, size_t n)
{
	struct sb_service_dep *d = arg;
	pthread_mutex_lock(&d->mu);
	int rv = sb_pg_ping(d->conn, detail, n);
	pthread_mutex_unlock(&d->mu);
	return rv;
}

static int
sb_service_redis_check(void *arg, char *detail, size_t n)
{
	struct sb_service_dep *d = arg;
	pthread_mutex_lock(&d->mu);
	int rv = sb_redis_ping(d->conn, detail, n);
	pthread_mutex_unlock(&d->mu);
	return rv;
}

static int
sb_service_kafka_check(void *arg, char *detail, size_t n)
{
	struct sb_service_dep *d = arg;
	pthread_mutex_lock(&d->mu);
	int rv = sb_kafka_ping(sb_kafka_producer_handle(d->conn), 2000, detail, n);
	pthread_mutex_unlock(&d->mu);
	return rv;
}

static void
sb_service_kafka_close(void *conn)
{
	sb_kafka_producer_free(conn);
}

static int
sb_service_rpc_check(void *arg, char *detail, size_t n)
{
	struct sb_service_dep *d = arg;
	char method[64];
	snprintf(method, sizeof(method), "%s.Health", d->peer);
	Sb__Rpc__HealthRequest req = SB__RPC__HEALTH_REQUEST__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = 1000 };
	struct sb_rpc_result res;
	int rv = sb_rpc_call(d->conn, method, &req.base, &sb__rpc__health_response__descriptor,
	                     &meta, &res);
	if (rv != 0) {
		snprintf(detail, n, "%s", sb_strerror(rv));
		return rv;
	}
	if (res.code != SB__RPC__CODE__OK) {
		snprintf(detail, n, "code %d: %s", res.code, res.message ? res.message : "");
		rv = SB_EUNAVAIL;
	} else if (!((Sb__Rpc__HealthResponse *)res.resp)->ready) {
		snprintf(detail, n, "%s is not ready", d->peer);
		rv = SB_EUNAVAIL;
	}
	sb_rpc_result_free(&res);
	return rv;
}

static void
sb_service_pg_close(void *conn)
{
	sb_pg_close(conn);
}

static void
sb_service_redis_close(void *conn)
{
	sb_redis_close(conn);
}

static void
sb_service_rpc_close(void *conn)
{
	sb_rpc_client_free(conn);
}

static int
sb_service_check_postgres(struct sb_service *svc, const char *dsn)
{
	struct sb_service_dep *d = sb_service_dep_new(svc, dsn);
	if (d == NULL)
		return SB_ENOMEM;
	int rv = sb_pg_open(dsn, NULL, (struct sb_pg **)&d->conn);
	if (rv != 0)
		return rv;
	d->close = sb_service_pg_close;
	return sb_service_add_check(svc, "postgres", sb_service_pg_check, d);
}

static int
sb_service_check_redis(struct sb_service *svc, const char *url)
{
	struct sb_service_dep *d = sb_service_dep_new(svc, url);
	if (d == NULL)
		return SB_ENOMEM;
	int rv = sb_redis_open(url, (struct sb_redis **)&d->conn);
	if (rv != 0)
		return rv;
	d->close = sb_service_redis_close;
	return sb_service_add_check(svc, "redis", sb_service_redis_check, d);
}

static int
sb_service_check_kafka(struct sb_service *svc, const char *brokers)
{
	struct sb_service_dep *d = sb_service_dep_new(svc, brokers);
	if (d == NULL)
		return SB_ENOMEM;
	/* An idle producer handle only for metadata requests: it never produces. */
	int rv = sb_kafka_producer_new(brokers, NULL, (struct sb_kafka_producer **)&d->conn);
	if (rv != 0)
		return rv;
	d->close = sb_service_kafka_close;
	return sb_service_add_check(svc, "kafka", sb_service_kafka_check, d);
}

/* An upstream: its client serves the service's handlers and, if needed_ready, a check. */
static int
sb_service_open_upstream(struct sb_service *svc, const struct sb_service_upstream *u)
{
	const char *url;
	memcpy(&url, (char *)svc->cfg + u->url_offset, sizeof(url));
	struct sb_service_dep *d = sb_service_dep_new(svc, url);
	if (d == NULL)
		return SB_ENOMEM;
	snprintf(d->peer, sizeof(d->peer), "%s", u->peer);
	int rv = sb_rpc_client_open(url, (struct sb_rpc_client **)&d->conn);
	if (rv != 0)
		return rv;
	d->close = sb_service_rpc_close;
	if (!u->needed_ready)
		return 0;
	char name[48];
	snprintf(name, sizeof(name), "rpc:%s", u->peer);
	return sb_service_add_check(svc, name, sb_service_rpc_check, d);
}

struct sb_rpc_client *
sb_service_upstream(struct sb_service *svc, const char *peer)
{
	for (struct sb_service_dep *d = svc->deps; d != NULL; d = d->next) {
		if (d->peer[0] != '\0' && strcmp(d->peer, peer) == 0)
			return d->conn;
	}
	return NULL;
}

static bool
sb_service_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* sb_service_wire_deps turns the configured dependencies into checks and upstream clients. */
static int
sb_service_wire_deps(struct sb_service *svc)
{
	const struct sb_common_cfg *c = svc->common;
	int rv = 0;
	if (rv == 0 && sb_service_set(c->database_url))
		rv = sb_service_check_postgres(svc, c->database_url);
	if (rv == 0 && sb_service_set(c->redis_url))
		rv = sb_service_check_redis(svc, c->redis_url);
	if (rv == 0 && sb_service_set(c->kafka_brokers))
		rv = sb_service_check_kafka(svc, c->kafka_brokers);
	for (const struct sb_service_upstream *u = svc->def->upstreams; rv == 0 && u && u->peer;
	     u++)
		rv = sb_service_open_upstream(svc, u);
	return rv;
}

static void
sb_service_deps_free(struct sb_service *svc)
{
	while (svc->deps != NULL) {
		struct sb_service_dep *d = svc->deps;
		svc->deps = d->next;
		if (d->conn != NULL && d->close != NULL)
			d->close(d->conn);
		pthread_mutex_destroy(&d->mu);
		free(d->target);
		free(d);
	}
}

/* ---- the Health RPC every service answers ---- */

static int
sb_service_health(struct sb_rpc_call *call, const void *req, void *resp)
{
	(void)req;
	struct sb_service *svc = sb_service_from_call(call);
	Sb__Rpc__HealthResponse *out = resp;
	out->service = sb_rpc_call_strdup(call, svc->def->name);
	out->version = sb_rpc_call_strdup(call, SB_VERSION);
	out->uptime_ms = sb_time_now_ms() - svc->started_ms;
	out->ready = 1;

	pthread_mutex_lock(&svc->checks_mu);
	size_t n = svc->nchecks;
	struct sb_service_check checks[SB_SERVICE_MAX_CHECKS];
	memcpy(checks, svc->checks, n * sizeof(checks[0]));
	pthread_mutex_unlock(&svc->checks_mu);

	out->dependencies = sb_rpc_call_alloc(call, (n ? n : 1) * sizeof(*out->dependencies));
	out->n_dependencies = 0;
	for (size_t i = 0; i < n; i++) {
		Sb__Rpc__DependencyStatus *d = sb_rpc_call_alloc(call, sizeof(*d));
		if (out->dependencies == NULL || d == NULL)
			return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		sb__rpc__dependency_status__init(d);
		char detail[256] = "";
		d->name = sb_rpc_call_strdup(call, checks[i].name);
		d->ok = checks[i].fn(checks[i].arg, detail, sizeof(detail)) == 0;
		d->detail = sb_rpc_call_strdup(call, detail);
		if (!d->ok)
			out->ready = 0;
		out->dependencies[out->n_dependencies++] = d;
	}
	return SB__RPC__CODE__OK;
}

static int
sb_service_build_methods(struct sb_service *svc)
{
	size_t n = 0;
	for (const struct sb_rpc_method *m = svc->def->methods; m && m->name; m++)
		n++;
	svc->methods = calloc(n + 2, sizeof(*svc->methods));
	if (svc->methods == NULL)
		return SB_ENOMEM;
	if (n > 0)
		memcpy(svc->methods, svc->def->methods, n * sizeof(*svc->methods));
	snprintf(svc->health_method, sizeof(svc->health_method), "%s.Health", svc->def->name);
	svc->methods[n] = (struct sb_rpc_method){
		.name = svc->health_method,
		.req = &sb__rpc__health_request__descriptor,
		.resp = &sb__rpc__health_response__descriptor,
		.fn = sb_service_health,
	};
	return 0;
}

/* ---- each RPC worker's own state and connections ---- */

static void
sb_service_worker_conns_free(struct sb_worker_conns *c)
{
	sb_pg_close(c->pg);
	sb_redis_close(c->redis);
	free(c);
}

/* sb_service_worker_conns_open opens the connections def->worker_conns asks for, then runs
 * def->worker_init. Returns 0 with *out (freed by sb_service_worker_conns_free), or an error
 * with nothing left open. */
static int
sb_service_worker_conns_open(struct sb_service *svc, struct sb_worker_conns **out)
{
	const struct sb_service_def *def = svc->def;
	const struct sb_common_cfg *cfg = svc->common;
	const char *missing = NULL;
	if ((def->worker_conns & ~(SB_WORKER_PG | SB_WORKER_REDIS)) != 0) {
		SB_ERROR("unknown worker_conns flags %#x", def->worker_conns);
		return SB_EINVAL;
	}
	if ((def->worker_conns & SB_WORKER_PG) && !sb_service_set(cfg->database_url))
		missing = "DATABASE_URL";
	else if ((def->worker_conns & SB_WORKER_REDIS) && !sb_service_set(cfg->redis_url))
		missing = "REDIS_URL";
	if (missing != NULL) {
		sb_log_kv(SB_LOG_ERROR, "worker connections need a setting the service lacks",
		          "setting", missing, NULL);
		return SB_EINVAL;
	}
	struct sb_worker_conns *c = calloc(1, sizeof(*c));
	int rv = 0;
	if (c == NULL)
		return SB_ENOMEM;
	if (def->worker_conns & SB_WORKER_PG)
		rv = sb_pg_open_opts(cfg->database_url, def->worker_stmts, def->worker_pg_opts,
		                     &c->pg);
	if (rv == 0 && (def->worker_conns & SB_WORKER_REDIS))
		rv = sb_redis_open(cfg->redis_url, &c->redis);
	if (rv == 0 && def->worker_init != NULL)
		rv = def->worker_init(svc, &c->state);
	if (rv != 0) {
		sb_service_worker_conns_free(c);
		return rv;
	}
	*out = c;
	return 0;
}

static int
sb_service_worker_init(void *ctx, void **state)
{
	struct sb_service *svc = ctx;
	*state = NULL;
	if (svc->def->worker_conns != 0) {
		struct sb_worker_conns *c = NULL;
		int rv = sb_service_worker_conns_open(svc, &c);
		*state = c;
		return rv;
	}
	return svc->def->worker_init ? svc->def->worker_init(svc, state) : 0;
}

static void
sb_service_worker_fini(void *ctx, void *state)
{
	struct sb_service *svc = ctx;
	if (svc->def->worker_conns != 0) {
		struct sb_worker_conns *c = state;
		if (svc->def->worker_fini)
			svc->def->worker_fini(svc, c->state);
		sb_service_worker_conns_free(c);
		return;
	}
	if (svc->def->worker_fini)
		svc->def->worker_fini(svc, state);
}

/* ---- main ---- */

static void
sb_service_usage(const struct sb_service_def *def)
{
	printf("usage: sb-%s [--check-config | --config-reference | --routes | --version]\n"
	       "Configuration comes from the environment; see README.md.\n",
	       def->name);
}

/* sb_service_print_routes writes def's public HTTP routes to stdout (--routes). Returns the
 * exit status: 0, or 1 when the service has no routes or they cannot be written. */
static int
sb_service_print_routes(const struct sb_service_def *def)
{
	if (def->routes == NULL) {
		fprintf(stderr, "sb-%s: no public HTTP routes\n", def->name);
		return 1;
	}
	struct sb_buf b = SB_BUF_INIT;
	int rv = def->routes(&b);
	if (rv == 0 && b.len > 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		rv = SB_EIO;
	sb_buf_free(&b);
	if (rv != 0 || fflush(stdout) != 0) {
		fprintf(stderr, "sb-%s: cannot list the routes: %s\n", def->name,
		        sb_strerror(rv ? rv : SB_EIO));
		return 1;
	}
	return 0;
}

/* sb_service_migrate applies the service's migrations. While the database is unreachable it
 * waits (with backoff, logging each attempt) rather than exiting, so a service may start before
 * its database; any other failure (a changed migration file, bad SQL) stops the start. */
static int
sb_service_migrate(struct sb_service *svc)
{
	const char *dsn = svc->common->database_url;
	if (svc->def->migrations == NULL || !sb_service_set(dsn))
		return 0;
	struct sb_pg *pg = NULL;
	int rv = sb_pg_open(dsn, NULL, &pg);
	struct sb_backoff bo;
	sb_backoff_init(&bo, 200, 5000);
	while (rv == 0) {
		char err[512] = "";
		rv = sb_migrate(pg, svc->def->schema, svc->def->migrations, err, sizeof(err));
		if (rv == SB_EUNAVAIL && !sb_shutdown_requested()) {
			sb_log_kv(SB_LOG_WARN, "database unavailable for migrations; retrying",
			          "error", err, NULL);
			struct timespec ts = { 0 };
			int64_t ms = sb_backoff_next(&bo);
			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (ms % 1000) * 1000000;
			nanosleep(&ts, NULL);
			rv = 0;
			continue;
		}
		if (rv != 0)
			sb_log_kv(SB_LOG_ERROR, "migrations failed", "schema", svc->def->schema,
			          "error", err[0] ? err : sb_strerror(rv), NULL);
		break;
	}
	if (pg != NULL)
		sb_pg_close(pg);
	return rv;
}

int
sb_service_main(const struct sb_service_def *def, int argc, char **argv)
{
	bool check_only = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check-config") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--config-reference") == 0) {
			struct sb_buf b = SB_BUF_INIT;
			sb_config_markdown(def->config, &b);
			fputs(b.data ? b.data : "", stdout);
			sb_buf_free(&b);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sb-%s %s\n", def->name, SB_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--routes") == 0) {
			return sb_service_print_routes(def);
		} else {
			sb_service_usage(def);
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}

	struct sb_service svc_storage = { .def = def };
	struct sb_service *svc = &svc_storage;
	pthread_mutex_init(&svc->checks_mu, NULL);
	svc->cfg = calloc(1, def->config_size);
	if (svc->cfg == NULL)
		return 1;
	svc->common = (struct sb_common_cfg *)((char *)svc->cfg + def->common_offset);
	sb_log_init(def->name, SB_LOG_INFO);

	char err[512] = "";
	if (sb_config_load(def->config, svc->cfg, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sb-%s: configuration error: %s\n", def->name, err);
		sb_log_kv(SB_LOG_ERROR, "configuration error", "error", err, NULL);
		sb_config_free(def->config, svc->cfg);
		free(svc->cfg);
		return check_only ? 1 : 2;
	}
	if (check_only) {
		printf("sb-%s: configuration OK\n", def->name);
		sb_config_free(def->config, svc->cfg);
		free(svc->cfg);
		return 0;
	}

	enum sb_log_level lvl = SB_LOG_INFO;
	sb_log_level_parse(svc->common->log_level, &lvl);
	sb_log_set_level(lvl);
	sb_config_log(def->config, svc->cfg);
	svc->started_ms = sb_time_now_ms();

	int status = 1;
	char span_service[64];
	snprintf(span_service, sizeof(span_service), "sb-%s", def->name);
	if (sb_span_exporter_start(span_service, svc->common->otlp_endpoint,
	                           (int)svc->common->trace_sample_percent) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start the trace exporter", "endpoint",
		          svc->common->otlp_endpoint, NULL);
		goto done;
	}
	if (sb_shutdown_install() != 0) {
		SB_ERROR("cannot install signal handling");
		goto done;
	}
	/* "started" is in place before the ops server listens: /ready says 503 until the start
	 * hook and the RPC server are up, never 200 in between */
	int rv = sb_ops_start_checked(svc->common->ops_addr, (int)svc->common->ops_port, "started",
	                              sb_service_started_check, svc, &svc->ops);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start ops server", "addr", svc->common->ops_addr,
		          "error", sb_strerror(rv), NULL);
		goto done;
	}
	if (sb_service_migrate(svc) != 0)
		goto done;
	if ((rv = sb_service_wire_deps(svc)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot set up dependencies", "error", sb_strerror(rv),
		          NULL);
		goto done;
	}
	if (def->start != NULL && (rv = def->start(svc)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "service start failed", "error", sb_strerror(rv), NULL);
		goto done;
	}
	if ((rv = sb_service_build_methods(svc)) != 0)
		goto stop;
	struct sb_rpc_server_opts opts = {
		.url = svc->common->rpc_url,
		.workers = (int)svc->common->rpc_workers,
		.methods = svc->methods,
		.ctx = svc,
		.worker_init = sb_service_worker_init,
		.worker_fini = sb_service_worker_fini,
	};
	if ((rv = sb_rpc_server_start(&opts, &svc->rpc)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start RPC server", "url", svc->common->rpc_url,
		          "error", sb_strerror(rv), NULL);
		goto stop;
	}
	char port[16];
	snprintf(port, sizeof(port), "%lld", svc->common->ops_port);
	sb_log_kv(SB_LOG_INFO, "service started", "rpc", svc->common->rpc_url, "ops_port", port,
	          "version", SB_VERSION, NULL);
	atomic_store(&svc->running, true);

	int sig = sb_shutdown_wait();
	char signame[16];
	snprintf(signame, sizeof(signame), "%d", sig);
	sb_log_kv(SB_LOG_INFO, "shutting down", "signal", signame, NULL);
	sb_ops_set_draining(svc->ops, true);
	sb_rpc_server_drain(svc->rpc, (int)svc->common->shutdown_grace_ms);
	sb_rpc_server_free(svc->rpc);
	svc->rpc = NULL;
	status = 0;
stop:
	if (def->stop != NULL)
		def->stop(svc);
done:
	sb_span_exporter_stop((int)svc->common->shutdown_grace_ms);
	if (svc->ops != NULL)
		sb_ops_stop(svc->ops);
	sb_service_deps_free(svc);
	free(svc->methods);
	sb_config_free(def->config, svc->cfg);
	free(svc->cfg);
	pthread_mutex_destroy(&svc->checks_mu);
	sb_log_kv(SB_LOG_INFO, status == 0 ? "stopped" : "exiting after a failure", NULL);
	return status;
}
