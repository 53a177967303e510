/* proxy.c: the event loop: listeners, connections, their I/O and timers (what passes through
 * a connection is frames.c's).
 *
 * A connection is two ends: `down`, the side that connected to us (the caller's sidecar over
 * mTLS inbound, the local service outbound), and `up`, the side we dialed (the local service
 * inbound, the upstream's sidecar over mTLS outbound). Requests flow down → up, responses
 * up → down. Each hop negotiates SP on its own, as nng does: the sidecar checks the header each
 * end sends (REQ0 from down, REP0 from up) and sends its own (REP0 to down, REQ0 to up) once
 * `up` is usable, so a service never sees a pipe whose far side is unreachable.
 *
 * States of a connection (per end): connecting (TCP) → handshaking (TLS ends) → ready. Every
 * socket is non-blocking and registered level-triggered; after any event on either end the
 * whole connection is pumped: read what may be read, cut complete frames, write what is
 * queued, and recompute both ends' interest. Reading stops while the other end's queue is
 * above MESH_OUT_HIGH (backpressure) and while a frame is incomplete beyond max_frame. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_shutdown.h"
#include "proxy.h"
#include "sidecar.h"

/* Everything the loop owns. */
static struct {
	struct conn *conns; /* every live connection */
	struct conn *dead;  /* closed during this batch, freed after it */
	struct ev_tag in_tag, shutdown_tag;
	struct ev_tag *out_tags;
	size_t nconns;
} L;

int64_t
mesh__now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
now_ms(void)
{
	return mesh__now_us() / 1000;
}

/* --- buffers --- */

static int
buf_reserve(struct buf *b, size_t more)
{
	if (b->off > 0 && (b->len == 0 || b->off + b->len + more > b->cap)) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 16384;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

int
mesh__buf_append(struct buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return -1;
	memcpy(b->p + b->off + b->len, data, n);
	b->len += n;
	return 0;
}

void
mesh__buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0) {
		b->off = 0;
		if (b->cap > MESH_BUF_KEEP) {
			free(b->p);
			b->p = NULL;
			b->cap = 0;
		}
	}
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* --- sockets --- */

static void
sock_tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int
listen_on(const char *addr, int *port_out)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (mesh_addr_parse(addr, &sa, &len) != 0)
		return -1;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 512) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	getsockname(fd, (struct sockaddr *)&bound, &bl);
	*port_out = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                              : ((struct sockaddr_in *)&bound)->sin_port);
	return fd;
}

static void
addr_text(const struct sockaddr_storage *sa, char *out, size_t n)
{
	char host[64] = "?";
	int port = 0;
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		port = ntohs(s->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		port = ntohs(s->sin6_port);
	}
	snprintf(out, n, "%s:%d", host, port);
}

/* --- epoll interest --- */

static void
end_update(struct mesh *m, struct end *e)
{
	if (e->fd < 0)
		return;
	uint32_t want = 0;
	struct end *other = e == &e->c->down ? &e->c->up : &e->c->down;
	if (e->connecting) {
		want = EPOLLOUT;
	} else if (e->handshaking) {
		want = (uint32_t)e->hs_want;
	} else if (e->ready) {
		if (!e->rd_eof && other->out.len < MESH_OUT_HIGH)
			want |= EPOLLIN;
		if (e->out.len > 0 || e->want_wr_for_rd)
			want |= EPOLLOUT;
		if (e->want_rd_for_wr)
			want |= EPOLLIN;
	}
	if (want == e->mask)
		return;
	struct epoll_event ev = { .events = want, .data.ptr = &e->tag };
	epoll_ctl(m->epfd, EPOLL_CTL_MOD, e->fd, &ev);
	e->mask = want;
}

static int
end_register(struct mesh *m, struct end *e)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &e->tag };
	e->mask = 0;
	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, e->fd, &ev);
}

/* --- connections --- */

static void
end_release(struct end *e, bool clean)
{
	if (e->ssl) {
		if (clean && e->ready)
			SSL_shutdown(e->ssl); /* best effort: sends close_notify, never waits */
		SSL_free(e->ssl);
		e->ssl = NULL;
	}
	if (e->fd >= 0) {
		close(e->fd);
		e->fd = -1;
	}
	buf_free(&e->in);
	buf_free(&e->out);
}

