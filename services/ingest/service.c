/* service.c: start and stop of sb-ingest, in mirrored order, and its readiness checks.
 *
 * start: mapping → producer → pipe → subscriber thread (only with SB_INGEST_FEED_URL; it
 *        connects once the topic is verified) → topic thread (create + verify, retried until
 *        it holds, then lets the subscriber connect)
 * stop:  topic thread → subscriber (no more updates) → pipe (queued samples handed to the
 *        producer, re-sent until acknowledged within SB_SHUTDOWN_GRACE_MS) → producer →
 *        mapping */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"

static void
ing_on_resume(void *arg)
{
	struct ing_state *st = arg;
	if (st->sub)
		ing_sub_resume(st->sub);
}

static int
ing_topic_check(void *arg, char *detail, size_t n)
{
	struct ing_state *st = arg;
	pthread_mutex_lock(&st->topic_mu);
	snprintf(detail, n, "%s: %s", st->topic, st->topic_detail);
	pthread_mutex_unlock(&st->topic_mu);
	return atomic_load(&st->topic_ok) ? 0 : SB_EUNAVAIL;
}

static void *
ing_topic_main(void *arg)
{
	struct ing_state *st = arg;
	const struct ingest_cfg *c = st->cfg;
	int wait_ms = 500;
	bool told = false;
	while (!atomic_load(&st->stopping)) {
		char err[256] = "";
		int rc =
		    ing_topic_ensure(sb_kafka_producer_handle(st->producer), st->topic,
		                     (int)c->partitions, (int)c->common.kafka_replication,
		                     c->retention_ms, (int)c->topic_timeout_ms, err, sizeof(err));
		pthread_mutex_lock(&st->topic_mu);
		snprintf(st->topic_detail, sizeof(st->topic_detail), "%s", err);
		pthread_mutex_unlock(&st->topic_mu);
		if (rc == 0) {
			sb_log(SB_LOG_INFO, "ingest: topic %s verified: %s", st->topic, err);
			atomic_store(&st->topic_ok, 1);
			/* only now the feed: samples produced before the topic exists would wait in
			 * librdkafka (and count in receive→ack) until its metadata shows it */
			ing_sub_go(st->sub);
			return NULL;
		}
		if (!told || rc != SB_EPROTO)
			sb_log(rc == SB_EPROTO ? SB_LOG_ERROR : SB_LOG_WARN, "ingest: topic %s: %s",
			       st->topic, err);
		told = rc == SB_EPROTO;
		/* A wrong topic waits for an operator; an unreachable broker is retried sooner. */
		int ms = rc == SB_EPROTO ? 30000 : wait_ms;
		wait_ms = wait_ms < 8000 ? wait_ms * 2 : 8000;
		for (int slept = 0; slept < ms && !atomic_load(&st->stopping); slept += 100)
			nanosleep(&(struct timespec){ 0, 100 * 1000000L }, NULL);
	}
	return NULL;
}

/* ing_mapping_open loads path; a relative path missing from the working directory is also
 * looked up relative to the source tree the binary was built in (<exe dir>/../..), so that
 * `make run` and tests find the shipped mapping wherever they start. */
static int
ing_mapping_open(const char *path, struct ing_mapping *m, char *err, size_t n)
{
	int rc = ing_mapping_load(path, m, err, n);
	if (rc != SB_ENOTFOUND || path[0] == '/')
		return rc;
	char exe[PATH_MAX], alt[PATH_MAX + 64];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return rc;
	exe[len] = '\0';
	snprintf(alt, sizeof(alt), "%s/../../%s", dirname(exe), path);
	char why[256];
	if (ing_mapping_load(alt, m, why, sizeof(why)) == 0) {
		sb_log(SB_LOG_INFO, "ingest: mapping %s found as %s", path, alt);
		return 0;
	}
	return rc;
}

/* ing_new_producer creates the producer of the pipe (also its replacement after a fatal
 * error): idempotent, acks=all, the batching and compression of the configuration. */
static int
ing_new_producer(void *arg, struct sb_kafka_producer **out)
{
	struct ing_state *st = arg;
	const struct ingest_cfg *c = st->cfg;
	char linger[24], batch[24], timeout[24], qmax[24], inflight[24];
	snprintf(linger, sizeof(linger), "%lld", c->linger_ms);
	snprintf(batch, sizeof(batch), "%lld", c->batch_messages);
	snprintf(timeout, sizeof(timeout), "%lld", c->message_timeout_ms);
	snprintf(qmax, sizeof(qmax), "%lld", c->queue_max + 1000);
	snprintf(inflight, sizeof(inflight), "%lld", c->max_in_flight);
	/* One request in flight per connection (SB_INGEST_MAX_IN_FLIGHT): with more,
	 * librdkafka 2.0.2's idempotent producer acknowledged "implicitly" records a broker in
	 * controlled shutdown had not appended (docs/ingest.md, the 2026-12-06 report). */
	const char *conf[] = { "linger.ms",
		               linger,
		               "batch.num.messages",
		               batch,
		               "batch.size",
		               "1048576",
		               "compression.type",
		               c->compression,
		               "message.timeout.ms",
		               timeout,
		               "queue.buffering.max.messages",
		               qmax,
		               "queue.buffering.max.kbytes",
		               "262144",
		               "client.id",
		               "sb-ingest",
		               "max.in.flight.requests.per.connection",
		               inflight,
		               NULL };
	return sb_kafka_producer_new(c->common.kafka_brokers, conf, out);
}

