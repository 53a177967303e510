/* sb_http_server.c: the event loop of sb_http: accept, read, parse, dispatch, write, timers,
 * cross-thread responses (queue + eventfd) and stop.
 *
 * Each connection is a state machine: HANDSHAKE (TLS only: until the TLS handshake is done,
 * under the head timer) → HEAD (reading a request head) → BODY (reading its
 * Content-Length body) → HANDLER (the request is with the handler; nothing more is read) →
 * WRITE (the response is being written) → HEAD again, or LINGER (an error response was sent;
 * input is drained briefly so that the client reads the response before the close) → closed.
 * Only the loop thread touches connections. A request is owned by its connection until it is
 * dispatched, by the handler until sb_http_respond, then by the loop again; a request whose
 * client is gone has conn == NULL and is only freed. Timers: one FIFO list per timeout kind,
 * each kept in deadline order because every entry of a list has the same duration.
 *
 * With TLS, reads and writes go through sb_http_io_recv/send, which turn "TLS wants to read"
 * or "wants to write" into EAGAIN plus the epoll interest to wait for; bytes TLS has already
 * decrypted are invisible to epoll, so sb_http_tls_pump reads them whenever the connection is
 * reading. The loop thread blocks SIGPIPE, as OpenSSL writes without MSG_NOSIGNAL. */
#include "sb_http.h"
#include "sb_err.h"
#include "sb_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SB_HTTP_LINGER_MS 2000

enum sb_http_state {
	SB_HTTP_HANDSHAKE,
	SB_HTTP_HEAD,
	SB_HTTP_BODY,
	SB_HTTP_HANDLER,
	SB_HTTP_STREAM,
	SB_HTTP_WRITE,
	SB_HTTP_LINGER,
};

enum sb_http_timer {
	SB_HTTP_T_IDLE,
	SB_HTTP_T_HEAD,
	SB_HTTP_T_BODY,
	SB_HTTP_T_WRITE,
	SB_HTTP_T_LINGER,
	SB_HTTP_T_COUNT,
	SB_HTTP_T_NONE = -1,
};

struct sb_http_conn;

struct sb_http_reqi {
	struct sb_http_req pub; /* first: the handler's pointer is this struct's */
	struct sb_http_server *srv;
	struct sb_http_conn *conn; /* loop thread only; NULL once the client is gone */
	struct sb_http_reqi *qnext;
	struct sb_buf resp;
	char *body;
	size_t body_got;
	bool close, keepalive10, head_only, failed;
	/* A streamed body (sb_http_req_read): the bytes that came with the head are
	 * body[pre_off..body_got); left more are on the socket. Between the dispatch and the
	 * answer only the handler's thread touches these, the socket and its TLS. */
	bool streamed, send_continue, own_fd;
	size_t pre_off, left;
	int sfd;
	struct ssl_st *sssl;
	int64_t sdeadline;            /* CLOCK_MONOTONIC ms */
	int64_t sstart;               /* when streaming began, CLOCK_MONOTONIC ms */
	int serr;                     /* the error reads return once one happened, else 0 */
	struct sb_http_header hdrs[]; /* then the head's text, then the body */
};

struct sb_http_conn {
	struct sb_http_server *srv;
	int fd;
	enum sb_http_state st;
	bool dead, close_after, linger, in_process;
	uint32_t events;
	char *rbuf;
	size_t rlen, rcap, scanned;
	struct sb_http_reqi *req;
	struct sb_buf out;
	size_t out_off;
	int timer;
	int64_t deadline;
	struct sb_http_conn *tprev, *tnext; /* timer list */
	struct sb_http_conn *prev, *next;   /* all connections; next also links the graveyard */
	char remote[64];
	struct ssl_st *ssl;  /* TLS connection, or NULL for plain HTTP */
	bool tls_clean;      /* handshake done and no TLS error: close with close_notify */
	bool tls_want_write; /* the last TLS call that could not go on needs a writable socket */
};

struct sb_http_server {
	struct sb_http_config cfg;
	char *server_name;
	struct sb__http_tls *tls; /* NULL: plain HTTP */
	sb_http_handler handler;
	void *arg;
	int lfd, epfd, evfd, reserve_fd, port;
	pthread_t thread, loop_tid;
	atomic_int refs; /* the owner's, plus one per live request */
	atomic_bool stopping;
	int stop_timeout_ms;

	pthread_mutex_t qlock; /* guards the queue of answered requests and loop_done */
	struct sb_http_reqi *qhead, **qtail;
	bool wake_pending, loop_done;

	/* Loop thread only. */
	struct sb_http_conn *conns, *graveyard;
	int nconns;
	struct {
		struct sb_http_conn *head, *tail;
	} timers[SB_HTTP_T_COUNT];
	int timer_ms[SB_HTTP_T_COUNT];
	bool stop_seen;
	int64_t stop_deadline;
};

static char sb_http_tok_listen, sb_http_tok_wake;

static const char sb_http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void sb_http_conn_process(struct sb_http_conn *c);
static void sb_http_conn_flush(struct sb_http_conn *c);

