/* sb_rpc_fuzz: libFuzzer target for the RPC envelope and batch decoding of both ends
 * (services/common/sb_rpc_*.c, compiled again here), driven through their public API over nng's
 * inproc transport: a real sb_rpc server fed raw bytes by a bare REQ socket, and real sb_rpc
 * clients answered with raw bytes by a bare REP socket. The first byte picks the mode:
 *   0  the rest is a request message sent to the server, any bytes;
 *   1  the rest is the payload of an "rpc.Batch" envelope sent to the server;
 *   2  the rest is the reply to a lone client call;
 *   3  the rest is the reply to a batch of 1-4 client calls (bits 2-3: how many); with bit 4
 *      set it is the BatchReply payload of an OK Response instead.
 * The server serves fz.Echo (inline), fz.Defer (inline, answers through sb_rpc_call_finish
 * before returning) and fz.Slow (worker thread), each echoing its RawJson request.
 *
 * Properties: every reply agrees with a model of the protocol written from proto/rpc.proto and
 * sb_rpc.h (fz_serve, fz_result), decoding the same bytes with protobuf-c on its own:
 *   - the server answers anything with a Response (malformed envelope or batch:
 *     INVALID_ARGUMENT; unknown method: UNIMPLEMENTED; a worker method in a batch:
 *     FAILED_PRECONDITION; a passed deadline: DEADLINE_EXCEEDED; a payload that is not the
 *     method's type: INVALID_ARGUMENT; else OK echoing the request), a batch with one Response
 *     per request in order;
 *   - the client hands its caller what the server's reply says (code, message, violations,
 *     retry_after_ms, http_status, the decoded response), in a result the caller owns after
 *     its callback (the results are read after every callback returned); a batch refused as a
 *     whole gives each call that Response; INTERNAL for a reply that does not decode or a
 *     batch reply of the wrong length; every call gets exactly one outcome;
 *   - what the client sends is a well-formed envelope (method, payload, deadline) and, for
 *     batches, a Batch of exactly the calls queued, in order. */
#include "fuzz.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_rpc.h"

#define FZ_SRV_URL "inproc://sb-rpc-fuzz-server"
#define FZ_CLI_URL "inproc://sb-rpc-fuzz-client"
#define FZ_WAIT_MS 5000

static struct {
	struct sb_rpc_server *srv;
	nng_socket req; /* sends raw bytes to srv */
	nng_socket rep; /* answers the clients with raw bytes */
	struct sb_rpc_client *cli, *bcli;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} fz = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* --- the server's methods ----------------------------------------------------------------- */

static int
fz_echo(struct sb_rpc_call *call, const void *req, void *resp)
{
	((Sb__Rpc__RawJson *)resp)->json = ((const Sb__Rpc__RawJson *)req)->json;
	return SB__RPC__CODE__OK;
}

static int
fz_defer(struct sb_rpc_call *call, const void *req, void *resp)
{
	fz_echo(call, req, resp);
	sb_rpc_call_finish(call, SB__RPC__CODE__OK);
	return SB_RPC_DEFER;
}

#define FZ_RAW &sb__rpc__raw_json__descriptor
static const struct sb_rpc_method fz_methods[] = {
	{ "fz.Echo", FZ_RAW, FZ_RAW, fz_echo, SB_RPC_INLINE },
	{ "fz.Defer", FZ_RAW, FZ_RAW, fz_defer, SB_RPC_INLINE },
	{ "fz.Slow", FZ_RAW, FZ_RAW, fz_echo, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};
static const char *const fz_batched[] = { "fz.Batched", NULL };

static void
fz_init(void)
{
	struct sb_rpc_server_opts o = { .url = FZ_SRV_URL, .workers = 1, .methods = fz_methods };
	sb_log_init("sb_rpc_fuzz", SB_LOG_ERROR);
	CHECK(sb_rpc_server_start(&o, &fz.srv) == 0);
	CHECK(nng_req0_open(&fz.req) == 0 && nng_dial(fz.req, FZ_SRV_URL, NULL, 0) == 0);
	nng_socket_set_ms(fz.req, NNG_OPT_RECVTIMEO, FZ_WAIT_MS);
	nng_socket_set_ms(fz.req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	CHECK(nng_rep0_open(&fz.rep) == 0 && nng_listen(fz.rep, FZ_CLI_URL, NULL, 0) == 0);
	nng_socket_set_ms(fz.rep, NNG_OPT_RECVTIMEO, FZ_WAIT_MS);
	CHECK(sb_rpc_client_open(FZ_CLI_URL, &fz.cli) == 0);
	CHECK(sb_rpc_client_open(FZ_CLI_URL, &fz.bcli) == 0);
	CHECK(sb_rpc_client_batch(fz.bcli, fz_batched, 1) == 0);
}

static int64_t
fz_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t *
fz_pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n ? *n : 1);
	CHECK(b != NULL && protobuf_c_message_pack(m, b) == *n);
	return b;
}

