/* sb_rpc.h: RPC between services over nng REQ/REP, in the envelope of proto/rpc.proto.
 *
 * Server: a service is a table of struct sb_rpc_method rows (method name, request and response
 * descriptors, handler, flags), written with SB_RPC_ROW. Requests are received on nng contexts
 * of a REP socket and handed to N worker threads, so a handler may block (libpq, hiredis);
 * methods whose row is flagged SB_RPC_INLINE never block and run on the receiving nng thread
 * instead. The runtime unpacks the request, gives the handler an empty response message, packs it
 * on OK, and frees everything after the reply is sent. Handlers put memory they hand back into the
 * call's arena (sb_rpc_call_alloc, sb_rpc_call_strdup), so nothing needs to be freed by them.
 *
 * Client: one REQ socket shared by any number of threads; one nng context per outstanding call.
 * nng's resend timer is disabled (NNG_OPT_REQ_RESENDTIME = infinite), so a request is sent at
 * most once: a reply lost with its connection is reported as UNAVAILABLE, never retried behind
 * the caller's back. Deadlines travel in the envelope; the server refuses work whose deadline
 * has passed.
 *
 * Codes are gRPC's (Sb__Rpc__Code, SB__RPC__CODE__*). */
#ifndef SB_RPC_H
#define SB_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.pb-c.h"
#include "sb_span.h"

#define SB_RPC_DEFAULT_WORKERS    8
#define SB_RPC_SLOTS_PER_WORKER   2            /* nng contexts receiving, per worker thread */
#define SB_RPC_BATCH_METHOD       "rpc.Batch"  /* envelope method of a batch (proto/rpc.proto) */
#define SB_RPC_BATCH_MAX_CALLS    256          /* most calls in one batch */
#define SB_RPC_BATCH_MAX_BYTES    (256u << 10) /* packed calls per batch; larger go alone */
#define SB_RPC_DEFAULT_MAX_MSG    (4u << 20)   /* largest payload accepted, bytes */
#define SB_RPC_DEFAULT_TIMEOUT_MS 10000        /* sb_rpc_meta.timeout_ms <= 0 */
#define SB_RPC_DRAIN_RETRY_MS     1000         /* retry_after_ms sent while draining */
#define SB_RPC_N_CODES            17           /* OK .. UNAUTHENTICATED */
/* Returned by the handler of an inline method that answers later with sb_rpc_call_finish. */
#define SB_RPC_DEFER 1000

struct sb_rpc_call;   /* one request being served */
struct sb_rpc_server; /* REP socket and its workers */
struct sb_rpc_client; /* REQ socket */

/* A handler fills resp (already initialised as an empty message of the row's response type)
 * and returns an Sb__Rpc__Code; for errors it describes them with sb_rpc_call_error /
 * sb_rpc_call_violation first. A negative return (an sb_err) is answered INTERNAL. req and
 * resp belong to the runtime; resp's fields may point into req or into the call's arena (the
 * response is packed before either is freed), never to memory the handler frees. */
typedef int (*sb_rpc_handler)(struct sb_rpc_call *call, const void *req, void *resp);

/* Flags of struct sb_rpc_method. */
/* SB_RPC_INLINE: the handler never blocks (no libpq, no sync hiredis, no sleeping: Health,
 * reads of an in-memory cache, a hand-off to a queue). It runs on the nng thread that received
 * the request, saving the hand-off to a worker thread, with the same envelope checks, deadline,
 * drain, metrics and error replies; there sb_rpc_call_worker_state returns NULL. Only such
 * methods may answer later (SB_RPC_DEFER) and travel in batches (sb_rpc_client_batch). */
#define SB_RPC_INLINE 1u

struct sb_rpc_method {
	const char *name; /* "messages.Send"; NULL ends a table */
	const ProtobufCMessageDescriptor *req;
	const ProtobufCMessageDescriptor *resp;
	sb_rpc_handler fn;
	unsigned flags; /* SB_RPC_INLINE or 0 */
};

/* SB_RPC_ROW(PKG, NAME, REQ, RESP, FN, FLAGS) is the row of method PKG.NAME of the protobuf
 * package sb.PKG: request and response types sb.PKG.REQ and sb.PKG.RESP in their protobuf-c
 * spelling (lower case with underscores), handler FN, flags (SB_RPC_INLINE or 0), e.g.
 *   SB_RPC_ROW(messages, Send, send_request, send_response, msg_rpc_send, SB_RPC_INLINE)
 * is "messages.Send" with sb__messages__send_request__descriptor and its response. A table
 * ends with SB_RPC_END. */