static int64_t
sb_http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sb_http_srv_unref(struct sb_http_server *srv)
{
	if (atomic_fetch_sub(&srv->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&srv->qlock);
	sb__http_tls_free(srv->tls);
	free(srv->server_name);
	free(srv);
}

static void
sb_http_req_free(struct sb_http_reqi *q)
{
	struct sb_http_server *srv = q->srv;
	if (q->own_fd) { /* its connection was closed while the handler read the body */
		sb__http_tls_conn_free(q->sssl, false);
		close(q->sfd);
	}
	sb_buf_free(&q->resp);
	free(q);
	sb_http_srv_unref(srv);
}

/* Timers. */

static void
sb_http_timer_clear(struct sb_http_conn *c)
{
	if (c->timer == SB_HTTP_T_NONE)
		return;
	struct sb_http_server *srv = c->srv;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		srv->timers[c->timer].head = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		srv->timers[c->timer].tail = c->tprev;
	c->tprev = c->tnext = NULL;
	c->timer = SB_HTTP_T_NONE;
}

static void
sb_http_timer_set(struct sb_http_conn *c, enum sb_http_timer kind)
{
	struct sb_http_server *srv = c->srv;
	sb_http_timer_clear(c);
	c->timer = kind;
	c->deadline = sb_http_now_ms() + srv->timer_ms[kind];
	c->tprev = srv->timers[kind].tail;
	if (c->tprev)
		c->tprev->tnext = c;
	else
		srv->timers[kind].head = c;
	srv->timers[kind].tail = c;
}

/* Connections. */

static void
sb_http_set_interest(struct sb_http_conn *c, uint32_t ev)
{
	if (c->events == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void
sb_http_conn_close(struct sb_http_conn *c)
{
	if (c->dead)
		return;
	struct sb_http_server *srv = c->srv;
	c->dead = true;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->st == SB_HTTP_STREAM && c->req != NULL) {
		/* The handler's thread may be reading the socket: wake it with an end of input
		 * and leave the descriptor and its TLS to the request, which frees them. */
		shutdown(c->fd, SHUT_RDWR);
		c->req->own_fd = true;
	} else {
		sb__http_tls_conn_free(c->ssl, c->tls_clean);
		close(c->fd);
	}
	c->ssl = NULL;
	sb_http_timer_clear(c);
	if (c->req != NULL) {
		if (c->st == SB_HTTP_HANDLER || c->st == SB_HTTP_STREAM)
			c->req->conn = NULL; /* freed when answered */
		else
			sb_http_req_free(c->req);
		c->req = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	c->next = srv->graveyard;
	srv->graveyard = c;
}

static void
sb_http_bury(struct sb_http_server *srv)
{
	while (srv->graveyard) {
		struct sb_http_conn *c = srv->graveyard;
		srv->graveyard = c->next;
		free(c->rbuf);
		sb_buf_free(&c->out);
		free(c);
	}
}

static void
sb_http_consume(struct sb_http_conn *c, size_t n)
{
	if (n == 0)
		return;
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
	c->scanned = 0;
}

/* sb_http_conn_fail answers a request the server rejects itself, then closes. Its request id
 * comes from the X-Request-Id of head (the headers parsed before the error), or of c's request
 * when its body was being read, or else of the whole lines of c's unparsed head bytes. */
static void
sb_http_conn_fail(struct sb_http_conn *c, int status, const char *detail,
                  const struct sb_http_req *head)
{
	struct sb_http_server *srv = c->srv;
	char raw[SB_HTTP_REQUEST_ID_MAX], rid[SB_HTTP_REQUEST_ID_MAX];
	if (head == NULL && c->req != NULL)
		head = &c->req->pub;
	sb_http_request_id(head != NULL ? sb_http_req_header(head, "X-Request-Id")
	                                : sb__http_raw_request_id(c->rbuf, c->rlen, raw),
	                   rid);
	if (c->req != NULL) {
		sb_http_req_free(c->req); /* never dispatched: the connection owns it */
		c->req = NULL;
	}
	c->rlen = 0;
	struct sb_buf body = SB_BUF_INIT;
	sb_buf_reset(&c->out);
	c->out_off = 0;
	struct sb__http_frame f = { .server_name = srv->server_name,
		                    .close = true,
		                    .hsts = srv->tls != NULL };
	const struct sb_http_header h = { "X-Request-Id", rid };
	int rc = sb__http_problem_body(&body, status, NULL, detail, rid);
	rc |= sb__http_build_response(&c->out, status, "application/problem+json", &h, 1, body.data,
	                              body.len, &f);
	sb_buf_free(&body);
	if (rc != 0) {
		sb_http_conn_close(c);
		return;
	}
	c->close_after = c->linger = true;
	c->st = SB_HTTP_WRITE;
	sb_http_conn_flush(c);
}

static void sb_http_conn_read(struct sb_http_conn *c);

/* sb_http_io_result turns the outcome of a TLS call into recv/send's: the count, 0 at the end,
 * or -1 with errno (EAGAIN: wait for sb_http_io_wait's events, then call again). */
static ssize_t
sb_http_io_result(struct sb_http_conn *c, enum sb__http_tls_io st, size_t n)
{
	switch (st) {
	case SB__HTTP_TLS_DONE:
		return (ssize_t)n;
	case SB__HTTP_TLS_WANT_READ:
	case SB__HTTP_TLS_WANT_WRITE:
		c->tls_want_write = st == SB__HTTP_TLS_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SB__HTTP_TLS_EOF:
		return 0;
	case SB__HTTP_TLS_FAIL:
		break;
	}
	c->tls_clean = false; /* no close_notify after a TLS error */
	errno = EPROTO;
	return -1;
}

/* sb_http_io_recv reads like recv(2), through TLS when c has it. */
static ssize_t
sb_http_io_recv(struct sb_http_conn *c, void *buf, size_t n)
{
	if (c->ssl == NULL)
		return recv(c->fd, buf, n, 0);
	size_t got = 0;
	enum sb__http_tls_io st = sb__http_tls_read(c->ssl, buf, n, &got);
	return sb_http_io_result(c, st, got);
}

/* sb_http_io_send writes like send(2) without SIGPIPE, through TLS when c has it. */
static ssize_t
sb_http_io_send(struct sb_http_conn *c, const void *buf, size_t n)
{
	if (c->ssl == NULL)
		return send(c->fd, buf, n, MSG_NOSIGNAL);
	size_t put = 0;
	enum sb__http_tls_io st = sb__http_tls_write(c->ssl, buf, n, &put);
	return sb_http_io_result(c, st, put);
}

/* sb_http_io_wait returns the events to wait for after an EAGAIN: TLS may need the other
 * direction than the one asked for (dflt). */
static uint32_t
sb_http_io_wait(const struct sb_http_conn *c, uint32_t dflt)
{
	if (c->ssl == NULL)
		return dflt;
	return c->tls_want_write ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
}

/* sb_http_tls_pump reads what TLS has already decrypted while c is reading a request: epoll
 * does not see those bytes. Every round consumes some, or changes c's state. */
static void
sb_http_tls_pump(struct sb_http_conn *c)
{
	while (c->ssl != NULL && !c->dead && (c->st == SB_HTTP_HEAD || c->st == SB_HTTP_BODY) &&
	       sb__http_tls_pending(c->ssl))
		sb_http_conn_read(c);
}

/* sb_http_conn_handshake advances c's TLS handshake; when it is done, c reads its first
 * request, still under the head timer started when it connected. */
static void
sb_http_conn_handshake(struct sb_http_conn *c)
{
	switch (sb__http_tls_handshake(c->ssl, c->remote)) {
	case SB__HTTP_TLS_DONE:
		c->tls_clean = true;
		c->st = SB_HTTP_HEAD;
		sb_http_set_interest(c, EPOLLIN | EPOLLRDHUP);
		sb_http_tls_pump(c);
		return;
	case SB__HTTP_TLS_WANT_READ:
		sb_http_set_interest(c, EPOLLIN | EPOLLRDHUP);
		return;
	case SB__HTTP_TLS_WANT_WRITE:
		sb_http_set_interest(c, EPOLLOUT);
		return;
	default:
		sb_http_conn_close(c); /* not TLS 1.3, garbage, or gone: no answer is possible */
	}
}

/* sb_http_conn_await_request readies c for its next request after a response. */
static void
sb_http_conn_await_request(struct sb_http_conn *c)
{
	c->st = SB_HTTP_HEAD;
	c->scanned = 0;
	if (c->rlen == 0) { /* idle connections hold no read buffer */
		free(c->rbuf);
		c->rbuf = NULL;
	}
	sb_http_set_interest(c, EPOLLIN | EPOLLRDHUP);
	sb_http_timer_set(c, c->rlen ? SB_HTTP_T_HEAD : SB_HTTP_T_IDLE);
	if (!c->in_process) {
		sb_http_conn_process(c);
		sb_http_tls_pump(c);
	}
}

static void
sb_http_conn_flush(struct sb_http_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = sb_http_io_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			sb_http_set_interest(c, sb_http_io_wait(c, EPOLLOUT));
			sb_http_timer_set(c, SB_HTTP_T_WRITE);
			return;
		}
		if (n <= 0) {
			sb_http_conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out.cap > 65536)
		sb_buf_free(&c->out);
	else
		sb_buf_reset(&c->out);
	c->out_off = 0;
	if (c->close_after || atomic_load(&c->srv->stopping)) {
		if (!c->linger || atomic_load(&c->srv->stopping)) {
			sb_http_conn_close(c);
			return;
		}
		/* Drain what the client still sends so that the close does not reset the
		 * connection before it has read the response; with TLS, say close_notify first
		 * and drain the raw bytes. */
		if (c->ssl != NULL) {
			sb__http_tls_conn_free(c->ssl, c->tls_clean);
			c->ssl = NULL;
		}
		shutdown(c->fd, SHUT_WR);
		c->st = SB_HTTP_LINGER;
		sb_http_set_interest(c, EPOLLIN | EPOLLRDHUP);
		sb_http_timer_set(c, SB_HTTP_T_LINGER);
		return;
	}
	sb_http_conn_await_request(c);
}

static void
sb_http_conn_dispatch(struct sb_http_conn *c)
{
	struct sb_http_server *srv = c->srv;
	c->st = SB_HTTP_HANDLER;
	sb_http_timer_clear(c);
	/* Nothing is read while the handler has the request, but a connection waiting for
	 * input keeps its interest: most clients send nothing more before the response, and
	 * leaving the interest alone saves two epoll_ctl calls per request. A client that
	 * does send (pipelining) makes sb_http_conn_event drop EPOLLIN then. */
	if (c->events != (EPOLLIN | EPOLLRDHUP))
		sb_http_set_interest(c, EPOLLRDHUP);
	srv->handler(&c->req->pub, srv->arg);
}

/* sb_http_conn_stream hands c's request to the handler before its body is read: the socket
 * leaves epoll and belongs to the handler's sb_http_req_read calls until the answer, when
 * sb_http_drain_queue takes it back. 100 Continue, when asked for, is sent by the first read
 * that needs the socket, so a handler that refuses at once does not invite the body. */
static void
sb_http_conn_stream(struct sb_http_conn *c, bool expect_continue)
{
	struct sb_http_server *srv = c->srv;
	struct sb_http_reqi *q = c->req;
	q->streamed = true;
	q->pub.streamed = true;
	q->pub.body = NULL;
	q->pre_off = 0;
	q->left = q->pub.body_len - q->body_got;
	q->send_continue = expect_continue && q->left > 0;
	q->sfd = c->fd;
	q->sssl = c->ssl;
	q->sstart = sb_http_now_ms();
	q->sdeadline = q->sstart + srv->timer_ms[SB_HTTP_T_BODY];
	c->st = SB_HTTP_STREAM;
	sb_http_timer_clear(c);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	srv->handler(&q->pub, srv->arg);
}

/* sb_http_conn_start_request turns the head rbuf[0..hlen) into a request. */
static void
sb_http_conn_start_request(struct sb_http_conn *c, size_t hlen)
{
	struct sb_http_server *srv = c->srv;
	struct sb_http_header tmp[SB__HTTP_MAX_HEADERS];
	struct sb__http_head h;
	int rc = sb__http_parse_head(c->rbuf, hlen, tmp, SB__HTTP_MAX_HEADERS, &h);
	/* the headers parsed before an error, for the request id of the answer */
	const struct sb_http_req parsed = { .headers = tmp, .nheaders = h.nheaders };
	if (rc == SB_ERANGE) {
		sb_http_conn_fail(c, 431, "too many header fields", &parsed);
		return;
	}
	if (rc != 0) {
		sb_http_conn_fail(c, 400,
		                  rc == SB_EINVAL ? "invalid Content-Length or Transfer-Encoding"
		                                  : "malformed request",
		                  &parsed);
		return;
	}
	if (h.has_te) {
		sb_http_conn_fail(c, 411, "Transfer-Encoding is not supported; send Content-Length",
		                  &parsed);
		return;
	}
	if (h.content_len > 0 && (unsigned long long)h.content_len > srv->cfg.max_body_bytes) {
		sb_http_conn_fail(c, 413, "request body is larger than the server accepts",
		                  &parsed);
		return;
	}
	size_t blen = h.content_len > 0 ? (size_t)h.content_len : 0;
	size_t have = c->rlen - hlen < blen ? c->rlen - hlen : blen;
	bool stream = false;
	if (blen > 0 && srv->cfg.stream_body != NULL) {
		struct sb_http_req view = { .method = h.method,
			                    .path = h.path,
			                    .query = h.query,
			                    .headers = tmp,
			                    .nheaders = h.nheaders,
			                    .body_len = blen,
			                    .streamed = true };
		memcpy(view.remote, c->remote, sizeof(c->remote));
		stream = srv->cfg.stream_body(&view, srv->arg);
	}
	size_t room = stream ? have : blen; /* a streamed body keeps only what came already */
	struct sb_http_reqi *q =
	    calloc(1, sizeof(*q) + h.nheaders * sizeof(q->hdrs[0]) + hlen + room + 1);
	if (q == NULL) {
		sb_http_conn_close(c);
		return;
	}
	atomic_fetch_add(&srv->refs, 1);
	q->srv = srv;
	q->conn = c;
	char *base = (char *)&q->hdrs[h.nheaders];
	memcpy(base, c->rbuf, hlen);
#define SB_HTTP_RELOC(p) (base + ((p)-c->rbuf))
	q->pub.method = SB_HTTP_RELOC(h.method);
	q->pub.path = SB_HTTP_RELOC(h.path);
	q->pub.query = SB_HTTP_RELOC(h.query);
	for (size_t i = 0; i < h.nheaders; i++) {
		q->hdrs[i].name = SB_HTTP_RELOC(tmp[i].name);
		q->hdrs[i].value = SB_HTTP_RELOC(tmp[i].value);
	}
#undef SB_HTTP_RELOC
	q->pub.headers = q->hdrs;
	q->pub.nheaders = h.nheaders;
	q->body = base + hlen;
	q->pub.body = q->body;
	q->pub.body_len = blen;
	memcpy(q->pub.remote, c->remote, sizeof(c->remote));
	q->close = h.conn_close || (h.minor == 0 && !h.conn_keepalive);
	q->keepalive10 = h.minor == 0 && !q->close;
	q->head_only = strcmp(q->pub.method, "HEAD") == 0;
	sb_http_consume(c, hlen);
	c->req = q;

	size_t take = c->rlen < blen ? c->rlen : blen;
	if (take > 0)
		memcpy(q->body, c->rbuf, take);
	sb_http_consume(c, take);
	q->body_got = take;
	if (stream) {
		sb_http_conn_stream(c, h.expect_continue && h.minor == 1);
		return;
	}
	if (q->body_got < blen) {
		if (h.expect_continue && h.minor == 1 &&
		    sb_http_io_send(c, sb_http_continue, sizeof(sb_http_continue) - 1) !=
		        (ssize_t)sizeof(sb_http_continue) - 1) {
			sb_http_conn_close(c);
			return;
		}
		c->st = SB_HTTP_BODY;
		sb_http_timer_set(c, SB_HTTP_T_BODY);
		return;
	}
	sb_http_conn_dispatch(c);
}

/* sb_http_conn_process parses and dispatches the requests buffered in c, in order. */
static void
sb_http_conn_process(struct sb_http_conn *c)
{
	c->in_process = true;
	while (!c->dead && c->st == SB_HTTP_HEAD && c->rlen > 0) {
		size_t skip = 0; /* empty lines before a request are allowed (RFC 9112 2.2) */
		while (skip < c->rlen && (c->rbuf[skip] == '\r' || c->rbuf[skip] == '\n'))
			skip++;
		if (skip > 0) {
			sb_http_consume(c, skip);
			continue;
		}
		char *e = memmem(c->rbuf + c->scanned, c->rlen - c->scanned, "\r\n\r\n", 4);
		if (e == NULL) {
			c->scanned = c->rlen > 3 ? c->rlen - 3 : 0;
			if (c->rlen >= c->rcap)
				sb_http_conn_fail(c, 431, "request head is too large", NULL);
			break;
		}
		sb_http_conn_start_request(c, (size_t)(e - c->rbuf) + 4);
	}
	c->in_process = false;
}

static void
sb_http_conn_read(struct sb_http_conn *c)
{
	ssize_t n;
	struct sb_http_reqi *q = c->req;
	if (c->st == SB_HTTP_BODY) {
		n = sb_http_io_recv(c, q->body + q->body_got, q->pub.body_len - q->body_got);
	} else if (c->st == SB_HTTP_LINGER) {
		char scratch[4096];
		n = recv(c->fd, scratch, sizeof(scratch), 0);
	} else {
		if (c->rbuf == NULL && (c->rbuf = malloc(c->rcap)) == NULL) {
			sb_http_conn_close(c);
			return;
		}
		if (c->rlen == c->rcap) {
			sb_http_conn_fail(c, 431, "request head is too large", NULL);
			return;
		}
		n = sb_http_io_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (c->ssl != NULL && c->st != SB_HTTP_LINGER)
			sb_http_set_interest(c, sb_http_io_wait(c, EPOLLIN | EPOLLRDHUP));
		return;
	}
	if (n <= 0) {
		sb_http_conn_close(c);
		return;
	}
	if (c->st == SB_HTTP_LINGER)
		return;
	if (c->ssl != NULL)
		sb_http_set_interest(c, EPOLLIN | EPOLLRDHUP); /* after a TLS want-write */
	if (c->st == SB_HTTP_BODY) {
		q->body_got += (size_t)n;
		if (q->body_got == q->pub.body_len) {
			sb_http_conn_dispatch(c);
		}
		return;
	}
	if (c->timer == SB_HTTP_T_IDLE)
		sb_http_timer_set(c,
		                  SB_HTTP_T_HEAD); /* the head's clock starts at its first byte */
	c->rlen += (size_t)n;
	sb_http_conn_process(c);
}

static void
sb_http_conn_event(struct sb_http_conn *c, uint32_t ev)
{
	if (c->dead || c->st == SB_HTTP_STREAM) /* the socket is the handler's */
		return;
	if (ev & (EPOLLERR | EPOLLHUP)) {
		c->tls_clean = false; /* the peer is gone: no close_notify */
		sb_http_conn_close(c);
		return;
	}
	switch (c->st) {
	case SB_HTTP_HANDSHAKE:
		sb_http_conn_handshake(c);
		break;
	case SB_HTTP_HANDLER:
		if (ev & EPOLLRDHUP)
			sb_http_conn_close(c); /* the client left; its request is orphaned */
		else if (ev & EPOLLIN)
			sb_http_set_interest(c, EPOLLRDHUP); /* pipelined bytes wait their turn */
		break;
	case SB_HTTP_WRITE:
		if (ev & (EPOLLOUT | EPOLLIN)) /* EPOLLIN: TLS wanted to read */
			sb_http_conn_flush(c);
		break;
	default:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLOUT)) /* EPOLLOUT: TLS wanted to write */
			sb_http_conn_read(c);
	}
	sb_http_tls_pump(c);
}