static bool
fz_str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* --- server side ------------------------------------------------------------------------- */

/* fz_serve_one checks r, the server's answer to the packed request q[0..n) (in_batch: as one
 * request of a batch), against the protocol. */
static void
fz_serve_one(const uint8_t *q, size_t n, bool in_batch, const Sb__Rpc__Response *r)
{
	CHECK(r->code >= 0 && r->code < SB_RPC_N_CODES);
	Sb__Rpc__Request *env = sb__rpc__request__unpack(NULL, n, q);
	int want = SB__RPC__CODE__OK;
	Sb__Rpc__RawJson *body = NULL;
	if (env == NULL || env->method == NULL || env->method[0] == '\0') {
		want = SB__RPC__CODE__INVALID_ARGUMENT;
	} else {
		const struct sb_rpc_method *m = fz_methods;
		while (m->name != NULL && strcmp(m->name, env->method) != 0)
			m++;
		bool is_inline = m->name != NULL && strcmp(m->name, "fz.Slow") != 0;
		int64_t now = fz_now_ms(), dl = env->deadline_ms;
		if (m->name == NULL) {
			want = SB__RPC__CODE__UNIMPLEMENTED;
		} else if (in_batch && !is_inline) {
			want = SB__RPC__CODE__FAILED_PRECONDITION;
		} else if (dl > 0 && dl < now - 2000) {
			want = SB__RPC__CODE__DEADLINE_EXCEEDED;
		} else if (dl > 0 && dl < now + 2000 &&
		           r->code == SB__RPC__CODE__DEADLINE_EXCEEDED) {
			want = SB__RPC__CODE__DEADLINE_EXCEEDED; /* passed while this ran: fine */
		}
		if (want == SB__RPC__CODE__OK) {
			body = sb__rpc__raw_json__unpack(NULL, env->payload.len, env->payload.data);
			if (body == NULL)
				want = SB__RPC__CODE__INVALID_ARGUMENT;
		}
	}
	CHECK((int)r->code == want);
	if (r->code == SB__RPC__CODE__OK) {
		CHECK(body != NULL);
		Sb__Rpc__RawJson *back =
		    sb__rpc__raw_json__unpack(NULL, r->payload.len, r->payload.data);
		CHECK(back != NULL && fz_str_eq(back->json, body->json));
		sb__rpc__raw_json__free_unpacked(back, NULL);
	} else {
		CHECK(r->message != NULL && r->message[0] != '\0');
	}
	if (body != NULL)
		sb__rpc__raw_json__free_unpacked(body, NULL);
	if (env != NULL)
		sb__rpc__request__free_unpacked(env, NULL);
}

