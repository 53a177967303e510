/* realtime.h: private header of the realtime service.
 *
 * Its one job: WebSocket edge for browsers: auth, subscriptions, fan-out, recovery from seq.
 *
 * State: everything the process holds lives in one struct rt (below), made by the start hook
 * (edge.c) and handed to whatever needs it, directly or through a connection (c->rt); the
 * bottom files (map, frame, recover, subs, timer, inbox, loop) know nothing of it.
 *
 * Threads: one lws service thread owns every connection, channel, deadline and frame (edge.c,
 * conn.c, sub.c, timer.c); the Redis subscriber thread (pubsub.c), the JWKS fetcher (authn.c)
 * and nng's RPC callback threads hand their results to it through one queue and
 * lws_cancel_service (inbox.c). Nothing on the lws thread blocks. docs/realtime.md describes
 * the protocol and the Redis channels.
 */
#ifndef SB_REALTIME_H
#define SB_REALTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "sb_jwt.h"
#include "sb_metrics.h"
#include "sb_names.h"
#include "sb_service.h"
#include "sb_service_authn.h"

struct realtime_cfg {
	struct sb_common_cfg common;
	char *messages_url;
	char *auth_url;
	char *notifier_url;
	char *ws_addr;
	long long ws_port;
	char *allowed_origins;
	char *issuer;
	char *audience;
	long long leeway_s;
	long long ping_interval_ms;
	long long pong_timeout_ms;
	long long auth_timeout_ms;
	long long max_connections;
	long long max_conn_per_user;
	long long send_queue_bytes;
	long long max_frame_bytes;
	long long recovery_max_gap;
	long long member_cache_ms;
	long long jwks_refresh_ms;
};

/* config.c */
extern const struct sb_cfg_key realtime_config[];
extern const struct sb_service_def realtime_service;

/* Close codes (docs/realtime.md). */
enum {
	RT_CLOSE_TOO_BIG = 1009,       /* a frame over SB_WS_MAX_FRAME_BYTES */
	RT_CLOSE_GOING_AWAY = 1001,    /* the instance shuts down: reconnect with since_seq */
	RT_CLOSE_POLICY = 1008,        /* no pong in time */
	RT_CLOSE_UNAUTHORIZED = 4401,  /* bad, missing or expired token */
	RT_CLOSE_TOO_MANY = 4429,      /* per-user connection limit */
	RT_CLOSE_SLOW_CONSUMER = 4008, /* send queue over its bound: reconnect with since_seq */
};

#define RT_ID_MAX   64 /* conversation and user ids, including the NUL */
#define RT_CHAN_MAX (RT_ID_MAX + 8)

/* --- map.c: a string-keyed hash map (lws thread or one owner thread) -------------------- */
struct rt_map_ent {
	struct rt_map_ent *next;
	void *val;
	char key[]; /* NUL-terminated */
};
struct rt_map {
	struct rt_map_ent **slots;
	size_t nslots, count;
};
/* rt_map_get returns the value stored under key, or NULL. */
void *rt_map_get(const struct rt_map *m, const char *key);
/* rt_map_put stores val (not NULL) under key (copied), replacing any value. Returns 0 or
 * SB_ENOMEM. The map never frees values. */
int rt_map_put(struct rt_map *m, const char *key, void *val);
/* rt_map_del removes key and returns its value, or NULL when absent. */
void *rt_map_del(struct rt_map *m, const char *key);
/* rt_map_each calls fn(key, val, arg) for every entry; fn must not change the map. */
void rt_map_each(const struct rt_map *m, void (*fn)(const char *key, void *val, void *arg),
                 void *arg);
/* rt_map_free frees the map's own memory (not the values); m may be reused after. */
void rt_map_free(struct rt_map *m);

/* --- frame.c: frames as written to sockets, Redis messages and client frames parsed ------ */

