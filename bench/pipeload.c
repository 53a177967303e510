/* pipeload.c: the load tools of bench/pipeline_bench.sh (send -> browser through the whole
 * platform). Built by that script with gcc -O2, like msgload; not part of the CMake build.
 *
 *   pipeload send -a HOST:PORT -u USERS -m MEMBERS -r RATE -d SECONDS -S STEP -o ACKED
 *                 [-n SENDERS] [-c CONNS] [-g DRAIN_S]
 *       Open-loop POST /v1/messages: message i is SCHEDULED at start + i/RATE whatever happened
 *       before, and its content is "t=<scheduled CLOCK_REALTIME us> s=<STEP> i=<i>". It goes to
 *       conversation i mod C (C = users / MEMBERS) from member (i / C) mod SENDERS of it, with
 *       that member's own token, on the first idle keep-alive connection. Every 2xx answer
 *       appends "<conversation index> <seq> <STEP> <i>" to ACKED. Prints a line beginning
 *       "RESULT " (key=value: target scheduled sent ok achieved ack_p50_ms ack_p99_ms
 *       ack_max_ms errors cpu_s), ack latency = answer time - scheduled time.
 *
 *   pipeload recv -a HOST:PORT -u USERS -P PART -Q PARTS -C CONTROL [-r OPEN_RATE]
 *       WebSocket receivers for the users n with n mod PARTS == PART, each with its own token
 *       (GET /ws?token=...; the server subscribes it to its conversations and says "ready").
 *       For every message.created frame: per socket a bitmap of the seqs seen (a seq seen
 *       twice on the same client is a duplicate), and for first arrivals the latency receive
 *       time (CLOCK_REALTIME) - the scheduled time in the content, in a histogram per step
 *       (the step is in the content too, so a late delivery counts in its own step). A socket
 *       the server closes after it was ready is reopened with ?resume=1 and subscribes with
 *       since_seq = the last seq it holds without a gap, as a browser would (counted).
 *       Pings are answered. Prints {"phase":"open",...} once every socket is ready or failed.
 *
 *   pipeload tap -a HOST:PORT -C CONTROL
 *       A Redis subscriber (PSUBSCRIBE conv:*): latency from the scheduled time to the moment
 *       the notifier's PUBLISH reaches a subscriber, per step (a hop of the path).
 *
 *   recv and tap report on SIGUSR1: they read CONTROL, a first line "<report id>" and then
 *   lines "<step> <acked file>", and print one JSON line per step listed ({"id":..,"step":..,
 *   ...}: recv compares every acked (conversation, seq) with the bitmaps of its own sockets
 *   of that conversation: expected, got, missing) and then {"id":..,"end":1}. Reports are
 *   cumulative (nothing is reset), so they can be asked for again after a drain.
 *
 *   pipeload pct   reads sparse histograms ("index:count,...", one or more lines, merged) on
 *                  stdin and prints "count p50_ms p99_ms".
 *
 * USERS has one line per user, in user order: "<conversation index> <conversation id>
 * <token>"; user n is a member of conversation n / MEMBERS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PL_MAX_STEPS 64

/* ---- common ---------------------------------------------------------------------------- */

static int64_t
pl_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
pl_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void
pl_die(const char *what)
{
	fprintf(stderr, "pipeload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *
pl_calloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (p == NULL)
		pl_die("calloc");
	return p;
}

static void
pl_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (p == NULL)
		pl_die("realloc");
	*buf = p;
	*cap = n;
}

static int
pl_parse_addr(const char *s, struct sockaddr_in *sa, char *host, size_t hostlen)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || (size_t)(colon - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	long port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

/* Latency histogram, microseconds: 8-us buckets below 1,024 us, then 64 buckets per power of
 * two (about 1.1% wide) up to 2^41 us. */
#define PL_LIN     128
#define PL_OCTAVES 31
#define PL_NBUCK   (PL_LIN + PL_OCTAVES * 64)

struct pl_hist {
	uint64_t b[PL_NBUCK];
	uint64_t count, max_us;
};

static int
pl_hist_index(uint64_t v)
{
	if (v < 1024)
		return (int)(v >> 3);
	int msb = 63 - __builtin_clzll(v);
	if (msb - 10 >= PL_OCTAVES)
		return PL_NBUCK - 1;
	return PL_LIN + (msb - 10) * 64 + (int)((v >> (msb - 6)) & 63);
}

static double
pl_hist_mid(int i)
{
	if (i < PL_LIN)
		return i * 8 + 4;
	int o = (i - PL_LIN) / 64, sub = (i - PL_LIN) % 64, msb = o + 10;
	double lo = (double)((uint64_t)(64 + sub) << (msb - 6));
	return lo + (double)(1ULL << (msb - 6)) / 2;
}

static void
pl_hist_add(struct pl_hist *h, int64_t us)
{
	uint64_t v = us < 0 ? 0 : (uint64_t)us;
	h->b[pl_hist_index(v)]++;
	h->count++;
	if (v > h->max_us)
		h->max_us = v;
}

static void
pl_hist_print(const struct pl_hist *h)
{
	int first = 1;
	for (int i = 0; i < PL_NBUCK; i++)
		if (h->b[i]) {
			printf("%s%d:%" PRIu64, first ? "" : ",", i, h->b[i]);
			first = 0;
		}
}

/* ---- users file ------------------------------------------------------------------------ */

struct pl_user {
	int conv;
	char *conv_id, *token;
};

static struct pl_user *
pl_load_users(const char *path, int *n_out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		pl_die(path);
	int cap = 1024, n = 0;
	struct pl_user *u = pl_calloc((size_t)cap, sizeof(*u));
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		char *a = strtok(line, " "), *b = strtok(NULL, " "), *c = strtok(NULL, " ");
		if (a == NULL || b == NULL || c == NULL) {
			fprintf(stderr,
			        "pipeload: %s line %d: want \"<conv index> <conv id> <token>\"\n",
			        path, n + 1);
			exit(2);
		}
		if (n == cap) {
			cap *= 2;
			u = realloc(u, (size_t)cap * sizeof(*u));
			if (u == NULL)
				pl_die("realloc");
		}
		u[n].conv = atoi(a);
		u[n].conv_id = strdup(b);
		u[n].token = strdup(c);
		if (u[n].conv_id == NULL || u[n].token == NULL)
			pl_die("strdup");
		n++;
	}
	free(line);
	fclose(f);
	*n_out = n;
	return u;
}

