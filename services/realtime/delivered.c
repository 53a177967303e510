/* delivered.c: delivery watermarks. When a message.created frame has been written to a
 * recipient's socket, (conversation, recipient, seq, sender) joins a batch sent to the notifier
 * as notifier.Delivered every 50 ms or at 1,000 items, asynchronously. Watermarks only move
 * forward and the next message moves them again, so reporting is best effort: a failed batch
 * is dropped, and so is a batch while RT_DELIVERED_INFLIGHT calls are still unanswered (a
 * notifier that is down or slow must not pile up calls here: with 10,000 connections at 2,000
 * messages/s, batches of 100 each waiting out a 5 s timeout took 17% of the process's CPU).
 * Failures are logged at most every 10 s, with counts. Built only when proto/notifier.proto
 * defines DeliveredRequest (RT_HAVE_DELIVERED); otherwise a no-op. */
#include "realtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_log.h"
#include "sb_util_time.h"

#ifdef RT_HAVE_DELIVERED
#include "notifier.pb-c.h"

#define RT_DELIVERED_MAX      1000
#define RT_DELIVERED_INFLIGHT 4
#define RT_DELIVERED_LOG_MS   10000

struct rt_delivered {
	Sb__Notifier__Delivery items[RT_DELIVERED_MAX];
	Sb__Notifier__Delivery *ptrs[RT_DELIVERED_MAX];
	char conv[RT_DELIVERED_MAX][RT_ID_MAX], user[RT_DELIVERED_MAX][RT_ID_MAX],
	    sender[RT_DELIVERED_MAX][RT_ID_MAX];
	size_t n;
};
static struct rt_delivered rt_dlv;
static atomic_int rt_dlv_inflight;
static atomic_llong rt_dlv_failed, rt_dlv_skipped, rt_dlv_logged_ms;

/* rt_delivered_log reports failed and skipped batches, at most every RT_DELIVERED_LOG_MS. */
static void
rt_delivered_log(const char *code)
{
	long long now = sb_time_mono_ms(), last = atomic_load(&rt_dlv_logged_ms);
	if (now - last < RT_DELIVERED_LOG_MS ||
	    !atomic_compare_exchange_strong(&rt_dlv_logged_ms, &last, now))
		return;
	char failed[24], skipped[24];
	snprintf(failed, sizeof(failed), "%lld", atomic_exchange(&rt_dlv_failed, 0));
	snprintf(skipped, sizeof(skipped), "%lld", atomic_exchange(&rt_dlv_skipped, 0));
	sb_log_kv(SB_LOG_WARN, "notifier.Delivered batches dropped", "last_code", code, "failed",
	          failed, "skipped_busy", skipped, NULL);
}

static void
rt_delivered_done(struct sb_rpc_result *res, void *arg)
{
	(void)arg;
	atomic_fetch_sub(&rt_dlv_inflight, 1);
	if (res->code != 0) {
		atomic_fetch_add(&rt_dlv_failed, 1);
		rt_delivered_log(sb_rpc_code_name(res->code));
	}
	sb_rpc_result_free(res);
}

void
rt_delivered_flush(void)
{
	if (rt_dlv.n == 0 || rt_g.notifier == NULL) {
		rt_dlv.n = 0;
		return;
	}
	if (atomic_load(&rt_dlv_inflight) >= RT_DELIVERED_INFLIGHT) {
		atomic_fetch_add(&rt_dlv_skipped, 1);
		rt_delivered_log("busy");
		rt_dlv.n = 0;
		return;
	}
	Sb__Notifier__DeliveredRequest req = SB__NOTIFIER__DELIVERED_REQUEST__INIT;
	req.n_items = rt_dlv.n;
	req.items = rt_dlv.ptrs;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	atomic_fetch_add(&rt_dlv_inflight, 1);
	if (sb_rpc_call_async(rt_g.notifier, "notifier.Delivered", &req.base,
	                      &sb__notifier__delivered_response__descriptor, &meta,
	                      rt_delivered_done, NULL) != 0) {
		atomic_fetch_sub(&rt_dlv_inflight, 1);
		atomic_fetch_add(&rt_dlv_failed, 1);
		rt_delivered_log("not sent");
	}
	rt_dlv.n = 0;
}

void
rt_delivered_add(const struct rt_frame *f, const char *user)
{
	size_t i = rt_dlv.n;
	sb__notifier__delivery__init(&rt_dlv.items[i]);
	memcpy(rt_dlv.conv[i], f->conv, sizeof(rt_dlv.conv[i]));
	memcpy(rt_dlv.sender[i], f->sender, sizeof(rt_dlv.sender[i]));
	strncpy(rt_dlv.user[i], user, RT_ID_MAX - 1);
	rt_dlv.items[i].conversation_id = rt_dlv.conv[i];
	rt_dlv.items[i].user_id = rt_dlv.user[i];
	rt_dlv.items[i].sender_id = rt_dlv.sender[i];
	rt_dlv.items[i].seq = f->seq;
	rt_dlv.ptrs[i] = &rt_dlv.items[i];
	if (++rt_dlv.n == RT_DELIVERED_MAX)
		rt_delivered_flush();
}
#else
void
rt_delivered_flush(void)
{
}

void
rt_delivered_add(const struct rt_frame *f, const char *user)
{
	(void)f;
	(void)user;
}
#endif
