/* sb_httpc.h: a small blocking HTTP/1.1 client (http:// and https://).
 *
 * One request per connection (the client sends "Connection: close"; keep-alive is not
 * implemented), any method, extra request headers, a body from memory or from a read callback,
 * and one total deadline over connect, TLS handshake, send and receive (name resolution,
 * getaddrinfo, is outside it). The response's status, raw head and body come back; the body
 * goes into a buffer bounded by a cap, or to a write callback. Content-Length, chunked and
 * read-until-close bodies are understood; 1xx interim responses are skipped. An optional hook
 * checks every RESOLVED address before connecting to it (a webhook client refuses private
 * addresses with it: a name that resolves, or re-resolves, to one is refused).
 *
 * The parsers of the response (sb_httpc_parse_head, sb_httpc_chunked_feed, sb_httpc_header)
 * take untrusted network input and are fuzzed (tests/fuzz/sb_httpc_fuzz.c). Any thread; no
 * global state. Plain http writes with MSG_NOSIGNAL; OpenSSL writes without it, so a process
 * that uses https must ignore SIGPIPE (every service does at start: sb_util_shutdown). */
#ifndef SB_HTTPC_H
#define SB_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sb_buf.h"

#define SB_HTTPC_HEAD_MAX     (64 * 1024)   /* bytes of a response head, at most */
#define SB_HTTPC_BODY_DEFAULT (1024 * 1024) /* body cap when the request gives none */
#define SB_HTTPC_TRAILER_MAX  (16 * 1024)   /* bytes of chunk extensions and trailers */
#define SB_HTTPC_HOST_MAX     256

/* A parsed http:// URL. target points into the string given to sb_httpc_url_parse (or is "/"):
 * path and query, never a fragment. */
struct sb_httpc_url {
	char host[SB_HTTPC_HOST_MAX]; /* without the brackets of an IPv6 literal */
	char port[8];                 /* "80" when absent */
	bool v6;                      /* host is an IPv6 literal */
	bool tls;                     /* https:// */
	const char *target;
};
/* sb_httpc_url_parse parses url as "http[s]://host[:port][/path][?query]": no user
 * information, no fragment, no blanks or control characters; host a DNS name, an IPv4 address or
 * a bracketed IPv6 literal; the port 80 (443 for https) when absent. Returns 0 and *out (valid
 * while url is), or SB_EINVAL. */
int sb_httpc_url_parse(const char *url, struct sb_httpc_url *out);

/* sb_httpc_addr_fn tells whether the client may connect to the resolved address sa. */
typedef bool (*sb_httpc_addr_fn)(const struct sockaddr *sa, void *arg);
/* sb_httpc_read_fn fills buf (cap bytes) with the next bytes of a request body and sets *got
 * (> 0). Returns 0, or an error that aborts the request. */
typedef int (*sb_httpc_read_fn)(void *arg, void *buf, size_t cap, size_t *got);
/* sb_httpc_write_fn takes the next len bytes of a response body. Returns 0, or an error that
 * aborts the request. */
typedef int (*sb_httpc_write_fn)(void *arg, const void *data, size_t len);

/* sb_httpc_discard is a sb_httpc_write_fn that drops the body (a caller that needs only the
 * status, e.g. a webhook delivery, passes it as body_write: no cap applies then). */
int sb_httpc_discard(void *arg, const void *data, size_t len);

/* One request. Fields left zero take their defaults. */
struct sb_httpc_req {
	const char *method; /* "GET" when NULL */
	const char *url;    /* http:// or https:// */
	/* https: PEM file of the CAs to trust (NULL: the system's). The server's certificate must
	 * chain to one and name the URL's host (DNS name or IP address); TLS 1.2 at least, SNI sent
	 * for DNS names. There is no way to skip verification. */
	const char *ca_file;
	/* extra header lines "Name: value\r\n"...; the client writes Host, Content-Length (when
	 * there is a body, or for POST/PUT/PATCH) and Connection itself */
	const char *headers;
	/* the body: body_len bytes from body, or, when body_read is set, body_len bytes pulled
	 * through it (an error if it gives fewer or more) */
	const void *body;
	size_t body_len;
	sb_httpc_read_fn body_read;
	void *body_arg;
	int timeout_ms; /* total deadline of connect, TLS handshake, send and receive (0: 30 s) */
	sb_httpc_addr_fn addr_ok; /* NULL: every address allowed */
	void *addr_arg;
	/* the response body: to body_write when set, else into resp->body, at most max_body
	 * bytes (0: SB_HTTPC_BODY_DEFAULT; more is SB_ERANGE) */
	sb_httpc_write_fn body_write;
	void *write_arg;
	size_t max_body;
};