static void
fz_server(const uint8_t *msg, size_t n)
{
	nng_msg *m;
	CHECK(nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, msg, n) == 0);
	CHECK(nng_sendmsg(fz.req, m, 0) == 0);
	CHECK(nng_recvmsg(fz.req, &m, 0) == 0); /* every request is answered */
	Sb__Rpc__Response *r = sb__rpc__response__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	CHECK(r != NULL);

	Sb__Rpc__Request *env = sb__rpc__request__unpack(NULL, n, msg);
	if (env != NULL && env->method != NULL && strcmp(env->method, SB_RPC_BATCH_METHOD) == 0) {
		Sb__Rpc__Batch *b =
		    sb__rpc__batch__unpack(NULL, env->payload.len, env->payload.data);
		if (b == NULL || b->n_requests == 0 || b->n_requests > SB_RPC_BATCH_MAX_CALLS) {
			CHECK(r->code == SB__RPC__CODE__INVALID_ARGUMENT);
		} else {
			CHECK(r->code == SB__RPC__CODE__OK);
			Sb__Rpc__BatchReply *br =
			    sb__rpc__batch_reply__unpack(NULL, r->payload.len, r->payload.data);
			CHECK(br != NULL && br->n_responses == b->n_requests);
			for (size_t i = 0; i < b->n_requests; i++) {
				Sb__Rpc__Response *ri = sb__rpc__response__unpack(
				    NULL, br->responses[i].len, br->responses[i].data);
				CHECK(ri != NULL);
				fz_serve_one(b->requests[i].data, b->requests[i].len, true, ri);
				sb__rpc__response__free_unpacked(ri, NULL);
			}
			sb__rpc__batch_reply__free_unpacked(br, NULL);
		}
		if (b != NULL)
			sb__rpc__batch__free_unpacked(b, NULL);
	} else {
		fz_serve_one(msg, n, false, r);
	}
	if (env != NULL)
		sb__rpc__request__free_unpacked(env, NULL);
	sb__rpc__response__free_unpacked(r, NULL);
}

/* --- client side ------------------------------------------------------------------------- */

#define FZ_MAX_CALLS 5

struct fz_outcome {
	int done;
	struct sb_rpc_result res[FZ_MAX_CALLS];
};

struct fz_cb {
	struct fz_outcome *out;
	int i;
};

static void
fz_done(struct sb_rpc_result *res, void *arg)
{
	struct fz_cb *c = arg;
	pthread_mutex_lock(&fz.mu);
	c->out->res[c->i] = *res;
	c->out->done++;
	pthread_cond_broadcast(&fz.cv);
	pthread_mutex_unlock(&fz.mu);
}

static void
fz_wait(struct fz_outcome *out, int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FZ_WAIT_MS / 1000;
	pthread_mutex_lock(&fz.mu);
	while (out->done < n)
		CHECK(pthread_cond_timedwait(&fz.cv, &fz.mu, &until) == 0 || out->done >= n);
	CHECK(out->done == n); /* exactly one outcome per call */
	pthread_mutex_unlock(&fz.mu);
}

/* fz_expect checks a call's outcome against the Response bytes r[0..n) it was answered with. */
static void
fz_expect(const struct sb_rpc_result *res, const uint8_t *r, size_t n, const char *json)
{
	Sb__Rpc__Response *env = sb__rpc__response__unpack(NULL, n, r);
	CHECK(res->message != NULL);
	if (env == NULL) {
		CHECK(res->code == SB__RPC__CODE__INTERNAL && res->resp == NULL);
		return;
	}
	Sb__Rpc__RawJson *body = NULL;
	if (env->code == SB__RPC__CODE__OK) {
		body = sb__rpc__raw_json__unpack(NULL, env->payload.len, env->payload.data);
		if (body == NULL) {
			CHECK(res->code == SB__RPC__CODE__INTERNAL && res->resp == NULL);
			sb__rpc__response__free_unpacked(env, NULL);
			return;
		}
		CHECK(res->resp != NULL);
		CHECK(fz_str_eq(((Sb__Rpc__RawJson *)res->resp)->json, body->json));
		CHECK(json == NULL || fz_str_eq(body->json, json));
		sb__rpc__raw_json__free_unpacked(body, NULL);
	} else {
		CHECK(res->resp == NULL);
	}
	CHECK(res->code == (int)env->code);
	CHECK(fz_str_eq(res->message, env->message));
	CHECK(res->n_violations == env->n_violations);
	for (size_t i = 0; i < env->n_violations; i++)
		CHECK(fz_str_eq(res->violations[i]->field, env->violations[i]->field) &&
		      fz_str_eq(res->violations[i]->reason, env->violations[i]->reason));
	CHECK(res->retry_after_ms == env->retry_after_ms && res->http_status == env->http_status);
	sb__rpc__response__free_unpacked(env, NULL);
}

