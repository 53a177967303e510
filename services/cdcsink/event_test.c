/* event_test.c: parsing, validation and transformation of change events (event.c) against a
 * mapping (mapping.c), and the DDL made from a mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdcsink.h"
#include "sb_err.h"

static const char *const map_text =
    "{\"tables\": [{\"topic\": \"cassandra.shop.users\", \"table\": \"shop.users\","
    " \"source\": \"shop.users\", \"pii\": [\"email\"], \"columns\": ["
    " {\"name\": \"id\", \"type\": \"uuid\", \"key\": true},"
    " {\"name\": \"name\", \"type\": \"text\"}, {\"name\": \"email\", \"type\": \"text\"},"
    " {\"name\": \"age\", \"type\": \"int\"}, {\"name\": \"tags\", \"type\": \"set<text>\"}]},"
    " {\"topic\": \"dbz.public.acc\", \"table\": \"ext.acc\", \"format\": \"relational\","
    " \"columns\": [{\"name\": \"id\", \"type\": \"bigint\", \"key\": true},"
    " {\"name\": \"owner\", \"type\": \"text\"}]}]}";

#define ID                                                                                         \
	"\"id\":{\"value\":\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\",\"deletion_ts\":null,\"set\":" \
	"true}"
#define SRC "\"source\":{\"keyspace\":\"shop\",\"table\":\"users\",\"ts_us\":1700000000000001}"

static struct cdc_mapping map;

static int
setup(void **s)
{
	char err[200];
	(void)s;
	if (cdc_mapping_parse(map_text, &map, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return 0;
}

static int
teardown(void **s)
{
	(void)s;
	cdc_mapping_free(&map);
	return 0;
}

static enum cdc_fail
tr(int table, const char *ev, struct cdc_row *row, char *err)
{
	return cdc_event_transform(&map.tables[table], ev, strlen(ev), row, err, 200);
}

static void
test_cassandra_upsert(void **s)
{
	struct cdc_row row;
	char err[200] = "";
	(void)s;
	assert_int_equal(tr(0,
	                    "{\"op\":\"u\"," SRC ",\"after\":{" ID
	                    ",\"name\":{\"value\":\"ann\",\"deletion_ts\":null,"
	                    "\"set\":true},\"age\":{\"value\":null,\"deletion_ts\":1,\"set\":true},"
	                    "\"email\":{\"value\":null,\"deletion_ts\":null,\"set\":false}}}",
	                    &row, err),
	                 CDC_FAIL_NONE);
	assert_int_equal(row.op, CDC_OP_UPSERT);
	assert_int_equal(row.version_us, 1700000000000001LL);
	assert_int_equal(row.state[0], CDC_V_SET);
	assert_string_equal(row.val[1], "ann");
	assert_int_equal(row.state[2], CDC_V_ABSENT); /* set: false */
	assert_int_equal(row.state[3], CDC_V_NULL);   /* a deleted cell */
	assert_int_equal(row.state[4], CDC_V_ABSENT); /* not in the event */
	assert_string_equal(row.keytext, "6ba7b810-9dad-41d1-80b4-00c04fd430c8");
	cdc_row_free(&row);
}

static void
test_ts_ms_and_delete(void **s)
{
	struct cdc_row row;
	char err[200] = "";
	(void)s;
	assert_int_equal(tr(0,
	                    "{\"op\":\"d\",\"source\":{\"keyspace\":\"shop\",\"table\":\"users\","
	                    "\"ts_ms\":1700000000123},\"after\":{" ID ",\"bogus\":{\"value\":1}}}",
	                    &row, err),
	                 CDC_FAIL_NONE);
	assert_int_equal(row.op, CDC_OP_DELETE);
	assert_int_equal(row.version_us, 1700000000123000LL);
	assert_int_equal(row.nnew, 0); /* unknown columns of a delete are ignored */
	cdc_row_free(&row);
}

