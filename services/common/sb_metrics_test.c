/* Tests of sb_metrics: exact exposition text, registration rules, scrape-time gauges, process
 * metrics, concurrent updates, and promtool's verdict on the rendered text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_metrics.h"

/* Must run first: the registry is process-wide and the expected text is its whole beginning. */
static void
test_render_exact(void **state)
{
	(void)state;
	struct sb_metric *req =
	    sb_metrics_counter("sbt_requests_total", "Requests handled.", "method,code");
	struct sb_metric *depth = sb_metrics_gauge("sbt_queue_depth", "Items waiting.", NULL);
	static const double b[] = { 0.1, 0.5, 1 };
	struct sb_metric *lat = sb_metrics_histogram(
	    "sbt_latency_seconds", "Latency with a \\ and a\nnewline.", "route", b, 3);
	assert_non_null(req);
	assert_non_null(depth);
	assert_non_null(lat);

	struct sb_series *get = sb_metric_with(req, "GET", "200");
	sb_series_inc(get);
	sb_series_inc(sb_metric_with(req, "GET", "200"));
	sb_series_add(sb_metric_with(req, "POST", "500"), 3.5);
	sb_series_add(get, -10); /* counters never go down */
	sb_series_set(get, 100); /* and are never set */
	assert_ptr_equal(get, sb_metric_with(req, "GET", "200"));
	assert_true(sb_series_value(get) == 2.0);

	struct sb_series *d = sb_metric_with(depth);
	sb_series_set(d, 9);
	sb_series_add(d, -2);

	struct sb_series *h = sb_metric_with(lat, "/a\"b\\c\nd");
	sb_series_observe(h, 0.0625);
	sb_series_observe(h, 0.25);
	sb_series_observe(h, 0.5); /* le is inclusive */
	sb_series_observe(h, 2);

	const char *want = "# HELP sbt_requests_total Requests handled.\n"
	                   "# TYPE sbt_requests_total counter\n"
	                   "sbt_requests_total{method=\"GET\",code=\"200\"} 2\n"
	                   "sbt_requests_total{method=\"POST\",code=\"500\"} 3.5\n"
	                   "# HELP sbt_queue_depth Items waiting.\n"
	                   "# TYPE sbt_queue_depth gauge\n"
	                   "sbt_queue_depth 7\n"
	                   "# HELP sbt_latency_seconds Latency with a \\\\ and a\\nnewline.\n"
	                   "# TYPE sbt_latency_seconds histogram\n"
	                   "sbt_latency_seconds_bucket{route=\"/a\\\"b\\\\c\\nd\",le=\"0.1\"} 1\n"
	                   "sbt_latency_seconds_bucket{route=\"/a\\\"b\\\\c\\nd\",le=\"0.5\"} 3\n"
	                   "sbt_latency_seconds_bucket{route=\"/a\\\"b\\\\c\\nd\",le=\"1\"} 3\n"
	                   "sbt_latency_seconds_bucket{route=\"/a\\\"b\\\\c\\nd\",le=\"+Inf\"} 4\n"
	                   "sbt_latency_seconds_sum{route=\"/a\\\"b\\\\c\\nd\"} 2.8125\n"
	                   "sbt_latency_seconds_count{route=\"/a\\\"b\\\\c\\nd\"} 4\n"
	                   "# HELP process_cpu_seconds_total ";
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	if (strncmp(out.data, want, strlen(want)) != 0)
		fprintf(stderr, "got:\n%s\n", out.data);
	assert_memory_equal(out.data, want, strlen(want));
	sb_buf_free(&out);
}

