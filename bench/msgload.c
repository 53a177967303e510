/* msgload.c: open-loop (fixed arrival rate) load generator for POST /v1/messages, used by
 * bench/messages_bench.sh (built with the rest, bench/CMakeLists.txt).
 *
 * Request i is scheduled at start + i / RATE whatever happened before; it goes out on the first
 * idle keep-alive HTTP/1.1 connection (one request in flight per connection, no pipelining) and
 * its latency is measured from its scheduled time, so a slow server cannot hide its backlog
 * (coordinated omission). Each request has a fresh random UUID v4 id and goes to conversation
 * i mod N of the list, with token (connection mod T). One thread, non-blocking sockets, epoll:
 * the request engine is bench/lib's (bl.h, bl_ol), shared with pipeload.
 *
 * Usage: msgload -a HOST:PORT -r RATE -d SECONDS -c CONNS -f CONV_FILE -t TOKEN [-t TOKEN...]
 *        [-g DRAIN_SECONDS] [-s CONTENT_BYTES]
 * Prints one human line and one machine line beginning "RESULT " with key=value pairs:
 * target, scheduled, sent, ok, achieved (2xx per second), p50_ms, p99_ms, max_ms, errors (by
 * status, "conn" for broken connections, "late" for requests unanswered after the drain),
 * cpu_s and cpu_pct (this process, user+system, % of one core over the run).
 * Exit status: 0 when the run completed (even with errors counted), 2 on bad usage, 1 when it
 * could not run at all (no connection). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bl.h"

#define ML_MAX_TOKENS 16
#define ML_MAX_CONNS  4000
#define ML_MAX_CONVS  10000

struct ml_opts {
	char host[300];
	int content_bytes;
	const char *tokens[ML_MAX_TOKENS];
	int n_tokens;
	char (*convs)[37];
	int n_convs;
};

struct ml_run {
	struct ml_opts o;
	struct bl_ol ol;
	struct bl_rng rng;
	uint32_t *tl_max_us; /* MSGLOAD_TIMELINE: worst latency per 100 ms of schedule */
	int64_t n_tl;
	int64_t wall0_us; /* CLOCK_REALTIME of the schedule's start, to match other logs */
	char content[65537];
};

static int
ml_usage(const char *msg)
{
	fprintf(stderr,
	        "msgload: %s\nusage: msgload -a HOST:PORT -r RATE -d SECONDS -c CONNS -f CONV_FILE "
	        "-t TOKEN [-t TOKEN...] [-g DRAIN_SECONDS] [-s CONTENT_BYTES]\n",
	        msg);
	return 2;
}

static int
ml_load_convs(struct ml_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	if (f == NULL) {
		fprintf(stderr, "msgload: %s: %s\n", path, strerror(errno));
		return -1;
	}
	o->convs = calloc(ML_MAX_CONVS, sizeof(*o->convs));
	if (o->convs == NULL) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL && o->n_convs < ML_MAX_CONVS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (strlen(line) != 36 || strspn(line, "0123456789abcdef-") != 36) {
			fprintf(stderr, "msgload: %s: not a UUID: '%s'\n", path, line);
			fclose(f);
			return -1;
		}
		memcpy(o->convs[o->n_convs++], line, 37);
	}
	fclose(f);
	if (o->n_convs == 0) {
		fprintf(stderr, "msgload: %s: no conversation ids\n", path);
		return -1;
	}
	return 0;
}

static int
ml_parse(struct ml_opts *o, struct bl_ol *ol, int argc, char **argv)
{
	int ch;
	const char *addr = NULL, *conv_file = NULL;
	char *end;
	ol->drain = 5;
	o->content_bytes = 200;
	while ((ch = getopt(argc, argv, "a:r:d:c:f:t:g:s:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'r':
			ol->rate = strtod(optarg, &end);
			if (*end || ol->rate <= 0 || ol->rate > 1e6)
				return ml_usage("-r: a rate in requests/s, 0 < RATE <= 1000000");
			break;
		case 'd':
			ol->seconds = strtod(optarg, &end);
			if (*end || ol->seconds <= 0 || ol->seconds > 3600)
				return ml_usage("-d: seconds, 0 < SECONDS <= 3600");
			break;
		case 'g':
			ol->drain = strtod(optarg, &end);
			if (*end || ol->drain < 0 || ol->drain > 600)
				return ml_usage("-g: drain seconds, 0..600");
			break;
		case 'c':
			ol->nconns = (int)strtol(optarg, &end, 10);
			if (*end || ol->nconns < 1 || ol->nconns > ML_MAX_CONNS)
				return ml_usage("-c: connections, 1..4000");
			break;
		case 's':
			o->content_bytes = (int)strtol(optarg, &end, 10);
			if (*end || o->content_bytes < 1 || o->content_bytes > 65536)
				return ml_usage("-s: content bytes, 1..65536");
			break;
		case 'f':
			conv_file = optarg;
			break;
		case 't':
			if (o->n_tokens == ML_MAX_TOKENS)
				return ml_usage("too many -t (at most 16)");
			if (strlen(optarg) == 0 || strlen(optarg) > 4096 ||
			    strpbrk(optarg, "\r\n ") != NULL)
				return ml_usage("-t: a bearer token (no spaces or line breaks, at "
				                "most 4096 bytes)");
			o->tokens[o->n_tokens++] = optarg;
			break;
		default:
			return ml_usage("unknown option");
		}
	}
	if (optind != argc)
		return ml_usage("unexpected argument");
	if (addr == NULL || ol->rate == 0 || ol->seconds == 0 || ol->nconns == 0 ||
	    conv_file == NULL || o->n_tokens == 0)
		return ml_usage("-a, -r, -d, -c, -f and -t are required");
	if (bl_parse_addr(addr, &ol->addr, o->host, sizeof(o->host)) != 0)
		return ml_usage("-a: HOST:PORT with a numeric IPv4 host");
	if (ml_load_convs(o, conv_file) != 0)
		return 2;
	return 0;
}

/* ml_request: a fresh UUID v4 id, conversation i mod N, token (connection mod T). */
static size_t
ml_request(struct bl_ol *ol, int64_t req, int conn, char **buf, size_t *cap)
{
	static char body[sizeof(((struct ml_run *)0)->content) + 256];
	struct ml_run *r = ol->arg;
	const char *tok = r->o.tokens[conn % r->o.n_tokens];
	char id[37];
	bl_uuid(&r->rng, id);
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%s\",\"conversation_id\":\"%s\",\"content\":\"%s\"}", id,
	                  r->o.convs[req % r->o.n_convs], r->content);
	bl_reserve(buf, cap, strlen(tok) + (size_t)bl + 512);
	int hl = snprintf(*buf, *cap,
	                  "POST /v1/messages HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer "
	                  "%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
	                  r->o.host, ntohs(ol->addr.sin_port), tok, bl);
	memcpy(*buf + hl, body, (size_t)bl);
	return (size_t)hl + (size_t)bl;
}

