/* delivered.c: RPC notifier.Delivered. realtime reports message.created frames written to a
 * recipient's socket; each member's last_delivered_seq moves forward only, and when it moved
 * the sender's devices get message.delivered on user:<sender_id>. */
#include "notifier.h"

#include <stdio.h>
#include <string.h>

#include "notifier.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_time.h"

#define NTF_DELIVERED_MAX_ITEMS 1000
#define NTF_ID_MAX              128

static bool
ntf_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > NTF_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* ntf_delivered_one applies one item; *moved tells whether the watermark moved. */
static int
ntf_delivered_one(struct ntf_worker *w, const Sb__Notifier__Delivery *d, bool *moved)
{
	char seq[24];
	PGresult *res = NULL;
	snprintf(seq, sizeof(seq), "%lld", (long long)d->seq);
	const char *p[] = { d->conversation_id, d->user_id, seq };
	int rv = sb_pg_exec_prepared(w->pg, "delivered_move", 3, p, &res);
	if (rv != 0)
		return rv;
	*moved = PQntuples(res) > 0;
	PQclear(res);
	if (!*moved || d->sender_id[0] == '\0' || strcmp(d->sender_id, d->user_id) == 0)
		return 0;
	struct ntf_pub pub;
	if ((rv = ntf_frame_delivered(d->conversation_id, d->user_id, d->seq, d->sender_id,
	                              sb_time_now_ms(), &pub)) != 0)
		return rv;
	redisReply *rep =
	    sb_redis_command(w->redis, "PUBLISH %s %b", pub.channel, pub.payload, pub.len);
	rv = rep == NULL ? sb_redis_err(w->redis) : 0;
	if (rep != NULL)
		freeReplyObject(rep);
	ntf_pub_free(&pub);
	return rv;
}

int
ntf_rpc_delivered(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Notifier__DeliveredRequest *r = req;
	struct ntf_worker *w = sb_rpc_call_worker_state(call);
	struct sb_metric *m =
	    sb_metrics_counter("notifier_delivered_total",
	                       "Delivery reports, by whether the watermark moved.", "result");
	(void)resp;

	if (w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no worker state");
	if (r->n_items > NTF_DELIVERED_MAX_ITEMS)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "at most %d items per call", NTF_DELIVERED_MAX_ITEMS);
	/* Validate the whole batch before applying any of it. */
	for (size_t i = 0; i < r->n_items; i++) {
		const Sb__Notifier__Delivery *d = r->items[i];
		char path[64];
		const char *bad = !ntf_id_ok(d->conversation_id) ? "conversation_id"
		                  : !ntf_id_ok(d->user_id)       ? "user_id"
		                  : d->seq <= 0                  ? "seq"
		                  : (d->sender_id[0] != '\0' && !ntf_id_ok(d->sender_id))
		                      ? "sender_id"
		                      : NULL;
		if (bad == NULL)
			continue;
		snprintf(path, sizeof(path), "items[%zu].%s", i, bad);
		sb_rpc_call_violation(call, path,
		                      strcmp(bad, "seq") == 0
		                          ? "must be a positive message seq"
		                          : "must be a non-empty id without spaces");
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "invalid %s", path);
	}
	for (size_t i = 0; i < r->n_items; i++) {
		bool moved = false;
		int rv = ntf_delivered_one(w, r->items[i], &moved);
		if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT) {
			sb_rpc_call_retry_after(call, 500);
			return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
			                         "database or Redis unavailable");
		}
		if (rv != 0)
			return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
			                         "delivery update: %s", sb_strerror(rv));
		sb_series_inc(sb_metric_with(m, moved ? "moved" : "unchanged"));
	}
	return SB__RPC__CODE__OK;
}
