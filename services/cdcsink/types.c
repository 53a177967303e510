/* types.c: Cassandra types, their PostgreSQL types, and the check and transformation of one
 * JSON value of the connector (schemas disabled) into PostgreSQL's text input form. Pure. */
#include "cdcsink.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_util_b64.h"
#include "sb_util_hex.h"
#include "sb_util_uuid.h"

struct cdc_type_name {
	const char *name;
	enum cdc_kind kind;
	const char *pg;
};

static const struct cdc_type_name cdc_types[] = {
	{ "uuid", CDC_T_UUID, "uuid" },
	{ "timeuuid", CDC_T_TIMEUUID, "uuid" },
	{ "text", CDC_T_TEXT, "text" },
	{ "varchar", CDC_T_TEXT, "text" },
	{ "ascii", CDC_T_ASCII, "text" },
	{ "tinyint", CDC_T_TINYINT, "smallint" },
	{ "smallint", CDC_T_SMALLINT, "smallint" },
	{ "int", CDC_T_INT, "integer" },
	{ "bigint", CDC_T_BIGINT, "bigint" },
	{ "counter", CDC_T_COUNTER, "bigint" },
	{ "varint", CDC_T_VARINT, "numeric" },
	{ "decimal", CDC_T_DECIMAL, "numeric" },
	{ "float", CDC_T_FLOAT, "real" },
	{ "double", CDC_T_DOUBLE, "double precision" },
	{ "boolean", CDC_T_BOOLEAN, "boolean" },
	{ "timestamp", CDC_T_TIMESTAMP, "timestamptz" },
	{ "date", CDC_T_DATE, "date" },
	{ "time", CDC_T_TIME, "time" },
	{ "duration", CDC_T_DURATION, "interval" },
	{ "blob", CDC_T_BLOB, "bytea" },
	{ "inet", CDC_T_INET, "inet" },
	{ "list", CDC_T_LIST, NULL },
	{ "set", CDC_T_SET, NULL },
	{ "map", CDC_T_MAP, "jsonb" },
	{ "tuple", CDC_T_TUPLE, "jsonb" },
	{ "udt", CDC_T_UDT, "jsonb" },
	{ "json", CDC_T_JSON, "jsonb" },
	{ NULL, 0, NULL },
};

static const struct cdc_type_name *
cdc_type_row(enum cdc_kind k)
{
	for (const struct cdc_type_name *r = cdc_types; r->name != NULL; r++)
		if (r->kind == k)
			return r;
	return NULL;
}

void
cdc_type_free(struct cdc_type *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < t->nsub; i++)
		cdc_type_free(t->sub[i]);
	free(t);
}

