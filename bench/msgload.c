/* msgload.c: open-loop (fixed arrival rate) load generator for POST /v1/messages, used by
 * bench/messages_bench.sh (built there with gcc -O2; not part of the CMake build).
 *
 * Request i is scheduled at start + i / RATE whatever happened before; it goes out on the first
 * idle keep-alive HTTP/1.1 connection (one request in flight per connection, no pipelining) and
 * its latency is measured from its scheduled time, so a slow server cannot hide its backlog
 * (coordinated omission). Each request has a fresh random UUID v4 id and goes to conversation
 * i mod N of the list, with token (connection mod T). One thread, non-blocking sockets, epoll.
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

#define ML_MAX_TOKENS 16
#define ML_MAX_CONNS  4000
#define ML_MAX_CONVS  10000
#define ML_RBUF       16384
#define ML_WBUF       8192

enum ml_state { ML_CONNECTING, ML_IDLE, ML_BUSY, ML_DEAD };

struct ml_conn {
	int fd;
	enum ml_state state;
	int64_t req;        /* index of the request in flight */
	char wbuf[ML_WBUF]; /* request being written */
	size_t wlen, woff;
	char rbuf[ML_RBUF]; /* response being read */
	size_t rlen;
	int queued; /* in the idle stack */
};

struct ml_opts {
	struct sockaddr_in addr;
	char host[300];
	double rate, seconds, drain;
	int conns, content_bytes;
	const char *tokens[ML_MAX_TOKENS];
	int n_tokens;
	char (*convs)[37];
	int n_convs;
};

struct ml_run {
	struct ml_opts o;
	struct ml_conn *c;
	int ep;
	double t0;           /* monotonic start of the schedule, seconds */
	int64_t total;       /* requests scheduled over the run */
	int64_t next;        /* first request not yet sent */
	int64_t done, ok;    /* answered requests; of which 2xx */
	int64_t status[600]; /* answers by status code */
	int64_t conn_errors; /* requests lost to a broken connection */
	int *idle;           /* stack of connections that may be idle (checked when popped) */
	int n_idle;
	uint32_t *lat_us; /* latency of each answered or abandoned request */
	int64_t n_lat;
	uint32_t *tl_max_us; /* MSGLOAD_TIMELINE: worst latency per 100 ms of schedule */
	time_t wall0;        /* wall-clock second of t0, to match the timeline with other logs */
	double wall0_frac;
	int64_t n_tl;
	double last_done; /* time of the last 2xx */
	uint64_t rng[2];
	char content[70000];
};

static double
ml_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
ml_rand(struct ml_run *r)
{
	/* xorshift128+ */
	uint64_t s1 = r->rng[0];
	const uint64_t s0 = r->rng[1];
	r->rng[0] = s0;
	s1 ^= s1 << 23;
	r->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return r->rng[1] + s0;
}