void
mesh__conn_close(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	struct mesh *m = c->m;
	struct mesh_dir_metrics *dm = &m->metrics.dir[c->dir];
	if (why)
		sb_log_kv(SB_LOG_DEBUG, "connection closed", "direction",
		          c->dir == MESH_IN ? "inbound" : "outbound", "remote", c->remote, "peer",
		          c->peer_id[0] ? c->peer_id : NULL, "reason", why, NULL);
	end_release(&c->down, true);
	end_release(&c->up, true);
	sb_series_inc(dm->close);
	sb_series_add(dm->open_conns, -1);
	sb_series_observe(dm->duration, (double)(now_ms() - c->opened_ms));
	atomic_fetch_sub(&m->conns[c->dir], 1);
	/* Off the live list, onto the dead one (freed after the current batch of events). */
	if (c->prev)
		c->prev->next = c->next;
	else
		L.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	L.nconns--;
	c->next = L.dead;
	c->prev = NULL;
	L.dead = c;
}

static struct conn *
conn_new(struct mesh *m, int dir, int fd, const struct sockaddr_storage *sa)
{
	struct conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->m = m;
	c->dir = dir;
	c->down = (struct end){ .tag = { EV_END, NULL, 0 }, .c = c, .fd = fd };
	c->up = (struct end){ .tag = { EV_END, NULL, 0 }, .c = c, .fd = -1 };
	c->down.tag.ptr = &c->down;
	c->up.tag.ptr = &c->up;
	addr_text(sa, c->remote, sizeof c->remote);
	c->opened_ms = c->last_ms = now_ms();
	c->next = L.conns;
	if (L.conns)
		L.conns->prev = c;
	L.conns = c;
	L.nconns++;
	struct mesh_dir_metrics *dm = &m->metrics.dir[dir];
	sb_series_inc(dm->open);
	sb_series_inc(dm->open_conns);
	atomic_fetch_add(&m->conns[dir], 1);
	return c;
}

/* mesh__conn_malformed closes c after a protocol violation by one of its peers. */
void
mesh__conn_malformed(struct conn *c, const char *what)
{
	sb_series_inc(c->m->metrics.dir[c->dir].malformed);
	sb_log_kv(SB_LOG_WARN, "malformed SP traffic, connection closed", "direction",
	          c->dir == MESH_IN ? "inbound" : "outbound", "remote", c->remote, "peer",
	          c->peer_id[0] ? c->peer_id : NULL, "what", what, NULL);
	mesh__conn_close(c, what);
}

/* --- the outbound side's upstream choice and ejection --- */

static struct mesh_endpoint *
upstream_pick(struct mesh_upstream *u, int64_t now)
{
	for (size_t i = 0; i < u->neps; i++) {
		struct mesh_endpoint *e = &u->eps[(u->next + i) % u->neps];
		if (e->ejected_until <= now) {
			u->next = (u->next + i + 1) % u->neps;
			return e;
		}
	}
	return NULL;
}

static void
upstream_result(struct mesh *m, struct mesh_upstream *u, struct mesh_endpoint *e, bool ok,
                const char *why)
{
	if (ok) {
		if (e->failures >= (uint32_t)m->cfg.eject_failures)
			sb_log_kv(SB_LOG_INFO, "upstream sidecar back in rotation", "upstream",
			          u->name, "addr", e->addr, NULL);
		e->failures = 0;
		sb_backoff_reset(&e->backoff);
		bool any = false;
		for (size_t i = 0; i < u->neps; i++)
			any |= u->eps[i].ejected_until > now_ms();
		sb_series_set(u->ejected_gauge, any ? 1 : 0);
		return;
	}
	e->failures++;
	if (e->failures < (uint32_t)m->cfg.eject_failures)
		return;
	/* Ejected for a random time up to a ceiling that doubles per ejection (full jitter), at
	 * least 10 ms; after it one more failure ejects again, a success resets everything. */
	uint32_t ms = sb_backoff_next(&e->backoff);
	if (ms < 10)
		ms = 10;
	e->ejected_until = now_ms() + ms;
	e->failures = (uint32_t)m->cfg.eject_failures - 1;
	sb_series_inc(u->ejections);
	sb_series_set(u->ejected_gauge, 1);
	char t[24];
	snprintf(t, sizeof t, "%u", ms);
	sb_log_kv(SB_LOG_WARN, "upstream sidecar ejected", "upstream", u->name, "addr", e->addr,
	          "for_ms", t, "reason", why, NULL);
}