/* ---- send ------------------------------------------------------------------------------ */

enum ps_state { PS_CONNECTING, PS_IDLE, PS_BUSY, PS_DEAD };

struct ps_conn {
	int fd;
	enum ps_state state;
	int64_t req;
	char wbuf[8192];
	size_t wlen, woff;
	char rbuf[16384];
	size_t rlen;
	bool queued;
};

static struct {
	struct sockaddr_in addr;
	char host[64];
	struct pl_user *users;
	int n_users, members, senders, n_convs, step, nconns;
	double rate, seconds, drain;
	struct ps_conn *c;
	int *idle, n_idle;
	int ep;
	int64_t t0_mono, t0_real; /* us */
	int64_t total, next, done, ok, conn_errors;
	int64_t status[600];
	uint32_t *lat_us;
	int64_t n_lat;
	int64_t last_ok_mono;
	FILE *acked;
	uint64_t rng[2];
} ps;

static uint64_t
ps_rand(void)
{
	uint64_t s1 = ps.rng[0];
	const uint64_t s0 = ps.rng[1];
	ps.rng[0] = s0;
	s1 ^= s1 << 23;
	ps.rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return ps.rng[1] + s0;
}

static void
ps_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = ps_rand(), y = ps_rand();
	memcpy(b, &x, 8);
	memcpy(b + 8, &y, 8);
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

static int64_t
ps_sched_mono(int64_t i)
{
	return ps.t0_mono + (int64_t)((double)i * 1e6 / ps.rate);
}