static void
sb_http_conn_new(struct sb_http_server *srv, int fd, const struct sockaddr_storage *ss)
{
	struct sb_http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->rcap = srv->cfg.max_header_bytes;
	c->timer = SB_HTTP_T_NONE;
	c->st = SB_HTTP_HEAD;
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(c->remote, sizeof(c->remote), "%s:%u", ip, ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(c->remote, sizeof(c->remote), "[%s]:%u", ip, ntohs(a->sin6_port));
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (srv->tls != NULL) {
		if ((c->ssl = sb__http_tls_conn_new(srv->tls, fd)) == NULL) {
			free(c);
			close(fd);
			return;
		}
		c->st = SB_HTTP_HANDSHAKE;
	}
	c->events = EPOLLIN | EPOLLRDHUP;
	struct epoll_event e = { .events = c->events, .data.ptr = c };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
		sb__http_tls_conn_free(c->ssl, false);
		free(c);
		close(fd);
		return;
	}
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	sb_http_timer_set(c, SB_HTTP_T_HEAD);
}

/* sb_http_busy answers 503 on fd, a connection accepted beyond max_conns, best effort and
 * without blocking (nothing of it was read: its request id is a new one). */
static void
sb_http_busy(struct sb_http_server *srv, int fd)
{
	char rid[SB_HTTP_REQUEST_ID_MAX];
	sb_http_request_id(NULL, rid);
	const struct sb_http_header h[] = { { "Retry-After", "1" }, { "X-Request-Id", rid } };
	const struct sb__http_frame f = { .server_name = srv->server_name, .close = true };
	struct sb_buf body = SB_BUF_INIT, out = SB_BUF_INIT;
	if (sb__http_problem_body(&body, 503, NULL, "too many connections; retry shortly", rid) ==
	        0 &&
	    sb__http_build_response(&out, 503, "application/problem+json", h, 2, body.data,
	                            body.len, &f) == 0) {
		ssize_t n = send(fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	sb_buf_free(&body);
	sb_buf_free(&out);
}

static void
sb_http_accept(struct sb_http_server *srv)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd =
		    accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && srv->reserve_fd >= 0) {
				/* Out of descriptors: free the spare one to accept and drop this
				 * client, instead of spinning on a listener that stays readable. */
				close(srv->reserve_fd);
				fd = accept(srv->lfd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				if (fd >= 0)
					continue;
			}
			return;
		}
		if (srv->nconns >= srv->cfg.max_conns) {
			/* A TLS client could not read a plain answer: it is only closed. */
			if (srv->tls == NULL)
				sb_http_busy(srv, fd);
			close(fd);
			continue;
		}
		sb_http_conn_new(srv, fd, &ss);
	}
}

