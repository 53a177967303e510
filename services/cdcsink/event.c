/* event.c: parse, validate and transform one change event (Debezium's Cassandra connector
 * value with schemas disabled, or the flat envelope of its relational connectors) against the
 * mapping of its table. Pure: no I/O. */
#include "cdcsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

void
cdc_row_free(struct cdc_row *row)
{
	if (row->val != NULL)
		for (size_t i = 0; i < row->ncols; i++)
			free(row->val[i]);
	free(row->val);
	free(row->state);
	memset(row, 0, sizeof(*row));
}

static bool
cdc_name_match(const char *want, const char *got)
{
	return want == NULL || (got != NULL && strcmp(want, got) == 0);
}

/* cdc_cell reads member v of a row: for the Cassandra format a cell {"value", "deletion_ts",
 * "set"}; *absent when the cell was not part of the change. Returns the value (NULL when the
 * cell is malformed) */
static const json_t *
cdc_cell(const struct cdc_table *t, const json_t *v, bool *absent, char *err, size_t n,
         const char *name)
{
	*absent = false;
	if (t->format == CDC_FMT_RELATIONAL)
		return v;
	if (!json_is_object(v) || json_object_get(v, "value") == NULL) {
		snprintf(err, n, "column %s: a cell must be {\"value\", \"deletion_ts\", \"set\"}",
		         name);
		return NULL;
	}
	const json_t *set = json_object_get(v, "set");
	if (set != NULL && !json_is_boolean(set)) {
		snprintf(err, n, "column %s: \"set\" must be a boolean", name);
		return NULL;
	}
	const json_t *del = json_object_get(v, "deletion_ts");
	if (del != NULL && !json_is_null(del) && !json_is_integer(del)) {
		snprintf(err, n, "column %s: \"deletion_ts\" must be an integer or null", name);
		return NULL;
	}
	*absent = set != NULL && json_is_false(set);
	return json_object_get(v, "value");
}

static enum cdc_fail
cdc_transform_root(const struct cdc_table *t, const json_t *root, struct cdc_row *row, char *err,
                   size_t n)
{
	const char *op = json_string_value(json_object_get(root, "op"));
	const json_t *source = json_object_get(root, "source");
	const json_t *before = json_object_get(root, "before");
	const json_t *after = json_object_get(root, "after");
	const json_t *data, *v;
	const char *name;

	if (op == NULL || strlen(op) != 1 || strchr("curd", op[0]) == NULL) {
		snprintf(err, n, "\"op\" must be one of c, u, r, d");
		return CDC_FAIL_INVALID;
	}
	row->op_char = op[0];
	row->op = op[0] == 'd' ? CDC_OP_DELETE : CDC_OP_UPSERT;
	if (!json_is_object(source)) {
		snprintf(err, n, "\"source\" must be an object");
		return CDC_FAIL_INVALID;
	}
	const char *ks = json_string_value(
	    json_object_get(source, t->format == CDC_FMT_CASSANDRA ? "keyspace" : "schema"));
	const char *tb = json_string_value(json_object_get(source, "table"));
	if (!cdc_name_match(t->keyspace, ks) || !cdc_name_match(t->source_table, tb)) {
		snprintf(err, n, "event of %.64s.%.64s on the topic of %s.%s", ks ? ks : "?",
		         tb ? tb : "?", t->keyspace, t->source_table);
		return CDC_FAIL_INVALID;
	}
	const json_t *us = json_object_get(source, "ts_us"), *ms = json_object_get(source, "ts_ms");
	if (json_is_integer(us) && json_integer_value(us) > 0)
		row->version_us = json_integer_value(us);
	else if (json_is_integer(ms) && json_integer_value(ms) > 0 &&
	         json_integer_value(ms) < INT64_MAX / 1000)
		row->version_us = json_integer_value(ms) * 1000;
	else {
		snprintf(err, n, "\"source\" needs a positive ts_us or ts_ms (the write time)");
		return CDC_FAIL_INVALID;
	}
	bool has_before = before != NULL && !json_is_null(before);
	bool has_after = after != NULL && !json_is_null(after);
	if ((has_before && !json_is_object(before)) || (has_after && !json_is_object(after))) {
		snprintf(err, n, "\"before\" and \"after\" must be objects or null");
		return CDC_FAIL_INVALID;
	}
	if (row->op == CDC_OP_UPSERT) {
		if (!has_after) {
			snprintf(err, n, "op %c without \"after\"", op[0]);
			return CDC_FAIL_INVALID;
		}
		if ((op[0] == 'c' || op[0] == 'r') && has_before) {
			snprintf(err, n, "op %c with a \"before\" state", op[0]);
			return CDC_FAIL_INVALID;
		}
		data = after;
	} else if (t->format == CDC_FMT_RELATIONAL) {
		if (!has_before || has_after) {
			snprintf(err, n, "op d needs \"before\" and a null \"after\"");
			return CDC_FAIL_INVALID;
		}
		data = before;
	} else {
		/* The Cassandra connector puts the deleted row's key cells in "after". */
		if (!has_after && !has_before) {
			snprintf(err, n, "op d without the key cells (\"after\")");
			return CDC_FAIL_INVALID;
		}
		data = has_after ? after : before;
	}
	row->ncols = t->ncols;
	row->state = calloc(t->ncols, sizeof(*row->state));
	row->val = calloc(t->ncols, sizeof(*row->val));
	if (row->state == NULL || row->val == NULL) {
		snprintf(err, n, "out of memory");
		return CDC_FAIL_INVALID;
	}
	json_object_foreach((json_t *)data, name, v)
	{
		bool absent;
		char why[200];
		const json_t *cv = cdc_cell(t, v, &absent, err, n, name);
		int c = cdc_table_col(t, name);
		if (cv == NULL)
			return CDC_FAIL_INVALID;
		if (absent)
			continue;
		if (c < 0) {
			/* A column the mapping lacks: schema evolution (upserts only). */
			if (row->op == CDC_OP_DELETE)
				continue;
			if (!cdc_ident_ok(name)) {
				snprintf(err, n,
				         "new column \"%.64s\" is not an identifier we create",
				         name);
				return CDC_FAIL_INVALID;
			}
			if (row->nnew == (int)(sizeof(row->newcols) / sizeof(row->newcols[0]))) {
				snprintf(err, n, "more than 8 new columns in one event");
				return CDC_FAIL_INVALID;
			}
			snprintf(row->newcols[row->nnew].name, CDC_NAME_MAX, "%s", name);
			row->newcols[row->nnew++].type_text = cdc_type_infer(cv);
			continue;
		}
		if (row->op == CDC_OP_DELETE && !t->cols[c].key)
			continue;
		if (json_is_null(cv)) {
			row->state[c] = CDC_V_NULL;
			continue;
		}
		struct sb_buf b = SB_BUF_INIT;
		int rv = cdc_value_to_pg(t->cols[c].type, cv, &b, why, sizeof(why));
		if (rv != 0) {
			sb_buf_free(&b);
			snprintf(err, n, "column %s (%s): %s", name, t->cols[c].type_text, why);
			return rv == SB_EPROTO ? CDC_FAIL_BREAKING : CDC_FAIL_INVALID;
		}
		if (b.data == NULL && sb_buf_puts(&b, "") != 0) {
			snprintf(err, n, "out of memory");
			return CDC_FAIL_INVALID;
		}
		row->val[c] = sb_buf_steal(&b);
		row->state[c] = CDC_V_SET;
	}
	size_t kl = 0;
	for (size_t c = 0; c < t->ncols; c++) {
		if (!t->cols[c].key)
			continue;
		if (row->state[c] == CDC_V_ABSENT) {
			snprintf(err, n, "key column %s missing", t->cols[c].name);
			return CDC_FAIL_BREAKING;
		}
		if (row->state[c] == CDC_V_NULL) {
			snprintf(err, n, "key column %s is null", t->cols[c].name);
			return CDC_FAIL_INVALID;
		}
		int w = snprintf(row->keytext + kl, sizeof(row->keytext) - kl, "%s%s",
		                 kl > 0 ? "\x1f" : "", row->val[c]);
		if (w < 0 || (size_t)w >= sizeof(row->keytext) - kl) {
			snprintf(err, n, "key longer than %zu bytes", sizeof(row->keytext) - 1);
			return CDC_FAIL_INVALID;
		}
		kl += (size_t)w;
	}
	if (row->nnew > 0) {
		snprintf(err, n, "%d new column%s, first %s", row->nnew, row->nnew > 1 ? "s" : "",
		         row->newcols[0].name);
		return CDC_FAIL_NEWCOLS;
	}
	return CDC_FAIL_NONE;
}

