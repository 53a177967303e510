/* sb_rpc_client.c: the RPC client. One REQ socket; each outstanding call holds a slot (an nng
 * context and an aio, reused from a pool) that runs the state machine SEND → RECV → done.
 *
 * Batching (sb_rpc_client_batch): calls of the listed methods queue on the client; while fewer
 * than max_in_flight batches are outstanding the queue leaves at once as one batch (so an idle
 * client adds no delay), otherwise it waits for the next batch's reply, when everything queued
 * meanwhile leaves together. A batch is one slot carrying an SB_RPC_BATCH_METHOD envelope.
 *
 * An unreachable server (docs/runbook.md, "Failover"): the client counts its connections
 * (nng pipe events). A request that could not be handed to any connection before its send
 * timed out was never sent, so it ends UNAVAILABLE with a retry hint rather than
 * DEADLINE_EXCEEDED. Without a connection a call waits for one only until SB_RPC_DOWN_GRACE_MS
 * have passed since the last one was lost (longer than the dialer's longest reconnect interval,
 * so a server that is up has been found again by then), and afterwards SB_RPC_DOWN_WAIT_MS, not
 * its whole deadline: a gateway answers 503 with Retry-After within about a second of an
 * upstream going down, and at once after that, not 504 after its timeout. A send waits at most
 * SB_RPC_SEND_STEP_MS at a time, then the client looks again (sb_rpc_slot_send_again), so a
 * call made while a connection was being torn down, before the client had counted the loss,
 * also ends UNAVAILABLE within about the step and the grace, not at its deadline. */
#include "sb_rpc.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's suppressions for every sanitized binary that links the RPC client. A request
 * whose send is cancelled by its timeout (a call that found no connection, see above) just as a
 * new connection takes it can be kept inside nng 1.5.2's REQ context and never freed (nng's
 * req0 cancel-send path; fixed in later nng releases, Debian 12 ships 1.5.2): about one
 * sb_rpc_test run in ten under load reported those 184 bytes. Our own paths free every request
 * that nng hands back (sb_rpc_slot_cb) and are exercised by the same tests. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:sb_rpc_client_pack\n";
}
#endif

#define SB_RPC_METHOD_MAX    127
#define SB_RPC_MSTATS_MAX    256 /* distinct method names with their own series */
#define SB_RPC_RECV_MAXSZ    (SB_RPC_DEFAULT_MAX_MSG + 65536)
#define SB_RPC_RECONN_MIN    50   /* ms */
#define SB_RPC_RECONN_MAX    1000 /* ms */
#define SB_RPC_DOWN_GRACE_MS (SB_RPC_RECONN_MAX + 250)
#define SB_RPC_DOWN_WAIT_MS  100
#define SB_RPC_DOWN_RETRY_MS 1000 /* retry_after_ms of a call that found no connection */
#define SB_RPC_SEND_STEP_MS  SB_RPC_DOWN_GRACE_MS /* longest wait of a send between looks */

enum sb_rpc_slot_state { SB_RPC_SLOT_IDLE, SB_RPC_SLOT_SEND, SB_RPC_SLOT_RECV };

/* What a caller waits with: how to decode the answer, whom to call, by when, which series. */
struct sb_rpc_waiting {
	const ProtobufCMessageDescriptor *resp_desc;
	sb_rpc_done_fn cb;
	void *arg;
	int64_t deadline; /* sb_time_mono_ms() */
	double t0;
	struct sb_rpc_mstats *ms;
	const char *method; /* the key of ms */
};

struct sb_rpc_slot {
	struct sb_rpc_client *cli;
	struct sb_rpc_slot *next_free;
	struct sb_rpc_slot *next_all;
	nng_ctx ctx;
	nng_aio *aio;
	enum sb_rpc_slot_state state;
	struct sb_rpc_waiting w; /* a lone call's */
	struct sb_rpc_result res;
	struct sb_rpc_bcall *batch; /* the calls this slot carries as a batch, in order; or NULL */
};

/* A call of a batched method, queued or travelling in a batch. */
struct sb_rpc_bcall {
	struct sb_rpc_bcall *next;
	nng_msg *req; /* its packed Request until the batch is packed */
	struct sb_rpc_waiting w;
};

struct sb_rpc_mentry {
	char *name;
	struct sb_rpc_mstats ms;
};

struct sb_rpc_client {
	nng_socket sock;
	pthread_mutex_t mu;
	atomic_bool closed;
	struct sb_rpc_slot *free_slots;
	struct sb_rpc_slot *all_slots;
	struct sb_rpc_mentry mentries[SB_RPC_MSTATS_MAX];
	size_t n_mentries;
	struct sb_rpc_mstats other; /* methods past SB_RPC_MSTATS_MAX */
	/* Batching, guarded by mu: the methods (NULL-ended, the caller's), the batches in
	 * flight and their limit, and the calls waiting for the next batch. */
	const char *const *batch_methods;
	int batch_max, batch_out;
	struct sb_rpc_bcall *bq_head, *bq_tail;
	/* Readers: context operations; writer: nng_close. nng 1.5 can use freed memory when a
	 * context operation races nng_close, so none may run during it or start after it. */
	pthread_rwlock_t gate;
	/* Connections to the server now, and since when there has been none (mono ms). */
	atomic_int pipes;
	_Atomic int64_t down_since;
};

