/* ingest_peer.c: the peer of bench/ingest_bench.sh — a plain librdkafka producer sending the
 * records sb-ingest sends for the simulator's updates (the same TelemetrySample payloads with
 * the same fields and values, keyed by item, CloudEvents headers) at a fixed rate, with the
 * producer settings sb-ingest uses (idempotent, acks=all, lz4, linger.ms 5, batches of up to
 * 10,000 records or 1 MiB, one request in flight per connection; SB_INGEST_LINGER_MS,
 * SB_INGEST_BATCH_MESSAGES, SB_INGEST_COMPRESSION and SB_INGEST_MAX_IN_FLIGHT change them as
 * they change sb-ingest's), and no TLCP, no decoding, no queue in front.
 *
 *   ingest_peer BROKERS TOPIC RATE SECONDS ITEMS
 *
 * INGEST_PEER_TICK_MS (environment, default 1): produce what is due every so many ms.
 * Prints one line: "peer rate=R sent=N acked=A failed=F achieved=X p50_ms=.. p99_ms=..
 * max_ms=..", where the latency is from the produce call to the delivery report (what sb-ingest
 * measures from receipt to acknowledgement). INGEST_PEER_TIMELINE (environment, any value):
 * also the worst latency of each 250 ms of sending, on stderr. INGEST_PEER_WARMUP_MS: p50, p99
 * and max are of the records sent after that many ms (a fresh producer's first requests wait
 * for its idempotence id); all_p99_ms and all_max_ms are of every record. Exits 1 when a
 * record failed. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/telemetry.pb-c.h"
#include "sb_kafka.h"
#include "sb_util_uuid.h"

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct rec {
	int64_t sent_us;
	int64_t lat_us;
};

static struct rec *recs;
static atomic_long acked, failed;

static void
dr(int err, const char *errstr, void *opaque)
{
	(void)errstr;
	struct rec *r = opaque;
	if (err) {
		atomic_fetch_add(&failed, 1);
		return;
	}
	r->lat_us = now_us() - r->sent_us;
	atomic_fetch_add(&acked, 1);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* The simulator's value(i, k) (tests/ingest/sim.mjs). */
