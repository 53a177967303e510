/* cdc_event_fuzz: libFuzzer target for cdcsink's change-event parser and type transformation:
 * services/cdcsink/event.c, types.c and mapping.c compiled again here. The first byte picks the
 * table the rest is an event of: even, a Cassandra-format table holding one column of most
 * types; odd, a relational-format table.
 *
 * Properties:
 *   - the result is one of the four classes, with a reason whenever it is not CDC_FAIL_NONE;
 *   - an accepted event has a positive version, every key column set, and a value for every
 *     column marked set; the values have the form PostgreSQL reads for the column's type
 *     (uuid: canonical lowercase; integers: in range and written back identically; blob: \x and
 *     hex pairs; arrays: braces; booleans: true/false);
 *   - transforming the same event twice gives the same row (no hidden state);
 *   - the fast reader (event_fast.c) accepts only events the tree reader accepts, with the
 *     same row;
 *   - the masked copy for logs never holds the PII column's value. */
#include "fuzz.h"

#include <errno.h>
#include <jansson.h>

#include "cdcsink.h"
#include "sb_util_uuid.h"

static const char *const fz_map =
    "{\"tables\": [{\"topic\": \"c\", \"table\": \"s.t\", \"pii\": [\"secret\"], \"columns\": ["
    "{\"name\": \"id\", \"type\": \"uuid\", \"key\": true},"
    "{\"name\": \"k2\", \"type\": \"int\", \"key\": true},"
    "{\"name\": \"secret\", \"type\": \"text\"}, {\"name\": \"ti\", \"type\": \"tinyint\"},"
    "{\"name\": \"bi\", \"type\": \"bigint\"}, {\"name\": \"bl\", \"type\": \"blob\"},"
    "{\"name\": \"b\", \"type\": \"boolean\"}, {\"name\": \"st\", \"type\": \"set<text>\"},"
    "{\"name\": \"li\", \"type\": \"list<frozen<list<int>>>\"},"
    "{\"name\": \"mp\", \"type\": \"map<text, int>\"}, {\"name\": \"tp\", \"type\": "
    "\"tuple<int, text>\"}, {\"name\": \"ts\", \"type\": \"timestamp\"}, {\"name\": \"dt\", "
    "\"type\": \"date\"}, {\"name\": \"tm\", \"type\": \"time\"}, {\"name\": \"du\", \"type\": "
    "\"duration\"}, {\"name\": \"de\", \"type\": \"decimal\"}, {\"name\": \"ip\", \"type\": "
    "\"inet\"}, {\"name\": \"f\", \"type\": \"float\"}]},"
    "{\"topic\": \"r\", \"table\": \"s.r\", \"format\": \"relational\", \"pii\": [\"secret\"],"
    " \"columns\": [{\"name\": \"id\", \"type\": \"bigint\", \"key\": true},"
    " {\"name\": \"secret\", \"type\": \"text\"}, {\"name\": \"u\", \"type\": \"timeuuid\"}]}]}";

static struct cdc_mapping fz_m;

