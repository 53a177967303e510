/* fanout_pub.c: the Switchboard publisher of bench/realtime_fanout_bench.sh. It does what the
 * notifier does for a new message (services/notifier/frames.c), without Kafka in front: one
 * PUBLISH on conv:<conversation id> of "<seq> <event_time_ms>\n<message.created frame>", at a
 * fixed rate for a fixed time, evenly paced (message i is due at start + i/RATE; a late loop
 * catches up at once and the lag is reported), to conversations drawn at random. seq grows per
 * conversation from SEQ_BASE + 1, so sb-realtime (which drops a seq it has already sent) takes
 * every message: give each run a SEQ_BASE above the last run's (the bench adds each run's
 * message count). The content is "t=<publish time, Unix microseconds> " padded with 'x' to
 * CONTENT_BYTES: the receivers (bench/wsload.c) take the latency from it.
 *
 * Usage: fanout_pub -h HOST -p PORT -f CONV_FILE -r RATE -d SECONDS [-b SEQ_BASE]
 *                   [-c CONTENT_BYTES]
 * CONV_FILE: one line per conversation, "<conversation id> <sender id>" (a member).
 * Prints one JSON line: messages sent, achieved rate, messages no subscriber received (the
 * PUBLISH reply 0: realtime was not subscribed), the largest lag behind schedule, CPU seconds. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define FP_ID_MAX      64
#define FP_CONTENT_MAX 4096

struct fp_conv {
	char id[FP_ID_MAX];
	char sender[FP_ID_MAX];
	long long seq;
};

static int64_t
fp_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
fp_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void
fp_usage(const char *msg)
{
	fprintf(stderr,
	        "fanout_pub: %s\nusage: fanout_pub -h HOST -p PORT -f CONV_FILE -r RATE -d SECONDS "
	        "[-b SEQ_BASE] [-c CONTENT_BYTES]\n",
	        msg);
	exit(2);
}

static struct fp_conv *
fp_load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	struct fp_conv *v = NULL;
	size_t cap = 0;
	char line[256];
	*n = 0;
	if (f == NULL) {
		fprintf(stderr, "fanout_pub: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((v = realloc(v, cap * sizeof(*v))) == NULL) {
				fprintf(stderr, "fanout_pub: out of memory\n");
				exit(1);
			}
		}
		struct fp_conv *c = &v[*n];
		memset(c, 0, sizeof(*c));
		if (sscanf(line, "%63s %63s", c->id, c->sender) != 2) {
			fprintf(stderr, "fanout_pub: %s: want \"<conversation> <sender>\" lines\n",
			        path);
			exit(2);
		}
		(*n)++;
	}
	fclose(f);
	if (*n == 0)
		fp_usage("no conversation in the file");
	return v;
}

/* fp_rand is xorshift64*: cheap and good enough to pick conversations. */
static uint64_t
fp_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* fp_frame writes the Redis message for one new message of c into buf (cap bytes). */
static int
fp_frame(char *buf, size_t cap, const struct fp_conv *c, long long n, int64_t pub_us,
         int content_bytes)
{
	char content[FP_CONTENT_MAX + 1], at[40];
	time_t secs = (time_t)(pub_us / 1000000);
	struct tm tm;
	int k = snprintf(content, sizeof(content), "t=%lld ", (long long)pub_us);
	while (k < content_bytes)
		content[k++] = 'x';
	content[k] = '\0';
	gmtime_r(&secs, &tm);
	size_t a = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(at + a, sizeof(at) - a, ".%03dZ", (int)(pub_us / 1000 % 1000));
	return snprintf(buf, cap,
	                "%lld %lld\n{\"type\":\"message.created\",\"conversation_id\":\"%s\","
	                "\"seq\":%lld,\"message\":{\"id\":\"00000000-0000-4000-8000-%012llx\","
	                "\"sender_id\":\"%s\",\"content\":\"%s\",\"content_type\":\"text/plain\","
	                "\"metadata\":{},\"created_at\":\"%s\"}}",
	                c->seq, (long long)(pub_us / 1000), c->id, c->seq, n, c->sender, content,
	                at);
}

