/* metrics_test.c: the sidecar's metric families and the bounded per-method series cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sb_buf.h"
#include "sb_metrics.h"
#include "sidecar.h"

static void
test_method_cache(void **state)
{
	(void)state;
	static struct mesh_metrics m;
	assert_int_equal(mesh_metrics_init(&m), 0);
	const struct mesh_method_stats *a = mesh_metrics_method(&m, MESH_IN, "messages.Send");
	assert_non_null(a);
	assert_string_equal(a->label, "messages.Send");
	assert_ptr_equal(mesh_metrics_method(&m, MESH_IN, "messages.Send"), a);
	const struct mesh_method_stats *o = mesh_metrics_method(&m, MESH_OUT, "messages.Send");
	assert_ptr_not_equal(o, a); /* directions are separate series */
	sb_series_inc(a->requests);
	sb_series_observe(a->latency_ok, 0.3);
	/* A caller inventing method names cannot grow the registry without bound. */
	char name[64];
	for (int i = 0; i < MESH_METHODS_MAX + 100; i++) {
		snprintf(name, sizeof name, "x.M%d", i);
		const struct mesh_method_stats *s = mesh_metrics_method(&m, MESH_IN, name);
		assert_non_null(s);
		if (i >= MESH_METHODS_MAX)
			assert_string_equal(s->label, "other");
	}
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&out), 0);
	assert_non_null(
	    strstr(out.data, "request_total{direction=\"inbound\",method=\"messages.Send\"} 1"));
	assert_non_null(strstr(out.data,
	                       "response_latency_ms_bucket{direction=\"inbound\",method="
	                       "\"messages.Send\",classification=\"success\",le=\"0.5\"} 1"));
	assert_non_null(strstr(out.data, "method=\"other\""));
	assert_null(strstr(out.data, "x.M600"));
	assert_non_null(strstr(out.data, "# TYPE tcp_open_total counter"));
	assert_non_null(strstr(out.data, "# TYPE tcp_connection_duration_ms histogram"));
	sb_buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_method_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
