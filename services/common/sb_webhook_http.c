/* http.c: a small blocking HTTP/1.1 client for webhook POSTs (http:// only; https is future
 * work, see docs/notifier.md). One request per connection, a total deadline covering connect,
 * send and the status line, and a check of every RESOLVED address before connecting to it, so
 * that a name that resolves (or re-resolves: DNS rebinding) to a private address is refused. */
#include "sb_webhook.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_util_time.h"

#define SB_WH_STATUS_MAX 4096 /* bytes read looking for the status line */

/* sb_wh_host_ok tells whether host is an IPv6 address (bracketed in the URL: v6) or a DNS name or
 * IPv4 address: labels of letters, digits and '-' (not first or last), 1-63 characters each,
 * separated by single dots (one may end the name), 253 at most in all. Anything else (percent
 * escapes, '_', '|', empty labels) could never be resolved and is refused when the webhook is
 * created. */
static bool
sb_wh_host_ok(const char *host, bool v6)
{
	if (v6) {
		struct in6_addr a;
		return inet_pton(AF_INET6, host, &a) == 1;
	}
	size_t len = strlen(host), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = host[i];
		if (c == '.' || c == '\0') {
			if (c == '\0' && label == 0 && i > 1 && host[i - 1] == '.' &&
			    host[i - 2] != '.')
				break; /* a fully qualified name may end with a dot */
			if (label == 0 || label > 63 || host[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && !(c == '-' && label > 0))
			return false;
		label++;
	}
	return true;
}

int
sb_webhook_url_parse(const char *url, struct sb_webhook_url *out, char *err, size_t n)
{
	const char *p, *hs, *he, *ps = NULL, *pe;
	memset(out, 0, sizeof(*out));
	if (url == NULL || url[0] == '\0')
		return snprintf(err, n, "empty"), SB_EINVAL;
	for (p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return snprintf(err, n, "contains spaces or control characters"), SB_EINVAL;
	if (strncasecmp(url, "https://", 8) == 0)
		return snprintf(err, n, "https is not supported yet; use http://"), SB_EINVAL;
	if (strncasecmp(url, "http://", 7) != 0)
		return snprintf(err, n, "must start with http://"), SB_EINVAL;
	hs = url + 7;
	pe = hs + strcspn(hs, "/?#");
	if (memchr(hs, '@', (size_t)(pe - hs)) != NULL)
		return snprintf(err, n, "user information is not allowed"), SB_EINVAL;
	if (strchr(url, '#') != NULL)
		return snprintf(err, n, "a fragment is not allowed"), SB_EINVAL;
	if (*hs == '[') {
		he = memchr(hs, ']', (size_t)(pe - hs));
		if (he == NULL)
			return snprintf(err, n, "unterminated [IPv6] host"), SB_EINVAL;
		hs++;
		ps = he + 1 < pe && he[1] == ':' ? he + 2 : NULL;
		if (he + 1 < pe && he[1] != ':')
			return snprintf(err, n, "bad port"), SB_EINVAL;
	} else {
		he = memchr(hs, ':', (size_t)(pe - hs));
		if (he != NULL)
			ps = he + 1;
		else
			he = pe;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(out->host))
		return snprintf(err, n, "bad host"), SB_EINVAL;
	memcpy(out->host, hs, (size_t)(he - hs));
	out->host[he - hs] = '\0';
	if (!sb_wh_host_ok(out->host, hs > url + 7))
		return snprintf(err, n, "bad host: not a DNS name or an IP address"), SB_EINVAL;
	if (ps != NULL) {
		size_t pl = (size_t)(pe - ps);
		long port = 0;
		if (pl == 0 || pl > 5)
			return snprintf(err, n, "bad port"), SB_EINVAL;
		for (size_t i = 0; i < pl; i++) {
			if (!isdigit((unsigned char)ps[i]))
				return snprintf(err, n, "bad port"), SB_EINVAL;
			port = port * 10 + (ps[i] - '0');
		}
		if (port < 1 || port > 65535)
			return snprintf(err, n, "bad port"), SB_EINVAL;
		snprintf(out->port, sizeof(out->port), "%ld", port);
	} else {
		snprintf(out->port, sizeof(out->port), "80");
	}
	if (strlen(pe) >= sizeof(out->path))
		return snprintf(err, n, "path too long"), SB_EINVAL;
	int w = snprintf(out->path, sizeof(out->path), "%s%s", *pe == '/' ? "" : "/", pe);
	if (w < 0 || (size_t)w >= sizeof(out->path))
		return snprintf(err, n, "path too long"), SB_EINVAL;
	return 0;
}

/* sb_wh_wait polls fd for ev until the deadline (monotonic ms). Returns 0 or SB_ETIMEDOUT. */
static int
sb_wh_wait(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - sb_time_mono_ms();
		if (left <= 0)
			return SB_ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = ev };
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return SB_ETIMEDOUT;
		if (errno != EINTR)
			return SB_EIO;
	}
}

