/* send.c: the send path. Workers validate a send and queue it; one committer thread takes
 * everything queued (up to batch_max) and commits it in one transaction (commit.c), then
 * answers each waiting worker. Nothing is answered OK before COMMIT returned. */
#include "messages.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_time.h"

/* Provided by the RPC runtime once it carries an HTTP status hint (200 for a repeated send);
 * until then the weak reference is NULL and the gateway answers the route's status. */
extern void sb_rpc_call_set_http_status(struct sb_rpc_call *call, int status) __attribute__((weak));

struct msg_batcher {
	pthread_mutex_t mu;
	pthread_cond_t work; /* committer: the queue is not empty or stop */
	pthread_cond_t done; /* workers: some item was answered */
	struct msg_send_item *head, *tail;
	bool stop;
	int batch_max;
	struct sb_pg *pg;
	pthread_t thread;
	struct sb_series *sent, *batch_size, *duration;
};

static void *
msg_batcher_main(void *arg)
{
	struct msg_batcher *b = arg;
	struct msg_send_item **items = calloc((size_t)b->batch_max, sizeof(*items));
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->stop && b->head == NULL)
			pthread_cond_wait(&b->work, &b->mu);
		if (b->stop || items == NULL)
			break;
		size_t n = 0;
		while (b->head != NULL && n < (size_t)b->batch_max) {
			items[n++] = b->head;
			b->head = b->head->next;
		}
		if (b->head == NULL)
			b->tail = NULL;
		pthread_mutex_unlock(&b->mu);

		msg_commit_batch(b->pg, items, n);
		sb_series_observe(b->batch_size, (double)n);
		size_t ok = 0;
		for (size_t i = 0; i < n; i++)
			ok += items[i]->code == SB__RPC__CODE__OK && !items[i]->duplicate;
		sb_series_add(b->sent, (double)ok);

		pthread_mutex_lock(&b->mu);
		for (size_t i = 0; i < n; i++)
			items[i]->done = true;
		pthread_cond_broadcast(&b->done);
	}
	/* Stopping (or out of memory): answer whatever is still queued. */
	for (struct msg_send_item *it = b->head; it != NULL; it = it->next) {
		it->code = SB__RPC__CODE__UNAVAILABLE;
		it->error = "service stopping";
		it->retry_after_ms = 1000;
		it->done = true;
	}
	b->head = b->tail = NULL;
	pthread_cond_broadcast(&b->done);
	pthread_mutex_unlock(&b->mu);
	free(items);
	return NULL;
}

int
msg_batcher_start(struct sb_pg *pg, int batch_max, struct msg_batcher **out)
{
	static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 };
	struct msg_batcher *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return SB_ENOMEM;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->work, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->done, &ca);
	pthread_condattr_destroy(&ca);
	b->batch_max = batch_max;
	b->pg = pg;
	b->sent = sb_metric_with(sb_metrics_counter(
	    "messages_sent_total", "Messages committed (duplicates excluded).", NULL));
	b->batch_size = sb_metric_with(
	    sb_metrics_histogram("messages_batch_size", "Sends per group-commit transaction.", NULL,
	                         sizes, sizeof(sizes) / sizeof(sizes[0])));
	b->duration = sb_metric_with(
	    sb_metrics_histogram("messages_send_duration_seconds",
	                         "Time from a send's arrival to its answer.", NULL, NULL, 0));
	if (pthread_create(&b->thread, NULL, msg_batcher_main, b) != 0) {
		pthread_cond_destroy(&b->done);
		pthread_cond_destroy(&b->work);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return SB_EIO;
	}
	*out = b;
	return 0;
}

void
msg_batcher_stop(struct msg_batcher *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	sb_pg_close(b->pg);
	pthread_cond_destroy(&b->done);
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* msg_batcher_unlink removes a still-queued item; returns whether it was queued. */
static bool
msg_batcher_unlink(struct msg_batcher *b, struct msg_send_item *it)
{
	struct msg_send_item *prev = NULL;
	for (struct msg_send_item *p = b->head; p != NULL; prev = p, p = p->next) {
		if (p != it)
			continue;
		if (prev == NULL)
			b->head = p->next;
		else
			prev->next = p->next;
		if (b->tail == p)
			b->tail = prev;
		return true;
	}
	return false;
}

void
msg_batcher_submit(struct msg_batcher *b, struct msg_send_item *it, int64_t deadline_mono_ms)
{
	pthread_mutex_lock(&b->mu);
	if (b->stop) {
		pthread_mutex_unlock(&b->mu);
		it->code = SB__RPC__CODE__UNAVAILABLE;
		it->error = "service stopping";
		it->retry_after_ms = 1000;
		return;
	}
	it->next = NULL;
	if (b->tail != NULL)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	pthread_cond_signal(&b->work);
	while (!it->done) {
		int64_t left = deadline_mono_ms - sb_time_mono_ms();
		if (left <= 0) {
			/* Taken by the committer: its outcome is coming, wait for it (statements
			 * are bounded by statement_timeout). Still queued: give up without a write.
			 */
			if (msg_batcher_unlink(b, it)) {
				it->code = SB__RPC__CODE__UNAVAILABLE;
				it->error = "send not committed before the deadline";
				it->retry_after_ms = 1000;
				break;
			}
			pthread_cond_wait(&b->done, &b->mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->done, &b->mu, &ts);
	}
	pthread_mutex_unlock(&b->mu);
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
	if (!ok)
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
	struct msg_send_item it = {
		.tenant = who.tenant,
		.id = id,
		.conv = conv,
		.sender = who.user,
		.content = req->content,
		.content_type = ctype,
		.metadata_json = meta,
		.idem_key = il ? req->idempotency_key : NULL,
		.traceparent = sb_rpc_call_traceparent(call),
	};
	int64_t left = sb_rpc_call_remaining_ms(call);
	if (left > 60000)
		left = 60000;
	msg_batcher_submit(st->batcher, &it, t0 + left);
	sb_series_observe(st->batcher->duration, (double)(sb_time_mono_ms() - t0) / 1000.0);
	if (it.code != SB__RPC__CODE__OK) {
		if (it.retry_after_ms > 0)
			sb_rpc_call_retry_after(call, it.retry_after_ms);
		return sb_rpc_call_error(call, it.code, "%s", it.error ? it.error : "send failed");
	}
	resp->id = sb_rpc_call_strdup(call, it.out_id);
	resp->conversation_id = sb_rpc_call_strdup(call, it.out_conv);
	resp->seq = it.seq;
	resp->created_at = msg_time_str(call, it.created_ms);
	if (it.duplicate) /* the original answer, nothing written: 200 instead of the route's 202 */
		sb_rpc_call_set_http_status(call, 200);
	return SB__RPC__CODE__OK;
}
