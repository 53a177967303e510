/* sb_rpc_server.c: the RPC server.
 *
 * The nng side is a set of slots, each one nng context on the REP socket with one aio whose
 * callback runs the state machine RECV → WORK → SEND → RECV and never blocks on anything but
 * an inline handler. The receive callback unpacks the envelope and routes it:
 *   - to the work queue when its method has an ordinary handler (which may block: libpq);
 *     worker threads take requests from it, run the handler and start the reply's send;
 *   - inline, on the callback's own thread, for methods flagged SB_RPC_INLINE (never
 *     blocking) and for requests answered without a handler (malformed envelope, unknown method),
 * so that they cost no thread hand-off at all. A busy worker takes the next request without
 * sleeping; a sleeping worker is woken only when no wake-up already sent covers the queued work
 * (see sb_rpc_server_enqueue). A batch (method SB_RPC_BATCH_METHOD) is served inline too: each of
 * its calls must be of an inline method; each gets its own call object, may defer, and the batch is
 * answered, with one reply holding every call's, when its last call is answered. */
#include "sb_rpc.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_trace.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/tcp/tcp.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_RPC_ENVELOPE_SLACK 65536 /* bytes of envelope allowed beyond max_msg */
#define SB_RPC_DEFER_WAIT_S   30    /* how long free waits for deferred calls */

enum sb_rpc_sstate { SB_RPC_S_RECV, SB_RPC_S_WORK, SB_RPC_S_SEND };

struct sb_rpc_sslot {
	struct sb_rpc_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	enum sb_rpc_sstate state;
	bool counted;              /* in srv->in_flight */
	nng_msg *msg;              /* while queued or worked on */
	struct sb_rpc_sslot *next; /* work queue link */
	/* The routed request (WORK): env owned until served; m NULL for unknown methods. */
	Sb__Rpc__Request *env;
	const struct sb_rpc_method *m;
	struct sb_rpc_mstats *ms;
	double t0;                /* when it was received */
	bool batch;               /* env is an SB_RPC_BATCH_METHOD envelope */
	struct sb_rpc_call icall; /* arena of inline calls; only this slot's callback uses it */
};

/* A batch being served: one call object per request of it. */
struct sb_rpc_bcall {
	struct sb_rpc_call call;
	const struct sb_rpc_method *m; /* NULL when answered without a handler */
	struct sb_rpc_mstats *ms;
	uint8_t *reply; /* the packed Response, once answered: malloc'd, or oom */
	size_t reply_len;
	uint8_t oom[8]; /* a packed RESOURCE_EXHAUSTED Response, when no memory was left */
};

struct sb_rpc_batch {
	struct sb_rpc_sslot *sl;
	atomic_size_t pending; /* calls not yet answered, + 1 while they are being started */
	size_t n;
	struct sb_rpc_bcall calls[];
};

struct sb_rpc_worker {
	struct sb_rpc_server *srv;
	pthread_t thread;
	bool thread_started;
	void *state;
	int init_rc; /* worker_init's result */
	struct sb_rpc_call call;
};

struct sb_rpc_server {
	struct sb_rpc_server_opts o;
	nng_socket sock;
	nng_listener listener;
	int port;
	int n_workers;
	struct sb_rpc_worker *workers;
	int n_slots;
	struct sb_rpc_sslot *slots;
	struct sb_rpc_mstats *mstats; /* one per method row */
	bool *inline_m;               /* one per method row: runs on the nng thread */
	struct sb_rpc_mstats unknown; /* unknown methods and malformed envelopes */
	atomic_bool draining;
	atomic_int in_flight; /* requests taken on and not yet answered */
	pthread_mutex_t mu;   /* guards what follows, and drain's wait */
	pthread_cond_t cv;    /* worker_init done; in_flight reached 0 while draining */
	pthread_cond_t work_cv;
	struct sb_rpc_sslot *work_head, *work_tail;
	int idle;   /* workers waiting on work_cv */
	int wakes;  /* work_cv signals sent whose worker has not yet returned from its wait */
	int queued; /* slots on the work queue */
	bool stopping;
	int inited; /* workers that finished worker_init */
	bool closed;
	_Atomic int64_t warned_at; /* second of the last bad-request warning */
	pthread_rwlock_t gate;     /* readers: context operations; writer: nng_close */
	atomic_bool sock_closed;
};

/* sb_rpc_server_log_ok limits warnings about bad requests (a peer controls how many arrive) to
 * one a second; the metrics still count every one. */
static bool
sb_rpc_server_log_ok(struct sb_rpc_server *srv)
{
	int64_t now = sb__rpc_now_epoch_ms() / 1000, prev = atomic_load(&srv->warned_at);

	return prev != now && atomic_compare_exchange_strong(&srv->warned_at, &prev, now);
}

static const struct sb_rpc_method *
sb_rpc_server_find(struct sb_rpc_server *srv, const char *name, struct sb_rpc_mstats **ms)
{
	for (size_t i = 0; srv->o.methods[i].name != NULL; i++) {
		if (strcmp(srv->o.methods[i].name, name) == 0) {
			*ms = &srv->mstats[i];
			return &srv->o.methods[i];
		}
	}
	*ms = &srv->unknown;
	return NULL;
}