static const char *
status_of(long k)
{
	static const char *const st[] = { "OK", "", NULL, "a|b%#$^ \xc3\xa9", "WARN" };
	long s = k;
	while (s > 0 && s % 7 == 3)
		s--;
	return s == 0 ? NULL : st[s % 5];
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: ingest_peer BROKERS TOPIC RATE SECONDS ITEMS\n");
		return 2;
	}
	const char *brokers = argv[1], *topic = argv[2];
	long rate = atol(argv[3]), secs = atol(argv[4]), items = atol(argv[5]);
	long total = rate * secs;
	/* INGEST_PEER_TICK_MS: produce what is due every this many ms (1 by default); larger
	 * values send in bursts, as a feed's WebSocket messages arrive. */
	long tick_ms = getenv("INGEST_PEER_TICK_MS") ? atol(getenv("INGEST_PEER_TICK_MS")) : 1;
	if (tick_ms < 1)
		tick_ms = 1;
	if (rate <= 0 || secs <= 0 || items <= 0)
		return 2;
	char err[256];
	struct sb_kafka_topic_spec spec = { topic, 6, -1, 604800000LL };
	if (sb_kafka_ensure_topics(brokers, &spec, 1, 20000, err, sizeof(err)) != 0) {
		fprintf(stderr, "peer: %s\n", err);
		return 1;
	}
	/* The settings sb-ingest reads, from the same variables and with its defaults, so that
	 * the bench's A/B runs change both sides alike. */
	const char *conf[] = { "linger.ms",
		               env_or("SB_INGEST_LINGER_MS", "5"),
		               "batch.num.messages",
		               env_or("SB_INGEST_BATCH_MESSAGES", "10000"),
		               "batch.size",
		               "1048576",
		               "compression.type",
		               env_or("SB_INGEST_COMPRESSION", "lz4"),
		               "message.timeout.ms",
		               "0",
		               "queue.buffering.max.messages",
		               "2000000",
		               "queue.buffering.max.kbytes",
		               "262144",
		               "max.in.flight.requests.per.connection",
		               env_or("SB_INGEST_MAX_IN_FLIGHT", "1"),
		               NULL };
	struct sb_kafka_producer *p;
	if (sb_kafka_producer_new(brokers, conf, &p) != 0)
		return 1;
	recs = calloc((size_t)total, sizeof(*recs));
	if (!recs)
		return 1;
	uint8_t buf[512];
	char item[32], seq[24], val[32], ts[24], id[SB_UUID_STR_LEN + 1];
	int64_t t0 = now_us();
	long sent = 0;
	while (sent < total) {
		long due = (long)((now_us() - t0) * rate / 1000000);
		if (due > total)
			due = total;
		for (; sent < due; sent++) {
			long i = sent % items + 1, k = sent / items + 1;
			snprintf(item, sizeof(item), "item%ld", i);
			snprintf(seq, sizeof(seq), "%ld", k);
			snprintf(val, sizeof(val), "%.3f", k * 1.5 + (double)i);
			snprintf(ts, sizeof(ts), "%lld", 1767225600000LL + k * 10);
			Sb__Events__TelemetryField f[4];
			Sb__Events__TelemetryField *fp[4] = { &f[0], &f[1], &f[2], &f[3] };
			for (int j = 0; j < 4; j++)
				sb__events__telemetry_field__init(&f[j]);
			f[0].name = "Seq";
			f[0].value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_INTEGER;
			f[0].integer = k;
			f[1].name = "Value";
			f[1].value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_NUMBER;
			f[1].number = atof(val);
			f[2].name = "Status";
			const char *st = status_of(k);
			if (st) {
				f[2].value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_TEXT;
				f[2].text = (char *)st;
			} else {
				f[2].value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_NULL_VALUE;
				f[2].null_value = 1;
			}
			f[3].name = "TimeStamp";
			f[3].value_case = SB__EVENTS__TELEMETRY_FIELD__VALUE_INTEGER;
			f[3].integer = atoll(ts);
			struct sb_uuid u;
			sb_uuid_v4(&u);
			sb_uuid_format(&u, id);
			Sb__Events__TelemetrySample s = SB__EVENTS__TELEMETRY_SAMPLE__INIT;
			Sb__Events__TelemetryTime tm = SB__EVENTS__TELEMETRY_TIME__INIT;
			tm.ms = f[3].integer;
			s.schema_version = 1;
			s.event_id = id;
			s.source = "sim";
			s.item = item;
			s.n_fields = 4;
			s.fields = fp;
			s.server_ts = &tm;
			s.ingest_ts_ms = (int64_t)time(NULL) * 1000;
			s.origin = "tlcp";
			size_t n = sb__events__telemetry_sample__pack(&s, buf);
			struct sb_cloudevent ce = { .id = id,
				                    .source = "sb-ingest/sim",
				                    .type = "io.switchboard.telemetry.sample.v1",
				                    .subject = item };
			recs[sent].sent_us = now_us();
			while (sb_kafka_produce(p, topic, item, strlen(item), buf, n, &ce, dr,
			                        &recs[sent]) != 0) {
				struct timespec w = { 0, 1000000 };
				nanosleep(&w, NULL);
			}
		}
		struct timespec w = { tick_ms / 1000, (tick_ms % 1000) * 1000000L };
		nanosleep(&w, NULL);
	}
	double gen_s = (double)(now_us() - t0) / 1e6;
	sb_kafka_flush(p, 60000);
	sb_kafka_producer_free(p);
	long a = atomic_load(&acked), fl = atomic_load(&failed);
	int64_t *lat = malloc((size_t)(a > 0 ? a : 1) * sizeof(*lat));
	int64_t *all = malloc((size_t)(a > 0 ? a : 1) * sizeof(*all));
	const char *wenv = getenv("INGEST_PEER_WARMUP_MS");
	int64_t warm_us = wenv != NULL ? strtoll(wenv, NULL, 10) * 1000 : 0;
	long m = 0, n_all = 0;
	for (long i = 0; i < total; i++) {
		if (recs[i].lat_us <= 0)
			continue;
		all[n_all++] = recs[i].lat_us;
		if (recs[i].sent_us - t0 >= warm_us) /* steady state: after the warm-up */
			lat[m++] = recs[i].lat_us;
	}
	qsort(lat, (size_t)m, sizeof(*lat), cmp64);
	qsort(all, (size_t)n_all, sizeof(*all), cmp64);
	if (getenv("INGEST_PEER_TIMELINE") != NULL) { /* when the slow records were sent */
		long nw = (long)(gen_s * 4) + 1;
		int64_t *wmax = calloc((size_t)nw, sizeof(*wmax));
		long *wn = calloc((size_t)nw, sizeof(*wn));
		for (long i = 0; wmax != NULL && wn != NULL && i < total; i++) {
			long w = (long)((recs[i].sent_us - t0) / 250000);
			if (w < 0 || w >= nw || recs[i].lat_us <= 0)
				continue;
			wn[w]++;
			if (recs[i].lat_us > wmax[w])
				wmax[w] = recs[i].lat_us;
		}
		for (long w = 0; wmax != NULL && wn != NULL && w < nw; w++)
			fprintf(stderr, "timeline %.2f-%.2f s: %ld records, max %.1f ms\n", w / 4.0,
			        (w + 1) / 4.0, wn[w], wmax[w] / 1000.0);
		free(wmax);
		free(wn);
	}
	printf("peer rate=%ld sent=%ld acked=%ld failed=%ld achieved=%.0f p50_ms=%.1f p99_ms=%.1f "
	       "max_ms=%.1f all_p99_ms=%.1f all_max_ms=%.1f\n",
	       rate, total, a, fl, (double)total / gen_s, m ? lat[m / 2] / 1000.0 : -1.0,
	       m ? lat[(long)(m * 0.99)] / 1000.0 : -1.0, m ? lat[m - 1] / 1000.0 : -1.0,
	       n_all ? all[(long)(n_all * 0.99)] / 1000.0 : -1.0,
	       n_all ? all[n_all - 1] / 1000.0 : -1.0);
	free(lat);
	free(all);
	free(recs);
	return fl > 0 || a != total;
}
