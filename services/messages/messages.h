/* messages.h: private header of the messages service.
 *
 * Its one job: conversations, members, messages with a per-conversation seq, read markers and
 * history; every change writes its outbox rows in the same transaction (events.c). Sends are
 * group-committed: RPC workers validate and queue them on their conversation's lane (send.c);
 * each lane's committer thread, with its own connection, commits everything queued on it in one
 * transaction of a few statements (commit.c).
 *
 * Access rule: every query is scoped by the caller's tenant, so another tenant's conversation
 * is NOT_FOUND; a conversation of the caller's tenant of which the caller is not a member is
 * PERMISSION_DENIED.
 */
#ifndef SB_MESSAGES_H
#define SB_MESSAGES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "messages.pb-c.h"
#include "events/messages_events.pb-c.h"
#include "sb_buf.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_service.h"
#include "sb_util_uuid.h"

#define MSG_CONTENT_MAX     65536 /* bytes */
#define MSG_PREVIEW_CHARS   140
#define MSG_TITLE_MAX       256
#define MSG_USER_ID_MAX     128
#define MSG_MEMBERS_MAX     1000
#define MSG_METADATA_MAX    32
#define MSG_META_KEY_MAX    128
#define MSG_META_VALUE_MAX  1024
#define MSG_IDEM_KEY_MAX    255
#define MSG_ATTACH_MAX      10 /* file ids one message may attach */
#define MSG_TOPIC           SB_TOPIC_MESSAGES
#define MSG_EV_CREATED      "io.switchboard.message.created.v1"
#define MSG_EV_CONV_CREATED "io.switchboard.conversation.created.v1"
#define MSG_EV_MEMBERS      "io.switchboard.conversation.members_changed.v1"
#define MSG_EV_READ         "io.switchboard.conversation.read.v1"

struct messages_cfg {
	struct sb_common_cfg common;
	long long batch_max;       /* sends per group-commit transaction */
	long long committers;      /* group-commit lanes, each with its own connection */
	long long commit_delay_us; /* wait before a batch when the last one had several sends */
	long long pg_timeout_ms;   /* statement_timeout of every connection */
	char *files_url;           /* files' RPC (attachments are checked there) */
};

struct msg_batcher;

/* The process state (sb_service_state). */
struct msg_state {
	const struct messages_cfg *cfg;
	struct msg_batcher *batcher;
};

/* The caller, from the envelope's principal. */
struct msg_who {
	const char *tenant;
	const char *user;
};

/* One queued send: filled by the worker, answered by the committer (send.c, commit.c). */
struct msg_send_item {
	struct msg_send_item *next;
	/* input (in the call's arena, valid until answered) */
	const char *tenant, *id, *conv, *sender, *content, *content_type, *metadata_json;
	const char *idem_key, *traceparent;
	const char *attachments; /* file ids joined by commas, or NULL (attach.c) */
	char **att;              /* the same ids, n_att of them */
	size_t n_att;
	/* the deferred RPC (Send answers from the committer thread, msg_send_answer) */
	struct sb_rpc_call *call;
	void *resp;
	int64_t t0_mono_ms, deadline_mono_ms;
	/* output */
	int code;          /* Sb__Rpc__Code */
	const char *error; /* static message for a code other than OK */
	int64_t retry_after_ms;
	bool duplicate; /* an earlier send with this id or key: no write */
	int64_t seq;
	int64_t created_ms;
	char out_id[SB_UUID_STR_LEN + 1];
	char out_conv[SB_UUID_STR_LEN + 1];
};

/* config.c */
extern const struct sb_cfg_key messages_config[];
extern const struct sb_service_def messages_service;
/* Generated from migrations/ by cmake/sb.cmake. */
extern const struct sb_migration messages_migrations[];

/* service.c */
/* msg_service_start opens the committer's connection and starts it; the start hook. */
int msg_service_start(struct sb_service *svc);
/* msg_service_stop stops the committer (answering what is queued) and frees the state. */
void msg_service_stop(struct sb_service *svc);
/* msg_worker_init opens the worker's own connection into *state (an sb_pg). */
int msg_worker_init(struct sb_service *svc, void **state);
/* msg_worker_fini closes what msg_worker_init opened. */
void msg_worker_fini(struct sb_service *svc, void *state);
/* msg_open_pg opens a connection with the service's statement table and statement_timeout.
 * The caller closes *out with sb_pg_close. */
