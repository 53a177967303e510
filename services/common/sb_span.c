/* sb_span.c: spans and their OTLP/HTTP export (sb_span.h).
 *
 * The queue is a fixed ring of span copies under one mutex; the exporter thread takes up to
 * SB_SPAN_BATCH of them when that many are waiting or every SB_SPAN_FLUSH_MS, encodes one
 * ExportTraceServiceRequest and POSTs it over a plain HTTP/1.1 connection (the collector is a
 * local agent or a sidecar; TLS to a remote collector is the mesh's job) with short connect
 * and read timeouts. A failed send drops its batch: spans are evidence, not data, and holding
 * them would let a dead collector grow the process. */
#include "sb_span.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_rand.h"

#define SB_SPAN_QUEUE      4096
#define SB_SPAN_BATCH      256
#define SB_SPAN_FLUSH_MS   1000
#define SB_SPAN_TIMEOUT_MS 2000

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool on;   /* exporting */
	bool stop; /* the thread should send what is queued and return */
	int sample_percent;
	char service[64];
	char host[256], port[8], path[256];
	struct sb_span *ring;
	size_t head, count;
	pthread_t thread;
	struct sb_series *exported, *drop_full, *drop_send;
} sbx = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .sample_percent = 100 };

static int64_t
sb_span_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* sb_span_copy copies src into dst (size n) cut on a UTF-8 character boundary. */
static void
sb_span_copy(char *dst, size_t n, const char *src)
{
	size_t len = src ? strlen(src) : 0;
	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

void
sb_span_start(struct sb_span *s, const char *name, enum sb_span_kind kind,
              const struct sb_trace_ctx *parent)
{
	static const uint8_t zero[16];
	memset(s, 0, sizeof(*s));
	sb_span_copy(s->name, sizeof(s->name), name);
	s->kind = kind;
	if (parent != NULL && memcmp(parent->trace_id, zero, 16) != 0) {
		memcpy(s->parent, parent->span_id, 8);
		s->has_parent = true;
		if (sb_trace_child(parent, &s->ctx) != 0)
			s->ctx = *parent;
	} else {
		int pct = __atomic_load_n(&sbx.sample_percent, __ATOMIC_RELAXED);
		int err = 0;
		bool sampled = pct >= 100 || (pct > 0 && (int)(sb_rand_u64(&err) % 100) < pct);
		sb_trace_new(&s->ctx, sampled && err == 0);
	}
	s->start_ns = sb_span_now_ns();
}

void
sb_span_start_tp(struct sb_span *s, const char *name, enum sb_span_kind kind,
                 const char *traceparent)
{
	struct sb_trace_ctx p;
	bool ok =
	    traceparent != NULL && traceparent[0] != '\0' && sb_trace_parse(traceparent, &p) == 0;
	sb_span_start(s, name, kind, ok ? &p : NULL);
}

void
sb_span_resume(struct sb_span *s, const char *name, enum sb_span_kind kind,
               const struct sb_trace_ctx *ctx, const uint8_t *parent, int64_t start_ns)
{
	memset(s, 0, sizeof(*s));
	sb_span_copy(s->name, sizeof(s->name), name);
	s->kind = kind;
	s->ctx = *ctx;
	if (parent != NULL) {
		memcpy(s->parent, parent, 8);
		s->has_parent = true;
	}
	s->start_ns = start_ns;
}

void
sb_span_attr(struct sb_span *s, const char *key, const char *value)
{
	if (s->nattrs >= SB_SPAN_ATTRS_MAX)
		return;
	struct sb_span_attr *a = &s->attrs[s->nattrs++];
	sb_span_copy(a->key, sizeof(a->key), key);
	sb_span_copy(a->sval, sizeof(a->sval), value);
	a->is_int = false;
}

void
sb_span_attr_int(struct sb_span *s, const char *key, int64_t value)
{
	if (s->nattrs >= SB_SPAN_ATTRS_MAX)
		return;
	struct sb_span_attr *a = &s->attrs[s->nattrs++];
	sb_span_copy(a->key, sizeof(a->key), key);
	a->ival = value;
	a->is_int = true;
}

void
sb_span_fail(struct sb_span *s, const char *message)
{
	s->error = true;
	sb_span_copy(s->status, sizeof(s->status), message);
}

void
sb_span_traceparent(const struct sb_span *s, char out[SB_TRACEPARENT_LEN + 1])
{
	sb_trace_format(&s->ctx, out);
}

bool
sb_span_exporting(void)
{
	return __atomic_load_n(&sbx.on, __ATOMIC_ACQUIRE);
}

void
sb_span_end(struct sb_span *s)
{
	s->end_ns = sb_span_now_ns();
	if (!sb_span_exporting() || !sb_trace_sampled(&s->ctx))
		return;
	pthread_mutex_lock(&sbx.mu);
	if (!sbx.on || sbx.ring == NULL) {
		pthread_mutex_unlock(&sbx.mu);
		return;
	}
	if (sbx.count == SB_SPAN_QUEUE) {
		pthread_mutex_unlock(&sbx.mu);
		sb_series_inc(sbx.drop_full);
		return;
	}
	sbx.ring[(sbx.head + sbx.count) % SB_SPAN_QUEUE] = *s;
	if (++sbx.count == SB_SPAN_BATCH)
		pthread_cond_signal(&sbx.cv);
	pthread_mutex_unlock(&sbx.mu);
}

/* ---- encoding ---- */

typedef Opentelemetry__Proto__Common__V1__KeyValue otlp_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue otlp_any;
typedef Opentelemetry__Proto__Trace__V1__Span otlp_span;

int
sb_span_encode(const char *service, const struct sb_span *spans, int n, uint8_t **out, size_t *len)
{
	int rv = SB_ENOMEM;
	size_t nattrs = 0;
	for (int i = 0; i < n; i++)
		nattrs += (size_t)spans[i].nattrs;
	otlp_span *sp = calloc((size_t)n + 1, sizeof(*sp));
	otlp_span **spp = calloc((size_t)n + 1, sizeof(*spp));
	otlp_kv *kv = calloc(nattrs + 1, sizeof(*kv));
	otlp_kv **kvp = calloc(nattrs + 1, sizeof(*kvp));
	otlp_any *av = calloc(nattrs + 1, sizeof(*av));
	Opentelemetry__Proto__Trace__V1__Status *st = calloc((size_t)n + 1, sizeof(*st));
	*out = NULL;
	*len = 0;
	if (sp == NULL || spp == NULL || kv == NULL || kvp == NULL || av == NULL || st == NULL)
		goto done;

	size_t k = 0;
	for (int i = 0; i < n; i++) {
		const struct sb_span *s = &spans[i];
		otlp_span *o = &sp[i];
		opentelemetry__proto__trace__v1__span__init(o);
		o->trace_id = (ProtobufCBinaryData){ 16, (uint8_t *)s->ctx.trace_id };
		o->span_id = (ProtobufCBinaryData){ 8, (uint8_t *)s->ctx.span_id };
		if (s->has_parent)
			o->parent_span_id = (ProtobufCBinaryData){ 8, (uint8_t *)s->parent };
		o->flags = s->ctx.flags;
		o->name = (char *)s->name;
		o->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
		o->start_time_unix_nano = (uint64_t)s->start_ns;
		o->end_time_unix_nano =
		    (uint64_t)(s->end_ns > s->start_ns ? s->end_ns : s->start_ns);
		o->attributes = &kvp[k];
		for (int a = 0; a < s->nattrs; a++, k++) {
			opentelemetry__proto__common__v1__key_value__init(&kv[k]);
			opentelemetry__proto__common__v1__any_value__init(&av[k]);
			kv[k].key = (char *)s->attrs[a].key;
			if (s->attrs[a].is_int) {
				av[k].value_case =
				    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
				av[k].int_value = s->attrs[a].ival;
			} else {
				av[k].value_case =
				    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
				av[k].string_value = (char *)s->attrs[a].sval;
			}
			kv[k].value = &av[k];
			kvp[k] = &kv[k];
		}
		o->n_attributes = (size_t)s->nattrs;
		opentelemetry__proto__trace__v1__status__init(&st[i]);
		st[i].code =
		    s->error
		        ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
		        : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
		if (s->error)
			st[i].message = (char *)s->status;
		o->status = &st[i];
		spp[i] = o;
	}

	otlp_any svc_v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	svc_v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	svc_v.string_value = (char *)service;
	otlp_kv svc_kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	svc_kv.key = "service.name";
	svc_kv.value = &svc_v;
	otlp_kv *res_attrs[] = { &svc_kv };
	Opentelemetry__Proto__Resource__V1__Resource res =
	    OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	res.n_attributes = 1;
	res.attributes = res_attrs;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
	    OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	scope.name = "switchboard";
	scope.version = SB_VERSION;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
	    OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	ss.scope = &scope;
	ss.n_spans = (size_t)n;
	ss.spans = spp;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[] = { &ss };
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
	    OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	rs.resource = &res;
	rs.n_scope_spans = 1;
	rs.scope_spans = ssp;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[] = { &rs };
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.n_resource_spans = 1;
	req.resource_spans = rsp;

	size_t sz =
	    opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
	        &req);
	if ((*out = malloc(sz ? sz : 1)) == NULL)
		goto done;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req,
	                                                                                      *out);
	rv = 0;
