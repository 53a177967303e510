/* sb_span_test.c: span contexts, the OTLP encoding (decoded back with protobuf-c), endpoints,
 * and export to a collector that answers and to one that does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_span.h"

#define TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static void
test_child_of_a_traceparent(void **state)
{
	(void)state;
	struct sb_span s;
	char tp[SB_TRACEPARENT_LEN + 1];
	sb_span_start_tp(&s, "messages.Send", SB_SPAN_SERVER, TP);
	assert_true(s.has_parent);
	sb_span_traceparent(&s, tp);
	/* same trace and flags, a new span id; the parent is the caller's span */
	assert_memory_equal(tp, "00-0af7651916cd43dd8448eb211c80319c-", 36);
	assert_string_not_equal(tp + 36, "b7ad6b7169203331-01");
	assert_string_equal(tp + 53, "01");
	static const uint8_t parent[8] = { 0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31 };
	assert_memory_equal(s.parent, parent, 8);

	/* a missing or invalid parent starts a new trace */
	sb_span_start_tp(&s, "x", SB_SPAN_SERVER, "00-nothex");
	assert_false(s.has_parent);
	sb_span_start_tp(&s, "x", SB_SPAN_SERVER, NULL);
	assert_false(s.has_parent);
}

static void
test_sampling_of_new_traces(void **state)
{
	(void)state;
	struct sb_span s;
	assert_int_equal(sb_span_exporter_start("t", "", 0), 0);
	for (int i = 0; i < 20; i++) {
		sb_span_start(&s, "x", SB_SPAN_SERVER, NULL);
		assert_false(sb_trace_sampled(&s.ctx));
	}
	assert_int_equal(sb_span_exporter_start("t", "", 100), 0);
	sb_span_start(&s, "x", SB_SPAN_SERVER, NULL);
	assert_true(sb_trace_sampled(&s.ctx));
	assert_int_equal(sb_span_exporter_start("t", "", 101), SB_EINVAL);
}

static void
test_attributes_cut_on_characters(void **state)
{
	(void)state;
	struct sb_span s;
	char v[200];
	/* 'é' is two bytes: a cut at SB_SPAN_VAL_MAX - 1 would split one */
	memset(v, 'a', 1);
	for (int i = 1; i + 1 < (int)sizeof(v); i += 2)
		memcpy(v + i, "\xc3\xa9", 2);
	v[sizeof(v) - 1] = '\0';
	sb_span_start(&s, "x", SB_SPAN_INTERNAL, NULL);
	sb_span_attr(&s, "k", v);
	size_t n = strlen(s.attrs[0].sval);
	assert_true(n < SB_SPAN_VAL_MAX);
	assert_int_equal(n % 2, 1); /* 'a' and whole two-byte characters */
	for (int i = 0; i < 10; i++)
		sb_span_attr_int(&s, "n", i);
	assert_int_equal(s.nattrs, SB_SPAN_ATTRS_MAX);
}

static void
test_encoding_decodes(void **state)
{
	(void)state;
	struct sb_span s[2];
	sb_span_start_tp(&s[0], "gateway POST /v1/messages", SB_SPAN_SERVER, TP);
	sb_span_attr(&s[0], "http.route", "/v1/messages");
	sb_span_attr_int(&s[0], "http.status_code", 202);
	sb_span_end(&s[0]);
	sb_span_start(&s[1], "commit", SB_SPAN_INTERNAL, &s[0].ctx);
	sb_span_fail(&s[1], "database unavailable");
	sb_span_end(&s[1]);

	uint8_t *buf;
	size_t len;
	assert_int_equal(sb_span_encode("sb-test", s, 2, &buf, &len), 0);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
	    opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
	        NULL, len, buf);
	free(buf);
	assert_non_null(r);
	assert_int_equal(r->n_resource_spans, 1);
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
	assert_string_equal(rs->resource->attributes[0]->key, "service.name");
	assert_string_equal(rs->resource->attributes[0]->value->string_value, "sb-test");
	assert_int_equal(rs->n_scope_spans, 1);
	assert_int_equal(rs->scope_spans[0]->n_spans, 2);
	Opentelemetry__Proto__Trace__V1__Span *a = rs->scope_spans[0]->spans[0];
	Opentelemetry__Proto__Trace__V1__Span *b = rs->scope_spans[0]->spans[1];
	assert_string_equal(a->name, "gateway POST /v1/messages");
	assert_int_equal(a->kind,
	                 OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
	assert_int_equal(a->trace_id.len, 16);
	assert_memory_equal(a->trace_id.data, s[0].ctx.trace_id, 16);
	assert_memory_equal(a->span_id.data, s[0].ctx.span_id, 8);
	assert_memory_equal(a->parent_span_id.data, s[0].parent, 8);
	assert_true(a->end_time_unix_nano >= a->start_time_unix_nano);
	assert_true(a->start_time_unix_nano > 1700000000ULL * 1000000000ULL);
	assert_int_equal(a->n_attributes, 2);
	assert_string_equal(a->attributes[0]->key, "http.route");
	assert_string_equal(a->attributes[0]->value->string_value, "/v1/messages");
	assert_int_equal(a->attributes[1]->value->int_value, 202);
	/* b is a's child, in the same trace, and failed */
	assert_memory_equal(b->trace_id.data, a->trace_id.data, 16);
	assert_memory_equal(b->parent_span_id.data, a->span_id.data, 8);
	assert_int_equal(b->status->code,
	                 OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
	assert_string_equal(b->status->message, "database unavailable");
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
	    r, NULL);
}

