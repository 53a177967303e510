/* wsload.c: WebSocket load generator and latency recorder of bench/realtime_fanout_bench.sh.
 * One process, one epoll loop, non-blocking sockets and a minimal RFC 6455 client (upgrade
 * request, masked client frames, unmasked server frames, ping -> pong, close echoed, fragments
 * joined; the server's Sec-WebSocket-Accept is not checked). It speaks either protocol:
 *   switchboard  GET /ws?token=T, then waits for the "ready" frame (sb-realtime subscribes the
 *                connection to its user's conversations on connect);
 *   socketio     Engine.IO v4 over WebSocket: GET /socket.io/?EIO=4&transport=websocket, the
 *                server's open packet "0{...}", "40" to connect the default namespace, the
 *                server's "40{...}", then 421["join","<conversation id>"] acknowledged by
 *                "431[...]" (ready); the server's "2" pings are answered "3";
 *   centrifugo   Centrifugo's JSON client protocol: GET /connection/websocket, then
 *                {"id":1,"connect":{"token":T}}, on its reply {"id":2,"subscribe":{"channel":C}}
 *                (C is the file's first column verbatim, e.g. "conv:<id>"), ready on that reply;
 *                a frame holds one or more replies separated by "\n"; the server's empty ping
 *                "{}" is answered "{}"; publications arrive as {"push":{"channel":..,"pub":..}}.
 * It opens its connections at a steady pace (a connection closed before it is ready is opened
 * again a second later, up to 5 attempts, as a client would), prints one JSON line when every
 * connection is ready or failed ({"phase":"open",...}), then records, for every message frame
 * received, the latency from the publish time the publisher embedded in the content
 * ("content":"t=<unix microseconds>") to the receive time (CLOCK_REALTIME, same machine) in a
 * histogram. SIGUSR1 prints the histogram since the previous report as one JSON line
 * ({"phase":"report",...}: count, p50, p90, p99, max in ms, the buckets as "index:count,..." for
 * merging reports of several processes, this process's CPU seconds from getrusage) and resets it;
 * SIGTERM or SIGINT prints {"phase":"done",...} and exits.
 *
 * Usage: wsload -m switchboard|socketio|centrifugo -a HOST:PORT -f FILE [-s FIRST] -n CONNS
 *               -r OPEN_RATE [-t READY_TIMEOUT_S]
 * FILE has one line per user: "<conversation> <access token>"; the process uses lines
 * FIRST..FIRST+CONNS-1 (0-based). Latencies are microseconds internally. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_util_b64.h"

enum wl_proto { WL_SWITCHBOARD, WL_SOCKETIO, WL_CENTRIFUGO };

/* A connection's state machine. */
enum wl_state {
	WL_IDLE,       /* not opened yet */
	WL_CONNECTING, /* TCP connect in progress */
	WL_UPGRADING,  /* upgrade request sent, waiting for 101 */
	WL_JOINING,    /* WebSocket open, waiting for ready or the join/subscribe ack */
	WL_READY,      /* receiving messages */
	WL_CLOSED,     /* closed by either side, or failed */
};

struct wl_conn {
	int fd;
	enum wl_state state;
	bool failed_before_ready;
	uint32_t mask_seed;
	const char *conv, *token; /* into the file's text */
	char *in;                 /* received bytes not yet parsed */
	size_t in_len, in_cap;
	char *msg; /* a fragmented message being joined */
	size_t msg_len, msg_cap;
	int msg_op;
	char *out; /* bytes the socket did not take yet */
	size_t out_len, out_cap;
	int64_t opened_us;
	int64_t retry_at_us; /* > 0: failed before ready, to be opened again then */
	int attempts;
};

/* Latency histogram: 64 linear sub-buckets per power of two (about 1.5% resolution). */
#define WL_SUB    64
#define WL_HALF   32
#define WL_SHIFTS 40
#define WL_NBUCK  (WL_SUB + WL_SHIFTS * WL_HALF)

