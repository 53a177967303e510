/* sb_pg.c: a PostgreSQL connection that reconnects with backoff and re-prepares statements. */
#include "sb_pg.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How many times a statement is sent at most when PostgreSQL rolls it back for a conflict
 * (sb_pg_conflict_again). */
#define SB_PG_CONFLICT_TRIES 3

#define SB_PG_DEFAULT_CONNECT_TIMEOUT_S 5
#define SB_PG_DEFAULT_BACKOFF_BASE_MS   100
#define SB_PG_DEFAULT_BACKOFF_MAX_MS    5000

struct sb_pg {
	char *dsn; /* owned, wiped on close: it may hold a password */
	char connect_timeout[16];
	char *options;                  /* owned, NULL: none */
	const struct sb_pg_stmt *stmts; /* borrowed, NULL-name ended */
	size_t nstmts;
	unsigned char *prepared;   /* per statement: prepared on the current connection */
	struct sb_series **series; /* per statement, then "sql": duration series, cached */
	PGconn *conn;              /* NULL while disconnected */
	struct sb_backoff backoff;
	int64_t next_attempt_ms; /* monotonic time before which no connect is tried */
	int ever_connected;
	int in_tx;   /* the current connection is inside a transaction */
	int tx_lost; /* a transaction died with its connection; only begin/rollback clear it */
	uint64_t reconnects;
	bool pooled; /* counted in pg_pool_connections */
	char sqlstate[6];
	char errmsg[256];
};

/* Process-wide metric families, registered once. */
static struct {
	pthread_once_t once;
	struct sb_series *reconnects;
	struct sb_metric *duration;
	struct sb_series *pool; /* handles open: the process's pool of connections */
	struct sb_metric *conflicts;
} sb_pg_m = { PTHREAD_ONCE_INIT, NULL, NULL, NULL, NULL };

static void
sb_pg_metrics_init(void)
{
	struct sb_metric *c = sb_metrics_counter(
	    "pg_reconnects_total", "PostgreSQL connections re-established after a loss.", NULL);
	sb_pg_m.reconnects = sb_metric_with(c);
	sb_pg_m.duration =
	    sb_metrics_histogram("pg_query_duration_seconds",
	                         "PostgreSQL statement execution time.", "statement", NULL, 0);
	/* With the sum of pg_query_duration_seconds, the pool's utilisation: the rate of that sum
	 * over this gauge is the fraction of time the connections spend in statements. */
	sb_pg_m.pool = sb_metric_with(sb_metrics_gauge(
	    "pg_pool_connections",
	    "PostgreSQL connection handles of the process (one per worker that uses the database).",
	    NULL));
	sb_pg_m.conflicts = sb_metrics_counter(
	    "pg_conflict_retries_total",
	    "Statements sent again after PostgreSQL rolled them back for a deadlock or a "
	    "serialization failure outside an explicit transaction.",
	    "statement");
}

static int64_t
sb_pg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sb_pg_set_error(struct sb_pg *pg, const char *sqlstate, const char *msg)
{
	snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", sqlstate ? sqlstate : "");
	snprintf(pg->errmsg, sizeof(pg->errmsg), "%s", msg ? msg : "");
	/* libpq messages end with a newline and may span lines: keep the first line. */
	pg->errmsg[strcspn(pg->errmsg, "\n")] = '\0';
}

static void
sb_pg_clear_error(struct sb_pg *pg)
{
	pg->sqlstate[0] = '\0';
	pg->errmsg[0] = '\0';
}

/* sb_pg_drop forgets the current connection; the next call reconnects at once. */
static void
sb_pg_drop(struct sb_pg *pg)
{
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pg->conn = NULL;
	if (pg->in_tx)
		pg->tx_lost = 1;
	pg->in_tx = 0;
	if (pg->nstmts > 0)
		memset(pg->prepared, 0, pg->nstmts);
	pg->next_attempt_ms = 0;
	sb_backoff_reset(&pg->backoff);
}

/* sb_pg_schedule_retry spaces the next connection attempt after a failed one. */
static void
sb_pg_schedule_retry(struct sb_pg *pg)
{
	uint32_t d = sb_backoff_next(&pg->backoff);
	if (d < pg->backoff.base_ms / 2)
		d = pg->backoff.base_ms / 2; /* never retry in a tight loop */
	pg->next_attempt_ms = sb_time_mono_ms() + d;
}

