/* bl.h: what the load generators of bench/ share (wsload, pipeload, msgload, histpct), written
 * once: clocks and small helpers, a latency histogram whose sparse text form merges exactly
 * across processes, a non-blocking RFC 6455 client connection for an epoll loop, and an
 * open-loop HTTP/1.1 request engine that measures latency from each request's scheduled time.
 * Not part of any service: built into the bench programs only (bench/CMakeLists.txt). */
#ifndef BL_H
#define BL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- helpers --------------------------------------------------------------------------- */

/* bl_prog names the program in error messages ("wsload", ...); set it first in main. */
extern const char *bl_prog;

int64_t bl_now_us(clockid_t clk);
/* bl_cpu_s is this process's user + system CPU time in seconds. */
double bl_cpu_s(void);
/* bl_die prints "<prog>: what: strerror(errno)" and exits 1. */
_Noreturn void bl_die(const char *what);
/* bl_calloc is calloc that dies on failure (n may be 0). */
void *bl_calloc(size_t n, size_t sz);
/* bl_reserve grows *buf (capacity *cap) to hold need bytes, doubling; dies on failure. */
void bl_reserve(char **buf, size_t *cap, size_t need);
/* bl_parse_addr reads a numeric "IPv4:PORT" into *sa and the IPv4 text into host. 0 or -1. */
int bl_parse_addr(const char *s, struct sockaddr_in *sa, char *host, size_t hostlen);
/* bl_note appends why to the "; "-separated list in list[cap] unless it is there already. */
void bl_note(char *list, size_t cap, const char *why);

/* xorshift128+, seeded from getrandom (or the pid and time). */
struct bl_rng {
	uint64_t s[2];
};
void bl_rng_seed(struct bl_rng *r);
uint64_t bl_rand(struct bl_rng *r);
/* bl_uuid writes a random version-4 UUID in its text form (36 characters and a NUL). */
void bl_uuid(struct bl_rng *r, char out[37]);

/* ---- latencies ------------------------------------------------------------------------- */

/* A latency histogram in microseconds: 8-us buckets below 1,024 us, then 64 buckets per power
 * of two (about 1.1% wide) up to 2^41 us. Its sparse text form "index:count,..." (only the
 * buckets that hold something) is what reports carry, so several processes' reports merge
 * exactly (bench/histpct.c). */
#define BL_HIST_LIN     128
#define BL_HIST_OCTAVES 31
#define BL_HIST_NBUCK   (BL_HIST_LIN + BL_HIST_OCTAVES * 64)

struct bl_hist {
	uint64_t b[BL_HIST_NBUCK];
	uint64_t count, max_us;
};

void bl_hist_add(struct bl_hist *h, int64_t us);
/* bl_hist_pct is the middle of the bucket holding the p-th quantile (0..1), in us; 0 when
 * empty. */
double bl_hist_pct(const struct bl_hist *h, double p);
/* bl_hist_print writes the sparse form to f (nothing when empty). */
void bl_hist_print(const struct bl_hist *h, FILE *f);
/* bl_hist_merge_text adds the sparse form(s) read from f ("i:c" separated by anything but
 * digits and ':') into h; unknown indexes are ignored. */
void bl_hist_merge_text(struct bl_hist *h, FILE *f);

/* bl_pct_ms is the p-th quantile of n sorted microsecond latencies, in ms (0 when n is 0). */
double bl_pct_ms(const uint32_t *sorted, int64_t n, double p);
/* bl_sort_u32 sorts v[0..n) ascending. */
void bl_sort_u32(uint32_t *v, int64_t n);

/* ---- WebSocket client ------------------------------------------------------------------ */

/* One client connection on an epoll set (registered with data.ptr = the struct bl_ws, so an
 * owner's connection struct starts with it and casts back). It sends the upgrade request,
 * checks for "101", then joins fragments, answers pings, echoes a close and masks what it
 * sends; the server's Sec-WebSocket-Accept is not checked. What the owner sees: */