static void
test_bad_endpoints(void **state)
{
	(void)state;
	const char *bad[] = { "https://x:4318",
		              "x:4318",
		              "http://",
		              "http://h:0",
		              "http://h:99999",
		              "http://h:43a",
		              "http://[::1",
		              "http://h/v1 traces",
		              NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(sb_span_exporter_start("t", bad[i], 100), SB_EINVAL);
	assert_false(sb_span_exporting());
}

/* A one-request-at-a-time collector on a loopback port: answers 200 and keeps the bodies. */
static struct {
	int fd, port, requests, spans;
	char path[64];
} col;

static void *
collector(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(col.fd, NULL, NULL);
		if (c < 0)
			return NULL;
		static char buf[1 << 20];
		size_t got = 0, need = 0;
		for (ssize_t r; (r = recv(c, buf + got, sizeof(buf) - got, 0)) > 0;) {
			got += (size_t)r;
			char *end = memmem(buf, got, "\r\n\r\n", 4);
			if (end != NULL) {
				const char *cl = strcasestr(buf, "Content-Length:");
				need =
				    (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
				if (got >= need)
					break;
			}
		}
		char *body = memmem(buf, got, "\r\n\r\n", 4);
		if (body != NULL && got >= need) {
			sscanf(buf, "POST %63s", col.path);
			body += 4;
			Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
			    opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			        NULL, (size_t)(buf + got - body), (uint8_t *)body);
			if (r != NULL) {
				__atomic_add_fetch(
				    &col.spans, (int)r->resource_spans[0]->scope_spans[0]->n_spans,
				    __ATOMIC_SEQ_CST);
				opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
				    r, NULL);
			}
			__atomic_add_fetch(&col.requests, 1, __ATOMIC_SEQ_CST);
		}
		const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		if (send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL) < 0)
			fprintf(stderr, "collector: send failed\n");
		close(c);
	}
}

static double
metric(const char *line)
{
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&b), 0);
	char key[160];
	snprintf(key, sizeof(key), "\n%s", line); /* a sample line, not its # HELP */
	const char *p = strstr(b.data, key);
	double v = p ? strtod(p + strlen(key), NULL) : -1;
	sb_buf_free(&b);
	return v;
}

static void
test_export_to_a_collector_and_to_none(void **state)
{
	(void)state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	col.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(col.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(col.fd, 8), 0);
	getsockname(col.fd, (struct sockaddr *)&a, &al);
	col.port = ntohs(a.sin_port);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, collector, NULL), 0);

	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", col.port);
	assert_int_equal(sb_span_exporter_start("sb-test", ep, 100), 0);
	assert_true(sb_span_exporting());
	for (int i = 0; i < 300; i++) { /* more than one batch */
		struct sb_span s;
		sb_span_start(&s, "x", SB_SPAN_INTERNAL, NULL);
		sb_span_end(&s);
	}
	struct sb_span u; /* not sampled: never exported */
	sb_span_start_tp(&u, "x", SB_SPAN_SERVER,
	                 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
	sb_span_end(&u);
	for (int i = 0; i < 100 && __atomic_load_n(&col.spans, __ATOMIC_SEQ_CST) < 300; i++)
		usleep(50000);
	sb_span_exporter_stop(1000);
	assert_int_equal(col.spans, 300);
	assert_true(col.requests >= 2);
	assert_string_equal(col.path, "/v1/traces");
	assert_int_equal((int)metric("otlp_spans_exported_total "), 300);
	shutdown(col.fd, SHUT_RDWR);
	close(col.fd);
	pthread_join(th, NULL);

	/* the same port, now closed: spans are dropped and counted, ending spans stays quick */
	assert_int_equal(sb_span_exporter_start("sb-test", ep, 100), 0);
	for (int i = 0; i < 10; i++) {
		struct sb_span s;
		sb_span_start(&s, "x", SB_SPAN_INTERNAL, NULL);
		sb_span_end(&s);
	}
	for (int i = 0;
	     i < 100 && metric("otlp_spans_dropped_total{reason=\"export_failed\"} ") < 10; i++)
		usleep(50000);
	sb_span_exporter_stop(1000);
	assert_int_equal((int)metric("otlp_spans_dropped_total{reason=\"export_failed\"} "), 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_of_a_traceparent),
		cmocka_unit_test(test_sampling_of_new_traces),
		cmocka_unit_test(test_attributes_cut_on_characters),
		cmocka_unit_test(test_encoding_decodes),
		cmocka_unit_test(test_bad_endpoints),
		cmocka_unit_test(test_export_to_a_collector_and_to_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