static int sb_pg_prepare(struct sb_pg *pg, size_t i);

/* Server notices (e.g. "already exists, skipping") go to the log, not to stderr. */
static void
sb_pg_notice(void *arg, const char *message)
{
	(void)arg;
	char line[256];
	snprintf(line, sizeof(line), "%s", message);
	line[strcspn(line, "\n")] = '\0';
	sb_log_kv(SB_LOG_DEBUG, "postgres notice", "notice", line, NULL);
}

/* sb_pg_connect connects if there is no connection and an attempt is due. */
static int
sb_pg_connect(struct sb_pg *pg)
{
	if (pg->conn != NULL) {
		if (PQstatus(pg->conn) == CONNECTION_OK)
			return 0;
		sb_pg_drop(pg);
	}
	int64_t now = sb_time_mono_ms();
	if (now < pg->next_attempt_ms) {
		char msg[128];
		snprintf(msg, sizeof(msg), "database unavailable; next attempt in %lld ms",
		         (long long)(pg->next_attempt_ms - now));
		sb_pg_set_error(pg, "", msg);
		return SB_EUNAVAIL;
	}
	/* connect_timeout and options first, so that those given in the DSN (expanded from
	 * dbname) win. */
	const char *keys[] = { "connect_timeout", "dbname", NULL, NULL };
	const char *vals[] = { pg->connect_timeout, pg->dsn, NULL, NULL };
	if (pg->options != NULL) {
		keys[1] = "options";
		vals[1] = pg->options;
		keys[2] = "dbname";
		vals[2] = pg->dsn;
	}
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL) {
		sb_pg_set_error(pg, "", "out of memory");
		sb_pg_schedule_retry(pg);
		return SB_ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		sb_pg_set_error(pg, "", PQerrorMessage(c));
		PQfinish(c);
		sb_pg_schedule_retry(pg);
		sb_log_kv(SB_LOG_DEBUG, "postgres connect failed", "error", pg->errmsg, NULL);
		return SB_EUNAVAIL;
	}
	pg->conn = c;
	PQsetNoticeProcessor(c, sb_pg_notice, NULL);
	sb_backoff_reset(&pg->backoff);
	pg->next_attempt_ms = 0;
	if (pg->ever_connected) {
		pg->reconnects++;
		sb_series_inc(sb_pg_m.reconnects);
		sb_log_kv(SB_LOG_INFO, "postgres reconnected", NULL);
	}
	pg->ever_connected = 1;
	for (size_t i = 0; i < pg->nstmts; i++) {
		int rv = sb_pg_prepare(pg, i);
		if (rv == SB_EUNAVAIL)
			return rv;
		/* Other failures (missing table before migrations) are retried on first use. */
	}
	sb_pg_clear_error(pg);
	return 0;
}

/* sb_pg_series returns the duration series of statement i (nstmts: plain SQL). */
static struct sb_series *
sb_pg_series(struct sb_pg *pg, size_t i)
{
	if (pg->series[i] == NULL)
		pg->series[i] =
		    sb_metric_with(sb_pg_m.duration, i < pg->nstmts ? pg->stmts[i].name : "sql");
	return pg->series[i];
}