/* sb_rpc_server_pack checks a handler's code and, when OK, packs resp into *out (call arena).
 * Returns the code to answer. */
static int
sb_rpc_server_pack(struct sb_rpc_call *call, const struct sb_rpc_method *m, int code,
                   const void *resp, ProtobufCBinaryData *out)
{
	if (code < 0) {
		SB_ERROR("rpc %s: handler failed: %s", m->name, sb_strerror(code));
		code = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "internal error");
	} else if (code >= SB_RPC_N_CODES) {
		SB_ERROR("rpc %s: handler returned invalid code %d", m->name, code);
		code = sb_rpc_call_error(call, SB__RPC__CODE__UNKNOWN, "invalid status code");
	}
	if (call->span_on) {
		call->span_on = false;
		if (code != SB__RPC__CODE__OK)
			sb_span_fail(&call->span,
			             call->message ? call->message : sb_rpc_code_name(code));
		sb_span_attr(&call->span, "rpc.code", sb_rpc_code_name(code));
		sb_span_end(&call->span);
	}
	if (code == SB__RPC__CODE__OK) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		if ((out->data = sb_rpc_call_alloc(call, n)) == NULL)
			code = sb_rpc_call_error(call, SB__RPC__CODE__RESOURCE_EXHAUSTED,
			                         "out of memory");
		else
			out->len = protobuf_c_message_pack(resp, out->data);
	}
	return code;
}

/* sb_rpc_server_invoke runs the handler of m on the call's payload and packs its response into
 * *out (call arena). Returns the code, or SB_RPC_DEFER when an inline handler deferred its
 * answer (the request and response then live on in the call). */
static int
sb_rpc_server_invoke(struct sb_rpc_server *srv, struct sb_rpc_call *call,
                     const struct sb_rpc_method *m, ProtobufCBinaryData *out)
{
	const Sb__Rpc__Request *env = call->env;
	ProtobufCMessage *req;
	void *resp;
	struct sb_trace_ctx tc;
	char trace[SB_TRACE_ID_HEX + 1] = "";
	int code;

	if (env->payload.len > srv->o.max_msg)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "payload of %zu bytes exceeds the limit of %zu",
		                         env->payload.len, srv->o.max_msg);
	req = protobuf_c_message_unpack(m->req, NULL, env->payload.len, env->payload.data);
	if (req == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "payload is not a valid %s", m->req->name);
	if ((resp = sb_rpc_call_alloc(call, m->resp->sizeof_message)) == NULL) {
		protobuf_c_message_free_unpacked(req, NULL);
		return sb_rpc_call_error(call, SB__RPC__CODE__RESOURCE_EXHAUSTED, "out of memory");
	}
	protobuf_c_message_init(m->resp, resp);

	if (sb_trace_parse(env->traceparent, &tc) == 0)
		sb_trace_id_hex(&tc, trace);
	sb_log_set_context(trace[0] ? trace : NULL, env->request_id);
	/* Set before the handler runs: a deferring handler hands the call to another thread,
	 * which may finish it before the handler has returned. Nothing here touches the call
	 * after a deferral. */
	sb_span_start_tp(&call->span, m->name, SB_SPAN_SERVER, env->traceparent);
	sb_span_attr(&call->span, "rpc.system", "switchboard-nng");
	sb_span_traceparent(&call->span, call->span_tp);
	call->span_on = true;
	bool may_defer = srv->inline_m[m - srv->o.methods];
	if (may_defer) {
		call->d_req = req;
		call->d_resp = resp;
	}
	code = m->fn(call, req, resp);
	sb_log_set_context(NULL, NULL);
	if (code == SB_RPC_DEFER && may_defer)
		return SB_RPC_DEFER;
	call->d_req = NULL;
	call->d_resp = NULL;
	if (code == SB_RPC_DEFER) {
		SB_ERROR("rpc %s: only inline methods may defer their answer", m->name);
		code = SB_EINVAL;
	}
	/* Packed before req is freed: resp may point into req. */
	code = sb_rpc_server_pack(call, m, code, resp, out);
	protobuf_c_message_free_unpacked(req, NULL);
	return code;
}

/* sb_rpc_server_response fills *r (pointing into call and payload) with a call's answer. */
static void
sb_rpc_server_response(const struct sb_rpc_call *call, int code, ProtobufCBinaryData payload,
                       Sb__Rpc__Response *r)
{
	sb__rpc__response__init(r);
	r->code = (Sb__Rpc__Code)code;
	r->message = call->message ? call->message : (char *)"";
	r->payload = payload;
	r->n_violations = call->n_violations;
	r->violations = call->violations;
	r->retry_after_ms = call->retry_after_ms;
	r->http_status = call->http_status;
}

