/* sb_http_testcli.h: the HTTP/1.1 client of the sb_http unit tests (sb_http_test.c,
 * sb_http_tls_test.c, sb_http_stream_test.c), written once. A blocking socket to 127.0.0.1 with
 * 3 s receive and send timeouts, plain or TLS (an OpenSSL client: optionally verifying the
 * server against a CA file for IP 127.0.0.1, with a minimum and maximum protocol version and an
 * ALPN list); it sends bytes, reads one response at a time (head, status and a body of any
 * length by Content-Length, or the head only), and tells whether the server closed the
 * connection within 3 s. Failures of the client itself are cmocka assertions. Test code only;
 * the header includes what it uses. */
#ifndef SB_HTTP_TESTCLI_H
#define SB_HTTP_TESTCLI_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sb_http.h"

#define SB_TESTCLI_TIMEOUT_S 3
#define SB_TESTCLI_BUF_MIN   65536

/* sb_testcli_opts: how to connect. All zero is plain HTTP. For TLS: cafile, when not NULL, is
 * the CA the server is verified against (for IP 127.0.0.1; NULL trusts any server); min_version
 * and max_version bound the protocol (e.g. TLS1_3_VERSION; 0: no bound); alpn is the
 * wire-format ALPN list offered (NULL: none). */
struct sb_testcli_opts {
	bool tls;
	const char *cafile;
	int min_version, max_version;
	const char *alpn;
	size_t alpn_len;
};

struct sb_testcli {
	int fd;
	SSL_CTX *ctx; /* NULL when plain */
	SSL *ssl;     /* NULL when plain */
	char *buf;    /* bytes received and not yet consumed, NUL-terminated; grows as needed */
	size_t len, cap;
	bool timed_out; /* the last sb_testcli_fill ended by the receive timeout */
};

/* sb_testresp: one response. body is NUL-terminated; it is inside the struct when short and
 * malloc'd when long (sb_testresp_free releases it; a no-op for short ones). */
struct sb_testresp {
	int status;
	char head[4096]; /* status line and headers, through the empty line */
	char *body;
	size_t body_len;
	char small[8192];
};

/* sb_testcli_tcp connects a blocking TCP socket to 127.0.0.1:port with the 3 s timeouts. */
static inline int
sb_testcli_tcp(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { .tv_sec = SB_TESTCLI_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static inline void
sb_testcli_close(struct sb_testcli *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c->buf);
	free(c);
}

/* sb_testcli_open_ex connects to s as o says. Returns NULL if the TLS handshake fails (the
 * connection is closed then); anything else that fails is an assertion. */
static inline struct sb_testcli *
sb_testcli_open_ex(const struct sb_http_server *s, const struct sb_testcli_opts *o)
{
	struct sb_testcli *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->cap = SB_TESTCLI_BUF_MIN;
	c->buf = malloc(c->cap);
	assert_non_null(c->buf);
	c->buf[0] = '\0';
	if (o->tls) {
		c->ctx = SSL_CTX_new(TLS_client_method());
		assert_non_null(c->ctx);
		if (o->min_version)
			assert_int_equal(SSL_CTX_set_min_proto_version(c->ctx, o->min_version), 1);
		if (o->max_version)
			assert_int_equal(SSL_CTX_set_max_proto_version(c->ctx, o->max_version), 1);
		if (o->cafile) {
			assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, o->cafile, NULL), 1);
			SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
		}
	}
	c->fd = sb_testcli_tcp(sb_http_server_port(s));
	if (!o->tls)
		return c;
	c->ssl = SSL_new(c->ctx);
	assert_non_null(c->ssl);
	if (o->cafile)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1"),
		                 1);
	if (o->alpn)
		assert_int_equal(SSL_set_alpn_protos(c->ssl, (const unsigned char *)o->alpn,
		                                     (unsigned)o->alpn_len),
		                 0);
	assert_int_equal(SSL_set_fd(c->ssl, c->fd), 1);
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		sb_testcli_close(c);
		return NULL;
	}
	return c;
}

/* sb_testcli_open connects plain or with TLS 1.3 (trusting the server, no ALPN); the
 * handshake must succeed. */
