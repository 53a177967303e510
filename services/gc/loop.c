/* loop.c: the cleanup thread. It checks or takes the lease; the leader runs every enabled
 * task once per interval, a follower tries the lease again every lease retry. */
#include "gc.h"

#include <errno.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_shutdown.h"
#include "sb_util_time.h"

#define GC_TASKS_MAX 8

static const double gc_duration_buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
	                                      1,     5,     10,   30,   60,  300 };

/* The metric series, registered once per process. */
static struct {
	struct sb_series *leader;
	struct sb_series *runs[GC_TASKS_MAX];
	struct sb_series *errors[GC_TASKS_MAX];
	struct sb_series *deleted[GC_TASKS_MAX];
	struct sb_series *duration[GC_TASKS_MAX];
} gc_m;

static void
gc_metrics_register(void)
{
	struct sb_metric *runs =
	    sb_metrics_counter("gc_task_runs_total", "Cleanup task runs by the leader.", "task");
	struct sb_metric *errors = sb_metrics_counter(
	    "gc_task_errors_total", "Cleanup task runs that failed (database error).", "task");
	struct sb_metric *deleted =
	    sb_metrics_counter("gc_deleted_total", "Rows deleted by a cleanup task.", "task");
	struct sb_metric *duration = sb_metrics_histogram(
	    "gc_cleanup_duration_seconds", "Duration of one run of a cleanup task.", "task",
	    gc_duration_buckets, sizeof(gc_duration_buckets) / sizeof(gc_duration_buckets[0]));

	gc_m.leader = sb_metric_with(sb_metrics_gauge(
	    "gc_leader", "1 while this replica holds the cleanup lease, else 0.", NULL));
	for (int i = 0; gc_tasks[i].name != NULL && i < GC_TASKS_MAX; i++) {
		gc_m.runs[i] = sb_metric_with(runs, gc_tasks[i].name);
		gc_m.errors[i] = sb_metric_with(errors, gc_tasks[i].name);
		gc_m.deleted[i] = sb_metric_with(deleted, gc_tasks[i].name);
		gc_m.duration[i] = sb_metric_with(duration, gc_tasks[i].name);
	}
}

/* gc_loop_wait sleeps ms or until stopped. */
static void
gc_loop_wait(struct gc *g, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->mu);
	while (!atomic_load(&g->stop) && pthread_cond_timedwait(&g->cv, &g->mu, &ts) != ETIMEDOUT) {
	}
	pthread_mutex_unlock(&g->mu);
}

/* gc_loop_round runs every enabled task once (the lease was just confirmed). */
/* gc_loop_uploads runs the uploads task (an RPC to files, not a DELETE) with the same metrics
 * as the others, under task="uploads". */
static void
gc_loop_uploads(struct gc *g)
{
	static struct sb_series *runs, *errors, *deleted, *duration;
	if (runs == NULL) {
		runs =
		    sb_metric_with(sb_metrics_counter("gc_task_runs_total",
		                                      "Cleanup task runs by the leader.", "task"),
		                   "uploads");
		errors = sb_metric_with(
		    sb_metrics_counter("gc_task_errors_total",
		                       "Cleanup task runs that failed (database error).", "task"),
		    "uploads");
		deleted =
		    sb_metric_with(sb_metrics_counter("gc_deleted_total",
		                                      "Rows deleted by a cleanup task.", "task"),
		                   "uploads");
		duration = sb_metric_with(
		    sb_metrics_histogram(
		        "gc_cleanup_duration_seconds", "Duration of one run of a cleanup task.",
		        "task", gc_duration_buckets,
		        sizeof(gc_duration_buckets) / sizeof(gc_duration_buckets[0])),
		    "uploads");
	}
	long cleaned = 0;
	int64_t t0 = sb_time_mono_ms();
	int ret = gc_uploads_run(g, &cleaned);
	sb_series_observe(duration, (double)(sb_time_mono_ms() - t0) / 1000.0);
	sb_series_inc(runs);
	sb_series_add(deleted, (double)cleaned);
	if (ret != 0) {
		sb_series_inc(errors);
		sb_log_kv(SB_LOG_WARN, "gc task failed", "task", "uploads", "error",
		          sb_strerror(ret), NULL);
	} else if (cleaned > 0) {
		char n[24];
		snprintf(n, sizeof(n), "%ld", cleaned);
		sb_log_kv(SB_LOG_INFO, "gc task cleaned uploads", "task", "uploads", "uploads", n,
		          NULL);
	}
}

static void
gc_loop_round(struct gc *g)
{
	for (int i = 0; gc_tasks[i].name != NULL && i < GC_TASKS_MAX; i++) {
		const struct gc_task *t = &gc_tasks[i];
		long deleted = 0;
		if (!gc_task_enabled(t, g->cfg) || atomic_load(&g->stop))
			continue;
		int64_t t0 = sb_time_mono_ms();
		int ret = gc_task_run(g->pg, t, g->cfg, &g->stop, &deleted);
		sb_series_observe(gc_m.duration[i], (double)(sb_time_mono_ms() - t0) / 1000.0);
		sb_series_inc(gc_m.runs[i]);
		sb_series_add(gc_m.deleted[i], (double)deleted);
		if (ret != 0) {
			sb_series_inc(gc_m.errors[i]);
			sb_log_kv(SB_LOG_WARN, "gc task failed", "task", t->name, "error",
			          sb_strerror(ret), "detail", sb_pg_errmsg(g->pg), NULL);
		} else if (deleted > 0) {
			char n[24];
			snprintf(n, sizeof(n), "%ld", deleted);
			sb_log_kv(SB_LOG_INFO, "gc task deleted rows", "task", t->name, "rows", n,
			          NULL);
		}
	}
	if (g->cfg->uploads && !atomic_load(&g->stop))
		gc_loop_uploads(g);
}

static void *
gc_loop_main(void *arg)
{
	struct gc *g = arg;

	while (!atomic_load(&g->stop)) {
		int ret = gc_lease_check(g);
		sb_series_set(gc_m.leader, g->leader ? 1 : 0);
		if (g->cfg->once && (ret == 0 || g->leader)) {
			/* One round, or none when another replica holds the lease; then the
			 * process ends as on SIGTERM (exit 0). */
			if (g->leader)
				gc_loop_round(g);
			else
				sb_log_kv(SB_LOG_INFO,
				          "gc: another replica holds the lease; nothing to do",
				          NULL);
			sb_shutdown_request();
			break;
		}
		if (ret != 0 || !g->leader) {
			int64_t wait = g->cfg->lease_retry_ms;
			int64_t ra = sb_pg_retry_after_ms(g->pg);
			gc_loop_wait(g, ra > wait ? ra : wait);
			continue;
		}
		gc_loop_round(g);
		gc_loop_wait(g, g->cfg->interval_ms);
	}
	sb_series_set(gc_m.leader, 0);
	return NULL;
}

int
gc_loop_start(struct gc *g)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_condattr_t ca;

	pthread_once(&once, gc_metrics_register);
	sb_series_set(gc_m.leader, 0);
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&g->thread, NULL, gc_loop_main, g) != 0)
		return SB_ENOMEM;
	g->started = true;
	return 0;
}

void
gc_loop_stop(struct gc *g)
{
	if (!g->started)
		return;
	pthread_mutex_lock(&g->mu);
	atomic_store(&g->stop, true);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	g->started = false;
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}