/* sb_rpc_server_reply packs the reply into msg (reused, its body replaced). Returns 0 or -1. */
static int
sb_rpc_server_reply(struct sb_rpc_call *call, int code, ProtobufCBinaryData payload, nng_msg *msg)
{
	Sb__Rpc__Response r;
	size_t n;

	sb_rpc_server_response(call, code, payload, &r);
	n = sb__rpc__response__get_packed_size(&r);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, n) != 0)
		return -1;
	sb__rpc__response__pack(&r, nng_msg_body(msg));
	return 0;
}

/* sb_rpc_server_route unpacks the envelope of sl->msg into sl (env, m, ms, t0). Returns true
 * when the request needs a worker thread: a well-formed request for a method whose handler
 * may block. Cheap and non-blocking: runs in the receive callback. */
static bool
sb_rpc_server_route(struct sb_rpc_server *srv, struct sb_rpc_sslot *sl)
{
	Sb__Rpc__Request *env;

	sl->t0 = sb__rpc_now_mono();
	sl->m = NULL;
	sl->ms = &srv->unknown;
	env = sb__rpc__request__unpack(NULL, nng_msg_len(sl->msg), nng_msg_body(sl->msg));
	sl->env = env;
	sl->batch = false;
	if (env == NULL || env->method == NULL || env->method[0] == '\0')
		return false;
	if (strcmp(env->method, SB_RPC_BATCH_METHOD) == 0) {
		sl->batch = true;
		return false;
	}
	if ((sl->m = sb_rpc_server_find(srv, env->method, &sl->ms)) == NULL)
		return false;
	return !srv->inline_m[sl->m - srv->o.methods];
}

/* sb_rpc_server_complete builds the reply of the request routed into sl in sl->msg (reused),
 * records the metrics and frees sl->env. Returns 0, or -1 when no reply could be built. */
static int
sb_rpc_server_complete(struct sb_rpc_server *srv, struct sb_rpc_call *call, struct sb_rpc_sslot *sl,
                       int code, ProtobufCBinaryData payload)
{
	const struct sb_rpc_method *m = sl->m;
	int rv = sb_rpc_server_reply(call, code, payload, sl->msg);

	sb__rpc_metrics_server(m ? m->name : "unknown", sl->ms, code, sb__rpc_now_mono() - sl->t0);
	if (sl->env != NULL)
		sb__rpc__request__free_unpacked(sl->env, NULL);
	sl->env = NULL;
	sl->m = NULL;
	sb__rpc_call_reset(call);
	return rv;
}

static void sb_rpc_sslot_answer(struct sb_rpc_sslot *sl, int rv);

/* sb_rpc_batch_reply packs the batch's answer (an OK Response whose payload is a BatchReply
 * of every call's packed Response) into sl->msg. Returns 0 or -1. */
static int
sb_rpc_batch_reply(struct sb_rpc_batch *b, nng_msg *msg)
{
	Sb__Rpc__BatchReply br = SB__RPC__BATCH_REPLY__INIT;
	Sb__Rpc__Response r = SB__RPC__RESPONSE__INIT;
	ProtobufCBinaryData *parts = calloc(b->n ? b->n : 1, sizeof(*parts));
	uint8_t *packed = NULL;
	size_t n;
	int rv = -1;

	if (parts == NULL)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		parts[i] = (ProtobufCBinaryData){ b->calls[i].reply_len, b->calls[i].reply };
	br.n_responses = b->n;
	br.responses = parts;
	r.code = SB__RPC__CODE__OK;
	r.message = (char *)"";
	r.payload.len = sb__rpc__batch_reply__get_packed_size(&br);
	if ((packed = malloc(r.payload.len ? r.payload.len : 1)) == NULL)
		goto out;
	sb__rpc__batch_reply__pack(&br, packed);
	r.payload.data = packed;
	n = sb__rpc__response__get_packed_size(&r);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, n) != 0)
		goto out;
	sb__rpc__response__pack(&r, nng_msg_body(msg));
	rv = 0;
out:
	free(packed);
	free(parts);
	return rv;
}

/* sb_rpc_batch_release drops one pending count of b; the last one sends the batch's reply on
 * its slot and frees b. */
static void
sb_rpc_batch_release(struct sb_rpc_batch *b)
{
	struct sb_rpc_sslot *sl = b->sl;
	int rv;

	if (atomic_fetch_sub(&b->pending, 1) != 1)
		return;
	rv = sb_rpc_batch_reply(b, sl->msg);
	for (size_t i = 0; i < b->n; i++) {
		if (b->calls[i].reply != b->calls[i].oom)
			free(b->calls[i].reply);
		sb__rpc_call_fini(&b->calls[i].call);
	}
	free(b);
	sb_rpc_sslot_answer(sl, rv);
}

/* sb_rpc_batch_answered records the answer of call i of b (packed into its reply), frees its
 * request envelope and releases it from the batch. */
