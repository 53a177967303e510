/* event_test.c: unit tests of the mapping file and of normalization: typed fields, timestamps,
 * the UUID v5 event id (RFC 9562 test vector, determinism, what changes it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events/telemetry.pb-c.h"
#include "ingest.h"
#include "sb_err.h"

static const char MAP[] =
    "{\"source\":\"iss\",\"adapter_set\":\"ISSLIVE\","
    "\"server_ts\":{\"field\":\"TS\",\"unit\":\"ms\"},"
    "\"fields\":[{\"name\":\"TS\",\"type\":\"int64\"},"
    "{\"name\":\"V\",\"type\":\"double\"},{\"name\":\"S\",\"type\":\"string\"},"
    "{\"name\":\"B\",\"type\":\"bool\"}],"
    "\"items\":[\"A1\",\"B2\"]}";

static void
load(struct ing_mapping *m)
{
	char err[256];
	assert_int_equal(ing_mapping_parse(MAP, strlen(MAP), m, err, sizeof(err)), 0);
}

static void
test_mapping(void **state)
{
	(void)state;
	struct ing_mapping m;
	char err[256];
	load(&m);
	assert_string_equal(m.source, "iss");
	assert_string_equal(m.adapter_set, "ISSLIVE");
	assert_int_equal(m.nfields, 4);
	assert_int_equal(m.nitems, 2);
	assert_int_equal(m.ts_field, 0);
	assert_int_equal(m.ts_unit, ING_TS_MS);
	assert_int_equal(ing_mapping_item(&m, "B2"), 1);
	assert_int_equal(ing_mapping_item(&m, "C3"), -1);
	assert_int_equal(ing_mapping_field(&m, "S"), 2);
	ing_mapping_free(&m);
	const char *bad[] = {
		"{}",
		"{\"source\":\"a "
		"b\",\"fields\":[{\"name\":\"x\",\"type\":\"string\"}],\"items\":[\"i\"]}",
		"{\"source\":\"s\",\"fields\":[],\"items\":[\"i\"]}",
		"{\"source\":\"s\",\"fields\":[{\"name\":\"x\",\"type\":\"float\"}],\"items\":["
		"\"i\"]}",
		"{\"source\":\"s\",\"fields\":[{\"name\":\"x\",\"type\":\"string\"},"
		"{\"name\":\"x\",\"type\":\"string\"}],\"items\":[\"i\"]}",
		"{\"source\":\"s\",\"fields\":[{\"name\":\"x\",\"type\":\"string\"}],\"items\":["
		"\"i\","
		"\"i\"]}",
		"{\"source\":\"s\",\"fields\":[{\"name\":\"x\",\"type\":\"string\"}],\"items\":["
		"\"i\"],"
		"\"server_ts\":{\"field\":\"y\",\"unit\":\"ms\"}}",
		"{\"source\":\"s\",\"fields\":[{\"name\":\"x\",\"type\":\"string\"}],\"items\":["
		"\"i\"],"
		"\"server_ts\":{\"field\":\"x\",\"unit\":\"days\"}}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(ing_mapping_parse(bad[i], strlen(bad[i]), &m, err, sizeof(err)),
		                 SB_EINVAL);
		assert_true(err[0] != '\0');
	}
	/* The shipped ISS Live mapping loads. */
	char path[512];
	snprintf(path, sizeof(path), "%s/services/ingest/mappings/isslive.json",
	         getenv("SB_SOURCE_ROOT") ? getenv("SB_SOURCE_ROOT") : ".");
	assert_int_equal(ing_mapping_load(path, &m, err, sizeof(err)), 0);
	assert_string_equal(m.adapter_set, "ISSLIVE");
	assert_int_equal(m.ts_unit, ING_TS_YEAR_HOURS);
	assert_true(m.nitems >= 20);
	ing_mapping_free(&m);
	assert_int_equal(ing_mapping_load("/nonexistent/x.json", &m, err, sizeof(err)),
	                 SB_ENOTFOUND);
}

