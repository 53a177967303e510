/* main.c: sb-sidecar's start and stop: configuration, identity, policy, listeners, the ops
 * server, the loop; then the same in reverse. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_ops.h"
#include "sb_util_shutdown.h"
#include "sidecar.h"

static double
main_cert_expiry(void *arg)
{
	const struct mesh *m = arg;
	return (double)atomic_load(&m->tls.not_after);
}

/* main_check_identity: /ready fails without a loaded, unexpired certificate. */
static int
main_check_identity(void *arg, char *detail, size_t n)
{
	struct mesh *m = arg;
	if (!atomic_load(&m->tls.loaded)) {
		snprintf(detail, n, "no certificate loaded");
		return -1;
	}
	long long left = atomic_load(&m->tls.not_after) - (long long)time(NULL);
	if (left <= 0) {
		snprintf(detail, n, "certificate expired");
		return -1;
	}
	snprintf(detail, n, "expires in %lld s", left);
	return 0;
}

/* main_check_loop: /ready fails while draining and once the proxy loop has stopped. */
static int
main_check_loop(void *arg, char *detail, size_t n)
{
	struct mesh *m = arg;
	snprintf(detail, n, "%s%d inbound, %d outbound connections",
	         atomic_load(&m->draining) ? "draining: " : "", atomic_load(&m->conns[MESH_IN]),
	         atomic_load(&m->conns[MESH_OUT]));
	return atomic_load(&m->running) && !atomic_load(&m->draining) ? 0 : -1;
}

/* main_check_service: /ready fails while the local service does not accept connections (a
 * sidecar in front of nothing must not receive traffic). Runs on an ops check thread. */
