/* mapping.c: the table mapping (a JSON file, docs/cdcsink.md) and the DDL made from it. */
#include "cdcsink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

/* The example of make run: topic cassandra.shop.users → shop.users. */
static const char cdc_example_mapping[] =
    "{\"tables\": [{\"topic\": \"cassandra.shop.users\", \"table\": \"shop.users\","
    " \"format\": \"cassandra\", \"source\": \"shop.users\", \"pii\": [\"email\"],"
    " \"columns\": [{\"name\": \"id\", \"type\": \"uuid\", \"key\": true},"
    " {\"name\": \"name\", \"type\": \"text\"}, {\"name\": \"email\", \"type\": \"text\"},"
    " {\"name\": \"age\", \"type\": \"int\"}, {\"name\": \"tags\", \"type\": \"set<text>\"},"
    " {\"name\": \"updated_at\", \"type\": \"timestamp\"}]}]}";

int
cdc_table_col(const struct cdc_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
cdc_table_push(struct cdc_table *t, const char *name, const char *type_text, bool key, char *err,
               size_t n)
{
	struct cdc_type *ty = NULL;
	int rv;
	if (!cdc_ident_ok(name)) {
		snprintf(err, n, "column name \"%.64s\" is not a lowercase identifier", name);
		return SB_EINVAL;
	}
	if (cdc_table_col(t, name) >= 0) {
		snprintf(err, n, "column \"%s\" named twice", name);
		return SB_EINVAL;
	}
	if ((rv = cdc_type_parse(type_text, &ty, err, n)) != 0)
		return rv;
	if (t->ncols == t->capcols) {
		size_t cap = t->capcols ? t->capcols * 2 : 8;
		struct cdc_column *c = realloc(t->cols, cap * sizeof(*c));
		if (c == NULL) {
			cdc_type_free(ty);
			return SB_ENOMEM;
		}
		t->cols = c;
		t->capcols = cap;
	}
	struct cdc_column *c = &t->cols[t->ncols];
	memset(c, 0, sizeof(*c));
	c->name = strdup(name);
	c->type_text = strdup(type_text);
	c->type = ty;
	c->key = key;
	if (c->name == NULL || c->type_text == NULL) {
		free(c->name);
		free(c->type_text);
		cdc_type_free(ty);
		return SB_ENOMEM;
	}
	t->ncols++;
	return 0;
}

int
cdc_table_add_col(struct cdc_table *t, const char *name, const char *type_text)
{
	char err[128];
	int rv = cdc_table_push(t, name, type_text, false, err, sizeof(err));
	if (rv == 0)
		t->cols[t->ncols - 1].inferred = true;
	return rv;
}

static int
cdc_split_name(const char *s, char **a, char **b)
{
	const char *dot = s != NULL ? strchr(s, '.') : NULL;
	if (dot == NULL || strchr(dot + 1, '.') != NULL)
		return SB_EINVAL;
	*a = strndup(s, (size_t)(dot - s));
	*b = strdup(dot + 1);
	return *a == NULL || *b == NULL ? SB_ENOMEM : 0;
}

static int
cdc_table_parse(json_t *jt, struct cdc_table *t, char *err, size_t n)
{
	const char *topic = json_string_value(json_object_get(jt, "topic"));
	const char *target = json_string_value(json_object_get(jt, "table"));
	const char *format = json_string_value(json_object_get(jt, "format"));
	const char *source = json_string_value(json_object_get(jt, "source"));
	json_t *cols = json_object_get(jt, "columns"), *pii = json_object_get(jt, "pii"), *jc;
	size_t i, nkeys = 0;
	int rv;

	pthread_mutex_init(&t->mu, NULL);
	if (topic == NULL || topic[0] == '\0' || strlen(topic) > 200) {
		snprintf(err, n, "a table without \"topic\"");
		return SB_EINVAL;
	}
	if ((t->topic = strdup(topic)) == NULL)
		return SB_ENOMEM;
	if ((rv = cdc_split_name(target, &t->schema, &t->name)) != 0 || !cdc_ident_ok(t->schema) ||
	    !cdc_ident_ok(t->name) || strlen(t->name) > 53) {
		snprintf(err, n,
		         "%s: \"table\" must be schema.table, lowercase identifiers (table at "
		         "most 53 bytes)",
		         topic);
		return rv == SB_ENOMEM ? rv : SB_EINVAL;
	}
	if (format == NULL || strcmp(format, "cassandra") == 0)
		t->format = CDC_FMT_CASSANDRA;
	else if (strcmp(format, "relational") == 0)
		t->format = CDC_FMT_RELATIONAL;
	else {
		snprintf(err, n, "%s: format must be cassandra or relational", topic);
		return SB_EINVAL;
	}
	if (source != NULL && cdc_split_name(source, &t->keyspace, &t->source_table) != 0) {
		snprintf(err, n, "%s: \"source\" must be keyspace.table", topic);
		return SB_EINVAL;
	}
	t->backfill = json_is_true(json_object_get(jt, "backfill"));
	if (!json_is_array(cols) || json_array_size(cols) == 0) {
		snprintf(err, n, "%s: \"columns\" must be a non-empty array", topic);
		return SB_EINVAL;
	}
	json_array_foreach(cols, i, jc)
	{
		const char *name = json_string_value(json_object_get(jc, "name"));
		const char *type = json_string_value(json_object_get(jc, "type"));
		bool key = json_is_true(json_object_get(jc, "key"));
		char why[160];
		if ((rv = cdc_table_push(t, name != NULL ? name : "", type, key, why,
		                         sizeof(why))) != 0) {
			snprintf(err, n, "%s: column %zu: %s", topic, i, why);
			return rv;
		}
		nkeys += key;
	}
	if (nkeys == 0 || nkeys > 8) {
		snprintf(err, n, "%s: 1 to 8 key columns needed", topic);
		return SB_EINVAL;
	}
	json_array_foreach(pii, i, jc)
	{
		int c = cdc_table_col(t, json_string_value(jc) ? json_string_value(jc) : "");
		if (c < 0) {
			snprintf(err, n, "%s: pii column %zu is not a column", topic, i);
			return SB_EINVAL;
		}
		t->cols[c].pii = true;
	}
	return 0;
}

int
cdc_mapping_parse(const char *text, struct cdc_mapping *out, char *err, size_t n)
{
	json_error_t je;
	json_t *root = json_loads(text, 0, &je), *tables, *jt;
	size_t i;
	int rv = SB_EINVAL;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		snprintf(err, n, "mapping is not JSON: line %d: %s", je.line, je.text);
		return SB_EINVAL;
	}
	tables = json_object_get(root, "tables");
	if (!json_is_array(tables) || json_array_size(tables) == 0 ||
	    json_array_size(tables) > 64) {
		snprintf(err, n, "mapping needs \"tables\": 1 to 64 tables");
		goto done;
	}
	out->tables = calloc(json_array_size(tables), sizeof(*out->tables));
	if (out->tables == NULL) {
		rv = SB_ENOMEM;
		goto done;
	}
	json_array_foreach(tables, i, jt)
	{
		out->n++;
		if ((rv = cdc_table_parse(jt, &out->tables[i], err, n)) != 0)
			goto done;
		for (size_t j = 0; j < i; j++)
			if (strcmp(out->tables[j].topic, out->tables[i].topic) == 0 ||
			    (strcmp(out->tables[j].schema, out->tables[i].schema) == 0 &&
			     strcmp(out->tables[j].name, out->tables[i].name) == 0)) {
				snprintf(err, n, "%s: topic or table mapped twice",
				         out->tables[i].topic);
				rv = SB_EINVAL;
				goto done;
			}
	}
	rv = 0;
done:
	json_decref(root);
	if (rv != 0)
		cdc_mapping_free(out);
	return rv;
}