/* --- TLS helpers --- */

/* tls_step maps the result r of an SSL call on e to: 1 done, 0 wait (e's wants set), -1 fail,
 * -2 clean end of stream. */
static int
tls_step(struct end *e, int r, bool handshake, bool reading)
{
	if (r > 0)
		return 1;
	int err = SSL_get_error(e->ssl, r);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		if (handshake)
			e->hs_want = EPOLLIN;
		else if (!reading)
			e->want_rd_for_wr = true;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		if (handshake)
			e->hs_want = EPOLLOUT;
		else if (reading)
			e->want_wr_for_rd = true;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -2;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && !handshake)
			return -2; /* TCP end without close_notify */
		return -1;
	default:
		return -1;
	}
}

/* --- reading, framing, writing --- */

static void conn_up_ready(struct conn *c);

/* end_read reads what e has for us. Returns true when bytes arrived. */
static bool
end_read(struct conn *c, struct end *e, struct end *other)
{
	bool got = false;
	size_t limit = (size_t)c->m->cfg.max_frame + 16;
	if (!e->ready || e->rd_eof || e->failed)
		return false;
	if (e->tls)
		e->want_wr_for_rd = false;
	while (other->out.len < MESH_OUT_HIGH && e->in.len < limit) {
		if (buf_reserve(&e->in, MESH_READ_CHUNK) != 0) {
			e->failed = true;
			break;
		}
		uint8_t *dst = e->in.p + e->in.off + e->in.len;
		ssize_t n;
		if (e->tls) {
			size_t got_n = 0;
			int r = SSL_read_ex(e->ssl, dst, MESH_READ_CHUNK, &got_n);
			int s = tls_step(e, r, false, true);
			if (s == 0)
				break;
			if (s == -2) {
				e->rd_eof = true;
				break;
			}
			if (s < 0) {
				ERR_clear_error();
				e->failed = true;
				break;
			}
			n = (ssize_t)got_n;
			e->in.len += (size_t)n;
			sb_series_add(c->m->metrics.dir[c->dir].rd, (double)n);
			got = true;
			/* Level-triggered: what the socket still holds is reported again; only
			 * what OpenSSL has buffered (read-ahead) must be taken now. */
			if (!SSL_has_pending(e->ssl))
				break;
			continue;
		} else {
			n = read(e->fd, dst, MESH_READ_CHUNK);
			if (n == 0) {
				e->rd_eof = true;
				break;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				e->failed = true;
				break;
			}
		}
		e->in.len += (size_t)n;
		sb_series_add(c->m->metrics.dir[c->dir].rd, (double)n);
		got = true;
		if ((size_t)n < MESH_READ_CHUNK)
			break; /* drained for now; epoll says when there is more */
	}
	if (got)
		c->last_ms = now_ms();
	return got;
}

static bool
end_write(struct conn *c, struct end *e)
{
	bool put = false;
	if (!e->ready || e->failed)
		return false;
	if (e->tls)
		e->want_rd_for_wr = false;
	while (e->out.len > 0) {
		const uint8_t *src = e->out.p + e->out.off;
		size_t n;
		if (e->tls) {
			int r = SSL_write_ex(e->ssl, src, e->out.len, &n);
			int s = tls_step(e, r, false, false);
			if (s == 0)
				break;
			if (s < 0) {
				ERR_clear_error();
				e->failed = true;
				break;
			}
		} else {
			ssize_t w = write(e->fd, src, e->out.len);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				e->failed = true;
				break;
			}
			n = (size_t)w;
		}
		mesh__buf_consume(&e->out, n);
		sb_series_add(c->m->metrics.dir[c->dir].wr, (double)n);
		put = true;
	}
	if (put)
		c->last_ms = now_ms();
	return put;
}

/* end_buffered tells whether OpenSSL holds bytes of e that epoll cannot report. */
static bool
end_buffered(const struct end *e)
{
	return e->tls && e->ssl && e->ready && SSL_has_pending(e->ssl);
}

/* conn_pump moves everything that can move now, then updates both ends' interest. rd_down
 * and rd_up say which ends epoll reported readable; the others are read only when OpenSSL
 * buffers bytes of theirs. */
