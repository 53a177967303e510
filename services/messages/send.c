/* send.c: the send path. msg_rpc_send validates a send on the nng thread that received it and
 * queues it on its conversation's lane without waiting (SB_RPC_DEFER); the lane's committer
 * thread takes everything queued (up to batch_max), commits it in one transaction (commit.c),
 * then answers each send itself (msg_send_answer). Nothing is answered OK before COMMIT
 * returned. */
#include "messages.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_hash.h"
#include "sb_util_time.h"

/* One committer: its queue, its connection and its thread. Sends are spread over the lanes by
 * conversation, so two lanes never lock the same conversation row and each conversation's sends
 * are committed in arrival order by one thread. Several lanes keep several transactions in
 * flight, so the database's commit latency (one WAL flush per transaction) no longer bounds
 * the send rate; PostgreSQL flushes the commits that arrive together at once. */
struct msg_lane {
	pthread_mutex_t mu;
	pthread_cond_t work; /* committer: the queue is not empty or stop */
	struct msg_send_item *head, *tail;
	bool stop;
	bool started;
	int batch_max;
	int64_t delay_us; /* after a batch of several sends, wait this long before the next */
	struct sb_pg *pg;
	pthread_t thread;
	struct msg_batcher *b;
};

struct msg_batcher {
	size_t n;
	struct msg_lane *lanes;
	struct sb_series *sent, *batch_size, *duration;
};

/* msg_send_refuse answers a send UNAVAILABLE without writing it (retry in a second). */
static void
msg_send_refuse(struct msg_batcher *b, struct msg_send_item *it, const char *why)
{
	it->code = SB__RPC__CODE__UNAVAILABLE;
	it->error = why;
	it->retry_after_ms = 1000;
	msg_send_answer(b, it);
}

static void *
msg_lane_main(void *arg)
{
	struct msg_lane *l = arg;
	struct msg_send_item **items = calloc((size_t)l->batch_max, sizeof(*items));

	size_t last_n = 0;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->stop && l->head == NULL)
			pthread_cond_wait(&l->work, &l->mu);
		if (l->stop || items == NULL)
			break;
		if (l->delay_us > 0 && last_n > 1) {
			/* Under concurrent load, let more sends join this batch: fewer, larger
			 * transactions cost the database less per message. An idle lane (the last
			 * batch had one send) commits at once. */
			pthread_mutex_unlock(&l->mu);
			struct timespec d = { (time_t)(l->delay_us / 1000000),
				              (long)(l->delay_us % 1000000) * 1000 };
			nanosleep(&d, NULL);
			pthread_mutex_lock(&l->mu);
			if (l->stop)
				break;
		}
		size_t n = 0;
		struct msg_send_item *late = NULL;
		int64_t now = sb_time_mono_ms();
		while (l->head != NULL && n < (size_t)l->batch_max) {
			struct msg_send_item *it = l->head;
			l->head = it->next;
			if (it->deadline_mono_ms <= now) { /* its caller gave up: no write */
				it->next = late;
				late = it;
				continue;
			}
			items[n++] = it;
		}
		if (l->head == NULL)
			l->tail = NULL;
		pthread_mutex_unlock(&l->mu);
		for (struct msg_send_item *it = late, *next; it != NULL; it = next) {
			next = it->next;
			msg_send_refuse(l->b, it, "send not committed before the deadline");
		}
		if (n == 0) {
			pthread_mutex_lock(&l->mu);
			continue;
		}

		last_n = n;
		msg_commit_batch(l->pg, items, n);
		sb_series_observe(l->b->batch_size, (double)n);
		size_t ok = 0;
		for (size_t i = 0; i < n; i++)
			ok += items[i]->code == SB__RPC__CODE__OK && !items[i]->duplicate;
		sb_series_add(l->b->sent, (double)ok);

		for (size_t i = 0; i < n; i++)
			msg_send_answer(l->b, items[i]);
		pthread_mutex_lock(&l->mu);
	}
	/* Stopping (or out of memory): answer whatever is still queued. */
	struct msg_send_item *it = l->head, *next;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	for (; it != NULL; it = next) {
		next = it->next;
		msg_send_refuse(l->b, it, "service stopping");
	}
	free(items);
	return NULL;
}