static void
ps_open(int i)
{
	struct ps_conn *c = &ps.c[i];
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = PS_DEAD;
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = PS_CONNECTING;
	c->rlen = 0;
	if (connect(c->fd, (struct sockaddr *)&ps.addr, sizeof(ps.addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		c->state = PS_DEAD;
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i };
	epoll_ctl(ps.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
ps_set_idle(int i)
{
	ps.c[i].state = PS_IDLE;
	if (!ps.c[i].queued) {
		ps.c[i].queued = true;
		ps.idle[ps.n_idle++] = i;
	}
}

static void
ps_record(int64_t req, int64_t now)
{
	int64_t us = now - ps_sched_mono(req);
	ps.lat_us[ps.n_lat++] = us < 0 ? 0 : us > 4000000000LL ? 4000000000u : (uint32_t)us;
}

static void
ps_fail(int i, int64_t now)
{
	struct ps_conn *c = &ps.c[i];
	if (c->state == PS_BUSY) {
		ps.conn_errors++;
		ps.done++;
		ps_record(c->req, now);
	}
	epoll_ctl(ps.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = PS_DEAD;
	ps_open(i);
}

static void
ps_flush(int i, int64_t now)
{
	struct ps_conn *c = &ps.c[i];
	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			ps_fail(i, now);
			return;
		}
		c->woff += (size_t)n;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
	epoll_ctl(ps.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
ps_send(int i, int64_t now)
{
	struct ps_conn *c = &ps.c[i];
	int64_t req = ps.next++;
	int conv = (int)(req % ps.n_convs);
	int member = (int)((req / ps.n_convs) % ps.senders);
	const struct pl_user *u = &ps.users[conv * ps.members + member];
	int64_t sched_real = ps.t0_real + (int64_t)((double)req * 1e6 / ps.rate);
	char id[37], body[512];
	ps_uuid(id);
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%s\",\"conversation_id\":\"%s\",\"content\":\"t=%" PRId64
	                  " s=%d i=%" PRId64 "\"}",
	                  id, u->conv_id, sched_real, ps.step, req);
	int hl =
	    snprintf(c->wbuf, sizeof(c->wbuf),
	             "POST /v1/messages HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer %s\r\n"
	             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
	             ps.host, ntohs(ps.addr.sin_port), u->token, bl);
	if (hl < 0 || (size_t)hl + (size_t)bl >= sizeof(c->wbuf)) {
		fprintf(stderr, "pipeload: request too large\n");
		exit(1);
	}
	memcpy(c->wbuf + hl, body, (size_t)bl);
	c->wlen = (size_t)hl + (size_t)bl;
	c->woff = 0;
	c->req = req;
	c->state = PS_BUSY;
	c->rlen = 0;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i };
	epoll_ctl(ps.ep, EPOLL_CTL_MOD, c->fd, &ev);
	ps_flush(i, now);
}

/* ps_response: 1 with *status and *body when rbuf holds a whole response, 0 when more is
 * needed, -1 when it is malformed. */
static int
ps_response(struct ps_conn *c, int *status, const char **body, size_t *blen, bool *close_after)
{
	c->rbuf[c->rlen] = '\0';
	char *eoh = strstr(c->rbuf, "\r\n\r\n");
	if (eoh == NULL)
		return c->rlen >= sizeof(c->rbuf) - 1 ? -1 : 0;
	if (c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(c->rbuf + 9);
	if (*status < 100 || *status > 599)
		return -1;
	size_t hdr = (size_t)(eoh - c->rbuf) + 4, clen = 0;
	*close_after = false;
	for (char *p = strstr(c->rbuf, "\r\n"); p != NULL && p < eoh; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			clen = strtoul(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
			*close_after = true;
	}
	if (hdr + clen >= sizeof(c->rbuf))
		return -1;
	if (c->rlen < hdr + clen)
		return 0;
	*body = c->rbuf + hdr;
	*blen = clen;
	return 1;
}

static int64_t
ps_body_seq(const char *b, size_t len)
{
	const char *p = memmem(b, len, "\"seq\":", 6);
	if (p == NULL)
		return -1;
	p += 6;
	if (p < b + len && *p == '"')
		p++;
	int64_t v = 0;
	int d = 0;
	while (p < b + len && *p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		d++;
	}
	return d ? v : -1;
}

static void
ps_read(int i, int64_t now)
{
	struct ps_conn *c = &ps.c[i];
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - 1 - c->rlen);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || c->state != PS_BUSY) {
			ps_fail(i, now);
			return;
		}
		c->rlen += (size_t)n;
		int status = 0;
		const char *body = NULL;
		size_t blen = 0;
		bool close_after = false;
		int rv = ps_response(c, &status, &body, &blen, &close_after);
		if (rv == 0)
			continue;
		if (rv < 0) {
			ps_fail(i, now);
			return;
		}
		ps.status[status]++;
		ps.done++;
		ps_record(c->req, now);
		if (status >= 200 && status < 300) {
			int64_t seq = ps_body_seq(body, blen);
			int conv = (int)(c->req % ps.n_convs);
			ps.ok++;
			ps.last_ok_mono = now;
			fprintf(ps.acked, "%d %" PRId64 " %d %" PRId64 "\n", conv, seq, ps.step,
			        c->req);
		}
		c->rlen = 0;
		if (close_after) {
			epoll_ctl(ps.ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			ps_open(i);
			return;
		}
		ps_set_idle(i);
		return;
	}
}

static void
ps_event(const struct epoll_event *ev, int64_t now)
{
	int i = (int)ev->data.u32;
	struct ps_conn *c = &ps.c[i];
	if (c->state == PS_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		if ((ev->events & (EPOLLERR | EPOLLHUP)) ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0) {
			epoll_ctl(ps.ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->state = PS_DEAD;
			return;
		}
		struct epoll_event e2 = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ps.ep, EPOLL_CTL_MOD, c->fd, &e2);
		ps_set_idle(i);
		return;
	}
	if (c->state == PS_BUSY && (ev->events & EPOLLOUT))
		ps_flush(i, now);
	if (c->fd >= 0 && (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		ps_read(i, now);
}

static int
ps_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
ps_pct_ms(double p)
{
	if (ps.n_lat == 0)
		return 0;
	int64_t k = (int64_t)(p * (double)ps.n_lat + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= ps.n_lat)
		k = ps.n_lat - 1;
	return ps.lat_us[k] / 1000.0;
}

static int
ps_usage(const char *m)
{
	fprintf(stderr,
	        "pipeload send: %s\nusage: pipeload send -a HOST:PORT -u USERS -m MEMBERS -r RATE "
	        "-d SECONDS -S STEP -o ACKED [-n SENDERS] [-c CONNS] [-g DRAIN_S]\n",
	        m);
	return 2;
}

static int
pl_send_main(int argc, char **argv)
{
	const char *addr = NULL, *users = NULL, *acked = NULL;
	int opt;
	ps.nconns = 512;
	ps.drain = 10;
	ps.step = -1;
	while ((opt = getopt(argc, argv, "a:u:m:r:d:S:o:n:c:g:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'u':
			users = optarg;
			break;
		case 'm':
			ps.members = atoi(optarg);
			break;
		case 'r':
			ps.rate = atof(optarg);
			break;
		case 'd':
			ps.seconds = atof(optarg);
			break;
		case 'S':
			ps.step = atoi(optarg);
			break;
		case 'o':
			acked = optarg;
			break;
		case 'n':
			ps.senders = atoi(optarg);
			break;
		case 'c':
			ps.nconns = atoi(optarg);
			break;
		case 'g':
			ps.drain = atof(optarg);
			break;
		default:
			return ps_usage("unknown option");
		}
	}
	if (addr == NULL || users == NULL || acked == NULL || ps.members < 1 || ps.rate <= 0 ||
	    ps.seconds <= 0 || ps.step < 0 || ps.step >= PL_MAX_STEPS || ps.nconns < 1 ||
	    ps.nconns > 4000)
		return ps_usage("missing or bad arguments");
	if (pl_parse_addr(addr, &ps.addr, ps.host, sizeof(ps.host)) != 0)
		return ps_usage("-a: numeric IPv4 HOST:PORT");
	ps.users = pl_load_users(users, &ps.n_users);
	if (ps.n_users < ps.members || ps.n_users % ps.members != 0)
		return ps_usage("USERS must hold a multiple of MEMBERS lines");
	if (ps.senders < 1 || ps.senders > ps.members)
		ps.senders = ps.members;
	ps.n_convs = ps.n_users / ps.members;
	ps.acked = fopen(acked, "w");
	if (ps.acked == NULL)
		pl_die(acked);
	if (getrandom(ps.rng, sizeof(ps.rng), 0) != sizeof(ps.rng))
		pl_die("getrandom");
	ps.rng[0] |= 1;
	signal(SIGPIPE, SIG_IGN);
	ps.total = (int64_t)(ps.rate * ps.seconds);
	ps.lat_us = pl_calloc((size_t)ps.total + 1, sizeof(*ps.lat_us));
	ps.c = pl_calloc((size_t)ps.nconns, sizeof(*ps.c));
	ps.idle = pl_calloc((size_t)ps.nconns, sizeof(*ps.idle));
	ps.ep = epoll_create1(EPOLL_CLOEXEC);
	if (ps.ep < 0)
		pl_die("epoll_create1");
	for (int i = 0; i < ps.nconns; i++)
		ps_open(i);
	struct epoll_event evs[256];
	int64_t start = pl_now_us(CLOCK_MONOTONIC);
	while (pl_now_us(CLOCK_MONOTONIC) - start < 5000000 && ps.n_idle < ps.nconns) {
		int n = epoll_wait(ps.ep, evs, 256, 50);
		for (int k = 0; k < n; k++)
			ps_event(&evs[k], pl_now_us(CLOCK_MONOTONIC));
	}
	if (ps.n_idle == 0) {
		fprintf(stderr, "pipeload send: could not connect to %s\n", addr);
		return 1;
	}
	/* the schedule: both clocks read together, so the content's times are CLOCK_REALTIME */
	ps.t0_mono = pl_now_us(CLOCK_MONOTONIC);
	ps.t0_real = pl_now_us(CLOCK_REALTIME);
	double cpu0 = pl_cpu_s();
	int64_t end = ps.t0_mono + (int64_t)(ps.seconds * 1e6);
	int64_t deadline = end + (int64_t)(ps.drain * 1e6);
	for (;;) {
		int64_t now = pl_now_us(CLOCK_MONOTONIC);
		while (ps.n_idle > 0 && ps.next < ps.total && ps_sched_mono(ps.next) <= now) {
			int i = ps.idle[--ps.n_idle];
			ps.c[i].queued = false;
			if (ps.c[i].state == PS_IDLE)
				ps_send(i, now);
		}
		if (ps.done == ps.total || now >= deadline)
			break;
		int64_t due = ps.next < ps.total ? ps_sched_mono(ps.next) : deadline;
		int64_t wait = due > now ? due - now : 0;
		if (ps.n_idle == 0 || wait > 100000)
			wait = 100000;
		struct timespec ts = { (time_t)(wait / 1000000), (long)(wait % 1000000) * 1000 };
		int n = epoll_pwait2(ps.ep, evs, 256, &ts, NULL);
		now = pl_now_us(CLOCK_MONOTONIC);
		for (int k = 0; k < n; k++)
			ps_event(&evs[k], now);
	}
	int64_t stop = pl_now_us(CLOCK_MONOTONIC);
	for (int i = 0; i < ps.nconns; i++)
		if (ps.c[i].state == PS_BUSY)
			ps_record(ps.c[i].req, stop);
	for (int64_t q = ps.next; q < ps.total; q++)
		ps_record(q, stop);
	fclose(ps.acked);
	int64_t late = ps.total - ps.done;
	qsort(ps.lat_us, (size_t)ps.n_lat, sizeof(*ps.lat_us), ps_cmp_u32);
	char errs[512] = "";
	size_t el = 0;
	for (int s = 0; s < 600; s++)
		if (ps.status[s] && (s < 200 || s >= 300) && el < sizeof(errs) - 32)
			el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%s%d:%" PRId64,
			                       el ? "," : "", s, ps.status[s]);
	if (ps.conn_errors && el < sizeof(errs) - 32)
		el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%sconn:%" PRId64,
		                       el ? "," : "", ps.conn_errors);
	if (late > 0 && el < sizeof(errs) - 32)
		el += (size_t)snprintf(errs + el, sizeof(errs) - el, "%slate:%" PRId64,
		                       el ? "," : "", late);
	if (el == 0)
		snprintf(errs, sizeof(errs), "none");
	double span = (double)(ps.last_ok_mono - ps.t0_mono) / 1e6;
	if (span < ps.seconds)
		span = ps.seconds;
	printf("RESULT target=%.0f scheduled=%" PRId64 " sent=%" PRId64 " ok=%" PRId64
	       " achieved=%.0f ack_p50_ms=%.1f ack_p99_ms=%.1f ack_max_ms=%.1f errors=%s "
	       "cpu_s=%.2f\n",
	       ps.rate, ps.total, ps.next, ps.ok, (double)ps.ok / span, ps_pct_ms(0.50),
	       ps_pct_ms(0.99), ps.n_lat ? ps.lat_us[ps.n_lat - 1] / 1000.0 : 0.0, errs,
	       pl_cpu_s() - cpu0);
	return 0;
}

/* ---- control file (recv, tap) ---------------------------------------------------------- */

struct pl_control {
	long id;
	int n;
	int step[PL_MAX_STEPS];
	char *acked[PL_MAX_STEPS];
};

static int
pl_read_control(const char *path, struct pl_control *ctl)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	memset(ctl, 0, sizeof(*ctl));
	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	ctl->id = atol(line);
	while (ctl->n < PL_MAX_STEPS && fgets(line, sizeof(line), f) != NULL) {
		char file[4000];
		int s;
		if (sscanf(line, "%d %3999s", &s, file) != 2 || s < 0 || s >= PL_MAX_STEPS)
			continue;
		ctl->step[ctl->n] = s;
		ctl->acked[ctl->n] = strdup(file);
		ctl->n++;
	}
	fclose(f);
	return 0;
}

static void
pl_free_control(struct pl_control *ctl)
{
	for (int i = 0; i < ctl->n; i++)
		free(ctl->acked[i]);
}

/* pl_content parses "t=<us> s=<step>" at the start of a message's content inside a frame;
 * 0 on success. */
static int
pl_content(const char *p, size_t len, int64_t *sched_us, int *step)
{
	static const char key[] = "\"content\":\"t=";
	const char *t = memmem(p, len, key, sizeof(key) - 1);
	if (t == NULL)
		return -1;
	const char *end = p + len;
	t += sizeof(key) - 1;
	int64_t v = 0;
	int d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 19) {
		v = v * 10 + (*t++ - '0');
		d++;
	}
	if (d < 10 || end - t < 4 || memcmp(t, " s=", 3) != 0)
		return -1;
	t += 3;
	int s = 0;
	d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 4) {
		s = s * 10 + (*t++ - '0');
		d++;
	}
	if (d == 0 || s >= PL_MAX_STEPS)
		return -1;
	*sched_us = v;
	*step = s;
	return 0;
}

/* ---- recv ------------------------------------------------------------------------------ */

enum pr_state { PR_IDLE, PR_CONNECTING, PR_UPGRADING, PR_JOINING, PR_READY, PR_CLOSED };

struct pr_conn {
	int fd;
	enum pr_state state;
	int user, conv;
	const char *conv_id, *token;
	bool was_ready; /* ready once: a close is a reconnect with resume */
	bool resume;    /* this attempt resumes */
	int attempts;
	int64_t retry_at; /* monotonic us; > 0: to be opened then */
	int64_t opened;
	uint32_t mask;
	uint64_t *bits; /* seqs received */
	int nwords;
	char *in, *msg, *out;
	size_t in_len, in_cap, msg_len, msg_cap, out_len, out_cap;
	int msg_op;
};

struct pr_step {
	struct pl_hist h;
	uint64_t dup;
};

static struct {
	struct sockaddr_in addr;
	char host[64];
	const char *control;
	struct pr_conn *c;
	int n, next_open;
	double open_rate;
	int ep;
	int64_t t_start;
	int ready, failed, retrying, closes_after_ready, reconnects, last_close_code;
	bool open_reported;
	int *conv_first, *conv_socks, n_convs; /* CSR: sockets of each conversation */
	struct pr_step st[PL_MAX_STEPS];
	uint64_t delivered_frames, other_frames, bad_frames, subscribed_frames;
	char failures[512];
} pr;

static void
pr_note(const char *why)
{
	size_t l = strlen(pr.failures);
	if (strstr(pr.failures, why) == NULL && l + strlen(why) + 3 < sizeof(pr.failures))
		snprintf(pr.failures + l, sizeof(pr.failures) - l, "%s%s", l ? "; " : "", why);
}

static void pr_open(struct pr_conn *c);

static void
pr_close(struct pr_conn *c, const char *why)
{
	if (c->state == PR_CLOSED || c->state == PR_IDLE)
		return;
	if (c->state == PR_READY) {
		pr.ready--;
		pr.closes_after_ready++;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = PR_CLOSED;
	free(c->in);
	free(c->msg);
	free(c->out);
	c->in = c->msg = c->out = NULL;
	c->in_len = c->in_cap = c->msg_len = c->msg_cap = c->out_len = c->out_cap = 0;
	pr_note(why);
	if (c->was_ready) {
		/* a browser reconnects and resumes from the last seq it holds without a gap */
		c->retry_at = pl_now_us(CLOCK_MONOTONIC) + 200000;
		c->attempts = 0;
		pr.retrying++;
		pr.reconnects++;
	} else if (c->attempts < 5) {
		c->retry_at = pl_now_us(CLOCK_MONOTONIC) + 1000000;
		pr.retrying++;
	} else {
		pr.failed++;
	}
}

static void
pr_want_write(struct pr_conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(pr.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
pr_write(struct pr_conn *c, const void *data, size_t len)
{
	const char *p = data;
	if (c->out_len == 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			pr_close(c, "send failed");
			return;
		}
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		}
		if (len == 0)
			return;
		pr_want_write(c, true);
	}
	pl_reserve(&c->out, &c->out_cap, c->out_len + len);
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
}

static void
pr_flush(struct pr_conn *c)
{
	while (c->out_len > 0) {
		ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			pr_close(c, "send failed");
			return;
		}
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
	}
	pr_want_write(c, false);
}

/* pr_frame sends one masked client frame. */
static void
pr_frame(struct pr_conn *c, int op, const char *payload, size_t len)
{
	unsigned char buf[1024];
	size_t h = 0;
	if (len > sizeof(buf) - 8)
		return;
	buf[h++] = (unsigned char)(0x80 | op);
	if (len < 126) {
		buf[h++] = (unsigned char)(0x80 | len);
	} else {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(len >> 8);
		buf[h++] = (unsigned char)len;
	}
	c->mask = c->mask * 1664525u + 1013904223u;
	unsigned char m[4];
	memcpy(m, &c->mask, 4);
	memcpy(buf + h, m, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		buf[h + i] = (unsigned char)payload[i] ^ m[i & 3];
	pr_write(c, buf, h + len);
}

static bool
pr_seen(struct pr_conn *c, int64_t seq)
{
	int64_t w = seq / 64;
	return seq >= 0 && w < c->nwords && (c->bits[w] >> (seq % 64) & 1);
}

static void
pr_mark(struct pr_conn *c, int64_t seq)
{
	int64_t w = seq / 64;
	if (w >= c->nwords) {
		int n = c->nwords ? c->nwords : 4;
		while (n <= w)
			n *= 2;
		uint64_t *b = realloc(c->bits, (size_t)n * sizeof(*b));
		if (b == NULL)
			pl_die("realloc");
		memset(b + c->nwords, 0, (size_t)(n - c->nwords) * sizeof(*b));
		c->bits = b;
		c->nwords = n;
	}
	c->bits[w] |= 1ULL << (seq % 64);
}

/* pr_contiguous is the last seq held with nothing missing before it (seqs start at 1). */
static int64_t
pr_contiguous(const struct pr_conn *c)
{
	int64_t s = 1;
	while (s / 64 < c->nwords && (c->bits[s / 64] >> (s % 64) & 1))
		s++;
	return s - 1;
}

static int64_t
pr_json_int(const char *p, size_t len, const char *key)
{
	size_t kl = strlen(key);
	const char *t = memmem(p, len, key, kl);
	if (t == NULL)
		return -1;
	t += kl;
	const char *end = p + len;
	int64_t v = 0;
	int d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 18) {
		v = v * 10 + (*t++ - '0');
		d++;
	}
	return d ? v : -1;
}

static void
pr_on_text(struct pr_conn *c, const char *p, size_t len)
{
	int64_t now = pl_now_us(CLOCK_REALTIME);
	if (memmem(p, len, "\"type\":\"message.created\"", 24) != NULL) {
		int64_t seq = pr_json_int(p, len, "\"seq\":"), sched;
		int step;
		if (seq <= 0 || pl_content(p, len, &sched, &step) != 0) {
			pr.bad_frames++;
			return;
		}
		if (pr_seen(c, seq)) {
			pr.st[step].dup++;
			return;
		}
		pr_mark(c, seq);
		pl_hist_add(&pr.st[step].h, now - sched);
		return;
	}
	if (memmem(p, len, "\"type\":\"message.delivered\"", 26) != NULL) {
		pr.delivered_frames++;
		return;
	}
	if (c->state == PR_JOINING && memmem(p, len, "\"type\":\"ready\"", 14) != NULL) {
		c->state = PR_READY;
		c->was_ready = true;
		pr.ready++;
		if (c->resume) {
			char sub[256];
			int n = snprintf(sub, sizeof(sub),
			                 "{\"type\":\"subscribe\",\"conversation_id\":\"%s\","
			                 "\"since_seq\":%" PRId64 "}",
			                 c->conv_id, pr_contiguous(c));
			pr_frame(c, 1, sub, (size_t)n);
		}
		return;
	}
	if (memmem(p, len, "\"type\":\"subscribed\"", 19) != NULL) {
		pr.subscribed_frames++;
		return;
	}
	pr.other_frames++;
}

/* pr_on_frame handles one whole server frame; false when c was closed. */
static bool
pr_on_frame(struct pr_conn *c, int fin, int op, const char *p, size_t len)
{
	switch (op) {
	case 0:
		pl_reserve(&c->msg, &c->msg_cap, c->msg_len + len);
		memcpy(c->msg + c->msg_len, p, len);
		c->msg_len += len;
		if (fin) {
			if (c->msg_op == 1)
				pr_on_text(c, c->msg, c->msg_len);
			c->msg_len = 0;
		}
		break;
	case 1:
	case 2:
		if (!fin) {
			c->msg_op = op;
			c->msg_len = 0;
			return pr_on_frame(c, 0, 0, p, len);
		}
		if (op == 1)
			pr_on_text(c, p, len);
		break;
	case 8: {
		int code = len >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
		char why[32];
		pr.last_close_code = code;
		pr_frame(c, 8, p, len >= 2 ? 2 : 0);
		snprintf(why, sizeof(why), "closed %d", code);
		pr_close(c, why);
		return false;
	}
	case 9:
		pr_frame(c, 10, p, len);
		break;
	default:
		break;
	}
	return c->state != PR_CLOSED;
}

static void
pr_parse(struct pr_conn *c)
{
	size_t off = 0;
	if (c->state == PR_UPGRADING) {
		char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (e == NULL)
			return;
		if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0) {
			char why[32];
			snprintf(why, sizeof(why), "HTTP %.3s",
			         c->in_len >= 12 ? c->in + 9 : "???");
			pr_close(c, why);
			return;
		}
		off = (size_t)(e - c->in) + 4;
		c->state = PR_JOINING;
	}
	while (c->state != PR_CLOSED) {
		const unsigned char *b = (const unsigned char *)c->in + off;
		size_t avail = c->in_len - off, h = 2;
		if (avail < 2)
			break;
		int fin = b[0] >> 7, op = b[0] & 15;
		uint64_t len = b[1] & 127;
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)b[2] << 8 | b[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | b[2 + i];
			h = 10;
		}
		if (len > (16u << 20)) {
			pr_close(c, "frame too large");
			return;
		}
		if (avail < h + len)
			break;
		if (!pr_on_frame(c, fin, op, (const char *)b + h, (size_t)len))
			return;
		off += h + (size_t)len;
	}
	if (c->state == PR_CLOSED)
		return;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void
pr_readable(struct pr_conn *c)
{
	for (;;) {
		pl_reserve(&c->in, &c->in_cap, c->in_len + 16384);
		size_t space = c->in_cap - c->in_len;
		ssize_t r = recv(c->fd, c->in + c->in_len, space, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			pr_close(c, r == 0 ? "EOF" : "recv failed");
			return;
		}
		c->in_len += (size_t)r;
		pr_parse(c);
		if (c->state == PR_CLOSED || (size_t)r < space)
			return;
	}
}

static void
pr_connected(struct pr_conn *c)
{
	int err = 0;
	socklen_t l = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err != 0) {
		pr_close(c, "connect failed");
		return;
	}
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[18] = { 0 }; /* 16 random bytes, base64: 24 characters, "==" at the end */
	char key[25];
	for (int i = 0; i < 16; i++) {
		c->mask = c->mask * 1664525u + 1013904223u;
		raw[i] = (unsigned char)(c->mask >> 24);
	}
	for (int i = 0, o = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		key[o++] = b64[v >> 18 & 63];
		key[o++] = b64[v >> 12 & 63];
		key[o++] = b64[v >> 6 & 63];
		key[o++] = b64[v & 63];
	}
	key[22] = key[23] = '=';
	key[24] = '\0';
	char req[4096];
	int n =
	    snprintf(req, sizeof(req),
	             "GET /ws?token=%s%s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\n\r\n",
	             c->token, c->resume ? "&resume=1" : "", pr.host, ntohs(pr.addr.sin_port), key);
	if (n <= 0 || n >= (int)sizeof(req)) {
		pr_close(c, "request too long");
		return;
	}
	c->state = PR_UPGRADING;
	pr_want_write(c, false);
	pr_write(c, req, (size_t)n);
}

