/* mesh_rpc.c: mesh-rpc, an RPC peer for the sidecar's tests and benchmark, built on the
 * services' own runtime (sb_rpc), so that what crosses the sidecars is exactly what services
 * send.
 *
 *   mesh-rpc serve URL             serve until SIGTERM: every method of the table below echoes
 *                                  its rpc.RawJson request (inline handler; messages.Slow after
 *                                  500 ms on a worker), printing the bound port on stdout
 *   mesh-rpc call URL METHOD [N] [TIMEOUT_MS]
 *                                  N (1) sequential calls with the text "ping"; prints
 *                                  "<ok> <code name of the last failure or OK>" and exits 0 when
 *                                  every call answered OK with the echo, 1 otherwise
 *   mesh-rpc load URL METHOD RATE SECONDS [CONC]
 *                                  open-loop load: RATE calls/s for SECONDS (at most CONC (256)
 *                                  outstanding), 200-byte payload; prints one line
 *                                  "sent=N ok=N errors=N late=N rps=R p50_ms=X p99_ms=Y"
 *                                  (late: calls not started on time because CONC were out);
 *                                  with MESH_RPC_BATCH=N in the environment the calls travel
 *                                  in rpc.Batch envelopes, N batches in flight */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_log.h"
#include "sb_rpc.h"
#include "sb_util_shutdown.h"

static int
echo(struct sb_rpc_call *call, const void *req, void *resp)
{
	(void)call;
	const Sb__Rpc__RawJson *in = req;
	Sb__Rpc__RawJson *out = resp;
	out->json = in->json;
	return SB__RPC__CODE__OK;
}

/* slow answers like echo after half a second, on a worker thread (a call in flight). */
static int
slow(struct sb_rpc_call *call, const void *req, void *resp)
{
	usleep(500000);
	return echo(call, req, resp);
}

#define ECHO_ROW(NAME)                                                                             \
	{                                                                                          \
		.name = NAME, .req = &sb__rpc__raw_json__descriptor,                               \
		.resp = &sb__rpc__raw_json__descriptor, .fn = echo, .flags = SB_RPC_INLINE         \
	}
static const struct sb_rpc_method methods[] = {
	ECHO_ROW("messages.Send"),
	ECHO_ROW("messages.History"),
	ECHO_ROW("messages.Health"),
	ECHO_ROW("auth.Token"),
	ECHO_ROW("auth.AdminRevokeAll"),
	ECHO_ROW("bench.Echo"),
	{ .name = "messages.Slow",
	  .req = &sb__rpc__raw_json__descriptor,
	  .resp = &sb__rpc__raw_json__descriptor,
	  .fn = slow,
	  .flags = 0 },
	SB_RPC_END,
};

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
serve(const char *url)
{
	if (sb_shutdown_install() != 0)
		return 1;
	struct sb_rpc_server_opts o = { .url = url, .workers = 2, .methods = methods };
	struct sb_rpc_server *srv;
	if (sb_rpc_server_start(&o, &srv) != 0) {
		fprintf(stderr, "mesh-rpc: cannot listen on %s\n", url);
		return 1;
	}
	printf("%d\n", sb_rpc_server_port(srv));
	fflush(stdout);
	sb_shutdown_wait();
	sb_rpc_server_free(srv);
	return 0;
}

static int
call(const char *url, const char *method, int n, int timeout_ms)
{
	struct sb_rpc_client *cli;
	if (sb_rpc_client_open(url, &cli) != 0)
		return 2;
	int ok = 0, last = SB__RPC__CODE__OK;
	for (int i = 0; i < n; i++) {
		Sb__Rpc__RawJson req = SB__RPC__RAW_JSON__INIT;
		req.json = "ping";
		struct sb_rpc_meta meta = { .timeout_ms = timeout_ms };
		struct sb_rpc_result res;
		if (sb_rpc_call(cli, method, &req.base, &sb__rpc__raw_json__descriptor, &meta,
		                &res) != 0) {
			last = SB__RPC__CODE__INTERNAL;
			continue;
		}
		if (res.code == SB__RPC__CODE__OK &&
		    strcmp(((Sb__Rpc__RawJson *)res.resp)->json, "ping") == 0)
			ok++;
		else
			last = res.code;
		if (res.code != SB__RPC__CODE__OK && res.message[0])
			fprintf(stderr, "mesh-rpc: %s: %s\n", sb_rpc_code_name(res.code),
			        res.message);
		sb_rpc_result_free(&res);
	}
	printf("%d %s\n", ok, sb_rpc_code_name(last));
	sb_rpc_client_free(cli);
	return ok == n ? 0 : 1;
}

/* The open-loop load generator. */
struct load {
	atomic_long ok, errors, out;
	pthread_mutex_t mu;
	float *lat_ms;
	size_t nlat, caplat;
};

