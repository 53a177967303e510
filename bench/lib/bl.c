/* bl.c: the shared pieces of the bench load generators (bl.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sb_util_b64.h"

const char *bl_prog = "bench";

/* ---- helpers --------------------------------------------------------------------------- */

int64_t
bl_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
bl_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

void
bl_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", bl_prog, what, strerror(errno));
	exit(1);
}

void *
bl_calloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (p == NULL)
		bl_die("calloc");
	return p;
}

void
bl_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (p == NULL)
		bl_die("realloc");
	*buf = p;
	*cap = n;
}

int
bl_parse_addr(const char *s, struct sockaddr_in *sa, char *host, size_t hostlen)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || (size_t)(colon - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

void
bl_note(char *list, size_t cap, const char *why)
{
	size_t l = strlen(list);
	if (strstr(list, why) == NULL && l + strlen(why) + 3 < cap)
		snprintf(list + l, cap - l, "%s%s", l ? "; " : "", why);
}

void
bl_rng_seed(struct bl_rng *r)
{
	if (getrandom(r->s, sizeof(r->s), 0) != (ssize_t)sizeof(r->s)) {
		r->s[0] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
		r->s[1] = (uint64_t)bl_now_us(CLOCK_REALTIME);
	}
	r->s[0] |= 1;
}

uint64_t
bl_rand(struct bl_rng *r)
{
	uint64_t s1 = r->s[0];
	const uint64_t s0 = r->s[1];
	r->s[0] = s0;
	s1 ^= s1 << 23;
	r->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return r->s[1] + s0;
}

void
bl_uuid(struct bl_rng *r, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = bl_rand(r), y = bl_rand(r);
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

/* ---- latencies ------------------------------------------------------------------------- */

static int
bl_hist_index(uint64_t v)
{
	if (v < 1024)
		return (int)(v >> 3);
	int msb = 63 - __builtin_clzll(v);
	if (msb - 10 >= BL_HIST_OCTAVES)
		return BL_HIST_NBUCK - 1;
	return BL_HIST_LIN + (msb - 10) * 64 + (int)((v >> (msb - 6)) & 63);
}

static double
bl_hist_mid(int i)
{
	if (i < BL_HIST_LIN)
		return i * 8 + 4;
	int o = (i - BL_HIST_LIN) / 64, sub = (i - BL_HIST_LIN) % 64, msb = o + 10;
	double lo = (double)((uint64_t)(64 + sub) << (msb - 6));
	return lo + (double)(1ULL << (msb - 6)) / 2;
}

void
bl_hist_add(struct bl_hist *h, int64_t us)
{
	uint64_t v = us < 0 ? 0 : (uint64_t)us;
	h->b[bl_hist_index(v)]++;
	h->count++;
	if (v > h->max_us)
		h->max_us = v;
}

double
bl_hist_pct(const struct bl_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)(p * (double)h->count + 0.999999), seen = 0;
	for (int i = 0; i < BL_HIST_NBUCK; i++) {
		seen += h->b[i];
		if (seen >= want && h->b[i] > 0) {
			double mid = bl_hist_mid(i);
			/* a bucket's middle can lie above the largest value seen (when known) */
			return h->max_us > 0 && mid > (double)h->max_us ? (double)h->max_us : mid;
		}
	}
	return (double)h->max_us;
}

void
bl_hist_print(const struct bl_hist *h, FILE *f)
{
	bool first = true;
	for (int i = 0; i < BL_HIST_NBUCK; i++)
		if (h->b[i]) {
			fprintf(f, "%s%d:%llu", first ? "" : ",", i, (unsigned long long)h->b[i]);
			first = false;
		}
}

void
bl_hist_merge_text(struct bl_hist *h, FILE *f)
{
	long idx = 0;
	unsigned long long cnt = 0;
	int c, state = 0; /* 0 index, 1 count */
	do {
		c = getc(f);
		if (c >= '0' && c <= '9') {
			if (state == 0)
				idx = idx < 100000 ? idx * 10 + (c - '0') : idx;
			else
				cnt = cnt * 10 + (unsigned)(c - '0');
		} else if (c == ':') {
			state = 1;
		} else {
			if (state == 1 && idx < BL_HIST_NBUCK) {
				h->b[idx] += cnt;
				h->count += cnt;
			}
			idx = 0;
			cnt = 0;
			state = 0;
		}
	} while (c != EOF);
}

double
bl_pct_ms(const uint32_t *sorted, int64_t n, double p)
{
	if (n == 0)
		return 0;
	int64_t k = (int64_t)(p * (double)n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return sorted[k] / 1000.0;
}

static int
bl_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void
bl_sort_u32(uint32_t *v, int64_t n)
{
	qsort(v, (size_t)n, sizeof(*v), bl_cmp_u32);
}

/* ---- WebSocket client ------------------------------------------------------------------ */

static uint32_t
bl_ws_next(struct bl_ws *w)
{
	w->mask = w->mask * 1664525u + 1013904223u;
	return w->mask;
}

static void
bl_ws_fail(struct bl_ws *w, const char *why, int code)
{
	if (w->phase == BL_WS_CLOSED)
		return;
	w->ops->on_fail(w, why, code);
	bl_ws_close(w);
}

void
bl_ws_close(struct bl_ws *w)
{
	if (w->fd >= 0)
		close(w->fd); /* also leaves the epoll set */
	w->fd = -1;
	w->phase = BL_WS_CLOSED;
	free(w->in);
	free(w->msg);
	free(w->out);
	w->in = w->msg = w->out = NULL;
	w->in_len = w->in_cap = w->msg_len = w->msg_cap = w->out_len = w->out_cap = 0;
}

static void
bl_ws_want_write(struct bl_ws *w, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = w };
	epoll_ctl(w->ep, EPOLL_CTL_MOD, w->fd, &ev);
}

/* bl_ws_write sends bytes now when nothing is queued, keeping the rest for EPOLLOUT. */
static void
bl_ws_write(struct bl_ws *w, const void *data, size_t len)
{
	const char *p = data;
	if (w->out_len == 0 && w->phase != BL_WS_CONNECTING) {
		ssize_t n = send(w->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			bl_ws_fail(w, "send failed", 0);
			return;
		}
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
		if (len == 0)
			return;
		bl_ws_want_write(w, true);
	}
	bl_reserve(&w->out, &w->out_cap, w->out_len + len);
	memcpy(w->out + w->out_len, p, len);
	w->out_len += len;
}

static void
bl_ws_flush(struct bl_ws *w)
{
	while (w->out_len > 0) {
		ssize_t n = send(w->fd, w->out, w->out_len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			bl_ws_fail(w, "send failed", 0);
			return;
		}
		memmove(w->out, w->out + n, w->out_len - (size_t)n);
		w->out_len -= (size_t)n;
	}
	bl_ws_want_write(w, false);
}

void
bl_ws_send(struct bl_ws *w, int op, const char *payload, size_t len)
{
	if (w->phase == BL_WS_CLOSED)
		return;
	unsigned char hdr[14];
	size_t h = 0;
	hdr[h++] = (unsigned char)(0x80 | op);
	if (len < 126) {
		hdr[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(len >> 8);
		hdr[h++] = (unsigned char)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	uint32_t m32 = bl_ws_next(w);
	unsigned char mask[4];
	memcpy(mask, &m32, 4);
	memcpy(hdr + h, mask, 4);
	h += 4;
	char stackbuf[1024], *buf = len + h <= sizeof(stackbuf) ? stackbuf : malloc(len + h);
	if (buf == NULL)
		bl_die("malloc");
	memcpy(buf, hdr, h);
	for (size_t i = 0; i < len; i++)
		buf[h + i] = (char)(payload[i] ^ mask[i & 3]);
	bl_ws_write(w, buf, h + len);
	if (buf != stackbuf)
		free(buf);
}

void
bl_ws_send_text(struct bl_ws *w, const char *s)
{
	bl_ws_send(w, 1, s, strlen(s));
}

int
bl_ws_open(struct bl_ws *w, const struct bl_ws_ops *ops, int ep, const struct sockaddr_in *addr,
           const char *host, const char *target)
{
	w->ops = ops;
	w->ep = ep;
	w->phase = BL_WS_CONNECTING;
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->fd < 0) {
		bl_ws_fail(w, "socket() failed (open-file limit?)", 0);
		return -1;
	}
	int one = 1;
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(w->fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 &&
	    errno != EINPROGRESS) {
		bl_ws_fail(w, "connect failed", 0);
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = w };
	epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
	unsigned char key[16];
	char key64[32], req[4096];
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)(bl_ws_next(w) >> 24);
	(void)sb_b64_encode(key, sizeof(key), SB_B64_PAD, key64, sizeof(key64));
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 target, host, key64);
	if (n <= 0 || n >= (int)sizeof(req)) {
		bl_ws_fail(w, "request too long", 0);
		return -1;
	}
	bl_ws_write(w, req, (size_t)n); /* queued until the connect completes */
	return 0;
}