int msg_open_pg(const struct messages_cfg *cfg, struct sb_pg **out);

/* rpc.c */
extern const struct sb_rpc_method messages_methods[];
/* msg_who_get sets *who from the call's principal. Returns OK, or UNAUTHENTICATED described
 * on the call when there is no principal with a user and a tenant. */
int msg_who_get(struct sb_rpc_call *call, struct msg_who *who);
/* msg_db_error answers a failed database call: UNAVAILABLE with retry_after for SB_EUNAVAIL
 * (and a timeout), INTERNAL otherwise. Returns the code. */
int msg_db_error(struct sb_rpc_call *call, struct sb_pg *pg, int rv);
/* msg_db_abort is msg_db_error followed by a rollback of the worker's transaction. */
int msg_db_abort(struct sb_rpc_call *call, struct sb_pg *pg, int rv);
/* msg_pg returns the worker's connection. */
struct sb_pg *msg_pg(struct sb_rpc_call *call);
/* msg_access checks that conversation conv exists in who's tenant (else NOT_FOUND) and that
 * who is a member (else PERMISSION_DENIED); *last_seq gets its last_seq when not NULL. Returns
 * an Sb__Rpc__Code described on the call. Runs inside or outside a transaction. */
int msg_access(struct sb_rpc_call *call, const struct msg_who *who, const char *conv,
               int64_t *last_seq);

/* validate.c: each adds one violation per bad field to the call and returns false. */
bool msg_valid_uuid(struct sb_rpc_call *call, const char *field, const char *s);
bool msg_valid_user_id(struct sb_rpc_call *call, const char *field, const char *s);
bool msg_valid_content(struct sb_rpc_call *call, const char *s);
/* msg_content_type returns the allowed content type for s ("" means text/plain), or NULL
 * after adding a violation. */
const char *msg_content_type(struct sb_rpc_call *call, const char *s);
bool msg_valid_limit(struct sb_rpc_call *call, const char *field, int32_t v, int32_t max);
/* msg_utf8_valid tells whether s (n bytes) is well-formed UTF-8 without NUL. */
bool msg_utf8_valid(const char *s, size_t n);
/* msg_invalid answers INVALID_ARGUMENT after violations were added. */
int msg_invalid(struct sb_rpc_call *call);

/* store.c */
extern const struct sb_pg_stmt msg_stmts[];
/* msg_arr_add appends one element (NULL for SQL NULL) to a PostgreSQL array literal being
 * built in b ("{" is written before the first element); msg_arr_end closes it ("{}" if
 * empty). Return 0 or SB_ENOMEM. */
int msg_arr_add(struct sb_buf *b, const char *s);
int msg_arr_addll(struct sb_buf *b, long long v);
int msg_arr_end(struct sb_buf *b);
/* msg_time_str formats epoch milliseconds as RFC 3339 in the call's arena ("" on error). */
char *msg_time_str(struct sb_rpc_call *call, int64_t ms);
/* msg_col returns column c of row r of res copied into the call's arena. */
char *msg_col(struct sb_rpc_call *call, const PGresult *res, int r, int c);
int64_t msg_col_ll(const PGresult *res, int r, int c);
/* msg_conv_row fills conv from row r of a result of MSG_CONV_COLS columns. */
int msg_conv_row(struct sb_rpc_call *call, const PGresult *res, int r,
                 Sb__Messages__Conversation *conv);
/* msg_conv_load fills conv (with its members) as seen by user. Returns an sb_err:
 * SB_ENOTFOUND when the conversation is not in the tenant. */
int msg_conv_load(struct sb_rpc_call *call, struct sb_pg *pg, const struct msg_who *who,
                  const char *conv_id, Sb__Messages__Conversation *conv);
/* msg_metadata_parse fills the map entries of a message from its JSON text. */
int msg_metadata_parse(struct sb_rpc_call *call, const char *json,
                       Sb__Messages__Message__MetadataEntry ***out, size_t *n);

/* events.c */
/* One outbox row about conversation conv of tenant. */
struct msg_event {
	const char *tenant;
	const char *conv;
	const char *type;    /* MSG_EV_* */
	const char *subject; /* message id, or NULL */
	const ProtobufCMessage *payload;
	const char *traceparent; /* "" or NULL: none */
};
/* The text parameters of one statement: each a PostgreSQL array literal (or a scalar) built
 * in a[i], p[i] pointing at it. msg_params_free frees the arrays. */
