/* rpc_bench.c: RPC round trips per second and latency through the runtime (sb_rpc server with
 * an echo handler and sb_rpc client) against a bare nng REQ/REP loop with contexts, same
 * 200-byte payload, same concurrency, same transport, same number of server contexts (the
 * runtime receives on SB_RPC_SLOTS_PER_WORKER contexts per worker; bare nng gets as many).
 * The runtime is measured twice: "worker" runs the echo handler on a worker thread (the
 * default, what any handler that may block gets), "inline" flags its row SB_RPC_INLINE so it
 * runs on the nng thread that received the request (for handlers that never block).
 *
 * Usage: rpc_bench [seconds per cell (1)] [url (tcp://127.0.0.1:0)] [rounds (5)]
 *                  [server workers (4); each has SB_RPC_SLOTS_PER_WORKER contexts]
 * Bare nng and the runtime alternate, cell by cell, for the given number of rounds, so that
 * noise from other processes hits both alike; the median round of each cell is printed.
 * Exits 1 if a cell cannot run or completes no round trip. */
#include "sb_rpc.h"
#include "sb_log.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/tcp/tcp.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PAYLOAD  200     /* bytes of the packed request message */
#define BENCH_MAX_LAT  8000000 /* latency samples kept */
#define BENCH_MAX_CONC 64

struct bench_run {
	atomic_bool stop;
	atomic_long done;
	atomic_long errors;
	atomic_long n_lat;
	uint32_t *lat_us; /* BENCH_MAX_LAT samples */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int active; /* callers still running */
};

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_record(struct bench_run *r, double t0, bool ok)
{
	long i;

	if (!ok) {
		atomic_fetch_add(&r->errors, 1);
		return;
	}
	atomic_fetch_add(&r->done, 1);
	i = atomic_fetch_add(&r->n_lat, 1);
	if (i < BENCH_MAX_LAT)
		r->lat_us[i] = (uint32_t)((bench_now() - t0) * 1e6);
}

static void
bench_caller_exit(struct bench_run *r)
{
	pthread_mutex_lock(&r->mu);
	if (--r->active == 0)
		pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* --- bare nng ------------------------------------------------------------------------- */

/* Context operations may not race nng_close in nng 1.5 (freed memory): they run under the
 * read side of this lock and close under the write side. */
struct bare_gate {
	pthread_rwlock_t lock;
	atomic_bool closed;
};

static bool
bare_enter(struct bare_gate *g)
{
	if (pthread_rwlock_tryrdlock(&g->lock) != 0)
		return false;
	if (atomic_load(&g->closed)) {
		pthread_rwlock_unlock(&g->lock);
		return false;
	}
	return true;
}

static void
bare_op(struct bare_gate *g, nng_ctx ctx, nng_aio *aio, bool send)
{
	if (!bare_enter(g)) {
		if (send)
			nng_msg_free(nng_aio_get_msg(aio));
		return;
	}
	if (send)
		nng_ctx_send(ctx, aio);
	else
		nng_ctx_recv(ctx, aio);
	pthread_rwlock_unlock(&g->lock);
}

static void
bare_close(struct bare_gate *g, nng_socket s)
{
	atomic_store(&g->closed, true);
	pthread_rwlock_wrlock(&g->lock);
	nng_close(s);
	pthread_rwlock_unlock(&g->lock);
}

struct bare_srv_ctx {
	struct bare_gate *g;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
};

static void
bare_srv_cb(void *arg)
{
	struct bare_srv_ctx *c = arg;

	if (nng_aio_result(c->aio) != 0) {
		if (c->sending)
			nng_msg_free(nng_aio_get_msg(c->aio));
		if (nng_aio_result(c->aio) == NNG_ECLOSED)
			return;
		c->sending = false;
		bare_op(c->g, c->ctx, c->aio, false);
		return;
	}
	if (c->sending) {
		c->sending = false;
		bare_op(c->g, c->ctx, c->aio, false);
	} else {
		/* Echo: the request message goes back as the reply. */
		c->sending = true;
		bare_op(c->g, c->ctx, c->aio, true);
	}
}

struct bare_cli_ctx {
	struct bench_run *run;
	struct bare_gate *g;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
	double t0;
};

static void
bare_cli_start(struct bare_cli_ctx *c)
{
	nng_msg *m;
	static const char payload[BENCH_PAYLOAD] = { 'x' };

	if (atomic_load(&c->run->stop) || nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, payload, sizeof(payload)) != 0) {
		bench_caller_exit(c->run);
		return;
	}
	c->sending = true;
	c->t0 = bench_now();
	nng_aio_set_msg(c->aio, m);
	bare_op(c->g, c->ctx, c->aio, true);
}

