/* event_fast.c: a reader of the common shape of the Cassandra connector's change event that
 * does not build a jansson tree (the tree costs about two thirds of the sink's CPU an event).
 *
 * It answers only when it is sure: plain text (printable ASCII strings without escapes,
 * integers of at most 18 digits, true/false/null, objects and arrays at most 32 deep, no key
 * twice in an object), op c/u/r/d with the cells in "after" and no "before" state, every cell
 * of a mapped column, every value accepted by cdc_value_to_pg. Then the row it fills is the one
 * cdc_event_tree would fill. Anything else (escapes, UTF-8, fractions, errors of any kind, new
 * columns, the relational envelope) makes it decline, and the caller uses cdc_event_tree, which
 * also gives the reason. cdc_event_fuzz and event_test check that the two agree. */
#include "cdcsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

#define FX_DEPTH_MAX 32
#define FX_KEYS_MAX  64 /* members of one object we track for duplicates */

struct fx {
	const char *p, *end;
	int depth;
};

/* A value as written: kind is one of '"' (string, s/n without quotes), '0' (integer, in i),
 * 't', 'f', 'n', '{' or '[' (s/n the whole text of the container). */
struct fx_val {
	char kind;
	const char *s;
	size_t n;
	long long i;
};

static void
fx_ws(struct fx *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

/* fx_str reads a string without escapes and of printable ASCII only. */
static bool
fx_str(struct fx *x, const char **s, size_t *n)
{
	if (x->p >= x->end || *x->p != '"')
		return false;
	const char *b = ++x->p;
	while (x->p < x->end && *x->p != '"') {
		unsigned char c = (unsigned char)*x->p;
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return false;
		x->p++;
	}
	if (x->p >= x->end)
		return false;
	*s = b;
	*n = (size_t)(x->p - b);
	x->p++;
	return true;
}

static bool fx_value(struct fx *x, struct fx_val *v);

/* fx_object reads an object's members after '{', calling fn (may be NULL) for each. */
static bool
fx_object(struct fx *x, bool (*fn)(void *, const char *, size_t, const struct fx_val *), void *arg)
{
	const char *keys[FX_KEYS_MAX];
	size_t lens[FX_KEYS_MAX], nk = 0;

	fx_ws(x);
	if (x->p < x->end && *x->p == '}') {
		x->p++;
		return true;
	}
	for (;;) {
		const char *k;
		size_t kn;
		struct fx_val v;
		fx_ws(x);
		if (!fx_str(x, &k, &kn) || nk == FX_KEYS_MAX)
			return false;
		for (size_t i = 0; i < nk; i++)
			if (lens[i] == kn && memcmp(keys[i], k, kn) == 0)
				return false; /* a key twice */
		keys[nk] = k;
		lens[nk++] = kn;
		fx_ws(x);
		if (x->p >= x->end || *x->p != ':')
			return false;
		x->p++;
		if (!fx_value(x, &v) || (fn != NULL && !fn(arg, k, kn, &v)))
			return false;
		fx_ws(x);
		if (x->p < x->end && *x->p == ',') {
			x->p++;
			continue;
		}
		if (x->p < x->end && *x->p == '}') {
			x->p++;
			return true;
		}
		return false;
	}
}

static bool
fx_array(struct fx *x)
{
	fx_ws(x);
	if (x->p < x->end && *x->p == ']') {
		x->p++;
		return true;
	}
	for (;;) {
		struct fx_val v;
		if (!fx_value(x, &v))
			return false;
		fx_ws(x);
		if (x->p < x->end && *x->p == ',') {
			x->p++;
			continue;
		}
		if (x->p < x->end && *x->p == ']') {
			x->p++;
			return true;
		}
		return false;
	}
}

static bool
fx_lit(struct fx *x, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(x->end - x->p) < n || memcmp(x->p, w, n) != 0)
		return false;
	x->p += n;
	return true;
}

