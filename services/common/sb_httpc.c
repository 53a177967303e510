/* sb_httpc.c: the blocking HTTP/1.1 client's I/O (see sb_httpc.h): URL, resolve and check each
 * address, connect, TLS (OpenSSL, verified), send the request, read and frame the response, all
 * under one deadline. */
#include "sb_httpc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_util_time.h"

#define HTTPC_IO 16384 /* bytes per recv and per body_read */

/* httpc_dns_name tells whether host is a DNS name or IPv4 address: labels of letters, digits
 * and inner '-', 1-63 bytes, joined by single dots (one may end the name), 253 bytes in all. */
static bool
httpc_dns_name(const char *host)
{
	size_t len = strlen(host), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		if (c == '.') {
			if (label == 0 || host[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return label == 0 ? len > 1 : host[len - 1] != '-';
}

int
sb_httpc_url_parse(const char *url, struct sb_httpc_url *out)
{
	memset(out, 0, sizeof(*out));
	if (url == NULL)
		return SB_EINVAL;
	size_t skip = strncasecmp(url, "http://", 7) == 0    ? 7
	              : strncasecmp(url, "https://", 8) == 0 ? 8
	                                                     : 0;
	if (skip == 0)
		return SB_EINVAL;
	out->tls = skip == 8;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
			return SB_EINVAL;
	const char *hs = url + skip, *pe = hs + strcspn(hs, "/?"), *he, *ps = NULL;
	if (memchr(hs, '@', (size_t)(pe - hs)) != NULL)
		return SB_EINVAL;
	if (*hs == '[') {
		he = memchr(hs, ']', (size_t)(pe - hs));
		if (he == NULL)
			return SB_EINVAL;
		if (he + 1 < pe && he[1] != ':')
			return SB_EINVAL;
		ps = he + 1 < pe ? he + 2 : NULL;
		hs++;
		out->v6 = true;
	} else {
		he = memchr(hs, ':', (size_t)(pe - hs));
		if (he != NULL)
			ps = he + 1;
		else
			he = pe;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(out->host))
		return SB_EINVAL;
	memcpy(out->host, hs, (size_t)(he - hs));
	out->host[he - hs] = '\0';
	if (out->v6) {
		struct in6_addr a;
		if (inet_pton(AF_INET6, out->host, &a) != 1)
			return SB_EINVAL;
	} else if (!httpc_dns_name(out->host)) {
		return SB_EINVAL;
	}
	if (ps != NULL) {
		size_t pl = (size_t)(pe - ps);
		long port = 0;
		if (pl == 0 || pl > 5)
			return SB_EINVAL;
		for (size_t i = 0; i < pl; i++) {
			if (!isdigit((unsigned char)ps[i]))
				return SB_EINVAL;
			port = port * 10 + (ps[i] - '0');
		}
		if (port < 1 || port > 65535)
			return SB_EINVAL;
		snprintf(out->port, sizeof(out->port), "%ld", port);
	} else {
		snprintf(out->port, sizeof(out->port), "%s", out->tls ? "443" : "80");
	}
	out->target = *pe == '/' ? pe : "/";
	if (*pe == '?')
		return SB_EINVAL; /* "http://h?q": a target must start with '/' */
	return 0;
}

/* What one call carries between its steps. */
struct httpc {
	const struct sb_httpc_req *req;
	struct sb_httpc_resp *resp;
	int64_t deadline;
	int fd;
	SSL_CTX *ctx; /* https only */
	SSL *ssl;
	size_t max_body;
};

static int httpc_fail(struct httpc *h, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
httpc_fail(struct httpc *h, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->resp->error, sizeof(h->resp->error), fmt, ap);
	va_end(ap);
	return rv;
}

/* httpc_wait polls h->fd for ev until the deadline. Returns 0 or SB_ETIMEDOUT/SB_EIO. */
static int
httpc_wait(struct httpc *h, short ev)
{
	for (;;) {
		int64_t left = h->deadline - sb_time_mono_ms();
		if (left <= 0)
			return httpc_fail(h, SB_ETIMEDOUT, "timed out");
		struct pollfd p = { .fd = h->fd, .events = ev };
		int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			continue; /* the loop sees the deadline */
		if (errno != EINTR)
			return httpc_fail(h, SB_EIO, "poll: %s", strerror(errno));
	}
}

/* httpc_connect resolves u and connects to the first address addr_ok allows that answers. */
static int
httpc_connect(struct httpc *h, const struct sb_httpc_url *u)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int g = getaddrinfo(u->host, u->port, &hints, &ai);
	if (g != 0)
		return httpc_fail(h, SB_EUNAVAIL, "cannot resolve %s: %s", u->host,
		                  gai_strerror(g));
	int rv = SB_EUNAVAIL;
	bool tried = false;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		if (h->req->addr_ok != NULL && !h->req->addr_ok(a->ai_addr, h->req->addr_arg))
			continue;
		tried = true;
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                a->ai_protocol);
		if (fd < 0) {
			rv = httpc_fail(h, SB_EUNAVAIL, "socket: %s", strerror(errno));
			continue;
		}
		h->fd = fd;
		int cr = connect(fd, a->ai_addr, a->ai_addrlen);
		if (cr != 0 && errno == EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if ((rv = httpc_wait(h, POLLOUT)) != 0) {
				close(fd);
				h->fd = -1;
				if (rv == SB_ETIMEDOUT)
					httpc_fail(h, rv, "connect to %s timed out", u->host);
				break;
			}
			cr = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0
			         ? 0
			         : -1;
			errno = soerr;
		}
		if (cr == 0) {
			freeaddrinfo(ai);
			return 0;
		}
		rv = httpc_fail(h, SB_EUNAVAIL, "connect to %s:%s: %s", u->host, u->port,
		                strerror(errno));
		close(fd);
		h->fd = -1;
	}
	freeaddrinfo(ai);
	if (!tried) {
		h->resp->refused = true;
		return httpc_fail(h, SB_EINVAL, "refused: no address of %s is allowed", u->host);
	}
	return rv;
}