static void
bare_cli_cb(void *arg)
{
	struct bare_cli_ctx *c = arg;
	int rv = nng_aio_result(c->aio);

	if (c->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			bench_record(c->run, c->t0, false);
			bare_cli_start(c);
			return;
		}
		c->sending = false;
		bare_op(c->g, c->ctx, c->aio, false);
		return;
	}
	if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(c->aio);
		bench_record(c->run, c->t0, nng_msg_len(m) == BENCH_PAYLOAD);
		nng_msg_free(m);
	} else {
		bench_record(c->run, c->t0, false);
	}
	bare_cli_start(c);
}

/* --- runtime -------------------------------------------------------------------------- */

static int
bench_echo(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Rpc__Violation *in = req;
	Sb__Rpc__Violation *out = resp;

	out->field = in->field; /* packed before req is freed */
	return SB__RPC__CODE__OK;
}

/* The same method twice: run on a worker thread (the default), or inline (SB_RPC_INLINE). */
static const struct sb_rpc_method bench_methods[] = {
	{ "bench.Echo", &sb__rpc__violation__descriptor, &sb__rpc__violation__descriptor,
	  bench_echo, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};
static const struct sb_rpc_method bench_methods_inline[] = {
	{ "bench.Echo", &sb__rpc__violation__descriptor, &sb__rpc__violation__descriptor,
	  bench_echo, SB_RPC_INLINE },
	{ NULL, NULL, NULL, NULL, 0 },
};

struct rt_caller {
	struct bench_run *run;
	struct sb_rpc_client *cli;
	double t0;
};

static char rt_field[BENCH_PAYLOAD];

static void rt_done(struct sb_rpc_result *res, void *arg);

static void
rt_start(struct rt_caller *c)
{
	Sb__Rpc__Violation req = SB__RPC__VIOLATION__INIT;
	struct sb_rpc_meta meta = { NULL, NULL, NULL, 5000 };

	if (atomic_load(&c->run->stop)) {
		bench_caller_exit(c->run);
		return;
	}
	req.field = rt_field;
	c->t0 = bench_now();
	if (sb_rpc_call_async(c->cli, "bench.Echo", &req.base, &sb__rpc__violation__descriptor,
	                      &meta, rt_done, c) != 0) {
		bench_record(c->run, c->t0, false);
		bench_caller_exit(c->run);
	}
}

static void
rt_done(struct sb_rpc_result *res, void *arg)
{
	struct rt_caller *c = arg;
	bool ok = res->code == SB__RPC__CODE__OK && res->resp != NULL &&
	          strlen(((Sb__Rpc__Violation *)res->resp)->field) == strlen(rt_field);

	bench_record(c->run, c->t0, ok);
	sb_rpc_result_free(res);
	rt_start(c);
}

/* --- driver --------------------------------------------------------------------------- */

struct cell {
	double rps, p50_us, p99_us;
	long errors;
};

static int
bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
bench_finish(struct bench_run *r, double t0, double secs, struct cell *out)
{
	struct timespec until;
	long n;
	double el;

	while (bench_now() - t0 < secs)
		usleep(10000);
	atomic_store(&r->stop, true);
	el = bench_now() - t0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	while (r->active > 0)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
			break;
	pthread_mutex_unlock(&r->mu);
	if (r->active > 0) {
		fprintf(stderr, "rpc_bench: callers did not stop\n");
		return -1;
	}
	n = atomic_load(&r->n_lat);
	if (n > BENCH_MAX_LAT)
		n = BENCH_MAX_LAT;
	if (n == 0) {
		fprintf(stderr, "rpc_bench: no round trip completed\n");
		return -1;
	}
	qsort(r->lat_us, (size_t)n, sizeof(uint32_t), bench_cmp_u32);
	out->rps = (double)atomic_load(&r->done) / el;
	out->p50_us = r->lat_us[n / 2];
	out->p99_us = r->lat_us[(size_t)((double)n * 0.99)];
	out->errors = atomic_load(&r->errors);
	return 0;
}

static void
bench_run_init(struct bench_run *r, uint32_t *lat, int conc)
{
	memset(r, 0, sizeof(*r));
	r->lat_us = lat;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->active = conc;
}

static int
bench_bare(const char *url, int conc, int workers, double secs, uint32_t *lat, struct cell *out)
{
	struct bare_srv_ctx sc[BENCH_MAX_CONC * SB_RPC_SLOTS_PER_WORKER] = { 0 };
	int n_sc = workers * SB_RPC_SLOTS_PER_WORKER;
	struct bare_cli_ctx cc[BENCH_MAX_CONC] = { 0 };
	struct bare_gate gate;
	nng_socket rep, req;
	nng_listener l;
	struct bench_run run;
	char dial[128];
	int port = 0, ret = -1;
	double t0;

	bench_run_init(&run, lat, conc);
	pthread_rwlock_init(&gate.lock, NULL);
	atomic_init(&gate.closed, false);
	if (nng_rep0_open(&rep) != 0)
		return -1;
	if (nng_req0_open(&req) != 0) {
		nng_close(rep);
		return -1;
	}
	nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (nng_listen(rep, url, &l, 0) != 0) {
		fprintf(stderr, "rpc_bench: cannot listen on %s\n", url);
		goto done;
	}
	snprintf(dial, sizeof(dial), "%s", url);
	if (strncmp(url, "tcp://", 6) == 0) {
		nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
		snprintf(dial, sizeof(dial), "tcp://127.0.0.1:%d", port);
	}
	for (int i = 0; i < n_sc; i++) {
		sc[i].g = &gate;
		if (nng_ctx_open(&sc[i].ctx, rep) != 0 ||
		    nng_aio_alloc(&sc[i].aio, bare_srv_cb, &sc[i]) != 0)
			goto done;
		nng_ctx_recv(sc[i].ctx, sc[i].aio);
	}
	if (nng_dial(req, dial, NULL, 0) != 0) {
		fprintf(stderr, "rpc_bench: cannot dial %s\n", dial);
		goto done;
	}
	for (int i = 0; i < conc; i++) {
		cc[i].run = &run;
		cc[i].g = &gate;
		if (nng_ctx_open(&cc[i].ctx, req) != 0 ||
		    nng_aio_alloc(&cc[i].aio, bare_cli_cb, &cc[i]) != 0)
			goto done;
	}
	t0 = bench_now();
	for (int i = 0; i < conc; i++)
		bare_cli_start(&cc[i]);
	ret = bench_finish(&run, t0, secs, out);
done:
	bare_close(&gate, req);
	bare_close(&gate, rep);
	for (int i = 0; i < BENCH_MAX_CONC; i++)
		if (cc[i].aio)
			nng_aio_stop(cc[i].aio);
	for (int i = 0; i < n_sc; i++)
		if (sc[i].aio)
			nng_aio_stop(sc[i].aio);
	for (int i = 0; i < BENCH_MAX_CONC; i++)
		if (cc[i].aio)
			nng_aio_free(cc[i].aio);
	for (int i = 0; i < n_sc; i++)
		if (sc[i].aio)
			nng_aio_free(sc[i].aio);
	pthread_rwlock_destroy(&gate.lock);
	return ret;
}

static int
bench_runtime(const char *url, int conc, int workers, bool inl, double secs, uint32_t *lat,
              struct cell *out)
{
	struct sb_rpc_server_opts o = { 0 };
	struct sb_rpc_server *srv = NULL;
	struct sb_rpc_client *cli = NULL;
	struct rt_caller callers[BENCH_MAX_CONC];
	struct bench_run run;
	char dial[128];
	int ret = -1;
	double t0;

	bench_run_init(&run, lat, conc);
	o.url = url;
	o.workers = workers;
	o.methods = inl ? bench_methods_inline : bench_methods;
	if (sb_rpc_server_start(&o, &srv) != 0) {
		fprintf(stderr, "rpc_bench: cannot start the RPC server on %s\n", url);
		return -1;
	}
	snprintf(dial, sizeof(dial), "%s", url);
	if (sb_rpc_server_port(srv) > 0)
		snprintf(dial, sizeof(dial), "tcp://127.0.0.1:%d", sb_rpc_server_port(srv));
	if (sb_rpc_client_open(dial, &cli) != 0)
		goto done;
	t0 = bench_now();
	for (int i = 0; i < conc; i++) {
		callers[i].run = &run;
		callers[i].cli = cli;
		rt_start(&callers[i]);
	}
	ret = bench_finish(&run, t0, secs, out);
done:
	sb_rpc_client_free(cli);
	sb_rpc_server_free(srv);
	return ret;
}

static int
bench_cmp_cell(const void *a, const void *b)
{
	double x = ((const struct cell *)a)->rps, y = ((const struct cell *)b)->rps;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	const char *url = argc > 2 ? argv[2] : "tcp://127.0.0.1:0";
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	int max_workers = argc > 4 ? atoi(argv[4]) : 4;
	static const int concs[] = { 1, 64 };
	uint32_t *lat = malloc(sizeof(uint32_t) * BENCH_MAX_LAT);
	struct cell bare[2][16], rt[2][16], rti[2][16];
	int workers;

	if (lat == NULL || secs <= 0 || rounds < 1 || rounds > 16 || max_workers < 1 ||
	    max_workers > BENCH_MAX_CONC) {
		fprintf(stderr, "usage: rpc_bench [seconds>0] [url] [rounds 1..16] [workers]\n");
		free(lat);
		return 1;
	}
	sb_log_init("rpc_bench", SB_LOG_WARN);
	/* Packed Violation{field}: 1 tag byte + 2 length bytes + 197 bytes = 200. */
	memset(rt_field, 'x', BENCH_PAYLOAD - 3);
	rt_field[BENCH_PAYLOAD - 3] = '\0';

	printf("payload %d bytes, %s, %d rounds of %.1f s per cell (bare, runtime with a worker "
	       "handler and runtime with an inline handler alternate), %ld CPUs; median round "
	       "shown\n",
	       BENCH_PAYLOAD, url, rounds, secs, sysconf(_SC_NPROCESSORS_ONLN));
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 2; i++) {
			workers = concs[i] < max_workers ? concs[i] : max_workers;
			if (bench_bare(url, concs[i], workers, secs, lat, &bare[i][r]) != 0 ||
			    bench_runtime(url, concs[i], workers, false, secs, lat, &rt[i][r]) !=
			        0 ||
			    bench_runtime(url, concs[i], workers, true, secs, lat, &rti[i][r]) !=
			        0) {
				free(lat);
				return 1;
			}
		}
	}
	printf("%-16s %5s %8s %12s %9s %9s %7s\n", "peer", "conc", "workers", "rps", "p50_us",
	       "p99_us", "errors");
	for (int i = 0; i < 2; i++) {
		const struct {
			const char *name;
			struct cell *c;
		} rows[] = { { "bare", bare[i] },
			     { "runtime-worker", rt[i] },
			     { "runtime-inline", rti[i] } };

		workers = concs[i] < max_workers ? concs[i] : max_workers;
		for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
			struct cell *c = &rows[k].c[rounds / 2];

			qsort(rows[k].c, (size_t)rounds, sizeof(struct cell), bench_cmp_cell);
			printf("%-16s %5d %8d %12.0f %9.0f %9.0f %7ld\n", rows[k].name, concs[i],
			       workers, c->rps, c->p50_us, c->p99_us, c->errors);
		}
	}
	for (int i = 0; i < 2; i++)
		printf(
		    "ratio runtime/bare at conc %d: worker handler %.0f%%, inline handler %.0f%% "
		    "of throughput (target >= 80%%)\n",
		    concs[i], 100.0 * rt[i][rounds / 2].rps / bare[i][rounds / 2].rps,
		    100.0 * rti[i][rounds / 2].rps / bare[i][rounds / 2].rps);
	free(lat);
	return 0;
}