static void
sb_rpc_batch_answered(struct sb_rpc_batch *b, size_t i, int code, ProtobufCBinaryData payload)
{
	struct sb_rpc_bcall *bc = &b->calls[i];
	struct sb_rpc_call *call = &bc->call;
	Sb__Rpc__Response r;

	sb_rpc_server_response(call, code, payload, &r);
	bc->reply_len = sb__rpc__response__get_packed_size(&r);
	if ((bc->reply = malloc(bc->reply_len ? bc->reply_len : 1)) != NULL) {
		sb__rpc__response__pack(&r, bc->reply);
	} else {
		/* Out of memory: the call is answered RESOURCE_EXHAUSTED (code only, 2 bytes) —
		 * never an empty Response, which would read as OK. */
		Sb__Rpc__Response oom = SB__RPC__RESPONSE__INIT;
		oom.code = SB__RPC__CODE__RESOURCE_EXHAUSTED;
		code = SB__RPC__CODE__RESOURCE_EXHAUSTED;
		bc->reply_len = sb__rpc__response__pack(&oom, bc->oom);
		bc->reply = bc->oom;
	}
	sb__rpc_metrics_server(bc->m ? bc->m->name : "unknown", bc->ms, code,
	                       sb__rpc_now_mono() - b->sl->t0);
	if (call->env != NULL)
		sb__rpc__request__free_unpacked((Sb__Rpc__Request *)call->env, NULL);
	sb__rpc_call_reset(call);
	sb_rpc_batch_release(b);
}

/* sb_rpc_batch_start serves call i of b: the same checks as a lone request, plus that its
 * method runs inline (a batch never waits for a worker thread). */
static void
sb_rpc_batch_start(struct sb_rpc_server *srv, struct sb_rpc_batch *b, size_t i,
                   const ProtobufCBinaryData *packed)
{
	struct sb_rpc_bcall *bc = &b->calls[i];
	struct sb_rpc_call *call = &bc->call;
	ProtobufCBinaryData payload = { 0, NULL };
	Sb__Rpc__Request *env;
	int code;

	bc->ms = &srv->unknown;
	env = sb__rpc__request__unpack(NULL, packed->len, packed->data);
	call->env = env;
	if (env == NULL || env->method == NULL || env->method[0] == '\0') {
		code = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "malformed request envelope in a batch");
	} else if ((bc->m = sb_rpc_server_find(srv, env->method, &bc->ms)) == NULL) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__UNIMPLEMENTED, "unknown method");
		if (sb_rpc_server_log_ok(srv))
			SB_WARN("rpc: unknown method %.64s in a batch", env->method);
	} else if (!srv->inline_m[bc->m - srv->o.methods]) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__FAILED_PRECONDITION,
		                         "method %s cannot be batched", bc->m->name);
	} else if (env->deadline_ms > 0 && env->deadline_ms <= sb__rpc_now_epoch_ms()) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__DEADLINE_EXCEEDED,
		                         "deadline passed before the request was served");
	} else {
		call->method = bc->m->name;
		call->d_batch = b;
		call->d_index = i;
		code = sb_rpc_server_invoke(srv, call, bc->m, &payload);
		if (code == SB_RPC_DEFER)
			return; /* sb_rpc_call_finish answers it, maybe already did */
		call->d_batch = NULL;
	}
	sb_rpc_batch_answered(b, i, code, payload);
}

/* sb_rpc_server_batch serves the batch routed into sl: starts each of its calls and returns
 * 1 (answered later, when its last call is; maybe already) or -1 (sl->msg still the caller's)
 * when the batch cannot be taken on at all. An undecodable batch is answered like a malformed
 * envelope (0). */
static int
sb_rpc_server_batch(struct sb_rpc_server *srv, struct sb_rpc_sslot *sl)
{
	Sb__Rpc__Batch *req = NULL;
	struct sb_rpc_batch *b;

	req = sb__rpc__batch__unpack(NULL, sl->env->payload.len, sl->env->payload.data);
	sb__rpc__request__free_unpacked(sl->env, NULL);
	sl->env = NULL;
	if (req == NULL || req->n_requests == 0 || req->n_requests > SB_RPC_BATCH_MAX_CALLS) {
		if (req != NULL)
			sb__rpc__batch__free_unpacked(req, NULL);
		if (sb_rpc_server_log_ok(srv))
			SB_WARN("rpc: malformed batch (%zu bytes)", nng_msg_len(sl->msg));
		int code = sb_rpc_call_error(&sl->icall, SB__RPC__CODE__INVALID_ARGUMENT,
		                             "malformed batch");
		return sb_rpc_server_complete(srv, &sl->icall, sl, code,
		                              (ProtobufCBinaryData){ 0, NULL });
	}
	b = calloc(1, sizeof(*b) + req->n_requests * sizeof(b->calls[0]));
	if (b == NULL) {
		sb__rpc__batch__free_unpacked(req, NULL);
		return -1;
	}
	b->sl = sl;
	b->n = req->n_requests;
	atomic_init(&b->pending, b->n + 1);
	for (size_t i = 0; i < b->n; i++)
		sb__rpc_call_init(&b->calls[i].call, srv->o.ctx, NULL);
	sb__rpc_metrics_batch(b->n);
	for (size_t i = 0; i < b->n; i++)
		sb_rpc_batch_start(srv, b, i, &req->requests[i]);
	sb__rpc__batch__free_unpacked(req, NULL);
	sb_rpc_batch_release(b); /* sends the reply now if every call was answered */
	return 1;
}