static void
pr_open(struct pr_conn *c)
{
	c->attempts++;
	c->resume = c->was_ready;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->state = PR_CONNECTING;
	c->opened = pl_now_us(CLOCK_MONOTONIC);
	if (c->fd < 0) {
		pr_close(c, "socket() failed");
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&pr.addr, sizeof(pr.addr)) != 0 &&
	    errno != EINPROGRESS) {
		pr_close(c, "connect failed");
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(pr.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
pr_timers(int64_t mono)
{
	static int64_t last;
	if (mono - last < 50000)
		return;
	last = mono;
	for (int i = 0; pr.retrying > 0 && i < pr.next_open; i++) {
		struct pr_conn *c = &pr.c[i];
		if (c->state == PR_CLOSED && c->retry_at > 0 && mono >= c->retry_at) {
			c->retry_at = 0;
			pr.retrying--;
			pr_open(c);
		}
	}
	if (pr.open_reported || pr.next_open < pr.n || pr.retrying > 0)
		return;
	bool pending = false;
	for (int i = 0; i < pr.n; i++) {
		struct pr_conn *c = &pr.c[i];
		if (c->state == PR_READY || c->state == PR_CLOSED)
			continue;
		if (mono - c->opened > 30000000)
			pr_close(c, "no ready within 30 s");
		else
			pending = true;
	}
	if (pending || pr.retrying > 0)
		return;
	pr.open_reported = true;
	printf("{\"phase\":\"open\",\"requested\":%d,\"ready\":%d,\"failed\":%d,\"open_s\":%.2f,"
	       "\"cpu_s\":%.3f,\"failures\":\"%s\"}\n",
	       pr.n, pr.ready, pr.failed, (double)(mono - pr.t_start) / 1e6, pl_cpu_s(),
	       pr.failures);
	fflush(stdout);
}

/* pr_report answers SIGUSR1 (see the top of the file). */
static void
pr_report(void)
{
	struct pl_control ctl;
	if (pl_read_control(pr.control, &ctl) != 0) {
		printf("{\"id\":-1,\"error\":\"cannot read %s\"}\n", pr.control);
		fflush(stdout);
		return;
	}
	for (int k = 0; k < ctl.n; k++) {
		int s = ctl.step[k];
		uint64_t expected = 0, got = 0, miss_unready = 0;
		FILE *f = fopen(ctl.acked[k], "r");
		char line[256];
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			int conv;
			long long seq;
			if (sscanf(line, "%d %lld", &conv, &seq) != 2 || conv < 0 ||
			    conv >= pr.n_convs)
				continue;
			for (int j = pr.conv_first[conv]; j < pr.conv_first[conv + 1]; j++) {
				struct pr_conn *c = &pr.c[pr.conv_socks[j]];
				expected++;
				if (pr_seen(c, seq))
					got++;
				else if (!c->was_ready)
					miss_unready++;
			}
		}
		if (f != NULL)
			fclose(f);
		const struct pr_step *st = &pr.st[s];
		printf("{\"id\":%ld,\"step\":%d,\"expected\":%" PRIu64 ",\"got\":%" PRIu64
		       ",\"missing\":%" PRIu64 ",\"missing_never_ready\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"dup\":%" PRIu64 ",\"max_us\":%" PRIu64
		       ",\"hist\":\"",
		       ctl.id, s, expected, got, expected - got, miss_unready, st->h.count, st->dup,
		       st->h.max_us);
		pl_hist_print(&st->h);
		printf("\"}\n");
	}
	printf("{\"id\":%ld,\"end\":1,\"ready\":%d,\"failed\":%d,\"closes_after_ready\":%d,"
	       "\"reconnects\":%d,\"last_close_code\":%d,\"delivered_frames\":%" PRIu64
	       ",\"subscribed_frames\":%" PRIu64 ",\"other_frames\":%" PRIu64
	       ",\"bad_frames\":%" PRIu64 ",\"cpu_s\":%.3f,\"failures\":\"%s\"}\n",
	       ctl.id, pr.ready, pr.failed, pr.closes_after_ready, pr.reconnects,
	       pr.last_close_code, pr.delivered_frames, pr.subscribed_frames, pr.other_frames,
	       pr.bad_frames, pl_cpu_s(), pr.failures);
	fflush(stdout);
	pl_free_control(&ctl);
}

static int
pr_usage(const char *m)
{
	fprintf(stderr,
	        "pipeload recv: %s\nusage: pipeload recv -a HOST:PORT -u USERS -P PART -Q PARTS "
	        "-C CONTROL [-r OPEN_RATE]\n",
	        m);
	return 2;
}

static int
pl_recv_main(int argc, char **argv)
{
	const char *addr = NULL, *users = NULL;
	int part = -1, parts = 0, opt;
	pr.open_rate = 250;
	while ((opt = getopt(argc, argv, "a:u:P:Q:C:r:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'u':
			users = optarg;
			break;
		case 'P':
			part = atoi(optarg);
			break;
		case 'Q':
			parts = atoi(optarg);
			break;
		case 'C':
			pr.control = optarg;
			break;
		case 'r':
			pr.open_rate = atof(optarg);
			break;
		default:
			return pr_usage("unknown option");
		}
	}
	if (addr == NULL || users == NULL || pr.control == NULL || parts < 1 || part < 0 ||
	    part >= parts || pr.open_rate <= 0)
		return pr_usage("missing or bad arguments");
	if (pl_parse_addr(addr, &pr.addr, pr.host, sizeof(pr.host)) != 0)
		return pr_usage("-a: numeric IPv4 HOST:PORT");
	int nu;
	struct pl_user *u = pl_load_users(users, &nu);
	for (int i = 0; i < nu; i++)
		if (u[i].conv + 1 > pr.n_convs)
			pr.n_convs = u[i].conv + 1;
	pr.c = pl_calloc((size_t)nu / (size_t)parts + 1, sizeof(*pr.c));
	uint32_t seed = (uint32_t)pl_now_us(CLOCK_REALTIME) ^ (uint32_t)getpid();
	for (int i = part; i < nu; i += parts) {
		struct pr_conn *c = &pr.c[pr.n++];
		c->fd = -1;
		c->user = i;
		c->conv = u[i].conv;
		c->conv_id = u[i].conv_id;
		c->token = u[i].token;
		c->mask = seed + (uint32_t)i * 2654435761u;
	}
	pr.conv_first = pl_calloc((size_t)pr.n_convs + 1, sizeof(int));
	pr.conv_socks = pl_calloc((size_t)pr.n, sizeof(int));
	for (int i = 0; i < pr.n; i++)
		pr.conv_first[pr.c[i].conv + 1]++;
	for (int k = 0; k < pr.n_convs; k++)
		pr.conv_first[k + 1] += pr.conv_first[k];
	int *fill = pl_calloc((size_t)pr.n_convs, sizeof(int));
	for (int i = 0; i < pr.n; i++) {
		int cv = pr.c[i].conv;
		pr.conv_socks[pr.conv_first[cv] + fill[cv]++] = i;
	}
	free(fill);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	pr.ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || pr.ep < 0)
		pl_die("signalfd/epoll");
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(pr.ep, EPOLL_CTL_ADD, sfd, &sev);
	pr.t_start = pl_now_us(CLOCK_MONOTONIC);
	struct epoll_event evs[512];
	for (;;) {
		int64_t mono = pl_now_us(CLOCK_MONOTONIC);
		while (pr.next_open < pr.n &&
		       mono >= pr.t_start + (int64_t)(pr.next_open * 1e6 / pr.open_rate))
			pr_open(&pr.c[pr.next_open++]);
		int timeout = 50;
		if (pr.next_open < pr.n) {
			int64_t due =
			    pr.t_start + (int64_t)(pr.next_open * 1e6 / pr.open_rate) - mono;
			timeout = due <= 0 ? 0 : (int)(due / 1000) + 1;
			if (timeout > 50)
				timeout = 50;
		}
		int n = epoll_wait(pr.ep, evs, 512, timeout);
		if (n < 0 && errno != EINTR)
			pl_die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct pr_conn *c = evs[i].data.ptr;
			if (c == NULL) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1) {
						pr_report();
						continue;
					}
					return 0;
				}
				continue;
			}
			if (c->state == PR_CLOSED || c->state == PR_IDLE)
				continue;
			if (c->state == PR_CONNECTING) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					pr_connected(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				pr_flush(c);
			if (c->state != PR_CLOSED &&
			    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				pr_readable(c);
		}
		pr_timers(pl_now_us(CLOCK_MONOTONIC));
	}
}