#define SB_RPC_ROW(PKG, NAME, REQ, RESP, FN, FLAGS)                                                \
	{                                                                                          \
		.name = #PKG "." #NAME, .req = &sb__##PKG##__##REQ##__descriptor,                  \
		.resp = &sb__##PKG##__##RESP##__descriptor, .fn = (FN), .flags = (FLAGS)           \
	}
#define SB_RPC_END                                                                                 \
	{                                                                                          \
		.name = NULL                                                                       \
	}

struct sb_rpc_server_opts {
	const char *url;                     /* listen URL: tcp://127.0.0.1:7102, ipc:///... */
	int workers;                         /* threads; 0 = SB_RPC_DEFAULT_WORKERS */
	const struct sb_rpc_method *methods; /* table ended by a NULL name; must outlive server */
	void *ctx;                           /* server context, given to every call */
	/* Optional: runs on each worker thread before it serves; sets *state (e.g. a database
	 * connection). A negative return fails sb_rpc_server_start. */
	int (*worker_init)(void *ctx, void **state);
	/* Optional: runs on each worker thread whose worker_init succeeded, when it stops. */
	void (*worker_fini)(void *ctx, void *state);
	size_t max_msg; /* largest request payload; 0 = SB_RPC_DEFAULT_MAX_MSG */
};

/* sb_rpc_code_name returns the upper-case name of an Sb__Rpc__Code ("NOT_FOUND"); never NULL. */
const char *sb_rpc_code_name(int code);

/* --- server --------------------------------------------------------------------------- */

/* sb_rpc_server_start listens on o->url and starts the workers (each runs worker_init first).
 * On success *out is the server, freed with sb_rpc_server_free. Returns 0, SB_EINVAL (bad
 * options or URL, a row with unknown flags), SB_EIO (cannot listen), SB_ENOMEM, or
 * worker_init's error. */
int sb_rpc_server_start(const struct sb_rpc_server_opts *o, struct sb_rpc_server **out);
/* sb_rpc_server_port returns the TCP port the server listens on (useful with port 0), or -1
 * for other transports. */
int sb_rpc_server_port(const struct sb_rpc_server *srv);
/* sb_rpc_server_drain stops taking new work: requests that arrive from now on are answered
 * UNAVAILABLE with retry_after_ms = SB_RPC_DRAIN_RETRY_MS. It waits until every handler in
 * progress has sent its reply or timeout_ms passes, then closes the socket. Returns 0 when all
 * work finished, SB_ETIMEDOUT when some handler was still running (sb_rpc_server_free then
 * waits for it to return). Call once, from one thread; srv stays owned by the caller. */
int sb_rpc_server_drain(struct sb_rpc_server *srv, int timeout_ms);
/* sb_rpc_server_free closes the socket (if sb_rpc_server_drain did not), waits for the workers
 * to return from their handlers, runs worker_fini on each and frees srv. NULL is allowed. */
void sb_rpc_server_free(struct sb_rpc_server *srv);

/* --- inside a handler: the call ------------------------------------------------------- */

/* sb_rpc_call_method returns the method name; valid during the call. */
const char *sb_rpc_call_method(const struct sb_rpc_call *call);
/* sb_rpc_call_principal returns the caller's principal from the envelope, or NULL. */
const Sb__Rpc__Principal *sb_rpc_call_principal(const struct sb_rpc_call *call);
/* sb_rpc_call_traceparent returns the W3C traceparent to continue from inside the call: the
 * call's server span (a child of the envelope's traceparent, or a new trace), so that work the
 * handler causes (an outbox row, a call to another service) joins the trace below it. "" before
 * the handler runs. */
const char *sb_rpc_call_traceparent(const struct sb_rpc_call *call);
/* sb_rpc_call_request_id returns the request id of the envelope, "" when absent. */
const char *sb_rpc_call_request_id(const struct sb_rpc_call *call);
/* sb_rpc_call_deadline_ms returns the absolute deadline (Unix epoch ms), 0 when none. */
int64_t sb_rpc_call_deadline_ms(const struct sb_rpc_call *call);
/* sb_rpc_call_remaining_ms returns the milliseconds left before the deadline (0 when passed,
 * INT64_MAX when the request has none). */