static void
conn_pump(struct conn *c, bool rd_down, bool rd_up)
{
	struct end *d = &c->down, *u = &c->up;
	for (int round = 0; round < 4 && !c->closed; round++) {
		bool moved = false;
		if (rd_down || end_buffered(d))
			moved |= end_read(c, d, u);
		if (rd_up || end_buffered(u))
			moved |= end_read(c, u, d);
		rd_down = rd_up = false;
		/* Requests are cut only once up is usable: our SP header to down goes first. */
		if (u->ready && d->in.len > 0 && mesh__frames_requests(c) != 0)
			return;
		if (u->in.len > 0 && mesh__frames_responses(c) != 0)
			return;
		moved |= end_write(c, u);
		moved |= end_write(c, d);
		if (d->failed || u->failed) {
			mesh__conn_close(c, d->failed ? "downstream error" : "upstream error");
			return;
		}
		if (!moved || !(end_buffered(d) || end_buffered(u)))
			break;
	}
	/* One side finished: what it said has been forwarded as far as the socket took it. */
	if (d->rd_eof || u->rd_eof) {
		mesh__conn_close(c, d->rd_eof ? "downstream closed" : "upstream closed");
		return;
	}
	end_update(c->m, d);
	end_update(c->m, u);
}

/* --- establishing --- */

static void
conn_up_ready(struct conn *c)
{
	uint8_t h[MESH_SP_HDR_LEN];
	c->up.connecting = c->up.handshaking = false;
	c->up.ready = true;
	c->deadline_ms = 0;
	mesh_sp_header_write(h, MESH_SP_REQ0);
	mesh__buf_append(&c->up.out, h, sizeof h);
	mesh_sp_header_write(h, MESH_SP_REP0);
	mesh__buf_append(&c->down.out, h, sizeof h);
}

/* conn_dial starts the non-blocking connect of c's up end to sa. Returns 0 or -1. */
static int
conn_dial(struct conn *c, const struct sockaddr_storage *sa, socklen_t len)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sock_tune(fd);
	if (connect(fd, (const struct sockaddr *)sa, len) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	c->up.fd = fd;
	c->up.connecting = true;
	c->deadline_ms = now_ms() + c->m->cfg.connect_timeout_ms;
	if (end_register(c->m, &c->up) != 0)
		return -1;
	end_update(c->m, &c->up);
	return 0;
}

static void
up_failed(struct conn *c, const char *why)
{
	if (c->dir == MESH_OUT && c->ep)
		upstream_result(c->m, c->u, c->ep, false, why);
	sb_log_kv(SB_LOG_WARN,
	          c->dir == MESH_OUT ? "cannot reach upstream sidecar"
	                             : "cannot reach the local service",
	          "upstream", c->dir == MESH_OUT ? c->u->name : c->m->cfg.service, "addr",
	          c->dir == MESH_OUT ? c->ep->addr : c->m->cfg.target, "reason", why, NULL);
	mesh__conn_close(c, why);
}

/* inbound_identity checks the caller of a finished inbound handshake. Returns 0 or -1 (c
 * closed). */
static int
inbound_identity(struct conn *c)
{
	struct mesh *m = c->m;
	struct mesh_id id;
	if (mesh_tls_peer_id(c->down.ssl, c->peer_id, sizeof c->peer_id) != 0 ||
	    mesh_id_parse(c->peer_id, strlen(c->peer_id), &id) != 0 ||
	    strcmp(id.td, m->cfg.trust_domain) != 0 || strcmp(id.ns, m->cfg.ns) != 0 ||
	    !mesh_policy_caller(&m->policy, id.sa)) {
		sb_series_inc(m->metrics.deny_identity);
		sb_log_kv(SB_LOG_WARN, "caller refused: identity not allowed", "caller",
		          c->peer_id[0] ? c->peer_id : "(no SPIFFE ID)", "callee", m->tls.self_id,
		          "remote", c->remote, NULL);
		mesh__conn_close(c, "identity refused");
		return -1;
	}
	snprintf(c->caller, sizeof c->caller, "%s", id.sa);
	sb_series_inc(m->metrics.authz_allow);
	return 0;
}