/* sb_rpc_server_serve answers the request routed into sl with call (a worker's, or the slot's
 * own for inline work); sl->msg is reused for the reply and sl->env is freed. Returns 0, -1
 * when no reply could be built (sl->msg is then still the caller's to free), or 1 when the
 * handler deferred its answer (sb_rpc_call_finish answers). */
static int
sb_rpc_server_serve(struct sb_rpc_server *srv, struct sb_rpc_call *call, struct sb_rpc_sslot *sl)
{
	const struct sb_rpc_method *m = sl->m;
	Sb__Rpc__Request *env = sl->env;
	nng_msg *msg = sl->msg;
	ProtobufCBinaryData payload = { 0, NULL };
	int code;

	if (sl->batch)
		return sb_rpc_server_batch(srv, sl);
	call->env = env;
	if (env == NULL || env->method == NULL || env->method[0] == '\0') {
		code = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "malformed request envelope");
		if (sb_rpc_server_log_ok(srv))
			SB_WARN("rpc: malformed request envelope (%zu bytes)", nng_msg_len(msg));
	} else if (m == NULL) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__UNIMPLEMENTED, "unknown method");
		/* The name is the caller's: log at most 64 bytes of it. */
		if (sb_rpc_server_log_ok(srv))
			SB_WARN("rpc: unknown method %.64s", env->method);
	} else if (env->deadline_ms > 0 && env->deadline_ms <= sb__rpc_now_epoch_ms()) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__DEADLINE_EXCEEDED,
		                         "deadline passed before the request was served");
	} else {
		call->method = m->name;
		call->d_slot = sl;
		code = sb_rpc_server_invoke(srv, call, m, &payload);
		if (code == SB_RPC_DEFER)
			return 1; /* sl and call may already be answered and reused: hands off */
		call->d_slot = NULL;
	}
	return sb_rpc_server_complete(srv, call, sl, code, payload);
}

static void
sb_rpc_server_done_one(struct sb_rpc_server *srv)
{
	sb__rpc_metrics_in_flight(-1);
	if (atomic_fetch_sub(&srv->in_flight, 1) == 1 && atomic_load(&srv->draining)) {
		pthread_mutex_lock(&srv->mu);
		pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
	}
}

/* sb_rpc_server_refuse turns msg into an UNAVAILABLE reply while draining; it needs no arena,
 * so it runs in the nng callback. Returns 0 or -1. */
static int
sb_rpc_server_refuse(struct sb_rpc_server *srv, nng_msg *msg)
{
	Sb__Rpc__Response r = SB__RPC__RESPONSE__INIT;
	size_t n;

	r.code = SB__RPC__CODE__UNAVAILABLE;
	r.message = "server is shutting down";
	r.retry_after_ms = SB_RPC_DRAIN_RETRY_MS;
	n = sb__rpc__response__get_packed_size(&r);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, n) != 0)
		return -1;
	sb__rpc__response__pack(&r, nng_msg_body(msg));
	sb__rpc_metrics_server("unknown", &srv->unknown, SB__RPC__CODE__UNAVAILABLE, 0);
	return 0;
}

/* sb_rpc_gate_enter lets one context operation start unless the socket is closed or being
 * closed: nng 1.5 can use freed memory when a context operation races nng_close. Never
 * blocks. Returns true if the caller must call sb_rpc_gate_leave. */
static bool
sb_rpc_gate_enter(struct sb_rpc_server *srv)
{
	if (pthread_rwlock_tryrdlock(&srv->gate) != 0)
		return false;
	if (atomic_load(&srv->sock_closed)) {
		pthread_rwlock_unlock(&srv->gate);
		return false;
	}
	return true;
}

static void
sb_rpc_sslot_recv(struct sb_rpc_sslot *sl)
{
	sl->state = SB_RPC_S_RECV;
	if (!sb_rpc_gate_enter(sl->srv))
		return;
	nng_ctx_recv(sl->ctx, sl->aio);
	pthread_rwlock_unlock(&sl->srv->gate);
}

static void
sb_rpc_sslot_send(struct sb_rpc_sslot *sl, nng_msg *msg)
{
	sl->state = SB_RPC_S_SEND;
	if (!sb_rpc_gate_enter(sl->srv)) {
		nng_msg_free(msg);
		if (sl->counted) {
			sl->counted = false;
			sb_rpc_server_done_one(sl->srv);
		}
		return;
	}
	nng_aio_set_msg(sl->aio, msg);
	nng_ctx_send(sl->ctx, sl->aio);
	pthread_rwlock_unlock(&sl->srv->gate);
}

/* sb_rpc_sslot_answer sends the reply that sb_rpc_server_serve built in sl->msg (rv 0), or
 * drops the request and receives again when none could be built (rv -1). */