static void
cdc_skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* cdc_type_rec parses one type at *p, advancing it. depth bounds the nesting. */
static int
cdc_type_rec(const char **p, int depth, struct cdc_type **out, char *err, size_t n)
{
	char word[32];
	size_t len = 0;
	const struct cdc_type_name *row;
	struct cdc_type *t;
	int rv;

	if (depth > 8) {
		snprintf(err, n, "type nested too deeply");
		return SB_EINVAL;
	}
	cdc_skip_ws(p);
	while (isalnum((unsigned char)**p) || **p == '_') {
		if (len + 1 >= sizeof(word)) {
			snprintf(err, n, "type name too long");
			return SB_EINVAL;
		}
		word[len++] = (char)tolower((unsigned char)*(*p)++);
	}
	word[len] = '\0';
	cdc_skip_ws(p);
	if (strcmp(word, "frozen") == 0) {
		if (**p != '<') {
			snprintf(err, n, "frozen without <type>");
			return SB_EINVAL;
		}
		(*p)++;
		if ((rv = cdc_type_rec(p, depth + 1, out, err, n)) != 0)
			return rv;
		cdc_skip_ws(p);
		if (**p != '>') {
			cdc_type_free(*out);
			*out = NULL;
			snprintf(err, n, "frozen<...> not closed");
			return SB_EINVAL;
		}
		(*p)++;
		return 0;
	}
	for (row = cdc_types; row->name != NULL; row++)
		if (strcmp(row->name, word) == 0)
			break;
	if (row->name == NULL) {
		snprintf(err, n, "unknown type \"%s\"", word);
		return SB_EINVAL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SB_ENOMEM;
	t->kind = row->kind;
	bool wants = t->kind == CDC_T_LIST || t->kind == CDC_T_SET || t->kind == CDC_T_MAP ||
	             t->kind == CDC_T_TUPLE;
	if (t->kind == CDC_T_UDT && **p == '<') {
		/* udt<name>: the name documents the mapping; fields are not checked. */
		while (**p != '\0' && **p != '>')
			(*p)++;
		if (**p != '>') {
			free(t);
			snprintf(err, n, "udt<...> not closed");
			return SB_EINVAL;
		}
		(*p)++;
	} else if (wants) {
		if (**p != '<') {
			free(t);
			snprintf(err, n, "%s needs <element types>", word);
			return SB_EINVAL;
		}
		(*p)++;
		for (;;) {
			if (t->nsub == 8) {
				snprintf(err, n, "too many element types");
				goto bad;
			}
			if ((rv = cdc_type_rec(p, depth + 1, &t->sub[t->nsub], err, n)) != 0) {
				cdc_type_free(t);
				return rv;
			}
			t->nsub++;
			cdc_skip_ws(p);
			if (**p == ',') {
				(*p)++;
				continue;
			}
			if (**p == '>') {
				(*p)++;
				break;
			}
			snprintf(err, n, "expected , or > in %s<...>", word);
			goto bad;
		}
		int need = t->kind == CDC_T_MAP ? 2 : (t->kind == CDC_T_TUPLE ? -1 : 1);
		if (need > 0 && t->nsub != need) {
			snprintf(err, n, "%s takes %d element type%s", word, need,
			         need > 1 ? "s" : "");
			goto bad;
		}
	}
	*out = t;
	return 0;
bad:
	cdc_type_free(t);
	return SB_EINVAL;
}

int
cdc_type_parse(const char *s, struct cdc_type **out, char *err, size_t n)
{
	const char *p = s;
	int rv;

	if (s == NULL) {
		snprintf(err, n, "no type");
		return SB_EINVAL;
	}
	if ((rv = cdc_type_rec(&p, 0, out, err, n)) != 0)
		return rv;
	cdc_skip_ws(&p);
	if (*p != '\0') {
		cdc_type_free(*out);
		*out = NULL;
		snprintf(err, n, "trailing text after type: \"%.20s\"", p);
		return SB_EINVAL;
	}
	return 0;
}

static bool
cdc_type_collection(const struct cdc_type *t)
{
	return t->kind == CDC_T_LIST || t->kind == CDC_T_SET || t->kind == CDC_T_MAP ||
	       t->kind == CDC_T_TUPLE || t->kind == CDC_T_UDT || t->kind == CDC_T_JSON;
}

int
cdc_type_pg(const struct cdc_type *t, char *out, size_t n)
{
	int w;
	if (t->kind == CDC_T_LIST || t->kind == CDC_T_SET) {
		/* A collection of scalars is an array; nested collections are jsonb. */
		if (cdc_type_collection(t->sub[0]))
			w = snprintf(out, n, "jsonb");
		else
			w = snprintf(out, n, "%s[]", cdc_type_row(t->sub[0]->kind)->pg);
	} else {
		w = snprintf(out, n, "%s", cdc_type_row(t->kind)->pg);
	}
	return w < 0 || (size_t)w >= n ? SB_ERANGE : 0;
}

const char *
cdc_type_infer(const json_t *v)
{
	if (v == NULL)
		return "text";
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		return "bigint";
	case JSON_REAL:
		return "double";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_OBJECT:
	case JSON_ARRAY:
		return "json";
	default:
		return "text";
	}
}

bool
cdc_ident_ok(const char *s)
{
	size_t i;
	if (s == NULL || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		      s[i] == '_') ||
		    i >= CDC_NAME_MAX - 1)
			return false;
	return strncmp(s, "_cdc", 4) != 0;
}

/* ---- values ---- */