/* fz_take receives what a client sent and checks it is the envelope of method; for a batch
 * it returns the Batch (the caller frees it). */
static Sb__Rpc__Batch *
fz_take(const char *method, size_t calls)
{
	nng_msg *m;
	CHECK(nng_recvmsg(fz.rep, &m, 0) == 0);
	Sb__Rpc__Request *env = sb__rpc__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	CHECK(env != NULL && env->deadline_ms > fz_now_ms() - 60000);
	Sb__Rpc__Batch *b = NULL;
	if (calls == 0) {
		CHECK(strcmp(env->method, method) == 0);
		CHECK(fz_str_eq(env->traceparent,
		                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") &&
		      fz_str_eq(env->request_id, "req-1"));
	} else {
		CHECK(strcmp(env->method, SB_RPC_BATCH_METHOD) == 0);
		b = sb__rpc__batch__unpack(NULL, env->payload.len, env->payload.data);
		CHECK(b != NULL && b->n_requests == calls);
		for (size_t i = 0; i < calls; i++) {
			Sb__Rpc__Request *q =
			    sb__rpc__request__unpack(NULL, b->requests[i].len, b->requests[i].data);
			CHECK(q != NULL && strcmp(q->method, method) == 0);
			Sb__Rpc__RawJson *body =
			    sb__rpc__raw_json__unpack(NULL, q->payload.len, q->payload.data);
			char want[16];
			snprintf(want, sizeof(want), "call-%zu", i);
			CHECK(body != NULL && fz_str_eq(body->json, want));
			sb__rpc__raw_json__free_unpacked(body, NULL);
			sb__rpc__request__free_unpacked(q, NULL);
		}
	}
	sb__rpc__request__free_unpacked(env, NULL);
	return b;
}

static void
fz_reply(const uint8_t *r, size_t n)
{
	nng_msg *m;
	CHECK(nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, r, n) == 0);
	CHECK(nng_sendmsg(fz.rep, m, 0) == 0);
}

static void
fz_call(struct sb_rpc_client *cli, const char *method, const char *json, struct fz_cb *cb)
{
	Sb__Rpc__RawJson q = SB__RPC__RAW_JSON__INIT;
	struct sb_rpc_meta meta = {
		.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		.request_id = "req-1",
		.timeout_ms = FZ_WAIT_MS,
	};
	q.json = (char *)json;
	CHECK(sb_rpc_call_async(cli, method, &q.base, FZ_RAW, &meta, fz_done, cb) == 0);
}

static void
fz_client_lone(const uint8_t *r, size_t n)
{
	struct fz_outcome out = { 0 };
	struct fz_cb cb = { &out, 0 };
	fz_call(fz.cli, "fz.Lone", "q", &cb);
	fz_take("fz.Lone", 0);
	fz_reply(r, n);
	fz_wait(&out, 1);
	fz_expect(&out.res[0], r, n, NULL);
	sb_rpc_result_free(&out.res[0]);
}