struct bl_ws;
struct bl_ws_ops {
	void (*on_open)(struct bl_ws *w); /* the upgrade was answered 101 */
	void (*on_text)(struct bl_ws *w, const char *p, size_t len); /* one whole text message */
	/* The connection failed, or the server closed it (close_code from its close frame, 1005
	 * when it had none; 0 when there was no close frame). The owner counts it and calls
	 * bl_ws_close (bl_ws closes it after this returns anyway). */
	void (*on_fail)(struct bl_ws *w, const char *why, int close_code);
};

enum bl_ws_phase { BL_WS_CLOSED, BL_WS_CONNECTING, BL_WS_UPGRADING, BL_WS_OPEN };

struct bl_ws {
	int fd;
	enum bl_ws_phase phase;
	uint32_t mask; /* PRNG state of the masks and the key; seed it once */
	const struct bl_ws_ops *ops;
	int ep;
	char *in, *msg, *out;
	size_t in_len, in_cap, msg_len, msg_cap, out_len, out_cap;
	int msg_op;
};

/* bl_ws_open starts a non-blocking connect to addr, adds it to ep and queues the upgrade
 * request "GET target" with "Host: host". On failure on_fail has been called; returns 0 or
 * -1. */
int bl_ws_open(struct bl_ws *w, const struct bl_ws_ops *ops, int ep, const struct sockaddr_in *addr,
               const char *host, const char *target);
/* bl_ws_event handles the epoll events of w. */
void bl_ws_event(struct bl_ws *w, uint32_t events);
/* bl_ws_send sends one masked frame (op 1 text, 2 binary, 8 close, 9 ping, 10 pong). */
void bl_ws_send(struct bl_ws *w, int op, const char *payload, size_t len);
void bl_ws_send_text(struct bl_ws *w, const char *s);
/* bl_ws_close closes the socket and frees the buffers (idempotent). */
void bl_ws_close(struct bl_ws *w);

/* ---- open-loop HTTP/1.1 requests ------------------------------------------------------- */

/* Request i is scheduled at t0 + i / rate whatever happened before; it goes out on the first
 * idle keep-alive connection (one request in flight per connection) and its latency runs from
 * its scheduled time, so a slow server cannot hide its backlog (coordinated omission). Broken
 * connections count their request as answered with a "conn" error and are reopened; requests
 * unanswered at the deadline (seconds + drain) count at their age then. Responses need
 * Content-Length (Transfer-Encoding is refused as malformed). */
struct bl_ol_conn;
struct bl_ol {
	/* set by the caller */
	struct sockaddr_in addr;
	int nconns;
	double rate, seconds, drain;
	/* request writes request i (on connection conn) into *buf (capacity *cap, grown with
	 * bl_reserve) and returns its length. */
	size_t (*request)(struct bl_ol *o, int64_t i, int conn, char **buf, size_t *cap);
	/* answer (optional) sees request i's response: status and body. */
	void (*answer)(struct bl_ol *o, int64_t i, int status, const char *body, size_t len);
	/* latency (optional) sees every latency recorded for request i, in us. */
	void (*latency)(struct bl_ol *o, int64_t i, uint32_t us);
	void *arg;
	/* results */
	int64_t t0_mono, t0_real; /* the schedule's start on both clocks, read together (us) */
	int64_t total, next, done, ok, conn_errors;
	int64_t last_ok_mono;
	int64_t status[600];
	uint32_t *lat_us; /* sorted when bl_ol_run returns */
	int64_t n_lat;
	/* internal */
	struct bl_ol_conn *c;
	int *idle, n_idle, ep;
};

/* bl_ol_run opens the connections (waiting up to 5 s), runs the schedule and the drain, and
 * sorts lat_us. Returns 0, or -1 when no connection could be opened. */
int bl_ol_run(struct bl_ol *o);
/* bl_ol_errors writes the non-2xx answers by status, "conn:N" and "late:N" ("none" when there
 * were none) into buf, e.g. "503:4,conn:1". */
void bl_ol_errors(const struct bl_ol *o, char *buf, size_t cap);
/* bl_ol_span_s is the time from the start to the last 2xx, at least the scheduled seconds. */
double bl_ol_span_s(const struct bl_ol *o);
/* bl_ol_free closes the connections and frees what bl_ol_run allocated. */
void bl_ol_free(struct bl_ol *o);

#endif