#define CDC_KIND_ERR(what)                                                                         \
	do {                                                                                       \
		snprintf(err, n, "expected %s, got a JSON %s", what, cdc_json_kind(v));            \
		return SB_EPROTO;                                                                  \
	} while (0)

static const char *
cdc_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/* cdc_str returns v's string when it holds no NUL byte, else NULL. */
static const char *
cdc_str(const json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

/* cdc_numeric_ok: an optional sign, digits, an optional fraction and exponent. */
static bool
cdc_numeric_ok(const char *s, bool integer)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (integer)
		return *p == '\0' && p - s <= 1000;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		int e = 0;
		while (isdigit((unsigned char)*p)) {
			if (++e > 4)
				return false;
			p++;
		}
	}
	return *p == '\0' && p - s <= 1000;
}

/* cdc_civil writes the UTC calendar date and time of secs (since the epoch) into tm; years
 * outside 1..9999 are refused (PostgreSQL would need BC or an extended form). */
static int
cdc_civil(int64_t secs, struct tm *tm, char *err, size_t n)
{
	time_t t = (time_t)secs;
	if (secs < -62135596800LL || secs > 253402300799LL || gmtime_r(&t, tm) == NULL) {
		snprintf(err, n, "time %" PRId64 " s outside years 1..9999", secs);
		return SB_EINVAL;
	}
	return 0;
}

static int64_t
cdc_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* cdc_blob writes base64 s (standard alphabet, padded) as PostgreSQL's hex bytea form. */
static int
cdc_blob(const char *s, struct sb_buf *out, char *err, size_t n)
{
	size_t len = strlen(s), got = 0;
	size_t cap = sb_b64_decoded_max(len);
	uint8_t *bytes = cap > 0 ? malloc(cap) : NULL;
	if (cap > 0 && bytes == NULL)
		return SB_ENOMEM;
	int rv = sb_b64_decode(s, len, SB_B64_STD | SB_B64_PAD, bytes, cap, &got);
	if (rv != 0) {
		free(bytes);
		snprintf(err, n, "blob: not canonical padded base64 (RFC 4648 section 4)");
		return SB_EINVAL;
	}
	rv = sb_buf_reserve(out, 2 + 2 * got) != 0 ? SB_ENOMEM : 0;
	if (rv == 0) {
		out->data[out->len++] = '\\';
		out->data[out->len++] = 'x';
		sb_hex_encode(bytes, got, out->data + out->len);
		out->len += 2 * got;
		out->data[out->len] = '\0';
	}
	free(bytes);
	return rv;
}

/* cdc_iso_ok checks a date ("YYYY-MM-DD") or timestamp string loosely: digits and
 * separators where they belong; PostgreSQL checks the calendar. */
static bool
cdc_date_ok(const char *s)
{
	for (int i = 0; i < 10; i++) {
		bool sep = i == 4 || i == 7;
		if (sep ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return false;
	}
	int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
	return m >= 1 && m <= 12 && d >= 1 && d <= 31 && strncmp(s, "0000", 4) != 0;
}

static bool
cdc_timestamp_ok(const char *s)
{
	const char *p = s + 10;
	if (strlen(s) < 10 || !cdc_date_ok(s))
		return false;
	if (*p == '\0')
		return true;
	if (*p != 'T' && *p != ' ')
		return false;
	p++;
	for (int i = 0; i < 8; i++) {
		bool sep = i == 2 || i == 5;
		if (sep ? p[i] != ':' : !isdigit((unsigned char)p[i]))
			return false;
	}
	p += 8;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (int i = 0; isdigit((unsigned char)*p); i++, p++)
			if (i >= 9)
				return false;
	}
	if (*p == 'Z' && p[1] == '\0')
		return true;
	if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2])) {
		p += 3;
		if (*p == ':')
			p++;
		if (*p == '\0')
			return true;
		return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) && p[2] == '\0';
	}
	return false;
}