/* httpc_tls_want waits for what OpenSSL asked for (err from SSL_get_error) or fails. */
static int
httpc_tls_want(struct httpc *h, int err, const char *what)
{
	if (err == SSL_ERROR_WANT_READ)
		return httpc_wait(h, POLLIN);
	if (err == SSL_ERROR_WANT_WRITE)
		return httpc_wait(h, POLLOUT);
	unsigned long e = ERR_peek_last_error();
	char msg[160] = "";
	if (e != 0)
		ERR_error_string_n(e, msg, sizeof(msg));
	long vr = h->ssl ? SSL_get_verify_result(h->ssl) : X509_V_OK;
	if (vr != X509_V_OK)
		return httpc_fail(h, SB_EPROTO, "TLS %s: certificate: %s", what,
		                  X509_verify_cert_error_string(vr));
	if (err == SSL_ERROR_SYSCALL || (err == SSL_ERROR_SSL && e == 0))
		return httpc_fail(h, SB_EUNAVAIL, "TLS %s: connection broke", what);
	return httpc_fail(h, SB_EPROTO, "TLS %s: %s", what, msg[0] ? msg : "failed");
}

/* httpc_tls_start makes the connection TLS: the server's certificate must chain to a trusted
 * CA (req->ca_file, or the system's) and name u's host. */