int64_t sb_rpc_call_remaining_ms(const struct sb_rpc_call *call);
/* sb_rpc_call_worker_state returns what worker_init stored for this worker thread, or NULL. */
void *sb_rpc_call_worker_state(const struct sb_rpc_call *call);
/* sb_rpc_call_server_ctx returns the ctx of the server options. */
void *sb_rpc_call_server_ctx(const struct sb_rpc_call *call);

/* sb_rpc_call_alloc returns n zeroed bytes (max_align_t aligned) that live until the reply has
 * been sent; NULL on ENOMEM. Never free them. */
void *sb_rpc_call_alloc(struct sb_rpc_call *call, size_t n);
/* sb_rpc_call_strdup copies s into the call's arena (NULL s gives ""); NULL on ENOMEM. */
char *sb_rpc_call_strdup(struct sb_rpc_call *call, const char *s);
/* sb_rpc_call_finish answers a call whose handler returned SB_RPC_DEFER, from any thread,
 * exactly once: code and resp as a handler would return and fill them (resp is the response
 * message the handler was given; errors are described with sb_rpc_call_error etc. before).
 * Only handlers of inline methods may defer: the call, its arena, the request and the response
 * stay valid until this returns, and the request's context receives nothing meanwhile (a
 * drain waits for it). A handler that defers must not touch the call after returning unless
 * it owns the answer. */
void sb_rpc_call_finish(struct sb_rpc_call *call, int code);

/* sb_rpc_call_error sets the reply's message (printf format) and returns code, so that a
 * handler can `return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no %s", id);`. */
