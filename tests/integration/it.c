/* it.c: the integration tests' harness (it.h). */
#include "it.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rpc.pb-c.h"
#include "sb_rpc.h"

/* ---- environment ---- */

const char *
it_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "%s is not set: run under tests/lib/with-stack.sh (ctest does)\n",
		        name);
		exit(2);
	}
	return v;
}

const char *
it_build_root(void)
{
	const char *b = getenv("SB_BUILD_ROOT");
	return b != NULL && b[0] != '\0' ? b : "build";
}

const char *
it_kafka_name(const char *base, char *out, size_t n)
{
	const char *pre = getenv("SB_KAFKA_TOPIC_PREFIX");
	snprintf(out, n, "%s%s", pre ? pre : "", base);
	return out;
}

/* ---- clock ---- */

int64_t
it_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
it_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- ports ---- */

int
it_free_port(void)
{
	static unsigned seed;
	int lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f != NULL) {
		if (fscanf(f, "%d", &lo) != 1 || lo <= 12000)
			lo = 32768;
		fclose(f);
	}
	if (seed == 0)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
	for (int attempt = 0; attempt < 200; attempt++) {
		int port = 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 10000));
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		struct sockaddr_in a = { .sin_family = AF_INET,
			                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
			                 .sin_port = htons((uint16_t)port) };
		int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* ---- service processes ---- */

/* Every process started and not yet reaped: killed at exit, so that a failed assertion (cmocka
 * returns from the test early) never leaves a service behind. */
static pid_t it_children[32];

static void
it_kill_children(void)
{
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i] > 0) {
			kill(it_children[i], SIGKILL);
			waitpid(it_children[i], NULL, 0);
			it_children[i] = 0;
		}
}

/* it_track replaces old (0: a free slot) by pid in the list of children. */
static void
it_track(pid_t old, pid_t pid)
{
	static bool registered;
	if (!registered) {
		atexit(it_kill_children);
		registered = true;
	}
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i] == old) {
			it_children[i] = pid;
			return;
		}
}

/* it_setenv applies one "NAME=value" string (in the child, before exec). */
static void
it_setenv(const char *kv)
{
	const char *eq = strchr(kv, '=');
	char name[128];
	if (eq == NULL || (size_t)(eq - kv) >= sizeof(name))
		return;
	memcpy(name, kv, (size_t)(eq - kv));
	name[eq - kv] = '\0';
	setenv(name, eq + 1, 1);
}