#define MSG_PARAMS_MAX 12
struct msg_params {
	struct sb_buf a[MSG_PARAMS_MAX];
	const char *p[MSG_PARAMS_MAX];
};
void msg_params_free(struct msg_params *mp);
/* msg_params_end closes the first n arrays and points p[0..n) at them. 0 or SB_ENOMEM. */
int msg_params_end(struct msg_params *mp, int n);

/* msg_events_params builds the parameters of the prepared statement "outbox_insert" for n
 * events (one outbox row each). Returns 0 or SB_ENOMEM (mp is to be freed either way). */
int msg_events_params(const struct msg_event *ev, size_t n, struct msg_params *mp);
/* msg_events_insert writes n outbox rows in one statement, then NOTIFY sb_outbox, on pg inside
 * the caller's transaction (one round trip). Returns 0 or an sb_err. */
int msg_events_insert(struct sb_pg *pg, const struct msg_event *ev, size_t n);

/* conversations.c */
int msg_rpc_create_conversation(struct sb_rpc_call *call, const void *req, void *resp);
int msg_rpc_get_conversation(struct sb_rpc_call *call, const void *req, void *resp);
int msg_rpc_list_conversations(struct sb_rpc_call *call, const void *req, void *resp);

/* members.c */
int msg_rpc_add_members(struct sb_rpc_call *call, const void *req, void *resp);
int msg_rpc_remove_member(struct sb_rpc_call *call, const void *req, void *resp);
int msg_rpc_check_member(struct sb_rpc_call *call, const void *req, void *resp);
int msg_rpc_list_memberships(struct sb_rpc_call *call, const void *req, void *resp);

/* send.c */
/* msg_batcher_start starts n committer lanes; lane i owns pgs[i] from then on, whatever the
 * outcome (closed by msg_batcher_stop, or here on failure). Returns 0 and *out, or an sb_err. */
int msg_batcher_start(struct sb_pg **pgs, size_t n, int batch_max, int64_t delay_us,
                      struct msg_batcher **out);
/* msg_lane_of is the lane (0..n-1) of a conversation: a hash of tenant and conversation id. */
size_t msg_lane_of(const char *tenant, const char *conv, size_t n);
/* msg_batcher_stop answers every queued send UNAVAILABLE, stops the threads, frees b. */
void msg_batcher_stop(struct msg_batcher *b);
/* msg_batcher_submit queues it (it lives in its call's arena) and returns at once; the lane's
 * committer answers it with msg_send_answer after COMMIT, or UNAVAILABLE without a write when
 * its deadline_mono_ms (sb_time_mono_ms) passed while it was queued or the lane stops. */
void msg_batcher_submit(struct msg_batcher *b, struct msg_send_item *it);
/* msg_send_answer finishes the deferred Send of it (any thread, once). */
void msg_send_answer(struct msg_batcher *b, struct msg_send_item *it);
int msg_rpc_send(struct sb_rpc_call *call, const void *req, void *resp);

/* commit.c */
/* msg_commit_batch commits items (all queued sends) in one transaction and answers each one;
 * a batch failing for one bad row is committed one send at a time. */
void msg_commit_batch(struct sb_pg *pg, struct msg_send_item **items, size_t n);

/* history.c */
int msg_rpc_list_messages(struct sb_rpc_call *call, const void *req, void *resp);

/* attach.c */
/* msg_attach_parse validates req's attachments (at most MSG_ATTACH_MAX UUIDs, no repeats) into
 * it (in the call's arena). Returns 0, SB_EINVAL after adding violations, or SB_ENOMEM. */
int msg_attach_parse(struct sb_rpc_call *call, const Sb__Messages__SendRequest *req,
                     struct msg_send_item *it);
/* msg_attach_check asks files.CheckAttachments about it's attachments without blocking; the
 * answer queues it on b or answers the call (INVALID_ARGUMENT naming each refused id).
 * Returns SB_RPC_DEFER, or a code described on the call when the request could not leave. */
int msg_attach_check(struct sb_rpc_call *call, struct msg_batcher *b, struct msg_send_item *it);
/* msg_attach_split splits the comma-joined ids of a stored message into the call's arena. */
int msg_attach_split(struct sb_rpc_call *call, const char *joined, char ***out, size_t *n);
int msg_rpc_can_read_attachment(struct sb_rpc_call *call, const void *req, void *resp);
/* read.c */
int msg_rpc_mark_read(struct sb_rpc_call *call, const void *req, void *resp);

#endif
