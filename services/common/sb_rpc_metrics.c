/* sb_rpc_metrics.c: the RPC families of the metrics registry, with series cached per method so
 * that a request costs a few atomic operations. */
#include "sb_rpc.h"
#include "sb_metrics.h"

#include <pthread.h>
#include <stdatomic.h>

static struct {
	pthread_once_t once;
	struct sb_metric *srv_requests, *srv_duration, *cli_requests, *cli_duration;
	struct sb_series *in_flight, *batch_calls;
} sb_rpc_m = { PTHREAD_ONCE_INIT, NULL, NULL, NULL, NULL, NULL, NULL };

static const double sb_rpc_batch_buckets[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };

static void
sb_rpc_metrics_register(void)
{
	struct sb_metric *g;

	sb_rpc_m.srv_requests =
	    sb_metrics_counter("rpc_server_requests_total",
	                       "RPC requests answered, by method and code.", "method,code");
	sb_rpc_m.srv_duration =
	    sb_metrics_histogram("rpc_server_duration_seconds",
	                         "Time to serve an RPC request, by method.", "method", NULL, 0);
	sb_rpc_m.cli_requests =
	    sb_metrics_counter("rpc_client_requests_total",
	                       "RPC calls made, by method and outcome code.", "method,code");
	sb_rpc_m.cli_duration =
	    sb_metrics_histogram("rpc_client_duration_seconds",
	                         "Time from sending an RPC to its outcome.", "method", NULL, 0);
	g = sb_metrics_gauge("rpc_server_in_flight", "RPC requests being served now.", NULL);
	sb_rpc_m.in_flight = sb_metric_with(g);
	g = sb_metrics_histogram("rpc_server_batch_calls", "Calls per batch received (rpc.Batch).",
	                         NULL, sb_rpc_batch_buckets,
	                         sizeof(sb_rpc_batch_buckets) / sizeof(sb_rpc_batch_buckets[0]));
	sb_rpc_m.batch_calls = sb_metric_with(g);
}

static struct sb_series *
sb_rpc_metrics_cached(_Atomic(struct sb_series *) *slot, struct sb_metric *m, const char *method,
                      const char *code)
{
	struct sb_series *s = atomic_load_explicit(slot, memory_order_acquire);

	if (s == NULL) {
		/* Racing threads get the same series from the registry. */
		s = code ? sb_metric_with(m, method, code) : sb_metric_with(m, method);
		atomic_store_explicit(slot, s, memory_order_release);
	}
	return s;
}

void
sb__rpc_metrics_server(const char *method, struct sb_rpc_mstats *ms, int code, double secs)
{
	if (code < 0 || code >= SB_RPC_N_CODES)
		code = SB__RPC__CODE__UNKNOWN;
	pthread_once(&sb_rpc_m.once, sb_rpc_metrics_register);
	sb_series_inc(sb_rpc_metrics_cached(&ms->codes[code], sb_rpc_m.srv_requests, method,
	                                    sb_rpc_code_name(code)));
	sb_series_observe(sb_rpc_metrics_cached(&ms->duration, sb_rpc_m.srv_duration, method, NULL),
	                  secs);
}

void
sb__rpc_metrics_client(const char *method, struct sb_rpc_mstats *ms, int code, double secs)
{
	if (code < 0 || code >= SB_RPC_N_CODES)
		code = SB__RPC__CODE__UNKNOWN;
	pthread_once(&sb_rpc_m.once, sb_rpc_metrics_register);
	sb_series_inc(sb_rpc_metrics_cached(&ms->codes[code], sb_rpc_m.cli_requests, method,
	                                    sb_rpc_code_name(code)));
	sb_series_observe(sb_rpc_metrics_cached(&ms->duration, sb_rpc_m.cli_duration, method, NULL),
	                  secs);
}

void
sb__rpc_metrics_in_flight(int delta)
{
	pthread_once(&sb_rpc_m.once, sb_rpc_metrics_register);
	sb_series_add(sb_rpc_m.in_flight, delta);
}

void
sb__rpc_metrics_batch(size_t calls)
{
	pthread_once(&sb_rpc_m.once, sb_rpc_metrics_register);
	sb_series_observe(sb_rpc_m.batch_calls, (double)calls);
}