#define WL_ATTEMPTS 5 /* connection attempts before a connection counts as failed */

struct wl_hist {
	uint64_t b[WL_NBUCK];
	uint64_t count, max_us, bad, other;
};

/* The process state. */
static struct {
	enum wl_proto proto;
	struct sockaddr_in addr;
	char host[128];
	struct wl_conn *conns;
	int n, next_open;
	double open_rate;
	int ready_timeout_s;
	int epfd;
	int ready, failed, closed_after_ready, last_close_code, reports, retrying, retries;
	int64_t t_start_us, t_open_done_us;
	bool open_reported;
	struct wl_hist h;
	char failures[512];
} wl;

static int64_t
wl_now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
wl_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int
wl_hist_index(uint64_t v)
{
	if (v < WL_SUB)
		return (int)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - 5;
	if (shift > WL_SHIFTS)
		return WL_NBUCK - 1;
	return WL_SUB + (shift - 1) * WL_HALF + (int)((v >> shift) - WL_HALF);
}

/* wl_hist_value is the middle of bucket i, in microseconds. */
static double
wl_hist_value(int i)
{
	if (i < WL_SUB)
		return i;
	int shift = (i - WL_SUB) / WL_HALF + 1;
	uint64_t lo = (uint64_t)((i - WL_SUB) % WL_HALF + WL_HALF) << shift;
	return (double)lo + (double)(1ULL << shift) / 2;
}

static void
wl_hist_add(struct wl_hist *h, int64_t us)
{
	uint64_t v = us < 0 ? 0 : (uint64_t)us;
	h->b[wl_hist_index(v)]++;
	h->count++;
	if (v > h->max_us)
		h->max_us = v;
}

static double
wl_hist_pct(const struct wl_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)(p * (double)h->count + 0.999999), seen = 0;
	for (int i = 0; i < WL_NBUCK; i++) {
		seen += h->b[i];
		if (seen >= want && h->b[i] > 0)
			return wl_hist_value(i);
	}
	return (double)h->max_us;
}

