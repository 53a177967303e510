/* sidecar.h: the mesh sidecar (sb-sidecar), private prototypes grouped by file.
 *
 * One process beside one service. Inbound: a TLS 1.3 listener that requires a client
 * certificate from the mesh CA, reads the caller's SPIFFE ID, checks it and every RPC method
 * against this service's policy and forwards to the service on localhost. Outbound: one plain
 * localhost listener per upstream; each connection is carried over mTLS to the upstream's
 * sidecar, whose identity is checked. Both directions parse nng's SP framing and the RPC
 * envelope's method for per-method metrics. One thread runs an epoll loop over every socket;
 * the ops server (sb_ops) runs on threads of its own and only reads atomics and metrics. */
#ifndef MESH_SIDECAR_H
#define MESH_SIDECAR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sb_config.h"
#include "sb_util_backoff.h"

struct sb_series;
struct sb_metric;
struct ssl_st;
struct ssl_ctx_st;
struct x509_st;

/* sp.c */
#define MESH_SP_HDR_LEN  8
#define MESH_SP_REQ0     0x30
#define MESH_SP_REP0     0x31
#define MESH_SP_MAX_HOPS 16 /* backtrace words accepted before the request id */
#define MESH_METHOD_MAX  128
/* mesh_sp_header_parse checks the 8-byte SP connection header at b (n bytes available) and
 * returns 0 with the peer's protocol in *proto, 1 when fewer than 8 bytes are there, or -1
 * when the bytes are not an SP header. */
int mesh_sp_header_parse(const uint8_t *b, size_t n, uint16_t *proto);
/* mesh_sp_header_write writes the SP header of protocol proto to out. */
void mesh_sp_header_write(uint8_t out[MESH_SP_HDR_LEN], uint16_t proto);
/* mesh_sp_frame looks for one length-prefixed message at b (n bytes): 0 with its total size
 * (8 + length) in *frame_len, 1 when more bytes are needed, -1 when the length exceeds max. */
int mesh_sp_frame(const uint8_t *b, size_t n, size_t max, size_t *frame_len);
/* mesh_sp_backtrace finds the REQ/REP backtrace at the start of a message body: 0 with its
 * length (a multiple of 4) and the request id (top bit set), or -1 when no word with the top
 * bit set comes within MESH_SP_MAX_HOPS words. */
int mesh_sp_backtrace(const uint8_t *body, size_t n, size_t *bt_len, uint32_t *id);
/* One top-level field mesh_pb_scan should report: field number and wire type in, the last
 * occurrence out (ptr/len for length-delimited, varint for varints). */
struct mesh_pb_want {
	uint32_t field;
	unsigned type;
	bool found;
	const uint8_t *ptr;
	size_t len;
	uint64_t varint;
};
/* mesh_pb_scan walks every top-level field of the protobuf message msg (n bytes), checking
 * that keys, varints and lengths are well formed and stay inside it, and fills want. Returns 0,
 * or -1 when the message is malformed or a wanted field has another wire type. */
int mesh_pb_scan(const uint8_t *msg, size_t n, struct mesh_pb_want *want, size_t nwant);
/* mesh_method_valid tells whether s (n bytes) is a method name "<service>.<Rpc>": 1 to
 * MESH_METHOD_MAX bytes of [A-Za-z0-9_] with exactly one inner dot. */
bool mesh_method_valid(const uint8_t *s, size_t n);
/* mesh_envelope_method reads an rpc.Request: 0 with its method (field 1, valid as
 * mesh_method_valid says) and payload (field 2, empty when absent) pointing into env, or -1
 * when the envelope is malformed or its method missing or invalid. */
int mesh_envelope_method(const uint8_t *env, size_t n, const uint8_t **method, size_t *mlen,
                         const uint8_t **payload, size_t *plen);
/* mesh_batch_next returns the next packed Request of an rpc.Batch being walked from *p to end:
 * 0 with it in req/rlen, 1 at the end, -1 when the batch is malformed. */
int mesh_batch_next(const uint8_t **p, const uint8_t *end, const uint8_t **req, size_t *rlen);
/* mesh_response_code reads the code (field 1) of an rpc.Response: 0 (code 0 when absent) or
 * -1 when malformed. */
