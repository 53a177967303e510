/* sb_ops.c: the ops server: its route table, /healthz, /metrics, start and stop. */
#include "sb_ops.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_metrics.h"

#include <stdlib.h>
#include <string.h>

#define SB_OPS_DEFAULT_CHECK_TIMEOUT_MS 2000

static const struct sb_http_header sb_ops_no_store[] = { { "Cache-Control", "no-store" } };

static void
sb_ops_healthz(struct sb_ops *ops, struct sb_http_req *req)
{
	(void)ops;
	static const char body[] = "{\"status\":\"ok\"}";
	sb_http_respond(req, 200, "application/json", sb_ops_no_store, 1, body, sizeof(body) - 1);
}

static void
sb_ops_metrics(struct sb_ops *ops, struct sb_http_req *req)
{
	(void)ops;
	struct sb_buf out = SB_BUF_INIT;
	if (sb_metrics_render(&out) != 0) {
		sb_buf_free(&out);
		sb_http_respond_problem(req, 500, NULL, "out of memory rendering metrics");
		return;
	}
	sb_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", sb_ops_no_store, 1,
	                out.data, out.len);
	sb_buf_free(&out);
}

/* The routes: a new ops endpoint is a row. */
static const struct sb_ops_route {
	const char *path;
	void (*fn)(struct sb_ops *ops, struct sb_http_req *req);
} sb_ops_routes[] = {
	{ "/healthz", sb_ops_healthz },
	{ "/live", sb_ops_healthz }, /* the name Linkerd's proxy (and the mesh sidecar) answer */
	{ "/ready", sb__ops_ready },
	{ "/metrics", sb_ops_metrics },
};

static void
sb_ops_handle(struct sb_http_req *req, void *arg)
{
	struct sb_ops *ops = arg;
	for (size_t i = 0; i < sizeof(sb_ops_routes) / sizeof(sb_ops_routes[0]); i++) {
		if (strcmp(req->path, sb_ops_routes[i].path) != 0)
			continue;
		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
			static const struct sb_http_header allow[] = { { "Allow", "GET, HEAD" } };
			sb_http_respond_problem_extra(req, 405, NULL, "use GET", allow, 1);
			return;
		}
		sb_ops_routes[i].fn(ops, req);
		return;
	}
	sb_http_respond_problem(req, 404, NULL, "no such ops endpoint");
}

int
sb_ops_start(const char *addr, int port, struct sb_ops **out)
{
	return sb_ops_start_checked(addr, port, NULL, NULL, NULL, out);
}

int
sb_ops_start_checked(const char *addr, int port, const char *name, sb_ops_check_fn check, void *arg,
                     struct sb_ops **out)
{
	if (out == NULL)
		return SB_EINVAL;
	struct sb_ops *ops = calloc(1, sizeof(*ops));
	if (ops == NULL)
		return SB_ENOMEM;
	if (pthread_mutex_init(&ops->lock, NULL) != 0) {
		free(ops);
		return SB_ENOMEM;
	}
	atomic_init(&ops->refs, 1);
	atomic_init(&ops->draining, false);
	atomic_init(&ops->check_timeout_ms, SB_OPS_DEFAULT_CHECK_TIMEOUT_MS);
	for (size_t i = 0; i < SB_OPS_MAX_CHECKS; i++)
		atomic_init(&ops->checks[i].running, false);
	struct sb_http_config cfg = {
		.addr = addr,
		.port = port,
		.max_header_bytes = 8192,
		.max_body_bytes = 4096,
		.header_timeout_ms = 5000,
		.body_timeout_ms = 5000,
		.idle_timeout_ms = 30000,
		.max_conns = 64,
	};
	int rc = name != NULL ? sb_ops_add_check(ops, name, check, arg) : 0;
	if (rc == 0)
		rc = sb_http_server_start(&cfg, sb_ops_handle, ops, &ops->http);
	if (rc != 0) {
		pthread_mutex_destroy(&ops->lock);
		free(ops);
		return rc;
	}
	*out = ops;
	return 0;
}

int
sb_ops_port(struct sb_ops *ops)
{
	return ops ? sb_http_server_port(ops->http) : -1;
}

int
sb_ops_add_check(struct sb_ops *ops, const char *name, sb_ops_check_fn check, void *arg)
{
	if (ops == NULL || check == NULL || name == NULL || *name == '\0' || strlen(name) > 63)
		return SB_EINVAL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return SB_EINVAL;
	}
	int ret = 0;
	pthread_mutex_lock(&ops->lock);
	for (size_t i = 0; i < ops->nchecks; i++) {
		if (strcmp(ops->checks[i].name, name) == 0)
			ret = SB_EEXIST;
	}
	if (ret == 0 && ops->nchecks == SB_OPS_MAX_CHECKS)
		ret = SB_EBUSY;
	if (ret == 0) {
		struct sb__ops_check *c = &ops->checks[ops->nchecks++];
		strcpy(c->name, name);
		c->fn = check;
		c->arg = arg;
	}
	pthread_mutex_unlock(&ops->lock);
	return ret;
}

void
sb_ops_set_check_timeout(struct sb_ops *ops, int ms)
{
	if (ops != NULL && ms > 0)
		atomic_store(&ops->check_timeout_ms, ms);
}

void
sb_ops_set_draining(struct sb_ops *ops, bool draining)
{
	if (ops != NULL)
		atomic_store(&ops->draining, draining);
}

void
sb__ops_unref(struct sb_ops *ops)
{
	if (atomic_fetch_sub(&ops->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&ops->lock);
	free(ops);
}

void
sb_ops_stop(struct sb_ops *ops)
{
	if (ops == NULL)
		return;
	sb_http_server_stop(ops->http, atomic_load(&ops->check_timeout_ms) + 500);
	sb__ops_unref(ops);
}