static void
wl_fatal(const char *what)
{
	fprintf(stderr, "wsload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
wl_grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 1024;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (p == NULL)
		wl_fatal("realloc");
	*buf = p;
	*cap = n;
}

static void
wl_note_failure(const char *why)
{
	size_t l = strlen(wl.failures);
	if (strstr(wl.failures, why) == NULL && l + strlen(why) + 3 < sizeof(wl.failures))
		snprintf(wl.failures + l, sizeof(wl.failures) - l, "%s%s", l ? "; " : "", why);
}

static void
wl_close(struct wl_conn *c, const char *why)
{
	if (c->state == WL_CLOSED)
		return;
	if (c->state == WL_READY) {
		wl.closed_after_ready++;
		wl.ready--;
	} else if (c->attempts < WL_ATTEMPTS) {
		/* as a client would: try again a second later (1011: messages was unavailable) */
		c->retry_at_us = wl_now_us(CLOCK_MONOTONIC) + 1000000;
		wl.retrying++;
		wl.retries++;
		wl_note_failure(why);
	} else {
		wl.failed++;
		c->failed_before_ready = true;
		wl_note_failure(why);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = WL_CLOSED;
	free(c->in);
	free(c->msg);
	free(c->out);
	c->in = c->msg = c->out = NULL;
	c->in_len = c->in_cap = c->msg_len = c->msg_cap = c->out_len = c->out_cap = 0;
}

static void
wl_want_write(struct wl_conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(wl.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* wl_send writes bytes now, keeping what the socket does not take for EPOLLOUT. */
static void
wl_send(struct wl_conn *c, const void *data, size_t len)
{
	const char *p = data;
	if (c->out_len == 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			wl_close(c, "send failed");
			return;
		}
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		}
		if (len == 0)
			return;
		wl_want_write(c, true);
	}
	wl_grow(&c->out, &c->out_cap, c->out_len + len);
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
}

static void
wl_flush(struct wl_conn *c)
{
	while (c->out_len > 0) {
		ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			wl_close(c, "send failed");
			return;
		}
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
	}
	wl_want_write(c, false);
}

/* wl_send_frame sends one masked client frame of opcode op. */
static void
wl_send_frame(struct wl_conn *c, int op, const char *payload, size_t len)
{
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
	c->mask_seed = c->mask_seed * 1103515245u + 12345u;
	unsigned char mask[4];
	memcpy(mask, &c->mask_seed, 4);
	memcpy(hdr + h, mask, 4);
	h += 4;
	char stackbuf[512], *buf = len + h <= sizeof(stackbuf) ? stackbuf : malloc(len + h);
	if (buf == NULL)
		wl_fatal("malloc");
	memcpy(buf, hdr, h);
	for (size_t i = 0; i < len; i++)
		buf[h + i] = (char)(payload[i] ^ mask[i & 3]);
	wl_send(c, buf, h + len);
	if (buf != stackbuf)
		free(buf);
}

static void
wl_send_text(struct wl_conn *c, const char *s)
{
	wl_send_frame(c, 1, s, strlen(s));
}

static void
wl_set_ready(struct wl_conn *c)
{
	c->state = WL_READY;
	wl.ready++;
}

/* wl_latency records the message's latency when it carries "content":"t=<usec>. */
static void
wl_latency(const char *p, size_t len, int64_t now_us)
{
	static const char key[] = "\"content\":\"t=";
	const char *t = memmem(p, len, key, sizeof(key) - 1);
	if (t == NULL) {
		wl.h.other++;
		return;
	}
	t += sizeof(key) - 1;
	const char *end = p + len;
	int64_t v = 0;
	int digits = 0;
	while (t < end && *t >= '0' && *t <= '9' && digits < 19) {
		v = v * 10 + (*t++ - '0');
		digits++;
	}
	if (digits < 10) {
		wl.h.bad++;
		return;
	}
	wl_hist_add(&wl.h, now_us - v);
}

/* wl_cf_reply handles one Centrifugo reply (one line of a frame). */
static void
wl_cf_reply(struct wl_conn *c, const char *p, size_t len, int64_t now)
{
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	if (len == 2 && p[0] == '{' && p[1] == '}') { /* the server's ping */
		wl_send_text(c, "{}");
		return;
	}
	if (memmem(p, len, "\"push\":", 7) != NULL) {
		if (c->state == WL_READY && memmem(p, len, "\"pub\":", 6) != NULL)
			wl_latency(p, len, now);
		else if (memmem(p, len, "\"disconnect\":", 13) != NULL)
			wl_close(c, "centrifugo disconnect push");
		else
			wl.h.other++;
		return;
	}
	if (c->state != WL_JOINING) {
		wl.h.other++;
		return;
	}
	if (memmem(p, len, "\"error\":", 8) != NULL) {
		char why[96];
		const char *code = memmem(p, len, "\"code\":", 7);
		int n = code != NULL ? atoi(code + 7) : 0;
		snprintf(why, sizeof(why), "centrifugo %s error %d",
		         memmem(p, len, "\"id\":1,", 7) != NULL ? "connect" : "subscribe", n);
		wl_close(c, why);
	} else if (memmem(p, len, "\"id\":1,", 7) != NULL &&
	           memmem(p, len, "\"connect\":", 10) != NULL) {
		char sub[512];
		int n = snprintf(sub, sizeof(sub), "{\"id\":2,\"subscribe\":{\"channel\":\"%s\"}}",
		                 c->conv);
		if (n >= (int)sizeof(sub))
			wl_close(c, "channel name too long");
		else
			wl_send_text(c, sub);
	} else if (memmem(p, len, "\"id\":2,", 7) != NULL &&
	           memmem(p, len, "\"subscribe\":", 12) != NULL) {
		wl_set_ready(c);
	} else {
		wl.h.other++;
	}
}

static void
wl_on_text(struct wl_conn *c, const char *p, size_t len)
{
	int64_t now = wl_now_us(CLOCK_REALTIME);
	if (wl.proto == WL_CENTRIFUGO) {
		/* one or more replies, each on its own line */
		while (len > 0 && c->state != WL_CLOSED) {
			const char *nl = memchr(p, '\n', len);
			size_t l = nl != NULL ? (size_t)(nl - p) : len;
			if (l > 0)
				wl_cf_reply(c, p, l, now);
			if (nl == NULL)
				break;
			len -= l + 1;
			p = nl + 1;
		}
		return;
	}
	if (wl.proto == WL_SWITCHBOARD) {
		if (c->state == WL_JOINING) {
			if (memmem(p, len, "\"type\":\"ready\"", 14) != NULL)
				wl_set_ready(c);
			return;
		}
		if (memmem(p, len, "\"type\":\"message.created\"", 24) != NULL)
			wl_latency(p, len, now);
		else
			wl.h.other++;
		return;
	}
	/* Engine.IO packet types: 0 open, 1 close, 2 ping, 3 pong, 4 message (+ socket.io type) */
	if (len == 0)
		return;
	switch (p[0]) {
	case '0':
		wl_send_text(c, "40");
		return;
	case '1':
		wl_close(c, "engine.io close");
		return;
	case '2':
		wl_send_text(c, "3");
		return;
	case '4':
		break;
	default:
		wl.h.other++;
		return;
	}
	if (len >= 2 && p[1] == '0' && c->state == WL_JOINING) { /* namespace connected */
		char join[256];
		snprintf(join, sizeof(join), "421[\"join\",\"%s\"]", c->conv);
		wl_send_text(c, join);
	} else if (len >= 3 && p[1] == '3' && p[2] == '1' && c->state == WL_JOINING) {
		wl_set_ready(c); /* ack of the join (id 1) */
	} else if (len >= 2 && p[1] == '2' && c->state == WL_READY) {
		wl_latency(p, len, now);
	} else if (len >= 2 && p[1] == '4') {
		wl_close(c, "socket.io connect_error");
	} else {
		wl.h.other++;
	}
}

/* wl_on_frame handles one complete server frame; returns false when c was closed. */
static bool
wl_on_frame(struct wl_conn *c, int fin, int op, const char *p, size_t len)
{
	switch (op) {
	case 0: /* continuation */
		wl_grow(&c->msg, &c->msg_cap, c->msg_len + len);
		memcpy(c->msg + c->msg_len, p, len);
		c->msg_len += len;
		if (fin) {
			if (c->msg_op == 1)
				wl_on_text(c, c->msg, c->msg_len);
			c->msg_len = 0;
		}
		break;
	case 1:
	case 2:
		if (!fin) {
			c->msg_op = op;
			c->msg_len = 0;
			return wl_on_frame(c, 0, 0, p, len);
		}
		if (op == 1)
			wl_on_text(c, p, len);
		break;
	case 8: {
		int code = len >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
		wl.last_close_code = code;
		if (c->state == WL_READY)
			wl_send_frame(c, 8, p, len >= 2 ? 2 : 0);
		char why[64];
		snprintf(why, sizeof(why), "closed %d", code);
		wl_close(c, why);
		return false;
	}
	case 9:
		wl_send_frame(c, 10, p, len);
		break;
	default:
		break;
	}
	return c->state != WL_CLOSED;
}

/* wl_parse consumes the upgrade response, then every complete frame in c->in. */
static void
wl_parse(struct wl_conn *c)
{
	size_t off = 0;
	if (c->state == WL_UPGRADING) {
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (end == NULL)
			return;
		if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0) {
			char why[48];
			snprintf(why, sizeof(why), "HTTP %.3s",
			         c->in_len >= 12 ? c->in + 9 : "???");
			wl_close(c, why);
			return;
		}
		off = (size_t)(end - c->in) + 4;
		c->state = WL_JOINING;
		/* Centrifugo: the client speaks first, a connect command with the token */
		if (wl.proto == WL_CENTRIFUGO) {
			size_t tl = strlen(c->token);
			char *cmd = malloc(tl + 64);
			if (cmd == NULL)
				wl_fatal("malloc");
			int n = snprintf(cmd, tl + 64, "{\"id\":1,\"connect\":{\"token\":\"%s\"}}",
			                 c->token);
			wl_send_frame(c, 1, cmd, (size_t)n);
			free(cmd);
			if (c->state == WL_CLOSED)
				return;
		}
	}
	while (c->state != WL_CLOSED) {
		const unsigned char *b = (const unsigned char *)c->in + off;
		size_t avail = c->in_len - off, h = 2;
		if (avail < 2)
			break;
		int fin = b[0] >> 7, op = b[0] & 0x0f;
		uint64_t len = b[1] & 0x7f;
		if (b[1] & 0x80) {
			wl_close(c, "masked server frame");
			return;
		}
		if (len == 126) {
			if (avail < 4)
				break;
			len = ((uint64_t)b[2] << 8) | b[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | b[2 + i];
			h = 10;
		}
		if (len > (64u << 20)) {
			wl_close(c, "frame too large");
			return;
		}
		if (avail < h + len)
			break;
		if (!wl_on_frame(c, fin, op, (const char *)b + h, (size_t)len))
			return;
		off += h + (size_t)len;
	}
	if (c->state == WL_CLOSED)
		return;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void
wl_on_readable(struct wl_conn *c)
{
	for (;;) {
		wl_grow(&c->in, &c->in_cap, c->in_len + 16384);
		size_t space = c->in_cap - c->in_len;
		ssize_t r = recv(c->fd, c->in + c->in_len, space, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			wl_close(c, r == 0 ? "EOF" : "recv failed");
			return;
		}
		c->in_len += (size_t)r;
		wl_parse(c);
		if (c->state == WL_CLOSED || (size_t)r < space)
			return; /* drained: the next read would say EAGAIN */
	}
}

static void
wl_on_connected(struct wl_conn *c)
{
	int err = 0;
	socklen_t l = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err != 0) {
		errno = err;
		wl_close(c, "connect failed");
		return;
	}
	unsigned char key[16];
	char key64[32], req[4096];
	for (int i = 0; i < 16; i++) {
		c->mask_seed = c->mask_seed * 1103515245u + 12345u;
		key[i] = (unsigned char)(c->mask_seed >> 16);
	}
	(void)sb_b64_encode(key, sizeof(key), SB_B64_PAD, key64, sizeof(key64));
	int n;
	if (wl.proto == WL_SWITCHBOARD)
		n = snprintf(req, sizeof(req), "GET /ws?token=%s HTTP/1.1\r\n", c->token);
	else if (wl.proto == WL_CENTRIFUGO)
		n = snprintf(req, sizeof(req), "GET /connection/websocket HTTP/1.1\r\n");
	else
		n = snprintf(req, sizeof(req),
		             "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n");
	n += snprintf(req + n, sizeof(req) - (size_t)n,
	              "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
	              wl.host, key64);
	if (n >= (int)sizeof(req)) {
		wl_close(c, "request too long");
		return;
	}
	c->state = WL_UPGRADING;
	wl_want_write(c, false);
	wl_send(c, req, (size_t)n);
}

static void
wl_open(struct wl_conn *c)
{
	c->attempts++;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = WL_CONNECTING; /* so wl_close counts it as failed */
		wl_close(c, "socket() failed (open-file limit?)");
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = WL_CONNECTING;
	c->opened_us = wl_now_us(CLOCK_MONOTONIC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (connect(c->fd, (struct sockaddr *)&wl.addr, sizeof(wl.addr)) < 0 &&
	    errno != EINPROGRESS) {
		wl_close(c, "connect failed");
		return;
	}
	epoll_ctl(wl.epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
wl_report(const char *phase)
{
	/* the histogram itself, sparse ("index:count,..."), so that reports merge exactly */
	printf("{\"hist\":\"");
	for (int i = 0, first = 1; i < WL_NBUCK; i++)
		if (wl.h.b[i] > 0) {
			printf("%s%d:%llu", first ? "" : ",", i, (unsigned long long)wl.h.b[i]);
			first = 0;
		}
	printf("\",");
	printf("\"phase\":\"%s\",\"report\":%d,\"count\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
	       "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"other\":%llu,\"bad\":%llu,\"ready\":%d,"
	       "\"closed_after_ready\":%d,\"last_close_code\":%d,\"cpu_s\":%.3f}\n",
	       phase, wl.reports++, (unsigned long long)wl.h.count, wl_hist_pct(&wl.h, 0.50) / 1000,
	       wl_hist_pct(&wl.h, 0.90) / 1000, wl_hist_pct(&wl.h, 0.99) / 1000,
	       (double)wl.h.max_us / 1000, (unsigned long long)wl.h.other,
	       (unsigned long long)wl.h.bad, wl.ready, wl.closed_after_ready, wl.last_close_code,
	       wl_cpu_s());
	fflush(stdout);
	memset(&wl.h, 0, sizeof(wl.h));
}

static void
wl_check_open_done(int64_t mono)
{
	static int64_t last;
	if (wl.open_reported || mono - last < 100000)
		return;
	last = mono;
	for (int i = 0; wl.retrying > 0 && i < wl.next_open; i++) {
		struct wl_conn *c = &wl.conns[i];
		if (c->state == WL_CLOSED && c->retry_at_us > 0 && mono >= c->retry_at_us) {
			c->retry_at_us = 0;
			c->state = WL_IDLE;
			wl.retrying--;
			wl_open(c);
		}
	}
	if (wl.next_open < wl.n || wl.retrying > 0)
		return;
	bool pending = false;
	for (int i = 0; i < wl.n; i++) {
		struct wl_conn *c = &wl.conns[i];
		if (c->state == WL_READY || c->state == WL_CLOSED)
			continue;
		if (mono - c->opened_us > (int64_t)wl.ready_timeout_s * 1000000)
			wl_close(c, "no ready within the timeout");
		else
			pending = true;
	}
	if (pending)
		return;
	wl.open_reported = true;
	wl.t_open_done_us = mono;
	printf("{\"phase\":\"open\",\"requested\":%d,\"ready\":%d,\"failed\":%d,\"retries\":%d,"
	       "\"open_s\":%.2f,\"cpu_s\":%.3f,\"failures\":\"%s\"}\n",
	       wl.n, wl.ready, wl.failed, wl.retries, (double)(mono - wl.t_start_us) / 1e6,
	       wl_cpu_s(), wl.failures);
	fflush(stdout);
}

/* wl_load reads FILE and points lines first..first+n-1 at the connections. */
static void
wl_load(const char *path, int first)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		wl_fatal(path);
	char *line = NULL;
	size_t cap = 0;
	int i = 0, got = 0;
	ssize_t len;
	while (got < wl.n && (len = getline(&line, &cap, f)) > 0) {
		if (i++ < first)
			continue;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL) {
			fprintf(stderr, "wsload: %s line %d: want \"<conversation> <token>\"\n",
			        path, i);
			exit(2);
		}
		*sp = '\0';
		char *conv = strdup(line), *tok = strdup(sp + 1);
		if (conv == NULL || tok == NULL)
			wl_fatal("strdup");
		wl.conns[got].conv = conv;
		wl.conns[got].token = tok;
		got++;
	}
	free(line);
	fclose(f);
	if (got < wl.n) {
		fprintf(stderr, "wsload: %s has %d usable lines from %d, %d wanted\n", path, got,
		        first, wl.n);
		exit(2);
	}
}

static void
wl_usage(const char *msg)
{
	fprintf(stderr,
	        "wsload: %s\nusage: wsload -m switchboard|socketio|centrifugo -a HOST:PORT -f FILE "
	        "[-s FIRST] -n CONNS -r OPEN_RATE [-t READY_TIMEOUT_S]\n",
	        msg);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *mode = NULL, *addr = NULL, *file = NULL;
	int first = 0, opt;
	wl.ready_timeout_s = 30;
	while ((opt = getopt(argc, argv, "m:a:f:s:n:r:t:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 's':
			first = atoi(optarg);
			break;
		case 'n':
			wl.n = atoi(optarg);
			break;
		case 'r':
			wl.open_rate = atof(optarg);
			break;
		case 't':
			wl.ready_timeout_s = atoi(optarg);
			break;
		default:
			wl_usage("unknown option");
		}
	}
	if (mode == NULL || addr == NULL || file == NULL || wl.n <= 0 || wl.open_rate <= 0 ||
	    first < 0 || wl.ready_timeout_s <= 0)
		wl_usage("missing or bad arguments");
	if (strcmp(mode, "switchboard") == 0)
		wl.proto = WL_SWITCHBOARD;
	else if (strcmp(mode, "socketio") == 0)
		wl.proto = WL_SOCKETIO;
	else if (strcmp(mode, "centrifugo") == 0)
		wl.proto = WL_CENTRIFUGO;
	else
		wl_usage("-m is switchboard, socketio or centrifugo");
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof(wl.host))
		wl_usage("-a HOST:PORT");
	snprintf(wl.host, sizeof(wl.host), "%s", addr);
	char ip[64];
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - addr), addr);
	wl.addr.sin_family = AF_INET;
	wl.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &wl.addr.sin_addr) != 1)
		wl_usage("-a: HOST is an IPv4 address");

	wl.conns = calloc((size_t)wl.n, sizeof(*wl.conns));
	if (wl.conns == NULL)
		wl_fatal("calloc");
	wl_load(file, first);
	uint32_t seed = (uint32_t)wl_now_us(CLOCK_REALTIME) ^ (uint32_t)getpid();
	for (int i = 0; i < wl.n; i++) {
		wl.conns[i].fd = -1;
		wl.conns[i].mask_seed = seed + (uint32_t)i * 2654435761u;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	wl.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || wl.epfd < 0)
		wl_fatal("signalfd/epoll");
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(wl.epfd, EPOLL_CTL_ADD, sfd, &sev);

	wl.t_start_us = wl_now_us(CLOCK_MONOTONIC);
	struct epoll_event evs[256];
	for (;;) {
		int64_t mono = wl_now_us(CLOCK_MONOTONIC);
		/* open every connection whose time has come (evenly paced) */
		while (wl.next_open < wl.n &&
		       mono >= wl.t_start_us + (int64_t)(wl.next_open * 1e6 / wl.open_rate))
			wl_open(&wl.conns[wl.next_open++]);
		int timeout = 100;
		if (wl.next_open < wl.n) {
			int64_t due =
			    wl.t_start_us + (int64_t)(wl.next_open * 1e6 / wl.open_rate) - mono;
			timeout = due <= 0 ? 0 : (int)(due / 1000) + 1;
			if (timeout > 100)
				timeout = 100;
		}
		int n = epoll_wait(wl.epfd, evs, 256, timeout);
		if (n < 0 && errno != EINTR)
			wl_fatal("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct wl_conn *c = evs[i].data.ptr;
			if (c == NULL) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1) {
						wl_report("report");
						continue;
					}
					wl_report("done");
					return 0;
				}
				continue;
			}
			if (c->state == WL_CLOSED)
				continue;
			if (c->state == WL_CONNECTING) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					wl_on_connected(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				wl_flush(c);
			if (c->state != WL_CLOSED &&
			    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				wl_on_readable(c);
		}
		wl_check_open_done(wl_now_us(CLOCK_MONOTONIC));
	}
}