/* cdc_duration_ok: ISO 8601 durations ("P1Y2M3DT4H5M6.5S", an optional leading '-'). */
static bool
cdc_duration_ok(const char *s)
{
	const char *p = s;
	bool t = false, any = false;
	if (*p == '-')
		p++;
	if (*p++ != 'P')
		return false;
	while (*p != '\0') {
		if (*p == 'T' && !t) {
			t = true;
			p++;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			return false;
		int digits = 0;
		while (isdigit((unsigned char)*p)) {
			if (++digits > 18)
				return false;
			p++;
		}
		if (*p == '.' && t) {
			p++;
			while (isdigit((unsigned char)*p))
				p++;
			if (*p != 'S')
				return false;
		}
		if (!(t ? strchr("HMS", *p) : strchr("YMWD", *p)) || *p == '\0')
			return false;
		p++;
		any = true;
	}
	return any;
}

static int cdc_value_json(const struct cdc_type *t, const json_t *v, struct sb_buf *out, char *err,
                          size_t n);

/* cdc_array_elem appends one element of an array literal: NULL, or the value double-quoted. */
static int
cdc_array_elem(struct sb_buf *out, const char *s, size_t len)
{
	if (sb_buf_puts(out, "\"") != 0)
		return SB_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if ((s[i] == '"' || s[i] == '\\') && sb_buf_puts(out, "\\") != 0)
			return SB_ENOMEM;
		if (sb_buf_append(out, &s[i], 1) != 0)
			return SB_ENOMEM;
	}
	return sb_buf_puts(out, "\"");
}

static int
cdc_collection_to_pg(const struct cdc_type *t, const json_t *v, struct sb_buf *out, char *err,
                     size_t n)
{
	int rv;
	if (t->kind == CDC_T_LIST || t->kind == CDC_T_SET) {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			CDC_KIND_ERR("an array");
		if (cdc_type_collection(t->sub[0]))
			return cdc_value_json(t, v, out, err, n);
		if (sb_buf_puts(out, "{") != 0)
			return SB_ENOMEM;
		json_array_foreach(v, i, e)
		{
			struct sb_buf one = SB_BUF_INIT;
			if (i > 0 && sb_buf_puts(out, ",") != 0)
				return SB_ENOMEM;
			if (json_is_null(e)) {
				snprintf(err, n, "element %zu of a collection is null", i);
				return SB_EINVAL;
			}
			rv = cdc_value_to_pg(t->sub[0], e, &one, err, n);
			if (rv == 0)
				rv = cdc_array_elem(out, one.data != NULL ? one.data : "", one.len);
			sb_buf_free(&one);
			if (rv != 0)
				return rv;
		}
		return sb_buf_puts(out, "}");
	}
	return cdc_value_json(t, v, out, err, n);
}

/* cdc_value_json checks a collection value v of type t and appends it as JSON: list/set as
 * arrays, map as an object (a JSON object, or an array of [key, value] pairs from maps whose
 * keys are not strings, kept as such), tuple as an array, udt and json as they are. */