/* sb_wh_connect tries the resolved addresses in order, skipping refused ones. */
static int
sb_wh_connect(const struct sb_webhook_url *u, int64_t deadline, bool allow_private,
              struct sb_webhook_result *res, int *fdp)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rv = SB_EUNAVAIL, g = getaddrinfo(u->host, u->port, &hints, &ai);
	if (g != 0) {
		snprintf(res->error, sizeof(res->error), "cannot resolve %s: %s", u->host,
		         gai_strerror(g));
		return SB_EUNAVAIL;
	}
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		if (!allow_private && sb_webhook_addr_private(a->ai_addr)) {
			res->refused = true;
			snprintf(
			    res->error, sizeof(res->error),
			    "refused: %s resolves to a loopback, private or link-local address",
			    u->host);
			rv = SB_EINVAL;
			continue;
		}
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                a->ai_protocol);
		if (fd < 0)
			continue;
		int cr = connect(fd, a->ai_addr, a->ai_addrlen);
		if (cr != 0 && errno == EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			int w = sb_wh_wait(fd, POLLOUT, deadline);
			if (w == SB_ETIMEDOUT) {
				close(fd);
				snprintf(res->error, sizeof(res->error), "connect timed out");
				rv = SB_ETIMEDOUT;
				break;
			}
			cr = w == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
			             soerr == 0
			         ? 0
			         : -1;
			errno = soerr;
		}
		if (cr == 0) {
			res->refused = false;
			*fdp = fd;
			freeaddrinfo(ai);
			return 0;
		}
		snprintf(res->error, sizeof(res->error), "connect: %s", strerror(errno));
		rv = SB_EUNAVAIL;
		close(fd);
	}
	freeaddrinfo(ai);
	return rv;
}

int
sb_webhook_post(const char *url, const char *hdrs, const char *body, size_t blen, int timeout_ms,
                bool allow_private, struct sb_webhook_result *res)
{
	struct sb_webhook_url u;
	struct sb_buf req = SB_BUF_INIT;
	char buf[SB_WH_STATUS_MAX + 1];
	size_t got = 0, off = 0;
	int64_t deadline = sb_time_mono_ms() + timeout_ms;
	int fd = -1, rv;

	memset(res, 0, sizeof(*res));
	if (sb_webhook_url_parse(url, &u, res->error, sizeof(res->error)) != 0)
		return SB_EINVAL;
	if ((rv = sb_wh_connect(&u, deadline, allow_private, res, &fd)) != 0)
		return rv;
	bool v6 = strchr(u.host, ':') != NULL;
	rv = SB_ENOMEM;
	if (sb_buf_printf(&req,
	                  "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
	                  "User-Agent: switchboard-webhook/1\r\nContent-Type: application/json\r\n"
	                  "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                  u.path, v6 ? "[" : "", u.host, v6 ? "]" : "",
	                  strcmp(u.port, "80") ? ":" : "", strcmp(u.port, "80") ? u.port : "", blen,
	                  hdrs ? hdrs : "") != 0 ||
	    sb_buf_append(&req, body, blen) != 0)
		goto done;
	while (off < req.len) {
		if ((rv = sb_wh_wait(fd, POLLOUT, deadline)) != 0)
			goto timeout;
		ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w < 0) {
			snprintf(res->error, sizeof(res->error), "send: %s", strerror(errno));
			rv = SB_EUNAVAIL;
			goto done;
		}
		off += (size_t)w;
	}
	/* Read until the status line is complete. */
	while (got < SB_WH_STATUS_MAX) {
		buf[got] = '\0';
		if (strstr(buf, "\r\n") != NULL)
			break;
		if ((rv = sb_wh_wait(fd, POLLIN, deadline)) != 0)
			goto timeout;
		ssize_t r = recv(fd, buf + got, SB_WH_STATUS_MAX - got, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			snprintf(res->error, sizeof(res->error),
			         "connection closed before a status");
			rv = SB_EPROTO;
			goto done;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100 || status > 599) {
		snprintf(res->error, sizeof(res->error), "not an HTTP response");
		rv = SB_EPROTO;
		goto done;
	}
	res->status = status;
	rv = 0;
	goto done;
timeout:
	snprintf(res->error, sizeof(res->error), "%s", rv == SB_ETIMEDOUT ? "timed out" : "poll");
done:
	if (fd >= 0)
		close(fd);
	sb_buf_free(&req);
	return rv;
}
