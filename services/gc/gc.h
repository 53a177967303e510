/* gc.h: private header of the gc service.
 *
 * Its one job: periodic cleanup under a leader lease. One thread (loop.c) holds, or waits for,
 * the lease: a PostgreSQL session advisory lock on its own connection (lease.c). While it
 * holds it, it runs every enabled task of the table in tasks.c each SB_GC_INTERVAL_MS; every
 * statement of a task runs on that same connection and only if the lock is still held by it,
 * so with several replicas exactly one works, and when the leader dies (its connection closes
 * and the server drops the lock) another takes over at its next try (SB_GC_LEASE_RETRY_MS).
 * The clock the tasks compare with is the database's now() shifted by SB_GC_CLOCK_OFFSET_S,
 * so tests can make rows old without waiting (docs/gc.md).
 */
#ifndef SB_GC_H
#define SB_GC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "sb_pg.h"
#include "sb_service.h"

/* The lease: pg_try_advisory_lock(GC_LOCK_CLASS, GC_LOCK_ID), the two-key form (a key space
 * of its own, apart from one-bigint locks such as migrations'; the outbox uses class 0x5B0B).
 * Decimal, as SQL text needs it (0x5B6C). */
#define GC_LOCK_CLASS 23404
#define GC_LOCK_ID    1
#define GC_APP_NAME   "sb-gc"
#define GC_STR_(x)    #x
#define GC_STR(x)     GC_STR_(x)

struct gc_cfg {
	struct sb_common_cfg common;
	long long interval_ms;
	long long lease_retry_ms;
	long long clock_offset_s;
	long long batch;
	bool tokens;
	long long token_grace_s;
	bool outbox;
	long long outbox_retention_s;
	bool once;
	/* Uploads (uploads.c): files.Expire through files' RPC, storage being files' own. */
	char *files_url;
	bool uploads;
	long long upload_abandon_s;
};

/* One cleanup task: a DELETE of at most $2 rows, run again while it deletes a full batch.
 * Its parameters are ($1 the clock offset in seconds, $2 the batch, $3 the task's age limit in
 * seconds); the statement must delete only while the lease is held (GC_HOLDS_LEASE). */
struct gc_task {
	const char *name;      /* metric label, statement name */
	size_t enabled_offset; /* bool in struct gc_cfg */
	size_t age_offset;     /* long long seconds in struct gc_cfg */
	const char *sql;
};

/* The SQL condition that this session holds the lease. */
#define GC_HOLDS_LEASE                                                                             \
	"EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = " GC_STR(        \
	    GC_LOCK_CLASS) " AND objid = " GC_STR(GC_LOCK_ID) " AND objsubid = 2 AND "             \
	                                                      "granted AND pid = "                 \
	                                                      "pg_backend_pid())"
/* The clock of the tasks: the database's now() shifted by $1 seconds. */
#define GC_NOW "(now() + make_interval(secs => $1::float8))"

struct gc {
	const struct gc_cfg *cfg;
	struct sb_pg *pg; /* the lease's connection; also runs the tasks */
	bool leader;
	uint64_t lease_reconnects; /* sb_pg_reconnects when the lease was taken */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
	struct sb_rpc_client *files; /* files' RPC (sb_service_upstream), for the uploads task */
};

/* config.c */
extern const struct sb_cfg_key gc_config[];
extern const struct sb_service_def gc_service;

/* tasks.c */
extern const struct gc_task gc_tasks[];
extern const struct sb_pg_stmt gc_stmts[];
/* gc_task_enabled tells whether cfg turns task t on. */
bool gc_task_enabled(const struct gc_task *t, const struct gc_cfg *cfg);
/* gc_task_run runs t to the end (batch after batch while full ones are deleted) on pg; *deleted
 * gets the rows deleted. Returns 0 or the database error. */
int gc_task_run(struct sb_pg *pg, const struct gc_task *t, const struct gc_cfg *cfg,
                const atomic_bool *stop, long *deleted);

/* uploads.c */
/* gc_uploads_run asks files to clean what uploads left behind (files.Expire, batch after batch
 * while it says more): unfinished uploads untouched for cfg->upload_abandon_s, expired tus
 * uploads, the bytes of terminated ones, on gc's clock (SB_GC_CLOCK_OFFSET_S applied). *cleaned
 * gets the uploads cleaned. Returns 0, or SB_EUNAVAIL when files did not answer (detail in
 * the log). Idempotent on files' side, so a replica that lost the lease meanwhile does no
 * harm. */
int gc_uploads_run(struct gc *g, long *cleaned);

/* lease.c */
/* gc_lease_check updates g->leader: keeps it while the lock is still held by g's connection
 * (the same session, not a reconnected one), else tries to take it. Returns 0 (leader or
 * not) or the database error (then g->leader is false). */
int gc_lease_check(struct gc *g);

/* loop.c */
/* gc_loop_start starts the cleanup thread; gc_loop_stop wakes it, joins it. */
int gc_loop_start(struct gc *g);
void gc_loop_stop(struct gc *g);

/* service.c */
int gc_service_start(struct sb_service *svc);
void gc_service_stop(struct sb_service *svc);

#endif