static void
fz_client_batch(int k, bool wrap, const uint8_t *data, size_t size)
{
	struct fz_outcome first = { 0 }, out = { 0 };
	struct fz_cb cb0 = { &first, 0 }, cbs[FZ_MAX_CALLS];
	char json[FZ_MAX_CALLS][16];

	/* The first call leaves at once, alone; the next k wait for its reply, then leave
	 * together as one batch. */
	fz_call(fz.bcli, "fz.Batched", "call-0", &cb0);
	Sb__Rpc__Batch *b = fz_take("fz.Batched", 1);
	sb__rpc__batch__free_unpacked(b, NULL);
	for (int i = 0; i < k; i++) {
		snprintf(json[i], sizeof(json[i]), "call-%d", i);
		cbs[i] = (struct fz_cb){ &out, i };
		fz_call(fz.bcli, "fz.Batched", json[i], &cbs[i]);
	}
	/* A well-formed answer to the first: OK, one OK Response echoing it. */
	Sb__Rpc__RawJson a = SB__RPC__RAW_JSON__INIT;
	a.json = "answer-0";
	Sb__Rpc__Response inner = SB__RPC__RESPONSE__INIT, outer = SB__RPC__RESPONSE__INIT;
	Sb__Rpc__BatchReply br = SB__RPC__BATCH_REPLY__INIT;
	size_t n1, n2, n3;
	inner.payload.data = fz_pack(&a.base, &n1);
	inner.payload.len = n1;
	ProtobufCBinaryData one = { 0, NULL };
	one.data = fz_pack(&inner.base, &n2);
	one.len = n2;
	br.n_responses = 1;
	br.responses = &one;
	outer.payload.data = fz_pack(&br.base, &n3);
	outer.payload.len = n3;
	size_t nr;
	uint8_t *reply = fz_pack(&outer.base, &nr);
	fz_reply(reply, nr);
	fz_wait(&first, 1);
	fz_expect(&first.res[0], one.data, one.len, "answer-0");
	sb_rpc_result_free(&first.res[0]);
	free(reply);
	free(outer.payload.data);
	free(one.data);
	free(inner.payload.data);

	/* The batch of k, answered with the input. */
	b = fz_take("fz.Batched", (size_t)k);
	sb__rpc__batch__free_unpacked(b, NULL);
	uint8_t *r = (uint8_t *)data;
	size_t rn = size;
	if (wrap) {
		Sb__Rpc__Response ok = SB__RPC__RESPONSE__INIT;
		ok.payload.data = (uint8_t *)data;
		ok.payload.len = size;
		r = fz_pack(&ok.base, &rn);
	}
	fz_reply(r, rn);
	fz_wait(&out, k);

	/* The model: the whole batch fails alike, or each call gets its own Response. */
	Sb__Rpc__Response *env = sb__rpc__response__unpack(NULL, rn, r);
	Sb__Rpc__BatchReply *got =
	    env && env->code == SB__RPC__CODE__OK
	        ? sb__rpc__batch_reply__unpack(NULL, env->payload.len, env->payload.data)
	        : NULL;
	for (int i = 0; i < k; i++) {
		const struct sb_rpc_result *res = &out.res[i];
		CHECK(res->message != NULL);
		if (env == NULL || (env->code == SB__RPC__CODE__OK &&
		                    (got == NULL || got->n_responses != (size_t)k))) {
			CHECK(res->code == SB__RPC__CODE__INTERNAL && res->resp == NULL);
		} else if (env->code != SB__RPC__CODE__OK) {
			fz_expect(res, r, rn, NULL); /* refused as a whole: as a lone call */
		} else {
			fz_expect(res, got->responses[i].data, got->responses[i].len, NULL);
		}
		sb_rpc_result_free(&out.res[i]);
	}
	if (got != NULL)
		sb__rpc__batch_reply__free_unpacked(got, NULL);
	if (env != NULL)
		sb__rpc__response__free_unpacked(env, NULL);
	if (wrap)
		free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz.srv == NULL)
		fz_init();
	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	data++, size--;
	switch (opt & 3) {
	case 0:
		fz_server(data, size);
		break;
	case 1: {
		Sb__Rpc__Request env = SB__RPC__REQUEST__INIT;
		env.method = SB_RPC_BATCH_METHOD;
		env.payload.data = (uint8_t *)data;
		env.payload.len = size;
		size_t n;
		uint8_t *msg = fz_pack(&env.base, &n);
		fz_server(msg, n);
		free(msg);
		break;
	}
	case 2:
		fz_client_lone(data, size);
		break;
	case 3:
		fz_client_batch(((opt >> 2) & 3) + 1, (opt & 16) != 0, data, size);
		break;
	}
	return 0;
}
