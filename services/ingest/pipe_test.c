/* pipe_test.c: unit tests of the pipe's watermarks and admission (no broker: the producer points
 * at a port nobody listens on, so nothing is ever acknowledged and the depth only grows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest.h"
#include "sb_err.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watermarks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