static void
sb_rpc_sslot_answer(struct sb_rpc_sslot *sl, int rv)
{
	nng_msg *msg = sl->msg;

	sl->msg = NULL;
	if (rv == 0) {
		sb_rpc_sslot_send(sl, msg); /* the send callback settles in_flight */
		return;
	}
	nng_msg_free(msg);
	sl->counted = false;
	sb_rpc_server_done_one(sl->srv);
	sb_rpc_sslot_recv(sl);
}

void
sb_rpc_call_finish(struct sb_rpc_call *call, int code)
{
	struct sb_rpc_sslot *sl = call->d_slot;
	struct sb_rpc_batch *b = call->d_batch;
	ProtobufCBinaryData payload = { 0, NULL };

	if ((sl == NULL && b == NULL) || call->d_req == NULL) {
		SB_ERROR("rpc: sb_rpc_call_finish on a call that was not deferred");
		return;
	}
	if (b != NULL) {
		size_t i = call->d_index;

		code = sb_rpc_server_pack(call, b->calls[i].m, code, call->d_resp, &payload);
		protobuf_c_message_free_unpacked(call->d_req, NULL);
		call->d_req = NULL;
		call->d_resp = NULL;
		call->d_batch = NULL;
		sb_rpc_batch_answered(b, i, code, payload);
		return;
	}
	code = sb_rpc_server_pack(call, sl->m, code, call->d_resp, &payload);
	protobuf_c_message_free_unpacked(call->d_req, NULL);
	call->d_req = NULL;
	call->d_resp = NULL;
	call->d_slot = NULL;
	sb_rpc_sslot_answer(sl, sb_rpc_server_complete(sl->srv, call, sl, code, payload));
}

/* sb_rpc_server_enqueue queues sl for a worker. A sleeping worker is woken only if the queued
 * work outnumbers the wake-ups already sent and not yet taken: a worker that is finishing a
 * request takes the next one without sleeping, and every futile wake-up costs two context
 * switches on a machine with few cores. */
static void
sb_rpc_server_enqueue(struct sb_rpc_server *srv, struct sb_rpc_sslot *sl)
{
	sl->next = NULL;
	pthread_mutex_lock(&srv->mu);
	if (srv->work_tail != NULL)
		srv->work_tail->next = sl;
	else
		srv->work_head = sl;
	srv->work_tail = sl;
	srv->queued++;
	if (srv->idle > srv->wakes && srv->queued > srv->wakes) {
		srv->wakes++;
		pthread_cond_signal(&srv->work_cv);
	}
	pthread_mutex_unlock(&srv->mu);
}

/* sb_rpc_sslot_cb runs on an nng thread when a slot's receive or send completes. */
static void
sb_rpc_sslot_cb(void *arg)
{
	struct sb_rpc_sslot *sl = arg;
	struct sb_rpc_server *srv = sl->srv;
	int rv = nng_aio_result(sl->aio);
	nng_msg *msg;

	if (sl->state == SB_RPC_S_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(sl->aio));
		if (sl->counted) {
			sl->counted = false;
			sb_rpc_server_done_one(srv);
		}
		if (rv == NNG_ECLOSED)
			return;
		sb_rpc_sslot_recv(sl);
		return;
	}
	if (rv == NNG_ECLOSED)
		return;
	if (rv != 0) {
		sb_rpc_sslot_recv(sl);
		return;
	}
	msg = nng_aio_get_msg(sl->aio);
	/* Count the request in flight before looking at draining: a drain either waits for it
	 * or this callback sees the drain and refuses it. */
	atomic_fetch_add(&srv->in_flight, 1);
	sb__rpc_metrics_in_flight(1);
	if (atomic_load(&srv->draining)) {
		sb_rpc_server_done_one(srv);
		if (sb_rpc_server_refuse(srv, msg) != 0) {
			nng_msg_free(msg);
			sb_rpc_sslot_recv(sl);
			return;
		}
		sb_rpc_sslot_send(sl, msg);
		return;
	}
	sl->counted = true;
	sl->state = SB_RPC_S_WORK;
	sl->msg = msg;
	if (sb_rpc_server_route(srv, sl)) {
		sb_rpc_server_enqueue(srv, sl);
		return;
	}
	/* Never blocks (an inline method, or a reply without a handler): answer here rather
	 * than pay two thread switches for the hand-off. */
	int served = sb_rpc_server_serve(srv, &sl->icall, sl);
	if (served != 1) /* 1: deferred, sb_rpc_call_finish answers (maybe already did) */
		sb_rpc_sslot_answer(sl, served);
}

