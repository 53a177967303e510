/* pubsub.h: private header of the pubsub service.
 *
 * Its one job: application topics. A publish is stored in PostgreSQL (schema pubsub) with one
 * delivery row per subscription whose filter matches, in one transaction, before it is
 * acknowledged; consumers long-poll a subscription and lease what they get for the topic's ack
 * deadline; ack, nack (with a delay or the backoff), deadline changes, expiry (the reaper
 * thread), the dead-letter queue ({name}.dlq: deliveries in state dead) and replay move the
 * delivery rows. docs/pubsub.md has the states and the reasons.
 *
 * Calls run one way, top to bottom:
 *   config.c     config table, RPC table, service definition
 *   service.c    start/stop: metrics, the reaper thread, the long-poll wake-up
 *   topics.c     topics and subscriptions (CRUD, metrics)
 *   publish.c    Publish
 *   commit.c     the group commit of concurrent publishes
 *   consume.c    Consume, Ack, Nack, ModifyDeadline, GetMessage
 *   ackbatch.c   AckBatch: many acks in one transaction
 *   dlq.c        ListDeadLetters, ReplayDeadLetter
 *   push.c       the push workers: deliveries of push subscriptions POSTed (sb_webhook)
 *   filter.c     content filters (headers, JSON pointers), names, strategies; no I/O
 *   schema.c     the schema-validation point (registry), not wired yet
 *   store.c      the prepared SQL and the shared leaves (tenant, connection, errors)
 */
#ifndef SB_PUBSUB_H
#define SB_PUBSUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pubsub.pb-c.h"
#include "sb_buf.h"
#include "sb_metrics.h"
#include "sb_pg.h"
#include "sb_rpc.h"
#include "sb_service.h"
#include "sb_span.h"
#include "sb_util_uuid.h"

#define PS_DEFAULT_SUB  "default"
#define PS_DLQ_SUFFIX   ".dlq"
#define PS_NAME_MAX     100
#define PS_TRACE_HEADER "traceparent" /* W3C trace context of the publish */
#define PS_SECRET_MIN   16            /* a push subscription's signing secret, when given */
#define PS_SECRET_MAX   256

struct pubsub_cfg {
	struct sb_common_cfg common;
	char *registry_url;          /* the schema registry (schema.c) */
	long long backoff_base_ms;   /* first retry delay after a failed attempt */
	long long backoff_max_ms;    /* ceiling of the retry delay */
	long long reaper_ms;         /* how often expired leases are handled */
	long long retention_pass_ms; /* how often acknowledged messages past retention go */
	long long poll_ms;           /* a waiting consumer looks again at least this often */
	long long fill_poll_ms;      /* a consumer waiting for its min looks again this often */
	long long max_wait_ms;       /* longest long poll */
	long long consumer_ttl_ms;   /* a consumer not seen this long is not active */
	long long idempotency_window_s;
	long long max_payload_bytes;
	long long default_attempts;
	long long default_deadline_ms;
	long long default_retention_ms;
	long long publish_group_max;    /* requests per group commit, at most PS_GROUP_MAX */
	long long publish_group_rows;   /* rows (messages) per group commit */
	bool cursor;                    /* new subscriptions may be cursor subscriptions */
	bool push_allow_private;        /* push endpoints may be private addresses (tests only) */
	long long push_workers;         /* push delivery threads */
	long long push_per_sub;         /* pushes of one subscription in flight at most */
	long long push_timeout_ms;      /* one push POST, connect included */
	long long push_lease_margin_ms; /* a push lease is push_timeout_ms plus this */
	long long db_connections;       /* pool.c: connections the RPC handlers share */
};

/* pool.c: the PostgreSQL connections the RPC handlers share. */
struct ps_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a connection is given back */
	struct sb_pg **all, **free;
	size_t n, nfree;
	bool ready; /* opened (mu, cv and the arrays exist) */
};

