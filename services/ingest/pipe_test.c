/* pipe_test.c: unit tests of the pipe.
 *   watermarks        admission and watermarks (no broker: the producer points at a port nobody
 *                     listens on, so nothing is ever acknowledged and the depth only grows)
 *   failed_delivery   librdkafka's mock cluster with its broker down and message.timeout.ms
 *                     1 s: every sample's delivery report fails (timed out); the pipe keeps
 *                     them and, once the broker is up, every one is delivered (none dropped)
 *   fatal_producer    a fatal error of the idempotent producer (rd_kafka_test_fatal_error):
 *                     the pipe replaces the producer and delivers every sample through the new
 *                     one */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <time.h>

#include "ingest.h"
#include "sb_err.h"
#include "sb_metrics.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (sb_kafka.h) */

static int resumed;

static void
on_resume(void *arg)
{
	(void)arg;
	resumed++;
}

static struct ing_event *
ev(const char *item)
{
	struct ing_event *e = calloc(1, sizeof(*e));
	e->item = strdup(item);
	e->value = malloc(4);
	memcpy(e->value, "abcd", 4);
	e->vlen = 4;
	snprintf(e->event_id, sizeof(e->event_id), "00000000-0000-5000-8000-000000000000");
	return e;
}

static void
test_watermarks(void **state)
{
	(void)state;
	struct sb_kafka_producer *p = NULL;
	const char *conf[] = { "message.timeout.ms", "0", NULL };
	assert_int_equal(sb_kafka_producer_new("127.0.0.1:1", conf, &p), 0);
	struct ing_pipe_opts o = { .topic = "t",
		                   .source = "s",
		                   .capacity = 8,
		                   .high = 5,
		                   .low = 2,
		                   .on_resume = on_resume };
	struct ing_pipe *pp = NULL;
	assert_int_equal(ing_pipe_start(p, &o, &pp), 0);
	struct ing_event *a[4] = { ev("i1"), ev("i2"), ev("i1"), ev("i2") };
	/* 4 below the high watermark: accepted, not paused */
	assert_int_equal(ing_pipe_submit(pp, a, 4, false), 0);
	assert_false(ing_pipe_paused(pp));
	assert_int_equal(ing_pipe_depth(pp), 4);
	/* 5 would pass the capacity for the test endpoint: refused, nothing taken */
	struct ing_event *b[5] = { ev("i1"), ev("i1"), ev("i1"), ev("i1"), ev("i1") };
	assert_int_equal(ing_pipe_submit(pp, b, 5, false), SB_EBUSY);
	assert_int_equal(ing_pipe_depth(pp), 4);
	/* one more reaches the high watermark: paused */
	assert_int_equal(ing_pipe_submit(pp, b, 1, false), 0);
	assert_true(ing_pipe_paused(pp));
	/* while paused the test endpoint is refused, the subscriber (force) is not */
	assert_int_equal(ing_pipe_submit(pp, b + 1, 1, false), SB_EBUSY);
	assert_int_equal(ing_pipe_submit(pp, b + 1, 4, true), 0);
	assert_int_equal(ing_pipe_depth(pp), 9);
	/* stop: nothing could be delivered within the grace period, all 9 reported */
	assert_int_equal(ing_pipe_stop(pp, 200), 9);
	/* after stop nothing is taken */
	struct ing_event *c = ev("i3");
	assert_int_equal(ing_pipe_submit(pp, &c, 1, true), SB_ECLOSED);
	ing_event_free(c);
	/* the producer's end purges them through the pipe (each accounted once, as purged) */
	struct sb_series *purged =
	    sb_metric_with(sb_metrics_counter("ingest_published_total", "", "result"), "purged");
	struct sb_series *errors =
	    sb_metric_with(sb_metrics_counter("ingest_published_total", "", "result"), "error");
	sb_kafka_producer_free(p);
	assert_int_equal(ing_pipe_depth(pp), 0);
	assert_true(sb_series_value(purged) == 9);
	assert_true(sb_series_value(errors) == 0);
	assert_int_equal(resumed, 1); /* the depth fell through the low watermark once */
	ing_pipe_free(pp);
}

