/* compat.c: differences between two JSON Schemas and their compatibility (see compat.h). */
#include "compat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

#define REG_COMPAT_MAX_DEPTH 64
/* Comparison steps one check may take: sub-schema matching (anyOf x anyOf, nested) grows as a
 * product, so a hostile schema could make it run for ever; past this, the check stops with an
 * incompatible COMPARISON_TOO_COMPLEX difference. */
#define REG_COMPAT_BUDGET 200000

static const char *const reg_level_names[] = {
	[REG_COMPAT_NONE] = "NONE",
	[REG_COMPAT_BACKWARD] = "BACKWARD",
	[REG_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
	[REG_COMPAT_FORWARD] = "FORWARD",
	[REG_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
	[REG_COMPAT_FULL] = "FULL",
	[REG_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
};

int
reg_compat_level_parse(const char *s, enum reg_compat_level *out)
{
	for (size_t i = 0; s != NULL && i < sizeof(reg_level_names) / sizeof(reg_level_names[0]);
	     i++) {
		if (strcmp(s, reg_level_names[i]) == 0) {
			*out = (enum reg_compat_level)i;
			return 0;
		}
	}
	return SB_EINVAL;
}

const char *
reg_compat_level_name(enum reg_compat_level l)
{
	return (unsigned)l < sizeof(reg_level_names) / sizeof(reg_level_names[0])
	           ? reg_level_names[l]
	           : "NONE";
}

/* The walk over a pair of schemas: their roots (for $ref) and the result. */
struct reg_walk {
	const json_t *oroot, *uroot;
	struct reg_diffs *out;
	int err;
	/* $ref pairs being compared (recursive schemas end here) */
	const json_t *seen[REG_COMPAT_MAX_DEPTH][2];
	size_t nseen;
	const json_t *empty; /* {}: what the schema true means */
	long *budget;        /* steps left, shared with the sub-walks */
};

static void reg_cmp(struct reg_walk *w, const json_t *o, const json_t *u, const char *path,
                    int depth);

static void
reg_add(struct reg_walk *w, const char *type, bool compatible, const char *path)
{
	struct reg_diffs *d = w->out;
	if (w->err != 0)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct reg_diff *v = realloc(d->v, cap * sizeof(*v));
		if (v == NULL) {
			w->err = SB_ENOMEM;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	struct reg_diff *x = &d->v[d->n++];
	x->type = type;
	x->compatible = compatible;
	snprintf(x->path, sizeof(x->path), "%s", path[0] ? path : "#");
}

/* reg_deref follows local $refs ("#/a/b", RFC 6901 with ~0 ~1) within root, at most a few
 * hops; a $ref that does not resolve leaves the schema as it is. */
static const json_t *
reg_deref(const json_t *root, const json_t *s)
{
	for (int hops = 0; hops < 8 && json_is_object(s); hops++) {
		const char *ref = json_string_value(json_object_get(s, "$ref"));
		if (ref == NULL || ref[0] != '#')
			return s;
		const json_t *cur = root;
		const char *p = ref + 1;
		while (*p == '/' && cur != NULL) {
			p++;
			char tok[256];
			size_t k = 0;
			while (*p != '\0' && *p != '/' && k + 1 < sizeof(tok)) {
				if (p[0] == '~' && p[1] == '0') {
					tok[k++] = '~';
					p += 2;
				} else if (p[0] == '~' && p[1] == '1') {
					tok[k++] = '/';
					p += 2;
				} else {
					tok[k++] = *p++;
				}
			}
			tok[k] = '\0';
			if (json_is_array(cur))
				cur = json_array_get(cur, (size_t)strtoul(tok, NULL, 10));
			else
				cur = json_object_get(cur, tok);
		}
		if (cur == NULL || *p != '\0')
			return s;
		s = cur;
	}
	return s;
}

/* Types as a bit set; "integer" is also counted as being within "number". */
enum {
	T_NULL = 1,
	T_BOOL = 2,
	T_OBJECT = 4,
	T_ARRAY = 8,
	T_NUMBER = 16,
	T_INTEGER = 32,
	T_STRING = 64,
	T_ALL = 127,
};

static unsigned
reg_type_bit(const char *t)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "null", T_NULL },     { "boolean", T_BOOL },  { "object", T_OBJECT },
		{ "array", T_ARRAY },   { "number", T_NUMBER }, { "integer", T_INTEGER },
		{ "string", T_STRING },
	};
	for (size_t i = 0; t != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i].name) == 0)
			return names[i].bit;
	return 0;
}