/* The process state: made by the start hook, freed by the stop hook. */
struct ps_state {
	const struct pubsub_cfg *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast when deliveries may have become ready */
	uint64_t gen;      /* bumped with every broadcast */
	/* with mu: broadcast only when the service stops; the naps that publishes must not end
	 * wait on it (the reaper's, a long poll with a min), so that a publish wakes no one who
	 * would only go back to sleep */
	pthread_cond_t nap_cv;
	bool stopping;
	pthread_t reaper;
	bool reaper_started;
	pthread_t *push; /* push.c: the push workers */
	int npush;
	pthread_cond_t push_cv; /* with mu: broadcast when a publish went to a push subscription */
	uint64_t push_gen;      /* bumped with every push_cv broadcast */
	pthread_mutex_t rc_mu;  /* route.c: guards rc */
	struct ps_route_slot *rc; /* route.c: cached "pub_route" answers */
	pthread_mutex_t push_mu;  /* held by a push worker while it claims; guards push_busy */
	long long *push_busy;     /* per push worker: the subscription it pushes to, 0 when idle */
	struct sb_pg *rpg;        /* the reaper's connection */
	struct ps_pool pool;      /* pool.c: the handlers' connections */

	struct sb_metric *m_published;   /* pubsub_published_total{topic} */
	struct sb_metric *m_delivered;   /* pubsub_delivered_total{topic,subscription} */
	struct sb_metric *m_acked;       /* pubsub_acked_total{topic,subscription} */
	struct sb_metric *m_nacked;      /* pubsub_nacked_total{topic,subscription} */
	struct sb_metric *m_redeliver;   /* pubsub_redelivered_total{topic,subscription} */
	struct sb_metric *m_dead;        /* pubsub_dead_lettered_total{topic,subscription,cause} */
	struct sb_metric *m_invalid;     /* pubsub_validation_failures_total{topic} */
	struct sb_metric *m_duplicates;  /* pubsub_duplicate_publishes_total{topic} */
	struct sb_metric *m_latency;     /* pubsub_publish_to_ack_seconds{topic} */
	struct sb_series *m_expired;     /* pubsub_lease_expiries_total */
	struct sb_series *m_route_reads; /* pubsub_route_reads_total */
	struct sb_series *m_route_stale; /* pubsub_route_stale_total */

	/* commit.c: publishes waiting for the group commit, and the committer thread */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_work; /* signalled when a publish was queued, or at stop */
	struct ps_pub_item *gc_head, **gc_tail;
	pthread_t gc_thread;
	bool gc_started, gc_stop;
	struct sb_pg *gcpg;        /* the committer's connection */
	struct sb_series *m_group; /* pubsub_publish_group_size: publishes per commit */
};

/* A topic row as the handlers need it. Strings point into the result it was read from. */
struct ps_topic {
	const char *id;
	const char *name;
	const char *type;
	const char *schema_subject;
	int partitions;
	bool ordering_keys;
	long long retention_ms;
	int max_attempts;
	int ack_deadline_ms;
	const char *guarantee;
	const char *default_strategy;
	const char *created_at;
};

/* The strategies of a subscription (docs/pubsub.md). */
enum ps_strategy {
	PS_DIRECT,
	PS_FAN_OUT,
	PS_ROUND_ROBIN,
	PS_LEAST_LOADED,
	PS_PRIORITY,
	PS_CONTENT,
};

/* config.c */
extern const struct sb_cfg_key pubsub_config[];
extern const struct sb_service_def pubsub_service;

/* service.c */
int ps_service_start(struct sb_service *svc);
void ps_service_stop(struct sb_service *svc);
/* ps_wake tells every waiting consumer of this process to look again. */
void ps_wake(struct ps_state *st);
/* ps_wait_gen blocks on cv (with st->mu) until *counter differs from *gen (the wake that bumps
 * it came after *gen was read), ms pass or the service stops; *gen is updated. Returns false
 * when the service is stopping. The long polls wait with st->cv and st->gen (ps_wake), the
 * push workers with st->push_cv and st->push_gen (ps_push_wake). */
bool ps_wait_gen(struct ps_state *st, pthread_cond_t *cv, const uint64_t *counter, uint64_t *gen,
                 int64_t ms);
/* ps_sleep waits ms or until the service stops, on st->nap_cv, which publishes do not
 * broadcast (the reaper's sleep, a long poll with a min); false when stopping. */
bool ps_sleep(struct ps_state *st, int64_t ms);