/* sb_rpc_client_enter starts a context operation unless the client is closing; never blocks.
 * Returns true if the caller must unlock cli->gate. */
static bool
sb_rpc_client_enter(struct sb_rpc_client *cli)
{
	if (pthread_rwlock_tryrdlock(&cli->gate) != 0)
		return false;
	if (atomic_load(&cli->closed)) {
		pthread_rwlock_unlock(&cli->gate);
		return false;
	}
	return true;
}

/* sb_rpc_client_pipe_ev counts the client's connections (nng's pipe callback). */
static void
sb_rpc_client_pipe_ev(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct sb_rpc_client *cli = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&cli->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST && atomic_fetch_sub(&cli->pipes, 1) == 1)
		atomic_store(&cli->down_since, sb_time_mono_ms());
}

/* sb_rpc_client_send_wait returns how long a call with timeout_ms left may wait for a
 * connection to take it before the client looks again: while connected, up to
 * SB_RPC_SEND_STEP_MS; without a connection, until the grace since the last one was lost (or
 * the client opened) is over, and at least SB_RPC_DOWN_WAIT_MS; never past timeout_ms. */
/* sb_rpc_client_grace_left returns how much of SB_RPC_DOWN_GRACE_MS is left since the client
 * lost its last connection (or opened); <= 0 once it is over. */
static int64_t
sb_rpc_client_grace_left(struct sb_rpc_client *cli)
{
	return atomic_load(&cli->down_since) + SB_RPC_DOWN_GRACE_MS - sb_time_mono_ms();
}

static int64_t
sb_rpc_client_send_wait(struct sb_rpc_client *cli, int64_t timeout_ms)
{
	int64_t wait;

	if (atomic_load(&cli->pipes) > 0)
		return timeout_ms < SB_RPC_SEND_STEP_MS ? timeout_ms : SB_RPC_SEND_STEP_MS;
	wait = sb_rpc_client_grace_left(cli);
	if (wait < SB_RPC_DOWN_WAIT_MS)
		wait = SB_RPC_DOWN_WAIT_MS;
	return wait < timeout_ms ? wait : timeout_ms;
}

/* The outcome of a failed transport operation. */
static int
sb_rpc_client_code(int nng_rv, const char **msg)
{
	switch (nng_rv) {
	case NNG_ETIMEDOUT:
		*msg = "deadline exceeded";
		return SB__RPC__CODE__DEADLINE_EXCEEDED;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		*msg = "call cancelled: client closed";
		return SB__RPC__CODE__CANCELLED;
	case NNG_ENOMEM:
		*msg = "out of memory";
		return SB__RPC__CODE__RESOURCE_EXHAUSTED;
	default:
		*msg = "connection to the server lost; the request may or may not have run";
		return SB__RPC__CODE__UNAVAILABLE;
	}
}

/* sb_rpc_client_mstats returns the cached series of method; called with cli->mu held. */
static struct sb_rpc_mentry *
sb_rpc_client_mstats(struct sb_rpc_client *cli, const char *method)
{
	for (size_t i = 0; i < cli->n_mentries; i++)
		if (strcmp(cli->mentries[i].name, method) == 0)
			return &cli->mentries[i];
	if (cli->n_mentries < SB_RPC_MSTATS_MAX) {
		struct sb_rpc_mentry *e = &cli->mentries[cli->n_mentries];
		if ((e->name = strdup(method)) != NULL) {
			cli->n_mentries++;
			return e;
		}
	}
	return NULL;
}

/* sb_rpc_client_series points w at method's series; called with cli->mu held. */
static void
sb_rpc_client_series(struct sb_rpc_client *cli, const char *method, struct sb_rpc_waiting *w)
{
	struct sb_rpc_mentry *e = sb_rpc_client_mstats(cli, method);

	w->ms = e ? &e->ms : &cli->other;
	w->method = e ? e->name : "other";
}

/* The slot whose callback this thread is running. A call started from that callback takes it
 * without the pool's lock and reuses its aio, which nng allows from the aio's own callback. */
static _Thread_local struct sb_rpc_slot *sb_rpc_reusable;

/* sb_rpc_slot_release puts an idle slot back in the pool. */
static void
sb_rpc_slot_release(struct sb_rpc_slot *s)
{
	struct sb_rpc_client *cli = s->cli;

	pthread_mutex_lock(&cli->mu);
	s->next_free = cli->free_slots;
	cli->free_slots = s;
	pthread_mutex_unlock(&cli->mu);
}