static unsigned
reg_types(const json_t *s)
{
	const json_t *t = json_object_get(s, "type");
	if (json_is_string(t))
		return reg_type_bit(json_string_value(t));
	if (json_is_array(t)) {
		unsigned m = 0;
		size_t i;
		const json_t *v;
		json_array_foreach(t, i, v) m |= reg_type_bit(json_string_value(v));
		return m;
	}
	return T_ALL;
}

/* What a type set accepts: number accepts integers too. */
static unsigned
reg_accepts(unsigned m)
{
	return (m & T_NUMBER) ? (m | T_INTEGER) : m;
}

static void
reg_cmp_type(struct reg_walk *w, unsigned o, unsigned u, const char *path)
{
	unsigned oa = reg_accepts(o), ua = reg_accepts(u);
	if (oa == ua)
		return;
	if ((oa & ~ua) == 0)
		reg_add(w, "TYPE_EXTENDED", true, path);
	else if ((ua & ~oa) == 0)
		reg_add(w, "TYPE_NARROWED", false, path);
	else
		reg_add(w, "TYPE_CHANGED", false, path);
}

/* A numeric limit: upper bounds may grow or go, lower bounds may shrink or go. */
struct reg_limit {
	const char *key;
	bool upper;
	const char *added, *removed, *increased, *decreased;
};

static const struct reg_limit reg_limits[] = {
	{ "maxLength", true, "MAX_LENGTH_ADDED", "MAX_LENGTH_REMOVED", "MAX_LENGTH_INCREASED",
	  "MAX_LENGTH_DECREASED" },
	{ "minLength", false, "MIN_LENGTH_ADDED", "MIN_LENGTH_REMOVED", "MIN_LENGTH_INCREASED",
	  "MIN_LENGTH_DECREASED" },
	{ "maximum", true, "MAXIMUM_ADDED", "MAXIMUM_REMOVED", "MAXIMUM_INCREASED",
	  "MAXIMUM_DECREASED" },
	{ "minimum", false, "MINIMUM_ADDED", "MINIMUM_REMOVED", "MINIMUM_INCREASED",
	  "MINIMUM_DECREASED" },
	{ "exclusiveMaximum", true, "EXCLUSIVE_MAXIMUM_ADDED", "EXCLUSIVE_MAXIMUM_REMOVED",
	  "EXCLUSIVE_MAXIMUM_INCREASED", "EXCLUSIVE_MAXIMUM_DECREASED" },
	{ "exclusiveMinimum", false, "EXCLUSIVE_MINIMUM_ADDED", "EXCLUSIVE_MINIMUM_REMOVED",
	  "EXCLUSIVE_MINIMUM_INCREASED", "EXCLUSIVE_MINIMUM_DECREASED" },
	{ "maxItems", true, "MAX_ITEMS_ADDED", "MAX_ITEMS_REMOVED", "MAX_ITEMS_INCREASED",
	  "MAX_ITEMS_DECREASED" },
	{ "minItems", false, "MIN_ITEMS_ADDED", "MIN_ITEMS_REMOVED", "MIN_ITEMS_INCREASED",
	  "MIN_ITEMS_DECREASED" },
	{ "maxProperties", true, "MAX_PROPERTIES_ADDED", "MAX_PROPERTIES_REMOVED",
	  "MAX_PROPERTIES_INCREASED", "MAX_PROPERTIES_DECREASED" },
	{ "minProperties", false, "MIN_PROPERTIES_ADDED", "MIN_PROPERTIES_REMOVED",
	  "MIN_PROPERTIES_INCREASED", "MIN_PROPERTIES_DECREASED" },
};

