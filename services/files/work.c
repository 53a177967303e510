/* work.c: the queue between the HTTP loop and the worker threads. The loop thread only queues
 * (never blocks); each worker owns a PostgreSQL connection and serves one request at a time,
 * answering it itself. */
#include "files.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"

bool
files_work_push(struct files *f, struct sb_http_req *r)
{
	pthread_mutex_lock(&f->mu);
	if (f->stopping || f->qlen == f->qcap) {
		pthread_mutex_unlock(&f->mu);
		return false;
	}
	f->q[(f->qhead + f->qlen) % f->qcap] = r;
	f->qlen++;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return true;
}

static void *
files_work_main(void *arg)
{
	struct files *f = arg;
	struct sb_pg *pg = NULL;
	int rv = sb_pg_open_opts(f->cfg->common.database_url, files_stmts, &files_pg_opts, &pg);
	if (rv != 0)
		sb_log_kv(SB_LOG_ERROR, "worker cannot open PostgreSQL", "error", sb_strerror(rv),
		          NULL);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (f->qlen == 0 && !f->stopping)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->qlen == 0) { /* stopping and nothing left */
			pthread_mutex_unlock(&f->mu);
			break;
		}
		struct sb_http_req *r = f->q[f->qhead];
		f->qhead = (f->qhead + 1) % f->qcap;
		f->qlen--;
		pthread_mutex_unlock(&f->mu);
		if (pg == NULL) {
			sb_http_respond_problem(r, 503, NULL,
			                        "the worker has no database connection");
			continue;
		}
		files_route(f, pg, r);
	}
	sb_pg_close(pg);
	return NULL;
}

int
files_work_start(struct files *f)
{
	f->qcap = (size_t)f->cfg->queue_max;
	f->q = calloc(f->qcap, sizeof(*f->q));
	f->threads = calloc((size_t)f->cfg->workers, sizeof(*f->threads));
	if (f->q == NULL || f->threads == NULL) {
		free(f->q);
		free(f->threads);
		return SB_ENOMEM;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	for (int i = 0; i < f->cfg->workers; i++) {
		if (pthread_create(&f->threads[i], NULL, files_work_main, f) != 0) {
			files_work_stop(f);
			return SB_EIO;
		}
		f->nthreads++;
	}
	return 0;
}

void
files_work_stop(struct files *f)
{
	if (f->q == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	for (int i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	f->nthreads = 0;
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->threads);
	free(f->q);
	f->threads = NULL;
	f->q = NULL;
}