/* fx_value reads any value (containers are checked, not kept: v->s/n span their text). */
static bool
fx_value(struct fx *x, struct fx_val *v)
{
	fx_ws(x);
	if (x->p >= x->end)
		return false;
	const char *b = x->p;
	char c = *x->p;
	v->kind = c;
	if (c == '"')
		return fx_str(x, &v->s, &v->n);
	if (c == '{' || c == '[') {
		if (x->depth == FX_DEPTH_MAX)
			return false;
		x->depth++;
		x->p++;
		bool ok = c == '{' ? fx_object(x, NULL, NULL) : fx_array(x);
		x->depth--;
		v->s = b;
		v->n = (size_t)(x->p - b);
		return ok;
	}
	if (c == 't')
		return fx_lit(x, "true");
	if (c == 'f')
		return fx_lit(x, "false");
	if (c == 'n')
		return fx_lit(x, "null");
	/* An integer: -?(0|[1-9][0-9]*), at most 18 digits, not followed by a fraction. */
	bool neg = c == '-';
	if (neg)
		x->p++;
	const char *d = x->p;
	long long i = 0;
	while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
		if (x->p - d == 18)
			return false; /* a 19th digit: the tree reader's range checks */
		i = i * 10 + (*x->p - '0');
		x->p++;
	}
	if (x->p == d || (*d == '0' && x->p - d > 1))
		return false;
	if (x->p < x->end && (*x->p == '.' || *x->p == 'e' || *x->p == 'E'))
		return false;
	v->kind = '0';
	v->i = neg ? -i : i;
	return true;
}

static bool
fx_is(const char *k, size_t kn, const char *want)
{
	return strlen(want) == kn && memcmp(k, want, kn) == 0;
}

/* ---- the envelope ---- */

struct fx_env {
	struct fx_val op, source, before, after;
	bool has_op, has_source, has_before, has_after;
	/* from source */
	const char *ks, *tb;
	size_t ksn, tbn;
	bool has_ks, has_tb;
	struct fx_val us, ms;
	bool has_us, has_ms;
};

static bool
fx_root_member(void *arg, const char *k, size_t kn, const struct fx_val *v)
{
	struct fx_env *e = arg;
	if (fx_is(k, kn, "op")) {
		e->op = *v;
		e->has_op = true;
	} else if (fx_is(k, kn, "source")) {
		e->source = *v;
		e->has_source = true;
	} else if (fx_is(k, kn, "before")) {
		e->before = *v;
		e->has_before = true;
	} else if (fx_is(k, kn, "after")) {
		e->after = *v;
		e->has_after = true;
	}
	return true;
}

static bool
fx_source_member(void *arg, const char *k, size_t kn, const struct fx_val *v)
{
	struct fx_env *e = arg;
	if (fx_is(k, kn, "keyspace")) {
		e->has_ks = v->kind == '"';
		e->ks = v->s;
		e->ksn = v->n;
	} else if (fx_is(k, kn, "table")) {
		e->has_tb = v->kind == '"';
		e->tb = v->s;
		e->tbn = v->n;
	} else if (fx_is(k, kn, "ts_us")) {
		e->us = *v;
		e->has_us = true;
	} else if (fx_is(k, kn, "ts_ms")) {
		e->ms = *v;
		e->has_ms = true;
	}
	return true;
}

static bool
fx_name_match(const char *want, bool has, const char *got, size_t n)
{
	return want == NULL || (has && strlen(want) == n && memcmp(want, got, n) == 0);
}

/* The cells of "after". */
struct fx_cells {
	const struct cdc_table *t;
	struct cdc_row *row;
};

/* fx_json makes the jansson value cdc_value_to_pg expects from v (not null). */
static json_t *
fx_json(const struct fx_val *v)
{
	switch (v->kind) {
	case '"':
		return json_stringn_nocheck(v->s, v->n);
	case '0':
		return json_integer(v->i);
	case 't':
		return json_true();
	case 'f':
		return json_false();
	case '{':
	case '[':
		return json_loadb(v->s, v->n, JSON_REJECT_DUPLICATES, NULL);
	default:
		return NULL;
	}
}

struct fx_cell {
	struct fx_val value, set, del;
	bool has_value, has_set, has_del;
};

static bool
fx_cell_member(void *arg, const char *k, size_t kn, const struct fx_val *v)
{
	struct fx_cell *c = arg;
	if (fx_is(k, kn, "value")) {
		c->value = *v;
		c->has_value = true;
	} else if (fx_is(k, kn, "set")) {
		c->set = *v;
		c->has_set = true;
	} else if (fx_is(k, kn, "deletion_ts")) {
		c->del = *v;
		c->has_del = true;
	}
	return true;
}

