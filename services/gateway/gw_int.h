/* gw_int.h: the gateway's process state, shared by its files. */
#ifndef SB_GW_INT_H
#define SB_GW_INT_H

#include <pthread.h>

#include "gateway.h"
#include "sb_metrics.h"

struct gw_authn;
struct gw_ratelimit;
struct gw_revocation;

struct gw {
	struct sb_service *svc;
	const struct gateway_cfg *cfg;
	struct sb_http_server *http;

	/* pipeline.c */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gw_req *head, *tail;
	size_t queued;
	bool stopping;
	pthread_t *threads;
	size_t nthreads;

	struct gw_authn *authn;
	struct gw_ratelimit *rl;
	struct gw_revocation *revo; /* revocation.c; NULL when revocations are not checked */

	struct sb_metric *m_requests;  /* gateway_http_requests_total{route,method,status} */
	struct sb_metric *m_duration;  /* gateway_http_request_duration_seconds{route,method} */
	struct sb_metric *m_authfail;  /* gateway_auth_failures_total{reason} */
	struct sb_metric *m_limited;   /* gateway_rate_limited_total{route} */
	struct sb_metric *m_redisdown; /* gateway_redis_unavailable_total{mode} */
};

#endif