/* sb_pg_result turns a libpq result into 0 (*out gets it, or it is cleared) or an error. */
static int
sb_pg_result(struct sb_pg *pg, PGresult *r, size_t label, int64_t t0, PGresult **out)
{
	sb_series_observe(sb_pg_series(pg, label), (double)(sb_pg_now_ns() - t0) / 1e9);

	if (r == NULL) {
		if (PQstatus(pg->conn) != CONNECTION_OK) {
			sb_pg_set_error(pg, "", PQerrorMessage(pg->conn));
			sb_pg_drop(pg);
			return SB_EUNAVAIL;
		}
		sb_pg_set_error(pg, "", "out of memory");
		return SB_ENOMEM;
	}
	ExecStatusType st = PQresultStatus(r);
	int ret = 0;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		sb_pg_clear_error(pg);
	} else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
	           st == PGRES_BAD_RESPONSE) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		sb_pg_set_error(pg, state, msg ? msg : PQresultErrorMessage(r));
		ret = sb_pg_sqlstate_err(state);
		if (PQstatus(pg->conn) != CONNECTION_OK ||
		    sb_pg_sqlstate_class(state) == SB_PG_CONNECTION) {
			if (pg->errmsg[0] == '\0')
				sb_pg_set_error(pg, state, PQerrorMessage(pg->conn));
			PQclear(r);
			sb_pg_drop(pg);
			return SB_EUNAVAIL;
		}
	} else {
		/* COPY and other streaming states are not handled here: use sb_pg_conn. */
		sb_pg_set_error(pg, "", "unsupported result status (COPY needs sb_pg_conn)");
		PQclear(r);
		sb_pg_drop(pg);
		return SB_EINVAL;
	}
	/* ACTIVE: more of a pipeline is under way; in_tx is settled when it ends. */
	PGTransactionStatusType ts2 = PQtransactionStatus(pg->conn);
	if (ts2 != PQTRANS_ACTIVE)
		pg->in_tx = ts2 == PQTRANS_INTRANS || ts2 == PQTRANS_INERROR;
	if (ret == 0 && out != NULL)
		*out = r;
	else
		PQclear(r);
	return ret;
}

static int
sb_pg_prepare(struct sb_pg *pg, size_t i)
{
	const struct sb_pg_stmt *s = &pg->stmts[i];
	int64_t t0 = sb_pg_now_ns();
	PGresult *r = PQprepare(pg->conn, s->name, s->sql, s->nparams, NULL);
	int rv = sb_pg_result(pg, r, i, t0, NULL);
	if (rv == 0)
		pg->prepared[i] = 1;
	else if (rv != SB_EUNAVAIL)
		sb_log_kv(SB_LOG_DEBUG, "postgres prepare failed", "statement", s->name, "error",
		          pg->errmsg, NULL);
	return rv;
}

/* sb_pg_enter starts every call: clears the last error and makes sure of a connection. */
static int
sb_pg_enter(struct sb_pg *pg, PGresult **res)
{
	if (res != NULL)
		*res = NULL;
	sb_pg_clear_error(pg);
	if (pg->tx_lost) {
		sb_pg_set_error(pg, "08006",
		                "the transaction was lost with its connection; "
		                "roll back and start again");
		return SB_EUNAVAIL;
	}
	return sb_pg_connect(pg);
}

int
sb_pg_open_opts(const char *dsn, const struct sb_pg_stmt *stmts, const struct sb_pg_opts *opts,
                struct sb_pg **out)
{
	*out = NULL;
	if (dsn == NULL)
		return SB_EINVAL;
	char *perr = NULL;
	PQconninfoOption *parsed = PQconninfoParse(dsn, &perr);
	if (parsed == NULL) {
		/* libpq may quote part of the DSN; URIs are masked by sb_log, key=value
		 * passwords are not, so their detail is left out. */
		const char *why = perr == NULL ? "out of memory"
		                  : strstr(dsn, "password") != NULL
		                      ? "(detail hidden: DSN has a password)"
		                      : perr;
		sb_log_kv(SB_LOG_ERROR, "invalid PostgreSQL DSN", "error", why, NULL);
		int rv = perr ? SB_EINVAL : SB_ENOMEM;
		PQfreemem(perr);
		return rv;
	}
	PQconninfoFree(parsed);
	pthread_once(&sb_pg_m.once, sb_pg_metrics_init);