static void
sb_rpc_slot_finish(struct sb_rpc_slot *s, int code, const char *msg)
{
	sb_rpc_done_fn cb = s->w.cb;
	void *arg = s->w.arg;
	struct sb_rpc_result res = s->res;

	if (res.sb_env == NULL) {
		res.code = code;
		res.message = msg;
	}
	memset(&s->res, 0, sizeof(s->res));
	sb__rpc_metrics_client(s->w.method, s->w.ms, res.code, sb__rpc_now_mono() - s->w.t0);
	s->state = SB_RPC_SLOT_IDLE;
	sb_rpc_reusable = s;
	cb(&res, arg);
	if (sb_rpc_reusable != s)
		return; /* a new call owns the slot now: touch nothing */
	sb_rpc_reusable = NULL;
	sb_rpc_slot_release(s);
}

/* sb_rpc_result_parse fills *r from a packed Response whose payload, when OK, is a desc.
 * Returns 0 or -1 with *msg set. */
static int
sb_rpc_result_parse(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    struct sb_rpc_result *r, const char **msg)
{
	Sb__Rpc__Response *env;

	env = sb__rpc__response__unpack(NULL, len, data);
	if (env == NULL) {
		*msg = "malformed response envelope";
		return -1;
	}
	if (env->code == SB__RPC__CODE__OK) {
		r->resp =
		    protobuf_c_message_unpack(desc, NULL, env->payload.len, env->payload.data);
		if (r->resp == NULL) {
			sb__rpc__response__free_unpacked(env, NULL);
			*msg = "response payload does not decode as the expected message";
			return -1;
		}
	}
	r->sb_env = env;
	r->code = (int)env->code;
	r->message = env->message ? env->message : "";
	r->n_violations = env->n_violations;
	r->violations = env->violations;
	r->retry_after_ms = env->retry_after_ms;
	r->http_status = env->http_status;
	return 0;
}

static nng_duration
sb_rpc_slot_remaining(struct sb_rpc_slot *s)
{
	int64_t now = sb_time_mono_ms();

	/* A zero timeout would fail at once; 1 ms leaves the outcome to the deadline. */
	return s->w.deadline > now ? (nng_duration)(s->w.deadline - now) : 1;
}

static void sb_rpc_batch_end(struct sb_rpc_slot *s, int code, const char *msg, nng_msg *m);

/* sb_rpc_slot_end settles what slot s carried: with the reply m, or failed with code and msg
 * when m is NULL. */
static void
sb_rpc_slot_end(struct sb_rpc_slot *s, int code, const char *msg, nng_msg *m)
{
	if (s->batch != NULL) {
		sb_rpc_batch_end(s, code, msg, m);
		return;
	}
	if (m != NULL) {
		code = sb_rpc_result_parse(s->w.resp_desc, nng_msg_body(m), nng_msg_len(m), &s->res,
		                           &msg) == 0
		           ? 0
		           : SB__RPC__CODE__INTERNAL;
		nng_msg_free(m);
	}
	sb_rpc_slot_finish(s, code, msg);
}

/* sb_rpc_slot_hand gives request m to slot s's context, to be taken by a connection within
 * what sb_rpc_client_send_wait allows of timeout_ms; with cli->gate held. */
static void
sb_rpc_slot_hand(struct sb_rpc_slot *s, nng_msg *m, int64_t timeout_ms)
{
	nng_aio_set_msg(s->aio, m);
	nng_aio_set_timeout(s->aio, (nng_duration)sb_rpc_client_send_wait(s->cli, timeout_ms));
	nng_ctx_send(s->ctx, s->aio);
}

/* sb_rpc_slot_send_again hands the request m of slot s, which no connection took within its
 * send step, to its context again when the call may still wait: its deadline is not reached and
 * the client is connected, or lost its last connection less than SB_RPC_DOWN_GRACE_MS ago.
 * Returns false when the call ends now (m is still the caller's). */
static bool
sb_rpc_slot_send_again(struct sb_rpc_slot *s, nng_msg *m)
{
	struct sb_rpc_client *cli = s->cli;
	int64_t left = s->w.deadline - sb_time_mono_ms();

	if (left <= 0 || (atomic_load(&cli->pipes) == 0 && sb_rpc_client_grace_left(cli) <= 0))
		return false;
	if (!sb_rpc_client_enter(cli))
		return false;
	sb_rpc_slot_hand(s, m, left);
	pthread_rwlock_unlock(&cli->gate);
	return true;
}

