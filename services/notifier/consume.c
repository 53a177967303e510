/* consume.c: the consumer thread. For each event of sb.messages.v1: queue its webhook
 * deliveries (idempotent), publish it once to Redis (deduplicated by ce_id), then commit its
 * offset. A step that fails (database or Redis down) is retried with backoff and nothing is
 * committed meanwhile, so a crash or restart redelivers the event and loses nothing. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

enum ntf_outcome { NTF_PUBLISHED, NTF_DUPLICATE, NTF_IGNORED, NTF_INVALID };
static const char *const ntf_outcome_names[] = { "published", "duplicate", "ignored", "invalid" };

static void
ntf_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
ntf_count_event(const char *type, enum ntf_outcome o)
{
	struct sb_metric *m = sb_metrics_counter(
	    "notifier_events_total", "Events consumed, by type and outcome.", "type,result");
	sb_series_inc(sb_metric_with(m, type, ntf_outcome_names[o]));
}

/* ntf_update_lag sets the lag gauge: high watermark minus position over the assignment, from
 * librdkafka's cached watermarks (no broker round trip). */
static void
ntf_update_lag(struct ntf_state *st)
{
	rd_kafka_t *rk = sb_kafka_consumer_handle(st->kc);
	rd_kafka_topic_partition_list_t *parts = NULL;
	long long lag = 0;
	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	rd_kafka_position(rk, parts);
	for (int i = 0; i < parts->cnt; i++) {
		int64_t lo = -1, hi = -1;
		rd_kafka_topic_partition_t *p = &parts->elems[i];
		if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) != 0 ||
		    hi < 0)
			continue;
		int64_t pos = p->offset >= 0 ? p->offset : lo;
		if (pos >= 0 && hi > pos)
			lag += hi - pos;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	atomic_store(&st->lag, lag);
}

/* ntf_handle does what one message calls for. Returns 0 when it is done with (handled or
 * skipped for good: commit it) or an error when it must be retried. */
static int
ntf_handle(struct ntf_state *st, const rd_kafka_message_t *msg)
{
	char ce_id[256], ce_type[256], ce_time[64];
	struct ntf_event ev;
	bool published = false;
	int rv;

	if (sb_kafka_header(msg, "ce_id", ce_id, sizeof(ce_id)) <= 0 ||
	    sb_kafka_header(msg, "ce_type", ce_type, sizeof(ce_type)) <= 0) {
		sb_log_kv(SB_LOG_ERROR, "event without ce_id or ce_type skipped", "topic",
		          rd_kafka_topic_name(msg->rkt), NULL);
		ntf_count_event("unknown", NTF_INVALID);
		return 0;
	}
	if (sb_kafka_header(msg, "ce_time", ce_time, sizeof(ce_time)) < 0)
		ce_time[0] = '\0';
	rv = ntf_event_build(ce_type, ce_id, ce_time, msg->payload, msg->len, &ev);
	if (rv == SB_ENOTFOUND) {
		sb_log_kv(SB_LOG_DEBUG, "event type not handled", "ce_type", ce_type, "ce_id",
		          ce_id, NULL);
		ntf_count_event("other", NTF_IGNORED);
		return 0;
	}
	if (rv == SB_EPROTO) {
		sb_log_kv(SB_LOG_ERROR, "malformed event skipped", "ce_type", ce_type, "ce_id",
		          ce_id, NULL);
		ntf_count_event("unknown", NTF_INVALID);
		return 0;
	}
	if (rv != 0)
		return rv;
	if (ev.tenant_id != NULL && ev.tenant_id[0] != '\0') {
		const char *p[] = { ce_id, ev.type, ev.webhook_body, ev.tenant_id };
		PGresult *res = NULL;
		if ((rv = sb_pg_exec_prepared(st->cpg, "wh_enqueue", 4, p, &res)) != 0) {
			sb_log_kv(SB_LOG_WARN, "cannot queue webhook deliveries; retrying", "error",
			          sb_pg_errmsg(st->cpg), NULL);
			goto done;
		}
		if (atoi(PQcmdTuples(res)) > 0)
			ntf_wake_webhooks(st);
		PQclear(res);
	}
	if ((rv = ntf_publish_once(st->credis, ce_id, &ev, &published)) != 0) {
		sb_log_kv(SB_LOG_WARN, "cannot publish to Redis; retrying", "error",
		          sb_redis_errmsg(st->credis), NULL);
		goto done;
	}
	ntf_count_event(ev.type, published ? NTF_PUBLISHED : NTF_DUPLICATE);
	if (!published)
		sb_log_kv(SB_LOG_DEBUG, "duplicate event not published again", "ce_id", ce_id,
		          NULL);
done:
	ntf_event_free(&ev);
	return rv;
}

void *
ntf_consumer_main(void *arg)
{
	struct ntf_state *st = arg;
	struct sb_backoff b;
	int64_t next_lag = 0;

	sb_backoff_init(&b, 100, 5000);
	while (!atomic_load(&st->stopping)) {
		rd_kafka_message_t *msg = sb_kafka_consumer_poll(st->kc, 200);
		if (sb_time_mono_ms() >= next_lag) {
			ntf_update_lag(st);
			next_lag = sb_time_mono_ms() + 1000;
		}
		if (msg == NULL)
			continue;
		if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_message_destroy(msg);
			continue;
		}
		/* Retry the same message until it is done; commit only then. */
		int rv;
		while ((rv = ntf_handle(st, msg)) != 0 && !atomic_load(&st->stopping))
			ntf_sleep_ms((int)sb_backoff_next(&b) + 10);
		if (rv == 0) {
			sb_backoff_reset(&b);
			if (sb_kafka_consumer_commit(st->kc, msg) != 0)
				sb_log(SB_LOG_WARN, "offset commit failed; the event may be "
				                    "redelivered (and deduplicated)");
		}
		rd_kafka_message_destroy(msg);
	}
	return NULL;
}