/* sb_http_conn_reclaim takes c back from the handler that streamed q's body: the socket
 * returns to epoll. A body not read to its end (or a read that failed) closes the connection
 * after the answer (sb_http_respond set q->close); what the client still sends is drained
 * for a while so that it reads the answer before the close. */
static void
sb_http_conn_reclaim(struct sb_http_conn *c, struct sb_http_reqi *q)
{
	c->st = SB_HTTP_HANDLER;
	c->events = EPOLLRDHUP;
	struct epoll_event e = { .events = c->events, .data.ptr = c };
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0)
		q->failed = true;
	if (q->serr == SB_ECLOSED) {
		c->tls_clean = false;
		q->failed = true; /* gone: nobody to answer */
	}
	if (q->left > 0 || q->serr != 0)
		c->linger = true;
}

/* sb_http_drain_queue takes the answered requests and starts writing their responses. */
static void
sb_http_drain_queue(struct sb_http_server *srv)
{
	pthread_mutex_lock(&srv->qlock);
	struct sb_http_reqi *q = srv->qhead;
	srv->qhead = NULL;
	srv->qtail = &srv->qhead;
	srv->wake_pending = false;
	pthread_mutex_unlock(&srv->qlock);
	while (q != NULL) {
		struct sb_http_reqi *next = q->qnext;
		struct sb_http_conn *c = q->conn;
		if (c != NULL) {
			c->req = NULL;
			if (c->st == SB_HTTP_STREAM)
				sb_http_conn_reclaim(c, q);
			if (q->failed) {
				sb_http_conn_close(c);
			} else {
				sb_buf_free(&c->out);
				c->out = q->resp;
				q->resp = (struct sb_buf)SB_BUF_INIT;
				c->out_off = 0;
				c->close_after = q->close;
				c->st = SB_HTTP_WRITE;
				sb_http_conn_flush(c);
			}
		}
		sb_http_req_free(q);
		q = next;
	}
}

