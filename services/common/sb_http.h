/* sb_http.h: a small epoll-based HTTP/1.1 server with one event-loop thread.
 *
 * Protocol: HTTP/1.1 and 1.0 requests in origin form ("/path?query", or "*"), keep-alive
 * (1.1 default; 1.0 with "Connection: keep-alive"), pipelining (requests of one connection are
 * answered in order, one at a time), bodies with Content-Length only. A request with
 * Transfer-Encoding (chunked or any other) is answered 411 Length Required and the connection
 * closed; Content-Length together with Transfer-Encoding, or conflicting Content-Length values,
 * are 400 (request smuggling). "Expect: 100-continue" is honoured. Requests are parsed strictly:
 * CRLF line ends, no obs-fold, no whitespace before a header colon, no control characters, Host
 * required for HTTP/1.1; anything else is 400 and the connection is closed. The request target
 * is not percent-decoded. Errors the server answers itself carry application/problem+json.
 *
 * Limits (struct sb_http_config): head larger than max_header_bytes or more than 100 header
 * fields → 431; Content-Length above max_body_bytes → 413 at once, before the body is read;
 * the whole head must arrive within header_timeout_ms of its first byte (or of the connection)
 * or the client gets 408 and is closed (slowloris); the body must arrive within
 * body_timeout_ms; an idle keep-alive connection, or one that stops reading its response, is
 * closed after idle_timeout_ms; past max_conns open connections new ones get 503 and are
 * closed.
 *
 * Handlers run on the loop thread and must not block. Each request is answered exactly once
 * with sb_http_respond (or sb_http_respond_problem), at once from the handler or later from any
 * thread. A client that disconnects (or shuts down its sending side) before its answer is
 * treated as gone: its connection is closed, and the later sb_http_respond only frees the
 * request. Every response carries Date, Content-Length (but 204/304), X-Content-Type-Options:
 * nosniff, Server when configured, and Connection: close when the connection will close. */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stddef.h>

struct sb_http_config {
	const char *addr;        /* IPv4 or IPv6 literal to bind; NULL = 127.0.0.1 */
	int port;                /* 0 = ephemeral (see sb_http_server_port) */
	size_t max_header_bytes; /* 0 = 16 KiB */
	size_t max_body_bytes;   /* 0 = 1 MiB */
	int header_timeout_ms;   /* 0 = 10 s */
	int body_timeout_ms;     /* 0 = 60 s */
	int idle_timeout_ms;     /* 0 = 60 s */
	int max_conns;           /* 0 = 10000 */
	const char *server_name; /* NULL: no Server header */
};

struct sb_http_header {
	const char *name;
	const char *value;
};

/* A request, valid from the handler call until it is answered. The strings are NUL-terminated;
 * query is "" when absent; body is NUL-terminated too (body_len excludes the NUL). */
struct sb_http_req {
	const char *method;
	const char *path;
	const char *query;
	const struct sb_http_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
	char remote[64]; /* "ip:port" of the client */
};

struct sb_http_server;

typedef void (*sb_http_handler)(struct sb_http_req *req, void *arg);

/* sb_http_server_start binds cfg->addr:cfg->port, starts the loop thread and returns the
 * server in *out; h(req, arg) is called on the loop thread for each request. cfg is copied
 * (server_name too). Returns 0, SB_EINVAL (bad address or config), SB_EIO (bind/listen failed,
 * e.g. port in use) or SB_ENOMEM; on failure nothing runs and *out is untouched. */
int sb_http_server_start(const struct sb_http_config *cfg, sb_http_handler h, void *arg,
                         struct sb_http_server **out);
/* sb_http_server_port returns the bound TCP port (useful with port 0). */
int sb_http_server_port(const struct sb_http_server *s);
/* sb_http_server_stop stops accepting, closes idle connections, waits up to timeout_ms for
 * requests in progress to be answered and written, then closes every connection and frees s.
 * Must not be called from a handler. A request answered after stop returns is freed safely. */
void sb_http_server_stop(struct sb_http_server *s, int timeout_ms);

/* sb_http_req_header returns the value of the first header called name (case-insensitive), or
 * NULL. The string belongs to r. */
const char *sb_http_req_header(const struct sb_http_req *r, const char *name);

/* sb_http_respond answers r, from any thread, exactly once; r belongs to the server again as
 * soon as it is called and must not be touched after. content_type may be NULL (no header);
 * extra headers are written as given (names must be tokens, values must not hold CR, LF or NUL,
 * and Content-Length, Transfer-Encoding, Connection and Date are set by the server); body is
 * copied. For HEAD requests the body is not sent. Returns 0; on invalid arguments the client is
 * answered 500 instead and SB_EINVAL is returned; on allocation failure the connection is
 * closed and SB_ENOMEM returned. Either way r is consumed. */
int sb_http_respond(struct sb_http_req *r, int status, const char *content_type,
                    const struct sb_http_header *extra, size_t nextra, const void *body,
                    size_t len);
/* sb_http_respond_problem answers r with an RFC 9457 application/problem+json body
 * {"type":"about:blank","title":title,"status":status,"detail":detail}; detail may be NULL
 * (omitted), title NULL means the status's reason phrase. Same rules as sb_http_respond. */
int sb_http_respond_problem(struct sb_http_req *r, int status, const char *title,
                            const char *detail);
/* sb_http_respond_problem_extra is sb_http_respond_problem with extra headers (Allow,
 * Retry-After, ...). */
int sb_http_respond_problem_extra(struct sb_http_req *r, int status, const char *title,
                                  const char *detail, const struct sb_http_header *extra,
                                  size_t nextra);

/* sb_http_reason returns the reason phrase of status ("Not Found"), or "Unknown". */
const char *sb_http_reason(int status);

/* Internals shared by sb_http*.c. */
#include <stdbool.h>
#include <sys/types.h>

#include "sb_buf.h"

#define SB__HTTP_MAX_HEADERS 100

/* What sb__http_parse_head found in one request head. */
struct sb__http_head {
	char *method, *path, *query;
	int minor;             /* HTTP/1.<minor> */
	size_t nheaders;       /* headers written to the caller's array */
	long long content_len; /* -1: none */
	bool has_te, conn_close, conn_keepalive, expect_continue;
};

/* sb__http_parse_head parses, in place, the request head head[0..len) which ends with the
 * empty line CRLF CRLF, NUL-terminating the tokens it points to from out and hdrs (at most
 * maxh entries). Returns 0, SB_EPROTO (malformed: answer 400), SB_ERANGE (too many header
 * fields: 431) or SB_EINVAL (bad Content-Length, or both Content-Length and
 * Transfer-Encoding: 400). */
int sb__http_parse_head(char *head, size_t len, struct sb_http_header *hdrs, size_t maxh,
                        struct sb__http_head *out);
/* sb__http_build_response appends a whole response to b; close adds Connection: close,
 * keepalive10 adds Connection: keep-alive (HTTP/1.0 client), head_only omits the body. */
int sb__http_build_response(struct sb_buf *b, int status, const char *content_type,
                            const struct sb_http_header *extra, size_t nextra, const void *body,
                            size_t len, const char *server_name, bool close, bool keepalive10,
                            bool head_only);
/* sb__http_problem_body appends the problem+json document for status to b. */
int sb__http_problem_body(struct sb_buf *b, int status, const char *title, const char *detail);
/* sb__http_valid_extra tells whether extra headers may be sent as given. */
bool sb__http_valid_extra(const struct sb_http_header *extra, size_t nextra);

#endif
