/* sb_pg.h: one PostgreSQL connection for one thread (libpq, blocking).
 *
 * Each RPC worker owns one struct sb_pg; it is not safe to share one between threads without a
 * lock. Opening never needs the database to be up: a service can start before its database.
 * The connection is made on open when possible and otherwise on the first call; when it breaks
 * (the server restarted, the network dropped) the call that noticed returns SB_EUNAVAIL and the
 * next call reconnects. Attempts are spaced by exponential backoff with jitter: a call made
 * before the next attempt is due returns SB_EUNAVAIL at once without touching the network, so a
 * caller looping on errors never busy-loops the server, and sb_pg_retry_after_ms tells it how
 * long to wait (the retry_after of an UNAVAILABLE answer). A statement is not re-sent when its
 * connection broke: only the connection is re-made, since a statement that was in flight may
 * have been executed. The one case that is re-sent: a statement (sb_pg_exec_prepared,
 * sb_pg_exec_params, sb_pg_exec) that PostgreSQL rolled back for a deadlock or a serialization
 * failure (40P01, 40001) while no explicit transaction was open: its implicit transaction was
 * undone whole, so it is sent again, up to 3 sends in all, after a random pause of a few ms; then
 * SB_EBUSY. Inside sb_pg_begin's transaction the caller gets SB_EBUSY at once and must roll back
 * and start the transaction again.
 *
 * The statement table given to sb_pg_open is prepared on every new connection. A statement
 * whose preparation fails for a reason other than the connection (e.g. its table does not exist
 * yet because migrations have not run) is prepared again when it is first executed, and that
 * execution reports the error.
 *
 * Errors: every call returns 0 or a negative sb_err. SQL errors are mapped from their SQLSTATE
 * (sb_pg_sqlstate_err); the SQLSTATE and message of the last error stay available through
 * sb_pg_sqlstate and sb_pg_errmsg until the next call.
 *
 * Metrics: pg_reconnects_total, pg_query_duration_seconds{statement} (statement is the
 * prepared statement's name, or "sql" for plain SQL), pg_conflict_retries_total{statement} (the
 * sends again after a conflict). */
#ifndef SB_PG_H
#define SB_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sb_buf.h"

struct sb_pg;

/* One prepared statement: a table of these ends with a row whose name is NULL. */
struct sb_pg_stmt {
	const char *name; /* statement name, also the metric label */
	const char *sql;  /* one SQL statement with $1..$n parameters */
	int nparams;      /* number of parameters, all passed as text */
};

/* Tunables; zero fields take the defaults shown. */
struct sb_pg_opts {
	int connect_timeout_s; /* libpq connect_timeout unless the DSN sets one (default 5) */
	int backoff_base_ms;   /* ceiling of the first reconnect delay (default 100) */
	int backoff_max_ms;    /* ceiling of every reconnect delay (default 5000) */
	const char *options;   /* libpq "options" (e.g. "-c name=value") unless the DSN sets them */
};

/* sb_pg_open makes a connection object for dsn (a libpq URI or key=value string) and tries to
 * connect once. It succeeds while the database is down. stmts (may be NULL) must stay valid
 * until sb_pg_close; dsn is copied (and wiped on close, as it may hold a password). Returns 0
 * and *out (free with sb_pg_close), SB_EINVAL for a DSN libpq cannot parse, or SB_ENOMEM. */
int sb_pg_open(const char *dsn, const struct sb_pg_stmt *stmts, struct sb_pg **out);
/* sb_pg_open_opts is sb_pg_open with tunables (opts may be NULL for the defaults). */
int sb_pg_open_opts(const char *dsn, const struct sb_pg_stmt *stmts, const struct sb_pg_opts *opts,
                    struct sb_pg **out);
/* sb_pg_close closes the connection and frees pg; NULL is ignored. */
void sb_pg_close(struct sb_pg *pg);

/* sb_pg_exec_prepared executes the table's statement name with params (nparams text values,
 * an element may be NULL for SQL NULL). On 0, *res is the result (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK) and the caller frees it with PQclear; on error *res is NULL. Returns
 * SB_ENOTFOUND for a name not in the table, SB_EINVAL when nparams differs from the table,
 * SB_EUNAVAIL when the connection is down or broke, or the mapped SQL error. */
int sb_pg_exec_prepared(struct sb_pg *pg, const char *name, int nparams, const char *const *params,
                        PGresult **res);
/* sb_pg_exec_params executes one SQL statement with text params ($1..$n), unprepared. Result
 * and errors as sb_pg_exec_prepared. */
int sb_pg_exec_params(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
                      PGresult **res);
/* sb_pg_exec executes plain SQL, which may hold several statements separated by semicolons
 * (the result is the last one's). res may be NULL when the caller does not want the result.
 * Errors as sb_pg_exec_prepared. */
int sb_pg_exec(struct sb_pg *pg, const char *sql, PGresult **res);

/* One statement of a pipeline: a prepared statement of the table (name, with nparams params)
 * or, when name is NULL, one SQL statement (sql) sent unprepared with its nparams text params
 * ($1..$n; 0 for plain SQL). When res is not NULL it receives the result on success (free with
 * PQclear) and NULL on failure. */