/* sb_rpc_worker_take returns the next queued slot, or NULL when the server stops. */
static struct sb_rpc_sslot *
sb_rpc_worker_take(struct sb_rpc_server *srv)
{
	struct sb_rpc_sslot *sl;

	pthread_mutex_lock(&srv->mu);
	while (srv->work_head == NULL && !srv->stopping) {
		srv->idle++;
		pthread_cond_wait(&srv->work_cv, &srv->mu);
		srv->idle--;
		/* Counted whether this return was the signal or spurious: wakes may then
		 * under-count, which only costs a spare signal, never a lost one. */
		if (srv->wakes > 0)
			srv->wakes--;
	}
	if (srv->stopping) {
		sl = NULL; /* what is still queued is dropped by sb_rpc_server_free */
	} else if ((sl = srv->work_head) != NULL) {
		srv->work_head = sl->next;
		if (srv->work_head == NULL)
			srv->work_tail = NULL;
		srv->queued--;
	}
	pthread_mutex_unlock(&srv->mu);
	return sl;
}

static void *
sb_rpc_worker_main(void *arg)
{
	struct sb_rpc_worker *w = arg;
	struct sb_rpc_server *srv = w->srv;
	struct sb_rpc_sslot *sl;
	int rc = 0;

	if (srv->o.worker_init != NULL)
		rc = srv->o.worker_init(srv->o.ctx, &w->state);
	pthread_mutex_lock(&srv->mu);
	w->init_rc = rc < 0 ? rc : 0;
	srv->inited++;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	if (rc < 0)
		return NULL;
	sb__rpc_call_init(&w->call, srv->o.ctx, w->state);

	while ((sl = sb_rpc_worker_take(srv)) != NULL)
		sb_rpc_sslot_answer(sl, sb_rpc_server_serve(srv, &w->call, sl)); /* never 1 here */
	sb__rpc_call_fini(&w->call);
	if (srv->o.worker_fini != NULL)
		srv->o.worker_fini(srv->o.ctx, w->state);
	return NULL;
}

static void
sb_rpc_server_close(struct sb_rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	if (srv->closed) {
		pthread_mutex_unlock(&srv->mu);
		return;
	}
	srv->closed = true;
	pthread_mutex_unlock(&srv->mu);
	/* Closing the socket first aborts every pending receive or send; no context operation
	 * runs meanwhile, and none starts after. */
	atomic_store(&srv->sock_closed, true); /* new operations stop entering the gate */
	pthread_rwlock_wrlock(&srv->gate);
	nng_close(srv->sock);
	pthread_rwlock_unlock(&srv->gate);
}

int
sb_rpc_server_start(const struct sb_rpc_server_opts *o, struct sb_rpc_server **out)
{
	struct sb_rpc_server *srv;
	size_t n_methods = 0;
	int ret = SB_EIO, rv;

	*out = NULL;
	if (o == NULL || o->url == NULL || o->methods == NULL || o->workers < 0 ||
	    o->workers > 1024)
		return SB_EINVAL;
	for (; o->methods[n_methods].name != NULL; n_methods++) {
		const struct sb_rpc_method *m = &o->methods[n_methods];
		if (m->req == NULL || m->resp == NULL || m->fn == NULL)
			return SB_EINVAL;
		if ((m->flags & ~SB_RPC_INLINE) != 0) {
			SB_ERROR("rpc: method %.64s has unknown flags %#x", m->name, m->flags);
			return SB_EINVAL;
		}
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return SB_ENOMEM;
	srv->o = *o;
	if (srv->o.workers == 0)
		srv->o.workers = SB_RPC_DEFAULT_WORKERS;
	if (srv->o.max_msg == 0)
		srv->o.max_msg = SB_RPC_DEFAULT_MAX_MSG;
	srv->port = -1;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_cond_init(&srv->work_cv, NULL);
	pthread_rwlock_init(&srv->gate, NULL);
	/* More contexts than workers, so that a worker finishing a request usually finds the
	 * next one already received and queued. */
	srv->n_slots = srv->o.workers * SB_RPC_SLOTS_PER_WORKER;
	srv->workers = calloc((size_t)srv->o.workers, sizeof(*srv->workers));
	srv->slots = calloc((size_t)srv->n_slots, sizeof(*srv->slots));
	srv->mstats = calloc(n_methods + 1, sizeof(*srv->mstats));
	srv->inline_m = calloc(n_methods + 1, sizeof(*srv->inline_m));
	if (srv->workers == NULL || srv->slots == NULL || srv->mstats == NULL ||
	    srv->inline_m == NULL) {
		ret = SB_ENOMEM;
		goto fail_nosock;
	}
	for (size_t i = 0; i < n_methods; i++)
		srv->inline_m[i] = (o->methods[i].flags & SB_RPC_INLINE) != 0;
	if ((rv = nng_rep0_open(&srv->sock)) != 0)
		goto fail_nosock;
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, srv->o.max_msg + SB_RPC_ENVELOPE_SLACK);
	for (int i = 0; i < srv->n_slots; i++) {
		struct sb_rpc_sslot *sl = &srv->slots[i];
		sl->srv = srv;
		sb__rpc_call_init(&sl->icall, srv->o.ctx, NULL);
		if (nng_ctx_open(&sl->ctx, srv->sock) != 0 ||
		    nng_aio_alloc(&sl->aio, sb_rpc_sslot_cb, sl) != 0)
			goto fail;
	}
	for (int i = 0; i < srv->o.workers; i++)
		srv->workers[i].srv = srv;
	if ((rv = nng_listen(srv->sock, srv->o.url, &srv->listener, 0)) != 0) {
		SB_ERROR("rpc: cannot listen on %s: %s", srv->o.url, nng_strerror(rv));
		ret = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? SB_EINVAL : SB_EIO;
		goto fail;
	}
	if (strncmp(srv->o.url, "tcp", 3) == 0)
		nng_listener_get_int(srv->listener, NNG_OPT_TCP_BOUND_PORT, &srv->port);
	for (int i = 0; i < srv->o.workers; i++) {
		struct sb_rpc_worker *w = &srv->workers[i];
		if (pthread_create(&w->thread, NULL, sb_rpc_worker_main, w) != 0)
			goto fail;
		w->thread_started = true;
		srv->n_workers++;
	}
	/* Wait for every worker_init; the first failure fails the start. */
	ret = 0;
	pthread_mutex_lock(&srv->mu);
	while (srv->inited < srv->n_workers)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	for (int i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].init_rc < 0 && ret == 0)
			ret = srv->workers[i].init_rc;
	if (ret != 0)
		goto fail;
	for (int i = 0; i < srv->n_slots; i++)
		sb_rpc_sslot_recv(&srv->slots[i]);
	SB_INFO("rpc: listening on %s with %d workers", srv->o.url, srv->n_workers);
	*out = srv;
	return 0;