/* One encoded server frame, shared by every local recipient (refcounted, lws thread only
 * once published). buf has LWS_PRE bytes of headroom before the JSON text. */
struct rt_frame {
	int refs;
	int64_t seq;      /* message seq for message.created, else 0 */
	int64_t event_ms; /* when the event was created (Unix ms); 0 or less: unknown */
	char type[32];    /* the frame's "type" */
	char conv[RT_ID_MAX];
	char sender[RT_ID_MAX];                   /* message.created: message.sender_id */
	char traceparent[SB_TRACEPARENT_LEN + 1]; /* the notifier's span, "" when none */
	size_t len;                               /* bytes of JSON text at rt_frame_text */
	unsigned char buf[];
};
/* rt_frame_new copies len bytes of JSON text into a new frame with one reference, seq and
 * event_ms as given and the metadata fields empty. Returns NULL on ENOMEM. */
struct rt_frame *rt_frame_new(const char *text, size_t len, int64_t seq, int64_t event_ms);
/* rt_frame_text returns the frame's JSON text (len bytes, NUL-terminated). */
char *rt_frame_text(struct rt_frame *f);
/* rt_frame_ref adds a reference and returns f. */
struct rt_frame *rt_frame_ref(struct rt_frame *f);
/* rt_frame_unref drops a reference; the last frees f. NULL is ignored. */
void rt_frame_unref(struct rt_frame *f);

/* One Redis message of the notifier contract, "<seq> <event_ms>\n<frame-json>" (the notifier
 * writes the two integers with "%lld"), split but not otherwise checked. */
/* rt_frame_parse_pubsub makes a frame from one Redis message (sb_rtframe_split) whose JSON
 * is an object with a string "type", and fills type, conv and sender from it. Returns 0 and
 * *out (one reference, caller's), SB_EPROTO for a message that breaks the contract, or
 * SB_ENOMEM. */
int rt_frame_parse_pubsub(const char *msg, size_t len, struct rt_frame **out);

enum rt_cmd_type {
	RT_CMD_AUTH = 1,
	RT_CMD_SUBSCRIBE,
	RT_CMD_UNSUBSCRIBE,
	RT_CMD_READ,
	RT_CMD_REFRESH,
	RT_CMD_PING,
	RT_CMD_COUNT /* not a command: one past the last */
};
/* A client frame, checked. */
struct rt_cmd {
	enum rt_cmd_type type;
	char conv[RT_ID_MAX];
	int64_t seq;   /* since_seq (subscribe; -1 when absent) or up_to_seq (read) */
	char *token;   /* auth, refresh: owned, wiped and freed by rt_cmd_clear */
	char *req_id;  /* optional "id" echoed in replies; owned */
	char err[128]; /* why the frame was refused: valid UTF-8 */
	const char *code;
};
/* rt_cmd_parse checks one client text frame (len bytes, any content) and fills *cmd. Returns
 * 0, or SB_EPROTO with cmd->code ("bad_frame", "unknown_type", "invalid_argument") and cmd->err
 * set, or SB_ENOMEM. Any "token" string of the frame is wiped from the parser's copy before it
 * is freed. Call rt_cmd_clear afterwards in every case. */
int rt_cmd_parse(const char *text, size_t len, struct rt_cmd *cmd);
/* rt_cmd_clear wipes and frees what cmd owns. */
void rt_cmd_clear(struct rt_cmd *cmd);
/* rt_id_valid tells whether s is a usable id: 1..63 of [A-Za-z0-9_-]. */
bool rt_id_valid(const char *s, size_t len);
/* rt_frame_error encodes {"type":"error","code","message"[,"conversation_id"]}; bytes of the
 * strings that are not valid UTF-8 become U+FFFD, so the frame is valid whatever they hold.
 * NULL on ENOMEM. */