done:
	free(sp);
	free(spp);
	free(kv);
	free(kvp);
	free(av);
	free(st);
	return rv;
}

/* ---- sending ---- */

/* sb_span_wait waits up to ms for fd to be ready for events; false on timeout or error. */
static bool
sb_span_wait(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return r == 1 && (p.revents & (events | POLLHUP)) != 0;
}

/* sb_span_post sends body to the collector; returns the HTTP status, or -1. */
static int
sb_span_post(const uint8_t *body, size_t len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(sbx.host, sbx.port, &hints, &ai) != 0 || ai == NULL)
		return -1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int status = -1;
	if (fd < 0)
		goto out;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
	    (errno != EINPROGRESS || !sb_span_wait(fd, POLLOUT, SB_SPAN_TIMEOUT_MS)))
		goto out;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
		goto out;
	char head[640];
	int hl =
	    snprintf(head, sizeof(head),
	             "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/x-protobuf\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	             sbx.path, sbx.host, sbx.port, len);
	const uint8_t *parts[2] = { (const uint8_t *)head, body };
	size_t lens[2] = { (size_t)hl, len };
	for (int p = 0; p < 2; p++)
		for (size_t off = 0; off < lens[p];) {
			ssize_t w = send(fd, parts[p] + off, lens[p] - off, MSG_NOSIGNAL);
			if (w > 0) {
				off += (size_t)w;
				continue;
			}
			if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
			    sb_span_wait(fd, POLLOUT, SB_SPAN_TIMEOUT_MS))
				continue;
			goto out;
		}
	char resp[64];
	size_t got = 0;
	while (got < sizeof(resp) - 1 && sb_span_wait(fd, POLLIN, SB_SPAN_TIMEOUT_MS)) {
		ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(resp, '\n', got) != NULL)
			break;
	}
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return status;
}