struct sb_pg_step {
	const char *name;
	const char *sql;
	int nparams;
	const char *const *params;
	PGresult **res;
};

/* sb_pg_exec_pipeline sends the n steps (at most SB_PG_PIPELINE_MAX) together in libpq's
 * pipeline mode and then reads their results: one round trip to the server instead of n.
 * The steps run in order; the first one that fails makes the server skip the rest, and its
 * error is returned (mapped as in sb_pg_exec_prepared; sqlstate and errmsg are its own), with
 * every *res NULL. Without an open transaction, the steps form one implicit transaction; a
 * step whose sql is "BEGIN" opens one that outlives the call (commit it in a later call, and
 * sb_pg_begin's rule about lost connections applies). Only for statements with small results:
 * every result is read after everything was sent. Each step's duration is observed as the
 * time from sending the pipeline to its own result. */
#define SB_PG_PIPELINE_MAX 16
int sb_pg_exec_pipeline(struct sb_pg *pg, const struct sb_pg_step *steps, size_t n);

/* sb_pg_begin starts a transaction (BEGIN). If the connection breaks inside a transaction,
 * every later call but sb_pg_begin and sb_pg_rollback returns SB_EUNAVAIL, so a commit can
 * never silently run outside the transaction it belonged to. */
int sb_pg_begin(struct sb_pg *pg);
/* sb_pg_commit commits. SB_EUNAVAIL means the outcome is unknown (the COMMIT may or may not
 * have reached the server); a unique or serialization error is returned as mapped. */
int sb_pg_commit(struct sb_pg *pg);
/* sb_pg_rollback rolls back; harmless outside a transaction and on a broken connection (it
 * returns 0 then, since the server drops the transaction itself), and it clears the state left
 * by a transaction lost with its connection. Suits fail: labels. */
int sb_pg_rollback(struct sb_pg *pg);

/* sb_pg_ping checks the database for readiness (SELECT 1, reconnecting if due). Returns 0, or
 * an error with a one-line reason written to detail (size n). */
int sb_pg_ping(struct sb_pg *pg, char *detail, size_t n);

/* sb_pg_sqlstate returns the SQLSTATE of the last failed call ("" when it had none, e.g. the
 * connection failed before the server answered). Valid until the next call on pg. */
const char *sb_pg_sqlstate(const struct sb_pg *pg);
/* sb_pg_errmsg returns the last error's one-line message ("" if none). Valid until the next
 * call on pg. */
const char *sb_pg_errmsg(const struct sb_pg *pg);
/* sb_pg_retry_after_ms returns how long a caller should wait before the next attempt can
 * reach the database: 0 when connected or an attempt is due now. */
int64_t sb_pg_retry_after_ms(const struct sb_pg *pg);
/* sb_pg_connected tells whether pg holds a live connection (as far as libpq knows). */
int sb_pg_connected(const struct sb_pg *pg);
/* sb_pg_reconnects returns how many times pg re-established a lost connection. */
uint64_t sb_pg_reconnects(const struct sb_pg *pg);
/* sb_pg_conn returns the underlying connection for what this API lacks (LISTEN, COPY), or NULL
 * when not connected. It stays owned by pg and is invalid after the next call on pg. */
PGconn *sb_pg_conn(struct sb_pg *pg);

/* Pure helpers (sb_pg_util.c), exposed for tests and callers. */

/* SQLSTATE classes callers act on. */
enum sb_pg_class {
	SB_PG_OTHER = 0,        /* any other error */
	SB_PG_CONNECTION,       /* 08xxx, 57P01, 57P02, 57P03: the connection is gone */
	SB_PG_UNIQUE,           /* 23505 unique_violation */
	SB_PG_CONSTRAINT,       /* other class 23 integrity violations */
	SB_PG_RETRY,            /* 40001 serialization_failure, 40P01 deadlock_detected */
	SB_PG_CANCELED,         /* 57014 query_canceled (statement_timeout) */
	SB_PG_BAD_INPUT,        /* class 22 data exceptions (bad value for a type) */
	SB_PG_UNDEFINED_OBJECT, /* 42P01 undefined_table, 42883 undefined_function, 26000 */
};

/* sb_pg_sqlstate_class classifies a five-character SQLSTATE (NULL or "" give SB_PG_OTHER). */
enum sb_pg_class sb_pg_sqlstate_class(const char *sqlstate);
/* sb_pg_sqlstate_err maps a SQLSTATE to the sb_err a call returns: SB_EUNAVAIL (connection),
 * SB_EEXIST (unique), SB_EBUSY (retry the transaction), SB_ETIMEDOUT (canceled), SB_EINVAL
 * (bad input, other integrity violations), SB_EIO (anything else). */
int sb_pg_sqlstate_err(const char *sqlstate);

/* sb_pg_array_add appends s (NUL-terminated) as one element of the text[] literal being built
 * in b: b empty starts the literal with '{'; each element is double-quoted with '"' and '\\'
 * escaped. sb_pg_array_end closes it ("{}" when nothing was added). Both return 0 or
 * SB_ENOMEM. The literal is passed as one parameter: `unnest($1::text[])`. */
int sb_pg_array_add(struct sb_buf *b, const char *s);
int sb_pg_array_end(struct sb_buf *b);
#endif