enum cdc_fail
cdc_event_transform(const struct cdc_table *t, const char *value, size_t len, struct cdc_row *row,
                    char *err, size_t n)
{
	if (cdc_event_fast(t, value, len, row))
		return CDC_FAIL_NONE;
	cdc_row_free(row);
	return cdc_event_tree(t, value, len, row, err, n);
}

enum cdc_fail
cdc_event_tree(const struct cdc_table *t, const char *value, size_t len, struct cdc_row *row,
               char *err, size_t n)
{
	json_error_t je;
	json_t *root;
	enum cdc_fail f;

	memset(row, 0, sizeof(*row));
	if (value == NULL || len == 0) {
		snprintf(err, n, "empty value (a Kafka tombstone?)");
		return CDC_FAIL_INVALID;
	}
	root = json_loadb(value, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(err, n, "not JSON: %s at %d", je.text, je.position);
		return CDC_FAIL_INVALID;
	}
	if (!json_is_object(root)) {
		snprintf(err, n, "the event is not a JSON object");
		f = CDC_FAIL_INVALID;
	} else {
		f = cdc_transform_root(t, root, row, err, n);
	}
	json_decref(root);
	return f;
}

static void
cdc_mask_obj(const struct cdc_table *t, json_t *obj)
{
	if (!json_is_object(obj))
		return;
	for (size_t c = 0; c < t->ncols; c++) {
		json_t *v = json_object_get(obj, t->cols[c].name);
		if (!t->cols[c].pii || v == NULL)
			continue;
		if (t->format == CDC_FMT_CASSANDRA && json_is_object(v))
			json_object_set_new(v, "value", json_string("***"));
		else
			json_object_set_new(obj, t->cols[c].name, json_string("***"));
	}
}

int
cdc_event_masked(const struct cdc_table *t, const char *value, size_t len, struct sb_buf *out)
{
	json_t *root = value != NULL ? json_loadb(value, len, 0, NULL) : NULL;
	int rv;
	if (root == NULL)
		return sb_buf_printf(out, "<not JSON, %zu bytes>", len);
	cdc_mask_obj(t, json_object_get(root, "before"));
	cdc_mask_obj(t, json_object_get(root, "after"));
	char *s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
	rv = s == NULL ? SB_ENOMEM : sb_buf_puts(out, s);
	free(s);
	json_decref(root);
	return rv;
}