	int ret = SB_ENOMEM;
	struct sb_pg *pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return SB_ENOMEM;
	pg->stmts = stmts;
	while (stmts != NULL && stmts[pg->nstmts].name != NULL)
		pg->nstmts++;
	if ((pg->dsn = strdup(dsn)) == NULL)
		goto fail;
	if (opts != NULL && opts->options != NULL && (pg->options = strdup(opts->options)) == NULL)
		goto fail;
	if (pg->nstmts > 0 && (pg->prepared = calloc(pg->nstmts, 1)) == NULL)
		goto fail;
	if ((pg->series = calloc(pg->nstmts + 1, sizeof(*pg->series))) == NULL)
		goto fail;
	int ct = opts && opts->connect_timeout_s > 0 ? opts->connect_timeout_s
	                                             : SB_PG_DEFAULT_CONNECT_TIMEOUT_S;
	int base = opts && opts->backoff_base_ms > 0 ? opts->backoff_base_ms
	                                             : SB_PG_DEFAULT_BACKOFF_BASE_MS;
	int max =
	    opts && opts->backoff_max_ms > 0 ? opts->backoff_max_ms : SB_PG_DEFAULT_BACKOFF_MAX_MS;
	if (max < base)
		max = base;
	snprintf(pg->connect_timeout, sizeof(pg->connect_timeout), "%d", ct);
	sb_backoff_init(&pg->backoff, (uint32_t)base, (uint32_t)max);
	/* A first attempt now; a database that is down is not an error here. */
	if (sb_pg_connect(pg) != 0)
		sb_log_kv(SB_LOG_WARN, "postgres not reachable yet; will retry", "error",
		          pg->errmsg, NULL);
	pg->pooled = true;
	sb_series_add(sb_pg_m.pool, 1);
	*out = pg;
	return 0;
fail:
	sb_pg_close(pg);
	return ret;
}

int
sb_pg_open(const char *dsn, const struct sb_pg_stmt *stmts, struct sb_pg **out)
{
	return sb_pg_open_opts(dsn, stmts, NULL, out);
}

void
sb_pg_close(struct sb_pg *pg)
{
	if (pg == NULL)
		return;
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	if (pg->dsn != NULL) {
		explicit_bzero(pg->dsn, strlen(pg->dsn));
		free(pg->dsn);
	}
	free(pg->options);
	free(pg->prepared);
	free(pg->series);
	if (pg->pooled)
		sb_series_add(sb_pg_m.pool, -1);
	free(pg);
}

/* sb_pg_find sets *i to the table index of statement name called with nparams. */
static int
sb_pg_find(struct sb_pg *pg, const char *name, int nparams, size_t *i)
{
	if (name == NULL || nparams < 0) {
		sb_pg_set_error(pg, "", "invalid statement name or parameter count");
		return SB_EINVAL;
	}
	*i = 0;
	while (*i < pg->nstmts && strcmp(pg->stmts[*i].name, name) != 0)
		(*i)++;
	if (*i == pg->nstmts) {
		sb_pg_set_error(pg, "", "no such prepared statement");
		return SB_ENOTFOUND;
	}
	if (nparams != pg->stmts[*i].nparams) {
		sb_pg_set_error(pg, "", "wrong number of parameters");
		return SB_EINVAL;
	}
	return 0;
}

/* sb_pg_conflict_again decides whether a statement that just failed with rv is sent again: only
 * after a deadlock or a serialization failure (SB_EBUSY) that PostgreSQL answered outside an
 * explicit transaction, so that the statement's own implicit transaction was rolled back whole
 * and sending it again is the same as sending it later; at most SB_PG_CONFLICT_TRIES sends in
 * all (*tries counts them), after a random pause of 1-3, then 1-5 ms (sb_backoff). It counts
 * and logs each send again. */
static bool
sb_pg_conflict_again(struct sb_pg *pg, int rv, size_t label, int *tries, struct sb_backoff *bo)
{
	if (rv != SB_EBUSY || pg->in_tx || ++*tries >= SB_PG_CONFLICT_TRIES)
		return false;
	if (*tries == 1)
		sb_backoff_init(bo, 2, 20);
	const char *what = label < pg->nstmts ? pg->stmts[label].name : "sql";
	sb_series_inc(sb_metric_with(sb_pg_m.conflicts, what));
	sb_log_kv(SB_LOG_WARN, "statement rolled back by a conflict; sending it again", "statement",
	          what, "sqlstate", pg->sqlstate, "error", pg->errmsg, NULL);
	uint32_t ms = sb_backoff_next(bo) + 1;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000L };
	nanosleep(&ts, NULL);
	return true;
}