/* bl_ws_frame handles one whole server frame; false when w was closed. */
static bool
bl_ws_frame(struct bl_ws *w, int fin, int op, const char *p, size_t len)
{
	switch (op) {
	case 0: /* continuation */
		bl_reserve(&w->msg, &w->msg_cap, w->msg_len + len);
		memcpy(w->msg + w->msg_len, p, len);
		w->msg_len += len;
		if (fin) {
			if (w->msg_op == 1)
				w->ops->on_text(w, w->msg, w->msg_len);
			w->msg_len = 0;
		}
		break;
	case 1:
	case 2:
		if (!fin) {
			w->msg_op = op;
			w->msg_len = 0;
			return bl_ws_frame(w, 0, 0, p, len);
		}
		if (op == 1)
			w->ops->on_text(w, p, len);
		break;
	case 8: {
		int code = len >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
		char why[32];
		bl_ws_send(w, 8, p, len >= 2 ? 2 : 0);
		snprintf(why, sizeof(why), "closed %d", code);
		bl_ws_fail(w, why, code);
		return false;
	}
	case 9:
		bl_ws_send(w, 10, p, len);
		break;
	default:
		break;
	}
	return w->phase != BL_WS_CLOSED;
}

/* bl_ws_parse consumes the upgrade response, then every complete frame in w->in. */
static void
bl_ws_parse(struct bl_ws *w)
{
	size_t off = 0;
	if (w->phase == BL_WS_UPGRADING) {
		char *e = memmem(w->in, w->in_len, "\r\n\r\n", 4);
		if (e == NULL)
			return;
		if (w->in_len < 12 || memcmp(w->in + 9, "101", 3) != 0) {
			char why[32];
			snprintf(why, sizeof(why), "HTTP %.3s",
			         w->in_len >= 12 ? w->in + 9 : "???");
			bl_ws_fail(w, why, 0);
			return;
		}
		off = (size_t)(e - w->in) + 4;
		w->phase = BL_WS_OPEN;
		w->ops->on_open(w);
	}
	while (w->phase == BL_WS_OPEN) {
		const unsigned char *b = (const unsigned char *)w->in + off;
		size_t avail = w->in_len - off, h = 2;
		if (avail < 2)
			break;
		int fin = b[0] >> 7, op = b[0] & 15;
		uint64_t len = b[1] & 127;
		if (b[1] & 0x80) {
			bl_ws_fail(w, "masked server frame", 0);
			return;
		}
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
		if (len > (64u << 20)) {
			bl_ws_fail(w, "frame too large", 0);
			return;
		}
		if (avail < h + len)
			break;
		if (!bl_ws_frame(w, fin, op, (const char *)b + h, (size_t)len))
			return;
		off += h + (size_t)len;
	}
	if (w->phase == BL_WS_CLOSED)
		return;
	memmove(w->in, w->in + off, w->in_len - off);
	w->in_len -= off;
}

