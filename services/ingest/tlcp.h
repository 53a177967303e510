/* tlcp.h: the pieces of TLCP 2.x (Lightstreamer's Text Lightstreamer Client Protocol) that
 * sb-ingest speaks, as pure functions: no I/O, no global state, so they can be unit-tested and
 * fuzzed.
 *
 *   server lines   tlcp_parse_line: one notification line (CRLF removed) into struct tlcp_msg,
 *                  pointing into the line (no copy);
 *   update values  tlcp_decode_values: the value part of a U line ("v1|v2|...") into one
 *                  struct tlcp_fv per field of the schema, with the second-level syntax decoded
 *                  (empty token: unchanged; "#": null; "$": empty string; "^N": N unchanged
 *                  fields; anything else percent-decoded, which must give valid UTF-8);
 *                  tlcp_encode_values is its inverse (the simulator's and the fuzzer's side);
 *   requests       tlcp_req_*: the text a client sends on a WebSocket ("create_session\r\n"
 *                  followed by form-encoded parameters, and so on).
 *
 * Recovery counting: the server numbers its "data notifications" (U, CS, EOS, OV, CONF, SUBOK,
 * SUBCMD, UNSUB, MSGDONE, MSGFAIL) from 1 within a session; tlcp_msg_is_data says which. A
 * client resuming a session with LS_recovery_from=N has seen N of them; the server answers
 * PROG,M (M <= N) and resends from M+1, so the client skips N-M before counting fresh ones. */
#ifndef SB_INGEST_TLCP_H
#define SB_INGEST_TLCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sb_buf;

/* The WebSocket subprotocol and path a TLCP 2.5 client uses. */
#define TLCP_WS_PROTOCOL "TLCP-2.5.0.lightstreamer.com"
#define TLCP_WS_PATH     "/lightstreamer"

/* Largest field count, item count and "^N" run we accept. */
#define TLCP_MAX_FIELDS 1024

enum tlcp_msg_type {
	TLCP_MSG_UNKNOWN = 0, /* a line we do not act on (counted, ignored) */
	TLCP_MSG_CONOK,       /* CONOK,<session>,<request limit>,<keepalive ms>,<control link> */
	TLCP_MSG_SUBOK,       /* SUBOK,<sub>,<items>,<fields> */
	TLCP_MSG_U,           /* U,<sub>,<item>,<values> */
	TLCP_MSG_PROBE,       /* PROBE */
	TLCP_MSG_LOOP,        /* LOOP,<expected delay ms> */
	TLCP_MSG_SYNC,        /* SYNC,<seconds since session start> */
	TLCP_MSG_PROG,        /* PROG,<progressive> */
	TLCP_MSG_CONERR,      /* CONERR,<code>,<message> */
	TLCP_MSG_REQERR,      /* REQERR,<request id>,<code>,<message> */
	TLCP_MSG_REQOK,       /* REQOK[,<request id>] */
	TLCP_MSG_END,         /* END,<code>,<message> */
	TLCP_MSG_ERROR,       /* ERROR,<code>,<message> */
	TLCP_MSG_CS,          /* CS,<sub>,<item> (clear snapshot) */
	TLCP_MSG_EOS,         /* EOS,<sub>,<item> (end of snapshot) */
	TLCP_MSG_OV,          /* OV,<sub>,<item>,<lost updates> */
	TLCP_MSG_CONF,        /* CONF,<sub>,<frequency>,<filtered|unfiltered> */
	TLCP_MSG_UNSUB,       /* UNSUB,<sub> */
	TLCP_MSG_SUBCMD,      /* SUBCMD,... (COMMAND mode; we never ask for it) */
	TLCP_MSG_MSGDONE,     /* MSGDONE,... */
	TLCP_MSG_MSGFAIL,     /* MSGFAIL,... */
	TLCP_MSG_NOOP,        /* NOOP,... */
	TLCP_MSG_WSOK,        /* WSOK */
	TLCP_MSG_SERVNAME,    /* SERVNAME,<name> */
	TLCP_MSG_CLIENTIP,    /* CLIENTIP,<ip> */
	TLCP_MSG_CONS,        /* CONS,<bandwidth> */
};

/* A piece of the parsed line (not NUL-terminated). */
struct tlcp_str {
	const char *p;
	size_t n;
};

/* One parsed notification. Only the members of its type are set; strings point into the line. */
struct tlcp_msg {
	enum tlcp_msg_type type;
	struct tlcp_str name;    /* the line's first token (UNKNOWN: what it was) */
	struct tlcp_str session; /* CONOK */
	struct tlcp_str text;    /* CONERR, REQERR, END, ERROR: message (percent-encoded);
	                          * U: the values; CONOK: control link; CONF: frequency */
	int64_t sub;             /* SUBOK, U, CS, EOS, OV, CONF, UNSUB */
	int64_t item;            /* U, CS, EOS, OV; SUBOK: item count */
	int64_t n;               /* SUBOK: field count; LOOP: delay; SYNC: seconds; PROG;
	                          * CONOK: keepalive ms; OV: lost; REQOK/REQERR: request id (-1 if
	                          * absent) */
	int64_t code;            /* CONERR, REQERR, END, ERROR */
};