static void
test_invalid(void **s)
{
	static const char *const cases[] = {
		"",
		"[1]",
		"{\"op\":\"x\"," SRC ",\"after\":{" ID "}}",
		"{\"op\":\"c\",\"after\":{" ID "}}",
		"{\"op\":\"c\",\"source\":{\"keyspace\":\"shop\",\"table\":\"users\"},\"after\":"
		"{" ID "}}",
		"{\"op\":\"c\",\"source\":{\"keyspace\":\"other\",\"table\":\"users\",\"ts_us\":5},"
		"\"after\":{" ID "}}",
		"{\"op\":\"c\"," SRC "}",
		"{\"op\":\"c\"," SRC ",\"before\":{" ID "},\"after\":{" ID "}}",
		"{\"op\":\"d\"," SRC "}",
		"{\"op\":\"c\"," SRC
		",\"after\":{\"id\":\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\"}}",
		"{\"op\":\"c\"," SRC ",\"after\":{\"id\":{\"value\":null,\"set\":true}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{\"id\":{\"value\":\"zz\",\"set\":true}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"Bad Name\":{\"value\":1}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"age\":{\"value\":1,\"set\":\"yes\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"age\":{\"value\":1e3}}}",
		"{\"op\":\"c\",\"op\":\"c\"," SRC ",\"after\":{" ID "}}",
	};
	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cdc_row row;
		char err[200] = "";
		enum cdc_fail f = tr(0, cases[i], &row, err);
		if (f != CDC_FAIL_INVALID)
			fail_msg("case %zu: got %d (%s)", i, f, err);
		assert_true(err[0] != '\0');
		cdc_row_free(&row);
	}
}

static void
test_breaking_and_new(void **s)
{
	struct cdc_row row;
	char err[200] = "";
	(void)s;
	/* The key column missing, a type that cannot be the declared one. */
	assert_int_equal(
	    tr(0, "{\"op\":\"u\"," SRC ",\"after\":{\"name\":{\"value\":\"a\",\"set\":true}}}",
	       &row, err),
	    CDC_FAIL_BREAKING);
	assert_non_null(strstr(err, "key column id"));
	cdc_row_free(&row);
	assert_int_equal(tr(0,
	                    "{\"op\":\"u\"," SRC ",\"after\":{" ID ",\"age\":{\"value\":\"old\"}}}",
	                    &row, err),
	                 CDC_FAIL_BREAKING);
	cdc_row_free(&row);
	/* New columns: reported with an inferred type; the mapping grows, and then it passes. */
	const char *ev = "{\"op\":\"u\"," SRC ",\"after\":{" ID ",\"nick\":{\"value\":\"n\"},"
	                 "\"score\":{\"value\":1.5},\"meta\":{\"value\":{\"a\":1}}}}";
	assert_int_equal(tr(0, ev, &row, err), CDC_FAIL_NEWCOLS);
	assert_int_equal(row.nnew, 3);
	for (int i = 0; i < row.nnew; i++)
		assert_int_equal(cdc_table_add_col(&map.tables[0], row.newcols[i].name,
		                                   row.newcols[i].type_text),
		                 0);
	cdc_row_free(&row);
	assert_int_equal(tr(0, ev, &row, err), CDC_FAIL_NONE);
	assert_string_equal(row.val[cdc_table_col(&map.tables[0], "score")], "1.5");
	assert_string_equal(row.val[cdc_table_col(&map.tables[0], "meta")], "{\"a\":1}");
	cdc_row_free(&row);
}

static void
test_relational(void **s)
{
	struct cdc_row row;
	char err[200] = "";
	(void)s;
	assert_int_equal(tr(1,
	                    "{\"op\":\"u\",\"before\":null,\"after\":{\"id\":7,\"owner\":\"x\"},"
	                    "\"source\":{\"schema\":\"public\",\"table\":\"acc\",\"ts_ms\":5}}",
	                    &row, err),
	                 CDC_FAIL_NONE);
	assert_string_equal(row.val[0], "7");
	cdc_row_free(&row);
	assert_int_equal(tr(1,
	                    "{\"op\":\"d\",\"before\":{\"id\":7,\"owner\":\"x\"},\"after\":null,"
	                    "\"source\":{\"ts_ms\":5}}",
	                    &row, err),
	                 CDC_FAIL_NONE);
	assert_int_equal(row.op, CDC_OP_DELETE);
	cdc_row_free(&row);
	/* A delete must carry before and no after. */
	assert_int_equal(tr(1,
	                    "{\"op\":\"d\",\"before\":null,\"after\":{\"id\":7},"
	                    "\"source\":{\"ts_ms\":5}}",
	                    &row, err),
	                 CDC_FAIL_INVALID);
	cdc_row_free(&row);
}