int
cdc_mapping_load(const char *path, struct cdc_mapping *out, char *err, size_t n)
{
	FILE *f;
	char *text;
	long len;
	int rv;

	if (path == NULL || path[0] == '\0')
		return cdc_mapping_parse(cdc_example_mapping, out, err, n);
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, n, "cannot open %s: %s", path, strerror(errno));
		return SB_EINVAL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || len > 1 << 20 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		snprintf(err, n, "%s: unreadable or larger than 1 MiB", path);
		return SB_EINVAL;
	}
	if ((text = calloc(1, (size_t)len + 1)) == NULL) {
		fclose(f);
		return SB_ENOMEM;
	}
	if (fread(text, 1, (size_t)len, f) != (size_t)len) {
		snprintf(err, n, "%s: read failed", path);
		rv = SB_EINVAL;
	} else {
		rv = cdc_mapping_parse(text, out, err, n);
	}
	fclose(f);
	free(text);
	return rv;
}

void
cdc_mapping_free(struct cdc_mapping *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct cdc_table *t = &m->tables[i];
		for (size_t c = 0; c < t->ncols; c++) {
			free(t->cols[c].name);
			free(t->cols[c].type_text);
			cdc_type_free(t->cols[c].type);
		}
		free(t->cols);
		free(t->topic);
		free(t->schema);
		free(t->name);
		free(t->keyspace);
		free(t->source_table);
		pthread_mutex_destroy(&t->mu);
	}
	free(m->tables);
	memset(m, 0, sizeof(*m));
}