fail:
	if (ret == 0)
		ret = SB_EIO;
	sb_rpc_server_free(srv);
	return ret;
fail_nosock:
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->work_cv);
	pthread_rwlock_destroy(&srv->gate);
	free(srv->workers);
	free(srv->slots);
	free(srv->mstats);
	free(srv->inline_m);
	free(srv);
	return ret;
}

int
sb_rpc_server_port(const struct sb_rpc_server *srv)
{
	return srv->port;
}

int
sb_rpc_server_drain(struct sb_rpc_server *srv, int timeout_ms)
{
	struct timespec until;
	int ret = 0;

	atomic_store(&srv->draining, true);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&srv->mu);
	while (atomic_load(&srv->in_flight) > 0) {
		if (pthread_cond_timedwait(&srv->cv, &srv->mu, &until) == ETIMEDOUT) {
			if (atomic_load(&srv->in_flight) > 0)
				ret = SB_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&srv->mu);
	if (ret != 0)
		SB_WARN("rpc: drain timed out with %d requests in progress",
		        atomic_load(&srv->in_flight));
	sb_rpc_server_close(srv);
	return ret;
}

void
sb_rpc_server_free(struct sb_rpc_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->draining, true);
	sb_rpc_server_close(srv);
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	pthread_cond_broadcast(&srv->work_cv);
	pthread_mutex_unlock(&srv->mu);
	for (int i = 0; i < srv->o.workers; i++)
		if (srv->workers[i].thread_started)
			pthread_join(srv->workers[i].thread, NULL);
	/* Deferred calls are still the service's (its stop hook runs after this): wait for
	 * their sb_rpc_call_finish, whose reply the closed socket drops. Rather leak the server
	 * than free what a late finish would still use. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SB_RPC_DEFER_WAIT_S;
	pthread_mutex_lock(&srv->mu);
	for (struct sb_rpc_sslot *q = srv->work_head; q != NULL; q = q->next)
		if (q->counted) { /* never served: dropped below */
			q->counted = false;
			sb__rpc_metrics_in_flight(-1);
			atomic_fetch_sub(&srv->in_flight, 1);
		}
	while (atomic_load(&srv->in_flight) > 0)
		if (pthread_cond_timedwait(&srv->cv, &srv->mu, &until) == ETIMEDOUT)
			break;
	int left = atomic_load(&srv->in_flight);
	pthread_mutex_unlock(&srv->mu);
	if (left > 0) {
		SB_ERROR("rpc: %d deferred calls not finished %d s after close; server not freed",
		         left, SB_RPC_DEFER_WAIT_S);
		return;
	}
	/* Every aio is stopped before any is freed; then requests still queued are dropped. */
	for (int i = 0; i < srv->n_slots; i++)
		if (srv->slots[i].aio != NULL)
			nng_aio_stop(srv->slots[i].aio);
	for (int i = 0; i < srv->n_slots; i++) {
		struct sb_rpc_sslot *sl = &srv->slots[i];

		if (sl->msg != NULL)
			nng_msg_free(sl->msg);
		if (sl->env != NULL)
			sb__rpc__request__free_unpacked(sl->env, NULL);
		if (sl->aio != NULL)
			nng_aio_free(sl->aio);
		sb__rpc_call_fini(&sl->icall);
	}
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->work_cv);
	pthread_rwlock_destroy(&srv->gate);
	free(srv->workers);
	free(srv->slots);
	free(srv->mstats);
	free(srv->inline_m);
	free(srv);
}
