/* uploads.c: the uploads task. Upload bytes belong to files (its storage backend), so gc does
 * not delete them itself: the leader asks files.Expire to, with gc's clock, once per round. */
#include "gc.h"

#include <pthread.h>
#include <stdio.h>

#include "files.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_time.h"

static struct {
	pthread_once_t once;
	struct sb_series *cleaned; /* gc_uploads_cleaned_total */
} gc_up = { PTHREAD_ONCE_INIT, NULL };

static void
gc_uploads_metrics(void)
{
	gc_up.cleaned = sb_metric_with(sb_metrics_counter(
	    "gc_uploads_cleaned_total",
	    "Uploads files cleaned at gc's request (abandoned, expired, or terminated with bytes "
	    "left).",
	    NULL));
}

int
gc_uploads_run(struct gc *g, long *cleaned)
{
	pthread_once(&gc_up.once, gc_uploads_metrics);
	*cleaned = 0;
	if (g->files == NULL)
		return SB_EUNAVAIL;
	int64_t now_ms = sb_time_now_ms() + g->cfg->clock_offset_s * 1000;
	Sb__Files__ExpireRequest req = SB__FILES__EXPIRE_REQUEST__INIT;
	req.now_ms = now_ms;
	req.abandoned_before_ms = now_ms - g->cfg->upload_abandon_s * 1000;
	req.limit = g->cfg->batch < 1000 ? (int32_t)g->cfg->batch : 1000;
	bool more = true;
	while (more && !atomic_load(&g->stop)) {
		struct sb_rpc_meta meta = { .timeout_ms = 30000 };
		struct sb_rpc_result res;
		if (sb_rpc_call(g->files, "files.Expire", &req.base,
		                &sb__files__expire_response__descriptor, &meta, &res) != 0)
			return SB_EUNAVAIL;
		if (res.code != SB__RPC__CODE__OK) {
			sb_log_kv(SB_LOG_WARN, "gc: files.Expire failed", "code",
			          sb_rpc_code_name(res.code), "message", res.message, NULL);
			sb_rpc_result_free(&res);
			return SB_EUNAVAIL;
		}
		const Sb__Files__ExpireResponse *r = (const void *)res.resp;
		long n = (long)r->abandoned + r->expired + r->terminated;
		*cleaned += n;
		sb_series_add(gc_up.cleaned, (double)n);
		more = r->more && n > 0;
		sb_rpc_result_free(&res);
	}
	return 0;
}
