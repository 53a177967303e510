/* sb_rpc_client.c: the RPC client. One REQ socket; each outstanding call holds a slot (an nng
 * context and an aio, reused from a pool) that runs the state machine SEND → RECV → done. */
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

#define SB_RPC_METHOD_MAX 127
#define SB_RPC_MSTATS_MAX 256 /* distinct method names with their own series */
#define SB_RPC_RECV_MAXSZ (SB_RPC_DEFAULT_MAX_MSG + 65536)
#define SB_RPC_RECONN_MIN 50   /* ms */
#define SB_RPC_RECONN_MAX 1000 /* ms */

enum sb_rpc_slot_state { SB_RPC_SLOT_IDLE, SB_RPC_SLOT_SEND, SB_RPC_SLOT_RECV };

struct sb_rpc_slot {
	struct sb_rpc_client *cli;
	struct sb_rpc_slot *next_free;
	struct sb_rpc_slot *next_all;
	nng_ctx ctx;
	nng_aio *aio;
	enum sb_rpc_slot_state state;
	const ProtobufCMessageDescriptor *resp_desc;
	sb_rpc_done_fn cb;
	void *arg;
	int64_t deadline; /* sb_time_mono_ms() */
	double t0;
	struct sb_rpc_mstats *ms;
	const char *method; /* the key of ms */
	struct sb_rpc_result res;
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
	/* Readers: context operations; writer: nng_close. nng 1.5 can use freed memory when a
	 * context operation races nng_close, so none may run during it or start after it. */
	pthread_rwlock_t gate;
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

/* The slot whose callback this thread is running. A call started from that callback takes it
 * without the pool's lock and reuses its aio, which nng allows from the aio's own callback. */
static _Thread_local struct sb_rpc_slot *sb_rpc_reusable;

static void
sb_rpc_slot_finish(struct sb_rpc_slot *s, int code, const char *msg)
{
	struct sb_rpc_client *cli = s->cli;
	sb_rpc_done_fn cb = s->cb;
	void *arg = s->arg;
	struct sb_rpc_result res = s->res;

	if (res.sb_env == NULL) {
		res.code = code;
		res.message = msg;
	}
	memset(&s->res, 0, sizeof(s->res));
	sb__rpc_metrics_client(s->method, s->ms, res.code, sb__rpc_now_mono() - s->t0);
	s->state = SB_RPC_SLOT_IDLE;
	sb_rpc_reusable = s;
	cb(&res, arg);
	if (sb_rpc_reusable != s)
		return; /* a new call owns the slot now: touch nothing */
	sb_rpc_reusable = NULL;
	pthread_mutex_lock(&cli->mu);
	s->next_free = cli->free_slots;
	cli->free_slots = s;
	pthread_mutex_unlock(&cli->mu);
}

/* sb_rpc_slot_parse fills s->res from a reply. Returns 0 or -1 with *msg set. */
static int
sb_rpc_slot_parse(struct sb_rpc_slot *s, nng_msg *m, const char **msg)
{
	Sb__Rpc__Response *env;
	struct sb_rpc_result *r = &s->res;

	env = sb__rpc__response__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	if (env == NULL) {
		*msg = "malformed response envelope";
		return -1;
	}
	if (env->code == SB__RPC__CODE__OK) {
		r->resp = protobuf_c_message_unpack(s->resp_desc, NULL, env->payload.len,
		                                    env->payload.data);
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
	return s->deadline > now ? (nng_duration)(s->deadline - now) : 1;
}

static void
sb_rpc_slot_cb(void *arg)
{
	struct sb_rpc_slot *s = arg;
	int rv = nng_aio_result(s->aio);
	const char *msg = NULL;
	nng_msg *m;
	int code;

	if (rv != 0) {
		if (s->state == SB_RPC_SLOT_SEND)
			nng_msg_free(nng_aio_get_msg(s->aio));
		code = sb_rpc_client_code(rv, &msg);
		if (atomic_load(&s->cli->closed)) {
			/* Closing drops the connection first: report why, not what it looked
			 * like. */
			code = SB__RPC__CODE__CANCELLED;
			msg = "call cancelled: client closed";
		}
		sb_rpc_slot_finish(s, code, msg);
		return;
	}
	switch (s->state) {
	case SB_RPC_SLOT_SEND:
		if (!sb_rpc_client_enter(s->cli)) {
			sb_rpc_slot_finish(s, SB__RPC__CODE__CANCELLED,
			                   "call cancelled: client closed");
			return;
		}
		s->state = SB_RPC_SLOT_RECV;
		nng_aio_set_timeout(s->aio, sb_rpc_slot_remaining(s));
		nng_ctx_recv(s->ctx, s->aio);
		pthread_rwlock_unlock(&s->cli->gate);
		return;
	case SB_RPC_SLOT_RECV:
		m = nng_aio_get_msg(s->aio);
		code = sb_rpc_slot_parse(s, m, &msg) == 0 ? 0 : SB__RPC__CODE__INTERNAL;
		nng_msg_free(m);
		sb_rpc_slot_finish(s, code, msg);
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
	struct sb_rpc_mentry *e;

	if (s != NULL && s->cli == cli && strcmp(s->method, method) == 0 &&
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
	e = sb_rpc_client_mstats(cli, method);
	s->ms = e ? &e->ms : &cli->other;
	s->method = e ? e->name : "other";
	pthread_mutex_unlock(&cli->mu);
	*out = s;
	return 0;
nomem:
	pthread_mutex_unlock(&cli->mu);
	return SB_ENOMEM;
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

int
sb_rpc_call_async(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
                  sb_rpc_done_fn cb, void *arg)
{
	struct sb_rpc_slot *s;
	int64_t timeout_ms;
	nng_msg *m;
	int rv;

	if (cli == NULL || method == NULL || method[0] == '\0' || req == NULL ||
	    resp_desc == NULL || cb == NULL || strlen(method) > SB_RPC_METHOD_MAX)
		return SB_EINVAL;
	timeout_ms = meta && meta->timeout_ms > 0 ? meta->timeout_ms : SB_RPC_DEFAULT_TIMEOUT_MS;
	if ((rv = sb_rpc_client_pack(method, req, meta, timeout_ms, &m)) != 0)
		return rv == SB_ERANGE ? SB_EINVAL : rv;
	if (!sb_rpc_client_enter(cli)) {
		nng_msg_free(m);
		return SB_ECLOSED;
	}
	if ((rv = sb_rpc_client_take(cli, method, &s)) != 0) {
		pthread_rwlock_unlock(&cli->gate);
		nng_msg_free(m);
		return rv;
	}
	s->resp_desc = resp_desc;
	s->cb = cb;
	s->arg = arg;
	s->t0 = sb__rpc_now_mono();
	s->deadline = sb_time_mono_ms() + timeout_ms;
	s->state = SB_RPC_SLOT_SEND;
	memset(&s->res, 0, sizeof(s->res));
	nng_aio_set_msg(s->aio, m);
	nng_aio_set_timeout(s->aio, (nng_duration)timeout_ms);
	nng_ctx_send(s->ctx, s->aio);
	pthread_rwlock_unlock(&cli->gate);
	return 0;
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