static void
sb_rpc_slot_cb(void *arg)
{
	struct sb_rpc_slot *s = arg;
	int rv = nng_aio_result(s->aio);
	const char *msg = NULL;
	int code;

	if (rv != 0) {
		nng_msg *unsent = s->state == SB_RPC_SLOT_SEND ? nng_aio_get_msg(s->aio) : NULL;
		if (rv == NNG_ETIMEDOUT && unsent != NULL && sb_rpc_slot_send_again(s, unsent))
			return;
		if (unsent != NULL)
			nng_msg_free(unsent);
		code = sb_rpc_client_code(rv, &msg);
		if (atomic_load(&s->cli->closed)) {
			/* Closing drops the connection first: report why, not what it looked
			 * like. */
			code = SB__RPC__CODE__CANCELLED;
			msg = "call cancelled: client closed";
		} else if (rv == NNG_ETIMEDOUT && s->state == SB_RPC_SLOT_SEND) {
			/* No connection took the request before the send timed out: it was
			 * never sent, and may be retried as it is. */
			code = SB__RPC__CODE__UNAVAILABLE;
			msg = "no connection to the server: the request was not sent";
			s->res.retry_after_ms = SB_RPC_DOWN_RETRY_MS;
		}
		sb_rpc_slot_end(s, code, msg, NULL);
		return;
	}
	switch (s->state) {
	case SB_RPC_SLOT_SEND:
		if (!sb_rpc_client_enter(s->cli)) {
			sb_rpc_slot_end(s, SB__RPC__CODE__CANCELLED,
			                "call cancelled: client closed", NULL);
			return;
		}
		s->state = SB_RPC_SLOT_RECV;
		nng_aio_set_timeout(s->aio, sb_rpc_slot_remaining(s));
		nng_ctx_recv(s->ctx, s->aio);
		pthread_rwlock_unlock(&s->cli->gate);
		return;
	case SB_RPC_SLOT_RECV:
		sb_rpc_slot_end(s, 0, NULL, nng_aio_get_msg(s->aio));
		return;
	case SB_RPC_SLOT_IDLE:
		break;
	}
}

/* sb_rpc_client_take returns an idle slot (new or from the pool) with its series, or an
 * error. */
static int
sb_rpc_client_take(struct sb_rpc_client *cli, const char *method, struct sb_rpc_slot **out)
{
	struct sb_rpc_slot *s = sb_rpc_reusable;

	if (s != NULL && s->cli == cli && strcmp(s->w.method, method) == 0 &&
	    !atomic_load(&cli->closed)) {
		sb_rpc_reusable = NULL;
		*out = s;
		return 0;
	}
	pthread_mutex_lock(&cli->mu);
	if (atomic_load(&cli->closed)) {
		pthread_mutex_unlock(&cli->mu);
		return SB_ECLOSED;
	}
	if ((s = cli->free_slots) != NULL) {
		cli->free_slots = s->next_free;
	} else {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			goto nomem;
		s->cli = cli;
		if (nng_aio_alloc(&s->aio, sb_rpc_slot_cb, s) != 0) {
			free(s);
			goto nomem;
		}
		if (nng_ctx_open(&s->ctx, cli->sock) != 0) {
			nng_aio_free(s->aio);
			free(s);
			goto nomem;
		}
		s->next_all = cli->all_slots;
		cli->all_slots = s;
	}
	sb_rpc_client_series(cli, method, &s->w);
	pthread_mutex_unlock(&cli->mu);
	*out = s;
	return 0;
nomem:
	pthread_mutex_unlock(&cli->mu);
	return SB_ENOMEM;
}

/* sb_rpc_waiting_set fills what a caller waits with (the series are set by the taker). */
static void
sb_rpc_waiting_set(struct sb_rpc_waiting *w, const ProtobufCMessageDescriptor *resp_desc,
                   sb_rpc_done_fn cb, void *arg, int64_t timeout_ms)
{
	w->resp_desc = resp_desc;
	w->cb = cb;
	w->arg = arg;
	w->t0 = sb__rpc_now_mono();
	w->deadline = sb_time_mono_ms() + timeout_ms;
}

/* sb_rpc_client_pack builds the request envelope into a new nng message. */
static int
sb_rpc_client_pack(const char *method, const ProtobufCMessage *req, const struct sb_rpc_meta *meta,
                   int64_t timeout_ms, nng_msg **out)
{
	Sb__Rpc__Request env = SB__RPC__REQUEST__INIT;
	size_t plen = protobuf_c_message_get_packed_size(req), n;
	uint8_t *pbuf;
	nng_msg *m;

	if (plen > SB_RPC_DEFAULT_MAX_MSG)
		return SB_ERANGE;
	env.method = (char *)method;
	env.deadline_ms = sb__rpc_now_epoch_ms() + timeout_ms;
	if (meta != NULL) {
		env.traceparent = (char *)(meta->traceparent ? meta->traceparent : "");
		env.request_id = (char *)(meta->request_id ? meta->request_id : "");
		env.principal = (Sb__Rpc__Principal *)meta->principal;
	}
	/* No scratch allocation: the payload is packed into the message, the envelope (which
	 * copies it) after it, and the envelope is then moved to the front. */
	if (nng_msg_alloc(&m, plen) != 0)
		return SB_ENOMEM;
	pbuf = nng_msg_body(m);
	protobuf_c_message_pack(req, pbuf);
	env.payload.data = pbuf;
	env.payload.len = plen;
	n = sb__rpc__request__get_packed_size(&env);
	if (nng_msg_realloc(m, plen + n) != 0) {
		nng_msg_free(m);
		return SB_ENOMEM;
	}
	pbuf = nng_msg_body(m);
	env.payload.data = pbuf;
	sb__rpc__request__pack(&env, pbuf + plen);
	/* Move the envelope to the front. */
	memmove(pbuf, pbuf + plen, n);
	nng_msg_chop(m, plen);
	*out = m;
	return 0;
}