/* sb_span_send encodes and posts n spans, counting the outcome. */
static void
sb_span_send(const struct sb_span *spans, int n)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int status = -1;
	if (sb_span_encode(sbx.service, spans, n, &body, &len) == 0)
		status = sb_span_post(body, len);
	free(body);
	if (status >= 200 && status < 300) {
		sb_series_add(sbx.exported, n);
		return;
	}
	sb_series_add(sbx.drop_send, n);
	/* say so once in a while, not per batch */
	static int64_t last_log;
	int64_t now = sb_span_now_ns() / 1000000000LL;
	if (now - last_log >= 60) {
		last_log = now;
		char st[16];
		snprintf(st, sizeof(st), "%d", status);
		sb_log_kv(SB_LOG_WARN, "trace export failed; spans dropped", "host", sbx.host,
		          "port", sbx.port, "status", st, NULL);
	}
}

static void *
sb_span_thread(void *arg)
{
	(void)arg;
	struct sb_span *batch = malloc(SB_SPAN_BATCH * sizeof(*batch));
	if (batch == NULL)
		return NULL;
	bool sent_stopping = false;
	pthread_mutex_lock(&sbx.mu);
	for (;;) {
		if (sbx.count < SB_SPAN_BATCH && !sbx.stop) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)SB_SPAN_FLUSH_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&sbx.cv, &sbx.mu, &until);
		}
		if (sbx.count == 0 || (sbx.stop && sent_stopping)) {
			if (sbx.stop)
				break; /* stopping: one last batch at most, the rest is dropped */
			continue;
		}
		sent_stopping = sbx.stop;
		int n = 0;
		while (sbx.count > 0 && n < SB_SPAN_BATCH) {
			batch[n++] = sbx.ring[sbx.head];
			sbx.head = (sbx.head + 1) % SB_SPAN_QUEUE;
			sbx.count--;
		}
		pthread_mutex_unlock(&sbx.mu);
		sb_span_send(batch, n);
		pthread_mutex_lock(&sbx.mu);
	}
	if (sbx.count > 0)
		sb_series_add(sbx.drop_full, (double)sbx.count);
	sbx.count = 0;
	pthread_mutex_unlock(&sbx.mu);
	free(batch);
	return NULL;
}