static void
test_registration_rules(void **state)
{
	(void)state;
	struct sb_metric *c = sb_metrics_counter("sbt_rules_total", "x", "a,b");
	assert_non_null(c);
	assert_ptr_equal(sb_metrics_counter("sbt_rules_total", "other help", "a,b"), c);
	assert_null(sb_metrics_gauge("sbt_rules_total", "x", "a,b"));       /* type clash */
	assert_null(sb_metrics_counter("sbt_rules_total", "x", "a"));       /* label clash */
	assert_null(sb_metrics_counter("9starts_with_digit", "x", NULL));   /* bad name */
	assert_null(sb_metrics_counter("has-dash_total", "x", NULL));       /* bad name */
	assert_null(sb_metrics_counter("", "x", NULL));                     /* empty name */
	assert_null(sb_metrics_counter(NULL, "x", NULL));                   /* no name */
	assert_null(sb_metrics_counter("sbt_l1_total", "x", "__reserved")); /* reserved label */
	assert_null(sb_metrics_counter("sbt_l2_total", "x", "a,a"));        /* duplicate label */
	assert_null(sb_metrics_counter("sbt_l3_total", "x", "a,"));         /* empty label */
	assert_null(sb_metrics_counter("sbt_l4_total", "x", "a:b"));        /* colon in label */
	assert_null(sb_metrics_histogram("sbt_h1_seconds", "x", "le", NULL, 0));
	static const double bad[] = { 1, 0.5 };
	assert_null(sb_metrics_histogram("sbt_h2_seconds", "x", NULL, bad, 2));
	static const double inf[] = { 1, INFINITY };
	assert_null(sb_metrics_histogram("sbt_h3_seconds", "x", NULL, inf, 2));
	assert_null(sb_metrics_gauge("process_open_fds", "x", NULL)); /* built-in */
	/* Colons are valid in names (recording rules), though promtool lints them. */
	assert_true(sb_metrics_name_valid("ns:sub_total"));

	/* Wrong label arity is caught by NULL values; NULL everywhere is harmless. */
	assert_null(sb_metric_with(c, "only-one", NULL));
	assert_null(sb_metric_with(NULL));
	sb_series_inc(NULL);
	sb_series_observe(NULL, 1);
	assert_true(sb_series_value(NULL) == 0);

	/* Default buckets: 14 finite bounds from 0.0005 to 10, plus +Inf. */
	struct sb_metric *h = sb_metrics_histogram("sbt_default_seconds", "d", NULL, NULL, 0);
	assert_non_null(h);
	sb_series_observe(sb_metric_with(h), 0.0001);
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "sbt_default_seconds_bucket{le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(out.data, "sbt_default_seconds_bucket{le=\"10\"} 1\n"));
	assert_non_null(strstr(out.data, "sbt_default_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(out.data, "sbt_default_seconds_count 1\n"));
	sb_buf_free(&out);
}

static double
fn_value(void *arg)
{
	return *(double *)arg;
}

static void
test_gauge_fn(void **state)
{
	(void)state;
	double v = 42, w = -1.25;
	assert_int_equal(sb_metrics_gauge_fn("sbt_lag_seconds", "Relay lag.", fn_value, &v), 0);
	assert_int_equal(sb_metrics_gauge_fn("sbt_rules_total", "x", fn_value, &v), SB_EEXIST);
	assert_int_equal(sb_metrics_gauge_fn("bad name", "x", fn_value, &v), SB_EINVAL);
	assert_int_equal(sb_metrics_gauge_fn("sbt_x", "x", NULL, &v), SB_EINVAL);
	assert_null(sb_metrics_gauge("sbt_lag_seconds", "x", NULL));

	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "# HELP sbt_lag_seconds Relay lag.\n"
	                                 "# TYPE sbt_lag_seconds gauge\nsbt_lag_seconds 42\n"));
	v = 43;
	sb_buf_reset(&out);
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "\nsbt_lag_seconds 43\n"));

	assert_int_equal(sb_metrics_gauge_fn("sbt_lag_seconds", "Relay lag.", fn_value, &w), 0);
	sb_buf_reset(&out);
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "\nsbt_lag_seconds -1.25\n"));

	assert_int_equal(sb_metrics_gauge_fn_remove("sbt_lag_seconds"), 0);
	assert_int_equal(sb_metrics_gauge_fn_remove("sbt_lag_seconds"), SB_ENOTFOUND);
	sb_buf_reset(&out);
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_null(strstr(out.data, "sbt_lag_seconds"));
	sb_buf_free(&out);
}

/* value_of returns the number after "\n<name> " in text, or NAN. */
static double
value_of(const char *text, const char *name)
{
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *p = strstr(text, key);
	return p ? strtod(p + strlen(key), NULL) : NAN;
}