/* handshake_refused counts and logs an inbound handshake that failed. */
static void
handshake_refused(struct conn *c)
{
	struct mesh *m = c->m;
	unsigned long e = ERR_peek_error();
	long vr = SSL_get_verify_result(c->down.ssl);
	struct sb_series *s = m->metrics.deny_tls;
	const char *reason = "tls_handshake";
	if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		s = m->metrics.deny_no_cert;
		reason = "no_client_cert";
	} else if (vr != X509_V_OK) {
		s = m->metrics.deny_untrusted;
		reason = "untrusted_cert";
	}
	char detail[160] = "";
	if (e)
		ERR_error_string_n(e, detail, sizeof detail);
	if (vr != X509_V_OK)
		snprintf(detail, sizeof detail, "%s", X509_verify_cert_error_string(vr));
	ERR_clear_error();
	sb_series_inc(s);
	sb_log_kv(SB_LOG_WARN, "caller refused: TLS handshake failed", "reason", reason, "detail",
	          detail, "callee", m->tls.self_id, "remote", c->remote, NULL);
}

static void
end_event(struct mesh *m, struct end *e, uint32_t events)
{
	struct conn *c = e->c;
	if (c->closed)
		return;
	if (e->connecting) {
		int err = 0;
		socklen_t l = sizeof err;
		if (getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0 ||
		    (events & EPOLLERR)) {
			up_failed(c, err ? strerror(err) : "connect failed");
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		e->connecting = false;
		if (c->dir == MESH_IN) {
			conn_up_ready(c);
		} else {
			e->ssl = SSL_new(m->tls.client);
			if (e->ssl == NULL || SSL_set_fd(e->ssl, e->fd) != 1) {
				up_failed(c, "out of memory");
				return;
			}
			e->tls = true;
			SSL_set_connect_state(e->ssl);
			e->handshaking = true;
		}
	}
	if (e->handshaking) {
		ERR_clear_error();
		int s = tls_step(e, SSL_do_handshake(e->ssl), true, false);
		if (s == 0) {
			end_update(m, e);
			return;
		}
		if (s < 0) {
			if (e == &c->down) {
				handshake_refused(c);
				mesh__conn_close(c, "handshake failed");
			} else {
				char d[160] = "handshake failed";
				long vr = SSL_get_verify_result(e->ssl);
				if (vr != X509_V_OK)
					snprintf(d, sizeof d, "server certificate: %s",
					         X509_verify_cert_error_string(vr));
				ERR_clear_error();
				up_failed(c, d);
			}
			return;
		}
		e->handshaking = false;
		if (e == &c->down) {
			/* Inbound caller authenticated: check it, then dial the service. */
			e->ready = true;
			if (inbound_identity(c) != 0)
				return;
			if (conn_dial(c, &m->target, m->target_len) != 0) {
				up_failed(c, strerror(errno));
				return;
			}
		} else {
			char id[MESH_ID_MAX] = "";
			if (mesh_tls_peer_id(e->ssl, id, sizeof id) != 0 ||
			    strcmp(id, c->u->expect_id) != 0) {
				sb_log_kv(SB_LOG_ERROR, "upstream sidecar has the wrong identity",
				          "upstream", c->u->name, "expected", c->u->expect_id,
				          "got", id[0] ? id : "(none)", NULL);
				up_failed(c, "wrong server identity");
				return;
			}
			snprintf(c->peer_id, sizeof c->peer_id, "%s", id);
			upstream_result(m, c->u, c->ep, true, NULL);
			conn_up_ready(c);
		}
	}
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		mesh__conn_close(c, "socket error");
		return;
	}
	bool rd = (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0;
	conn_pump(c, e == &c->down ? rd : false, e == &c->up ? rd : false);
}

static void
accept_all(struct mesh *m, int lfd, int dir, struct mesh_upstream *u)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof sa;
		int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sb_log_kv(SB_LOG_ERROR, "accept: out of file descriptors", NULL);
			return;
		}
		if (L.nconns >= (size_t)m->cfg.max_conns) {
			sb_log_kv(SB_LOG_WARN, "connection refused: SB_MESH_MAX_CONNS reached",
			          NULL);
			close(fd);
			continue;
		}
		sock_tune(fd);
		struct conn *c = conn_new(m, dir, fd, &sa);
		if (c == NULL) {
			close(fd);
			continue;
		}
		if (end_register(m, &c->down) != 0) {
			mesh__conn_close(c, "epoll");
			continue;
		}
		if (dir == MESH_IN) {
			c->down.ssl = SSL_new(m->tls.server);
			if (c->down.ssl == NULL || SSL_set_fd(c->down.ssl, fd) != 1) {
				mesh__conn_close(c, "out of memory");
				continue;
			}
			c->down.tls = true;
			SSL_set_accept_state(c->down.ssl);
			c->down.handshaking = true;
			c->down.hs_want = EPOLLIN;
			c->deadline_ms = now_ms() + m->cfg.handshake_timeout_ms;
			end_update(m, &c->down);
			continue;
		}
		/* Outbound: the local service is connected; the caller's bytes wait until the
		 * upstream sidecar is reached (down is "ready" for reading, frames are cut later).
		 */
		c->u = u;
		c->down.ready = true;
		c->ep = upstream_pick(u, now_ms());
		if (c->ep == NULL) {
			sb_log_kv(SB_LOG_WARN, "upstream refused: every sidecar is ejected",
			          "upstream", u->name, NULL);
			mesh__conn_close(c, "all ejected");
			continue;
		}
		if (conn_dial(c, &c->ep->sa, c->ep->salen) != 0) {
			up_failed(c, strerror(errno));
			continue;
		}
		end_update(m, &c->down);
	}
}