int
sb_pg_exec_prepared(struct sb_pg *pg, const char *name, int nparams, const char *const *params,
                    PGresult **res)
{
	if (res != NULL)
		*res = NULL;
	size_t i = 0;
	int rv = sb_pg_find(pg, name, nparams, &i), tries = 0;
	if (rv != 0)
		return rv;
	struct sb_backoff bo;
	do {
		if ((rv = sb_pg_enter(pg, res)) != 0)
			return rv;
		if (!pg->prepared[i] && (rv = sb_pg_prepare(pg, i)) != 0)
			return rv;
		int64_t t0 = sb_pg_now_ns();
		PGresult *r = PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0);
		rv = sb_pg_result(pg, r, i, t0, res);
	} while (sb_pg_conflict_again(pg, rv, i, &tries, &bo));
	return rv;
}

/* sb_pg_exec_sql runs plain SQL: with parameters (nparams >= 0, one statement) or without
 * (nparams < 0: PQexec, which allows several statements in one string). */
static int
sb_pg_exec_sql(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
               PGresult **res)
{
	int rv, tries = 0;
	struct sb_backoff bo;
	do {
		if ((rv = sb_pg_enter(pg, res)) != 0)
			return rv;
		int64_t t0 = sb_pg_now_ns();
		PGresult *r =
		    nparams < 0 ? PQexec(pg->conn, sql)
		                : PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		rv = sb_pg_result(pg, r, pg->nstmts, t0, res);
	} while (sb_pg_conflict_again(pg, rv, pg->nstmts, &tries, &bo));
	return rv;
}

int
sb_pg_exec_params(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
                  PGresult **res)
{
	if (nparams < 0) {
		sb_pg_set_error(pg, "", "invalid parameter count");
		return SB_EINVAL;
	}
	return sb_pg_exec_sql(pg, sql, nparams, params, res);
}

int
sb_pg_exec(struct sb_pg *pg, const char *sql, PGresult **res)
{
	return sb_pg_exec_sql(pg, sql, -1, NULL, res);
}

/* sb_pg_pipeline_lost drops a connection whose pipeline cannot be finished. */
static int
sb_pg_pipeline_lost(struct sb_pg *pg, const char *why)
{
	if (pg->conn != NULL) {
		sb_pg_set_error(
		    pg, "", PQstatus(pg->conn) == CONNECTION_OK ? why : PQerrorMessage(pg->conn));
		sb_pg_drop(pg);
	}
	return SB_EUNAVAIL;
}

/* sb_pg_pipeline_read reads the results of the n steps sent and the final sync. Returns the
 * first step's error, or SB_EUNAVAIL when the connection had to be dropped. */
static int
sb_pg_pipeline_read(struct sb_pg *pg, const struct sb_pg_step *steps, const size_t *label, size_t n,
                    int64_t t0)
{
	int first = 0;
	for (size_t k = 0; k < n; k++) {
		PGresult *r = PQgetResult(pg->conn);
		if (r == NULL)
			return sb_pg_pipeline_lost(pg, "pipeline ended early");
		if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
			PQclear(r);
		} else {
			int e = sb_pg_result(pg, r, label[k], t0, first == 0 ? steps[k].res : NULL);
			if (pg->conn == NULL)
				return SB_EUNAVAIL; /* dropped by sb_pg_result */
			if (first == 0)
				first = e;
		}
		if ((r = PQgetResult(pg->conn)) != NULL) { /* the end of this step's results */
			PQclear(r);
			return sb_pg_pipeline_lost(pg, "unexpected extra result in a pipeline");
		}
	}
	PGresult *r = PQgetResult(pg->conn);
	bool synced = r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
	PQclear(r);
	if (!synced || !PQexitPipelineMode(pg->conn))
		return sb_pg_pipeline_lost(pg, "pipeline did not end with its sync");
	PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
	pg->in_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
	return first;
}