/* reg_join writes path + "/" + a, then "/" + b escaped as in a JSON pointer when b is not
 * NULL, to dst (n bytes), cutting what does not fit. */
static void
reg_join(char *dst, size_t n, const char *path, const char *a, const char *b)
{
	size_t k = (size_t)snprintf(dst, n, "%s/%s", path[0] ? path : "#", a);
	if (k >= n || b == NULL)
		return;
	if (k + 1 < n)
		dst[k++] = '/';
	for (const char *p = b; *p != '\0' && k + 2 < n; p++) {
		if (*p == '~' || *p == '/') {
			dst[k++] = '~';
			dst[k++] = *p == '~' ? '0' : '1';
		} else {
			dst[k++] = *p;
		}
	}
	dst[k] = '\0';
}

static void
reg_cmp_limits(struct reg_walk *w, const json_t *o, const json_t *u, const char *path)
{
	for (size_t i = 0; i < sizeof(reg_limits) / sizeof(reg_limits[0]); i++) {
		const struct reg_limit *l = &reg_limits[i];
		const json_t *ov = json_object_get(o, l->key), *uv = json_object_get(u, l->key);
		/* draft 4's boolean exclusiveMaximum/Minimum modify maximum/minimum: compared
		 * as present-or-not only when numbers */
		bool on = json_is_number(ov), un = json_is_number(uv);
		char p[320];
		reg_join(p, sizeof(p), path, l->key, NULL);
		if (!on && !un)
			continue;
		if (!on)
			reg_add(w, l->added, false, p);
		else if (!un)
			reg_add(w, l->removed, true, p);
		else if (json_number_value(uv) > json_number_value(ov))
			reg_add(w, l->increased, l->upper, p);
		else if (json_number_value(uv) < json_number_value(ov))
			reg_add(w, l->decreased, !l->upper, p);
	}
	/* multipleOf: every multiple of the original must be a multiple of the update */
	const json_t *om = json_object_get(o, "multipleOf"), *um = json_object_get(u, "multipleOf");
	char p[320];
	reg_join(p, sizeof(p), path, "multipleOf", NULL);
	if (json_is_number(om) && !json_is_number(um)) {
		reg_add(w, "MULTIPLE_OF_REMOVED", true, p);
	} else if (!json_is_number(om) && json_is_number(um)) {
		reg_add(w, "MULTIPLE_OF_ADDED", false, p);
	} else if (json_is_number(om) && json_is_number(um)) {
		double a = json_number_value(om), b = json_number_value(um);
		if (a != b) {
			double q = a / b;
			if (b != 0 && fabs(q - nearbyint(q)) < 1e-9)
				reg_add(w, "MULTIPLE_OF_REDUCED", true, p);
			else if (a != 0 && fabs(b / a - nearbyint(b / a)) < 1e-9)
				reg_add(w, "MULTIPLE_OF_EXPANDED", false, p);
			else
				reg_add(w, "MULTIPLE_OF_CHANGED", false, p);
		}
	}
	/* pattern */
	const char *op = json_string_value(json_object_get(o, "pattern"));
	const char *up = json_string_value(json_object_get(u, "pattern"));
	reg_join(p, sizeof(p), path, "pattern", NULL);
	if (op != NULL && up == NULL)
		reg_add(w, "PATTERN_REMOVED", true, p);
	else if (op == NULL && up != NULL)
		reg_add(w, "PATTERN_ADDED", false, p);
	else if (op != NULL && strcmp(op, up) != 0)
		reg_add(w, "PATTERN_CHANGED", false, p);
	/* uniqueItems */
	bool ou = json_is_true(json_object_get(o, "uniqueItems"));
	bool uu = json_is_true(json_object_get(u, "uniqueItems"));
	reg_join(p, sizeof(p), path, "uniqueItems", NULL);
	if (ou && !uu)
		reg_add(w, "UNIQUE_ITEMS_REMOVED", true, p);
	else if (!ou && uu)
		reg_add(w, "UNIQUE_ITEMS_ADDED", false, p);
}