int mesh_response_code(const uint8_t *resp, size_t n, uint32_t *code);
/* mesh_sp_reply writes into out (cap bytes) a whole SP message answering the request whose
 * backtrace is bt: length, backtrace, Response{code, message} (msg cut at 1024 bytes).
 * Returns its size, or 0 when cap is too small (cap >= 8 + bt_len + 1050 always suffices). */
size_t mesh_sp_reply(uint8_t *out, size_t cap, const uint8_t *bt, size_t bt_len, uint32_t code,
                     const char *msg);

/* policy.c */
#define MESH_ID_MAX 256
/* A SPIFFE ID taken apart: spiffe://<td>/ns/<ns>/sa/<sa>. */
struct mesh_id {
	char td[64], ns[64], sa[64];
};
/* mesh_id_parse parses a SPIFFE ID of the form above (each part 1..63 of [a-z0-9.-_]).
 * Returns 0 or -1. */
int mesh_id_parse(const char *uri, size_t n, struct mesh_id *out);
/* One rule: callers (a service account name or "*") may (or, deny, may not) call methods
 * matching glob (fnmatch, e.g. "messages.*", "auth.Admin*"). */
struct mesh_rule {
	char caller[64];
	char glob[MESH_METHOD_MAX + 1];
	bool deny;
};
struct mesh_policy {
	struct mesh_rule *rules;
	size_t n;
};
/* mesh_policy_parse parses a rule list "caller=glob caller=!glob ..." (separated by spaces,
 * commas or semicolons) into p (freed with mesh_policy_free). Returns 0, or -1 with the reason
 * in err. An empty list allows nobody. */
int mesh_policy_parse(const char *text, struct mesh_policy *p, char *err, size_t errlen);
void mesh_policy_free(struct mesh_policy *p);
/* mesh_policy_caller tells whether caller (a service account) is named by an allow rule (or
 * "*"): the connection-level check. */
bool mesh_policy_caller(const struct mesh_policy *p, const char *caller);
/* mesh_policy_method tells whether caller may call method (NUL-terminated): no deny rule of
 * the caller (or "*") matches it, and an allow rule does. */
bool mesh_policy_method(const struct mesh_policy *p, const char *caller, const char *method);

/* tls.c */
/* The identity files and the contexts made from them. The loop thread owns it; ops threads
 * read only the atomics. */
struct mesh_tls {
	char *cert, *key, *ca;
	struct ssl_ctx_st *server, *client; /* current contexts (each connection holds a ref) */
	struct {
		long long mtime_ns, size, ino;
	} stamp[3];
	char self_id[MESH_ID_MAX];   /* our own SPIFFE ID, from our certificate */
	_Atomic long long not_after; /* expiry of our certificate, Unix seconds */
	atomic_bool loaded;
};
/* mesh_tls_load loads cert, key and ca into new server and client contexts (TLS 1.3 only,
 * peer verification against ca) and swaps them in; the old contexts stay alive for the
 * connections made from them. Returns 0, or -1 (logged) leaving the previous ones. */
int mesh_tls_load(struct mesh_tls *t);
/* mesh_tls_changed tells whether one of the three files changed since the last load. */
bool mesh_tls_changed(struct mesh_tls *t);
void mesh_tls_free(struct mesh_tls *t);
/* mesh_tls_peer_id copies the single URI SAN of the peer's certificate on s to out and
 * returns 0, or -1 (no certificate, no or several URI SANs, too long). */
int mesh_tls_peer_id(struct ssl_st *s, char *out, size_t n);
/* mesh_tls_cert_id reads the single URI SAN of cert into out. Returns 0 or -1. */
int mesh_tls_cert_id(struct x509_st *cert, char *out, size_t n);

