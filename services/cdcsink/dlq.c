/* dlq.c: the DLQ processor, `sb-cdcsink dlq [--export FILE] [--idle-ms N]`. Reads
 * cassandra.cdc.dlq (prefix from SB_KAFKA_TOPIC_PREFIX, brokers from KAFKA_BROKERS) in the
 * consumer group "<SB_CDCSINK_GROUP>-dlq" until no record came for --idle-ms (8000), and for each
 * error record: a transient failure (by its SQLSTATE, cdc_dlq_category) has its original event
 * written back to its topic with its key, to be applied again; anything else is appended to
 * the export file (one JSON record a line, fsync'd) for people to look at. Offsets are
 * committed only after a batch's re-enqueued events were acknowledged and its exports synced.
 * Prints a summary; exits 0, 1 on an error, 2 on bad arguments. */
#include "cdcsink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

const char *
cdc_dlq_category(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return "permanent";
	if (strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 || strncmp(s, "08", 2) == 0 ||
	    strcmp(s, "55P03") == 0 || strcmp(s, "57014") == 0)
		return "transient";
	return "permanent";
}

struct cdc_dlq_dr {
	atomic_int failed;
};

static void
cdc_dlq_dr_cb(int err, const char *errstr, void *opaque)
{
	struct cdc_dlq_dr *dr = opaque;
	if (err != 0) {
		atomic_fetch_add(&dr->failed, 1);
		sb_log_kv(SB_LOG_ERROR, "re-enqueued event not delivered", "error", errstr, NULL);
	}
}

static const char *
cdc_env(const char *k, const char *def)
{
	const char *v = getenv(k);
	return v != NULL && v[0] != '\0' ? v : def;
}

int
cdc_dlq_main(int argc, char **argv)
{
	const char *export_path = "cdc-dlq-export.jsonl";
	long idle_ms = 8000;
	char topic[256], group[256], gbase[200], now[40];
	struct sb_kafka_consumer *kc = NULL;
	struct sb_kafka_producer *p = NULL;
	rd_kafka_message_t *msgs[500];
	long seen = 0, requeued = 0, exported = 0;
	int status = 1;
	FILE *out = NULL;

	sb_log_init("cdcsink-dlq", SB_LOG_INFO);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--export") == 0 && i + 1 < argc)
			export_path = argv[++i];
		else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc)
			idle_ms = strtol(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: sb-cdcsink dlq [--export FILE] [--idle-ms N]\n");
			return 2;
		}
	}
	if (idle_ms < 100 || idle_ms > 3600000) {
		fprintf(stderr, "sb-cdcsink dlq: --idle-ms must be 100..3600000\n");
		return 2;
	}
	const char *brokers = cdc_env("KAFKA_BROKERS", "127.0.0.1:9092");
	const char *pre = cdc_env("SB_KAFKA_TOPIC_PREFIX", "");
	snprintf(gbase, sizeof(gbase), "%s-dlq", cdc_env("SB_CDCSINK_GROUP", "sb-cdcsink"));
	if (sb_kafka_topic_name(pre, SB_TOPIC_CDC_DLQ, topic, sizeof(topic)) != 0 ||
	    sb_kafka_topic_name(pre, gbase, group, sizeof(group)) != 0)
		return 2;
	if ((out = fopen(export_path, "a")) == NULL) {
		fprintf(stderr, "sb-cdcsink dlq: cannot open %s: %s\n", export_path,
		        strerror(errno));
		return 1;
	}
	const char *const topics[] = { topic, NULL };
	const char *const conf[] = { "session.timeout.ms", "6000", "heartbeat.interval.ms", "1000",
		                     NULL };
	const struct sb_kafka_consumer_opts ko = { .commit_interval_ms = 1000 };
	if (sb_kafka_producer_new(brokers, NULL, &p) != 0 ||
	    sb_kafka_consumer_new_opts(brokers, group, topics, conf, &ko, &kc) != 0)
		goto done;
	int64_t last = sb_time_mono_ms();
	while (sb_time_mono_ms() - last < idle_ms) {
		size_t n = sb_kafka_consumer_poll_batch(kc, msgs, 500, 200, 0);
		struct cdc_dlq_dr dr = { 0 };
		if (n == 0)
			continue;
		last = sb_time_mono_ms();
		for (size_t i = 0; i < n; i++) {
			const rd_kafka_message_t *m = msgs[i];
			json_t *rec = json_loadb(m->payload ? m->payload : "", m->len, 0, NULL);
			const char *to = json_string_value(json_object_get(rec, "topic"));
			const char *ev = json_string_value(json_object_get(rec, "event"));
			const char *cat =
			    cdc_dlq_category(json_string_value(json_object_get(rec, "sqlstate")));
			seen++;
			if (rec != NULL && to != NULL && ev != NULL &&
			    strcmp(cat, "transient") == 0) {
				const char *id = json_string_value(json_object_get(rec, "id"));
				sb_kafka_ce_time_now(now, sizeof(now));
				struct sb_cloudevent ce = { .id = id != NULL ? id : "dlq",
					                    .source = "sb-cdcsink/dlq",
					                    .type = "cdc.requeued",
					                    .time = now,
					                    .content_type = "application/json" };
				int rv;
				while ((rv = sb_kafka_produce(p, to, m->key, m->key_len, ev,
				                              strlen(ev), &ce, cdc_dlq_dr_cb,
				                              &dr)) == SB_EBUSY)
					sb_kafka_flush(p, 100);
				if (rv != 0) {
					json_decref(rec);
					goto fail_batch;
				}
				requeued++;
			} else {
				fwrite(m->payload ? m->payload : "", 1, m->len, out);
				fputc('\n', out);
				exported++;
			}
			json_decref(rec);
		}
		/* Durable first (the re-enqueued events acknowledged, the export synced), then the
		 * offsets. */
		if (sb_kafka_flush(p, 30000) != 0 || atomic_load(&dr.failed) > 0 ||
		    fflush(out) != 0 || fsync(fileno(out)) != 0)
			goto fail_batch;
		sb_kafka_consumer_store(kc, msgs, n);
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
		continue;
	fail_batch:
		while (sb_kafka_flush(p, 1000) != 0)
			;
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
		sb_log_kv(SB_LOG_ERROR, "DLQ batch not handled; its offsets are not committed",
		          NULL);
		goto done;
	}
	status = 0;
done:
	sb_kafka_consumer_close(kc);
	if (p != NULL)
		sb_kafka_flush(p, 5000);
	sb_kafka_producer_free(p);
	if (out != NULL)
		fclose(out);
	printf("dlq: %ld records: %ld re-enqueued to their topics, %ld exported to %s\n", seen,
	       requeued, exported, export_path);
	return status;
}