static bool
reg_array_has(const json_t *arr, const json_t *v)
{
	size_t i;
	const json_t *x;
	json_array_foreach(arr, i, x) if (json_equal((json_t *)x, (json_t *)v)) return true;
	return false;
}

static bool
reg_subset(const json_t *a, const json_t *b)
{
	size_t i;
	const json_t *x;
	json_array_foreach(a, i, x) if (!reg_array_has(b, x)) return false;
	return true;
}

static void
reg_cmp_enum(struct reg_walk *w, const json_t *o, const json_t *u, const char *path)
{
	const json_t *oe = json_object_get(o, "enum"), *ue = json_object_get(u, "enum");
	char p[320];
	reg_join(p, sizeof(p), path, "enum", NULL);
	if (json_is_array(oe) && !json_is_array(ue)) {
		reg_add(w, "ENUM_ARRAY_EXTENDED", true, p);
	} else if (!json_is_array(oe) && json_is_array(ue)) {
		reg_add(w, "ENUM_ARRAY_NARROWED", false, p);
	} else if (json_is_array(oe)) {
		bool o_in_u = reg_subset(oe, ue), u_in_o = reg_subset(ue, oe);
		if (o_in_u && !u_in_o)
			reg_add(w, "ENUM_ARRAY_EXTENDED", true, p);
		else if (!o_in_u && u_in_o)
			reg_add(w, "ENUM_ARRAY_NARROWED", false, p);
		else if (!o_in_u)
			reg_add(w, "ENUM_ARRAY_CHANGED", false, p);
	}
	const json_t *oc = json_object_get(o, "const"), *uc = json_object_get(u, "const");
	reg_join(p, sizeof(p), path, "const", NULL);
	if (oc != NULL && uc == NULL)
		reg_add(w, "CONST_REMOVED", true, p);
	else if (oc == NULL && uc != NULL)
		reg_add(w, "CONST_ADDED", false, p);
	else if (oc != NULL && !json_equal((json_t *)oc, (json_t *)uc))
		reg_add(w, "CONST_CHANGED", false, p);
}

/* A content model: additionalProperties (or additionalItems) absent or true is open, false
 * closed, a schema partially open. */
enum reg_model { M_OPEN, M_CLOSED, M_PARTIAL };

static enum reg_model
reg_model(const json_t *ap)
{
	if (ap == NULL || json_is_true(ap))
		return M_OPEN;
	if (json_is_false(ap))
		return M_CLOSED;
	return json_is_object(ap) && json_object_size(ap) == 0 ? M_OPEN : M_PARTIAL;
}

static bool
reg_empty_schema(const json_t *s)
{
	return json_is_true(s) || (json_is_object(s) && json_object_size(s) == 0);
}

/* reg_covers tells whether every value valid under a (of the original, or of the update when
 * swap) stays valid under b (of the other): their differences are all compatible. */
static bool
reg_covers_roots(struct reg_walk *w, const json_t *a, const json_t *b, int depth, bool swap)
{
	struct reg_diffs d = { 0 };
	struct reg_walk sub = { .oroot = swap ? w->uroot : w->oroot,
		                .uroot = swap ? w->oroot : w->uroot,
		                .out = &d,
		                .empty = w->empty,
		                .budget = w->budget };
	reg_cmp(&sub, a, b, "", depth + 1);
	bool ok = sub.err == 0 && reg_diffs_compatible(&d);
	if (sub.err != 0)
		w->err = sub.err;
	reg_diffs_free(&d);
	return ok;
}