/* config.c */
struct mesh_cfg {
	char *log_level;
	char *ops_addr;
	long long ops_port;
	char *service; /* our service account name */
	char *trust_domain;
	char *ns;
	char *cert, *key, *ca;
	char *inbound;  /* host:port of the mTLS listener, or "" for none */
	char *target;   /* host:port of the local service */
	char *outbound; /* name=listen>remote|remote ... */
	char *allow;    /* policy text */
	long long connect_timeout_ms;
	long long handshake_timeout_ms;
	long long idle_timeout_ms;
	long long max_frame;
	long long reload_ms;
	long long eject_failures;
	long long eject_base_ms;
	long long eject_max_ms;
	long long max_conns;
	long long grace_ms;
};
extern const struct sb_cfg_key mesh_cfg_table[];
/* mesh_addr_parse resolves "host:port" (IPv4, [IPv6] or a name) into sa. Returns 0 or -1. */
int mesh_addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len);

/* One remote sidecar endpoint of an upstream, with its ejection state. */
struct mesh_endpoint {
	char addr[128];
	struct sockaddr_storage sa;
	socklen_t salen;
	uint32_t failures;     /* consecutive connect/handshake failures */
	int64_t ejected_until; /* monotonic ms; 0 = in rotation */
	struct sb_backoff backoff;
};
/* An upstream: the local port the service dials and the sidecars that serve it. */
struct mesh_upstream {
	char name[64];
	char listen[128];
	char expect_id[MESH_ID_MAX]; /* the SPIFFE ID its sidecars must present */
	struct mesh_endpoint *eps;
	size_t neps;
	size_t next; /* round robin */
	struct sb_series *ejected_gauge, *ejections;
};
/* mesh_upstreams_parse parses cfg->outbound into *ups (*n entries; freed with free()), the
 * expected identity built from the trust domain and namespace. Returns 0 or -1 with err. */
int mesh_upstreams_parse(const struct mesh_cfg *cfg, struct mesh_upstream **ups, size_t *n,
                         char *err, size_t errlen);

/* metrics.c */
enum { MESH_IN = 0, MESH_OUT = 1 };
struct mesh_dir_metrics {
	struct sb_series *open, *close, *open_conns, *rd, *wr, *duration, *malformed;
};
struct mesh_metrics {
	struct mesh_dir_metrics dir[2];
	struct sb_series *authz_allow, *deny_no_cert, *deny_untrusted, *deny_tls, *deny_identity;
	struct sb_metric *deny_method, *requests, *latency;
	struct sb_series *reload_ok, *reload_fail;
};
/* Per-method series of one direction, cached (the registry lookup takes a lock). */
struct mesh_method_stats {
	const char *label; /* the method, or "other" past MESH_METHODS_MAX */
	struct sb_series *requests;
	struct sb_series *latency_ok, *latency_err;
};
/* mesh_metrics_init registers every family. Returns 0 or -1. */
int mesh_metrics_init(struct mesh_metrics *m);
/* mesh_metrics_method returns the cached series of method in direction dir (method names
 * beyond MESH_METHODS_MAX distinct ones share the label "other"). */
const struct mesh_method_stats *mesh_metrics_method(struct mesh_metrics *m, int dir,
                                                    const char *method);
#define MESH_METHODS_MAX 512

/* proxy.c */
struct mesh;
/* mesh_listen opens the inbound listener (if configured) and one per upstream, storing the
 * bound ports. Returns 0 or -1 (logged). */
int mesh_listen(struct mesh *mesh);
/* mesh_proxy_run runs the event loop until shutdown is requested. Returns 0 or -1. */
int mesh_proxy_run(struct mesh *mesh);

/* The process: configuration, identity, listeners and counters. */
struct mesh {
	struct mesh_cfg cfg;
	struct mesh_tls tls;
	struct mesh_policy policy;
	struct mesh_upstream *ups;
	size_t nups;
	struct mesh_metrics metrics;
	struct sockaddr_storage target;
	socklen_t target_len;
	int epfd;
	int in_fd;    /* mTLS listener, -1 without inbound */
	int *out_fds; /* one per upstream */
	int in_port;  /* bound port of the inbound listener */
	int *out_ports;
	atomic_int conns[2]; /* open connections per direction */
	atomic_bool running;
	atomic_bool draining; /* SIGTERM: finishing the requests in flight */
};

#endif