/* ---- tap (Redis) ----------------------------------------------------------------------- */

static struct {
	const char *control;
	struct pl_hist h[PL_MAX_STEPS];
	int64_t first_us[PL_MAX_STEPS], last_us[PL_MAX_STEPS]; /* arrivals, CLOCK_REALTIME */
	uint64_t other;
} pt;

/* pt_bulk parses "$<n>\r\n<bytes>\r\n" at *p; the bytes in *s, *n. 1 done, 0 more needed,
 * -1 malformed. */
static int
pt_bulk(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;
	if (q >= end)
		return 0;
	if (*q != '$')
		return -1;
	const char *nl = memchr(q, '\n', (size_t)(end - q));
	if (nl == NULL)
		return 0;
	long len = strtol(q + 1, NULL, 10);
	if (len < 0)
		return -1;
	if (end - (nl + 1) < len + 2)
		return 0;
	*s = nl + 1;
	*n = (size_t)len;
	*p = nl + 1 + len + 2;
	return 1;
}

/* pt_element consumes one top-level reply (an array of bulk strings or a simple line). */
static int
pt_element(const char **p, const char *end)
{
	const char *q = *p;
	if (q >= end)
		return 0;
	const char *nl = memchr(q, '\n', (size_t)(end - q));
	if (nl == NULL)
		return 0;
	if (*q != '*') {
		*p = nl + 1;
		return 1;
	}
	long cnt = strtol(q + 1, NULL, 10);
	const char *s[8];
	size_t n[8];
	const char *r = nl + 1;
	for (long i = 0; i < cnt; i++) {
		if (r < end && *r == ':') { /* integer (the psubscribe count) */
			const char *nl2 = memchr(r, '\n', (size_t)(end - r));
			if (nl2 == NULL)
				return 0;
			r = nl2 + 1;
			continue;
		}
		int rv = pt_bulk(&r, end, &s[i < 8 ? i : 7], &n[i < 8 ? i : 7]);
		if (rv <= 0)
			return rv;
	}
	*p = r;
	if (cnt == 4 && n[0] == 8 && memcmp(s[0], "pmessage", 8) == 0) {
		int64_t sched;
		int step;
		if (pl_content(s[3], n[3], &sched, &step) == 0) {
			int64_t now = pl_now_us(CLOCK_REALTIME);
			pl_hist_add(&pt.h[step], now - sched);
			if (pt.first_us[step] == 0)
				pt.first_us[step] = now;
			pt.last_us[step] = now;
		} else {
			pt.other++;
		}
	}
	return 1;
}