static int
main_check_service(void *arg, char *detail, size_t n)
{
	struct mesh *m = arg;
	int fd = socket(m->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rv = connect(fd, (struct sockaddr *)&m->target, m->target_len);
	if (rv != 0 && errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t l = sizeof err;
		rv = -1;
		if (poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 &&
		    err == 0)
			rv = 0;
		else
			errno = err ? err : ETIMEDOUT;
	}
	int e = errno;
	close(fd);
	if (rv != 0) {
		snprintf(detail, n, "%s: %s", m->cfg.target, strerror(e));
		return -1;
	}
	snprintf(detail, n, "%s accepts connections", m->cfg.target);
	return 0;
}

static void
main_usage(void)
{
	printf("usage: sb-sidecar [--check-config | --config-reference | --version]\n"
	       "Settings come from the environment (README.md, docs/mesh.md).\n");
}

int
main(int argc, char **argv)
{
	bool check_only = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check-config") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--config-reference") == 0) {
			struct sb_buf b = SB_BUF_INIT;
			sb_config_markdown(mesh_cfg_table, &b);
			fputs(b.data ? b.data : "", stdout);
			sb_buf_free(&b);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sb-sidecar %s\n", SB_VERSION);
			return 0;
		} else {
			main_usage();
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	static struct mesh mesh;
	struct mesh *m = &mesh;
	m->in_fd = -1;
	m->epfd = -1;
	sb_log_init("sidecar", SB_LOG_INFO);
	char err[512] = "";
	if (sb_config_load(mesh_cfg_table, &m->cfg, NULL, NULL, err, sizeof err) != 0) {
		fprintf(stderr, "sb-sidecar: configuration error: %s\n", err);
		sb_log_kv(SB_LOG_ERROR, "configuration error", "error", err, NULL);
		sb_config_free(mesh_cfg_table, &m->cfg);
		return check_only ? 1 : 2;
	}
	int status = check_only ? 1 : 2;
	if (mesh_policy_parse(m->cfg.allow, &m->policy, err, sizeof err) != 0 ||
	    mesh_upstreams_parse(&m->cfg, &m->ups, &m->nups, err, sizeof err) != 0 ||
	    mesh_addr_parse(m->cfg.target, &m->target, &m->target_len) != 0) {
		if (!err[0])
			snprintf(err, sizeof err, "SB_MESH_TARGET: want host:port");
		fprintf(stderr, "sb-sidecar: configuration error: %s\n", err);
		sb_log_kv(SB_LOG_ERROR, "configuration error", "error", err, NULL);
		goto done;
	}
	if (check_only) {
		printf("sb-sidecar: configuration OK\n");
		status = 0;
		goto done;
	}
	status = 1;
	enum sb_log_level lvl = SB_LOG_INFO;
	sb_log_level_parse(m->cfg.log_level, &lvl);
	sb_log_set_level(lvl);
	sb_log_init(m->cfg.service, lvl); /* lines name the service the sidecar stands for */
	sb_config_log(mesh_cfg_table, &m->cfg);

	m->tls.cert = m->cfg.cert;
	m->tls.key = m->cfg.key;
	m->tls.ca = m->cfg.ca;
	if (mesh_tls_load(&m->tls) != 0)
		goto done;
	struct mesh_id self;
	if (mesh_id_parse(m->tls.self_id, strlen(m->tls.self_id), &self) != 0 ||
	    strcmp(self.sa, m->cfg.service) != 0 || strcmp(self.td, m->cfg.trust_domain) != 0 ||
	    strcmp(self.ns, m->cfg.ns) != 0) {
		sb_log_kv(SB_LOG_ERROR, "certificate is not this service's identity", "id",
		          m->tls.self_id, "service", m->cfg.service, NULL);
		goto done;
	}
	if (mesh_metrics_init(&m->metrics) != 0 ||
	    sb_metrics_gauge_fn("identity_cert_expiration_timestamp_seconds",
	                        "When this sidecar's certificate expires (Unix seconds).",
	                        main_cert_expiry, m) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot register metrics", NULL);
		goto done;
	}
	struct sb_metric *ej = sb_metrics_counter(
	    "mesh_upstream_ejections_total", "Times an upstream sidecar was ejected.", "upstream");
	struct sb_metric *ejg = sb_metrics_gauge(
	    "mesh_upstream_ejected",
	    "1 from an ejection of one of the upstream's sidecars until a dial succeeds again.",
	    "upstream");
	for (size_t i = 0; i < m->nups; i++) {
		m->ups[i].ejections = sb_metric_with(ej, m->ups[i].name);
		m->ups[i].ejected_gauge = sb_metric_with(ejg, m->ups[i].name);
	}
	if (sb_shutdown_install() != 0 || mesh_listen(m) != 0)
		goto done;
	struct sb_ops *ops = NULL;
	int rv = sb_ops_start(m->cfg.ops_addr, (int)m->cfg.ops_port, &ops);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start ops server", "error", sb_strerror(rv), NULL);
		goto done;
	}
	sb_ops_add_check(ops, "identity", main_check_identity, m);
	sb_ops_add_check(ops, "proxy", main_check_loop, m);
	if (m->in_fd >= 0)
		sb_ops_add_check(ops, "service", main_check_service, m);
	char ports[64], opsp[16];
	snprintf(ports, sizeof ports, "%d", m->in_port);
	snprintf(opsp, sizeof opsp, "%d", sb_ops_port(ops));
	sb_log_kv(SB_LOG_INFO, "sidecar ready", "id", m->tls.self_id, "inbound_port",
	          m->in_fd >= 0 ? ports : NULL, "ops_port", opsp, NULL);
	for (size_t i = 0; i < m->nups; i++) {
		char p[16];
		snprintf(p, sizeof p, "%d", m->out_ports[i]);
		sb_log_kv(SB_LOG_INFO, "outbound listener", "upstream", m->ups[i].name, "port", p,
		          "expect", m->ups[i].expect_id, NULL);
	}
	status = mesh_proxy_run(m) == 0 ? 0 : 1;
	sb_log_kv(SB_LOG_INFO, "sidecar stopping", NULL);
	sb_ops_set_draining(ops, true);
	sb_ops_stop(ops);
done:
	if (m->in_fd >= 0)
		close(m->in_fd);
	for (size_t i = 0; m->out_fds && i < m->nups; i++)
		if (m->out_fds[i] > 0)
			close(m->out_fds[i]);
	free(m->out_fds);
	free(m->out_ports);
	for (size_t i = 0; i < m->nups; i++)
		free(m->ups[i].eps);
	free(m->ups);
	mesh_policy_free(&m->policy);
	mesh_tls_free(&m->tls);
	sb_config_free(mesh_cfg_table, &m->cfg);
	return status;
}
