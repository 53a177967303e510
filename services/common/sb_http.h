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
 * is not percent-decoded. Errors the server answers itself carry application/problem+json
 * with a request_id, also sent as X-Request-Id: the client's X-Request-Id when the part of the
 * head that arrived carries a sane one (sb_http_request_id), else a new UUID.
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
 * nosniff, Server when configured, and Connection: close when the connection will close.
 *
 * TLS (tls_cert_file and tls_key_file set): the port speaks TLS only, version 1.3 at least,
 * ALPN "http/1.1" (a client that offers ALPN without it is refused). Handshakes and TLS I/O are
 * non-blocking in the same loop and state machine (HANDSHAKE comes before HEAD); the handshake
 * counts against header_timeout_ms, so a stalled TLS client is closed like a slowloris. A
 * client that is not speaking TLS 1.3 (plain HTTP, TLS 1.2, garbage) is closed without an
 * answer. Every response then also carries Strict-Transport-Security: max-age=31536000. The
 * certificate and key are reloaded by sb_http_server_reload_tls, and by the loop itself when
 * either file's mtime, size or inode changes (checked every tls_reload_ms); new connections get
 * the new certificate, open ones keep theirs; files that fail to load leave the old ones in
 * use.
 *
 * Streamed bodies (stream_body set): after a head with a body is parsed and passes the checks
 * above (413 included), stream_body(head, arg) runs on the loop thread (it must not block; the
 * head is valid only during the call, its body NULL and body_len the Content-Length) and
 * decides, from method, path and headers, whether this request's body is streamed. If so the
 * handler is called at once, before the body is read, with req->streamed true, body NULL and
 * body_len the Content-Length; it passes the request to a thread of its own, which reads the
 * body with sb_http_req_read (blocking; plain and TLS alike), in pieces as large as it asks,
 * so memory does not grow with the body. The connection's socket belongs to that reader until
 * the answer: the loop neither reads nor watches it. The whole body must still arrive within
 * body_timeout_ms of the head, and keep up stream_min_rate when it is set (sb_http_req_read
 * then returns SB_ETIMEDOUT). "Expect:
 * 100-continue" is answered by the first read that needs the socket, so a handler that refuses
 * before reading does not invite the body. The handler answers exactly once as always: after
 * the whole body was read the connection stays open (keep-alive and pipelining as usual);
 * after an answer given before the end of the body, or after a timeout, the answer carries
 * Connection: close and the connection is closed once the client had time to read it; after
 * SB_ECLOSED (the client left) the answer is only freed. */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct sb_http_req;

struct sb_http_config {
	const char *addr;          /* IPv4 or IPv6 literal to bind; NULL = 127.0.0.1 */
	int port;                  /* 0 = ephemeral (see sb_http_server_port) */
	size_t max_header_bytes;   /* 0 = 16 KiB */
	size_t max_body_bytes;     /* 0 = 1 MiB */
	int header_timeout_ms;     /* 0 = 10 s */
	int body_timeout_ms;       /* 0 = 60 s */
	int idle_timeout_ms;       /* 0 = 60 s */
	int max_conns;             /* 0 = 10000 */
	const char *server_name;   /* NULL: no Server header */
	const char *tls_cert_file; /* PEM certificate chain (leaf first); NULL = plain HTTP */
	const char *tls_key_file;  /* PEM private key of the leaf; set with tls_cert_file */
	int tls_reload_ms;         /* check the files for changes this often; 0 = 5 s, <0 = never */
	/* Streamed bodies (see above): true to stream this request's body; NULL = never. Called
	 * with the handler's arg. */
	bool (*stream_body)(const struct sb_http_req *head, void *arg);
	/* Streamed bodies must also keep up a minimum average rate: from stream_grace_ms after the
	 * head (0 = 10 s) at least stream_min_rate bytes per second (0 = no minimum), else the
	 * read returns SB_ETIMEDOUT, so a client trickling or stalling holds its reader for
	 * seconds, not for the whole body timeout. */
	int stream_min_rate;
	int stream_grace_ms;
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
	bool streamed;   /* the body is read with sb_http_req_read (body is NULL) */
	char remote[64]; /* "ip:port" of the client */
};

struct sb_http_server;