/* tlcp_parse_line parses one line (n bytes, without its CRLF; NUL not needed) into *m. Returns
 * 0 (an unknown but well-formed notification gives TLCP_MSG_UNKNOWN), or SB_EPROTO for a known
 * notification with missing or malformed arguments (numbers must be decimal, non-negative and
 * fit in 62 bits; item and field counts at most TLCP_MAX_FIELDS). */
int tlcp_parse_line(const char *line, size_t n, struct tlcp_msg *m);

/* tlcp_msg_is_data tells whether a notification of type t counts for recovery (see above). */
bool tlcp_msg_is_data(enum tlcp_msg_type t);

/* tlcp_msg_type_name returns the wire name of t ("CONOK", ...; "?" for UNKNOWN). */
const char *tlcp_msg_type_name(enum tlcp_msg_type t);

/* tlcp_next_line finds the next CRLF-terminated line in buf[*off..n): on success sets *line and
 * *len (CRLF excluded), advances *off past the CRLF and returns 1; returns 0 when no complete
 * line is left (*off unchanged). A lone LF also ends a line (tolerated, as servers never send
 * it but proxies might rewrite). */
int tlcp_next_line(const char *buf, size_t n, size_t *off, const char **line, size_t *len);

/* One decoded field of an update. */
enum tlcp_fv_kind {
	TLCP_FV_UNCHANGED = 0,
	TLCP_FV_NULL = 1,
	TLCP_FV_VALUE = 2, /* val/len hold the decoded bytes ("" for "$") */
};

struct tlcp_fv {
	enum tlcp_fv_kind kind;
	char *val; /* TLCP_FV_VALUE: malloc'ed, NUL-terminated, valid UTF-8; else NULL */
	size_t len;
};

/* tlcp_decode_values decodes the value part of a U line (n bytes at p) for a schema of nfields
 * fields into out[0..nfields). On success every out[i] is set and the caller frees them with
 * tlcp_fv_clear. Returns 0; SB_EPROTO when the fields do not add up to nfields exactly, a "^N"
 * run is malformed or zero, a percent escape is bad, a value is not UTF-8, or a diff format
 * ("^P", "^T") is used, which we never ask for; SB_EINVAL for nfields outside 1..TLCP_MAX_FIELDS;
 * SB_ENOMEM. On error out holds nothing to free. */
int tlcp_decode_values(const char *p, size_t n, size_t nfields, struct tlcp_fv *out);

/* tlcp_fv_clear frees the values of out[0..nfields) and marks them unchanged. */
void tlcp_fv_clear(struct tlcp_fv *out, size_t nfields);

/* tlcp_encode_values appends the wire form of in[0..nfields) to b: runs of two or more
 * unchanged fields as "^N", one as an empty token, null as "#", the empty string as "$", other
 * values percent-encoded ('%', '|', '#', '$', '^', and bytes below 0x20 and 0x7f). Returns 0,
 * SB_EINVAL or SB_ENOMEM. */
int tlcp_encode_values(struct sb_buf *b, const struct tlcp_fv *in, size_t nfields);

/* tlcp_pct_decode percent-decodes p[0..n) into a new NUL-terminated string *out (caller frees),
 * its length in *outlen (may be NULL). Returns 0, SB_EPROTO for a bad escape or SB_ENOMEM. */
int tlcp_pct_decode(const char *p, size_t n, char **out, size_t *outlen);

/* Parameters of a create_session request. Strings may be NULL (left out). */
struct tlcp_create {
	const char *adapter_set;
	const char *user;
	const char *password;
	const char *cid;
	int64_t keepalive_ms; /* LS_keepalive_millis, 0 to leave it to the server */
};

/* tlcp_req_create_session appends "wsok\r\n"-free request text: "create_session\r\n" and the
 * form-encoded parameters (LS_cid, LS_adapter_set, LS_user, LS_password, LS_keepalive_millis,
 * LS_send_sync=true). Returns 0 or SB_ENOMEM. */
int tlcp_req_create_session(struct sb_buf *b, const struct tlcp_create *c);

/* tlcp_req_bind_session appends "bind_session\r\nLS_session=<s>" and, when recovery_from >= 0,
 * "&LS_recovery_from=<n>"; keepalive_ms > 0 adds LS_keepalive_millis. Returns 0, SB_EINVAL or
 * SB_ENOMEM. */
int tlcp_req_bind_session(struct sb_buf *b, const char *session, int64_t recovery_from,
                          int64_t keepalive_ms);

/* tlcp_req_subscribe appends a control request subscribing items (nitems names) with the schema
 * fields (nfields names) in MERGE mode as subscription sub, request id req, with the snapshot
 * (LS_snapshot=true). Names are joined by spaces and form-encoded. Returns 0, SB_EINVAL (no
 * item or field, a name with a space or empty) or SB_ENOMEM. */
int tlcp_req_subscribe(struct sb_buf *b, int64_t req, int64_t sub, const char *const *items,
                       size_t nitems, const char *const *fields, size_t nfields);

/* tlcp_req_reconf appends a control request changing subscription sub's maximum frequency
 * (updates per second; 0 or less: "unlimited"). Returns 0 or SB_ENOMEM. */
int tlcp_req_reconf(struct sb_buf *b, int64_t req, int64_t sub, double max_freq);

/* tlcp_form_encode appends s form-encoded (unreserved characters as they are, everything else
 * %XX). Returns 0 or SB_ENOMEM. */
int tlcp_form_encode(struct sb_buf *b, const char *s);

#endif