static void
bl_ws_readable(struct bl_ws *w)
{
	for (;;) {
		bl_reserve(&w->in, &w->in_cap, w->in_len + 16384);
		size_t space = w->in_cap - w->in_len;
		ssize_t r = recv(w->fd, w->in + w->in_len, space, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			bl_ws_fail(w, r == 0 ? "EOF" : "recv failed", 0);
			return;
		}
		w->in_len += (size_t)r;
		bl_ws_parse(w);
		if (w->phase == BL_WS_CLOSED || (size_t)r < space)
			return; /* drained: the next read would say EAGAIN */
	}
}

void
bl_ws_event(struct bl_ws *w, uint32_t events)
{
	if (w->phase == BL_WS_CLOSED)
		return;
	if (w->phase == BL_WS_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0) {
			errno = err;
			bl_ws_fail(w, "connect failed", 0);
			return;
		}
		w->phase = BL_WS_UPGRADING;
		bl_ws_flush(w);
		return;
	}
	if (events & EPOLLOUT)
		bl_ws_flush(w);
	if (w->phase != BL_WS_CLOSED && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		bl_ws_readable(w);
}

/* ---- open-loop HTTP/1.1 requests ------------------------------------------------------- */

enum bl_ol_state { BL_OL_CONNECTING, BL_OL_IDLE, BL_OL_BUSY, BL_OL_DEAD };

