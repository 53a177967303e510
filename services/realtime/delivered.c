/* delivered.c: delivery watermarks. When a message.created frame has been written to a
 * recipient's socket, (conversation, recipient, seq, sender) joins a batch sent to the notifier
 * as notifier.Delivered every 50 ms or at 100 items, asynchronously; a failed batch is logged
 * and dropped (watermarks only move forward, the next message moves them again). Built only
 * when proto/notifier.proto defines DeliveredRequest (RT_HAVE_DELIVERED); otherwise a no-op. */
#include "realtime.h"

#include <stdlib.h>
#include <string.h>

#include "sb_log.h"

#ifdef RT_HAVE_DELIVERED
#include "notifier.pb-c.h"

#define RT_DELIVERED_MAX 100

struct rt_delivered {
	Sb__Notifier__Delivery items[RT_DELIVERED_MAX];
	Sb__Notifier__Delivery *ptrs[RT_DELIVERED_MAX];
	char conv[RT_DELIVERED_MAX][RT_ID_MAX], user[RT_DELIVERED_MAX][RT_ID_MAX],
	    sender[RT_DELIVERED_MAX][RT_ID_MAX];
	size_t n;
};
static struct rt_delivered rt_dlv;

static void
rt_delivered_done(struct sb_rpc_result *res, void *arg)
{
	(void)arg;
	if (res->code != 0)
		sb_log_kv(SB_LOG_WARN, "notifier.Delivered failed", "code",
		          sb_rpc_code_name(res->code), NULL);
	sb_rpc_result_free(res);
}

void
rt_delivered_flush(void)
{
	if (rt_dlv.n == 0 || rt_g.notifier == NULL) {
		rt_dlv.n = 0;
		return;
	}
	Sb__Notifier__DeliveredRequest req = SB__NOTIFIER__DELIVERED_REQUEST__INIT;
	req.n_items = rt_dlv.n;
	req.items = rt_dlv.ptrs;
	struct sb_rpc_meta meta = { .timeout_ms = 5000 };
	sb_rpc_call_async(rt_g.notifier, "notifier.Delivered", &req.base,
	                  &sb__notifier__delivered_response__descriptor, &meta, rt_delivered_done,
	                  NULL);
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