struct rt_frame *rt_frame_error(const char *code, const char *message, const char *conv);
/* rt_frame_subscribed encodes {"type":"subscribed","conversation_id","recovered"}. */
struct rt_frame *rt_frame_subscribed(const char *conv, bool recovered, int64_t last_seq);
/* rt_frame_simple encodes {"type":type}, plus "id" when req_id is not NULL. */
struct rt_frame *rt_frame_simple(const char *type, const char *req_id);

/* --- recover.c: the gap-free merge of history and buffered live frames (pure) ------------- */
/* A subscription's delivery cursor: every frame with seq <= last has been sent. */
struct rt_cursor {
	int64_t last;
	struct rt_frame **pending; /* live frames held while history is fetched */
	size_t npending, cappending;
	bool recovering;
};
/* rt_cursor_live decides what to do with a live frame: returns 1 when it must be sent now
 * (the cursor moves to its seq), 0 when it is a duplicate (seq <= last) to drop, 2 when it
 * was held (a reference taken) because recovery is in progress, or SB_ENOMEM. Frames with seq
 * 0 (not messages) are always sent, or held while recovering. */
int rt_cursor_live(struct rt_cursor *c, struct rt_frame *f);
/* rt_cursor_history tells whether a history item with seq must be sent (seq > last) and then
 * moves the cursor to it. */
bool rt_cursor_history(struct rt_cursor *c, int64_t seq);
/* rt_cursor_drain ends recovery: calls emit(f, arg) for each held frame still due, in the
 * order they arrived (duplicates of history dropped), releases every held reference. */
void rt_cursor_drain(struct rt_cursor *c, void (*emit)(struct rt_frame *f, void *arg), void *arg);
/* rt_cursor_clear releases held frames without sending them. */
void rt_cursor_clear(struct rt_cursor *c);

/* --- subs.c: channels, reference counted across local subscribers (lws thread) ----------- */
struct rt_sub; /* one connection's subscription to one channel */
struct rt_chan {
	char name[RT_CHAN_MAX];
	struct rt_sub **members;
	size_t n, cap;
	bool active; /* Redis confirmed the SUBSCRIBE */
};
struct rt_subs {
	struct rt_map chans;
	/* called when a channel gains its first member (subscribe) or loses its last */
	void (*redis_op)(bool subscribe, const char *chan, void *arg);
	void *arg;
};
/* rt_subs_join adds member to channel name (created on first use, which asks redis_op to
 * SUBSCRIBE). *idx receives the member's slot for rt_subs_leave. Returns the channel or NULL
 * on ENOMEM. */
struct rt_chan *rt_subs_join(struct rt_subs *s, const char *name, struct rt_sub *member,
                             size_t *idx);
/* rt_subs_leave removes the member at *idx of chan (moving the last member there: its own
 * index is updated through fix_idx(member, new_idx)); the last member leaving frees chan and
 * asks redis_op to UNSUBSCRIBE. */
void rt_subs_leave(struct rt_subs *s, struct rt_chan *chan, size_t idx,
                   void (*fix_idx)(struct rt_sub *moved, size_t new_idx));
/* rt_subs_find returns the channel called name, or NULL. */
struct rt_chan *rt_subs_find(struct rt_subs *s, const char *name);
/* rt_subs_free frees every channel (members are the caller's). */
void rt_subs_free(struct rt_subs *s);

/* --- timer.c: deadlines in one binary min-heap (depends on nothing) ---------------------- */
/* One deadline, embedded in what it belongs to (a connection). Zeroed: not set. */
struct rt_timer {
	int64_t at; /* monotonic ms, while idx != 0 */
	size_t idx; /* 1 + slot in the heap, 0 when not set */
};
/* The heap of one thread. fire(tm, arg) runs for each deadline that has come, tm already unset
 * (fire may set it again, or set and cancel others); arm(at_ms, arg), when not NULL, is told
 * each time the earliest deadline changes (-1: none left): it moves the one real timer behind
 * the heap, which calls rt_timers_run when it goes off. */