static bool
reg_covers(struct reg_walk *w, const json_t *a, const json_t *b, int depth)
{
	return reg_covers_roots(w, a, b, depth, false);
}

static bool
reg_required(const json_t *s, const char *name)
{
	size_t i;
	const json_t *v;
	json_array_foreach(json_object_get(s, "required"), i, v)
	{
		const char *n = json_string_value(v);
		if (n != NULL && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static bool
reg_has_default(const json_t *root, const json_t *s)
{
	s = reg_deref(root, s);
	return json_is_object(s) && json_object_get(s, "default") != NULL;
}

static void
reg_cmp_object(struct reg_walk *w, const json_t *o, const json_t *u, const char *path, int depth)
{
	const json_t *op = json_object_get(o, "properties"), *up = json_object_get(u, "properties");
	const json_t *oap = json_object_get(o, "additionalProperties");
	const json_t *uap = json_object_get(u, "additionalProperties");
	enum reg_model om = reg_model(oap), um = reg_model(uap);
	char p[320];
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)up, k, v)
	{
		reg_join(p, sizeof(p), path, "properties", k);
		const json_t *ov = json_object_get(op, k);
		if (ov != NULL) {
			reg_cmp(w, ov, v, p, depth + 1);
			continue;
		}
		if (om == M_CLOSED) {
			if (!reg_required(u, k))
				reg_add(w, "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", true,
				        p);
			else if (reg_has_default(w->uroot, v))
				reg_add(
				    w,
				    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
				    true, p);
			else
				reg_add(w, "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", false,
				        p);
		} else if (om == M_OPEN) {
			if (reg_empty_schema(reg_deref(w->uroot, v)))
				reg_add(w, "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
				        true, p);
			else
				reg_add(w, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", false, p);
		} else if (reg_covers(w, oap, v, depth)) {
			reg_add(w, "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
			        true, p);
		} else {
			reg_add(w, "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
			        false, p);
		}
	}
	json_object_foreach((json_t *)op, k, v)
	{
		if (json_object_get(up, k) != NULL)
			continue;
		reg_join(p, sizeof(p), path, "properties", k);
		if (um == M_OPEN)
			reg_add(w, "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", true, p);
		else if (um == M_CLOSED && json_is_false(v))
			reg_add(w, "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", true,
			        p);
		else if (um == M_CLOSED)
			reg_add(w, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", false, p);
		else if (reg_covers(w, v, uap, depth))
			reg_add(w, "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
			        true, p);
		else
			reg_add(w, "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
			        false, p);
	}
	/* required */
	size_t i;
	json_array_foreach(json_object_get(u, "required"), i, v)
	{
		const char *n = json_string_value(v);
		if (n == NULL || reg_required(o, n))
			continue;
		reg_join(p, sizeof(p), path, "required", n);
		if (reg_has_default(w->uroot, json_object_get(up, n)))
			reg_add(w, "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", true, p);
		else
			reg_add(w, "REQUIRED_ATTRIBUTE_ADDED", false, p);
	}
	json_array_foreach(json_object_get(o, "required"), i, v)
	{
		const char *n = json_string_value(v);
		if (n == NULL || reg_required(u, n))
			continue;
		reg_join(p, sizeof(p), path, "required", n);
		reg_add(w, "REQUIRED_ATTRIBUTE_REMOVED", true, p);
	}
	/* additionalProperties */
	reg_join(p, sizeof(p), path, "additionalProperties", NULL);
	if (om == M_CLOSED && um != M_CLOSED)
		reg_add(w,
		        um == M_OPEN ? "ADDITIONAL_PROPERTIES_ADDED"
		                     : "ADDITIONAL_PROPERTIES_EXTENDED",
		        true, p);
	else if (om != M_CLOSED && um == M_CLOSED)
		reg_add(w, "ADDITIONAL_PROPERTIES_REMOVED", false, p);
	else if (om == M_OPEN && um == M_PARTIAL)
		reg_add(w, "ADDITIONAL_PROPERTIES_NARROWED", false, p);
	else if (om == M_PARTIAL && um == M_OPEN)
		reg_add(w, "ADDITIONAL_PROPERTIES_EXTENDED", true, p);
	else if (om == M_PARTIAL && um == M_PARTIAL)
		reg_cmp(w, oap, uap, p, depth + 1);
}

static void
reg_cmp_array(struct reg_walk *w, const json_t *o, const json_t *u, const char *path, int depth)
{
	const json_t *oi = json_object_get(o, "items"), *ui = json_object_get(u, "items");
	char p[320];
	if (!json_is_array(oi) && !json_is_array(ui)) {
		reg_join(p, sizeof(p), path, "items", NULL);
		reg_cmp(w, oi ? oi : json_true(), ui ? ui : json_true(), p, depth + 1);
		return;
	}
	if (json_is_array(oi) != json_is_array(ui)) {
		reg_join(p, sizeof(p), path, "items", NULL);
		reg_add(w, "ITEMS_CHANGED", false, p);
		return;
	}
	/* tuples: position by position, with additionalItems as the content model */
	const json_t *oai = json_object_get(o, "additionalItems");
	const json_t *uai = json_object_get(u, "additionalItems");
	enum reg_model om = reg_model(oai), um = reg_model(uai);
	size_t on = json_array_size(oi), un = json_array_size(ui);
	for (size_t i = 0; i < (on > un ? on : un); i++) {
		char idx[24];
		snprintf(idx, sizeof(idx), "%zu", i);
		reg_join(p, sizeof(p), path, "items", idx);
		if (i < on && i < un) {
			reg_cmp(w, json_array_get(oi, i), json_array_get(ui, i), p, depth + 1);
		} else if (i < un) {
			if (om == M_CLOSED)
				reg_add(w, "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", true, p);
			else if (om == M_OPEN && reg_empty_schema(json_array_get(ui, i)))
				reg_add(w, "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
				        true, p);
			else if (om == M_OPEN)
				reg_add(w, "ITEM_ADDED_TO_OPEN_CONTENT_MODEL", false, p);
			else if (reg_covers(w, oai, json_array_get(ui, i), depth))
				reg_add(w, "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
				        true, p);
			else
				reg_add(w, "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
				        false, p);
		} else {
			if (um == M_OPEN)
				reg_add(w, "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", true, p);
			else if (um == M_CLOSED && json_is_false(json_array_get(oi, i)))
				reg_add(w, "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
				        true, p);
			else if (um == M_CLOSED)
				reg_add(w, "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", false, p);
			else if (reg_covers(w, json_array_get(oi, i), uai, depth))
				reg_add(w,
				        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
				        true, p);
			else
				reg_add(w,
				        "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
				        false, p);
		}
	}
	reg_join(p, sizeof(p), path, "additionalItems", NULL);
	if (om == M_CLOSED && um != M_CLOSED)
		reg_add(w, um == M_OPEN ? "ADDITIONAL_ITEMS_ADDED" : "ADDITIONAL_ITEMS_EXTENDED",
		        true, p);
	else if (om != M_CLOSED && um == M_CLOSED)
		reg_add(w, "ADDITIONAL_ITEMS_REMOVED", false, p);
	else if (om == M_OPEN && um == M_PARTIAL)
		reg_add(w, "ADDITIONAL_ITEMS_NARROWED", false, p);
	else if (om == M_PARTIAL && um == M_OPEN)
		reg_add(w, "ADDITIONAL_ITEMS_EXTENDED", true, p);
	else if (om == M_PARTIAL && um == M_PARTIAL)
		reg_cmp(w, oai, uai, p, depth + 1);
}

/* The combinators: anyOf/oneOf are sums (more branches read more), allOf a product (more
 * branches read less). Branches are matched: each side's branch must be covered by one of the
 * other side's. */
static const char *const reg_combinators[] = { "allOf", "anyOf", "oneOf" };

static void
reg_cmp_combined(struct reg_walk *w, const json_t *o, const json_t *u, const char *path, int depth)
{
	const char *ok = NULL, *uk = NULL;
	for (size_t i = 0; i < 3; i++) {
		if (json_is_array(json_object_get(o, reg_combinators[i])))
			ok = reg_combinators[i];
		if (json_is_array(json_object_get(u, reg_combinators[i])))
			uk = reg_combinators[i];
	}
	if (ok == NULL && uk == NULL)
		return;
	char p[320];
	reg_join(p, sizeof(p), path, uk ? uk : ok, NULL);
	if (ok == NULL || uk == NULL || strcmp(ok, uk) != 0) {
		reg_add(w, "COMBINED_TYPE_CHANGED", false, p);
		return;
	}
	const json_t *oa = json_object_get(o, ok), *ua = json_object_get(u, uk);
	size_t on = json_array_size(oa), un = json_array_size(ua);
	bool sum = strcmp(ok, "allOf") != 0;
	/* sum: every original branch covered by some update branch;
	 * product: every update branch covering some original branch */
	const json_t *outer = sum ? oa : ua;
	bool all = true;
	size_t i;
	const json_t *b;
	json_array_foreach(outer, i, b)
	{
		bool found = false;
		size_t j;
		const json_t *c;
		json_array_foreach(sum ? ua : oa, j, c)
		{
			if (sum ? reg_covers(w, b, c, depth) : reg_covers(w, c, b, depth)) {
				found = true;
				break;
			}
		}
		all = all && found;
	}
	if (!all)
		reg_add(w, "COMBINED_TYPE_SUBSCHEMAS_CHANGED", false, p);
	else if (sum && un > on)
		reg_add(w, "SUM_TYPE_EXTENDED", true, p);
	else if (sum && un < on)
		reg_add(w, "SUM_TYPE_NARROWED", true, p); /* what remains still reads everything */
	else if (!sum && un < on)
		reg_add(w, "PRODUCT_TYPE_NARROWED", true, p);
	else if (!sum && un > on)
		reg_add(w, "PRODUCT_TYPE_EXTENDED", true, p);
}

static void
reg_cmp(struct reg_walk *w, const json_t *o, const json_t *u, const char *path, int depth)
{
	if (w->err != 0 || depth > REG_COMPAT_MAX_DEPTH || *w->budget <= 0)
		return;
	--*w->budget;
	const json_t *od = reg_deref(w->oroot, o), *ud = reg_deref(w->uroot, u);
	if (od != o || ud != u) {
		/* a recursive schema: a pair of $ref targets already being compared is not
		 * compared again */
		for (size_t i = 0; i < w->nseen; i++)
			if (w->seen[i][0] == od && w->seen[i][1] == ud)
				return;
		if (w->nseen == REG_COMPAT_MAX_DEPTH)
			return;
		w->seen[w->nseen][0] = od;
		w->seen[w->nseen][1] = ud;
		w->nseen++;
		reg_cmp(w, od, ud, path, depth + 1);
		w->nseen--;
		return;
	}
	/* boolean schemas: false reads nothing, true everything */
	if (json_is_false(o) || reg_empty_schema(u)) {
		if (!json_equal((json_t *)o, (json_t *)u) &&
		    !(reg_empty_schema(o) && reg_empty_schema(u)))
			reg_add(w, "SCHEMA_EXTENDED", true, path);
		return;
	}
	if (json_is_false(u)) {
		reg_add(w, "SCHEMA_REMOVED", false, path);
		return;
	}
	if (json_is_true(o))
		o = w->empty;
	if (!json_is_object(o) || !json_is_object(u))
		return;
	unsigned ot = reg_types(o), ut = reg_types(u);
	char tp[320];
	reg_join(tp, sizeof(tp), path, "type", NULL);
	reg_cmp_type(w, ot, ut, tp);
	reg_cmp_limits(w, o, u, path);
	reg_cmp_enum(w, o, u, path);
	unsigned both = reg_accepts(ot) & reg_accepts(ut);
	if (both & T_OBJECT)
		reg_cmp_object(w, o, u, path, depth);
	if (both & T_ARRAY)
		reg_cmp_array(w, o, u, path, depth);
	reg_cmp_combined(w, o, u, path, depth);
	const json_t *on = json_object_get(o, "not"), *un = json_object_get(u, "not");
	if ((on != NULL || un != NULL) &&
	    (on == NULL || un == NULL || !json_equal((json_t *)on, (json_t *)un))) {
		char p[320];
		reg_join(p, sizeof(p), path, "not", NULL);
		/* not S reads more when S reads less: compared the other way round */
		if (on != NULL && un != NULL && reg_covers_roots(w, un, on, depth, true))
			reg_add(w, "NOT_TYPE_EXTENDED", true, p);
		else if (on != NULL && un == NULL)
			reg_add(w, "NOT_TYPE_REMOVED", true, p);
		else
			reg_add(w, "NOT_TYPE_NARROWED", false, p);
	}
}

int
reg_compat_diff(const json_t *original, const json_t *update, struct reg_diffs *out)
{
	json_t *empty = json_object();
	if (empty == NULL)
		return SB_ENOMEM;
	long budget = REG_COMPAT_BUDGET;
	struct reg_walk w = {
		.oroot = original, .uroot = update, .out = out, .empty = empty, .budget = &budget
	};
	reg_cmp(&w, original, update, "", 0);
	if (budget <= 0)
		reg_add(&w, "COMPARISON_TOO_COMPLEX", false, "");
	json_decref(empty);
	return w.err;
}

bool
reg_diffs_compatible(const struct reg_diffs *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (!d->v[i].compatible)
			return false;
	return true;
}

/* reg_compat_pair adds the incompatible differences of one direction to out. */
static int
reg_compat_pair(const json_t *writer, const json_t *reader, bool *ok, struct reg_diffs *out)
{
	struct reg_diffs d = { 0 };
	int rc = reg_compat_diff(writer, reader, &d);
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		if (d.v[i].compatible)
			continue;
		*ok = false;
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 8;
			struct reg_diff *v = realloc(out->v, cap * sizeof(*v));
			if (v == NULL) {
				rc = SB_ENOMEM;
				break;
			}
			out->v = v;
			out->cap = cap;
		}
		out->v[out->n++] = d.v[i];
	}
	reg_diffs_free(&d);
	return rc;
}

int
reg_compat_check(enum reg_compat_level level, const json_t *schema, const json_t *const *prev,
                 size_t n, bool *ok, struct reg_diffs *out)
{
	*ok = true;
	if (level == REG_COMPAT_NONE || n == 0)
		return 0;
	bool transitive = level == REG_COMPAT_BACKWARD_TRANSITIVE ||
	                  level == REG_COMPAT_FORWARD_TRANSITIVE ||
	                  level == REG_COMPAT_FULL_TRANSITIVE;
	bool backward = level != REG_COMPAT_FORWARD && level != REG_COMPAT_FORWARD_TRANSITIVE;
	bool forward = level != REG_COMPAT_BACKWARD && level != REG_COMPAT_BACKWARD_TRANSITIVE;
	for (size_t i = transitive ? 0 : n - 1; i < n; i++) {
		int rc = 0;
		if (backward)
			rc = reg_compat_pair(prev[i], schema, ok, out);
		if (rc == 0 && forward)
			rc = reg_compat_pair(schema, prev[i], ok, out);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void
reg_diffs_free(struct reg_diffs *d)
{
	free(d->v);
	*d = (struct reg_diffs){ 0 };
}