static void
sb_http_expire(struct sb_http_server *srv)
{
	int64_t now = sb_http_now_ms();
	for (int k = 0; k < SB_HTTP_T_COUNT; k++) {
		struct sb_http_conn *c;
		while ((c = srv->timers[k].head) != NULL && c->deadline <= now) {
			sb_http_timer_clear(c);
			if ((k == SB_HTTP_T_HEAD && c->rlen > 0) || k == SB_HTTP_T_BODY)
				sb_http_conn_fail(c, 408, "request not received in time", NULL);
			else
				sb_http_conn_close(c);
		}
	}
}

static int
sb_http_next_timeout(struct sb_http_server *srv)
{
	int64_t next = INT64_MAX;
	for (int k = 0; k < SB_HTTP_T_COUNT; k++) {
		if (srv->timers[k].head && srv->timers[k].head->deadline < next)
			next = srv->timers[k].head->deadline;
	}
	if (srv->stop_seen && srv->stop_deadline < next)
		next = srv->stop_deadline;
	int64_t now = sb_http_now_ms();
	if (srv->tls != NULL && !srv->stop_seen) {
		int t = sb__http_tls_poll(srv->tls, now); /* reloads changed files */
		if (t >= 0 && now + t < next)
			next = now + t;
	}
	if (next == INT64_MAX)
		return -1;
	int64_t d = next - now;
	return d < 0 ? 0 : (d > 60000 ? 60000 : (int)d);
}