static bool
fx_after_member(void *arg, const char *k, size_t kn, const struct fx_val *v)
{
	struct fx_cells *cs = arg;
	const struct cdc_table *t = cs->t;
	struct cdc_row *row = cs->row;
	struct fx_cell cell = { 0 };
	char name[CDC_NAME_MAX];
	char why[200];

	if (v->kind != '{' || kn >= sizeof(name))
		return false;
	struct fx sub = { v->s + 1, v->s + v->n, 1 };
	if (!fx_object(&sub, fx_cell_member, &cell) || !cell.has_value)
		return false;
	if (cell.has_set && cell.set.kind != 't' && cell.set.kind != 'f')
		return false;
	if (cell.has_del && cell.del.kind != 'n' && cell.del.kind != '0')
		return false;
	if (cell.has_set && cell.set.kind == 'f')
		return true; /* not part of the change */
	memcpy(name, k, kn);
	name[kn] = '\0';
	int c = cdc_table_col(t, name);
	if (c < 0)
		return row->op == CDC_OP_DELETE; /* a new column: the tree reader's case */
	if (row->op == CDC_OP_DELETE && !t->cols[c].key)
		return true;
	if (cell.value.kind == 'n') {
		row->state[c] = CDC_V_NULL;
		return true;
	}
	json_t *jv = fx_json(&cell.value);
	if (jv == NULL)
		return false;
	struct sb_buf b = SB_BUF_INIT;
	int rv = cdc_value_to_pg(t->cols[c].type, jv, &b, why, sizeof(why));
	json_decref(jv);
	if (rv != 0 || (b.data == NULL && sb_buf_puts(&b, "") != 0)) {
		sb_buf_free(&b);
		return false;
	}
	free(row->val[c]); /* none: a key is never twice in "after" */
	row->val[c] = sb_buf_steal(&b);
	row->state[c] = CDC_V_SET;
	return true;
}

bool
cdc_event_fast(const struct cdc_table *t, const char *value, size_t len, struct cdc_row *row)
{
	struct fx x = { value, value + len, 1 };
	struct fx_env e = { 0 };

	memset(row, 0, sizeof(*row));
	if (t->format != CDC_FMT_CASSANDRA || value == NULL || len == 0)
		return false;
	fx_ws(&x);
	if (x.p >= x.end || *x.p != '{')
		return false;
	x.p++;
	if (!fx_object(&x, fx_root_member, &e))
		return false;
	fx_ws(&x);
	if (x.p != x.end)
		return false;
	/* op, source, version */
	if (!e.has_op || e.op.kind != '"' || e.op.n != 1 || strchr("curd", e.op.s[0]) == NULL)
		return false;
	row->op_char = e.op.s[0];
	row->op = row->op_char == 'd' ? CDC_OP_DELETE : CDC_OP_UPSERT;
	if (!e.has_source || e.source.kind != '{')
		return false;
	struct fx src = { e.source.s + 1, e.source.s + e.source.n, 1 };
	if (!fx_object(&src, fx_source_member, &e))
		return false;
	if (!fx_name_match(t->keyspace, e.has_ks, e.ks, e.ksn) ||
	    !fx_name_match(t->source_table, e.has_tb, e.tb, e.tbn))
		return false;
	if (e.has_us && e.us.kind == '0' && e.us.i > 0)
		row->version_us = e.us.i;
	else if (e.has_ms && e.ms.kind == '0' && e.ms.i > 0 && e.ms.i < INT64_MAX / 1000)
		row->version_us = e.ms.i * 1000;
	else
		return false;
	/* The cells: in "after", no "before" state. */
	if ((e.has_before && e.before.kind != 'n') || !e.has_after || e.after.kind != '{')
		return false;
	row->ncols = t->ncols;
	row->state = calloc(t->ncols, sizeof(*row->state));
	row->val = calloc(t->ncols, sizeof(*row->val));
	if (row->state == NULL || row->val == NULL)
		return false;
	struct fx_cells cs = { t, row };
	struct fx after = { e.after.s + 1, e.after.s + e.after.n, 1 };
	if (!fx_object(&after, fx_after_member, &cs))
		return false;
	size_t kl = 0;
	for (size_t c = 0; c < t->ncols; c++) {
		if (!t->cols[c].key)
			continue;
		if (row->state[c] != CDC_V_SET)
			return false;
		int w = snprintf(row->keytext + kl, sizeof(row->keytext) - kl, "%s%s",
		                 kl > 0 ? "\x1f" : "", row->val[c]);
		if (w < 0 || (size_t)w >= sizeof(row->keytext) - kl)
			return false;
		kl += (size_t)w;
	}
	return true;
}