static void
pt_report(void)
{
	struct pl_control ctl;
	if (pl_read_control(pt.control, &ctl) != 0) {
		printf("{\"id\":-1,\"error\":\"cannot read %s\"}\n", pt.control);
		fflush(stdout);
		return;
	}
	for (int k = 0; k < ctl.n; k++) {
		const struct pl_hist *h = &pt.h[ctl.step[k]];
		int s = ctl.step[k];
		printf("{\"id\":%ld,\"step\":%d,\"received\":%" PRIu64 ",\"max_us\":%" PRIu64
		       ",\"span_us\":%" PRId64 ",\"hist\":\"",
		       ctl.id, s, h->count, h->max_us, pt.last_us[s] - pt.first_us[s]);
		pl_hist_print(h);
		printf("\"}\n");
	}
	printf("{\"id\":%ld,\"end\":1,\"other\":%" PRIu64 ",\"cpu_s\":%.3f}\n", ctl.id, pt.other,
	       pl_cpu_s());
	fflush(stdout);
	pl_free_control(&ctl);
}

static int
pl_tap_main(int argc, char **argv)
{
	const char *addr = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "a:C:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'C':
			pt.control = optarg;
			break;
		default:
			goto usage;
		}
	}
	struct sockaddr_in sa;
	char host[64];
	if (addr == NULL || pt.control == NULL || pl_parse_addr(addr, &sa, host, sizeof(host)) != 0)
		goto usage;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		pl_die("connect to Redis");
	static const char cmd[] = "*2\r\n$10\r\nPSUBSCRIBE\r\n$6\r\nconv:*\r\n";
	if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)sizeof(cmd) - 1)
		pl_die("write");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		pl_die("signalfd/epoll");
	struct epoll_event e1 = { .events = EPOLLIN, .data.fd = fd },
	                   e2 = { .events = EPOLLIN, .data.fd = sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e1);
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e2);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	printf("{\"phase\":\"open\"}\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1)
						pt_report();
					else
						return 0;
				}
				continue;
			}
			pl_reserve(&buf, &cap, len + 65536);
			ssize_t r = read(fd, buf + len, cap - len);
			if (r <= 0) {
				fprintf(stderr, "pipeload tap: Redis connection lost\n");
				return 1;
			}
			len += (size_t)r;
			const char *p = buf, *end = buf + len;
			int rv;
			while ((rv = pt_element(&p, end)) == 1)
				;
			if (rv < 0) {
				fprintf(stderr, "pipeload tap: unexpected reply from Redis\n");
				return 1;
			}
			len = (size_t)(end - p);
			memmove(buf, p, len);
		}
	}