static void
ml_uuid(struct ml_run *r, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t a = ml_rand(r), z = ml_rand(r);
	memcpy(b, &a, 8);
	memcpy(b + 8, &z, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	int k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[b[i] >> 4];
		out[k++] = hex[b[i] & 15];
	}
	out[k] = '\0';
}

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
ml_parse(struct ml_opts *o, int argc, char **argv)
{
	int ch;
	const char *addr = NULL, *conv_file = NULL;
	char *end;
	o->drain = 5;
	o->content_bytes = 200;
	while ((ch = getopt(argc, argv, "a:r:d:c:f:t:g:s:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'r':
			o->rate = strtod(optarg, &end);
			if (*end || o->rate <= 0 || o->rate > 1e6)
				return ml_usage("-r: a rate in requests/s, 0 < RATE <= 1000000");
			break;
		case 'd':
			o->seconds = strtod(optarg, &end);
			if (*end || o->seconds <= 0 || o->seconds > 3600)
				return ml_usage("-d: seconds, 0 < SECONDS <= 3600");
			break;
		case 'g':
			o->drain = strtod(optarg, &end);
			if (*end || o->drain < 0 || o->drain > 600)
				return ml_usage("-g: drain seconds, 0..600");
			break;
		case 'c':
			o->conns = (int)strtol(optarg, &end, 10);
			if (*end || o->conns < 1 || o->conns > ML_MAX_CONNS)
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
	if (addr == NULL || o->rate == 0 || o->seconds == 0 || o->conns == 0 || conv_file == NULL ||
	    o->n_tokens == 0)
		return ml_usage("-a, -r, -d, -c, -f and -t are required");
	const char *colon = strrchr(addr, ':');
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (colon == NULL || *end || port < 1 || port > 65535 ||
	    (size_t)(colon - addr) >= sizeof(o->host))
		return ml_usage("-a: HOST:PORT with a numeric IPv4 host");
	memcpy(o->host, addr, (size_t)(colon - addr));
	o->host[colon - addr] = '\0';
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, o->host, &o->addr.sin_addr) != 1)
		return ml_usage("-a: HOST must be a numeric IPv4 address");
	if (ml_load_convs(o, conv_file) != 0)
		return 2;
	return 0;
}

static int
ml_conn_open(struct ml_run *r, int i)
{
	struct ml_conn *c = &r->c[i];
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->rlen = 0;
	c->state = ML_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&r->o.addr, sizeof(r->o.addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		c->state = ML_DEAD;
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i };
	return epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
ml_set_idle(struct ml_run *r, int i)
{
	r->c[i].state = ML_IDLE;
	if (!r->c[i].queued) {
		r->c[i].queued = 1;
		r->idle[r->n_idle++] = i;
	}
}

static void
ml_record(struct ml_run *r, int64_t req, double now)
{
	double sched = r->t0 + (double)req / r->o.rate;
	double us = (now - sched) * 1e6;
	uint32_t v = us < 0 ? 0 : us > 4e9 ? 4000000000u : (uint32_t)us;
	r->lat_us[r->n_lat++] = v;
	int64_t b = (int64_t)((double)req / r->o.rate * 10);
	if (r->tl_max_us != NULL && b >= 0 && b < r->n_tl && v > r->tl_max_us[b])
		r->tl_max_us[b] = v;
}

/* ml_conn_fail closes a broken connection, counts its request lost, and reconnects. */
static void
ml_conn_fail(struct ml_run *r, int i, double now)
{
	struct ml_conn *c = &r->c[i];
	if (c->state == ML_BUSY) {
		r->conn_errors++;
		r->done++;
		ml_record(r, c->req, now);
	}
	epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = ML_DEAD;
	ml_conn_open(r, i);
}

static int
ml_flush(struct ml_run *r, int i, double now)
{
	struct ml_conn *c = &r->c[i];
	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0; /* EPOLLOUT is watched while busy */
		if (n <= 0) {
			ml_conn_fail(r, i, now);
			return -1;
		}
		c->woff += (size_t)n;
	}
	return 0;
}

static void
ml_send(struct ml_run *r, int i, double now)
{
	struct ml_conn *c = &r->c[i];
	char id[37], body[70200];
	int64_t req = r->next++;
	ml_uuid(r, id);
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%s\",\"conversation_id\":\"%s\",\"content\":\"%s\"}", id,
	                  r->o.convs[req % r->o.n_convs], r->content);
	int hl = snprintf(c->wbuf, sizeof(c->wbuf),
	                  "POST /v1/messages HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer "
	                  "%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
	                  r->o.host, ntohs(r->o.addr.sin_port), r->o.tokens[i % r->o.n_tokens], bl);
	if (hl < 0 || (size_t)hl + (size_t)bl >= sizeof(c->wbuf)) {
		fprintf(stderr, "msgload: request too large for the write buffer\n");
		exit(1);
	}
	memcpy(c->wbuf + hl, body, (size_t)bl);
	c->wlen = (size_t)hl + (size_t)bl;
	c->woff = 0;
	c->req = req;
	c->state = ML_BUSY;
	c->rlen = 0;
	ml_flush(r, i, now);
}

/* ml_parse_response: 1 and *status when rbuf holds a whole response, 0 when more is needed, -1
 * when it is malformed. */
static int
ml_parse_response(struct ml_conn *c, int *status, int *close_after)
{
	c->rbuf[c->rlen] = '\0';
	char *eoh = strstr(c->rbuf, "\r\n\r\n");
	if (eoh == NULL)
		return c->rlen >= ML_RBUF - 1 ? -1 : 0;
	if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || c->rlen < 12)
		return -1;
	*status = atoi(c->rbuf + 9);
	if (*status < 100 || *status > 599)
		return -1;
	size_t hdr = (size_t)(eoh - c->rbuf) + 4, clen = 0;
	*close_after = 0;
	for (char *p = strstr(c->rbuf, "\r\n"); p != NULL && p < eoh; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			clen = strtoul(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
			*close_after = 1;
		else if (strncasecmp(p + 2, "Transfer-Encoding:", 18) == 0)
			return -1; /* the gateway answers with Content-Length */
	}
	if (hdr + clen >= ML_RBUF)
		return -1;
	return c->rlen >= hdr + clen ? 1 : 0;
}