static int
httpc_tls_start(struct httpc *h, const struct sb_httpc_url *u)
{
	h->ctx = SSL_CTX_new(TLS_client_method());
	if (h->ctx == NULL)
		return httpc_fail(h, SB_ENOMEM, "TLS context");
	SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
	int ok = h->req->ca_file != NULL
	             ? SSL_CTX_load_verify_locations(h->ctx, h->req->ca_file, NULL)
	             : SSL_CTX_set_default_verify_paths(h->ctx);
	if (ok != 1)
		return httpc_fail(h, SB_EINVAL, "TLS: cannot load the CAs%s%s",
		                  h->req->ca_file ? " of " : "",
		                  h->req->ca_file ? h->req->ca_file : "");
	if ((h->ssl = SSL_new(h->ctx)) == NULL || SSL_set_fd(h->ssl, h->fd) != 1)
		return httpc_fail(h, SB_ENOMEM, "TLS session");
	unsigned char ip[16];
	bool literal =
	    inet_pton(AF_INET, u->host, ip) == 1 || inet_pton(AF_INET6, u->host, ip) == 1;
	X509_VERIFY_PARAM *vp = SSL_get0_param(h->ssl);
	if (literal) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) != 1)
			return httpc_fail(h, SB_EINVAL, "TLS: bad IP address");
	} else {
		/* SNI and the name to check (a trailing dot is not part of the name) */
		char name[SB_HTTPC_HOST_MAX];
		snprintf(name, sizeof(name), "%s", u->host);
		size_t nl = strlen(name);
		if (nl > 1 && name[nl - 1] == '.')
			name[nl - 1] = '\0';
		if (SSL_set_tlsext_host_name(h->ssl, name) != 1 || SSL_set1_host(h->ssl, name) != 1)
			return httpc_fail(h, SB_EINVAL, "TLS: bad host name");
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(h->ssl);
		if (r == 1)
			return 0;
		int rv = httpc_tls_want(h, SSL_get_error(h->ssl, r), "handshake");
		if (rv != 0)
			return rv;
	}
}