static void
timers(struct mesh *m, int64_t now)
{
	for (struct conn *c = L.conns, *next; c; c = next) {
		next = c->next;
		if (c->deadline_ms && now >= c->deadline_ms) {
			if (c->down.handshaking) {
				sb_series_inc(m->metrics.deny_tls);
				sb_log_kv(SB_LOG_WARN, "caller refused: TLS handshake timed out",
				          "remote", c->remote, NULL);
				mesh__conn_close(c, "handshake timeout");
			} else {
				up_failed(c, "connect timeout");
			}
		} else if (now - c->last_ms >= m->cfg.idle_timeout_ms) {
			mesh__conn_close(c, "idle timeout");
		}
	}
}

static void
reload_check(struct mesh *m)
{
	if (!mesh_tls_changed(&m->tls))
		return;
	if (mesh_tls_load(&m->tls) == 0) {
		sb_series_inc(m->metrics.reload_ok);
		sb_log_kv(SB_LOG_INFO, "identity reloaded; open connections keep theirs", NULL);
	} else {
		sb_series_inc(m->metrics.reload_fail);
	}
}

static void
free_dead(void)
{
	while (L.dead) {
		struct conn *c = L.dead;
		L.dead = c->next;
		for (size_t i = 0; i < c->npend; i++)
			free(c->pend[i].inner);
		free(c->pend);
		free(c);
	}
}

/* drain_start begins a graceful stop: no new connection is accepted (listeners closed,
 * /ready fails), connections finish the requests they carry. Returns the deadline. */
static int64_t
drain_start(struct mesh *m)
{
	atomic_store(&m->draining, true);
	if (sb_shutdown_fd() >= 0) /* readable for good from now on: stop watching it */
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, sb_shutdown_fd(), NULL);
	if (m->in_fd >= 0) {
		close(m->in_fd);
		m->in_fd = -1;
	}
	for (size_t i = 0; i < m->nups; i++) {
		if (m->out_fds[i] >= 0) {
			close(m->out_fds[i]);
			m->out_fds[i] = -1;
		}
	}
	size_t busy = 0;
	for (struct conn *c = L.conns; c; c = c->next)
		busy += c->npend;
	char n[24], r[24];
	snprintf(n, sizeof n, "%zu", L.nconns);
	snprintf(r, sizeof r, "%zu", busy);
	sb_log_kv(SB_LOG_INFO, "draining: finishing requests in flight", "connections", n,
	          "requests", r, NULL);
	return now_ms() + m->cfg.grace_ms;
}

/* drain_step closes every connection with no request in flight and nothing left to write.
 * Returns true when none is left. */
static bool
drain_step(void)
{
	for (struct conn *c = L.conns, *next; c; c = next) {
		next = c->next;
		if (c->npend == 0 && c->down.out.len == 0 && c->up.out.len == 0)
			mesh__conn_close(c, "drained");
	}
	free_dead();
	return L.conns == NULL;
}