static void
test_process_metrics(void **state)
{
	(void)state;
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "# TYPE process_cpu_seconds_total counter\n"));
	double rss = value_of(out.data, "process_resident_memory_bytes");
	double fds = value_of(out.data, "process_open_fds");
	double start = value_of(out.data, "process_start_time_seconds");
	double cpu = value_of(out.data, "process_cpu_seconds_total");
	assert_true(rss > 100 * 1024 && rss < 4e9);
	assert_true(fds >= 3 && fds < 1000);
	double now = (double)time(NULL);
	assert_true(start > now - 600 && start <= now + 2);
	assert_true(cpu >= 0 && cpu < 600);
	assert_true(value_of(out.data, "process_max_fds") >= fds);
	sb_buf_free(&out);
}

#define THREADS    4
#define PER_THREAD 100000

static struct sb_metric *conc_counter, *conc_hist, *conc_gauge;

static void *
conc_worker(void *arg)
{
	(void)arg;
	struct sb_series *c = sb_metric_with(conc_counter, "shared");
	struct sb_series *h = sb_metric_with(conc_hist);
	struct sb_series *g = sb_metric_with(conc_gauge);
	for (int i = 0; i < PER_THREAD; i++) {
		sb_series_inc(c);
		sb_series_observe(h, (i % 2) ? 0.0009765625 : 3);
		sb_series_add(g, (i % 2) ? 1 : -1);
	}
	return c;
}

static void
test_concurrency(void **state)
{
	(void)state;
	conc_counter = sb_metrics_counter("sbt_conc_total", "c", "who");
	conc_hist = sb_metrics_histogram("sbt_conc_seconds", "h", NULL, NULL, 0);
	conc_gauge = sb_metrics_gauge("sbt_conc_balance", "g", NULL);
	pthread_t t[THREADS];
	void *series[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, conc_worker, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], &series[i]);
	/* Every thread got the same series, created once. */
	for (int i = 1; i < THREADS; i++)
		assert_ptr_equal(series[i], series[0]);
	assert_true(sb_series_value(series[0]) == (double)THREADS * PER_THREAD);
	assert_true(sb_series_value(sb_metric_with(conc_hist)) == (double)THREADS * PER_THREAD);
	assert_true(sb_series_value(sb_metric_with(conc_gauge)) == 0);

	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(strstr(out.data, "sbt_conc_total{who=\"shared\"} 400000\n"));
	assert_non_null(strstr(out.data, "sbt_conc_seconds_bucket{le=\"0.001\"} 200000\n"));
	assert_non_null(strstr(out.data, "sbt_conc_seconds_bucket{le=\"2.5\"} 200000\n"));
	assert_non_null(strstr(out.data, "sbt_conc_seconds_bucket{le=\"5\"} 400000\n"));
	assert_non_null(strstr(out.data, "sbt_conc_seconds_sum 600195.3125\n"));
	sb_buf_free(&out);
}

/* promtool_check runs `promtool check metrics` on text; returns its exit status (127 when
 * promtool is missing, which callers treat as a failure) and prints its output. */
static int
promtool_check(const char *text, size_t len)
{
	char path[] = "/tmp/sb_metrics_test_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	int st = system(cmd);
	unlink(path);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_promtool(void **state)
{
	(void)state;
	struct sb_metric *odd = sb_metrics_gauge("sbt_odd_labels", "Odd label values.", "v");
	sb_series_set(sb_metric_with(odd, "quote\" backslash\\ newline\n utf8 é"), 1);
	sb_series_set(sb_metric_with(odd, ""), NAN);
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	int st = promtool_check(out.data, out.len);
	if (st == 127)
		fail_msg("promtool is not installed (Debian package prometheus)");
	assert_int_equal(st, 0);
	sb_buf_free(&out);

	/* The check can fail: promtool rejects a broken exposition. */
	const char *broken = "# TYPE x counter\nx{a=\"unterminated} 1\n";
	assert_int_not_equal(promtool_check(broken, strlen(broken)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact), cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_gauge_fn),     cmocka_unit_test(test_process_metrics),
		cmocka_unit_test(test_concurrency),  cmocka_unit_test(test_promtool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