typedef void (*sb_http_handler)(struct sb_http_req *req, void *arg);

/* sb_http_server_start binds cfg->addr:cfg->port, starts the loop thread and returns the
 * server in *out; h(req, arg) is called on the loop thread for each request. cfg is copied
 * (server_name too). Returns 0, SB_EINVAL (bad address or config), SB_EIO (bind/listen failed,
 * e.g. port in use) or SB_ENOMEM; on failure nothing runs and *out is untouched. With TLS,
 * cert and key are loaded before anything listens: a file that cannot be read or parsed, or a
 * key that does not match the certificate, is logged with the file's name and returns
 * SB_EINVAL. The file names are copied. */
int sb_http_server_start(const struct sb_http_config *cfg, sb_http_handler h, void *arg,
                         struct sb_http_server **out);
/* sb_http_server_reload_tls loads s's certificate and key files again, from any thread but a
 * handler, and makes them the ones new connections get; open connections keep the ones they
 * have. Returns 0, SB_EINVAL if s does not serve TLS, or the loading error (logged, naming the
 * file), in which case the previous certificate stays in use. */
int sb_http_server_reload_tls(struct sb_http_server *s);
/* sb_http_server_port returns the bound TCP port (useful with port 0). */
int sb_http_server_port(const struct sb_http_server *s);
/* sb_http_server_stop stops accepting, closes idle connections, waits up to timeout_ms for
 * requests in progress to be answered and written, then closes every connection and frees s.
 * Must not be called from a handler. A request answered after stop returns is freed safely. */
void sb_http_server_stop(struct sb_http_server *s, int timeout_ms);

/* sb_http_req_header returns the value of the first header called name (case-insensitive), or
 * NULL. The string belongs to r. */
const char *sb_http_req_header(const struct sb_http_req *r, const char *name);

/* sb_http_req_read reads up to n bytes of r's streamed body into buf, blocking until some
 * arrive, from any thread but the loop's, never after r is answered. Returns the count (> 0),
 * 0 once the whole body was read (or n is 0), SB_ETIMEDOUT when the body did not arrive within
 * body_timeout_ms of its head, SB_ECLOSED when the client closed its side, reset or broke TLS,
 * or SB_EINVAL (r not streamed, or the loop thread). After an error every later read returns
 * it again. */