#define BL_OL_RBUF 16384

struct bl_ol_conn {
	int fd;
	enum bl_ol_state state;
	bool queued;
	int64_t req;
	char *wbuf;
	size_t wcap, wlen, woff;
	char rbuf[BL_OL_RBUF];
	size_t rlen;
};

static int64_t
bl_ol_sched(const struct bl_ol *o, int64_t i)
{
	return o->t0_mono + (int64_t)((double)i * 1e6 / o->rate);
}

static void
bl_ol_watch(struct bl_ol *o, int i, uint32_t events, int how)
{
	struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)i };
	epoll_ctl(o->ep, how, o->c[i].fd, &ev);
}

static void
bl_ol_open(struct bl_ol *o, int i)
{
	struct bl_ol_conn *c = &o->c[i];
	int one = 1;
	c->rlen = 0;
	c->state = BL_OL_DEAD;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&o->addr, sizeof(o->addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->state = BL_OL_CONNECTING;
	bl_ol_watch(o, i, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
}

static void
bl_ol_set_idle(struct bl_ol *o, int i)
{
	o->c[i].state = BL_OL_IDLE;
	if (!o->c[i].queued) {
		o->c[i].queued = true;
		o->idle[o->n_idle++] = i;
	}
}

static void
bl_ol_record(struct bl_ol *o, int64_t req, int64_t now)
{
	int64_t us = now - bl_ol_sched(o, req);
	uint32_t v = us < 0 ? 0 : us > 4000000000LL ? 4000000000u : (uint32_t)us;
	o->lat_us[o->n_lat++] = v;
	if (o->latency != NULL)
		o->latency(o, req, v);
}

/* bl_ol_reopen closes connection i (counting its request lost when it had one) and opens it
 * again. */
static void
bl_ol_reopen(struct bl_ol *o, int i, int64_t now, bool lost)
{
	struct bl_ol_conn *c = &o->c[i];
	if (lost && c->state == BL_OL_BUSY) {
		o->conn_errors++;
		o->done++;
		bl_ol_record(o, c->req, now);
	}
	close(c->fd);
	c->fd = -1;
	bl_ol_open(o, i);
}

static void
bl_ol_flush(struct bl_ol *o, int i, int64_t now)
{
	struct bl_ol_conn *c = &o->c[i];
	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT is watched while busy */
		if (n <= 0) {
			bl_ol_reopen(o, i, now, true);
			return;
		}
		c->woff += (size_t)n;
	}
	bl_ol_watch(o, i, EPOLLIN, EPOLL_CTL_MOD);
}

static void
bl_ol_send(struct bl_ol *o, int i, int64_t now)
{
	struct bl_ol_conn *c = &o->c[i];
	c->req = o->next++;
	c->wlen = o->request(o, c->req, i, &c->wbuf, &c->wcap);
	c->woff = 0;
	c->state = BL_OL_BUSY;
	c->rlen = 0;
	bl_ol_watch(o, i, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
	bl_ol_flush(o, i, now);
}

/* bl_ol_response: 1 with *status and the body when rbuf holds a whole response, 0 when more is
 * needed, -1 when it is malformed. */
static int
bl_ol_response(struct bl_ol_conn *c, int *status, const char **body, size_t *blen,
               bool *close_after)
{
	c->rbuf[c->rlen] = '\0';
	char *eoh = strstr(c->rbuf, "\r\n\r\n");
	if (eoh == NULL)
		return c->rlen >= BL_OL_RBUF - 1 ? -1 : 0;
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
		else if (strncasecmp(p + 2, "Transfer-Encoding:", 18) == 0)
			return -1;
	}
	if (hdr + clen >= BL_OL_RBUF)
		return -1;
	if (c->rlen < hdr + clen)
		return 0;
	*body = c->rbuf + hdr;
	*blen = clen;
	return 1;
}

static void
bl_ol_read(struct bl_ol *o, int i, int64_t now)
{
	struct bl_ol_conn *c = &o->c[i];
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, BL_OL_RBUF - 1 - c->rlen);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || c->state != BL_OL_BUSY) {
			bl_ol_reopen(o, i, now, true);
			return;
		}
		c->rlen += (size_t)n;
		int status = 0;
		const char *body = NULL;
		size_t blen = 0;
		bool close_after = false;
		int rv = bl_ol_response(c, &status, &body, &blen, &close_after);
		if (rv == 0)
			continue;
		if (rv < 0) {
			bl_ol_reopen(o, i, now, true);
			return;
		}
		o->status[status]++;
		o->done++;
		bl_ol_record(o, c->req, now);
		if (status >= 200 && status < 300) {
			o->ok++;
			o->last_ok_mono = now;
		}
		if (o->answer != NULL)
			o->answer(o, c->req, status, body, blen);
		c->rlen = 0;
		if (close_after) {
			c->state = BL_OL_IDLE; /* answered: nothing lost */
			bl_ol_reopen(o, i, now, false);
			return;
		}
		bl_ol_set_idle(o, i);
		return;
	}
}

