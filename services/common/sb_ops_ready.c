/* sb_ops_ready.c: GET /ready: readiness checks run in parallel off the event loop, each on its
 * own thread, with a time limit.
 *
 * One /ready is a run: a coordinator thread starts one thread per check, waits for them or
 * for the time limit, answers, and leaves. A check that overruns keeps its thread until it
 * returns; the run's results are shared through a reference count, so that whichever of the
 * coordinator and the check threads finishes last frees them. */
#include "sb_ops.h"
#include "sb_buf.h"
#include "sb_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sb_ops_result {
	char name[64];
	char detail[256];
	bool ok, done;
};

struct sb_ops_run {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;
	size_t n, pending;
	struct sb_ops_result res[SB_OPS_MAX_CHECKS];
};

struct sb_ops_task {
	struct sb_ops *ops;
	struct sb_ops_run *run;
	struct sb__ops_check *check;
	struct sb_http_req *req; /* coordinator only */
	size_t idx;
};

static void
sb_ops_run_unref(struct sb_ops_run *run)
{
	pthread_mutex_lock(&run->lock);
	bool last = --run->refs == 0;
	pthread_mutex_unlock(&run->lock);
	if (!last)
		return;
	pthread_cond_destroy(&run->cond);
	pthread_mutex_destroy(&run->lock);
	free(run);
}

static struct sb_ops_run *
sb_ops_run_new(void)
{
	struct sb_ops_run *run = calloc(1, sizeof(*run));
	if (run == NULL)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&run->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0 || pthread_mutex_init(&run->lock, NULL) != 0) {
		if (rc == 0)
			pthread_cond_destroy(&run->cond);
		free(run);
		return NULL;
	}
	run->refs = 1;
	return run;
}

static void *
sb_ops_check_thread(void *arg)
{
	struct sb_ops_task *t = arg;
	char detail[256] = "";
	int rc = t->check->fn(t->check->arg, detail, sizeof(detail));
	detail[sizeof(detail) - 1] = '\0';
	struct sb_ops_run *run = t->run;
	pthread_mutex_lock(&run->lock);
	struct sb_ops_result *r = &run->res[t->idx];
	r->ok = rc == 0;
	memcpy(r->detail, detail, sizeof(detail));
	r->done = true;
	run->pending--;
	pthread_cond_signal(&run->cond);
	pthread_mutex_unlock(&run->lock);
	atomic_store(&t->check->running, false);
	sb_ops_run_unref(run);
	sb__ops_unref(t->ops);
	free(t);
	return NULL;
}

/* sb_ops_start_check starts check i of run on a thread; false (and a failed result) if not. */
static bool
sb_ops_start_check(struct sb_ops *ops, struct sb_ops_run *run, struct sb__ops_check *c, size_t i)
{
	struct sb_ops_result *r = &run->res[i];
	if (atomic_exchange(&c->running, true)) {
		snprintf(r->detail, sizeof(r->detail), "previous check still running");
		r->done = true;
		return false;
	}
	struct sb_ops_task *t = calloc(1, sizeof(*t));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	if (t != NULL) {
		*t = (struct sb_ops_task){ .ops = ops, .run = run, .check = c, .idx = i };
		run->refs++;
		run->pending++;
		atomic_fetch_add(&ops->refs, 1);
		if (pthread_create(&th, &attr, sb_ops_check_thread, t) == 0) {
			pthread_attr_destroy(&attr);
			return true;
		}
		run->refs--;
		run->pending--;
		atomic_fetch_sub(&ops->refs, 1);
		free(t);
	}
	pthread_attr_destroy(&attr);
	atomic_store(&c->running, false);
	snprintf(r->detail, sizeof(r->detail), "could not start the check");
	r->done = true;
	return false;
}

/* sb_ops_ready_answer writes the /ready document from the results and answers req. */
static void
sb_ops_ready_answer(struct sb_http_req *req, bool draining, const struct sb_ops_result *res,
                    size_t n)
{
	bool ready = !draining;
	for (size_t i = 0; i < n; i++)
		ready &= res[i].ok;
	struct sb_buf b = SB_BUF_INIT;
	int rc = sb_buf_printf(&b, "{\"ready\":%s,\"draining\":%s,\"checks\":[",
	                       ready ? "true" : "false", draining ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		rc |= sb_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		rc |= sb_buf_json_str(&b, res[i].name);
		rc |= sb_buf_printf(&b, ",\"ok\":%s,\"detail\":", res[i].ok ? "true" : "false");
		rc |= sb_buf_json_str(&b, res[i].detail);
		rc |= sb_buf_puts(&b, "}");
	}
	rc |= sb_buf_puts(&b, "]}");
	static const struct sb_http_header no_store[] = { { "Cache-Control", "no-store" } };
	if (rc != 0)
		sb_http_respond_problem(req, 500, NULL, "out of memory");
	else
		sb_http_respond(req, ready ? 200 : 503, "application/json", no_store, 1, b.data,
		                b.len);
	sb_buf_free(&b);
}

static void *
sb_ops_ready_thread(void *arg)
{
	struct sb_ops_task *t = arg;
	struct sb_ops *ops = t->ops;
	struct sb_ops_run *run = t->run;
	int limit = atomic_load(&ops->check_timeout_ms);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += limit / 1000;
	dl.tv_nsec += (long)(limit % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ops->lock);
	pthread_mutex_lock(&run->lock);
	run->n = ops->nchecks;
	for (size_t i = 0; i < run->n; i++) {
		memcpy(run->res[i].name, ops->checks[i].name, sizeof(run->res[i].name));
		sb_ops_start_check(ops, run, &ops->checks[i], i);
	}
	pthread_mutex_unlock(&ops->lock);
	while (run->pending > 0) {
		if (pthread_cond_timedwait(&run->cond, &run->lock, &dl) != 0 && run->pending > 0)
			break; /* time is up */
	}
	struct sb_ops_result res[SB_OPS_MAX_CHECKS];
	size_t n = run->n;
	memcpy(res, run->res, sizeof(res));
	pthread_mutex_unlock(&run->lock);
	for (size_t i = 0; i < n; i++) {
		if (!res[i].done)
			snprintf(res[i].detail, sizeof(res[i].detail), "timed out after %d ms",
			         limit);
	}
	sb_ops_ready_answer(t->req, atomic_load(&ops->draining), res, n);
	sb_ops_run_unref(run);
	sb__ops_unref(ops);
	free(t);
	return NULL;
}

void
sb__ops_ready(struct sb_ops *ops, struct sb_http_req *req)
{
	bool draining = atomic_load(&ops->draining);
	pthread_mutex_lock(&ops->lock);
	size_t n = ops->nchecks;
	pthread_mutex_unlock(&ops->lock);
	if (draining || n == 0) {
		sb_ops_ready_answer(req, draining, NULL, 0);
		return;
	}
	/* The checks may block: never on the loop thread. */
	struct sb_ops_task *t = calloc(1, sizeof(*t));
	struct sb_ops_run *run = t ? sb_ops_run_new() : NULL;
	if (run == NULL) {
		free(t);
		sb_http_respond_problem(req, 503, NULL, "out of memory");
		return;
	}
	*t = (struct sb_ops_task){ .ops = ops, .run = run, .req = req };
	atomic_fetch_add(&ops->refs, 1);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	int rc = pthread_create(&th, &attr, sb_ops_ready_thread, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		atomic_fetch_sub(&ops->refs, 1);
		sb_ops_run_unref(run);
		free(t);
		sb_http_respond_problem(req, 503, NULL, "could not start the checks");
	}
}