struct rt_timers {
	struct rt_timer **heap; /* heap[i]->idx == i + 1 */
	size_t n, cap;
	int64_t armed; /* earliest deadline last handed to arm, -1 when none */
	bool running;  /* inside rt_timers_run: arm is told once, at its end */
	void (*fire)(struct rt_timer *tm, void *arg);
	void (*arm)(int64_t at_ms, void *arg);
	void *arg;
};
/* rt_timers_init makes t an empty heap with these callbacks (arm may be NULL). */
void rt_timers_init(struct rt_timers *t, void (*fire)(struct rt_timer *tm, void *arg),
                    void (*arm)(int64_t at_ms, void *arg), void *arg);
/* rt_timer_set makes tm due at at_ms (monotonic ms), replacing its deadline if it had one.
 * Returns 0, or SB_ENOMEM and tm is left unset. */
int rt_timer_set(struct rt_timers *t, struct rt_timer *tm, int64_t at_ms);
/* rt_timer_cancel unsets tm (no-op when not set); call it before tm's memory is freed. */
void rt_timer_cancel(struct rt_timers *t, struct rt_timer *tm);
/* rt_timers_next returns the earliest deadline set, or -1 when none. */
int64_t rt_timers_next(const struct rt_timers *t);
/* rt_timers_run fires, earliest first, every deadline at or before now_ms (one set again by its
 * fire callback to a time still <= now_ms fires again), then tells arm the next deadline. Call
 * it when the real timer went off (it counts as no longer scheduled). */
void rt_timers_run(struct rt_timers *t, int64_t now_ms);
/* rt_timers_free frees the heap; every deadline must be cancelled or freed with it. */
void rt_timers_free(struct rt_timers *t);

/* --- inbox.c: other threads → lws thread ------------------------------------------------- */
enum rt_ev_kind {
	RT_EV_FRAME = 1, /* frame published on chan */
	RT_EV_SUBACK,    /* chan is subscribed in Redis */
	RT_EV_RESYNC,    /* the Redis connection was re-made: frames may have been lost */
	RT_EV_RPC,       /* an RPC completed */
};
struct rt_ev {
	struct rt_ev *next;
	enum rt_ev_kind kind;
	char chan[RT_CHAN_MAX];
	struct rt_frame *frame;
	void (*rpc_done)(struct rt_ev *ev); /* RT_EV_RPC: runs on the lws thread */
	void *ctx;
	struct sb_rpc_result res;
};
/* A FIFO of events from any thread to the lws thread, with its wake-up. */
struct rt_inbox {
	pthread_mutex_t mu;
	struct rt_ev *head, *tail;
	struct lws_context *ctx; /* woken on post; NULL while closed */
};
/* rt_inbox_init makes in empty and closed. */
void rt_inbox_init(struct rt_inbox *in);
/* rt_inbox_post hands ev (owned by the inbox from now on) to the lws thread and wakes it
 * (when the inbox is open: events posted before or after are taken by rt_inbox_take). Any
 * thread. */
void rt_inbox_post(struct rt_inbox *in, struct rt_ev *ev);
/* rt_inbox_open makes rt_inbox_post wake ctx's service thread (lws_cancel_service). */
void rt_inbox_open(struct rt_inbox *in, struct lws_context *ctx);
/* rt_inbox_close stops the wake-ups; call it before ctx is destroyed. Once it returns, no
 * thread is inside lws_cancel_service(ctx). */
void rt_inbox_close(struct rt_inbox *in);
/* rt_inbox_take returns every posted event in order (a list through next), or NULL. */
struct rt_ev *rt_inbox_take(struct rt_inbox *in);

/* --- pubsub.c: the Redis subscriber thread ---------------------------------------------- */
struct rt_pubsub;
/* rt_pubsub_start connects to url in a thread of its own (retrying with backoff). Frames and
 * subscription confirmations are posted to inbox; messages that break the contract are dropped
 * and counted in rejected. Both must outlive rt_pubsub_stop. Returns 0, SB_EINVAL, SB_ENOMEM or
 * SB_EIO. */