/* sb_span_parse_endpoint splits "http://host[:port][/path]" into sbx's fields. */
static int
sb_span_parse_endpoint(const char *url)
{
	const char *p = url;
	if (strncmp(p, "http://", 7) != 0)
		return SB_EINVAL;
	p += 7;
	size_t hl;
	if (*p == '[') {
		const char *e = strchr(p, ']');
		if (e == NULL)
			return SB_EINVAL;
		hl = (size_t)(e - p - 1);
		if (hl == 0 || hl >= sizeof(sbx.host))
			return SB_EINVAL;
		memcpy(sbx.host, p + 1, hl);
		sbx.host[hl] = '\0';
		p = e + 1;
	} else {
		hl = strcspn(p, ":/");
		if (hl == 0 || hl >= sizeof(sbx.host))
			return SB_EINVAL;
		memcpy(sbx.host, p, hl);
		sbx.host[hl] = '\0';
		p += hl;
	}
	snprintf(sbx.port, sizeof(sbx.port), "4318");
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return SB_EINVAL;
		snprintf(sbx.port, sizeof(sbx.port), "%ld", port);
		p = end;
	}
	if (*p == '\0' || strcmp(p, "/") == 0)
		snprintf(sbx.path, sizeof(sbx.path), "/v1/traces");
	else if (*p == '/' && strlen(p) < sizeof(sbx.path) && strpbrk(p, " \r\n") == NULL)
		snprintf(sbx.path, sizeof(sbx.path), "%s", p);
	else
		return SB_EINVAL;
	return 0;
}

int
sb_span_exporter_start(const char *service, const char *endpoint, int sample_percent)
{
	if (sample_percent < 0 || sample_percent > 100)
		return SB_EINVAL;
	__atomic_store_n(&sbx.sample_percent, sample_percent, __ATOMIC_RELAXED);
	if (endpoint == NULL || endpoint[0] == '\0')
		return 0;
	if (sb_span_parse_endpoint(endpoint) != 0)
		return SB_EINVAL;
	sb_span_copy(sbx.service, sizeof(sbx.service), service);
	struct sb_metric *dropped = sb_metrics_counter(
	    "otlp_spans_dropped_total", "Spans not exported: queue full, or the collector failed.",
	    "reason");
	sbx.exported = sb_metric_with(sb_metrics_counter(
	    "otlp_spans_exported_total", "Spans accepted by the OTLP collector.", NULL));
	sbx.drop_full = sb_metric_with(dropped, "queue_full");
	sbx.drop_send = sb_metric_with(dropped, "export_failed");
	if ((sbx.ring = calloc(SB_SPAN_QUEUE, sizeof(*sbx.ring))) == NULL)
		return SB_ENOMEM;
	sbx.head = sbx.count = 0;
	sbx.stop = false;
	if (pthread_create(&sbx.thread, NULL, sb_span_thread, NULL) != 0) {
		free(sbx.ring);
		sbx.ring = NULL;
		return SB_ENOMEM;
	}
	__atomic_store_n(&sbx.on, true, __ATOMIC_RELEASE);
	return 0;
}

void
sb_span_exporter_stop(int grace_ms)
{
	(void)grace_ms; /* each send is bounded by SB_SPAN_TIMEOUT_MS; the queue by its size */
	pthread_mutex_lock(&sbx.mu);
	if (!sbx.on) {
		pthread_mutex_unlock(&sbx.mu);
		return;
	}
	__atomic_store_n(&sbx.on, false, __ATOMIC_RELEASE);
	sbx.stop = true;
	pthread_cond_signal(&sbx.cv);
	pthread_mutex_unlock(&sbx.mu);
	pthread_join(sbx.thread, NULL);
	free(sbx.ring);
	sbx.ring = NULL;
}