/* topics.c */
int ps_rpc_create_topic(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_list_topics(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_get_topic(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_update_topic(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_delete_topic(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_topic_metrics(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_create_subscription(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_list_subscriptions(struct sb_rpc_call *call, const void *req, void *resp);

/* publish.c */
int ps_rpc_publish(struct sb_rpc_call *call, const void *req, void *resp);
/* A message checked and routed by ps_msg_prepare: its new id, its priority as text, its
 * headers (JSON text, malloc'd), the subscriptions it goes to (a bigint[] literal) and whether
 * one of them is a push subscription. ps_msg_free frees it (and may be called again). */
struct ps_msg {
	char id[SB_UUID_STR_LEN + 1];
	char prio[8];
	char *htext;
	struct sb_buf subs; /* the subscriptions that get a delivery row, as a bigint[] literal */
	int nsubs;
	int ncursor; /* the cursor subscriptions it goes to (no row) */
	bool push;
};
/* ps_msg_prepare checks in against topic t (route sres) and routes it; violations name their
 * field with the prefix at ("" for Publish, "messages/3/" for PublishBatch). Returns OK (m
 * filled) or the answered error (INVALID_ARGUMENT for a bad message; m empty). */
int ps_msg_prepare(struct sb_rpc_call *call, struct ps_state *st, const struct ps_topic *t,
                   const PGresult *sres, const Sb__Pubsub__PublishRequest *in, const char *at,
                   struct ps_msg *m);
void ps_msg_free(struct ps_msg *m);
/* ps_route_load reads the route of the tenant's topic ("pub_route"), from the cache when
 * use_cache (*cached then says whether it came from there); OK or the answered error. */
int ps_route_load(struct sb_rpc_call *call, struct ps_state *st, const char *tenant,
                  const char *topic, bool use_cache, PGresult **sres, bool *cached);
/* ps_topic_of_route points t's id, name, schema subject, ordering and guarantee into sres. */
void ps_topic_of_route(const PGresult *sres, struct ps_topic *t);
/* ps_idem_get answers the message id stored under the live idempotency key of topic t. */
int ps_idem_get(struct sb_rpc_call *call, const struct ps_topic *t, const char *key, char **id);

/* batch.c */
int ps_rpc_publish_batch(struct sb_rpc_call *call, const void *req, void *resp);

/* commit.c */
#define PS_PUBLISH_NPARAMS 11 /* the "publish" statement's parameters */
struct ps_pub_item;
/* ps_publish_grouped stores n rows (rows[r]: the PS_PUBLISH_NPARAMS parameters of "publish";
 * one Publish is one row, a PublishBatch its messages: one topic, no new idempotency key
 * twice) in a group commit with the requests of other workers (commit.c): it returns once the
 * transaction holding them committed (0, res[r] row r's result as "publish" answers it, for
 * PQclear) or failed (the error of sb_pg_exec_prepared, every res[r] NULL). The rows are
 * stored all together or not at all. The call's pooled connection is given back first (none is
 * held while waiting for the group); the committer thread runs the groups on a connection of
 * its own. The waiting consumers of this process are woken (ps_wake) once per group that was
 * stored. ps_committer_start starts that thread (and opens its connection), unless
 * SB_PUBSUB_PUBLISH_GROUP_MAX is 1 (no group commit); ps_committer_stop
 * lets it store what is queued, then stops it (after the RPC server stopped). */
int ps_publish_grouped(struct ps_state *st, struct sb_rpc_call *call,
                       const char *const *const *rows, size_t n, PGresult **res);
int ps_committer_start(struct ps_state *st);
void ps_committer_stop(struct ps_state *st);

/* consume.c */
int ps_rpc_consume(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_consume_ack(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_ack(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_nack(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_modify_deadline(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_get_message(struct sb_rpc_call *call, const void *req, void *resp);

/* route.c: the cache of "pub_route" answers per (tenant, topic). ps_route_get returns a copy
 * (for PQclear) or NULL; ps_route_put stores a copy of res; ps_route_drop forgets the topic's
 * entry (its route_version moved). */
struct ps_route_slot;
int ps_route_init(struct ps_state *st);
void ps_route_free(struct ps_state *st);
PGresult *ps_route_get(struct ps_state *st, const char *tenant, const char *topic);
void ps_route_put(struct ps_state *st, const char *tenant, const char *topic, const PGresult *res);
void ps_route_drop(struct ps_state *st, const char *tenant, const char *topic);

/* push.c */
/* ps_push_start starts cfg->push_workers push threads on st, each with its own connection;
 * they run until st->stopping. Returns 0 or SB_EIO (the threads started are kept in st->push
 * for ps_push_join). */
int ps_push_start(struct ps_state *st);
/* ps_push_wake tells the push workers that a publish was routed to a push subscription. */
void ps_push_wake(struct ps_state *st);
/* ps_push_join joins the push threads (after st->stopping was set) and frees them. */
void ps_push_join(struct ps_state *st);

/* --- trace.c ------------------------------------------------------------------------------ */
/* ps_trace_span records span name (kind) in the trace of tp, a message's traceparent header
 * (NULL, "" or invalid: none is recorded, a message published outside a trace stays so),
 * started at start_ns (Unix ns; 0: now) and ended now, with the message id, subscription and
 * attempt (NULL or 0: left out). Only while spans are exported. */
void ps_trace_span(const char *name, enum sb_span_kind kind, const char *tp, int64_t start_ns,
                   const char *message_id, const char *subscription, int attempt);
/* ps_trace_now_ns returns the wall clock in Unix nanoseconds (a span's start). */
int64_t ps_trace_now_ns(void);
/* ps_trace_of returns the traceparent header among a delivered message's headers, or NULL. */
const char *ps_trace_of(Sb__Pubsub__Delivered__HeadersEntry **h, size_t n);

/* ackbatch.c */
int ps_rpc_ack_batch(struct sb_rpc_call *call, const void *req, void *resp);
/* Acks checked for the "ack_batch" statement (or "consume_ack", which starts with it):
 * results[] has one answer per ack (in the call's arena; the malformed ones already "invalid"),
 * ids/subs/leases the well-formed ones as array literals, pos[k] the index of the k-th of them. */
struct ps_acks {
	Sb__Pubsub__AckResult **results;
	size_t n_results;
	struct sb_buf ids, subs, leases;
	size_t *pos;
	size_t nvalid;
};
/* ps_acks_prepare checks n acks into a. Returns OK (free a with ps_acks_free) or the answered
 * error (INVALID_ARGUMENT: more than 1,000; a needs no freeing then). */
int ps_acks_prepare(struct sb_rpc_call *call, Sb__Pubsub__AckRequest *const *acks, size_t n,
                    struct ps_acks *a);
/* ps_acks_run runs "ack_batch" for a's well-formed acks of tenant and fills a->results.
 * Returns OK or the answered error (nothing acked). */
int ps_acks_run(struct sb_rpc_call *call, struct ps_acks *a, const char *tenant);
/* ps_acks_apply fills a->results from the ack rows of res (from row0, the "ack_batch" columns
 * from col0 on): results, metrics, spans. Returns OK or the answered error. */
int ps_acks_apply(struct sb_rpc_call *call, struct ps_acks *a, const PGresult *res, int row0,
                  int col0);
/* The error "consume_ack_cursor" answers for an ack it did not settle (store.c). */
#define PS_ACK_RETRY "retry"
/* ps_acks_settle_rest runs "ack_batch" for the acks of a (made by ps_acks_prepare from the n
 * acks) whose result is PS_ACK_RETRY, and puts its results in their place. Returns OK or the
 * answered error. */
int ps_acks_settle_rest(struct sb_rpc_call *call, Sb__Pubsub__AckRequest *const *acks, size_t n,
                        struct ps_acks *a, const char *tenant);
/* ps_acks_free frees what ps_acks_prepare allocated outside the arena. */
void ps_acks_free(struct ps_acks *a);

/* dlq.c */
int ps_rpc_list_dead_letters(struct sb_rpc_call *call, const void *req, void *resp);
int ps_rpc_replay_dead_letter(struct sb_rpc_call *call, const void *req, void *resp);

/* filter.c */
/* ps_name_ok tells whether s is a usable topic or subscription name: 1 to PS_NAME_MAX
 * characters of [A-Za-z0-9._-], not ending in ".dlq". */
bool ps_name_ok(const char *s);
/* ps_strategy_parse maps a strategy's name to *out; returns false for an unknown name. */
bool ps_strategy_parse(const char *s, enum ps_strategy *out);
/* ps_strategy_name returns the name of a strategy. */
const char *ps_strategy_name(enum ps_strategy s);
/* The longest reference token a pointer may hold, decoded, with its NUL: a longer one names
 * nothing (no member name of a stored payload is that long in practice). */
#define PS_PTR_TOKEN_MAX 256
/* ps_json_pointer returns the value at RFC 6901 pointer ptr in doc (borrowed), or NULL when
 * the pointer is malformed or names nothing (a token of PS_PTR_TOKEN_MAX bytes or more
 * included). "" is the whole document. */
json_t *ps_json_pointer(json_t *doc, const char *ptr);
/* ps_filter_from_pb turns a request's filter into its stored JSON form
 * {"headers":{name:value},"payload":[{"pointer":p,"equals":v}]} (a new reference). On a bad
 * filter returns NULL and writes the bad field's path and reason to path/why. */
json_t *ps_filter_from_pb(const Sb__Pubsub__Filter *f, char *path, size_t pn, char *why, size_t wn);
/* ps_filter_match tells whether a message (headers as a JSON object, payload as a JSON value)
 * satisfies a stored filter: every header equal, every pointer present and equal. */
bool ps_filter_match(const json_t *filter, const json_t *headers, json_t *payload);

/* schema.c */
/* ps_schema_validate checks payload (JSON text) against the active schema of subject through
 * the registry (registry.ValidateSubject). Returns SB__RPC__CODE__OK when it conforms, else the
 * code the call is answered with (sb_rpc_call_error done): INVALID_ARGUMENT with one violation
 * "payload<pointer>" per error, or for a subject without an active schema; UNAVAILABLE with a
 * retry hint when the registry does not answer. */
int ps_schema_validate(struct sb_rpc_call *call, const char *subject, const char *at,
                       const char *payload);

/* store.c */
extern const struct sb_pg_stmt ps_stmts[];
extern const struct sb_pg_opts ps_pg_opts;
/* ps_ctx returns the process state of a call's service. */
struct ps_state *ps_ctx(struct sb_rpc_call *call);
/* ps_pg returns the connection of a call: the one its worker holds, or one borrowed from the
 * pool (waiting for one), held until the call ends or ps_pool_release. */
struct sb_pg *ps_pg(struct sb_rpc_call *call);
/* pool.c. ps_pool_open opens n connections (prepared with ps_stmts; a database that is down does
 * not fail it); 0 or an sb_err code (the pool must still be closed). ps_pool_hold returns the
 * connection the calling thread holds, borrowing one (and waiting for it) when it holds none;
 * ps_pool_release gives it back (nothing when it holds none). */
int ps_pool_open(struct ps_pool *pool, const char *dsn, size_t n);
void ps_pool_close(struct ps_pool *pool);
struct sb_pg *ps_pool_hold(struct ps_pool *pool);
void ps_pool_release(void);
/* ps_tenant returns the caller's tenant, or NULL (the caller answers UNAUTHENTICATED). */
const char *ps_tenant(struct sb_rpc_call *call);
/* ps_db_error answers a failed statement: UNAVAILABLE with Retry-After for an unreachable
 * database, INTERNAL otherwise (logged with the statement's name). Returns the code. */
int ps_db_error(struct sb_rpc_call *call, const char *what, int rv);
/* ps_invalid answers INVALID_ARGUMENT with one violation on field. */
int ps_invalid(struct sb_rpc_call *call, const char *field, const char *reason);
/* ps_topic_load reads the tenant's topic name into *t (strings in *res, which the caller
 * PQclears). Returns OK, or the answered error (NOT_FOUND when there is none). */
int ps_topic_load(struct sb_rpc_call *call, const char *tenant, const char *name,
                  struct ps_topic *t, PGresult **res);
/* ps_sub_load finds subscription sub ("" = default) of topic_id: its id and strategy into
 * id/strategy (id 24 bytes), and (when push is not NULL) whether it is a push subscription.
 * Returns OK or the answered error. */
int ps_sub_load(struct sb_rpc_call *call, const char *topic_id, const char *sub, char *id,
                enum ps_strategy *strategy, bool *push);
/* ps_dup copies s into the call's arena ("" for NULL); NULL when memory ran out. */
char *ps_dup(struct sb_rpc_call *call, const char *s);
/* ps_raw makes an sb.json.Raw holding text in the call's arena, or NULL. */
Sb__Json__Raw *ps_raw(struct sb_rpc_call *call, const char *text);
/* ps_headers_fill fills a map<string,string> field of a response from a JSON object's text:
 * entries of type entry (the map's generated Entry descriptor) in the call's arena. Returns 0,
 * SB_ENOMEM or SB_EINVAL (text is not an object of strings). */
int ps_headers_fill(struct sb_rpc_call *call, const char *text,
                    const ProtobufCMessageDescriptor *entry, void ***out, size_t *n);

#endif
