/* delivered.c: RPC notifier.Delivered. realtime reports message.created frames written to a
 * recipient's socket; each member's last_delivered_seq moves forward only, and when it moved
 * the sender's devices get message.delivered on user:<sender_id>. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
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

/* ntf_delivered_batch moves the watermarks of the n reports in one statement, then publishes
 * message.delivered, in one pipelined Redis round trip, for every report above the watermark
 * its pair had before (and not the sender's own). Counts moved and unchanged reports in m. */
static int
ntf_delivered_batch(struct sb_worker_conns *w, Sb__Notifier__Delivery **items, size_t n,
                    struct sb_metric *m)
{
	struct sb_buf a[3] = { SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT };
	PGresult *res = NULL;
	size_t queued = 0;
	int rv = 0;

	for (size_t i = 0; i < n && rv == 0; i++) {
		char seq[24];
		snprintf(seq, sizeof(seq), "%lld", (long long)items[i]->seq);
		if (sb_pg_array_add(&a[0], items[i]->conversation_id) != 0 ||
		    sb_pg_array_add(&a[1], items[i]->user_id) != 0 ||
		    sb_pg_array_add(&a[2], seq) != 0)
			rv = SB_ENOMEM;
	}
	for (int k = 0; k < 3 && rv == 0; k++)
		rv = sb_pg_array_end(&a[k]);
	if (rv != 0)
		goto done;
	const char *p[] = { a[0].data, a[1].data, a[2].data };
	if ((rv = sb_pg_exec_prepared(w->pg, "delivered_move_batch", 3, p, &res)) != 0)
		goto done;
	int64_t now = sb_time_now_ms();
	for (size_t i = 0; i < n && rv == 0; i++) {
		const Sb__Notifier__Delivery *d = items[i];
		int64_t was = -1;
		for (int r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, 0), d->conversation_id) == 0 &&
			    strcmp(PQgetvalue(res, r, 1), d->user_id) == 0) {
				was = atoll(PQgetvalue(res, r, 2));
				break;
			}
		}
		bool up = was >= 0 && d->seq > was;
		sb_series_inc(sb_metric_with(m, up ? "moved" : "unchanged"));
		if (!up)
			continue;
		if (d->sender_id[0] == '\0' || strcmp(d->sender_id, d->user_id) == 0)
			continue;
		struct ntf_pub pub;
		if ((rv = ntf_frame_delivered(d->conversation_id, d->user_id, d->seq, d->sender_id,
		                              now, &pub)) != 0)
			break;
		rv = sb_redis_append(w->redis, "PUBLISH %s %b", pub.channel, pub.payload, pub.len);
		ntf_pub_free(&pub);
		if (rv == 0)
			queued++;
	}
	/* Every queued PUBLISH leaves in one write; read all replies, also after an error, so the
	 * connection stays usable. */
	if (queued > 0) {
		redisReply **reps = calloc(queued, sizeof(*reps));
		int e = reps == NULL ? SB_ENOMEM : sb_redis_get_replies(w->redis, reps, queued);
		for (size_t i = 0; reps != NULL && i < queued; i++)
			if (reps[i] != NULL)
				freeReplyObject(reps[i]);
		free(reps);
		if (e != 0 && rv == 0)
			rv = e;
	}
done:
	PQclear(res);
	for (int k = 0; k < 3; k++)
		sb_buf_free(&a[k]);
	return rv;
}

int
ntf_rpc_delivered(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Notifier__DeliveredRequest *r = req;
	struct sb_worker_conns *w = sb_service_worker_conns(call);
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
	if (r->n_items == 0)
		return SB__RPC__CODE__OK;
	int rv = ntf_delivered_batch(w, r->items, r->n_items, m);
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT) {
		sb_rpc_call_retry_after(call, 500);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "database or Redis unavailable");
	}
	if (rv != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "delivery update: %s",
		                         sb_strerror(rv));
	return SB__RPC__CODE__OK;
}