static int
cdc_value_json(const struct cdc_type *t, const json_t *v, struct sb_buf *out, char *err, size_t n)
{
	struct sb_buf scratch = SB_BUF_INIT;
	int rv = 0;
	size_t i;
	json_t *e;
	const char *k;

	switch (t->kind) {
	case CDC_T_LIST:
	case CDC_T_SET:
		if (!json_is_array(v))
			CDC_KIND_ERR("an array");
		json_array_foreach(v, i, e)
		{
			sb_buf_reset(&scratch);
			if ((rv = cdc_value_to_pg(t->sub[0], e, &scratch, err, n)) != 0)
				break;
		}
		break;
	case CDC_T_MAP:
		if (json_is_object(v)) {
			json_object_foreach((json_t *)v, k, e)
			{
				json_t *key = json_string(k);
				sb_buf_reset(&scratch);
				rv = key == NULL
				         ? SB_ENOMEM
				         : (t->sub[0]->kind == CDC_T_TEXT ||
				                    t->sub[0]->kind == CDC_T_ASCII ||
				                    t->sub[0]->kind == CDC_T_UUID ||
				                    t->sub[0]->kind == CDC_T_TIMEUUID ||
				                    t->sub[0]->kind == CDC_T_INET
				                ? cdc_value_to_pg(t->sub[0], key, &scratch, err, n)
				                : 0);
				json_decref(key);
				if (rv != 0)
					break;
				sb_buf_reset(&scratch);
				if (!json_is_null(e) &&
				    (rv = cdc_value_to_pg(t->sub[1], e, &scratch, err, n)) != 0)
					break;
			}
		} else if (json_is_array(v)) {
			json_array_foreach(v, i, e)
			{
				if (!json_is_array(e) || json_array_size(e) != 2) {
					snprintf(err, n, "map entry %zu is not a [key, value] pair",
					         i);
					rv = SB_EPROTO;
					break;
				}
				sb_buf_reset(&scratch);
				if ((rv = cdc_value_to_pg(t->sub[0], json_array_get(e, 0), &scratch,
				                          err, n)) != 0)
					break;
				sb_buf_reset(&scratch);
				if (!json_is_null(json_array_get(e, 1)) &&
				    (rv = cdc_value_to_pg(t->sub[1], json_array_get(e, 1), &scratch,
				                          err, n)) != 0)
					break;
			}
		} else {
			CDC_KIND_ERR("an object");
		}
		break;
	case CDC_T_TUPLE: {
		/* The connector writes a tuple as a struct {"field1": .., "field2": ..}; an array
		 * is accepted too. Stored as an array in field order. */
		json_t *arr = NULL;
		if (json_is_object(v)) {
			if (json_object_size(v) != (size_t)t->nsub) {
				snprintf(err, n, "tuple has %zu fields, the type %d",
				         json_object_size(v), t->nsub);
				return SB_EPROTO;
			}
			arr = json_array();
			for (int f = 0; arr != NULL && f < t->nsub; f++) {
				char name[16];
				snprintf(name, sizeof(name), "field%d", f + 1);
				json_t *fv = json_object_get(v, name);
				if (fv == NULL) {
					snprintf(err, n, "tuple lacks %s", name);
					json_decref(arr);
					return SB_EPROTO;
				}
				json_array_append(arr, fv);
			}
		} else if (json_is_array(v)) {
			if (json_array_size(v) != (size_t)t->nsub) {
				snprintf(err, n, "tuple has %zu fields, the type %d",
				         json_array_size(v), t->nsub);
				return SB_EPROTO;
			}
			arr = json_incref((json_t *)v);
		} else {
			CDC_KIND_ERR("an object");
		}
		if (arr == NULL)
			return SB_ENOMEM;
		json_array_foreach(arr, i, e)
		{
			sb_buf_reset(&scratch);
			if (!json_is_null(e) &&
			    (rv = cdc_value_to_pg(t->sub[i], e, &scratch, err, n)) != 0)
				break;
		}
		if (rv == 0) {
			char *s = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
			rv = s == NULL ? SB_ENOMEM : sb_buf_puts(out, s);
			free(s);
		}
		json_decref(arr);
		sb_buf_free(&scratch);
		return rv;
	}
	case CDC_T_UDT:
		if (!json_is_object(v))
			CDC_KIND_ERR("an object");
		break;
	default: /* CDC_T_JSON */
		break;
	}
	sb_buf_free(&scratch);
	if (rv != 0)
		return rv;
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	if (s == NULL)
		return SB_ENOMEM;
	rv = sb_buf_puts(out, s);
	free(s);
	return rv;
}

static int
cdc_int_range(const json_t *v, long long lo, long long hi, struct sb_buf *out, char *err, size_t n)
{
	if (!json_is_integer(v)) {
		if (json_is_real(v)) {
			snprintf(err, n, "expected an integer, got %g", json_real_value(v));
			return SB_EINVAL;
		}
		CDC_KIND_ERR("an integer");
	}
	long long x = json_integer_value(v);
	if (x < lo || x > hi) {
		snprintf(err, n, "integer %lld outside %lld..%lld", x, lo, hi);
		return SB_EINVAL;
	}
	return sb_buf_printf(out, "%lld", x);
}

