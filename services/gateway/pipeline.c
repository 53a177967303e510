/* pipeline.c: the gateway's worker threads. Each request from the HTTP loop is checked here,
 * off the loop thread: access token (CPU: signature verification, or a cache hit) and its
 * revocation (a local lookup), the rate limit of state-changing routes (one Redis round trip per
 * batch), scope; then the route's local handler or the RPC forward, which is asynchronous, so a
 * worker never waits for a service. Each worker owns its Redis connection. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"

struct gw_worker {
	struct gw *gw;
	struct sb_redis *redis;
};

/* gw_pipeline_authorize answers 403 when r's token lacks the route's scope. */
static bool
gw_pipeline_authorize(struct gw_req *r)
{
	const struct gw_route *route = r->route;
	if (route->scope == NULL || !r->authenticated ||
	    sb_jwt_has_scope(&r->principal, route->scope))
		return true;
	char detail[160], www[200];
	snprintf(detail, sizeof(detail), "this route needs scope %s", route->scope);
	snprintf(www, sizeof(www), "Bearer error=\"insufficient_scope\", scope=\"%s\"",
	         route->scope);
	gw_audit(r, "insufficient_scope", route->scope);
	const struct sb_http_header h = { "WWW-Authenticate", www };
	gw_reply_problem_extra(r, 403, detail, NULL, 0, &h, 1);
	return false;
}

/* gw_pipeline_handle takes a batch of requests through the checks: tokens one by one (CPU and
 * the local revocation set), then one pipelined Redis round trip for the state-changing ones
 * (rate limits; none when the batch has only reads), then scope and dispatch. */
static void
gw_pipeline_handle(struct gw_worker *w, struct gw_req **batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct gw_req *r = batch[i];
		bool needs_token = !(r->route->flags & GW_PUBLIC) && w->gw->cfg->auth_enabled;
		if (needs_token && gw_authn_verify(r) != 0)
			batch[i] = NULL; /* answered */
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (batch[i] != NULL)
			batch[m++] = batch[i];
	gw_ratelimit_check_batch(batch, m, w->redis);
	for (size_t i = 0; i < m; i++) {
		struct gw_req *r = batch[i];
		if (r == NULL || !gw_pipeline_authorize(r))
			continue;
		if (r->route->local != NULL)
			r->route->local(r);
		else
			gw_forward(r);
	}
}

static void *
gw_pipeline_main(void *arg)
{
	struct gw_worker *w = arg;
	struct gw *gw = w->gw;
	struct gw_req *batch[GW_BATCH_MAX];
	for (;;) {
		pthread_mutex_lock(&gw->mu);
		while (gw->head == NULL && !gw->stopping)
			pthread_cond_wait(&gw->cv, &gw->mu);
		size_t n = 0;
		/* Take a fair share of what is queued, so that other workers get some too. */
		size_t share = gw->queued / gw->nworkers + 1;
		while (gw->head != NULL && n < GW_BATCH_MAX && n < share) {
			batch[n++] = gw->head;
			gw->head = gw->head->next;
			gw->queued--;
		}
		if (gw->head == NULL)
			gw->tail = NULL;
		pthread_mutex_unlock(&gw->mu);
		if (n == 0) /* stopping and drained */
			break;
		gw_pipeline_handle(w, batch, n);
	}
	if (w->redis != NULL)
		sb_redis_close(w->redis);
	free(w);
	return NULL;
}

void
gw_pipeline_submit(struct gw *gw, struct gw_req *r)
{
	pthread_mutex_lock(&gw->mu);
	if (gw->stopping || gw->queued >= (size_t)gw->cfg->queue_max) {
		pthread_mutex_unlock(&gw->mu);
		gw_reply_problem(r, 503, "the gateway is overloaded; retry shortly", NULL, 1000);
		return;
	}
	r->next = NULL;
	if (gw->tail != NULL)
		gw->tail->next = r;
	else
		gw->head = r;
	gw->tail = r;
	gw->queued++;
	pthread_cond_signal(&gw->cv);
	pthread_mutex_unlock(&gw->mu);
}

int
gw_pipeline_start(struct gw *gw)
{
	int ret = SB_ENOMEM;
	/* Default: one per CPU (at least two, so that one waiting on Redis does not stall the
	 * edge). More threads than CPUs only add wake-ups: on 2 cores, 2 workers sustained
	 * 10,000 sends/s where 4 did not (docs/benchmarks.md). */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = gw->cfg->workers > 0 ? (size_t)gw->cfg->workers
	                                   : (size_t)(cpus > 2 ? (cpus < 64 ? cpus : 64) : 2);
	gw->threads = calloc(want, sizeof(*gw->threads));
	if (gw->threads == NULL)
		return SB_ENOMEM;
	pthread_mutex_init(&gw->mu, NULL);
	pthread_cond_init(&gw->cv, NULL);
	gw->head = gw->tail = NULL;
	gw->queued = 0;
	gw->stopping = false;
	gw->nworkers = want;
	gw->nthreads = 0;
	const char *url = gw->cfg->common.redis_url;
	while (gw->nthreads < want) {
		struct gw_worker *w = calloc(1, sizeof(*w));
		if (w == NULL) {
			ret = SB_ENOMEM;
			goto fail;
		}
		w->gw = gw;
		if (url != NULL && url[0] != '\0' && (ret = sb_redis_open(url, &w->redis)) != 0) {
			free(w);
			goto fail;
		}
		if (pthread_create(&gw->threads[gw->nthreads], NULL, gw_pipeline_main, w) != 0) {
			sb_redis_close(w->redis);
			free(w);
			ret = SB_EIO;
			goto fail;
		}
		gw->nthreads++; /* counted once running: gw_pipeline_stop joins exactly these */
	}
	return 0;
fail:
	/* Stop and join the workers already running: nothing may use gw after a failed start. */
	gw_pipeline_stop(gw);
	return ret;
}

void
gw_pipeline_stop(struct gw *gw)
{
	if (gw->threads == NULL)
		return;
	pthread_mutex_lock(&gw->mu);
	gw->stopping = true;
	pthread_cond_broadcast(&gw->cv);
	pthread_mutex_unlock(&gw->mu);
	for (size_t i = 0; i < gw->nthreads; i++)
		pthread_join(gw->threads[i], NULL);
	free(gw->threads);
	gw->threads = NULL;
	gw->nthreads = 0;
	pthread_cond_destroy(&gw->cv);
	pthread_mutex_destroy(&gw->mu);
}