int
ing_service_start(struct sb_service *svc)
{
	const struct ingest_cfg *c = sb_service_config(svc);
	char err[512];
	if (!(c->low_watermark < c->high_watermark && c->high_watermark <= c->queue_max)) {
		sb_log(
		    SB_LOG_ERROR,
		    "ingest: SB_INGEST_LOW_WATERMARK (%lld) < SB_INGEST_HIGH_WATERMARK (%lld) <= "
		    "SB_INGEST_QUEUE_MAX (%lld) does not hold",
		    c->low_watermark, c->high_watermark, c->queue_max);
		return -1;
	}
	struct ing_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->cfg = c;
	pthread_mutex_init(&st->topic_mu, NULL);
	sb_service_set_state(svc, st);
	snprintf(st->topic_detail, sizeof(st->topic_detail), "not verified yet");
	if (ing_mapping_open(c->mapping_file, &st->map, err, sizeof(err)) != 0) {
		sb_log(SB_LOG_ERROR, "ingest: mapping (SB_INGEST_MAPPING): %s", err);
		goto fail;
	}
	if (sb_kafka_topic_name(c->common.kafka_topic_prefix, c->topic, st->topic,
	                        sizeof(st->topic)) != 0) {
		sb_log(SB_LOG_ERROR, "ingest: topic name too long");
		goto fail;
	}
	if (ing_new_producer(st, &st->producer) != 0) {
		sb_log(SB_LOG_ERROR, "ingest: cannot create the Kafka producer");
		goto fail;
	}
	struct ing_pipe_opts po = { .topic = st->topic,
		                    .source = st->map.source,
		                    .capacity = c->queue_max,
		                    .high = c->high_watermark,
		                    .low = c->low_watermark,
		                    .on_resume = ing_on_resume,
		                    .resume_arg = st,
		                    .new_producer = ing_new_producer,
		                    .producer_arg = st };
	if (ing_pipe_start(st->producer, &po, &st->pipe) != 0) {
		sb_log(SB_LOG_ERROR, "ingest: cannot start the producer thread");
		goto fail;
	}
	if (*c->feed_url) {
		struct ing_sub_opts so = { .cfg = c, .map = &st->map, .pipe = st->pipe };
		if (ing_sub_start(&so, &st->sub) != 0)
			goto fail;
	} else {
		sb_log(SB_LOG_INFO,
		       "ingest: no SB_INGEST_FEED_URL: subscriber idle, mapping %s (%zu "
		       "items) serves the test endpoint",
		       c->mapping_file, st->map.nitems);
	}
	if (pthread_create(&st->topic_thread, NULL, ing_topic_main, st) != 0)
		goto fail;
	st->topic_started = true;
	sb_service_add_check(svc, "topic", ing_topic_check, st);
	sb_service_add_check(svc, "feed", ing_sub_check, st->sub);
	return 0;
fail:
	ing_service_stop(svc);
	return -1;
}

void
ing_service_stop(struct sb_service *svc)
{
	struct ing_state *st = sb_service_state(svc);
	if (!st)
		return;
	const struct ingest_cfg *c = st->cfg;
	atomic_store(&st->stopping, true);
	/* the topic thread first: it may be about to let the subscriber connect */
	if (st->topic_started)
		pthread_join(st->topic_thread, NULL);
	ing_sub_stop(st->sub);
	st->sub = NULL;
	if (st->pipe) {
		long long left = ing_pipe_stop(st->pipe, (int)c->common.shutdown_grace_ms);
		if (left > 0)
			sb_log(SB_LOG_ERROR,
			       "ingest: %lld samples not acknowledged by Kafka at shutdown", left);
		else
			sb_log(SB_LOG_INFO,
			       "ingest: every sample acknowledged by Kafka before exit");
	}
	/* the pipe's current producer: the first one, or its replacement after a fatal error
	 * (the replaced ones were freed by ing_pipe_stop) */
	if (st->pipe)
		st->producer = ing_pipe_producer(st->pipe);
	sb_kafka_producer_free(st->producer);
	st->producer = NULL;
	ing_pipe_free(st->pipe);
	ing_mapping_free(&st->map);
	pthread_mutex_destroy(&st->topic_mu);
	sb_service_set_state(svc, NULL);
	free(st);
}
