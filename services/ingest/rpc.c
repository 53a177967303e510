/* rpc.c: ingest.Test, behind POST /api/v1/ingest/test: samples injected through the same
 * normalization and pipe as the feed's updates. Every bad field is named (400); while the pipe
 * is above its high watermark, or the samples would not fit, the answer is RESOURCE_EXHAUSTED
 * with a retry-after (429 + Retry-After at the edge) and nothing of the request is taken. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

static struct sb_series *
ing_rpc_received(void)
{
	static _Atomic(struct sb_series *) s;
	struct sb_series *v = atomic_load(&s);
	if (!v) {
		v = sb_metric_with(sb_metrics_counter("ingest_received_total",
		                                      "Samples received, by origin.", "origin"),
		                   ING_ORIGIN_TEST);
		atomic_store(&s, v);
	}
	return v;
}

int
ing_rpc_test(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Ingest__TestRequest *in = req;
	Sb__Ingest__TestResponse *out = resp;
	struct ing_state *st = sb_service_state(sb_service_from_call(call));
	const struct ing_mapping *m = &st->map;
	char path[160], why[160];
	int bad = 0;
	if (in->n_samples == 0)
		return sb_rpc_call_violation(call, "samples", "must hold at least one sample"),
		       sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "no samples");
	if (in->n_samples > (size_t)st->cfg->test_max_samples) {
		snprintf(why, sizeof(why), "at most %lld samples per request",
		         st->cfg->test_max_samples);
		sb_rpc_call_violation(call, "samples", why);
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "too many samples");
	}
	struct ing_event **evs = calloc(in->n_samples, sizeof(*evs));
	struct ing_raw *raw = calloc(m->nfields, sizeof(*raw));
	if (!evs || !raw) {
		free(evs);
		free(raw);
		return SB_ENOMEM;
	}
	int64_t now = sb_time_now_ms(), mono = sb_time_mono_ms();
	int ret = SB__RPC__CODE__OK;
	for (size_t i = 0; i < in->n_samples && bad < 8; i++) {
		const Sb__Ingest__Sample *smp = in->samples[i];
		if (ing_mapping_item(m, smp->item) < 0) {
			snprintf(path, sizeof(path), "samples[%zu].item", i);
			sb_rpc_call_violation(call, path, "not an item of the mapping");
			bad++;
			continue;
		}
		if (smp->server_ts_ms < 0) {
			snprintf(path, sizeof(path), "samples[%zu].server_ts_ms", i);
			sb_rpc_call_violation(call, path, "must be a Unix time in ms (>= 0)");
			bad++;
			continue;
		}
		memset(raw, 0, m->nfields * sizeof(*raw));
		bool ok = true;
		for (size_t k = 0; k < smp->n_fields; k++) {
			const char *key = smp->fields[k]->key ? smp->fields[k]->key : "";
			int f = ing_mapping_field(m, key);
			if (f < 0) {
				snprintf(path, sizeof(path), "samples[%zu].fields.%.64s", i, key);
				sb_rpc_call_violation(call, path, "not a field of the mapping");
				bad++;
				ok = false;
				continue;
			}
			const char *v = smp->fields[k]->value ? smp->fields[k]->value : "";
			raw[f] = (struct ing_raw){ v, strlen(v) };
		}
		if (!ok)
			continue;
		int badf = -1;
		int rc = ing_event_build(m, smp->item, raw,
		                         smp->server_ts_ms > 0 ? smp->server_ts_ms : -1,
		                         ING_ORIGIN_TEST, now, &evs[i], &badf, why, sizeof(why));
		if (rc == SB_EINVAL) {
			snprintf(path, sizeof(path), "samples[%zu].fields.%s", i,
			         badf >= 0 ? m->fields[badf].name : "?");
			sb_rpc_call_violation(call, path, why);
			bad++;
		} else if (rc) {
			ret = rc;
			break;
		} else {
			evs[i]->recv_mono_ms = mono;
		}
	}
	if (ret == SB__RPC__CODE__OK && bad > 0)
		ret = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                        "%d invalid field(s) in the samples", bad);
	if (ret == SB__RPC__CODE__OK) {
		out->event_ids = sb_rpc_call_alloc(call, in->n_samples * sizeof(char *));
		for (size_t i = 0; out->event_ids && i < in->n_samples; i++)
			out->event_ids[i] = sb_rpc_call_strdup(call, evs[i]->event_id);
		if (!out->event_ids) {
			ret = SB_ENOMEM;
		} else {
			out->n_event_ids = in->n_samples;
			int rc = ing_pipe_submit(st->pipe, evs, in->n_samples, false);
			if (rc == 0) {
				sb_series_add(ing_rpc_received(), (double)in->n_samples);
				free(evs);
				free(raw);
				return SB__RPC__CODE__OK;
			}
			out->n_event_ids = 0;
			if (rc == SB_EBUSY) {
				sb_rpc_call_retry_after(call, st->cfg->retry_after_ms);
				ret =
				    sb_rpc_call_error(call, SB__RPC__CODE__RESOURCE_EXHAUSTED,
				                      "ingest queue above its high watermark (%lld "
				                      "samples waiting for Kafka)",
				                      ing_pipe_depth(st->pipe));
			} else {
				sb_rpc_call_retry_after(call, st->cfg->retry_after_ms);
				ret = sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
				                        "ingest is shutting down");
			}
		}
	}
	for (size_t i = 0; i < in->n_samples; i++)
		ing_event_free(evs[i]);
	free(evs);
	free(raw);
	return ret;
}