static void
sb_http_begin_stop(struct sb_http_server *srv)
{
	srv->stop_seen = true;
	srv->stop_deadline = sb_http_now_ms() + srv->stop_timeout_ms;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->lfd, NULL);
	close(srv->lfd);
	srv->lfd = -1;
	for (struct sb_http_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if ((c->st == SB_HTTP_HEAD && c->rlen == 0) || c->st == SB_HTTP_LINGER ||
		    c->st == SB_HTTP_HANDSHAKE)
			sb_http_conn_close(c);
	}
}

static void *
sb_http_loop(void *arg)
{
	struct sb_http_server *srv = arg;
	struct epoll_event evs[64];
	srv->loop_tid = pthread_self();
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE); /* OpenSSL writes to sockets without MSG_NOSIGNAL */
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	for (;;) {
		if (atomic_load(&srv->stopping) && !srv->stop_seen)
			sb_http_begin_stop(srv);
		if (srv->stop_seen && (srv->nconns == 0 || sb_http_now_ms() >= srv->stop_deadline))
			break;
		int n = epoll_wait(srv->epfd, evs, 64, sb_http_next_timeout(srv));
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &sb_http_tok_listen) {
				sb_http_accept(srv);
			} else if (p == &sb_http_tok_wake) {
				uint64_t v;
				ssize_t r = read(srv->evfd, &v, sizeof(v));
				(void)r;
			} else {
				sb_http_conn_event(p, evs[i].events);
			}
			sb_http_drain_queue(srv);
		}
		sb_http_drain_queue(srv);
		sb_http_expire(srv);
		sb_http_bury(srv);
	}
	while (srv->conns)
		sb_http_conn_close(srv->conns);
	pthread_mutex_lock(&srv->qlock);
	srv->loop_done = true;
	struct sb_http_reqi *q = srv->qhead;
	srv->qhead = NULL;
	pthread_mutex_unlock(&srv->qlock);
	while (q != NULL) {
		struct sb_http_reqi *next = q->qnext;
		sb_http_req_free(q); /* answered after its connection was closed */
		q = next;
	}
	sb_http_bury(srv);
	return NULL;
}

