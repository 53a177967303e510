/* proxy.h: what proxy.c (the loop, connections, I/O) and frames.c (what passes through a
 * connection) share. Private to the sidecar. */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "sidecar.h"

#define MESH_READ_CHUNK (64 * 1024)
#define MESH_OUT_HIGH   (1024 * 1024)
#define MESH_BUF_KEEP   (256 * 1024) /* larger idle buffers are freed */
#define MESH_PEND_MAX   4096         /* outstanding requests remembered per connection */
#define MESH_TICK_MS    100

enum ev_kind { EV_LISTEN_IN, EV_LISTEN_OUT, EV_END, EV_SHUTDOWN };

struct ev_tag {
	enum ev_kind kind;
	void *ptr;
	size_t idx;
};

struct buf {
	uint8_t *p;
	size_t off, len, cap;
};

struct conn;

struct end {
	struct ev_tag tag;
	struct conn *c;
	int fd;
	SSL *ssl;
	bool tls;
	bool connecting, handshaking, ready;
	bool rd_eof, failed;
	bool want_wr_for_rd, want_rd_for_wr;
	int hs_want; /* EPOLLIN or EPOLLOUT while handshaking */
	bool hdr_in; /* the peer's SP header was checked */
	struct buf in, out;
	uint32_t mask;
};

struct pending {
	uint32_t id;
	int64_t t0_us;
	const struct mesh_method_stats *st;
	/* An rpc.Batch: the series of its calls, in order (owned; NULL otherwise). */
	const struct mesh_method_stats **inner;
	size_t ninner;
};

struct conn {
	struct mesh *m;
	int dir;
	struct end down, up;
	struct mesh_upstream *u;
	struct mesh_endpoint *ep;
	char remote[64];
	char peer_id[MESH_ID_MAX];
	char caller[64];
	int64_t opened_ms, last_ms, deadline_ms;
	struct pending *pend;
	size_t npend, cappend;
	bool closed;
	struct conn *prev, *next;
};

/* proxy.c */
/* mesh__now_us returns the monotonic clock in microseconds. */
int64_t mesh__now_us(void);
/* mesh__buf_append appends n bytes to b. Returns 0 or -1 (out of memory). */
int mesh__buf_append(struct buf *b, const void *data, size_t n);
/* mesh__buf_consume drops the first n bytes of b (n <= b->len). */
void mesh__buf_consume(struct buf *b, size_t n);
/* mesh__conn_close closes both ends of c (once), counts it and queues c to be freed after the
 * current batch of events; why is logged at debug level. */
void mesh__conn_close(struct conn *c, const char *why);
/* mesh__conn_malformed counts, logs and closes c after a protocol violation by a peer. */
void mesh__conn_malformed(struct conn *c, const char *what);

/* frames.c */
/* mesh__frames_requests moves the complete requests of c's down end to its up end (checking
 * the SP header first, the policy inbound, timing each) or answers refused ones itself.
 * Returns 0, or -1 after closing c. */
int mesh__frames_requests(struct conn *c);
/* mesh__frames_responses moves the complete responses of c's up end to its down end, timing
 * and classifying each. Returns 0, or -1 after closing c. */
int mesh__frames_responses(struct conn *c);

#endif