static struct sb_series *
published(const char *result)
{
	return sb_metric_with(sb_metrics_counter("ingest_published_total", "", "result"), result);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* mock_producer: an idempotent producer on its own librdkafka mock cluster (one broker) that
 * has topic "t" with 2 partitions; message.timeout.ms 1 s so that an outage fails reports. */
static int
mock_producer(void *arg, struct sb_kafka_producer **out)
{
	int *made = arg;
	const char *conf[] = {
		"test.mock.num.brokers", "1", "message.timeout.ms", "1000", "linger.ms", "1", NULL
	};
	int rc = sb_kafka_producer_new("127.0.0.1:1", conf, out);
	if (rc != 0)
		return rc;
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(sb_kafka_producer_handle(*out));
	if (!mc || rd_kafka_mock_topic_create(mc, "t", 2, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return SB_EIO;
	if (made)
		(*made)++;
	return 0;
}

/* wait_for waits up to ms for *v >= want (a metric series). */
static bool
wait_for(struct sb_series *s, double want, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (sb_series_value(s) >= want)
			return true;
		sleep_ms(20);
	}
	return sb_series_value(s) >= want;
}

static void
test_failed_delivery(void **state)
{
	(void)state;
	double ok0 = sb_series_value(published("ok")), err0 = sb_series_value(published("error"));
	double rq0 = sb_series_value(published("requeued"));
	struct sb_kafka_producer *p = NULL;
	assert_int_equal(mock_producer(NULL, &p), 0);
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(sb_kafka_producer_handle(p));
	assert_int_equal(rd_kafka_mock_broker_set_down(mc, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
	struct ing_pipe_opts o = {
		.topic = "t", .source = "s", .capacity = 100, .high = 90, .low = 10
	};
	struct ing_pipe *pp = NULL;
	assert_int_equal(ing_pipe_start(p, &o, &pp), 0);
	struct ing_event *a[20];
	for (int i = 0; i < 20; i++)
		a[i] = ev(i % 2 ? "i1" : "i2");
	assert_int_equal(ing_pipe_submit(pp, a, 20, false), 0);
	/* the broker is down: every report comes back timed out, the samples go back in */
	assert_true(wait_for(published("requeued"), rq0 + 20, 15000));
	assert_int_equal(ing_pipe_depth(pp), 20);
	assert_true(sb_series_value(published("ok")) == ok0);
	assert_int_equal(rd_kafka_mock_broker_set_up(mc, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
	/* up again: all 20 delivered, none dropped as an error */
	assert_true(wait_for(published("ok"), ok0 + 20, 20000));
	assert_int_equal(ing_pipe_depth(pp), 0);
	assert_true(sb_series_value(published("error")) == err0);
	assert_int_equal(ing_pipe_stop(pp, 1000), 0);
	sb_kafka_producer_free(ing_pipe_producer(pp));
	ing_pipe_free(pp);
}

static void
test_fatal_producer(void **state)
{
	(void)state;
	double ok0 = sb_series_value(published("ok")), err0 = sb_series_value(published("error"));
	int made = 0;
	struct sb_kafka_producer *p = NULL;
	assert_int_equal(mock_producer(&made, &p), 0);
	struct ing_pipe_opts o = { .topic = "t",
		                   .source = "s",
		                   .capacity = 100,
		                   .high = 90,
		                   .low = 10,
		                   .new_producer = mock_producer,
		                   .producer_arg = &made };
	struct ing_pipe *pp = NULL;
	assert_int_equal(ing_pipe_start(p, &o, &pp), 0);
	struct ing_event *a[5];
	for (int i = 0; i < 5; i++)
		a[i] = ev("i1");
	assert_int_equal(ing_pipe_submit(pp, a, 5, false), 0);
	assert_true(wait_for(published("ok"), ok0 + 5, 20000));
	/* the producer fails for good: it refuses everything from now on */
	assert_int_equal(rd_kafka_test_fatal_error(sb_kafka_producer_handle(p),
	                                           RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
	                                           "pipe_test"),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	struct ing_event *b[10];
	for (int i = 0; i < 10; i++)
		b[i] = ev(i % 2 ? "i1" : "i2");
	assert_int_equal(ing_pipe_submit(pp, b, 10, false), 0);
	/* replaced once, and the 10 delivered through the new producer */
	assert_true(wait_for(published("ok"), ok0 + 15, 20000));
	assert_int_equal(made, 2);
	assert_true(ing_pipe_producer(pp) != p);
	assert_int_equal(ing_pipe_depth(pp), 0);
	assert_true(sb_series_value(published("error")) == err0);
	assert_int_equal(ing_pipe_stop(pp, 1000), 0);
	sb_kafka_producer_free(ing_pipe_producer(pp));
	ing_pipe_free(pp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watermarks),
		cmocka_unit_test(test_failed_delivery),
		cmocka_unit_test(test_fatal_producer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