static void
test_masking(void **s)
{
	struct sb_buf b = SB_BUF_INIT;
	const char *ev = "{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"email\":{\"value\":\"a@b.c\","
	                 "\"set\":true}}}";
	(void)s;
	assert_int_equal(cdc_event_masked(&map.tables[0], ev, strlen(ev), &b), 0);
	assert_null(strstr(b.data, "a@b.c"));
	assert_non_null(strstr(b.data, "\"***\""));
	assert_non_null(strstr(b.data, "6ba7b810"));
	sb_buf_free(&b);
}

static void
test_mapping(void **s)
{
	struct cdc_mapping m;
	struct sb_buf b = SB_BUF_INIT;
	char err[200];
	(void)s;
	assert_int_equal(cdc_mapping_load("", &m, err, sizeof(err)), 0);
	assert_int_equal(m.n, 1);
	assert_string_equal(m.tables[0].topic, "cassandra.shop.users");
	assert_int_equal(cdc_table_ddl(&m.tables[0], &b), 0);
	assert_non_null(strstr(b.data,
	                       "CREATE TABLE IF NOT EXISTS \"shop\".\"users\" (\"id\" uuid NOT "
	                       "NULL, \"name\" text, \"email\" text, \"age\" integer, "
	                       "\"tags\" text[], \"updated_at\" timestamptz, "));
	assert_non_null(strstr(b.data, "\"shop\".\"_cdc_tomb_users\" (\"id\" uuid NOT NULL, "
	                               "_cdc_version bigint NOT NULL"));
	sb_buf_free(&b);
	cdc_mapping_free(&m);
	static const char *const bad[] = {
		"",
		"{\"tables\": []}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"noschema\", \"columns\": "
		"[{\"name\": \"id\", \"type\": \"int\", \"key\": true}]}]}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"a.b\", \"columns\": "
		"[{\"name\": \"id\", \"type\": \"int\"}]}]}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"a.b\", \"columns\": "
		"[{\"name\": \"id\", \"type\": \"integer\", \"key\": true}]}]}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"a.B\", \"columns\": "
		"[{\"name\": \"id\", \"type\": \"int\", \"key\": true}]}]}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"a.b\", \"pii\": [\"x\"], "
		"\"columns\": "
		"[{\"name\": \"id\", \"type\": \"int\", \"key\": true}]}]}",
		"{\"tables\": [{\"topic\": \"t\", \"table\": \"a.b\", \"columns\": "
		"[{\"name\": \"id\", \"type\": \"int\", \"key\": true}, {\"name\": \"id\", "
		"\"type\": "
		"\"int\"}]}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (cdc_mapping_parse(bad[i], &m, err, sizeof(err)) != SB_EINVAL)
			fail_msg("bad mapping %zu accepted", i);
		assert_true(err[0] != '\0');
	}
}

/* The fast reader (event_fast.c) answers the common shape exactly as the tree reader does and
 * declines everything else, which then gets the tree reader's answer. */