struct cdc_table *
cdc_mapping_find(struct cdc_mapping *m, const char *topic)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->tables[i].topic, topic) == 0)
			return &m->tables[i];
	return NULL;
}

int
cdc_table_tomb(const struct cdc_table *t, char *out, size_t n)
{
	int w = snprintf(out, n, "_cdc_tomb_%s", t->name);
	return w < 0 || (size_t)w >= n ? SB_ERANGE : 0;
}

int
cdc_table_ddl(const struct cdc_table *t, struct sb_buf *b)
{
	char pg[96], tomb[CDC_NAME_MAX + 16];
	int rv = 0;
	size_t i;

	if (cdc_table_tomb(t, tomb, sizeof(tomb)) != 0)
		return SB_ERANGE;
	rv |= sb_buf_printf(b, "CREATE SCHEMA IF NOT EXISTS \"%s\";\n", t->schema);
	rv |= sb_buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\".\"%s\" (", t->schema, t->name);
	for (i = 0; i < t->ncols; i++) {
		if (cdc_type_pg(t->cols[i].type, pg, sizeof(pg)) != 0)
			return SB_ERANGE;
		rv |= sb_buf_printf(b, "\"%s\" %s%s, ", t->cols[i].name, pg,
		                    t->cols[i].key ? " NOT NULL" : "");
	}
	rv |= sb_buf_puts(b, "_cdc_version bigint NOT NULL, "
	                     "_cdc_updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (");
	bool first = true;
	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].key) {
			rv |= sb_buf_printf(b, "%s\"%s\"", first ? "" : ", ", t->cols[i].name);
			first = false;
		}
	rv |= sb_buf_puts(b, "));\n");
	for (i = 0; i < t->ncols; i++) {
		if (t->cols[i].key)
			continue;
		cdc_type_pg(t->cols[i].type, pg, sizeof(pg));
		rv |= sb_buf_printf(
		    b, "ALTER TABLE \"%s\".\"%s\" ADD COLUMN IF NOT EXISTS \"%s\" %s;\n", t->schema,
		    t->name, t->cols[i].name, pg);
	}
	rv |= sb_buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\".\"%s\" (", t->schema, tomb);
	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].key) {
			cdc_type_pg(t->cols[i].type, pg, sizeof(pg));
			rv |= sb_buf_printf(b, "\"%s\" %s NOT NULL, ", t->cols[i].name, pg);
		}
	rv |= sb_buf_puts(b, "_cdc_version bigint NOT NULL, "
	                     "_cdc_deleted_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (");
	first = true;
	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].key) {
			rv |= sb_buf_printf(b, "%s\"%s\"", first ? "" : ", ", t->cols[i].name);
			first = false;
		}
	rv |= sb_buf_puts(b, "));\n");
	return rv != 0 ? SB_ENOMEM : 0;
}