static void
fz_check_value(const struct cdc_column *c, const char *v)
{
	struct sb_uuid u;
	char canon[SB_UUID_STR_LEN + 1];
	char *end;
	switch (c->type->kind) {
	case CDC_T_UUID:
	case CDC_T_TIMEUUID:
		CHECK(sb_uuid_parse(v, &u) == 0);
		sb_uuid_format(&u, canon);
		CHECK(strcmp(canon, v) == 0);
		break;
	case CDC_T_TINYINT:
	case CDC_T_INT:
	case CDC_T_BIGINT: {
		errno = 0;
		long long x = strtoll(v, &end, 10);
		char back[32];
		CHECK(errno == 0 && *end == '\0');
		snprintf(back, sizeof(back), "%lld", x);
		CHECK(strcmp(back, v) == 0);
		if (c->type->kind == CDC_T_TINYINT)
			CHECK(x >= -128 && x <= 127);
		if (c->type->kind == CDC_T_INT)
			CHECK(x >= INT32_MIN && x <= INT32_MAX);
		break;
	}
	case CDC_T_BLOB:
		CHECK(strncmp(v, "\\x", 2) == 0 && strlen(v) % 2 == 0);
		for (const char *p = v + 2; *p; p++)
			CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
		break;
	case CDC_T_BOOLEAN:
		CHECK(strcmp(v, "true") == 0 || strcmp(v, "false") == 0);
		break;
	case CDC_T_SET:
		CHECK(v[0] == '{' && v[strlen(v) - 1] == '}');
		break;
	case CDC_T_LIST:
	case CDC_T_MAP:
	case CDC_T_TUPLE: {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
		CHECK(j != NULL);
		json_decref(j);
		break;
	}
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CDC_REASON_MAX] = "", err2[CDC_REASON_MAX] = "";
	struct cdc_row row, row2;

	if (fz_m.n == 0 && cdc_mapping_parse(fz_map, &fz_m, err, sizeof(err)) != 0)
		abort();
	if (size < 1)
		return 0;
	struct cdc_table *t = &fz_m.tables[data[0] & 1];
	const char *ev = (const char *)data + 1;
	size_t n = size - 1;
	/* The mapping is shared between runs: take out columns a previous input added. */
	while (t->ncols > 0 && t->cols[t->ncols - 1].inferred) {
		t->ncols--;
		free(t->cols[t->ncols].name);
		free(t->cols[t->ncols].type_text);
		cdc_type_free(t->cols[t->ncols].type);
	}
	enum cdc_fail f = cdc_event_transform(t, ev, n, &row, err, sizeof(err));
	CHECK(f == CDC_FAIL_NONE || f == CDC_FAIL_INVALID || f == CDC_FAIL_BREAKING ||
	      f == CDC_FAIL_NEWCOLS);
	CHECK(f == CDC_FAIL_NONE || err[0] != '\0');
	if (f == CDC_FAIL_NEWCOLS) {
		CHECK(row.nnew > 0);
		for (int i = 0; i < row.nnew; i++)
			CHECK(cdc_ident_ok(row.newcols[i].name) &&
			      cdc_table_add_col(t, row.newcols[i].name, row.newcols[i].type_text) ==
			          0);
		cdc_row_free(&row);
		f = cdc_event_transform(t, ev, n, &row, err, sizeof(err));
		CHECK(f != CDC_FAIL_NEWCOLS);
	}
	enum cdc_fail f2 = cdc_event_transform(t, ev, n, &row2, err2, sizeof(err2));
	CHECK(f2 == f);
	/* The fast reader against the tree reader, on the same (possibly evolved) table. */
	{
		struct cdc_row fr, tr;
		bool fast = cdc_event_fast(t, ev, n, &fr);
		enum cdc_fail ft = cdc_event_tree(t, ev, n, &tr, err2, sizeof(err2));
		if (fast) {
			CHECK(ft == CDC_FAIL_NONE);
			CHECK(fr.op == tr.op && fr.op_char == tr.op_char &&
			      fr.version_us == tr.version_us && fr.ncols == tr.ncols &&
			      strcmp(fr.keytext, tr.keytext) == 0 && fr.nnew == 0 && tr.nnew == 0);
			for (size_t c = 0; c < fr.ncols; c++) {
				CHECK(fr.state[c] == tr.state[c]);
				CHECK((fr.val[c] == NULL) == (tr.val[c] == NULL));
				if (fr.val[c] != NULL)
					CHECK(strcmp(fr.val[c], tr.val[c]) == 0);
			}
		}
		cdc_row_free(&fr);
		cdc_row_free(&tr);
	}
	if (f == CDC_FAIL_NONE) {
		CHECK(row.version_us > 0 && row.ncols == t->ncols && row.keytext[0] != '\0');
		for (size_t c = 0; c < t->ncols; c++) {
			if (t->cols[c].key && row.op == CDC_OP_UPSERT)
				CHECK(row.state[c] == CDC_V_SET);
			CHECK((row.state[c] == CDC_V_SET) == (row.val[c] != NULL));
			CHECK(row2.state[c] == row.state[c]);
			if (row.val[c] != NULL) {
				CHECK(strcmp(row.val[c], row2.val[c]) == 0);
				fz_check_value(&t->cols[c], row.val[c]);
			}
		}
		int s = cdc_table_col(t, "secret");
		if (row.op == CDC_OP_UPSERT && row.state[s] == CDC_V_SET) {
			struct sb_buf b = SB_BUF_INIT;
			CHECK(cdc_event_masked(t, ev, n, &b) == 0);
			json_t *j = json_loads(b.data, 0, NULL);
			CHECK(j != NULL);
			json_t *v = json_object_get(json_object_get(j, "after"), "secret");
			if (t->format == CDC_FMT_CASSANDRA)
				v = json_object_get(v, "value");
			CHECK(json_is_string(v) && strcmp(json_string_value(v), "***") == 0);
			json_decref(j);
			sb_buf_free(&b);
		}
	}
	cdc_row_free(&row);
	cdc_row_free(&row2);
	return 0;
}