/* One response. */
struct sb_httpc_resp {
	int status;         /* 0 when no final status line was received */
	struct sb_buf head; /* the final response's status line and headers, CRLF CRLF included */
	struct sb_buf body; /* unless the request had body_write */
	int64_t body_bytes; /* body bytes received (either way) */
	bool refused;       /* no address was tried: addr_ok refused every resolved one */
	char error[256];    /* why the call failed, for a log line */
};

/* sb_httpc_do sends req and reads the response into *resp (initialised here; release it with
 * sb_httpc_resp_free whatever is returned). Returns 0 when a whole response was received (any
 * status), SB_EINVAL (bad URL or request, or every address refused: resp->refused),
 * SB_EUNAVAIL (cannot resolve or connect, or the connection broke), SB_ETIMEDOUT, SB_EPROTO (not
 * HTTP, or the TLS handshake or the server's certificate failed: resp->error says), SB_ERANGE (body
 * above max_body), SB_ENOMEM, or the error of a callback. resp->status may be set even on failure
 * (the body broke off). */
int sb_httpc_do(const struct sb_httpc_req *req, struct sb_httpc_resp *resp);
/* sb_httpc_resp_free releases what sb_httpc_do allocated in resp. */
void sb_httpc_resp_free(struct sb_httpc_resp *resp);

/* --- the response parsers (untrusted input) -------------------------------------------- */

/* What a response head says. */
struct sb_httpc_head {
	int minor;              /* HTTP/1.<minor>: 0 or 1 */
	int status;             /* 100-599 */
	int64_t content_length; /* -1 when absent */
	bool chunked;           /* Transfer-Encoding ends with chunked */
	bool close;             /* Connection: close, or HTTP/1.0 without keep-alive */
	size_t len;             /* bytes of the head, its blank line included */
};
/* sb_httpc_parse_head parses the response head at the start of buf[0..n): a status line
 * "HTTP/1.x DDD reason", header lines "name: value" (token names, values without control
 * characters except tab, no obsolete line folding), then an empty line; lines end with CRLF.
 * Returns 1 with *h when the head is complete, 0 when more bytes are needed (and n is below
 * SB_HTTPC_HEAD_MAX), SB_EPROTO when it is malformed, too long, or its framing is ambiguous
 * (two different Content-Length values, Content-Length with chunked, an unknown transfer
 * coding). */
int sb_httpc_parse_head(const char *buf, size_t n, struct sb_httpc_head *h);
/* sb_httpc_header finds header name (any case) in the head head[0..n) (as parse_head accepted
 * it) and returns its value without surrounding blanks, *vlen its length; NULL when absent. The
 * first of repeated headers is returned. */
const char *sb_httpc_header(const char *head, size_t n, const char *name, size_t *vlen);

/* The state of a chunked body decoder (RFC 9112 section 7.1); zero it to start. */
struct sb_httpc_chunked {
	int state;
	uint64_t left; /* bytes left in the current chunk */
	int digits;    /* hex digits of the size line so far */
	size_t extra;  /* bytes of extensions and trailers so far */
};
/* sb_httpc_chunked_feed decodes in[0..n) and hands each piece of chunk data to out(arg, ...).
 * Sets *used to the bytes consumed: all of n unless the body ended inside it (then the bytes
 * after it are not consumed). Returns 1 when the last chunk and the trailers are done, 0 when
 * more input is needed, SB_EPROTO on malformed input (a bad size, missing CRLF, extensions or
 * trailers above SB_HTTPC_TRAILER_MAX), or out's error. */
int sb_httpc_chunked_feed(struct sb_httpc_chunked *c, const char *in, size_t n, size_t *used,
                          sb_httpc_write_fn out, void *arg);

#endif
