/* service.c: the gateway's start and stop. Each part of the gateway is one row of gw_parts:
 * gw_open starts the rows top to bottom, gw_close stops them bottom to top, and a start that
 * fails stops again exactly the rows before it. So start-up and shutdown mirror each other by
 * construction: the HTTP edge starts last (nothing arrives before the workers and their checks
 * are ready) and stops first; the workers stop before the state they use is freed. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* How long gw_close waits, beyond the RPC deadline, for answers still in flight. */
#define GW_DRAIN_EXTRA_MS 2000

static int
gw_metrics_init(struct gw *gw)
{
	gw->m_requests =
	    sb_metrics_counter("gateway_http_requests_total",
	                       "HTTP requests answered by the gateway.", "route,method,status");
	gw->m_duration =
	    sb_metrics_histogram("gateway_http_request_duration_seconds",
	                         "Time from request received to answer.", "route,method", NULL, 0);
	gw->m_authfail = sb_metrics_counter("gateway_auth_failures_total",
	                                    "Access tokens refused, by reason.", "reason");
	gw->m_limited = sb_metrics_counter("gateway_rate_limited_total",
	                                   "Requests refused by the rate limit.", "route");
	gw->m_redisdown = sb_metrics_counter(
	    "gateway_redis_unavailable_total",
	    "Requests checked while Redis was unavailable, by failure mode applied.", "mode");
	return (gw->m_requests && gw->m_duration && gw->m_authfail && gw->m_limited &&
	        gw->m_redisdown)
	           ? 0
	           : SB_EINVAL;
}

struct gw_part {
	const char *name;
	int (*start)(struct gw *gw);
	void (*stop)(struct gw *gw); /* NULL: nothing to undo */
};

static const struct gw_part gw_parts[] = {
	{ "metrics", gw_metrics_init, NULL },
	{ "authn", gw_authn_init, gw_authn_fini },                 /* verifier, token cache */
	{ "revocation", gw_revocation_start, gw_revocation_stop }, /* watcher thread */
	{ "ratelimit", gw_ratelimit_init, gw_ratelimit_fini },     /* rules, script */
	{ "pipeline", gw_pipeline_start, gw_pipeline_stop },       /* workers: use the above */
	{ "edge", gw_edge_start, gw_edge_stop },                   /* HTTP: feeds the workers */
};
#define GW_NPARTS (sizeof(gw_parts) / sizeof(gw_parts[0]))

/* gw_parts_stop stops the first n parts, last first. */
static void
gw_parts_stop(struct gw *gw, size_t n)
{
	while (n-- > 0)
		if (gw_parts[n].stop != NULL)
			gw_parts[n].stop(gw);
}

int
gw_open(struct gw *gw)
{
	for (size_t i = 0; i < GW_NPARTS; i++) {
		int rv = gw_parts[i].start(gw);
		if (rv != 0) {
			sb_log_kv(SB_LOG_ERROR, "cannot start a part of the gateway", "part",
			          gw_parts[i].name, "error", sb_strerror(rv), NULL);
			gw_parts_stop(gw, i);
			return rv;
		}
	}
	return 0;
}

int
gw_close(struct gw *gw)
{
	gw_parts_stop(gw, GW_NPARTS);
	/* Answers of requests whose RPC is still out come from nng threads, at the latest when
	 * the call's deadline passes: wait for them, since they use gw. */
	int64_t until = sb_time_mono_ms() + gw->cfg->rpc_timeout_ms + GW_DRAIN_EXTRA_MS;
	while (gw->inflight > 0 && sb_time_mono_ms() < until)
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	if (gw->inflight == 0)
		return 0;
	char n[24];
	snprintf(n, sizeof(n), "%zu", (size_t)gw->inflight);
	sb_log_kv(SB_LOG_ERROR, "requests still unanswered after their deadline; state kept",
	          "requests", n, NULL);
	return SB_EBUSY;
}

int
gw_start(struct sb_service *svc)
{
	const struct gateway_cfg *cfg = sb_service_config(svc);
	struct gw *gw = calloc(1, sizeof(*gw));
	if (gw == NULL)
		return SB_ENOMEM;
	gw->svc = svc;
	gw->cfg = cfg;
	/* Sends to the messages service travel in batches: one nng message and one reply for
	 * the sends of a burst (docs/decisions.md). */
	static const char *const batched[] = { "messages.Send", NULL };
	struct sb_rpc_client *messages = gw_upstream(gw, "messages");
	if (messages != NULL)
		sb_rpc_client_batch(messages, batched, (int)cfg->rpc_batch_in_flight);
	int rv = gw_open(gw);
	if (rv != 0) {
		free(gw);
		return rv;
	}
	sb_service_set_state(svc, gw);
	return 0;
}

void
gw_stop(struct sb_service *svc)
{
	struct gw *gw = sb_service_state(svc);
	if (gw == NULL)
		return;
	sb_service_set_state(svc, NULL);
	if (gw_close(gw) == 0)
		free(gw);
}
