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
 * FIRST..FIRST+CONNS-1 (0-based). Latencies are microseconds internally; the WebSocket client,
 * the histogram and the helpers are bench/lib (bl.h), shared with pipeload. */
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

#include "bl.h"

enum wl_proto { WL_SWITCHBOARD, WL_SOCKETIO, WL_CENTRIFUGO };

/* A connection's state machine (its socket's own phases are in ws). */
enum wl_state {
	WL_IDLE,       /* not opened yet */
	WL_CONNECTING, /* TCP connect and upgrade in progress */
	WL_JOINING,    /* WebSocket open, waiting for ready or the join/subscribe ack */
	WL_READY,      /* receiving messages */
	WL_CLOSED,     /* closed by either side, or failed */
};

struct wl_conn {
	struct bl_ws ws; /* first: epoll's data.ptr points at it */
	enum wl_state state;
	bool failed_before_ready;
	const char *conv, *token; /* into the file's text */
	int64_t opened_us;
	int64_t retry_at_us; /* > 0: failed before ready, to be opened again then */
	int attempts;
};

#define WL_ATTEMPTS 5 /* connection attempts before a connection counts as failed */

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
	struct bl_hist h;
	uint64_t bad, other; /* message frames without a publish time; other frames */
	char failures[512];
} wl;

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
		c->retry_at_us = bl_now_us(CLOCK_MONOTONIC) + 1000000;
		wl.retrying++;
		wl.retries++;
		bl_note(wl.failures, sizeof(wl.failures), why);
	} else {
		wl.failed++;
		c->failed_before_ready = true;
		bl_note(wl.failures, sizeof(wl.failures), why);
	}
	c->state = WL_CLOSED;
	bl_ws_close(&c->ws);
}

static void
wl_send_text(struct wl_conn *c, const char *s)
{
	bl_ws_send_text(&c->ws, s);
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
		wl.other++;
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
		wl.bad++;
		return;
	}
	bl_hist_add(&wl.h, now_us - v);
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
			wl.other++;
		return;
	}
	if (c->state != WL_JOINING) {
		wl.other++;
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
		wl.other++;
	}
}

static void
wl_on_text(struct wl_conn *c, const char *p, size_t len)
{
	int64_t now = bl_now_us(CLOCK_REALTIME);
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
			wl.other++;
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
		wl.other++;
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
		wl.other++;
	}
}

static void
wl_on_open(struct bl_ws *w)
{
	struct wl_conn *c = (struct wl_conn *)w;
	c->state = WL_JOINING;
	/* Centrifugo: the client speaks first, a connect command with the token */
	if (wl.proto == WL_CENTRIFUGO) {
		size_t tl = strlen(c->token);
		char *cmd = malloc(tl + 64);
		if (cmd == NULL)
			bl_die("malloc");
		int n =
		    snprintf(cmd, tl + 64, "{\"id\":1,\"connect\":{\"token\":\"%s\"}}", c->token);
		bl_ws_send(&c->ws, 1, cmd, (size_t)n);
		free(cmd);
	}
}

static void
wl_on_text_cb(struct bl_ws *w, const char *p, size_t len)
{
	wl_on_text((struct wl_conn *)w, p, len);
}

static void
wl_on_fail(struct bl_ws *w, const char *why, int close_code)
{
	if (close_code != 0)
		wl.last_close_code = close_code;
	wl_close((struct wl_conn *)w, why);
}

static const struct bl_ws_ops wl_ws_ops = { wl_on_open, wl_on_text_cb, wl_on_fail };

static void
wl_open(struct wl_conn *c)
{
	char target[4096];
	c->attempts++;
	c->state = WL_CONNECTING; /* so that wl_close counts a failure */
	c->opened_us = bl_now_us(CLOCK_MONOTONIC);
	if (wl.proto == WL_SWITCHBOARD)
		snprintf(target, sizeof(target), "/ws?token=%s", c->token);
	else if (wl.proto == WL_CENTRIFUGO)
		snprintf(target, sizeof(target), "/connection/websocket");
	else
		snprintf(target, sizeof(target), "/socket.io/?EIO=4&transport=websocket");
	bl_ws_open(&c->ws, &wl_ws_ops, wl.epfd, &wl.addr, wl.host, target);
}

static void
wl_report(const char *phase)
{
	/* the histogram itself, sparse ("index:count,..."), so that reports merge exactly */
	printf("{\"hist\":\"");
	bl_hist_print(&wl.h, stdout);
	printf("\",");
	printf("\"phase\":\"%s\",\"report\":%d,\"count\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
	       "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"other\":%llu,\"bad\":%llu,\"ready\":%d,"
	       "\"closed_after_ready\":%d,\"last_close_code\":%d,\"cpu_s\":%.3f}\n",
	       phase, wl.reports++, (unsigned long long)wl.h.count, bl_hist_pct(&wl.h, 0.50) / 1000,
	       bl_hist_pct(&wl.h, 0.90) / 1000, bl_hist_pct(&wl.h, 0.99) / 1000,
	       (double)wl.h.max_us / 1000, (unsigned long long)wl.other, (unsigned long long)wl.bad,
	       wl.ready, wl.closed_after_ready, wl.last_close_code, bl_cpu_s());
	fflush(stdout);
	memset(&wl.h, 0, sizeof(wl.h));
	wl.other = wl.bad = 0;
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
	       bl_cpu_s(), wl.failures);
	fflush(stdout);
}

/* wl_load reads FILE and points lines first..first+n-1 at the connections. */
static void
wl_load(const char *path, int first)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		bl_die(path);
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
			bl_die("strdup");
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
	bl_prog = "wsload";
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
	char ip[64];
	if (bl_parse_addr(addr, &wl.addr, ip, sizeof(ip)) != 0)
		wl_usage("-a: numeric IPv4 HOST:PORT");
	snprintf(wl.host, sizeof(wl.host), "%s", addr); /* the Host header */

	wl.conns = bl_calloc((size_t)wl.n, sizeof(*wl.conns));
	wl_load(file, first);
	uint32_t seed = (uint32_t)bl_now_us(CLOCK_REALTIME) ^ (uint32_t)getpid();
	for (int i = 0; i < wl.n; i++) {
		wl.conns[i].ws.fd = -1;
		wl.conns[i].ws.mask = seed + (uint32_t)i * 2654435761u;
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
		bl_die("signalfd/epoll");
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(wl.epfd, EPOLL_CTL_ADD, sfd, &sev);

	wl.t_start_us = bl_now_us(CLOCK_MONOTONIC);
	struct epoll_event evs[256];
	for (;;) {
		int64_t mono = bl_now_us(CLOCK_MONOTONIC);
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
			bl_die("epoll_wait");
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
			if (c->state != WL_CLOSED && c->state != WL_IDLE)
				bl_ws_event(&c->ws, evs[i].events);
		}
		wl_check_open_done(bl_now_us(CLOCK_MONOTONIC));
	}
}