int rt_pubsub_start(const char *url, struct rt_inbox *inbox, struct sb_series *rejected,
                    struct rt_pubsub **out);
/* rt_pubsub_request queues SUBSCRIBE (true) or UNSUBSCRIBE of chan; never blocks. */
int rt_pubsub_request(struct rt_pubsub *ps, bool subscribe, const char *chan);
/* rt_pubsub_connected tells whether the subscriber connection is up (readiness). */
bool rt_pubsub_connected(struct rt_pubsub *ps);
/* rt_pubsub_stop stops the thread and frees ps; NULL is ignored. */
void rt_pubsub_stop(struct rt_pubsub *ps);

/* Access tokens: sb_service_authn (the runtime's JWKS fetcher thread and verifier). */

/* --- delivered.c: notifier.Delivered batches (lws thread; replies on nng threads) -------- */
#define RT_DELIVERED_MAX 1000
struct rt_delivered {
	struct sb_rpc_client *notifier; /* NULL: reports are dropped */
	char conv[RT_DELIVERED_MAX][RT_ID_MAX], user[RT_DELIVERED_MAX][RT_ID_MAX],
	    sender[RT_DELIVERED_MAX][RT_ID_MAX];
	int64_t seq[RT_DELIVERED_MAX];
	size_t n;
	/* shared with the reply callbacks */
	atomic_int inflight;
	atomic_llong failed, skipped, logged_ms;
};
/* rt_delivered_init makes d an empty batch reported to notifier (may be NULL). */
void rt_delivered_init(struct rt_delivered *d, struct sb_rpc_client *notifier);
/* rt_delivered_add records that a message.created frame reached user's socket. */
void rt_delivered_add(struct rt_delivered *d, const struct rt_frame *f, const char *user);
/* rt_delivered_flush sends the batch (timer and full batch). */
void rt_delivered_flush(struct rt_delivered *d);

/* --- loop.c: the lws service thread's event loop (libev on epoll) ----------------------- */
struct rt_loop;
/* rt_loop_new creates the loop (epoll backend, or SB_EIO) with its stop watcher; the caller
 * frees it with rt_loop_free. Returns 0, SB_ENOMEM or SB_EIO. */
int rt_loop_new(struct rt_loop **out);
/* rt_loop_foreign returns the loop to give lws in info.foreign_loops (lws does not own it). */
void *rt_loop_foreign(struct rt_loop *l);
/* rt_loop_start runs the loop in a new thread, which becomes the lws service thread. */
int rt_loop_start(struct rt_loop *l);
/* rt_loop_stop makes the loop return and joins its thread (any thread but the loop's; once
 * more is a no-op). Every watcher stays registered: lws's context is destroyed afterwards. */
void rt_loop_stop(struct rt_loop *l);
/* rt_loop_free stops the loop if it runs and frees it; lws's context must be gone. NULL ok. */
void rt_loop_free(struct rt_loop *l);

/* --- the process ------------------------------------------------------------------------ */
struct rt_metrics {
	struct sb_series *active, *limit, *total, *latency, *slow, *rec_ok, *rec_gap, *rec_fail;
	struct sb_series *pubsub_rejected;
	struct sb_metric *refused_m;
};

/* struct rt is all the state of a realtime process: one instance (edge.c), set up by the
 * start hook and torn down by the stop hook in mirrored order. */
struct rt {
	struct sb_service *svc;
	const struct realtime_cfg *cfg;
	struct sb_rpc_client *messages; /* shared and thread-safe (sb_service_upstream) */
	char **origins;                 /* SB_WS_ALLOWED_ORIGINS, split */
	size_t norigins;
	struct rt_metrics m;
	atomic_int calls; /* RPCs to messages whose reply is not handed over yet (stop waits) */