ssize_t sb_http_req_read(struct sb_http_req *r, void *buf, size_t n);

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
 * {"type":"about:blank","title":title,"status":status,"detail":detail,"request_id":id} and
 * X-Request-Id: id (sb_http_request_id of r's X-Request-Id); detail may be NULL (omitted),
 * title NULL means the status's reason phrase. Same rules as sb_http_respond. */
int sb_http_respond_problem(struct sb_http_req *r, int status, const char *title,
                            const char *detail);
/* sb_http_respond_problem_extra is sb_http_respond_problem with extra headers (Allow,
 * Retry-After, ...). */
int sb_http_respond_problem_extra(struct sb_http_req *r, int status, const char *title,
                                  const char *detail, const struct sb_http_header *extra,
                                  size_t nextra);

/* sb_http_reason returns the reason phrase of status ("Not Found"), or "Unknown". */
const char *sb_http_reason(int status);

/* A request id: 1 to 39 characters of [A-Za-z0-9._-] (a UUID fits), and its NUL. */
#define SB_HTTP_REQUEST_ID_MAX 40
/* sb_http_request_id writes to out the id of a request whose X-Request-Id header is value
 * (NULL when absent): value itself when it is a request id as above, else a new UUID v4. Every
 * edge names its requests with it, so logs, problem bodies and the client agree. Any thread. */
void sb_http_request_id(const char *value, char out[SB_HTTP_REQUEST_ID_MAX]);

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
/* How a response is framed (sb__http_build_response). */
struct sb__http_frame {
	const char *server_name; /* Server header, or NULL */
	bool close;              /* Connection: close */
	bool keepalive10;        /* Connection: keep-alive (HTTP/1.0 client) */
	bool head_only;          /* omit the body (HEAD) */
	bool hsts;               /* Strict-Transport-Security (served over TLS) */
};

/* sb__http_build_response appends a whole response to b, framed as f says. */
int sb__http_build_response(struct sb_buf *b, int status, const char *content_type,
                            const struct sb_http_header *extra, size_t nextra, const void *body,
                            size_t len, const struct sb__http_frame *f);
/* sb__http_problem_body appends the problem+json document for status to b, with member
 * request_id when request_id is not NULL. */
int sb__http_problem_body(struct sb_buf *b, int status, const char *title, const char *detail,
                          const char *request_id);
/* sb__http_raw_request_id finds a whole "X-Request-Id:" line (CRLF-ended, any case) among the
 * header lines of the raw, unparsed head bytes buf[0..len) (a head that was too large or came
 * too slowly) and copies its value, without surrounding blanks, to out when it fits. Returns
 * out, or NULL when there is none. */
const char *sb__http_raw_request_id(const char *buf, size_t len, char out[SB_HTTP_REQUEST_ID_MAX]);
/* sb__http_valid_extra tells whether extra headers may be sent as given. */
bool sb__http_valid_extra(const struct sb_http_header *extra, size_t nextra);

/* sb_http_tls.c: certificates, contexts and TLS I/O for sb_http_server.c. */
#include <stdint.h>

struct ssl_st;       /* OpenSSL's SSL: one connection */
struct sb__http_tls; /* the server's certificate files and current context */

/* What a TLS call needs before it can go on, or how it ended. */
enum sb__http_tls_io {
	SB__HTTP_TLS_DONE,       /* finished (a handshake), or bytes moved */
	SB__HTTP_TLS_WANT_READ,  /* wait until the socket is readable, then call again */
	SB__HTTP_TLS_WANT_WRITE, /* wait until the socket is writable, then call again */
	SB__HTTP_TLS_EOF,        /* the peer closed (close_notify or TCP end) */
	SB__HTTP_TLS_FAIL,       /* protocol or socket error: close without shutdown */
};

/* sb__http_tls_new loads cert and key (PEM) into a first context and returns the TLS state in
 * *out (freed by sb__http_tls_free); reload_ms is how often sb__http_tls_poll looks at the
 * files (0 = 5 s, <0 = never). The names are copied. Returns 0, SB_EINVAL (logged, naming the
 * file) or SB_ENOMEM. */
int sb__http_tls_new(const char *cert, const char *key, int reload_ms, struct sb__http_tls **out);
/* sb__http_tls_free frees t (NULL is fine); connections made from it keep their context. */
void sb__http_tls_free(struct sb__http_tls *t);
/* sb__http_tls_reload loads t's files into a new context for the connections to come; on
 * failure the old one stays and the error (logged) is returned. Any thread. */
int sb__http_tls_reload(struct sb__http_tls *t);
/* sb__http_tls_poll reloads t when its files changed since they were last loaded, at most once
 * per reload period, and returns the milliseconds until it wants to be called again (-1:
 * never). Loop thread only. */
int sb__http_tls_poll(struct sb__http_tls *t, int64_t now_ms);
/* sb__http_tls_conn_new returns a server-side TLS connection on fd with the current context,
 * or NULL (out of memory). The caller frees it with sb__http_tls_conn_free. */
struct ssl_st *sb__http_tls_conn_new(struct sb__http_tls *t, int fd);
/* sb__http_tls_conn_free sends close_notify if clean (best effort, never blocks) and frees s. */
void sb__http_tls_conn_free(struct ssl_st *s, bool clean);
/* sb__http_tls_handshake advances the server handshake of s; remote names the peer in the
 * debug line logged when it fails. */
enum sb__http_tls_io sb__http_tls_handshake(struct ssl_st *s, const char *remote);
/* sb__http_tls_read reads up to n bytes into buf; *got is the count when it returns DONE. */
enum sb__http_tls_io sb__http_tls_read(struct ssl_st *s, void *buf, size_t n, size_t *got);
/* sb__http_tls_write writes up to n bytes of buf (maybe fewer); *put is the count when DONE.
 * After a WANT_*, call again with the same bytes. */
enum sb__http_tls_io sb__http_tls_write(struct ssl_st *s, const void *buf, size_t n, size_t *put);
/* sb__http_tls_pending tells whether s holds decrypted bytes not yet read (epoll cannot see
 * them). */
bool sb__http_tls_pending(struct ssl_st *s);

#endif