int
main(int argc, char **argv)
{
	const char *host = NULL, *file = NULL;
	int port = 0, opt, content_bytes = 100;
	double rate = 0, secs = 0;
	long long base = 0;
	while ((opt = getopt(argc, argv, "h:p:f:r:d:b:c:")) != -1) {
		switch (opt) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'b':
			base = atoll(optarg);
			break;
		case 'c':
			content_bytes = atoi(optarg);
			break;
		default:
			fp_usage("unknown option");
		}
	}
	if (host == NULL || file == NULL || port <= 0 || rate <= 0 || secs <= 0 || base < 0 ||
	    content_bytes < 24 || content_bytes > FP_CONTENT_MAX)
		fp_usage("missing or bad arguments");
	size_t nconv;
	struct fp_conv *convs = fp_load(file, &nconv);
	for (size_t i = 0; i < nconv; i++)
		convs[i].seq = base;
	struct timeval tv = { 5, 0 };
	redisContext *rc = redisConnectWithTimeout(host, port, tv);
	if (rc == NULL || rc->err) {
		fprintf(stderr, "fanout_pub: Redis %s:%d: %s\n", host, port,
		        rc ? rc->errstr : "out of memory");
		return 1;
	}

	uint64_t rng = (uint64_t)fp_now_us(CLOCK_REALTIME) | 1;
	long long total = (long long)(rate * secs), sent = 0, unheard = 0, errors = 0;
	int64_t max_lag_us = 0, t0 = fp_now_us(CLOCK_MONOTONIC) + 1000;
	char buf[FP_CONTENT_MAX + 1024];
	while (sent < total) {
		int64_t due = t0 + (int64_t)((double)sent * 1e6 / rate);
		int64_t now = fp_now_us(CLOCK_MONOTONIC);
		if (due > now) {
			struct timespec ts = { (time_t)((due - now) / 1000000),
				               (long)((due - now) % 1000000) * 1000 };
			nanosleep(&ts, NULL);
			now = fp_now_us(CLOCK_MONOTONIC);
		}
		if (now - due > max_lag_us)
			max_lag_us = now - due;
		/* every message due by now goes out in one pipelined batch */
		long long batch = 0;
		while (sent + batch < total &&
		       t0 + (int64_t)((double)(sent + batch) * 1e6 / rate) <= now) {
			struct fp_conv *c = &convs[fp_rand(&rng) % nconv];
			c->seq++;
			int len = fp_frame(buf, sizeof(buf), c, base + sent + batch,
			                   fp_now_us(CLOCK_REALTIME), content_bytes);
			char chan[FP_ID_MAX + 8];
			snprintf(chan, sizeof(chan), "conv:%s", c->id);
			redisAppendCommand(rc, "PUBLISH %s %b", chan, buf, (size_t)len);
			batch++;
		}
		for (long long i = 0; i < batch; i++) {
			redisReply *r = NULL;
			if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
				fprintf(stderr, "fanout_pub: Redis: %s\n", rc->errstr);
				return 1;
			}
			if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
				unheard++;
			else if (r->type != REDIS_REPLY_INTEGER)
				errors++;
			freeReplyObject(r);
		}
		sent += batch;
	}
	double el = (double)(fp_now_us(CLOCK_MONOTONIC) - t0) / 1e6;
	printf("{\"sent\":%lld,\"rate\":%.0f,\"seconds\":%.2f,\"achieved\":%.1f,\"unheard\":%lld,"
	       "\"errors\":%lld,\"max_lag_ms\":%.1f,\"cpu_s\":%.3f}\n",
	       sent, rate, el, el > 0 ? (double)sent / el : 0, unheard, errors,
	       (double)max_lag_us / 1000, fp_cpu_s());
	redisFree(rc);
	free(convs);
	return errors > 0 ? 1 : 0;
}