/* sb_rpc_client_send sends the packed request m (consumed) on a slot of its own: a lone call
 * answered to cb, or, with batch set, a batch whose calls are answered one by one. Returns 0,
 * SB_ECLOSED or SB_ENOMEM; the caller settles what did not leave. */
static int
sb_rpc_client_send(struct sb_rpc_client *cli, const char *method, nng_msg *m,
                   const ProtobufCMessageDescriptor *resp_desc, sb_rpc_done_fn cb, void *arg,
                   int64_t timeout_ms, struct sb_rpc_bcall *batch)
{
	struct sb_rpc_slot *s;
	int rv;

	if (!sb_rpc_client_enter(cli)) {
		nng_msg_free(m);
		return SB_ECLOSED;
	}
	if ((rv = sb_rpc_client_take(cli, method, &s)) != 0) {
		pthread_rwlock_unlock(&cli->gate);
		nng_msg_free(m);
		return rv;
	}
	s->batch = batch;
	sb_rpc_waiting_set(&s->w, resp_desc, cb, arg, timeout_ms);
	s->state = SB_RPC_SLOT_SEND;
	memset(&s->res, 0, sizeof(s->res));
	/* The send phase ends when a connection takes the request (the receive phase then gets
	 * what is left of the deadline). */
	sb_rpc_slot_hand(s, m, timeout_ms);
	pthread_rwlock_unlock(&cli->gate);
	return 0;
}

/* --- batching ------------------------------------------------------------------------- */

/* sb_rpc_bcall_done settles one call of a batch with res, which its callback then owns. */
static void
sb_rpc_bcall_done(struct sb_rpc_bcall *c, struct sb_rpc_result *res)
{
	sb__rpc_metrics_client(c->w.method, c->w.ms, res->code, sb__rpc_now_mono() - c->w.t0);
	c->w.cb(res, c->w.arg);
	if (c->req != NULL)
		nng_msg_free(c->req);
	free(c);
}

/* sb_rpc_bcalls_fail settles every call of list with the same failure. */
static void
sb_rpc_bcalls_fail(struct sb_rpc_bcall *list, int code, const char *msg, int64_t retry_after_ms)
{
	while (list != NULL) {
		struct sb_rpc_bcall *next = list->next;
		struct sb_rpc_result res = { 0 };

		res.code = code;
		res.message = msg ? msg : "";
		res.retry_after_ms = retry_after_ms;
		sb_rpc_bcall_done(list, &res);
		list = next;
	}
}

/* sb_rpc_batch_take detaches the next batch from the queue, or returns NULL when nothing is
 * queued, max_in_flight batches are out or the client is closing. Counts it in batch_out.
 * Called with cli->mu held. */
static struct sb_rpc_bcall *
sb_rpc_batch_take(struct sb_rpc_client *cli)
{
	struct sb_rpc_bcall *head = cli->bq_head, *c = head, *last = NULL;
	size_t n = 0, bytes = 0;

	if (head == NULL || cli->batch_out >= cli->batch_max || atomic_load(&cli->closed))
		return NULL;
	while (c != NULL && n < SB_RPC_BATCH_MAX_CALLS &&
	       (n == 0 || bytes + nng_msg_len(c->req) <= SB_RPC_BATCH_MAX_BYTES)) {
		bytes += nng_msg_len(c->req);
		n++;
		last = c;
		c = c->next;
	}
	cli->bq_head = c;
	if (c == NULL)
		cli->bq_tail = NULL;
	last->next = NULL;
	cli->batch_out++;
	return head;
}

/* sb_rpc_batch_send sends the calls of list as one batch on a slot. On failure it settles them
 * (on this thread) and returns -1: the batch is over. */
static int
sb_rpc_batch_send(struct sb_rpc_client *cli, struct sb_rpc_bcall *list)
{
	Sb__Rpc__Batch b = SB__RPC__BATCH__INIT;
	ProtobufCBinaryData parts[SB_RPC_BATCH_MAX_CALLS];
	int64_t now = sb_time_mono_ms(), latest = now + 1;
	nng_msg *m;
	int rv;

	for (struct sb_rpc_bcall *c = list; c != NULL; c = c->next) {
		parts[b.n_requests++] =
		    (ProtobufCBinaryData){ nng_msg_len(c->req), nng_msg_body(c->req) };
		if (c->w.deadline > latest)
			latest = c->w.deadline;
	}
	b.requests = parts;
	rv = sb_rpc_client_pack(SB_RPC_BATCH_METHOD, &b.base, NULL, latest - now, &m);
	for (struct sb_rpc_bcall *c = list; c != NULL; c = c->next) {
		nng_msg_free(c->req);
		c->req = NULL;
	}
	if (rv == 0 && (rv = sb_rpc_client_send(cli, SB_RPC_BATCH_METHOD, m, NULL, NULL, NULL,
	                                        latest - now, list)) == 0)
		return 0;
	if (rv == SB_ECLOSED)
		sb_rpc_bcalls_fail(list, SB__RPC__CODE__CANCELLED, "call cancelled: client closed",
		                   0);
	else
		sb_rpc_bcalls_fail(list, SB__RPC__CODE__RESOURCE_EXHAUSTED, "out of memory", 0);
	return -1;
}