static void
test_uuid_v5(void **state)
{
	(void)state;
	/* RFC 9562 appendix A.4: the DNS namespace and "www.example.com". */
	static const uint8_t dns[16] = { 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
		                         0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
	char out[37];
	ing_uuid_v5(dns, "www.example.com", 15, out);
	assert_string_equal(out, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
}

static struct ing_event *
build(const struct ing_mapping *m, const char *item, const char *ts, const char *v, const char *s,
      const char *b, int64_t server_ts, int64_t ingest_ts)
{
	struct ing_raw raw[4] = { { ts, ts ? strlen(ts) : 0 },
		                  { v, v ? strlen(v) : 0 },
		                  { s, s ? strlen(s) : 0 },
		                  { b, b ? strlen(b) : 0 } };
	struct ing_event *e = NULL;
	char err[128];
	int bad = -1;
	int rc = ing_event_build(m, item, raw, server_ts, ING_ORIGIN_TLCP, ingest_ts, &e, &bad, err,
	                         sizeof(err));
	return rc == 0 ? e : NULL;
}

static void
test_event(void **state)
{
	(void)state;
	struct ing_mapping m;
	load(&m);
	struct ing_event *a = build(&m, "A1", "1767225600123", "1.50", "ok", "true", -1, 111);
	assert_non_null(a);
	Sb__Events__TelemetrySample *s =
	    sb__events__telemetry_sample__unpack(NULL, a->vlen, a->value);
	assert_non_null(s);
	assert_int_equal(s->schema_version, 1);
	assert_string_equal(s->event_id, a->event_id);
	assert_string_equal(s->source, "iss");
	assert_string_equal(s->item, "A1");
	assert_string_equal(s->origin, "tlcp");
	assert_int_equal(s->ingest_ts_ms, 111);
	assert_non_null(s->server_ts);
	assert_int_equal(s->server_ts->ms, 1767225600123LL);
	assert_int_equal(s->n_fields, 4);
	assert_int_equal(s->fields[0]->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_INTEGER);
	assert_int_equal(s->fields[1]->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_NUMBER);
	assert_true(s->fields[1]->number == 1.5);
	assert_string_equal(s->fields[2]->text, "ok");
	assert_int_equal(s->fields[3]->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_FLAG);
	assert_true(s->fields[3]->flag);
	sb__events__telemetry_sample__free_unpacked(s, NULL);

	/* Same values, another text for the number, another ingest time and origin: same id. */
	struct ing_event *b = build(&m, "A1", "1767225600123", "1.5", "ok", "1", -1, 999);
	assert_non_null(b);
	assert_string_equal(a->event_id, b->event_id);
	/* Any change of item, time or a value changes it. */
	struct ing_event *c[] = {
		build(&m, "B2", "1767225600123", "1.5", "ok", "true", -1, 1),
		build(&m, "A1", "1767225600124", "1.5", "ok", "true", -1, 1),
		build(&m, "A1", "1767225600123", "1.6", "ok", "true", -1, 1),
		build(&m, "A1", "1767225600123", "1.5", "OK", "true", -1, 1),
		build(&m, "A1", "1767225600123", "1.5", NULL, "true", -1, 1),
		build(&m, "A1", "1767225600123", "1.5", "", "true", -1, 1),
		build(&m, "A1", "1767225600123", "1.5", "ok", "false", -1, 1),
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_non_null(c[i]);
		assert_string_not_equal(c[i]->event_id, a->event_id);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(c[i]->event_id, c[j]->event_id);
	}
	/* A null field is null in the event; an explicit server time overrides the field's. */
	s = sb__events__telemetry_sample__unpack(NULL, c[4]->vlen, c[4]->value);
	assert_int_equal(s->fields[2]->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_NULL_VALUE);
	sb__events__telemetry_sample__free_unpacked(s, NULL);
	struct ing_event *d = build(&m, "A1", NULL, "1", "x", "0", 5000, 1);
	s = sb__events__telemetry_sample__unpack(NULL, d->vlen, d->value);
	assert_int_equal(s->server_ts->ms, 5000);
	sb__events__telemetry_sample__free_unpacked(s, NULL);
	struct ing_event *e = build(&m, "A1", NULL, "1", "x", "0", -1, 1);
	s = sb__events__telemetry_sample__unpack(NULL, e->vlen, e->value);
	assert_null(s->server_ts);
	sb__events__telemetry_sample__free_unpacked(s, NULL);

	/* Values that are not of their type are refused, naming the field. */
	struct ing_raw raw[4] = { { "1", 1 }, { "abc", 3 }, { "x", 1 }, { "true", 4 } };
	struct ing_event *f = NULL;
	char err[128];
	int bad = -1;
	assert_int_equal(ing_event_build(&m, "A1", raw, -1, "test", 1, &f, &bad, err, sizeof(err)),
	                 SB_EINVAL);
	assert_int_equal(bad, 1);
	assert_null(f);
	raw[1] = (struct ing_raw){ "inf", 3 };
	assert_int_equal(ing_event_build(&m, "A1", raw, -1, "test", 1, &f, &bad, err, sizeof(err)),
	                 SB_EINVAL);
	raw[1] = (struct ing_raw){ "2", 1 };
	raw[3] = (struct ing_raw){ "yes", 3 };
	assert_int_equal(ing_event_build(&m, "A1", raw, -1, "test", 1, &f, &bad, err, sizeof(err)),
	                 SB_EINVAL);
	assert_int_equal(bad, 3);
	raw[3] = (struct ing_raw){ "0", 1 };
	raw[0] = (struct ing_raw){ "99999999999999999999", 20 };
	assert_int_equal(ing_event_build(&m, "A1", raw, -1, "test", 1, &f, &bad, err, sizeof(err)),
	                 SB_EINVAL);
	assert_int_equal(bad, 0);

	ing_event_free(a);
	ing_event_free(b);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		ing_event_free(c[i]);
	ing_event_free(d);
	ing_event_free(e);
	ing_mapping_free(&m);
}

static void
test_ts(void **state)
{
	(void)state;
	int64_t out;
	/* 2026-03-01T00:00:00Z = 1772323200000; 2026-01-01 = 1767225600000. */
	assert_int_equal(ing_ts_parse("1.5", ING_TS_YEAR_HOURS, 1772323200000LL, &out), 0);
	assert_int_equal(out, 1767225600000LL + 5400000);
	assert_int_equal(ing_ts_parse("1767225600.25", ING_TS_S, 0, &out), 0);
	assert_int_equal(out, 1767225600250LL);
	assert_int_equal(ing_ts_parse("-1", ING_TS_MS, 0, &out), SB_EINVAL);
	assert_int_equal(ing_ts_parse("x", ING_TS_MS, 0, &out), SB_EINVAL);
	assert_int_equal(ing_ts_parse("9000", ING_TS_YEAR_HOURS, 0, &out), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_uuid_v5),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_ts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