static void
msg_lane_fini(struct msg_lane *l)
{
	if (l->started) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->work);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	sb_pg_close(l->pg);
	pthread_cond_destroy(&l->work);
	pthread_mutex_destroy(&l->mu);
}

int
msg_batcher_start(struct sb_pg **pgs, size_t n, int batch_max, int64_t delay_us,
                  struct msg_batcher **out)
{
	static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 };
	struct msg_batcher *b = calloc(1, sizeof(*b));

	if (b == NULL || n == 0 || (b->lanes = calloc(n, sizeof(*b->lanes))) == NULL) {
		for (size_t i = 0; i < n; i++)
			sb_pg_close(pgs[i]);
		free(b);
		return n == 0 ? SB_EINVAL : SB_ENOMEM;
	}
	b->sent = sb_metric_with(sb_metrics_counter(
	    "messages_sent_total", "Messages committed (duplicates excluded).", NULL));
	b->batch_size = sb_metric_with(
	    sb_metrics_histogram("messages_batch_size", "Sends per group-commit transaction.", NULL,
	                         sizes, sizeof(sizes) / sizeof(sizes[0])));
	b->duration = sb_metric_with(
	    sb_metrics_histogram("messages_send_duration_seconds",
	                         "Time from a send's arrival to its answer.", NULL, NULL, 0));
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		struct msg_lane *l = &b->lanes[i];
		pthread_mutex_init(&l->mu, NULL);
		pthread_cond_init(&l->work, NULL);
		l->batch_max = batch_max;
		l->delay_us = delay_us;
		l->pg = pgs[i];
		l->b = b;
		b->n++;
		if (rv == 0 && pthread_create(&l->thread, NULL, msg_lane_main, l) != 0)
			rv = SB_EIO;
		l->started = rv == 0;
	}
	if (rv != 0) {
		msg_batcher_stop(b);
		return rv;
	}
	*out = b;
	return 0;
}

void
msg_batcher_stop(struct msg_batcher *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		msg_lane_fini(&b->lanes[i]);
	free(b->lanes);
	free(b);
}

size_t
msg_lane_of(const char *tenant, const char *conv, size_t n)
{
	/* FNV-1a over tenant, its NUL, conversation. The lane is chosen in this process only
	 * (nothing stored or sent depends on it), so the hash may change between versions. */
	uint64_t h = sb_hash_fnv1a64(tenant, strlen(tenant) + 1);
	h = sb_hash_fnv1a64_more(h, conv, strlen(conv));
	return (size_t)(h % n);
}

void
msg_batcher_submit(struct msg_batcher *b, struct msg_send_item *it)
{
	struct msg_lane *l = &b->lanes[msg_lane_of(it->tenant, it->conv, b->n)];

	pthread_mutex_lock(&l->mu);
	if (l->stop) {
		pthread_mutex_unlock(&l->mu);
		msg_send_refuse(b, it, "service stopping");
		return;
	}
	it->next = NULL;
	if (l->tail != NULL)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	pthread_cond_signal(&l->work);
	pthread_mutex_unlock(&l->mu);
}

void
msg_send_answer(struct msg_batcher *b, struct msg_send_item *it)
{
	struct sb_rpc_call *call = it->call;
	Sb__Messages__SendResponse *resp = it->resp;
	int code = it->code;

	sb_series_observe(b->duration, (double)(sb_time_mono_ms() - it->t0_mono_ms) / 1000.0);
	if (code != SB__RPC__CODE__OK) {
		if (it->retry_after_ms > 0)
			sb_rpc_call_retry_after(call, it->retry_after_ms);
		code = sb_rpc_call_error(call, code, "%s", it->error ? it->error : "send failed");
	} else {
		resp->id = sb_rpc_call_strdup(call, it->out_id);
		resp->conversation_id = sb_rpc_call_strdup(call, it->out_conv);
		resp->seq = it->seq;
		resp->created_at = msg_time_str(call, it->created_ms);
		/* a repeat: the original answer, nothing written: 200 instead of the route's 202 */
		if (it->duplicate)
			sb_rpc_call_set_http_status(call, 200);
	}
	sb_rpc_call_finish(call, code); /* it lived in the call's arena: not used after this */
}