usage:
	fprintf(stderr, "usage: pipeload tap -a HOST:PORT -C CONTROL\n");
	return 2;
}

/* ---- pct ------------------------------------------------------------------------------- */

static int
pl_pct_main(void)
{
	static uint64_t b[PL_NBUCK];
	uint64_t total = 0;
	int c;
	long idx = 0, cnt = 0;
	int state = 0; /* 0 index, 1 count */
	while ((c = getchar()) != EOF) {
		if (c >= '0' && c <= '9') {
			if (state == 0)
				idx = idx * 10 + (c - '0');
			else
				cnt = cnt * 10 + (c - '0');
		} else if (c == ':') {
			state = 1;
		} else {
			if (state == 1 && idx >= 0 && idx < PL_NBUCK) {
				b[idx] += (uint64_t)cnt;
				total += (uint64_t)cnt;
			}
			idx = cnt = 0;
			state = 0;
		}
	}
	if (state == 1 && idx >= 0 && idx < PL_NBUCK) {
		b[idx] += (uint64_t)cnt;
		total += (uint64_t)cnt;
	}
	double p[2] = { 0.50, 0.99 }, v[2] = { 0, 0 };
	for (int k = 0; k < 2 && total > 0; k++) {
		uint64_t want = (uint64_t)(p[k] * (double)total + 0.999999), seen = 0;
		for (int i = 0; i < PL_NBUCK; i++) {
			seen += b[i];
			if (seen >= want && b[i] > 0) {
				v[k] = pl_hist_mid(i) / 1000;
				break;
			}
		}
	}
	printf("%" PRIu64 " %.1f %.1f\n", total, v[0], v[1]);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pipeload send|recv|tap|pct ...\n");
		return 2;
	}
	const char *mode = argv[1];
	argv[1] = argv[0];
	if (strcmp(mode, "send") == 0)
		return pl_send_main(argc - 1, argv + 1);
	if (strcmp(mode, "recv") == 0)
		return pl_recv_main(argc - 1, argv + 1);
	if (strcmp(mode, "tap") == 0)
		return pl_tap_main(argc - 1, argv + 1);
	if (strcmp(mode, "pct") == 0)
		return pl_pct_main();
	fprintf(stderr, "pipeload: unknown mode %s\n", mode);
	return 2;
}