int
sb_pg_exec_pipeline(struct sb_pg *pg, const struct sb_pg_step *steps, size_t n)
{
	size_t label[SB_PG_PIPELINE_MAX];
	bool opens_tx = false;
	int rv = 0;
	for (size_t k = 0; k < n; k++)
		if (steps[k].res != NULL)
			*steps[k].res = NULL;
	if (n == 0 || n > SB_PG_PIPELINE_MAX) {
		sb_pg_set_error(pg, "", "a pipeline has 1 to SB_PG_PIPELINE_MAX steps");
		return SB_EINVAL;
	}
	for (size_t k = 0; k < n && rv == 0; k++) {
		label[k] = pg->nstmts;
		if (steps[k].name != NULL)
			rv = sb_pg_find(pg, steps[k].name, steps[k].nparams, &label[k]);
		else if (steps[k].sql == NULL)
			rv = SB_EINVAL;
		else
			opens_tx |= strcasecmp(steps[k].sql, "BEGIN") == 0;
	}
	if (rv != 0) {
		if (rv == SB_EINVAL && pg->errmsg[0] == '\0')
			sb_pg_set_error(pg, "", "a step has neither a statement name nor SQL");
		return rv;
	}
	if (opens_tx)
		pg->tx_lost = 0; /* a new transaction, as with sb_pg_begin */
	if ((rv = sb_pg_enter(pg, NULL)) != 0)
		return rv;
	for (size_t k = 0; k < n; k++)
		if (label[k] < pg->nstmts && !pg->prepared[label[k]] &&
		    (rv = sb_pg_prepare(pg, label[k])) != 0)
			return rv;
	if (!PQenterPipelineMode(pg->conn))
		return sb_pg_pipeline_lost(pg, "cannot enter pipeline mode");
	if (opens_tx)
		pg->in_tx = 1; /* a connection lost from here on takes the transaction with it */
	int64_t t0 = sb_pg_now_ns();
	bool sent = true;
	for (size_t k = 0; k < n && sent; k++) {
		const struct sb_pg_step *s = &steps[k];
		sent = s->name != NULL ? PQsendQueryPrepared(pg->conn, s->name, s->nparams,
		                                             s->params, NULL, NULL, 0)
		                       : PQsendQueryParams(pg->conn, s->sql, s->nparams, NULL,
		                                           s->params, NULL, NULL, 0);
	}
	if (!sent || !PQpipelineSync(pg->conn))
		rv = sb_pg_pipeline_lost(pg, "could not send a pipeline");
	else
		rv = sb_pg_pipeline_read(pg, steps, label, n, t0);
	if (rv != 0) {
		for (size_t k = 0; k < n; k++) {
			if (steps[k].res != NULL) {
				PQclear(*steps[k].res);
				*steps[k].res = NULL;
			}
		}
	}
	return rv;
}

int
sb_pg_begin(struct sb_pg *pg)
{
	pg->tx_lost = 0;
	return sb_pg_exec(pg, "BEGIN", NULL);
}

int
sb_pg_commit(struct sb_pg *pg)
{
	return sb_pg_exec(pg, "COMMIT", NULL);
}

int
sb_pg_rollback(struct sb_pg *pg)
{
	pg->tx_lost = 0;
	sb_pg_clear_error(pg);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK)
		return 0; /* the server rolls back what it had; no reconnect just for this */
	if (!pg->in_tx)
		return 0;
	int rv = sb_pg_exec(pg, "ROLLBACK", NULL);
	return rv == SB_EUNAVAIL ? 0 : rv;
}

int
sb_pg_ping(struct sb_pg *pg, char *detail, size_t n)
{
	if (pg == NULL) {
		snprintf(detail, n, "no connection object");
		return SB_EINVAL;
	}
	if (pg->in_tx || pg->tx_lost) {
		snprintf(detail, n, "connection busy in a transaction");
		return SB_EBUSY;
	}
	PGresult *r = NULL;
	int rv = sb_pg_exec(pg, "SELECT 1", &r);
	PQclear(r);
	if (rv != 0)
		snprintf(detail, n, "%s", pg->errmsg[0] ? pg->errmsg : sb_strerror(rv));
	return rv;
}

const char *
sb_pg_sqlstate(const struct sb_pg *pg)
{
	return pg->sqlstate;
}

const char *
sb_pg_errmsg(const struct sb_pg *pg)
{
	return pg->errmsg;
}

int64_t
sb_pg_retry_after_ms(const struct sb_pg *pg)
{
	if (pg->conn != NULL)
		return 0;
	int64_t d = pg->next_attempt_ms - sb_time_mono_ms();
	return d > 0 ? d : 0;
}

int
sb_pg_connected(const struct sb_pg *pg)
{
	return pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

uint64_t
sb_pg_reconnects(const struct sb_pg *pg)
{
	return pg->reconnects;
}

PGconn *
sb_pg_conn(struct sb_pg *pg)
{
	return sb_pg_connected(pg) ? pg->conn : NULL;
}