/* msg_send_metadata validates the metadata map and writes it as a JSON object. */
static char *
msg_send_metadata(struct sb_rpc_call *call, const Sb__Messages__SendRequest *req, bool *ok)
{
	if (req->n_metadata > MSG_METADATA_MAX) {
		sb_rpc_call_violation(call, "metadata", "more than 32 entries");
		*ok = false;
		return NULL;
	}
	json_t *obj = json_object();
	if (obj == NULL)
		return NULL;
	for (size_t i = 0; i < req->n_metadata; i++) {
		const char *k = req->metadata[i]->key, *v = req->metadata[i]->value;
		size_t kl = strlen(k), vl = strlen(v);
		if (kl == 0 || kl > MSG_META_KEY_MAX || vl > MSG_META_VALUE_MAX ||
		    !msg_utf8_valid(k, kl) || !msg_utf8_valid(v, vl)) {
			char f[160];
			snprintf(f, sizeof(f), "metadata.%.128s", msg_utf8_valid(k, kl) ? k : "?");
			sb_rpc_call_violation(
			    call, f, "keys of 1-128 and values of at most 1024 bytes of UTF-8");
			*ok = false;
			continue;
		}
		json_object_set_new(obj, k, json_string(v));
	}
	char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	char *out = s ? sb_rpc_call_strdup(call, s) : NULL;
	free(s);
	return out;
}

int
msg_rpc_send(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__SendRequest *req = reqp;
	Sb__Messages__SendResponse *resp = respp;
	int64_t t0 = sb_time_mono_ms();
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_uuid(call, "id", req->id);
	ok = msg_valid_uuid(call, "conversation_id", req->conversation_id) && ok;
	ok = msg_valid_content(call, req->content) && ok;
	const char *ctype = msg_content_type(call, req->content_type);
	ok = ctype != NULL && ok;
	size_t il = strlen(req->idempotency_key);
	if (il > MSG_IDEM_KEY_MAX || !msg_utf8_valid(req->idempotency_key, il)) {
		sb_rpc_call_violation(call, "idempotency_key",
		                      "longer than 255 bytes or not UTF-8");
		ok = false;
	}
	char *meta = msg_send_metadata(call, req, &ok);
	struct msg_send_item *it = sb_rpc_call_alloc(call, sizeof(*it));
	if (it == NULL)
		return SB_ENOMEM;
	int arv = msg_attach_parse(call, req, it);
	if (arv == SB_ENOMEM)
		return SB_ENOMEM;
	if (!ok || arv != 0)
		return msg_invalid(call);
	if (meta == NULL)
		return SB_ENOMEM;

	/* Ids are compared as text from here on: use the canonical lower-case form. */
	struct sb_uuid u;
	char id[SB_UUID_STR_LEN + 1], conv[SB_UUID_STR_LEN + 1];
	sb_uuid_parse(req->id, &u);
	sb_uuid_format(&u, id);
	sb_uuid_parse(req->conversation_id, &u);
	sb_uuid_format(&u, conv);

	struct msg_state *st = sb_service_state(sb_service_from_call(call));
	char *aid = sb_rpc_call_strdup(call, id), *aconv = sb_rpc_call_strdup(call, conv);
	if (aid == NULL || aconv == NULL)
		return SB_ENOMEM;
	int64_t left = sb_rpc_call_remaining_ms(call);
	if (left > 60000)
		left = 60000;
	*it = (struct msg_send_item){
		.tenant = who.tenant,
		.id = aid,
		.conv = aconv,
		.sender = who.user,
		.content = req->content,
		.content_type = ctype,
		.metadata_json = meta,
		.idem_key = il ? req->idempotency_key : NULL,
		.attachments = it->attachments,
		.att = it->att,
		.n_att = it->n_att,
		.traceparent = sb_rpc_call_traceparent(call),
		.call = call,
		.resp = resp,
		.t0_mono_ms = t0,
		.deadline_mono_ms = t0 + left,
	};
	/* With attachments, files checks them first; its answer queues the send (attach.c). */
	if (it->n_att > 0)
		return msg_attach_check(call, st->batcher, it);
	/* Answered by the committer after COMMIT (msg_send_answer): no thread waits here. */
	msg_batcher_submit(st->batcher, it);
	return SB_RPC_DEFER;
}