	/* lws thread only (the stopping thread once the loop has stopped) */
	struct lws_context *lws;
	struct rt_loop *loop;          /* the epoll loop lws runs on */
	bool stopping;                 /* lws's context is going: schedule nothing on it */
	lws_sorted_usec_list_t tick;   /* every 50 ms: delivery reports */
	lws_sorted_usec_list_t wake;   /* the one lws timer behind timers */
	struct rt_timers timers;       /* connection deadlines (ping, pong, auth, expiry) */
	struct rt_subs subs;           /* channels and their local subscriptions */
	struct rt_map users;           /* user id -> count of local connections */
	struct rt_map member_cache;    /* "user|conv" -> positive CheckMember (sub.c) */
	struct rt_delivered delivered; /* the delivery report being batched */

	/* shared with other threads, each guarding itself */
	struct rt_inbox inbox; /* → the lws thread */
	struct sb_authn authn; /* JWKS fetcher thread */
	struct rt_pubsub *ps;  /* Redis subscriber thread */
};

/* --- edge.c: the WebSocket server: lws context, handshake checks, start and stop -------- */
int rt_edge_start(struct sb_service *svc);
void rt_edge_stop_svc(struct sb_service *svc);

/* --- conn.c, sub.c: connections and their subscriptions (lws thread) -------------------- */
enum rt_conn_state {
	RT_CONN_AUTHWAIT = 1, /* upgraded without ?token=: waiting for the auth frame */
	RT_CONN_JOINING,      /* authenticated: ListMemberships in flight */
	RT_CONN_OPEN,         /* serving */
	RT_CONN_CLOSING,      /* a close code is set: close at the next writable */
	RT_CONN_CLOSED,       /* lws closed the socket: waiting for in-flight RPCs to drop refs */
};
enum rt_sub_state {
	RT_SUB_CHECKING = 1, /* CheckMember in flight */
	RT_SUB_WAIT_REDIS,   /* joined the channel, waiting for Redis to confirm SUBSCRIBE */
	RT_SUB_HISTORY,      /* ListMessages in flight, live frames held */
	RT_SUB_LIVE,
	RT_SUB_DEAD, /* unsubscribed or connection gone: in-flight RPCs drop their results */
};
/* Keepalive of one connection: a ping is queued (DUE), handed to the socket (FLUSHING while
 * lws still holds part of it), then SENT: the pong timeout counts from there, never from the
 * queueing, so a late loop does not fail a healthy peer. */
enum rt_ping_state {
	RT_PING_IDLE = 0, /* next ping at next_ping_ms */
	RT_PING_DUE,      /* waiting for the socket to be writable */
	RT_PING_FLUSHING, /* written, part of it still buffered by lws */
	RT_PING_SENT,     /* on the wire since ping_sent_ms: pong due within the timeout */
};
struct rt_qent {
	struct rt_qent *next;
	struct rt_frame *f;
};
struct rt_conn {
	struct rt *rt;
	struct lws *wsi; /* NULL once closed */
	int refs;        /* lws's, plus one per RPC in flight */
	enum rt_conn_state state;
	char user[RT_ID_MAX], tenant[RT_ID_MAX];
	char jti[RT_ID_MAX];
	int64_t exp_ms;       /* token expiry (wall clock ms) */
	int64_t connected_ms; /* when the connection was established (wall clock ms) */
	int64_t auth_deadline_ms, next_ping_ms;
	int64_t ping_queued_ms, ping_sent_ms; /* monotonic ms: DUE since, SENT since */
	enum rt_ping_state ping;
	struct rt_timer timer; /* the next deadline, in rt->timers */
	bool counted, resume;
	int close_code;
	char close_reason[64];
	struct rt_qent *qhead, *qtail;
	size_t qbytes;
	char *rx; /* fragments of a message being received */
	size_t rxlen;
	struct rt_sub **subs; /* [0] is the user channel once joined */
	size_t nsubs, capsubs;
};
struct rt_sub {
	int refs; /* the connection's, plus one per RPC in flight, plus fan-out in progress */
	enum rt_sub_state state;
	struct rt_conn *conn;
	struct rt_chan *chan;
	size_t idx;           /* slot in chan->members */
	char conv[RT_ID_MAX]; /* "" for the user channel */
	int64_t since;        /* since_seq asked, -1 when none */
	struct rt_cursor cur;
	bool quiet; /* recovery after a Redis resync: no "subscribed" frame */
};

