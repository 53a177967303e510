/* Unit tests of sb_kafka without a broker: CloudEvents headers, argument and setting checks,
 * delivery reports when no broker answers, bounded waits, and the devbus control client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_metrics.h"

/* Nothing listens on port 1 of loopback: connections are refused at once. */
#define NO_BROKER "127.0.0.1:1"

static char log_lines[8192];

static void
capture(const char *line, void *arg)
{
	(void)arg;
	size_t used = strlen(log_lines);
	snprintf(log_lines + used, sizeof(log_lines) - used, "%s", line);
}

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
hval(rd_kafka_headers_t *h, const char *name, char *buf, size_t n)
{
	const void *v;
	size_t len;
	if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	snprintf(buf, n, "%.*s", (int)len, (const char *)v);
	return buf;
}

static void
test_ce_headers_full(void **state)
{
	(void)state;
	char b[128];
	struct sb_cloudevent ce = { .id = "evt-1",
		                    .source = "/messages",
		                    .type = "sb.message.sent.v1",
		                    .subject = "conv-9",
		                    .time = "2024-01-02T03:04:05Z",
		                    .content_type = "application/json",
		                    .traceparent =
		                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
	rd_kafka_headers_t *h = NULL;
	assert_int_equal(sb_kafka_ce_headers(&ce, &h), 0);
	assert_non_null(h);
	assert_int_equal(rd_kafka_header_cnt(h), 8);
	assert_string_equal(hval(h, "ce_specversion", b, sizeof(b)), "1.0");
	assert_string_equal(hval(h, "ce_id", b, sizeof(b)), "evt-1");
	assert_string_equal(hval(h, "ce_source", b, sizeof(b)), "/messages");
	assert_string_equal(hval(h, "ce_type", b, sizeof(b)), "sb.message.sent.v1");
	assert_string_equal(hval(h, "ce_subject", b, sizeof(b)), "conv-9");
	assert_string_equal(hval(h, "ce_time", b, sizeof(b)), "2024-01-02T03:04:05Z");
	assert_string_equal(hval(h, "content-type", b, sizeof(b)), "application/json");
	assert_string_equal(hval(h, "traceparent", b, sizeof(b)), ce.traceparent);
	rd_kafka_headers_destroy(h);
}

static void
test_ce_headers_defaults(void **state)
{
	(void)state;
	char b[128];
	struct sb_cloudevent ce = { .id = "e2", .source = "/s", .type = "t" };
	rd_kafka_headers_t *h = NULL;
	assert_int_equal(sb_kafka_ce_headers(&ce, &h), 0);
	assert_int_equal(rd_kafka_header_cnt(h), 6);
	assert_null(hval(h, "ce_subject", b, sizeof(b)));
	assert_null(hval(h, "traceparent", b, sizeof(b)));
	assert_string_equal(hval(h, "content-type", b, sizeof(b)), "application/x-protobuf");
	/* now, UTC, RFC 3339 with milliseconds: 2024-01-02T03:04:05.678Z */
	assert_non_null(hval(h, "ce_time", b, sizeof(b)));
	assert_int_equal(strlen(b), 24);
	assert_int_equal(b[10], 'T');
	assert_int_equal(b[19], '.');
	assert_int_equal(b[23], 'Z');
	struct tm tm = { 0 };
	assert_non_null(strptime(b, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t t = timegm(&tm);
	assert_true(llabs((long long)(t - time(NULL))) < 5);
	rd_kafka_headers_destroy(h);
}

static void
test_ce_headers_required(void **state)
{
	(void)state;
	rd_kafka_headers_t *h = NULL;
	struct sb_cloudevent no_id = { .source = "/s", .type = "t" };
	struct sb_cloudevent empty_type = { .id = "i", .source = "/s", .type = "" };
	struct sb_cloudevent no_source = { .id = "i", .type = "t" };
	assert_int_equal(sb_kafka_ce_headers(&no_id, &h), SB_EINVAL);
	assert_int_equal(sb_kafka_ce_headers(&empty_type, &h), SB_EINVAL);
	assert_int_equal(sb_kafka_ce_headers(&no_source, &h), SB_EINVAL);
	assert_int_equal(sb_kafka_ce_headers(NULL, &h), SB_EINVAL);
	assert_null(h);
}

static void
test_producer_bad_settings(void **state)
{
	(void)state;
	struct sb_kafka_producer *p = NULL;
	const char *const unknown[] = { "no.such.setting", "1", NULL };
	const char *const badval[] = { "compression.type", "bogus", NULL };
	const char *const novalue[] = { "linger.ms", NULL };

	log_lines[0] = '\0';
	sb_log_set_sink(capture, NULL);
	assert_int_equal(sb_kafka_producer_new(NO_BROKER, unknown, &p), SB_EINVAL);
	assert_non_null(strstr(log_lines, "\"no.such.setting\""));
	assert_int_equal(sb_kafka_producer_new(NO_BROKER, badval, &p), SB_EINVAL);
	assert_non_null(strstr(log_lines, "\"compression.type\""));
	assert_int_equal(sb_kafka_producer_new(NO_BROKER, novalue, &p), SB_EINVAL);
	assert_int_equal(sb_kafka_producer_new(NULL, NULL, &p), SB_EINVAL);
	assert_int_equal(sb_kafka_producer_new("", NULL, &p), SB_EINVAL);
	sb_log_set_sink(NULL, NULL);
	assert_null(p);
}

struct dr_count {
	int calls;
	int last_err;
};

static void
on_dr(int err, const char *errstr, void *opaque)
{
	struct dr_count *c = opaque;
	(void)errstr;
	c->calls++;
	c->last_err = err;
}

/* With no broker, produce is accepted, flush reports the leftovers in bounded time, and free
 * reports each pending message exactly once as closed; a rejected produce never reports. */
static void
test_producer_no_broker(void **state)
{
	(void)state;
	struct sb_kafka_producer *p = NULL;
	struct dr_count dr = { 0, 0 }, never = { 0, 0 };
	struct sb_cloudevent ce = { .id = "e", .source = "/s", .type = "t" };
	const char *const zstd[] = { "compression.type", "zstd", NULL };

	sb_log_set_level(SB_LOG_ERROR);
	assert_int_equal(sb_kafka_producer_new(NO_BROKER, zstd, &p), 0);
	assert_int_equal(sb_kafka_produce(p, "t", "k", 1, "v", 1, &ce, on_dr, &dr), 0);
	assert_int_equal(sb_kafka_produce(p, "t", "k", 1, "v", 1, &ce, on_dr, &dr), 0);
	assert_int_equal(sb_kafka_produce(p, "t", "k", 1, "v", 1, NULL, on_dr, &never), SB_EINVAL);
	assert_int_equal(sb_kafka_produce(p, NULL, "k", 1, "v", 1, &ce, on_dr, &never), SB_EINVAL);
	assert_int_equal(sb_kafka_produce(p, "t", NULL, 3, "v", 1, &ce, on_dr, &never), SB_EINVAL);
	assert_true(sb_kafka_producer_outq_len(p) >= 2);

	long long t0 = now_ms();
	assert_int_equal(sb_kafka_flush(p, 300), SB_ETIMEDOUT);
	long long took = now_ms() - t0;
	assert_true(took >= 250 && took < 2000);
	assert_int_equal(dr.calls, 0);

	char detail[128];
	t0 = now_ms();
	assert_int_equal(sb_kafka_ping(sb_kafka_producer_handle(p), 300, detail, sizeof(detail)),
	                 SB_EUNAVAIL);
	assert_true(now_ms() - t0 < 2000);
	assert_non_null(strstr(detail, "kafka"));

	sb_kafka_producer_free(p);
	assert_int_equal(dr.calls, 2);
	assert_int_equal(dr.last_err, SB_ECLOSED);
	assert_int_equal(never.calls, 0);
	sb_log_set_level(SB_LOG_INFO);

	/* Two failed deliveries and three rejected calls (only the one with a topic is labelled),
	 * no successful one; the queue gauge is back to 0. */
	struct sb_metric *produced =
	    sb_metrics_counter("kafka_produced_total", "ignored", "topic,result");
	assert_non_null(produced);
	assert_true(sb_series_value(sb_metric_with(produced, "t", "error")) == 2.0);
	assert_true(sb_series_value(sb_metric_with(produced, "t", "ok")) == 0.0);
	struct sb_buf text = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&text), 0);
	assert_non_null(
	    strstr(text.data, "kafka_producer_queue_depth{client=\"switchboard#producer-"));
	assert_non_null(strstr(text.data, "# TYPE kafka_delivery_seconds histogram"));
	sb_buf_free(&text);
}

static void
test_consumer_bad_args(void **state)
{
	(void)state;
	struct sb_kafka_consumer *c = NULL;
	const char *const topics[] = { "t", NULL };
	const char *const none[] = { NULL };
	const char *const bad[] = { "session.timeout.ms", "abc", NULL };
	assert_int_equal(sb_kafka_consumer_new(NO_BROKER, "g", none, NULL, &c), SB_EINVAL);
	assert_int_equal(sb_kafka_consumer_new(NO_BROKER, "", topics, NULL, &c), SB_EINVAL);
	assert_int_equal(sb_kafka_consumer_new(NO_BROKER, "g", NULL, NULL, &c), SB_EINVAL);
	assert_int_equal(sb_kafka_consumer_new(NO_BROKER, "g", topics, bad, &c), SB_EINVAL);
	assert_null(c);
	/* A valid consumer with no broker: polls give nothing, close returns. */
	assert_int_equal(sb_kafka_consumer_new(NO_BROKER, "g", topics, NULL, &c), 0);
	assert_null(sb_kafka_consumer_poll(c, 100));
	assert_int_equal(sb_kafka_consumer_commit(c, NULL), SB_EINVAL);
	sb_kafka_consumer_close(c);
}

static void
test_ensure_topics_bounded(void **state)
{
	(void)state;
	char err[256];
	const struct sb_kafka_topic_spec bad[] = { { "sb.messages.v1", 0, 1, 0 } };
	const struct sb_kafka_topic_spec bad_rf[] = { { "sb.messages.v1", 3, -2, 0 } };
	const struct sb_kafka_topic_spec topics[] = { { "sb.messages.v1", 3, -1, 3600000 } };
	char name[16];

	assert_int_equal(sb_kafka_ensure_topics(NO_BROKER, bad, 1, 1000, err, sizeof(err)),
	                 SB_EINVAL);
	assert_non_null(strstr(err, "invalid"));
	assert_int_equal(sb_kafka_ensure_topics(NO_BROKER, bad_rf, 1, 1000, err, sizeof(err)),
	                 SB_EINVAL);
	assert_non_null(strstr(err, "sb.messages.v1"));
	assert_int_equal(sb_kafka_ensure_topics(NO_BROKER, topics, 0, 1000, err, sizeof(err)),
	                 SB_EINVAL);
	assert_int_equal(sb_kafka_topic_name("t1.", "sb.x", name, sizeof(name)), 0);
	assert_string_equal(name, "t1.sb.x");
	assert_int_equal(sb_kafka_topic_name(NULL, "sb.x", name, sizeof(name)), 0);
	assert_string_equal(name, "sb.x");
	assert_int_equal(sb_kafka_topic_name("a-long-prefix.", "sb.x", name, sizeof(name)),
	                 SB_ERANGE);
	sb_log_set_level(SB_LOG_ERROR);
	long long t0 = now_ms();
	assert_int_equal(sb_kafka_ensure_topics(NO_BROKER, topics, 1, 500, err, sizeof(err)),
	                 SB_EUNAVAIL);
	assert_true(now_ms() - t0 < 3000);
	assert_non_null(strstr(err, NO_BROKER));
	sb_log_set_level(SB_LOG_INFO);
}

/* A one-shot fake control server: answers the first line with the reply given (or nothing). */
struct fake_ctl {
	int lfd;
	const char *reply;
	char got[128];
};

static void *
fake_ctl_run(void *arg)
{
	struct fake_ctl *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	ssize_t r = recv(fd, f->got, sizeof(f->got) - 1, 0);
	f->got[r > 0 ? r : 0] = '\0';
	if (f->reply)
		send(fd, f->reply, strlen(f->reply), MSG_NOSIGNAL);
	else
		usleep(600 * 1000);
	close(fd);
	return NULL;
}

static int
fake_ctl_start(struct fake_ctl *f, const char *reply, pthread_t *t, char *addr, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t sl = sizeof(sa);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	f->reply = reply;
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(f->lfd, 1) != 0)
		return -1;
	getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
	snprintf(addr, n, "127.0.0.1:%d", ntohs(sa.sin_port));
	return pthread_create(t, NULL, fake_ctl_run, f);
}