/* sb_rpc_batch_expire detaches the queued calls whose deadline has passed (they are not sent:
 * the server would refuse them) and returns them. Called with cli->mu held. */
static struct sb_rpc_bcall *
sb_rpc_batch_expire(struct sb_rpc_client *cli)
{
	struct sb_rpc_bcall *expired = NULL, **tail = &expired, **p = &cli->bq_head, *last = NULL;
	int64_t now = sb_time_mono_ms();

	while (*p != NULL) {
		struct sb_rpc_bcall *c = *p;

		if (c->w.deadline <= now) {
			*p = c->next;
			c->next = NULL;
			*tail = c;
			tail = &c->next;
		} else {
			last = c;
			p = &c->next;
		}
	}
	cli->bq_tail = last;
	return expired;
}

/* sb_rpc_batch_next sends queued calls while batches may leave; ended: a batch just ended and
 * is no longer out. When one ended, queued calls past their deadline are settled first:
 * while the server is slow or gone, the queue then never holds a call longer than about one
 * batch's deadline beyond its own. */
static void
sb_rpc_batch_next(struct sb_rpc_client *cli, bool ended)
{
	for (;;) {
		struct sb_rpc_bcall *list, *expired = NULL;

		pthread_mutex_lock(&cli->mu);
		if (ended) {
			cli->batch_out--;
			expired = sb_rpc_batch_expire(cli);
		}
		list = sb_rpc_batch_take(cli);
		pthread_mutex_unlock(&cli->mu);
		sb_rpc_bcalls_fail(expired, SB__RPC__CODE__DEADLINE_EXCEEDED,
		                   "deadline exceeded while waiting to be sent", 0);
		if (list == NULL)
			return;
		ended = sb_rpc_batch_send(cli, list) != 0;
	}
}

/* sb_rpc_batch_deliver settles the calls of list from the batch's reply m. */
static void
sb_rpc_batch_deliver(struct sb_rpc_bcall *list, nng_msg *m)
{
	Sb__Rpc__Response *env = sb__rpc__response__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	Sb__Rpc__BatchReply *br = NULL;
	size_t n = 0, i = 0;

	for (struct sb_rpc_bcall *c = list; c != NULL; c = c->next)
		n++;
	if (env == NULL) {
		sb_rpc_bcalls_fail(list, SB__RPC__CODE__INTERNAL, "malformed response envelope", 0);
		return;
	}
	if (env->code != SB__RPC__CODE__OK) {
		/* The batch as a whole (draining, deadline, ...): every call gets that Response as
		 * a lone call would, decoded into a result of its own, so that its message and
		 * violations live until the caller frees it (not only until this returns). */
		sb__rpc__response__free_unpacked(env, NULL);
		for (struct sb_rpc_bcall *c = list, *next; c != NULL; c = next) {
			struct sb_rpc_result res = { 0 };
			const char *msg = NULL;

			next = c->next;
			if (sb_rpc_result_parse(c->w.resp_desc, nng_msg_body(m), nng_msg_len(m),
			                        &res, &msg) != 0) {
				res.code = SB__RPC__CODE__INTERNAL;
				res.message = msg;
			}
			sb_rpc_bcall_done(c, &res);
		}
		return;
	}
	br = sb__rpc__batch_reply__unpack(NULL, env->payload.len, env->payload.data);
	sb__rpc__response__free_unpacked(env, NULL);
	if (br == NULL || br->n_responses != n) {
		if (br != NULL)
			sb__rpc__batch_reply__free_unpacked(br, NULL);
		sb_rpc_bcalls_fail(list, SB__RPC__CODE__INTERNAL, "malformed batch reply", 0);
		return;
	}
	for (struct sb_rpc_bcall *c = list, *next; c != NULL; c = next, i++) {
		struct sb_rpc_result res = { 0 };
		const char *msg = NULL;

		next = c->next;
		if (sb_rpc_result_parse(c->w.resp_desc, br->responses[i].data, br->responses[i].len,
		                        &res, &msg) != 0) {
			res.code = SB__RPC__CODE__INTERNAL;
			res.message = msg;
		}
		sb_rpc_bcall_done(c, &res);
	}
	sb__rpc__batch_reply__free_unpacked(br, NULL);
}

/* sb_rpc_batch_end settles the batch slot s carried (reply m, or the failure code and msg when
 * m is NULL). The next batch leaves first, then these calls' callbacks run. */