static void
bl_ol_event(struct bl_ol *o, const struct epoll_event *ev, int64_t now)
{
	int i = (int)ev->data.u32;
	struct bl_ol_conn *c = &o->c[i];
	if (c->state == BL_OL_DEAD)
		return;
	if (c->state == BL_OL_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		if ((ev->events & (EPOLLERR | EPOLLHUP)) ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0) {
			close(c->fd);
			c->fd = -1;
			c->state = BL_OL_DEAD;
			return;
		}
		bl_ol_watch(o, i, EPOLLIN, EPOLL_CTL_MOD);
		bl_ol_set_idle(o, i);
		return;
	}
	if (c->state == BL_OL_BUSY && (ev->events & EPOLLOUT))
		bl_ol_flush(o, i, now);
	if (c->fd >= 0 && c->state != BL_OL_CONNECTING &&
	    (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		bl_ol_read(o, i, now);
}

int
bl_ol_run(struct bl_ol *o)
{
	o->total = (int64_t)(o->rate * o->seconds);
	o->lat_us = bl_calloc((size_t)o->total + 1, sizeof(*o->lat_us));
	o->c = bl_calloc((size_t)o->nconns, sizeof(*o->c));
	o->idle = bl_calloc((size_t)o->nconns, sizeof(*o->idle));
	o->ep = epoll_create1(EPOLL_CLOEXEC);
	if (o->ep < 0)
		bl_die("epoll_create1");
	for (int i = 0; i < o->nconns; i++)
		bl_ol_open(o, i);
	struct epoll_event evs[256];
	int64_t start = bl_now_us(CLOCK_MONOTONIC);
	while (bl_now_us(CLOCK_MONOTONIC) - start < 5000000 && o->n_idle < o->nconns) {
		int n = epoll_wait(o->ep, evs, 256, 50);
		for (int k = 0; k < n; k++)
			bl_ol_event(o, &evs[k], bl_now_us(CLOCK_MONOTONIC));
	}
	if (o->n_idle == 0)
		return -1;
	/* the schedule: both clocks read together, so times sent in content are CLOCK_REALTIME */
	o->t0_mono = bl_now_us(CLOCK_MONOTONIC);
	o->t0_real = bl_now_us(CLOCK_REALTIME);
	int64_t deadline = o->t0_mono + (int64_t)((o->seconds + o->drain) * 1e6);
	for (;;) {
		int64_t now = bl_now_us(CLOCK_MONOTONIC);
		while (o->n_idle > 0 && o->next < o->total && bl_ol_sched(o, o->next) <= now) {
			int i = o->idle[--o->n_idle];
			o->c[i].queued = false;
			if (o->c[i].state == BL_OL_IDLE)
				bl_ol_send(o, i, now);
		}
		if (o->done == o->total || now >= deadline)
			break;
		int64_t due = o->next < o->total ? bl_ol_sched(o, o->next) : deadline;
		int64_t wait = due > now ? due - now : 0;
		if (o->n_idle == 0 || wait > 100000)
			wait = 100000; /* nothing can go out before a connection frees up */
		/* A nanosecond timeout: a millisecond one rounds the sub-millisecond gaps between
		 * requests at high rates to 0, and the generator then spins on a core that the
		 * services under test need. */
		struct timespec ts = { (time_t)(wait / 1000000), (long)(wait % 1000000) * 1000 };
		int n = epoll_pwait2(o->ep, evs, 256, &ts, NULL);
		now = bl_now_us(CLOCK_MONOTONIC);
		for (int k = 0; k < n; k++)
			bl_ol_event(o, &evs[k], now);
	}
	/* requests never answered count at their age at the deadline (a lower bound) */
	int64_t stop = bl_now_us(CLOCK_MONOTONIC);
	for (int i = 0; i < o->nconns; i++)
		if (o->c[i].state == BL_OL_BUSY)
			bl_ol_record(o, o->c[i].req, stop);
	for (int64_t q = o->next; q < o->total; q++)
		bl_ol_record(o, q, stop);
	bl_sort_u32(o->lat_us, o->n_lat);
	return 0;
}

void
bl_ol_errors(const struct bl_ol *o, char *buf, size_t cap)
{
	size_t el = 0;
	int64_t late = o->total - o->done;
	buf[0] = '\0';
	for (int s = 0; s < 600; s++)
		if (o->status[s] && (s < 200 || s >= 300) && el + 32 < cap)
			el += (size_t)snprintf(buf + el, cap - el, "%s%d:%lld", el ? "," : "", s,
			                       (long long)o->status[s]);
	if (o->conn_errors && el + 32 < cap)
		el += (size_t)snprintf(buf + el, cap - el, "%sconn:%lld", el ? "," : "",
		                       (long long)o->conn_errors);
	if (late > 0 && el + 32 < cap)
		el += (size_t)snprintf(buf + el, cap - el, "%slate:%lld", el ? "," : "",
		                       (long long)late);
	if (el == 0)
		snprintf(buf, cap, "none");
}

double
bl_ol_span_s(const struct bl_ol *o)
{
	double span = (double)(o->last_ok_mono - o->t0_mono) / 1e6;
	return span < o->seconds ? o->seconds : span;
}

void
bl_ol_free(struct bl_ol *o)
{
	for (int i = 0; o->c != NULL && i < o->nconns; i++) {
		if (o->c[i].fd >= 0 && o->c[i].state != BL_OL_DEAD)
			close(o->c[i].fd);
		free(o->c[i].wbuf);
	}
	if (o->ep >= 0)
		close(o->ep);
	free(o->c);
	free(o->idle);
	free(o->lat_us);
	o->c = NULL;
	o->idle = NULL;
	o->lat_us = NULL;
}