int sb_rpc_call_error(struct sb_rpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sb_rpc_call_violation adds one field violation to the reply (both strings copied). Returns 0
 * or SB_ENOMEM. */
int sb_rpc_call_violation(struct sb_rpc_call *call, const char *field_path, const char *reason);
/* sb_rpc_call_clear_violations forgets the violations added so far (a handler that checks again
 * with fresher data). */
void sb_rpc_call_clear_violations(struct sb_rpc_call *call);
/* sb_rpc_call_retry_after sets the reply's retry_after_ms (with UNAVAILABLE or
 * RESOURCE_EXHAUSTED). */
void sb_rpc_call_retry_after(struct sb_rpc_call *call, int64_t ms);
/* sb_rpc_call_set_http_status sets, with an OK reply, the 2xx status an HTTP edge answers
 * instead of its route's default (200 for an idempotent replay of a 202 send). Other values
 * clear the hint. */
void sb_rpc_call_set_http_status(struct sb_rpc_call *call, int status);

/* --- client --------------------------------------------------------------------------- */

struct sb_rpc_meta {
	const Sb__Rpc__Principal *principal; /* NULL: none */
	const char *traceparent;             /* NULL: none */
	const char *request_id;              /* NULL: none */
	int64_t timeout_ms;                  /* relative; <= 0 means SB_RPC_DEFAULT_TIMEOUT_MS */
};

struct sb_rpc_result {
	int code;                        /* Sb__Rpc__Code */
	const char *message;             /* never NULL ("" when none) */
	size_t n_violations;             /* from the server's reply */
	Sb__Rpc__Violation **violations; /* n_violations entries */
	int64_t retry_after_ms;
	int http_status;           /* the server's 2xx hint for HTTP edges, or 0 */
	ProtobufCMessage *resp;    /* unpacked with resp_desc when code is OK, else NULL */
	Sb__Rpc__Response *sb_env; /* private: the unpacked envelope the above point into */
};

/* sb_rpc_client_open creates a client for url without waiting for the server (the dial is
 * non-blocking and nng redials by itself after a server restart). On success *out is freed
 * with sb_rpc_client_free. Returns 0, SB_EINVAL (bad URL) or SB_ENOMEM/SB_EIO. */
int sb_rpc_client_open(const char *url, struct sb_rpc_client **out);
/* sb_rpc_client_free closes the socket; outstanding async calls complete with CANCELLED (their
 * callbacks run before this returns). Must not be called from an RPC callback. NULL allowed. */
void sb_rpc_client_free(struct sb_rpc_client *cli);

/* sb_rpc_call sends method(req) and blocks until the reply or the deadline; safe from any
 * thread except an nng callback. On return 0, *res holds the outcome (res->code): the unpacked
 * response on OK, the server's message and violations otherwise. A deadline that passes, also
 * while the server is unreachable, gives DEADLINE_EXCEEDED; a connection lost after the
 * request was sent gives UNAVAILABLE (the request is not resent: it may or may not have run).
 * The caller frees *res with sb_rpc_result_free. Returns SB_EINVAL (bad arguments, method name
 * over 127 bytes), SB_ENOMEM or SB_ECLOSED without filling *res (it is zeroed). */
int sb_rpc_call(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
                struct sb_rpc_result *res);

typedef void (*sb_rpc_done_fn)(struct sb_rpc_result *res, void *arg);

/* sb_rpc_call_async starts the same call without blocking and returns at once; cb(res, arg)
 * then runs exactly once on an nng thread (it must not block). cb owns the contents of *res
 * and frees them with sb_rpc_result_free (copy the struct out to keep them: *res itself is
 * reused after cb returns). req and meta are copied before this returns. Returns 0, or
 * SB_EINVAL/SB_ENOMEM/SB_ECLOSED and then cb never runs. */
int sb_rpc_call_async(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
                      sb_rpc_done_fn cb, void *arg);

/* sb_rpc_client_batch makes async calls of the listed methods (NULL-ended; must outlive cli)
 * travel in batches: several calls in one transport message and one reply (proto/rpc.proto,
 * Batch). While fewer than max_in_flight batches are outstanding a call leaves at once (alone
 * if nothing else waits); otherwise it waits for the next reply, and everything that waited
 * leaves together then. So batches grow with the load and an idle client adds no delay. Each
 * call keeps its own envelope, deadline, outcome and metrics; a batch's reply comes when the
 * last of its calls is answered. Only methods the server runs inline (never blocking) can be
 * batched: others are answered FAILED_PRECONDITION. A call packed larger than
 * SB_RPC_BATCH_MAX_BYTES travels alone. A call still queued when its deadline passes is not
 * sent: it gets DEADLINE_EXCEEDED when the next batch ends. When memory runs out or the client
 * closes while a batch is being sent, its calls' callbacks may run on the calling thread. Call
 * before the first call; max_in_flight 0 turns batching off. Returns 0 or SB_EINVAL. */
int sb_rpc_client_batch(struct sb_rpc_client *cli, const char *const *methods, int max_in_flight);

/* sb_rpc_result_free frees what res holds and zeroes it; a zeroed res is allowed. */
void sb_rpc_result_free(struct sb_rpc_result *res);

/* --- internal to sb_rpc*.c; services never use what follows ------------------------------ */

struct sb_rpc_chunk;
struct sb_rpc_call {
	const Sb__Rpc__Request *env; /* the unpacked envelope */
	const char *method;
	void *srv_ctx;
	void *state;
	struct sb_rpc_chunk *arena; /* newest chunk first; the last one is kept between calls */
	char *message;
	Sb__Rpc__Violation **violations;
	size_t n_violations, cap_violations;
	int64_t retry_after_ms;
	int http_status;
	/* A deferred call (SB_RPC_DEFER): what sb_rpc_call_finish needs; d_batch and d_index
	 * instead of d_slot for a call that came in a batch. */
	void *d_slot;
	void *d_batch;
	size_t d_index;
	ProtobufCMessage *d_req;
	void *d_resp;
	/* The server span of this call (sb_span.h): started before the handler, ended when the
	 * answer is packed (at once, or at sb_rpc_call_finish for a deferred call). */
	struct sb_span span;
	bool span_on;
	char span_tp[SB_TRACEPARENT_LEN + 1]; /* the span's own context, "" before it starts */
};

struct sb_metric;
struct sb_series;

/* sb_rpc_call.c */
int64_t sb__rpc_now_epoch_ms(void);
double sb__rpc_now_mono(void);
void sb__rpc_call_init(struct sb_rpc_call *call, void *srv_ctx, void *state);
void sb__rpc_call_reset(struct sb_rpc_call *call);
void sb__rpc_call_fini(struct sb_rpc_call *call);
/* sb_rpc_metrics.c: series of one method, created on first use and cached here. */
struct sb_rpc_mstats {
	_Atomic(struct sb_series *) duration;
	_Atomic(struct sb_series *) codes[SB_RPC_N_CODES];
};
void sb__rpc_metrics_server(const char *method, struct sb_rpc_mstats *ms, int code, double secs);
void sb__rpc_metrics_client(const char *method, struct sb_rpc_mstats *ms, int code, double secs);
void sb__rpc_metrics_in_flight(int delta);
void sb__rpc_metrics_batch(size_t calls);

#endif