static void
sb_rpc_batch_end(struct sb_rpc_slot *s, int code, const char *msg, nng_msg *m)
{
	struct sb_rpc_client *cli = s->cli;
	struct sb_rpc_bcall *list = s->batch;

	s->batch = NULL;
	s->state = SB_RPC_SLOT_IDLE;
	sb_rpc_batch_next(cli, true);
	if (m != NULL) {
		sb_rpc_batch_deliver(list, m);
		nng_msg_free(m);
	} else {
		sb_rpc_bcalls_fail(list, code, msg,
		                   code == SB__RPC__CODE__UNAVAILABLE ? s->res.retry_after_ms : 0);
	}
	memset(&s->res, 0, sizeof(s->res));
	sb_rpc_slot_release(s);
}

/* sb_rpc_client_batched tells whether calls of method travel in batches. */
static bool
sb_rpc_client_batched(const struct sb_rpc_client *cli, const char *method)
{
	for (size_t i = 0; cli->batch_methods != NULL && cli->batch_methods[i] != NULL; i++)
		if (strcmp(cli->batch_methods[i], method) == 0)
			return true;
	return false;
}

/* sb_rpc_batch_submit queues the packed request m (consumed) for the next batch. */
static int
sb_rpc_batch_submit(struct sb_rpc_client *cli, const char *method, nng_msg *m,
                    const ProtobufCMessageDescriptor *resp_desc, sb_rpc_done_fn cb, void *arg,
                    int64_t timeout_ms)
{
	struct sb_rpc_bcall *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		nng_msg_free(m);
		return SB_ENOMEM;
	}
	c->req = m;
	sb_rpc_waiting_set(&c->w, resp_desc, cb, arg, timeout_ms);
	pthread_mutex_lock(&cli->mu);
	if (atomic_load(&cli->closed)) {
		pthread_mutex_unlock(&cli->mu);
		nng_msg_free(m);
		free(c);
		return SB_ECLOSED;
	}
	sb_rpc_client_series(cli, method, &c->w);
	if (cli->bq_tail != NULL)
		cli->bq_tail->next = c;
	else
		cli->bq_head = c;
	cli->bq_tail = c;
	pthread_mutex_unlock(&cli->mu);
	sb_rpc_batch_next(cli, false);
	return 0;
}

int
sb_rpc_client_batch(struct sb_rpc_client *cli, const char *const *methods, int max_in_flight)
{
	if (cli == NULL || max_in_flight < 0 || max_in_flight > 1024)
		return SB_EINVAL;
	pthread_mutex_lock(&cli->mu);
	cli->batch_methods = max_in_flight > 0 ? methods : NULL;
	cli->batch_max = max_in_flight;
	pthread_mutex_unlock(&cli->mu);
	return 0;
}

/* A traced call: its client span, ended when the answer (or the failure) comes, and the
 * caller's callback. Only while spans are exported (sb_span_exporting). */
struct sb_rpc_traced {
	struct sb_span span;
	sb_rpc_done_fn cb;
	void *arg;
};

static void
sb_rpc_traced_end(struct sb_rpc_traced *t, int code, const char *message)
{
	sb_span_attr(&t->span, "rpc.code", sb_rpc_code_name(code));
	if (code != SB__RPC__CODE__OK)
		sb_span_fail(&t->span, message && message[0] ? message : sb_rpc_code_name(code));
	sb_span_end(&t->span);
}

static void
sb_rpc_traced_done(struct sb_rpc_result *res, void *arg)
{
	struct sb_rpc_traced *t = arg;
	sb_rpc_done_fn cb = t->cb;
	void *cb_arg = t->arg;
	sb_rpc_traced_end(t, res->code, res->message);
	free(t);
	cb(res, cb_arg);
}

int
sb_rpc_call_async(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
                  sb_rpc_done_fn cb, void *arg)
{
	int64_t timeout_ms;
	nng_msg *m;
	int rv;

	if (cli == NULL || method == NULL || method[0] == '\0' || req == NULL ||
	    resp_desc == NULL || cb == NULL || strlen(method) > SB_RPC_METHOD_MAX)
		return SB_EINVAL;
	timeout_ms = meta && meta->timeout_ms > 0 ? meta->timeout_ms : SB_RPC_DEFAULT_TIMEOUT_MS;
	/* A call made inside a trace gets a client span; the server's span is its child. */
	struct sb_rpc_traced *t = NULL;
	struct sb_rpc_meta traced_meta;
	char tp[SB_TRACEPARENT_LEN + 1];
	if (meta != NULL && meta->traceparent != NULL && meta->traceparent[0] != '\0' &&
	    sb_span_exporting() && (t = malloc(sizeof(*t))) != NULL) {
		sb_span_start_tp(&t->span, method, SB_SPAN_CLIENT, meta->traceparent);
		sb_span_attr(&t->span, "rpc.system", "switchboard-nng");
		sb_span_traceparent(&t->span, tp);
		t->cb = cb;
		t->arg = arg;
		traced_meta = *meta;
		traced_meta.traceparent = tp;
		meta = &traced_meta;
		cb = sb_rpc_traced_done;
		arg = t;
	}
	if ((rv = sb_rpc_client_pack(method, req, meta, timeout_ms, &m)) != 0) {
		rv = rv == SB_ERANGE ? SB_EINVAL : rv;
	} else if (sb_rpc_client_batched(cli, method) && nng_msg_len(m) <= SB_RPC_BATCH_MAX_BYTES) {
		rv = sb_rpc_batch_submit(cli, method, m, resp_desc, cb, arg, timeout_ms);
	} else {
		rv = sb_rpc_client_send(cli, method, m, resp_desc, cb, arg, timeout_ms, NULL);
	}
	if (rv != 0 && t != NULL) { /* the call did not leave: no callback will come */
		sb_rpc_traced_end(t, SB__RPC__CODE__UNAVAILABLE, sb_strerror(rv));
		free(t);
	}
	return rv;
}