static void
ml_read(struct ml_run *r, int i, double now)
{
	struct ml_conn *c = &r->c[i];
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, ML_RBUF - 1 - c->rlen);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || c->state != ML_BUSY) {
			ml_conn_fail(r, i, now);
			return;
		}
		c->rlen += (size_t)n;
		int status = 0, close_after = 0, rv = ml_parse_response(c, &status, &close_after);
		if (rv == 0)
			continue;
		if (rv < 0) {
			ml_conn_fail(r, i, now);
			return;
		}
		r->status[status]++;
		r->done++;
		ml_record(r, c->req, now);
		if (status >= 200 && status < 300) {
			r->ok++;
			r->last_done = now;
		}
		ml_set_idle(r, i);
		c->rlen = 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
		if (close_after) {
			epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			ml_conn_open(r, i);
		}
		return;
	}
}

static void
ml_event(struct ml_run *r, const struct epoll_event *ev, double now)
{
	int i = (int)ev->data.u32;
	struct ml_conn *c = &r->c[i];
	if (c->state == ML_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if ((ev->events & (EPOLLERR | EPOLLHUP)) ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->state = ML_DEAD;
			return;
		}
		ml_set_idle(r, i);
		struct epoll_event e2 = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e2);
		return;
	}
	if (c->state == ML_BUSY && (ev->events & EPOLLOUT)) {
		if (ml_flush(r, i, now) != 0)
			return;
		if (c->woff == c->wlen) {
			struct epoll_event e2 = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
			epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e2);
		}
	}
	if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		ml_read(r, i, now);
}

static int
ml_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
ml_pct_ms(const uint32_t *v, int64_t n, double p)
{
	if (n == 0)
		return 0;
	int64_t k = (int64_t)(p * (double)n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k] / 1000.0;
}

static void
ml_report(struct ml_run *r, double wall)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	int64_t late = r->next - r->done + (r->total - r->next);
	qsort(r->lat_us, (size_t)r->n_lat, sizeof(*r->lat_us), ml_cmp_u32);
	char errs[512] = "";
	size_t el = 0;
	for (int s = 0; s < 600; s++)
		if (r->status[s] && (s < 200 || s >= 300))
			el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%s%d:%lld",
			                       el ? "," : "", s, (long long)r->status[s]);
	if (r->conn_errors)
		el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%sconn:%lld", el ? "," : "",
		                       (long long)r->conn_errors);
	if (late > 0)
		el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%slate:%lld", el ? "," : "",
		                       (long long)late);
	if (el == 0)
		snprintf(errs, sizeof(errs), "none");
	double span = r->last_done > r->t0 ? r->last_done - r->t0 : r->o.seconds;
	if (span < r->o.seconds)
		span = r->o.seconds;
	/* MSGLOAD_TIMELINE=1: when the slow requests were scheduled (stalls vs. steady queueing) */
	for (int64_t b = 0; r->tl_max_us != NULL && b < r->n_tl; b++) {
		if (r->tl_max_us[b] < 100000)
			continue;
		double at = r->wall0_frac + b / 10.0;
		time_t sec = r->wall0 + (time_t)at;
		struct tm tm;
		char hms[16];
		gmtime_r(&sec, &tm);
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
		fprintf(stderr, "timeline: %.1f-%.1f s (%s.%d UTC) worst %.0f ms\n", b / 10.0,
		        (b + 1) / 10.0, hms, (int)((at - (int)at) * 10), r->tl_max_us[b] / 1000.0);
	}
	double p50 = ml_pct_ms(r->lat_us, r->n_lat, 0.50),
	       p99 = ml_pct_ms(r->lat_us, r->n_lat, 0.99);
	double mx = r->n_lat ? r->lat_us[r->n_lat - 1] / 1000.0 : 0;
	printf(
	    "target %.0f/s for %.0f s: %lld scheduled, %lld answered 2xx, achieved %.0f/s, "
	    "p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %s; msgload CPU %.2f s (%.0f%% of one "
	    "core)\n",
	    r->o.rate, r->o.seconds, (long long)r->total, (long long)r->ok, (double)r->ok / span,
	    p50, p99, mx, errs, cpu, cpu / wall * 100);
	printf("RESULT target=%.0f scheduled=%lld sent=%lld ok=%lld achieved=%.0f p50_ms=%.1f "
	       "p99_ms=%.1f max_ms=%.1f errors=%s cpu_s=%.2f cpu_pct=%.0f\n",
	       r->o.rate, (long long)r->total, (long long)r->next, (long long)r->ok,
	       (double)r->ok / span, p50, p99, mx, errs, cpu, cpu / wall * 100);
}