static inline struct sb_testcli *
sb_testcli_open(const struct sb_http_server *s, bool tls)
{
	struct sb_testcli_opts o = { .tls = tls, .min_version = tls ? TLS1_3_VERSION : 0 };
	struct sb_testcli *c = sb_testcli_open_ex(s, &o);
	assert_non_null(c);
	return c;
}

/* sb_testcli_send sends all n bytes (an assertion fails otherwise). */
static inline void
sb_testcli_send(struct sb_testcli *c, const void *p, size_t n)
{
	if (c->ssl != NULL) {
		size_t put = 0;
		assert_int_equal(SSL_write_ex(c->ssl, p, n, &put), 1);
		assert_int_equal(put, n);
		return;
	}
	assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

#define SB_TESTCLI_SEND(c, s) sb_testcli_send((c), (s), strlen(s))

/* sb_testcli_fill receives more bytes into c->buf; returns how many, 0 when the server ended
 * the connection (EOF, or TLS close_notify), -1 on an error or the receive timeout
 * (c->timed_out tells which; errno is ECONNRESET for a reset plain connection). */
static inline ssize_t
sb_testcli_fill(struct sb_testcli *c)
{
	if (c->cap - c->len < SB_TESTCLI_BUF_MIN / 4) {
		char *nb = realloc(c->buf, c->cap * 2);
		assert_non_null(nb);
		c->buf = nb;
		c->cap *= 2;
	}
	ssize_t n;
	c->timed_out = false;
	if (c->ssl != NULL) {
		size_t got = 0;
		if (SSL_read_ex(c->ssl, c->buf + c->len, c->cap - c->len - 1, &got) == 1) {
			n = (ssize_t)got;
		} else {
			int e = SSL_get_error(c->ssl, 0);
			int sys = errno;
			n = e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
			c->timed_out =
			    e == SSL_ERROR_WANT_READ ||
			    (e == SSL_ERROR_SYSCALL && (sys == EAGAIN || sys == EWOULDBLOCK));
			ERR_clear_error();
			errno = sys;
		}
	} else {
		n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		c->timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
	if (n > 0) {
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
	return n;
}

static inline void
sb_testresp_free(struct sb_testresp *r)
{
	if (r->body != r->small)
		free(r->body);
	r->body = r->small;
	r->small[0] = '\0';
	r->body_len = 0;
}

/* sb_testcli_read reads one response: its head, and unless head_only the body of its
 * Content-Length (none without one). Returns 0, or -1 when the connection ended or timed out
 * first. A long body must be released with sb_testresp_free. */
static inline int
sb_testcli_read(struct sb_testcli *c, struct sb_testresp *r, bool head_only)
{
	memset(r, 0, sizeof(*r));
	r->body = r->small;
	char *e;
	while ((e = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
		if (sb_testcli_fill(c) <= 0)
			return -1;
	}
	size_t hlen = (size_t)(e - c->buf) + 4;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->status = atoi(r->head + 9);
	const char *cl = strcasestr(r->head, "\r\ncontent-length:");
	size_t blen = (cl && !head_only) ? strtoul(cl + 17, NULL, 10) : 0;
	while (c->len < hlen + blen) {
		if (sb_testcli_fill(c) <= 0)
			return -1;
	}
	if (blen >= sizeof(r->small)) {
		r->body = malloc(blen + 1);
		assert_non_null(r->body);
	}
	memcpy(r->body, c->buf + hlen, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	c->buf[c->len] = '\0';
	return 0;
}

/* sb_testcli_closed tells whether the server ended the connection (EOF, a reset, or for TLS
 * a close_notify or a failed read) within 3 s, discarding any bytes before that; false when
 * the 3 s pass first. */
static inline bool
sb_testcli_closed(struct sb_testcli *c)
{
	for (;;) {
		c->len = 0;
		ssize_t n = sb_testcli_fill(c);
		if (n == 0)
			return true;
		if (n < 0)
			return !c->timed_out && (c->ssl != NULL || errno == ECONNRESET);
	}
}

#endif