/* httpc_send writes all of p[0..n). */
static int
httpc_send(struct httpc *h, const void *p, size_t n)
{
	const char *c = p;
	while (h->ssl != NULL && n > 0) {
		size_t w = 0;
		ERR_clear_error();
		if (SSL_write_ex(h->ssl, c, n, &w) == 1) {
			c += w;
			n -= w;
			continue;
		}
		int rv = httpc_tls_want(h, SSL_get_error(h->ssl, 0), "send");
		if (rv != 0)
			return rv;
	}
	while (n > 0) {
		ssize_t w = send(h->fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rv = httpc_wait(h, POLLOUT);
			if (rv != 0)
				return rv;
			continue;
		}
		if (w < 0)
			return httpc_fail(h, SB_EUNAVAIL, "send: %s", strerror(errno));
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* httpc_recv reads what is there (at least one byte, waiting until the deadline) into buf;
 * *got 0 means the peer closed. */
static int
httpc_recv(struct httpc *h, char *buf, size_t cap, size_t *got)
{
	while (h->ssl != NULL) {
		ERR_clear_error();
		if (SSL_read_ex(h->ssl, buf, cap, got) == 1)
			return 0;
		int e = SSL_get_error(h->ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
			*got = 0;
			return 0;
		}
		int rv = httpc_tls_want(h, e, "recv");
		if (rv != 0)
			return rv;
	}
	for (;;) {
		ssize_t r = recv(h->fd, buf, cap, 0);
		if (r >= 0) {
			*got = (size_t)r;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return httpc_fail(h, SB_EUNAVAIL, "recv: %s", strerror(errno));
		int rv = httpc_wait(h, POLLIN);
		if (rv != 0)
			return rv;
	}
}

/* httpc_body_out takes response body bytes: to the caller's callback or into resp->body. */
static int
httpc_body_out(void *arg, const void *data, size_t len)
{
	struct httpc *h = arg;
	h->resp->body_bytes += (int64_t)len;
	if (h->req->body_write != NULL)
		return h->req->body_write(h->req->write_arg, data, len);
	if (h->resp->body.len + len > h->max_body)
		return httpc_fail(h, SB_ERANGE, "response body above %zu bytes", h->max_body);
	return sb_buf_append(&h->resp->body, data, len);
}

/* httpc_request writes the request line, headers and body. */
static int
httpc_request(struct httpc *h, const struct sb_httpc_url *u, const char *method)
{
	const struct sb_httpc_req *q = h->req;
	struct sb_buf b = SB_BUF_INIT;
	bool has_body = q->body_len > 0 || strcmp(method, "POST") == 0 ||
	                strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
	bool dflt = strcmp(u->port, u->tls ? "443" : "80") == 0;
	int rv = SB_ENOMEM;
	if (sb_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", method, u->target,
	                  u->v6 ? "[" : "", u->host, u->v6 ? "]" : "", dflt ? "" : ":",
	                  dflt ? "" : u->port) != 0 ||
	    (has_body && sb_buf_printf(&b, "Content-Length: %zu\r\n", q->body_len) != 0) ||
	    sb_buf_printf(&b, "%sConnection: close\r\n\r\n", q->headers ? q->headers : "") != 0)
		goto done;
	if (q->body_read == NULL && q->body_len > 0 && q->body_len <= HTTPC_IO &&
	    sb_buf_append(&b, q->body, q->body_len) != 0)
		goto done;
	if ((rv = httpc_send(h, b.data, b.len)) != 0)
		goto done;
	if (q->body_read == NULL && q->body_len > HTTPC_IO) {
		rv = httpc_send(h, q->body, q->body_len);
	} else if (q->body_read != NULL) {
		char *io = malloc(HTTPC_IO);
		size_t left = q->body_len;
		if (io == NULL) {
			rv = SB_ENOMEM;
			goto done;
		}
		while (rv == 0 && left > 0) {
			size_t got = 0;
			rv = q->body_read(q->body_arg, io, left < HTTPC_IO ? left : HTTPC_IO, &got);
			if (rv != 0)
				httpc_fail(h, rv, "request body: read callback failed");
			else if (got == 0 || got > left)
				rv = httpc_fail(h, SB_EINVAL,
				                "request body: read callback gave %zu", got);
			else if ((rv = httpc_send(h, io, got)) == 0)
				left -= got;
		}
		free(io);
	}
done:
	sb_buf_free(&b);
	return rv;
}

/* httpc_response reads the final response: head (skipping 1xx), then the body as framed. */
static int
httpc_response(struct httpc *h, bool head_only)
{
	struct sb_httpc_resp *r = h->resp;
	struct sb_httpc_head hd;
	char *io = malloc(HTTPC_IO);
	int rv = 0;
	size_t got = 0;
	if (io == NULL)
		return SB_ENOMEM;
	/* The head: accumulate in r->head until it parses. */
	for (;;) {
		int p = r->head.len > 0 ? sb_httpc_parse_head(r->head.data, r->head.len, &hd) : 0;
		if (p < 0) {
			rv = httpc_fail(h, SB_EPROTO, "not an HTTP/1.x response");
			goto done;
		}
		if (p == 1 && hd.status >= 100 && hd.status < 200 && hd.status != 101) {
			/* interim: drop it, keep what follows */
			memmove(r->head.data, r->head.data + hd.len, r->head.len - hd.len);
			r->head.len -= hd.len;
			continue;
		}
		if (p == 1)
			break;
		if ((rv = httpc_recv(h, io, HTTPC_IO, &got)) != 0)
			goto done;
		if (got == 0) {
			rv = httpc_fail(h, SB_EUNAVAIL, "connection closed before a whole head");
			goto done;
		}
		if ((rv = sb_buf_append(&r->head, io, got)) != 0)
			goto done;
	}
	r->status = hd.status;
	/* Bytes past the head are the start of the body. */
	size_t extra = r->head.len - hd.len;
	char *pre = NULL;
	if (extra > 0 && (pre = malloc(extra)) == NULL) {
		rv = SB_ENOMEM;
		goto done;
	}
	if (extra > 0)
		memcpy(pre, r->head.data + hd.len, extra);
	r->head.len = hd.len;
	r->head.data[hd.len] = '\0';
	if (head_only || hd.status == 204 || hd.status == 304 || hd.status == 101) {
		free(pre);
		goto done; /* no body (RFC 9112 section 6.3) */
	}
	if (hd.chunked) {
		struct sb_httpc_chunked ch = { 0 };
		const char *in = pre;
		size_t n = extra, used;
		for (;;) {
			int c =
			    n > 0 ? sb_httpc_chunked_feed(&ch, in, n, &used, httpc_body_out, h) : 0;
			if (c < 0) {
				rv = c == SB_EPROTO ? httpc_fail(h, c, "bad chunked body") : c;
				break;
			}
			if (c == 1)
				break;
			if ((rv = httpc_recv(h, io, HTTPC_IO, &got)) != 0)
				break;
			if (got == 0) {
				rv = httpc_fail(h, SB_EUNAVAIL,
				                "connection closed inside a chunked body");
				break;
			}
			in = io;
			n = got;
		}
	} else {
		int64_t want = hd.content_length; /* -1: until the peer closes */
		if (want >= 0 && h->req->body_write == NULL && (uint64_t)want > h->max_body) {
			rv = httpc_fail(h, SB_ERANGE, "response body of %lld bytes above %zu",
			                (long long)want, h->max_body);
			free(pre);
			goto done;
		}
		const char *in = pre;
		size_t n = extra;
		for (;;) {
			if (want >= 0 && (int64_t)n > want - r->body_bytes)
				n = (size_t)(want - r->body_bytes); /* ignore bytes past the body */
			if (n > 0 && (rv = httpc_body_out(h, in, n)) != 0)
				break;
			if (want >= 0 && r->body_bytes == want)
				break;
			if ((rv = httpc_recv(h, io, HTTPC_IO, &got)) != 0)
				break;
			if (got == 0) {
				if (want >= 0)
					rv = httpc_fail(
					    h, SB_EUNAVAIL,
					    "connection closed after %lld of %lld body bytes",
					    (long long)r->body_bytes, (long long)want);
				break;
			}
			in = io;
			n = got;
		}
	}
	free(pre);
done:
	free(io);
	return rv;
}

int
sb_httpc_do(const struct sb_httpc_req *req, struct sb_httpc_resp *resp)
{
	struct sb_httpc_url u;
	struct httpc h = { .req = req, .resp = resp, .fd = -1 };
	const char *method = req->method ? req->method : "GET";
	int rv;

	memset(resp, 0, sizeof(*resp));
	h.deadline = sb_time_mono_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 30000);
	h.max_body = req->max_body > 0 ? req->max_body : SB_HTTPC_BODY_DEFAULT;
	if (sb_httpc_url_parse(req->url, &u) != 0)
		return httpc_fail(&h, SB_EINVAL, "bad URL");
	for (const char *m = method; *m; m++)
		if (!isupper((unsigned char)*m) && *m != '-')
			return httpc_fail(&h, SB_EINVAL, "bad method");
	if (*method == '\0')
		return httpc_fail(&h, SB_EINVAL, "bad method");
	if (req->headers != NULL) {
		size_t hl = strlen(req->headers);
		for (size_t i = 0; i < hl; i++) /* only CRLF ends a line: nothing can be smuggled */
			if ((req->headers[i] == '\n' && (i == 0 || req->headers[i - 1] != '\r')) ||
			    (req->headers[i] == '\r' && req->headers[i + 1] != '\n'))
				return httpc_fail(&h, SB_EINVAL, "bad header lines");
		if (hl > 0 && (hl < 2 || strcmp(req->headers + hl - 2, "\r\n") != 0 ||
		               strstr(req->headers, "\r\n\r\n") != NULL || req->headers[0] == '\r'))
			return httpc_fail(&h, SB_EINVAL, "bad header lines");
	}
	if ((rv = httpc_connect(&h, &u)) != 0)
		return rv;
	if (u.tls && (rv = httpc_tls_start(&h, &u)) != 0)
		goto done;
	if ((rv = httpc_request(&h, &u, method)) == 0)
		rv = httpc_response(&h, strcmp(method, "HEAD") == 0);
	else if (rv == SB_EUNAVAIL) {
		/* The server may have answered early (e.g. 413) and closed: read that answer. */
		char keep[sizeof(resp->error)];
		memcpy(keep, resp->error, sizeof(keep));
		if (httpc_response(&h, strcmp(method, "HEAD") == 0) == 0 && resp->status > 0)
			rv = 0;
		else
			memcpy(resp->error, keep, sizeof(keep));
	}
done:
	SSL_free(h.ssl);
	SSL_CTX_free(h.ctx);
	close(h.fd);
	return rv;
}

int
sb_httpc_discard(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

void
sb_httpc_resp_free(struct sb_httpc_resp *resp)
{
	sb_buf_free(&resp->head);
	sb_buf_free(&resp->body);
}