int
sb_http_respond(struct sb_http_req *r, int status, const char *content_type,
                const struct sb_http_header *extra, size_t nextra, const void *body, size_t len)
{
	if (r == NULL)
		return SB_EINVAL;
	struct sb_http_reqi *q = (struct sb_http_reqi *)r;
	struct sb_http_server *srv = q->srv;
	int ret = 0;
	if (status < 200 || status > 599 || !sb__http_valid_extra(extra, nextra) ||
	    (content_type != NULL && strpbrk(content_type, "\r\n") != NULL) ||
	    (len > 0 && body == NULL)) {
		ret = SB_EINVAL;
		status = 500;
		content_type = NULL;
		extra = NULL;
		nextra = 0;
		body = NULL;
		len = 0;
	}
	q->close |= atomic_load(&srv->stopping);
	if (q->streamed && (q->left > 0 || q->serr != 0))
		q->close = true; /* the rest of the body would be taken for the next request */
	struct sb__http_frame f = { .server_name = srv->server_name,
		                    .close = q->close,
		                    .keepalive10 = q->keepalive10,
		                    .head_only = q->head_only,
		                    .hsts = srv->tls != NULL };
	if (sb__http_build_response(&q->resp, status, content_type, extra, nextra, body, len, &f) !=
	    0) {
		q->failed = true;
		ret = SB_ENOMEM;
	}
	bool on_loop = pthread_equal(pthread_self(), srv->loop_tid);
	pthread_mutex_lock(&srv->qlock);
	if (srv->loop_done) {
		pthread_mutex_unlock(&srv->qlock);
		sb_http_req_free(q);
		return ret;
	}
	q->qnext = NULL;
	*srv->qtail = q;
	srv->qtail = &q->qnext;
	bool wake = !on_loop && !srv->wake_pending;
	srv->wake_pending |= wake;
	pthread_mutex_unlock(&srv->qlock);
	if (wake) {
		uint64_t one = 1;
		ssize_t w = write(srv->evfd, &one, sizeof(one));
		(void)w;
	}
	return ret;
}

/* sb_http_listen binds and listens on addr:port; returns the socket or a negative sb_err. */
static int
sb_http_listen(const char *addr, int port, int *bound_port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (addr == NULL)
		addr = "127.0.0.1";
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*a6);
	} else {
		return SB_EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return SB_EIO;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		close(fd);
		return SB_EIO;
	}
	*bound_port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
	return fd;
}

int
sb_http_server_start(const struct sb_http_config *cfg, sb_http_handler h, void *arg,
                     struct sb_http_server **out)
{
	if (cfg == NULL || h == NULL || out == NULL || cfg->port < 0 || cfg->port > 65535 ||
	    cfg->header_timeout_ms < 0 || cfg->body_timeout_ms < 0 || cfg->idle_timeout_ms < 0 ||
	    cfg->max_conns < 0 || cfg->stream_min_rate < 0 || cfg->stream_grace_ms < 0 ||
	    (cfg->server_name && strpbrk(cfg->server_name, "\r\n")))
		return SB_EINVAL;
	struct sb_http_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return SB_ENOMEM;
	int ret = SB_ENOMEM;
	srv->cfg = *cfg;
	srv->cfg.addr = NULL;
	srv->lfd = srv->epfd = srv->evfd = srv->reserve_fd = -1;
	if (srv->cfg.max_header_bytes == 0)
		srv->cfg.max_header_bytes = 16384;
	if (srv->cfg.max_header_bytes < 64)
		srv->cfg.max_header_bytes = 64;
	if (srv->cfg.max_body_bytes == 0)
		srv->cfg.max_body_bytes = 1 << 20;
	if (srv->cfg.max_conns == 0)
		srv->cfg.max_conns = 10000;
	srv->timer_ms[SB_HTTP_T_HEAD] = cfg->header_timeout_ms ? cfg->header_timeout_ms : 10000;
	srv->timer_ms[SB_HTTP_T_BODY] = cfg->body_timeout_ms ? cfg->body_timeout_ms : 60000;
	srv->timer_ms[SB_HTTP_T_IDLE] = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 60000;
	srv->timer_ms[SB_HTTP_T_WRITE] = srv->timer_ms[SB_HTTP_T_IDLE];
	srv->timer_ms[SB_HTTP_T_LINGER] = SB_HTTP_LINGER_MS;
	if (cfg->server_name && (srv->server_name = strdup(cfg->server_name)) == NULL)
		goto fail;
	srv->cfg.server_name = srv->server_name;
	if ((cfg->tls_cert_file || cfg->tls_key_file) &&
	    (ret = sb__http_tls_new(cfg->tls_cert_file, cfg->tls_key_file, cfg->tls_reload_ms,
	                            &srv->tls)) != 0)
		goto fail;
	srv->cfg.tls_cert_file = srv->cfg.tls_key_file = NULL; /* not kept: see srv->tls */
	srv->handler = h;
	srv->arg = arg;
	srv->qtail = &srv->qhead;
	atomic_init(&srv->refs, 1);
	atomic_init(&srv->stopping, false);
	if ((srv->lfd = sb_http_listen(cfg->addr, cfg->port, &srv->port)) < 0) {
		ret = srv->lfd;
		goto fail;
	}
	ret = SB_EIO;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->epfd < 0 || srv->evfd < 0)
		goto fail;
	struct epoll_event el = { .events = EPOLLIN, .data.ptr = &sb_http_tok_listen };
	struct epoll_event ew = { .events = EPOLLIN, .data.ptr = &sb_http_tok_wake };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lfd, &el) != 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->evfd, &ew) != 0)
		goto fail;
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pthread_mutex_init(&srv->qlock, NULL) != 0)
		goto fail;
	if (pthread_create(&srv->thread, NULL, sb_http_loop, srv) != 0) {
		pthread_mutex_destroy(&srv->qlock);
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->evfd >= 0)
		close(srv->evfd);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	sb__http_tls_free(srv->tls);
	free(srv->server_name);
	free(srv);
	return ret;
}