int
main(int argc, char **argv)
{
	static struct ml_run run;
	struct ml_run *r = &run;
	int rv = ml_parse(&r->o, argc, argv);
	if (rv != 0)
		return rv;
	if (getrandom(r->rng, sizeof(r->rng), 0) != sizeof(r->rng))
		r->rng[0] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull,
		r->rng[1] = (uint64_t)time(NULL);
	r->rng[0] |= 1;
	for (int k = 0; k < r->o.content_bytes; k++)
		r->content[k] = "abcdefghijklmnopqrstuvwxyz "[k % 27];
	r->total = (int64_t)(r->o.rate * r->o.seconds);
	r->lat_us = calloc((size_t)r->total + 1, sizeof(*r->lat_us));
	if (getenv("MSGLOAD_TIMELINE") != NULL) {
		r->n_tl = (int64_t)(r->o.seconds * 10) + 1;
		r->tl_max_us = calloc((size_t)r->n_tl, sizeof(*r->tl_max_us));
	}
	r->c = calloc((size_t)r->o.conns, sizeof(*r->c));
	r->idle = calloc((size_t)r->o.conns, sizeof(*r->idle));
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->lat_us == NULL || r->c == NULL || r->idle == NULL || r->ep < 0) {
		fprintf(stderr, "msgload: out of memory\n");
		return 1;
	}
	for (int i = 0; i < r->o.conns; i++)
		ml_conn_open(r, i);
	/* wait up to 5 s for the connections */
	struct epoll_event evs[256];
	double start = ml_now();
	int idle = 0;
	while (ml_now() - start < 5) {
		int n = epoll_wait(r->ep, evs, 256, 50);
		for (int k = 0; k < n; k++)
			ml_event(r, &evs[k], ml_now());
		idle = 0;
		for (int i = 0; i < r->o.conns; i++)
			idle += r->c[i].state == ML_IDLE;
		if (idle == r->o.conns)
			break;
	}
	if (idle == 0) {
		fprintf(stderr, "msgload: could not connect to %s:%u\n", r->o.host,
		        ntohs(r->o.addr.sin_port));
		return 1;
	}
	r->t0 = ml_now();
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	r->wall0 = wall.tv_sec;
	r->wall0_frac = wall.tv_nsec / 1e9;
	double end = r->t0 + r->o.seconds, deadline = end + r->o.drain;
	for (;;) {
		double now = ml_now();
		/* dispatch every request whose time has come onto idle connections */
		while (r->n_idle > 0 && r->next < r->total &&
		       r->t0 + (double)r->next / r->o.rate <= now) {
			int i = r->idle[--r->n_idle];
			r->c[i].queued = 0;
			if (r->c[i].state == ML_IDLE)
				ml_send(r, i, now);
		}
		if (r->done == r->total || now >= deadline)
			break;
		double due = r->next < r->total ? r->t0 + (double)r->next / r->o.rate : deadline;
		double wait_s = due > now ? due - now : 0;
		if (r->n_idle == 0 || wait_s > 0.1)
			wait_s = 0.1; /* nothing can go out before a connection frees up */
		/* Nanosecond timeout: a millisecond one rounds the sub-millisecond gaps between
		 * requests at high rates to 0, and the generator then spins on a core that the
		 * services under test need. */
		struct timespec ts = { (time_t)wait_s,
			               (long)((wait_s - (double)(time_t)wait_s) * 1e9) };
		int n = epoll_pwait2(r->ep, evs, 256, &ts, NULL);
		now = ml_now();
		for (int k = 0; k < n; k++)
			ml_event(r, &evs[k], now);
	}
	/* requests never answered count at their age at the deadline (a lower bound) */
	double stop = ml_now();
	for (int i = 0; i < r->o.conns; i++)
		if (r->c[i].state == ML_BUSY)
			ml_record(r, r->c[i].req, stop);
	for (int64_t q = r->next; q < r->total; q++)
		ml_record(r, q, stop);
	ml_report(r, stop - start);
	for (int i = 0; i < r->o.conns; i++)
		if (r->c[i].fd > 0)
			close(r->c[i].fd);
	close(r->ep);
	free(r->lat_us);
	free(r->c);
	free(r->idle);
	free(r->o.convs);
	return 0;
}