/* conn.c */
/* rt_conn_send queues f (a reference is taken) for conn; closes a slow consumer. */
void rt_conn_send(struct rt_conn *c, struct rt_frame *f);
/* rt_conn_send_new queues a frame just made (its reference moves to the queue; NULL ok). */
void rt_conn_send_new(struct rt_conn *c, struct rt_frame *f);
/* rt_conn_close asks for conn to be closed with code and reason at the next writable. */
void rt_conn_close(struct rt_conn *c, int code, const char *reason);
/* rt_conn_unref drops a reference; the last frees c (rt_conn_closed must have run). */
void rt_conn_unref(struct rt_conn *c);
/* rt_conn_authenticated runs once the token is verified: limits, user channel, joining. */
void rt_conn_authenticated(struct rt_conn *c, const struct sb_jwt_principal *p);
/* rt_conn_rx handles one complete client frame. */
void rt_conn_rx(struct rt_conn *c, const char *text, size_t len);
/* rt_conn_writable writes the next queued frame; returns -1 to close. */
int rt_conn_writable(struct rt_conn *c);
/* rt_conn_timer checks deadlines and sets the next one. */
void rt_conn_timer(struct rt_conn *c);
/* rt_conn_deadline is rt->timers' fire callback: c's deadline has come (rt_conn_timer). */
void rt_conn_deadline(struct rt_timer *tm, void *arg);
/* rt_conn_pong runs when the peer answered a ping: the next one is due an interval later. */
void rt_conn_pong(struct rt_conn *c);
/* rt_conn_closed releases everything of conn but the struct (in-flight RPCs hold refs). */
void rt_conn_closed(struct rt_conn *c);
/* rt_conn_verify checks a token; 0 or an sb_jwt_reason (counted and logged, never the
 * token). */
int rt_conn_verify(struct rt *rt, const char *token, size_t len, struct sb_jwt_principal *p);

/* sub.c */
/* rt_sub_open subscribes conn to conv (CheckMember first, then recovery from since >= 0). */
void rt_sub_open(struct rt_conn *c, const char *conv, int64_t since, bool checked);
/* rt_sub_find returns conn's subscription to conv, or NULL. */
struct rt_sub *rt_sub_find(struct rt_conn *c, const char *conv);
/* rt_sub_end ends a subscription (leaves its channel) and drops the connection's reference. */
void rt_sub_end(struct rt_sub *s);
/* rt_sub_unref drops a reference taken with s->refs++; the last frees s. */
void rt_sub_unref(struct rt_sub *s);
/* rt_sub_frame delivers a frame published on the subscription's channel. */
void rt_sub_frame(struct rt_sub *s, struct rt_frame *f);
/* rt_sub_suback runs when Redis confirmed the channel: waiting recoveries start. */
void rt_sub_suback(struct rt_chan *chan);
/* rt_sub_resync recovers every live subscription from its cursor (Redis was reconnected). */
void rt_sub_resync(struct rt_conn *c);
/* rt_sub_rpc calls method on messages for conn's principal; done(ev) runs on the lws thread
 * (ev->ctx is ctx), or never when this fails. Returns 0 or an sb_rpc_call_async error. */
int rt_sub_rpc(struct rt_conn *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp, void (*done)(struct rt_ev *ev), void *ctx);

#endif
