/* delivered.c: delivery watermarks. When a message.created frame has been written to a
 * recipient's socket, (conversation, recipient, seq, sender) joins a batch sent to the notifier
 * as notifier.Delivered every 50 ms or at RT_DELIVERED_MAX items, asynchronously. Watermarks
 * only move forward and the next message moves them again, so reporting is best effort: a
 * failed batch is dropped, and so is a batch while RT_DELIVERED_INFLIGHT calls are still
 * unanswered (a notifier that is down or slow must not pile up calls here: with 10,000
 * connections at 2,000 messages/s, batches of 100 each waiting out a 5 s timeout took 17% of
 * the process's CPU). Failures are logged at most every 10 s, with counts. The batch is built
 * on the lws thread; the replies arrive on nng threads and touch only the atomics. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.pb-c.h"
#include "sb_log.h"
#include "sb_util_time.h"

#define RT_DELIVERED_INFLIGHT 4
#define RT_DELIVERED_LOG_MS   10000

void
rt_delivered_init(struct rt_delivered *d, struct sb_rpc_client *notifier)
{
	d->notifier = notifier;
	d->n = 0;
	atomic_init(&d->inflight, 0);
	atomic_init(&d->failed, 0);
	atomic_init(&d->skipped, 0);
	atomic_init(&d->logged_ms, 0);
}

/* rt_delivered_log reports failed and skipped batches, at most every RT_DELIVERED_LOG_MS. */
static void
rt_delivered_log(struct rt_delivered *d, const char *code)
{
	long long now = sb_time_mono_ms(), last = atomic_load(&d->logged_ms);
	if (now - last < RT_DELIVERED_LOG_MS ||
	    !atomic_compare_exchange_strong(&d->logged_ms, &last, now))
		return;
	char failed[24], skipped[24];
	snprintf(failed, sizeof(failed), "%lld", atomic_exchange(&d->failed, 0));
	snprintf(skipped, sizeof(skipped), "%lld", atomic_exchange(&d->skipped, 0));
	sb_log_kv(SB_LOG_WARN, "notifier.Delivered batches dropped", "last_code", code, "failed",
	          failed, "skipped_busy", skipped, NULL);
}

static void
rt_delivered_done(struct sb_rpc_result *res, void *arg)
{
	struct rt_delivered *d = arg;
	if (res->code != 0) {
		atomic_fetch_add(&d->failed, 1);
		rt_delivered_log(d, sb_rpc_code_name(res->code));
	}
	sb_rpc_result_free(res);
	atomic_fetch_sub(&d->inflight, 1);
}

void
rt_delivered_flush(struct rt_delivered *d)
{
	if (d->n == 0 || d->notifier == NULL) {
		d->n = 0;
		return;
	}
	if (atomic_load(&d->inflight) >= RT_DELIVERED_INFLIGHT) {
		atomic_fetch_add(&d->skipped, 1);
		rt_delivered_log(d, "busy");
		d->n = 0;
		return;
	}
	/* the request is packed before sb_rpc_call_async returns: its items live until then */
	Sb__Notifier__Delivery *items = malloc(d->n * sizeof(*items));
	Sb__Notifier__Delivery **ptrs = malloc(d->n * sizeof(*ptrs));
	if (items == NULL || ptrs == NULL) {
		atomic_fetch_add(&d->failed, 1);
		rt_delivered_log(d, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < d->n; i++) {
		sb__notifier__delivery__init(&items[i]);
		items[i].conversation_id = d->conv[i];
		items[i].user_id = d->user[i];
		items[i].sender_id = d->sender[i];
		items[i].seq = d->seq[i];
		ptrs[i] = &items[i];
	}
	Sb__Notifier__DeliveredRequest req = SB__NOTIFIER__DELIVERED_REQUEST__INIT;
	req.n_items = d->n;
	req.items = ptrs;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	atomic_fetch_add(&d->inflight, 1);
	if (sb_rpc_call_async(d->notifier, "notifier.Delivered", &req.base,
	                      &sb__notifier__delivered_response__descriptor, &meta,
	                      rt_delivered_done, d) != 0) {
		atomic_fetch_sub(&d->inflight, 1);
		atomic_fetch_add(&d->failed, 1);
		rt_delivered_log(d, "not sent");
	}
done:
	free(items);
	free(ptrs);
	d->n = 0;
}

void
rt_delivered_add(struct rt_delivered *d, const struct rt_frame *f, const char *user)
{
	size_t i = d->n;
	memcpy(d->conv[i], f->conv, sizeof(d->conv[i]));
	memcpy(d->sender[i], f->sender, sizeof(d->sender[i]));
	snprintf(d->user[i], sizeof(d->user[i]), "%s", user);
	d->seq[i] = f->seq;
	if (++d->n == RT_DELIVERED_MAX)
		rt_delivered_flush(d);
}