struct load_call {
	struct load *l;
	double t0;
};

static void
load_done(struct sb_rpc_result *res, void *arg)
{
	struct load_call *lc = arg;
	struct load *l = lc->l;
	double ms = (now_s() - lc->t0) * 1000.0;
	if (res->code == SB__RPC__CODE__OK) {
		atomic_fetch_add(&l->ok, 1);
		pthread_mutex_lock(&l->mu);
		if (l->nlat < l->caplat)
			l->lat_ms[l->nlat++] = (float)ms;
		pthread_mutex_unlock(&l->mu);
	} else {
		atomic_fetch_add(&l->errors, 1);
	}
	atomic_fetch_sub(&l->out, 1);
	sb_rpc_result_free(res);
	free(lc);
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static int
load(const char *url, const char *method, double rate, double secs, long conc)
{
	struct sb_rpc_client *cli;
	if (sb_rpc_client_open(url, &cli) != 0)
		return 2;
	/* MESH_RPC_BATCH=N: calls travel in rpc.Batch envelopes, N batches in flight. */
	static const char *batched[2];
	const char *b = getenv("MESH_RPC_BATCH");
	if (b && atoi(b) > 0) {
		batched[0] = method;
		if (sb_rpc_client_batch(cli, batched, atoi(b)) != 0)
			return 2;
	}
	struct load l = { .caplat = (size_t)(rate * secs) + 16 };
	pthread_mutex_init(&l.mu, NULL);
	l.lat_ms = calloc(l.caplat, sizeof *l.lat_ms);
	char payload[201];
	memset(payload, 'x', 200);
	payload[200] = '\0';
	/* Warm up: the connection through every hop exists before the clock starts. */
	for (int i = 0; i < 50; i++) {
		Sb__Rpc__RawJson req = SB__RPC__RAW_JSON__INIT;
		req.json = payload;
		struct sb_rpc_meta meta = { .timeout_ms = 5000 };
		struct sb_rpc_result res;
		if (sb_rpc_call(cli, method, &req.base, &sb__rpc__raw_json__descriptor, &meta,
		                &res) == 0)
			sb_rpc_result_free(&res);
	}
	long sent = 0, late = 0;
	double start = now_s(), end = start + secs;
	for (;;) {
		double t = now_s();
		if (t >= end)
			break;
		long due = (long)((t - start) * rate);
		while (sent < due) {
			if (atomic_load(&l.out) >= conc) {
				late++;
				break;
			}
			struct load_call *lc = malloc(sizeof *lc);
			lc->l = &l;
			lc->t0 = now_s();
			Sb__Rpc__RawJson req = SB__RPC__RAW_JSON__INIT;
			req.json = payload;
			struct sb_rpc_meta meta = { .timeout_ms = 5000 };
			atomic_fetch_add(&l.out, 1);
			if (sb_rpc_call_async(cli, method, &req.base,
			                      &sb__rpc__raw_json__descriptor, &meta, load_done,
			                      lc) != 0) {
				atomic_fetch_sub(&l.out, 1);
				atomic_fetch_add(&l.errors, 1);
				free(lc);
			}
			sent++;
		}
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
	}
	double elapsed = now_s() - start;
	for (int i = 0; i < 600 && atomic_load(&l.out) > 0; i++)
		usleep(10000);
	double done_s = now_s() - start;
	pthread_mutex_lock(&l.mu);
	qsort(l.lat_ms, l.nlat, sizeof *l.lat_ms, cmp_float);
	double p50 = l.nlat ? l.lat_ms[l.nlat / 2] : -1;
	double p99 = l.nlat ? l.lat_ms[(size_t)((double)l.nlat * 0.99)] : -1;
	pthread_mutex_unlock(&l.mu);
	printf("sent=%ld ok=%ld errors=%ld late=%ld rps=%.0f p50_ms=%.3f p99_ms=%.3f\n", sent,
	       atomic_load(&l.ok), atomic_load(&l.errors), late,
	       (double)atomic_load(&l.ok) / (done_s > elapsed ? done_s : elapsed), p50, p99);
	sb_rpc_client_free(cli);
	free(l.lat_ms);
	return 0;
}

int
main(int argc, char **argv)
{
	sb_log_init("mesh-rpc", SB_LOG_WARN);
	if (argc >= 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "call") == 0)
		return call(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 1,
		            argc > 5 ? atoi(argv[5]) : 3000);
	if (argc >= 6 && strcmp(argv[1], "load") == 0)
		return load(argv[2], argv[3], atof(argv[4]), atof(argv[5]),
		            argc > 6 ? atol(argv[6]) : 256);
	fprintf(stderr, "usage: mesh-rpc serve URL | call URL METHOD [N] [TIMEOUT_MS] |"
	                " load URL METHOD RATE SECONDS [CONC]\n");
	return 2;
}