static void
test_fast_reader(void **s)
{
	static const char *const same[] = {
		/* create, every cell set; update with a null, an unset cell and a deletion_ts */
		"{\"op\":\"c\"," SRC ",\"after\":{" ID
		",\"name\":{\"value\":\"ann\",\"deletion_ts\":null,"
		"\"set\":true},\"age\":{\"value\":-41,\"deletion_ts\":null,\"set\":true},\"tags\":{"
		"\"value\":[\"b\",\"a\"],\"deletion_ts\":null,\"set\":true}}}",
		" { \"op\" : \"u\" , \"ts_ms\": 1, \"before\": null, " SRC ", \"after\" : { " ID
		", \"name\": {\"value\": null, \"deletion_ts\": 1700000000, \"set\": true},"
		" \"email\": {\"value\": null, \"deletion_ts\": null, \"set\": false}} } \n",
		/* ts_ms only; a delete with a cell of a column the mapping lacks (ignored) */
		"{\"op\":\"d\",\"source\":{\"keyspace\":\"shop\",\"table\":\"users\",\"ts_ms\":"
		"1700000000123,\"x\":[{},[],{\"y\":[1,true,false,null]}]},\"after\":{" ID
		",\"zz\":{\"value\":1}}}",
	};
	static const char *const declined[] = {
		/* escapes and UTF-8 (valid), a fraction, a 19-digit integer: the tree's work */
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"name\":{\"value\":\"a\\\"b\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"name\":{\"value\":\"\xc3\xa9\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"age\":{\"value\":1.5}}}",
		"{\"op\":\"c\",\"source\":{\"keyspace\":\"shop\",\"table\":\"users\",\"ts_us\":"
		"1700000000000000000},\"after\":{" ID "}}",
		/* errors: a key twice, trailing text, a bad uuid, a string for an int, no key, a
		 * new column, op u with a before state, the wrong keyspace, no version */
		"{\"op\":\"c\",\"op\":\"u\"," SRC ",\"after\":{" ID "}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID "}} x",
		"{\"op\":\"c\"," SRC ",\"after\":{\"id\":{\"value\":\"nope\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"age\":{\"value\":\"9\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{\"name\":{\"value\":\"x\"}}}",
		"{\"op\":\"c\"," SRC ",\"after\":{" ID ",\"brand_new\":{\"value\":\"x\"}}}",
		"{\"op\":\"u\"," SRC ",\"before\":{" ID "},\"after\":{" ID "}}",
		"{\"op\":\"c\",\"source\":{\"keyspace\":\"shoe\",\"table\":\"users\",\"ts_us\":1},"
		"\"after\":{" ID "}}",
		"{\"op\":\"c\",\"source\":{\"keyspace\":\"shop\",\"table\":\"users\"},\"after\":"
		"{" ID "}}",
	};
	char err[200], err2[200];
	(void)s;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct cdc_row f, t;
		const char *ev = same[i];
		assert_true(cdc_event_fast(&map.tables[0], ev, strlen(ev), &f));
		assert_int_equal(cdc_event_tree(&map.tables[0], ev, strlen(ev), &t, err, 200),
		                 CDC_FAIL_NONE);
		assert_int_equal(f.op, t.op);
		assert_int_equal(f.version_us, t.version_us);
		assert_string_equal(f.keytext, t.keytext);
		assert_int_equal(f.ncols, t.ncols);
		for (size_t c = 0; c < f.ncols; c++) {
			assert_int_equal(f.state[c], t.state[c]);
			if (t.val[c] != NULL)
				assert_string_equal(f.val[c], t.val[c]);
		}
		cdc_row_free(&f);
		cdc_row_free(&t);
	}
	for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
		struct cdc_row f, t;
		const char *ev = declined[i];
		err[0] = err2[0] = '\0'; /* a valid event leaves both as they are */
		if (cdc_event_fast(&map.tables[0], ev, strlen(ev), &f))
			fail_msg("fast reader accepted declined[%zu]", i);
		cdc_row_free(&f);
		enum cdc_fail want = cdc_event_tree(&map.tables[0], ev, strlen(ev), &t, err, 200);
		cdc_row_free(&t);
		assert_int_equal(tr(0, ev, &t, err2), want);
		assert_string_equal(err2, err);
		cdc_row_free(&t);
	}
	/* The relational envelope is always the tree's. */
	struct cdc_row f;
	const char *rel = "{\"op\":\"c\",\"source\":{\"schema\":\"public\",\"table\":\"acc\","
	                  "\"ts_ms\":5},\"before\":null,\"after\":{\"id\":7,\"owner\":\"o\"}}";
	assert_false(cdc_event_fast(&map.tables[1], rel, strlen(rel), &f));
	cdc_row_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cassandra_upsert), cmocka_unit_test(test_ts_ms_and_delete),
		cmocka_unit_test(test_invalid),          cmocka_unit_test(test_relational),
		cmocka_unit_test(test_masking),          cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_breaking_and_new), cmocka_unit_test(test_fast_reader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
