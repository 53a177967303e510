/* sb_span.h: spans of a distributed trace, exported with OTLP/HTTP (protobuf).
 *
 * A span is one timed piece of work (an HTTP request at the edge, an RPC served, a group
 * commit, a Kafka record produced or consumed, a Redis publish, a delivery to sockets) with
 * the W3C trace context it belongs to (sb_util_trace.h). A service starts a span with its
 * parent's context (from a traceparent header, an RPC envelope, a Kafka header, a Redis frame)
 * and passes the span's own context on, so that one message's spans form one tree across the
 * processes.
 *
 * Export: one exporter per process (sb_span_exporter_start, done by sb_service from
 * SB_OTLP_ENDPOINT). sb_span_end copies a sampled span into a bounded queue and returns; a
 * thread sends batches as ExportTraceServiceRequest to <endpoint>/v1/traces. When the queue is
 * full or the collector does not answer, spans are dropped and counted
 * (otlp_spans_dropped_total{reason}); a request is never slowed by tracing. Without an
 * endpoint nothing is queued, but contexts are still made and propagated. */
#ifndef SB_SPAN_H
#define SB_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_util_trace.h"

enum sb_span_kind {
	SB_SPAN_INTERNAL = 1, /* the values of OTLP's Span.SpanKind */
	SB_SPAN_SERVER = 2,
	SB_SPAN_CLIENT = 3,
	SB_SPAN_PRODUCER = 4,
	SB_SPAN_CONSUMER = 5,
};

#define SB_SPAN_NAME_MAX  64
#define SB_SPAN_ATTRS_MAX 6
#define SB_SPAN_KEY_MAX   32
#define SB_SPAN_VAL_MAX   96

struct sb_span_attr {
	char key[SB_SPAN_KEY_MAX];
	char sval[SB_SPAN_VAL_MAX]; /* when !is_int */
	int64_t ival;
	bool is_int;
};

struct sb_span {
	struct sb_trace_ctx ctx; /* this span: its trace id, its own span id, the flags */
	uint8_t parent[8];
	bool has_parent;
	bool error;
	char name[SB_SPAN_NAME_MAX];
	enum sb_span_kind kind;
	int64_t start_ns, end_ns; /* Unix time in nanoseconds */
	int nattrs;
	struct sb_span_attr attrs[SB_SPAN_ATTRS_MAX];
	char status[SB_SPAN_VAL_MAX]; /* the error's message, when error */
};

/* sb_span_exporter_start starts the process's exporter for service (the resource's
 * service.name) sending to endpoint ("http://host:port", an optional path replacing
 * "/v1/traces"); an empty endpoint leaves export off (returns 0). sample_percent (0-100) is
 * the share of new traces (those started without a parent) marked sampled. Returns 0, SB_EINVAL
 * for an endpoint that is not such a URL, or SB_ENOMEM. */
int sb_span_exporter_start(const char *service, const char *endpoint, int sample_percent);
/* sb_span_exporter_stop sends what is queued (for at most grace_ms) and stops the thread. */
void sb_span_exporter_stop(int grace_ms);
/* sb_span_exporting tells whether spans are being exported. */
bool sb_span_exporting(void);

/* sb_span_start starts s, a child of parent (NULL, or a context without a trace id: a new
 * trace, sampled as configured). */
void sb_span_start(struct sb_span *s, const char *name, enum sb_span_kind kind,
                   const struct sb_trace_ctx *parent);
/* sb_span_start_tp is sb_span_start with the parent as a traceparent value (NULL or invalid:
 * a new trace). */
void sb_span_start_tp(struct sb_span *s, const char *name, enum sb_span_kind kind,
                      const char *traceparent);
/* sb_span_resume makes s the span whose context ctx (and parent, NULL: none) was made earlier
 * by sb_span_start and handed on, started at start_ns: for work that keeps a compact context
 * per item (a batch of thousands) instead of a whole struct sb_span. */
void sb_span_resume(struct sb_span *s, const char *name, enum sb_span_kind kind,
                    const struct sb_trace_ctx *ctx, const uint8_t *parent, int64_t start_ns);
/* sb_span_attr and sb_span_attr_int add an attribute (beyond SB_SPAN_ATTRS_MAX: ignored;
 * values cut to SB_SPAN_VAL_MAX - 1 bytes on a UTF-8 boundary). */
void sb_span_attr(struct sb_span *s, const char *key, const char *value);
void sb_span_attr_int(struct sb_span *s, const char *key, int64_t value);
/* sb_span_fail marks s as failed with message (its status). */
void sb_span_fail(struct sb_span *s, const char *message);
/* sb_span_end ends s now and queues it for export when sampled and export is on. */
void sb_span_end(struct sb_span *s);
/* sb_span_traceparent writes s's own context as a traceparent (for the next hop). */
void sb_span_traceparent(const struct sb_span *s, char out[SB_TRACEPARENT_LEN + 1]);

/* sb_span_encode writes spans[0..n) of service as a packed ExportTraceServiceRequest into *out
 * (malloc'd, *len bytes). Returns 0 or SB_ENOMEM. Exposed for the tests. */
int sb_span_encode(const char *service, const struct sb_span *spans, int n, uint8_t **out,
                   size_t *len);

#endif