int
mesh_proxy_run(struct mesh *m)
{
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0)
		return -1;
	int ret = -1;
	L.out_tags = calloc(m->nups ? m->nups : 1, sizeof *L.out_tags);
	if (L.out_tags == NULL)
		goto done;
	struct epoll_event ev = { .events = EPOLLIN };
	if (m->in_fd >= 0) {
		L.in_tag = (struct ev_tag){ EV_LISTEN_IN, NULL, 0 };
		ev.data.ptr = &L.in_tag;
		epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->in_fd, &ev);
	}
	for (size_t i = 0; i < m->nups; i++) {
		L.out_tags[i] = (struct ev_tag){ EV_LISTEN_OUT, &m->ups[i], i };
		ev.data.ptr = &L.out_tags[i];
		epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->out_fds[i], &ev);
	}
	L.shutdown_tag = (struct ev_tag){ EV_SHUTDOWN, NULL, 0 };
	ev.data.ptr = &L.shutdown_tag;
	if (sb_shutdown_fd() >= 0)
		epoll_ctl(m->epfd, EPOLL_CTL_ADD, sb_shutdown_fd(), &ev);
	atomic_store(&m->running, true);
	int64_t next_tick = now_ms() + MESH_TICK_MS, next_reload = now_ms() + m->cfg.reload_ms;
	int64_t drain_until = 0;
	struct epoll_event evs[128];
	for (;;) {
		if (sb_shutdown_requested() && drain_until == 0)
			drain_until = drain_start(m);
		if (drain_until && (drain_step() || now_ms() >= drain_until))
			break;
		int64_t now = now_ms();
		int wait = next_tick > now ? (int)(next_tick - now) : 0;
		if (drain_until && wait > 10)
			wait = 10;
		int n = epoll_wait(m->epfd, evs, 128, wait);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct ev_tag *t = evs[i].data.ptr;
			switch (t->kind) {
			case EV_LISTEN_IN:
				accept_all(m, m->in_fd, MESH_IN, NULL);
				break;
			case EV_LISTEN_OUT:
				accept_all(m, m->out_fds[t->idx], MESH_OUT, t->ptr);
				break;
			case EV_END:
				end_event(m, t->ptr, evs[i].events);
				break;
			case EV_SHUTDOWN:
				break;
			}
		}
		free_dead();
		now = now_ms();
		if (now >= next_tick) {
			timers(m, now);
			free_dead();
			next_tick = now + MESH_TICK_MS;
		}
		if (now >= next_reload) {
			reload_check(m);
			next_reload = now + m->cfg.reload_ms;
		}
	}
	ret = 0;
	atomic_store(&m->running, false);
	if (L.nconns > 0) {
		char n[24];
		snprintf(n, sizeof n, "%zu", L.nconns);
		sb_log_kv(SB_LOG_WARN, "grace period over: closing connections still busy",
		          "connections", n, NULL);
	}
	while (L.conns)
		mesh__conn_close(L.conns, "shutdown");
	free_dead();
done:
	free(L.out_tags);
	L.out_tags = NULL;
	close(m->epfd);
	m->epfd = -1;
	return ret;
}

/* mesh_listen opens the inbound and outbound listeners. Returns 0 or -1 (logged). */
int
mesh_listen(struct mesh *m)
{
	m->in_fd = -1;
	if (m->cfg.inbound[0]) {
		m->in_fd = listen_on(m->cfg.inbound, &m->in_port);
		if (m->in_fd < 0) {
			sb_log_kv(SB_LOG_ERROR, "cannot listen", "addr", m->cfg.inbound, "error",
			          strerror(errno), NULL);
			return -1;
		}
	}
	m->out_fds = calloc(m->nups ? m->nups : 1, sizeof *m->out_fds);
	m->out_ports = calloc(m->nups ? m->nups : 1, sizeof *m->out_ports);
	if (m->out_fds == NULL || m->out_ports == NULL)
		return -1;
	for (size_t i = 0; i < m->nups; i++) {
		m->out_fds[i] = listen_on(m->ups[i].listen, &m->out_ports[i]);
		if (m->out_fds[i] < 0) {
			sb_log_kv(SB_LOG_ERROR, "cannot listen", "addr", m->ups[i].listen, "error",
			          strerror(errno), NULL);
			return -1;
		}
	}
	return 0;
}