int
it_spawn(struct it_proc *p, const char *service, const char *log_name, const char *const *env)
{
	char bin[512];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", service);
	snprintf(bin, sizeof(bin), "%s/bin/sb-%s", it_build_root(), service);
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "%s is not built (cmake --build <dir> --target sb-%s)\n", bin,
		        service);
		return -1;
	}
	p->rpc_port = it_free_port();
	p->ops_port = it_free_port();
	snprintf(p->rpc_url, sizeof(p->rpc_url), "tcp://127.0.0.1:%d", p->rpc_port);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", it_env("SB_TEST_TMP"), log_name);
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		p->pid = 0;
		return -1;
	}
	if (p->pid == 0) {
		/* Dies with the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		static const char *const stack[][2] = { { "SB_TEST_PG_DSN", "DATABASE_URL" },
			                                { "SB_TEST_REDIS_URL", "REDIS_URL" },
			                                { "SB_TEST_KAFKA_BROKERS",
			                                  "KAFKA_BROKERS" } };
		for (size_t i = 0; i < sizeof(stack) / sizeof(stack[0]); i++) {
			const char *v = getenv(stack[i][0]);
			if (v != NULL && v[0] != '\0')
				setenv(stack[i][1], v, 1);
		}
		char ops[16];
		snprintf(ops, sizeof(ops), "%d", p->ops_port);
		setenv("SB_RPC_URL", p->rpc_url, 1);
		setenv("SB_OPS_PORT", ops, 1);
		setenv("SB_LOG_LEVEL", "info", 1);
		for (size_t i = 0; env != NULL && env[i] != NULL; i++)
			it_setenv(env[i]);
		execl(bin, bin, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	it_track(0, p->pid);
	return 0;
}

/* it_decode turns a waitpid status into it_stop's convention. */
static int
it_decode(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool
it_running(struct it_proc *p)
{
	int st;
	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return true;
	it_track(p->pid, 0);
	p->pid = 0;
	p->status = it_decode(st);
	return false;
}

int
it_stop(struct it_proc *p, int sig, int wait_ms)
{
	int st = 0;
	if (p->cli != NULL) {
		sb_rpc_client_free(p->cli);
		p->cli = NULL;
	}
	if (p->pid <= 0)
		return -1;
	kill(p->pid, sig);
	for (int64_t end = it_now_ms() + wait_ms; it_now_ms() < end;) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			it_track(p->pid, 0);
			p->pid = 0;
			p->status = it_decode(st);
			return p->status;
		}
		it_sleep_ms(20);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	it_track(p->pid, 0);
	p->pid = 0;
	p->status = -1;
	return -1;
}

void
it_tail_log(const struct it_proc *p, int lines)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, p->log);
	fprintf(stderr, "--- the end of %s:\n", p->log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

int
it_wait_health(struct it_proc *p, const char *method, int ms)
{
	if (p->cli == NULL && sb_rpc_client_open(p->rpc_url, &p->cli) != 0) {
		fprintf(stderr, "cannot open an RPC client to %s\n", p->rpc_url);
		return -1;
	}
	for (int64_t end = it_now_ms() + ms;;) {
		Sb__Rpc__HealthRequest req = SB__RPC__HEALTH_REQUEST__INIT;
		struct sb_rpc_result res;
		struct sb_rpc_meta meta = { .timeout_ms = 1000 };
		if (sb_rpc_call(p->cli, method, &req.base, &sb__rpc__health_response__descriptor,
		                &meta, &res) == 0) {
			int code = res.code;
			sb_rpc_result_free(&res);
			if (code == SB__RPC__CODE__OK)
				return 0;
		}
		if (!it_running(p)) {
			fprintf(stderr, "sb-%s exited at start (status %d)\n", p->name, p->status);
			it_tail_log(p, 30);
			return -1;
		}
		if (it_now_ms() > end) {
			fprintf(stderr, "sb-%s did not answer %s within %d ms\n", p->name, method,
			        ms);
			it_tail_log(p, 30);
			return -1;
		}
		it_sleep_ms(100);
	}
}

/* ---- ops port ---- */

int
it_http_get(int port, const char *path, char *buf, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		                 .sin_port = htons((uint16_t)port) };
	char req[512];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (n == 0)
		return -1;
	buf[0] = '\0';
	if (fd < 0)
		return -1;
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	int len = snprintf(req, sizeof(req),
	                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		close(fd);
		return -1;
	}
	for (ssize_t r; got < n - 1 && (r = recv(fd, buf + got, n - 1 - got, 0)) > 0;)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	int status;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

/* it_sample_value returns the value of the sample line l (name, optional {labels}, a space,
 * the value), or 0 when it has none. */
static double
it_sample_value(const char *l)
{
	const char *sp = strchr(l, ' '), *br = strchr(l, '{');
	if (br != NULL && (sp == NULL || br < sp)) {
		const char *end = strchr(br, '}');
		if (end == NULL)
			return 0;
		sp = strchr(end, ' ');
	}
	return sp != NULL ? strtod(sp + 1, NULL) : 0;
}

double
it_metric_port(int port, const char *series)
{
	static char buf[1 << 20];
	if (it_http_get(port, "/metrics", buf, sizeof(buf)) != 200)
		return -1;
	double sum = 0;
	size_t sl = strlen(series);
	bool labels = strchr(series, '{') != NULL;
	for (const char *l = buf; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, series, sl) != 0)
			continue;
		/* a bare name matches itself, not a longer name that starts with it */
		if (!labels && l[sl] != ' ' && l[sl] != '{')
			continue;
		sum += it_sample_value(l);
	}
	return sum;
}

double
it_metric(const struct it_proc *p, const char *series)
{
	return it_metric_port(p->ops_port, series);
}

bool
it_wait_metric(const struct it_proc *p, const char *series, double min, int ms)
{
	for (int64_t end = it_now_ms() + ms; it_now_ms() < end; it_sleep_ms(100))
		if (it_metric(p, series) >= min)
			return true;
	return false;
}

/* ---- PostgreSQL ---- */

PGconn *
it_pg(void)
{
	PGconn *c = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s\n", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

PGresult *
it_sql(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "SQL failed: %s\n%s\n", PQerrorMessage(c), sql);
		exit(1);
	}
	return r;
}

void
it_exec(PGconn *c, const char *sql)
{
	PQclear(it_sql(c, sql));
}

long long
it_scalar(PGconn *c, const char *sql)
{
	PGresult *r = it_sql(c, sql);
	long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return v;
}