static void
test_devbus_ctl_client(void **state)
{
	(void)state;
	char reply[64], addr[64];
	pthread_t t;
	struct fake_ctl f;

	assert_int_equal(sb_kafka_devbus_ctl(NO_BROKER, "ping", 500, reply, sizeof(reply)),
	                 SB_EUNAVAIL);
	assert_int_equal(sb_kafka_devbus_ctl("nocolon", "ping", 500, reply, sizeof(reply)),
	                 SB_EINVAL);
	assert_int_equal(sb_kafka_devbus_ctl(NO_BROKER, "a\nb", 500, reply, sizeof(reply)),
	                 SB_EINVAL);

	assert_int_equal(fake_ctl_start(&f, "ok pong\n", &t, addr, sizeof(addr)), 0);
	assert_int_equal(sb_kafka_devbus_ctl(addr, "ping", 2000, reply, sizeof(reply)), 0);
	pthread_join(t, NULL);
	close(f.lfd);
	assert_string_equal(f.got, "ping\n");
	assert_string_equal(reply, "ok pong");

	assert_int_equal(fake_ctl_start(&f, "err broker id must be 1..3\n", &t, addr, sizeof(addr)),
	                 0);
	assert_int_equal(sb_kafka_devbus_ctl(addr, "down 9", 2000, reply, sizeof(reply)),
	                 SB_EPROTO);
	pthread_join(t, NULL);
	close(f.lfd);
	assert_string_equal(reply, "err broker id must be 1..3");

	assert_int_equal(fake_ctl_start(&f, NULL, &t, addr, sizeof(addr)), 0);
	long long t0 = now_ms();
	assert_int_equal(sb_kafka_devbus_ctl(addr, "ping", 200, reply, sizeof(reply)),
	                 SB_ETIMEDOUT);
	assert_true(now_ms() - t0 < 1000);
	pthread_join(t, NULL);
	close(f.lfd);
}

static void
test_header_bad_args(void **state)
{
	(void)state;
	char buf[8];
	assert_int_equal(sb_kafka_header(NULL, "ce_id", buf, sizeof(buf)), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ce_headers_full),
		cmocka_unit_test(test_ce_headers_defaults),
		cmocka_unit_test(test_ce_headers_required),
		cmocka_unit_test(test_producer_bad_settings),
		cmocka_unit_test(test_producer_no_broker),
		cmocka_unit_test(test_consumer_bad_args),
		cmocka_unit_test(test_ensure_topics_bounded),
		cmocka_unit_test(test_devbus_ctl_client),
		cmocka_unit_test(test_header_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