int
sb_http_server_reload_tls(struct sb_http_server *s)
{
	if (s == NULL || s->tls == NULL)
		return SB_EINVAL;
	return sb__http_tls_reload(s->tls);
}

int
sb_http_server_port(const struct sb_http_server *s)
{
	return s ? s->port : -1;
}

void
sb_http_server_stop(struct sb_http_server *s, int timeout_ms)
{
	if (s == NULL)
		return;
	s->stop_timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
	atomic_store(&s->stopping, true);
	uint64_t one = 1;
	ssize_t w = write(s->evfd, &one, sizeof(one));
	(void)w;
	pthread_join(s->thread, NULL);
	close(s->epfd);
	close(s->evfd);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	sb_http_srv_unref(s);
}

/* Streamed bodies: the handler's thread reads the socket itself, blocking with poll(2). */

/* sb_http_tls_call runs one TLS read or write of q's connection with SIGPIPE blocked in this
 * thread (OpenSSL writes without MSG_NOSIGNAL, and a TLS read may write) and a SIGPIPE it
 * raised consumed, so that a client that left cannot kill a process that kept SIGPIPE's
 * default action. */
static enum sb__http_tls_io
sb_http_tls_call(struct sb_http_reqi *q, bool write, void *buf, size_t n, size_t *moved)
{
	sigset_t pipe, old;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	enum sb__http_tls_io st = write ? sb__http_tls_write(q->sssl, buf, n, moved)
	                                : sb__http_tls_read(q->sssl, buf, n, moved);
	sigset_t pend;
	if (!sigismember(&old, SIGPIPE) && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
		const struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return st;
}

/* sb_http_stream_wait waits until q's socket is ready for events or the body's deadline.
 * Returns 0 or SB_ETIMEDOUT. */
static int
sb_http_stream_wait(struct sb_http_reqi *q, short events)
{
	const struct sb_http_config *cfg = &q->srv->cfg;
	for (;;) {
		int64_t deadline = q->sdeadline;
		if (cfg->stream_min_rate > 0) {
			/* by then the bytes received so far would fall below the minimum rate */
			int64_t got = (int64_t)(q->pub.body_len - q->left);
			int64_t by = q->sstart +
			             (cfg->stream_grace_ms > 0 ? cfg->stream_grace_ms : 10000) +
			             got * 1000 / cfg->stream_min_rate;
			if (by < deadline)
				deadline = by;
		}
		int64_t left = deadline - sb_http_now_ms();
		if (left <= 0)
			return SB_ETIMEDOUT;
		struct pollfd p = { .fd = q->sfd, .events = events };
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return 0; /* the next I/O call reports the error */
	}
}

/* sb_http_stream_io moves up to n bytes between buf and q's socket (write: to it), waiting
 * as long as the body's deadline allows. Returns the count (> 0), SB_ETIMEDOUT, or
 * SB_ECLOSED (the client closed, reset, or broke TLS). */
static ssize_t
sb_http_stream_io(struct sb_http_reqi *q, bool write, void *buf, size_t n)
{
	for (;;) {
		short want = write ? POLLOUT : POLLIN;
		if (q->sssl == NULL) {
			ssize_t r = write ? send(q->sfd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT)
			                  : recv(q->sfd, buf, n, MSG_DONTWAIT);
			if (r > 0)
				return r;
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
				return SB_ECLOSED;
		} else {
			size_t moved = 0;
			switch (sb_http_tls_call(q, write, buf, n, &moved)) {
			case SB__HTTP_TLS_DONE:
				return (ssize_t)moved;
			case SB__HTTP_TLS_WANT_READ:
				want = POLLIN;
				break;
			case SB__HTTP_TLS_WANT_WRITE:
				want = POLLOUT;
				break;
			default:
				return SB_ECLOSED;
			}
		}
		if (sb_http_stream_wait(q, want) != 0)
			return SB_ETIMEDOUT;
	}
}

ssize_t
sb_http_req_read(struct sb_http_req *r, void *buf, size_t n)
{
	struct sb_http_reqi *q = (struct sb_http_reqi *)r;
	if (r == NULL || !q->streamed || (n > 0 && buf == NULL) ||
	    pthread_equal(pthread_self(), q->srv->loop_tid))
		return SB_EINVAL;
	if (n == 0)
		return 0;
	if (q->pre_off < q->body_got) { /* what came with the head first */
		size_t k = q->body_got - q->pre_off < n ? q->body_got - q->pre_off : n;
		memcpy(buf, q->body + q->pre_off, k);
		q->pre_off += k;
		return (ssize_t)k;
	}
	if (q->serr != 0)
		return q->serr;
	if (q->left == 0)
		return 0;
	if (q->send_continue) {
		size_t off = 0, len = sizeof(sb_http_continue) - 1;
		while (off < len) {
			ssize_t w =
			    sb_http_stream_io(q, true, (char *)sb_http_continue + off, len - off);
			if (w < 0)
				return q->serr = (int)w;
			off += (size_t)w;
		}
		q->send_continue = false;
	}
	ssize_t got = sb_http_stream_io(q, false, buf, n < q->left ? n : q->left);
	if (got < 0)
		return q->serr = (int)got;
	q->left -= (size_t)got;
	return got;
}