int
cdc_value_to_pg(const struct cdc_type *t, const json_t *v, struct sb_buf *out, char *err, size_t n)
{
	const char *s;
	struct sb_uuid u;
	struct tm tm;

	if (v == NULL || json_is_null(v)) {
		snprintf(err, n, "null value");
		return SB_EINVAL;
	}
	switch (t->kind) {
	case CDC_T_UUID:
	case CDC_T_TIMEUUID: {
		char canon[SB_UUID_STR_LEN + 1];
		if (!json_is_string(v))
			CDC_KIND_ERR("a uuid string");
		if ((s = cdc_str(v)) == NULL || sb_uuid_parse(s, &u) != 0) {
			snprintf(err, n, "not a uuid");
			return SB_EINVAL;
		}
		if (t->kind == CDC_T_TIMEUUID && sb_uuid_version(&u) != 1) {
			snprintf(err, n, "timeuuid of version %d, not 1", sb_uuid_version(&u));
			return SB_EINVAL;
		}
		sb_uuid_format(&u, canon);
		return sb_buf_puts(out, canon);
	}
	case CDC_T_TEXT:
	case CDC_T_ASCII:
		if (!json_is_string(v))
			CDC_KIND_ERR("a string");
		if ((s = cdc_str(v)) == NULL) {
			snprintf(err, n, "string holds a NUL character");
			return SB_EINVAL;
		}
		if (t->kind == CDC_T_ASCII)
			for (const char *p = s; *p != '\0'; p++)
				if ((unsigned char)*p >= 128) {
					snprintf(err, n, "ascii value holds a non-ASCII byte");
					return SB_EINVAL;
				}
		return sb_buf_append(out, s, strlen(s));
	case CDC_T_TINYINT:
		return cdc_int_range(v, -128, 127, out, err, n);
	case CDC_T_SMALLINT:
		return cdc_int_range(v, -32768, 32767, out, err, n);
	case CDC_T_INT:
		return cdc_int_range(v, INT32_MIN, INT32_MAX, out, err, n);
	case CDC_T_BIGINT:
	case CDC_T_COUNTER:
		return cdc_int_range(v, INT64_MIN, INT64_MAX, out, err, n);
	case CDC_T_VARINT:
	case CDC_T_DECIMAL:
		if (json_is_integer(v))
			return sb_buf_printf(out, "%lld", json_integer_value(v));
		if (json_is_real(v)) {
			if (t->kind == CDC_T_VARINT) {
				snprintf(err, n, "varint with a fraction");
				return SB_EINVAL;
			}
			return sb_buf_printf(out, "%.17g", json_real_value(v));
		}
		if (!json_is_string(v))
			CDC_KIND_ERR("a number or numeric string");
		if ((s = cdc_str(v)) == NULL || !cdc_numeric_ok(s, t->kind == CDC_T_VARINT)) {
			snprintf(err, n, "not a %s",
			         t->kind == CDC_T_VARINT ? "varint" : "decimal");
			return SB_EINVAL;
		}
		return sb_buf_puts(out, s);
	case CDC_T_FLOAT:
	case CDC_T_DOUBLE: {
		double d;
		if (json_is_string(v)) {
			/* Non-finite values travel as strings (JSON has no NaN). */
			s = cdc_str(v);
			if (s != NULL && (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
			                  strcmp(s, "-Infinity") == 0))
				return sb_buf_puts(out, s);
			snprintf(err, n, "not a number");
			return SB_EINVAL;
		}
		if (!json_is_number(v))
			CDC_KIND_ERR("a number");
		d = json_number_value(v);
		if (t->kind == CDC_T_FLOAT) {
			if (fabs(d) > FLT_MAX) {
				snprintf(err, n, "%g does not fit a float", d);
				return SB_EINVAL;
			}
			return sb_buf_printf(out, "%.9g", (double)(float)d);
		}
		return sb_buf_printf(out, "%.17g", d);
	}
	case CDC_T_BOOLEAN:
		if (!json_is_boolean(v))
			CDC_KIND_ERR("a boolean");
		return sb_buf_puts(out, json_is_true(v) ? "true" : "false");
	case CDC_T_TIMESTAMP: {
		/* Milliseconds since the epoch (the connector's timestamp), or an ISO 8601 text
		 * (ZonedTimestamp of the relational connectors). */
		if (json_is_string(v)) {
			if ((s = cdc_str(v)) == NULL || !cdc_timestamp_ok(s)) {
				snprintf(err, n, "not an ISO 8601 timestamp");
				return SB_EINVAL;
			}
			return sb_buf_puts(out, s);
		}
		if (!json_is_integer(v))
			CDC_KIND_ERR("milliseconds since the epoch");
		int64_t ms = json_integer_value(v), secs = cdc_floordiv(ms, 1000);
		int rv = cdc_civil(secs, &tm, err, n);
		if (rv != 0)
			return rv;
		return sb_buf_printf(out, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00",
		                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                     tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
	}
	case CDC_T_DATE: {
		/* Days since the epoch (io.debezium.time.Date), or "YYYY-MM-DD". */
		if (json_is_string(v)) {
			if ((s = cdc_str(v)) == NULL || strlen(s) != 10 || !cdc_date_ok(s)) {
				snprintf(err, n, "not a YYYY-MM-DD date");
				return SB_EINVAL;
			}
			return sb_buf_puts(out, s);
		}
		if (!json_is_integer(v))
			CDC_KIND_ERR("days since the epoch");
		long long days = json_integer_value(v);
		if (days < -1000000000LL || days > 1000000000LL) {
			snprintf(err, n, "date %lld days out of range", days);
			return SB_EINVAL;
		}
		int rv = cdc_civil((int64_t)days * 86400, &tm, err, n);
		if (rv != 0)
			return rv;
		return sb_buf_printf(out, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		                     tm.tm_mday);
	}
	case CDC_T_TIME: {
		/* Nanoseconds since midnight (io.debezium.time.NanoTime); PostgreSQL keeps µs. */
		if (!json_is_integer(v))
			CDC_KIND_ERR("nanoseconds since midnight");
		long long ns = json_integer_value(v);
		if (ns < 0 || ns >= 86400000000000LL) {
			snprintf(err, n, "time %lld ns outside one day", ns);
			return SB_EINVAL;
		}
		long long us = ns / 1000, sec = us / 1000000;
		return sb_buf_printf(out, "%02lld:%02lld:%02lld.%06lld", sec / 3600, sec / 60 % 60,
		                     sec % 60, us % 1000000);
	}
	case CDC_T_DURATION:
		/* An ISO 8601 duration text, or nanoseconds. */
		if (json_is_integer(v))
			return sb_buf_printf(out, "%lld microseconds",
			                     json_integer_value(v) / 1000);
		if (!json_is_string(v))
			CDC_KIND_ERR("an ISO 8601 duration");
		if ((s = cdc_str(v)) == NULL || !cdc_duration_ok(s)) {
			snprintf(err, n, "not an ISO 8601 duration");
			return SB_EINVAL;
		}
		return sb_buf_puts(out, s);
	case CDC_T_BLOB:
		if (!json_is_string(v))
			CDC_KIND_ERR("a base64 string");
		if ((s = cdc_str(v)) == NULL)
			return SB_EINVAL;
		return cdc_blob(s, out, err, n);
	case CDC_T_INET: {
		unsigned char buf[16];
		char canon[INET6_ADDRSTRLEN];
		if (!json_is_string(v))
			CDC_KIND_ERR("an address string");
		if ((s = cdc_str(v)) == NULL) {
			snprintf(err, n, "not an IP address");
			return SB_EINVAL;
		}
		if (inet_pton(AF_INET, s, buf) == 1)
			inet_ntop(AF_INET, buf, canon, sizeof(canon));
		else if (inet_pton(AF_INET6, s, buf) == 1)
			inet_ntop(AF_INET6, buf, canon, sizeof(canon));
		else {
			snprintf(err, n, "not an IP address");
			return SB_EINVAL;
		}
		return sb_buf_puts(out, canon);
	}
	default:
		return cdc_collection_to_pg(t, v, out, err, n);
	}
}
