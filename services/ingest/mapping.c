/* mapping.c: the mapping file (JSON) of items, fields and types to subscribe and normalize.
 *
 *   { "source": "isslive", "adapter_set": "ISSLIVE",
 *     "server_ts": { "field": "TimeStamp", "unit": "year_hours" },
 *     "fields": [ { "name": "Value", "type": "string" }, ... ],
 *     "items": [ "USLAB000032", ... ] }
 *
 * Types: string, double, int64, bool. Units: ms, s, year_hours. Names are 1..ING_MAX_NAME
 * bytes of printable ASCII without spaces (TLCP separates names with spaces). */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sb_err.h"

static bool
ing_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ING_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static int
ing_type_of(const char *s, enum ing_ftype *t)
{
	static const char *const names[] = { "string", "double", "int64", "bool" };
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*t = (enum ing_ftype)i;
			return 0;
		}
	}
	return SB_EINVAL;
}

void
ing_mapping_free(struct ing_mapping *m)
{
	free(m->source);
	free(m->adapter_set);
	for (size_t i = 0; i < m->nitems; i++)
		free(m->items[i]);
	free(m->items);
	for (size_t i = 0; i < m->nfields; i++)
		free(m->fields[i].name);
	free(m->fields);
	memset(m, 0, sizeof(*m));
	m->ts_field = -1;
}

int
ing_mapping_item(const struct ing_mapping *m, const char *item)
{
	for (size_t i = 0; i < m->nitems; i++)
		if (strcmp(m->items[i], item) == 0)
			return (int)i;
	return -1;
}

int
ing_mapping_field(const struct ing_mapping *m, const char *name)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (strcmp(m->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

#define ING_MAP_BAD(...)                                                                           \
	do {                                                                                       \
		snprintf(err, n, __VA_ARGS__);                                                     \
		goto fail;                                                                         \
	} while (0)

int
ing_mapping_parse(const char *text, size_t len, struct ing_mapping *m, char *err, size_t n)
{
	json_error_t je;
	int ret = SB_EINVAL;
	memset(m, 0, sizeof(*m));
	m->ts_field = -1;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, n, "line %d: %s", je.line, je.text);
		return SB_EINVAL;
	}
	const char *source = json_string_value(json_object_get(root, "source"));
	if (!source || !ing_name_ok(source))
		ING_MAP_BAD("\"source\" must be a name (1..%d printable characters, no space)",
		            ING_MAX_NAME);
	m->source = strdup(source);
	json_t *as = json_object_get(root, "adapter_set");
	if (as && !json_is_null(as)) {
		if (!json_is_string(as) || !ing_name_ok(json_string_value(as)))
			ING_MAP_BAD("\"adapter_set\" must be a name");
		m->adapter_set = strdup(json_string_value(as));
	}
	json_t *fields = json_object_get(root, "fields");
	json_t *items = json_object_get(root, "items");
	if (!json_is_array(fields) || json_array_size(fields) < 1 ||
	    json_array_size(fields) > TLCP_MAX_FIELDS)
		ING_MAP_BAD("\"fields\" must be an array of 1..%d fields", TLCP_MAX_FIELDS);
	if (!json_is_array(items) || json_array_size(items) < 1 ||
	    json_array_size(items) > TLCP_MAX_FIELDS)
		ING_MAP_BAD("\"items\" must be an array of 1..%d item names", TLCP_MAX_FIELDS);
	m->fields = calloc(json_array_size(fields), sizeof(*m->fields));
	m->items = calloc(json_array_size(items), sizeof(*m->items));
	if (!m->fields || !m->items || !m->source) {
		ret = SB_ENOMEM;
		ING_MAP_BAD("out of memory");
	}
	size_t i;
	json_t *v;
	json_array_foreach(fields, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *type = json_string_value(json_object_get(v, "type"));
		if (!name || !ing_name_ok(name))
			ING_MAP_BAD("fields[%zu].name must be a name", i);
		if (!type || ing_type_of(type, &m->fields[i].type))
			ING_MAP_BAD("fields[%zu].type must be string, double, int64 or bool", i);
		if (ing_mapping_field(m, name) >= 0)
			ING_MAP_BAD("fields[%zu].name %s appears twice", i, name);
		m->fields[i].name = strdup(name);
		m->nfields = i + 1;
		if (!m->fields[i].name) {
			ret = SB_ENOMEM;
			ING_MAP_BAD("out of memory");
		}
	}
	json_array_foreach(items, i, v)
	{
		const char *name = json_string_value(v);
		if (!name || !ing_name_ok(name))
			ING_MAP_BAD("items[%zu] must be a name", i);
		if (ing_mapping_item(m, name) >= 0)
			ING_MAP_BAD("items[%zu] %s appears twice", i, name);
		m->items[i] = strdup(name);
		m->nitems = i + 1;
		if (!m->items[i]) {
			ret = SB_ENOMEM;
			ING_MAP_BAD("out of memory");
		}
	}
	json_t *ts = json_object_get(root, "server_ts");
	if (ts && !json_is_null(ts)) {
		const char *f = json_string_value(json_object_get(ts, "field"));
		const char *unit = json_string_value(json_object_get(ts, "unit"));
		if (!f || (m->ts_field = ing_mapping_field(m, f)) < 0)
			ING_MAP_BAD("server_ts.field must name one of the fields");
		if (!unit)
			ING_MAP_BAD("server_ts.unit must be ms, s or year_hours");
		else if (strcmp(unit, "ms") == 0)
			m->ts_unit = ING_TS_MS;
		else if (strcmp(unit, "s") == 0)
			m->ts_unit = ING_TS_S;
		else if (strcmp(unit, "year_hours") == 0)
			m->ts_unit = ING_TS_YEAR_HOURS;
		else
			ING_MAP_BAD("server_ts.unit must be ms, s or year_hours");
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	ing_mapping_free(m);
	return ret;
}

int
ing_mapping_load(const char *path, struct ing_mapping *m, char *err, size_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return SB_ENOTFOUND;
	}
	char *buf = malloc(1 << 20);
	size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
	bool more = buf && !feof(f);
	fclose(f);
	if (!buf)
		return SB_ENOMEM;
	int rc = SB_EINVAL;
	if (more) {
		snprintf(err, n, "%s: larger than 1 MiB", path);
	} else {
		rc = ing_mapping_parse(buf, len, m, err, n);
		if (rc) {
			char why[256];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, n, "%s: %s", path, why);
		}
	}
	free(buf);
	return rc;
}