struct sb_rpc_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct sb_rpc_result *res;
};

static void
sb_rpc_call_wake(struct sb_rpc_result *res, void *arg)
{
	struct sb_rpc_waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	*w->res = *res;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int
sb_rpc_call(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
            struct sb_rpc_result *res)
{
	struct sb_rpc_waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
		                   res };
	int rv;

	if (res == NULL)
		return SB_EINVAL;
	memset(res, 0, sizeof(*res));
	if ((rv = sb_rpc_call_async(cli, method, req, resp_desc, meta, sb_rpc_call_wake, &w)) != 0)
		return rv;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return 0;
}

void
sb_rpc_result_free(struct sb_rpc_result *res)
{
	if (res == NULL)
		return;
	if (res->resp != NULL)
		protobuf_c_message_free_unpacked(res->resp, NULL);
	if (res->sb_env != NULL)
		sb__rpc__response__free_unpacked(res->sb_env, NULL);
	memset(res, 0, sizeof(*res));
}

int
sb_rpc_client_open(const char *url, struct sb_rpc_client **out)
{
	struct sb_rpc_client *cli;
	int rv;

	*out = NULL;
	if (url == NULL)
		return SB_EINVAL;
	if ((cli = calloc(1, sizeof(*cli))) == NULL)
		return SB_ENOMEM;
	pthread_mutex_init(&cli->mu, NULL);
	pthread_rwlock_init(&cli->gate, NULL);
	if (nng_req0_open(&cli->sock) != 0) {
		pthread_rwlock_destroy(&cli->gate);
		pthread_mutex_destroy(&cli->mu);
		free(cli);
		return SB_EIO;
	}
	/* Never resend: neither on a timer nor when a connection drops (nng 1.5 fails the
	 * receive with ECONNRESET instead when the resend time is infinite). Contexts opened
	 * later inherit this. */
	nng_socket_set_ms(cli->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(cli->sock, NNG_OPT_RECVMAXSZ, SB_RPC_RECV_MAXSZ);
	nng_socket_set_ms(cli->sock, NNG_OPT_RECONNMINT, SB_RPC_RECONN_MIN);
	nng_socket_set_ms(cli->sock, NNG_OPT_RECONNMAXT, SB_RPC_RECONN_MAX);
	atomic_store(&cli->down_since, sb_time_mono_ms());
	nng_pipe_notify(cli->sock, NNG_PIPE_EV_ADD_POST, sb_rpc_client_pipe_ev, cli);
	nng_pipe_notify(cli->sock, NNG_PIPE_EV_REM_POST, sb_rpc_client_pipe_ev, cli);
	if ((rv = nng_dial(cli->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		SB_ERROR("rpc: cannot dial %s: %s", url, nng_strerror(rv));
		nng_close(cli->sock);
		pthread_rwlock_destroy(&cli->gate);
		pthread_mutex_destroy(&cli->mu);
		free(cli);
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL ? SB_EINVAL
		                                                                     : SB_EIO;
	}
	*out = cli;
	return 0;
}

void
sb_rpc_client_free(struct sb_rpc_client *cli)
{
	struct sb_rpc_slot *s, *next;

	if (cli == NULL)
		return;
	/* Socket first: every outstanding operation completes with NNG_ECLOSED. */
	pthread_mutex_lock(&cli->mu);
	atomic_store(&cli->closed, true); /* new operations stop entering the gate */
	pthread_mutex_unlock(&cli->mu);
	pthread_rwlock_wrlock(&cli->gate);
	nng_close(cli->sock);
	pthread_rwlock_unlock(&cli->gate);
	for (s = cli->all_slots; s != NULL; s = s->next_all)
		nng_aio_stop(s->aio);
	/* Calls still waiting for a batch never left. */
	pthread_mutex_lock(&cli->mu);
	struct sb_rpc_bcall *queued = cli->bq_head;
	cli->bq_head = cli->bq_tail = NULL;
	pthread_mutex_unlock(&cli->mu);
	sb_rpc_bcalls_fail(queued, SB__RPC__CODE__CANCELLED, "call cancelled: client closed", 0);
	for (s = cli->all_slots; s != NULL; s = next) {
		next = s->next_all;
		nng_aio_free(s->aio);
		free(s);
	}
	for (size_t i = 0; i < cli->n_mentries; i++)
		free(cli->mentries[i].name);
	pthread_rwlock_destroy(&cli->gate);
	pthread_mutex_destroy(&cli->mu);
	free(cli);
}