/* ml_latency keeps the worst latency per 100 ms of schedule (MSGLOAD_TIMELINE). */
static void
ml_latency(struct bl_ol *ol, int64_t req, uint32_t us)
{
	struct ml_run *r = ol->arg;
	int64_t b = (int64_t)((double)req / ol->rate * 10);
	if (b >= 0 && b < r->n_tl && us > r->tl_max_us[b])
		r->tl_max_us[b] = us;
}

static void
ml_report(struct ml_run *r, double wall)
{
	const struct bl_ol *ol = &r->ol;
	double cpu = bl_cpu_s();
	char errs[512];
	bl_ol_errors(ol, errs, sizeof(errs));
	double span = bl_ol_span_s(ol);
	/* MSGLOAD_TIMELINE=1: when the slow requests were scheduled (stalls vs. steady queueing) */
	for (int64_t b = 0; b < r->n_tl; b++) {
		if (r->tl_max_us[b] < 100000)
			continue;
		int64_t at_us = r->wall0_us + b * 100000;
		time_t sec = (time_t)(at_us / 1000000);
		struct tm tm;
		char hms[16];
		gmtime_r(&sec, &tm);
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
		fprintf(stderr, "timeline: %.1f-%.1f s (%s.%d UTC) worst %.0f ms\n", b / 10.0,
		        (b + 1) / 10.0, hms, (int)(at_us % 1000000 / 100000),
		        r->tl_max_us[b] / 1000.0);
	}
	double p50 = bl_pct_ms(ol->lat_us, ol->n_lat, 0.50),
	       p99 = bl_pct_ms(ol->lat_us, ol->n_lat, 0.99);
	double mx = ol->n_lat ? ol->lat_us[ol->n_lat - 1] / 1000.0 : 0;
	printf(
	    "target %.0f/s for %.0f s: %lld scheduled, %lld answered 2xx, achieved %.0f/s, "
	    "p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %s; msgload CPU %.2f s (%.0f%% of one "
	    "core)\n",
	    ol->rate, ol->seconds, (long long)ol->total, (long long)ol->ok, (double)ol->ok / span,
	    p50, p99, mx, errs, cpu, cpu / wall * 100);
	printf("RESULT target=%.0f scheduled=%lld sent=%lld ok=%lld achieved=%.0f p50_ms=%.1f "
	       "p99_ms=%.1f max_ms=%.1f errors=%s cpu_s=%.2f cpu_pct=%.0f\n",
	       ol->rate, (long long)ol->total, (long long)ol->next, (long long)ol->ok,
	       (double)ol->ok / span, p50, p99, mx, errs, cpu, cpu / wall * 100);
}

int
main(int argc, char **argv)
{
	static struct ml_run run;
	struct ml_run *r = &run;
	bl_prog = "msgload";
	int rv = ml_parse(&r->o, &r->ol, argc, argv);
	if (rv != 0)
		return rv;
	bl_rng_seed(&r->rng);
	for (int k = 0; k < r->o.content_bytes; k++)
		r->content[k] = "abcdefghijklmnopqrstuvwxyz "[k % 27];
	r->ol.request = ml_request;
	r->ol.arg = r;
	if (getenv("MSGLOAD_TIMELINE") != NULL) {
		r->n_tl = (int64_t)(r->ol.seconds * 10) + 1;
		r->tl_max_us = bl_calloc((size_t)r->n_tl, sizeof(*r->tl_max_us));
		r->ol.latency = ml_latency;
	}
	int64_t start = bl_now_us(CLOCK_MONOTONIC);
	if (bl_ol_run(&r->ol) != 0) {
		fprintf(stderr, "msgload: could not connect to %s:%u\n", r->o.host,
		        ntohs(r->ol.addr.sin_port));
		return 1;
	}
	r->wall0_us = r->ol.t0_real;
	ml_report(r, (double)(bl_now_us(CLOCK_MONOTONIC) - start) / 1e6);
	bl_ol_free(&r->ol);
	free(r->tl_max_us);
	free(r->o.convs);
	return 0;
}
