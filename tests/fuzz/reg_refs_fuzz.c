/* reg_refs_fuzz: libFuzzer target for the schema references a client sends the registry
 * (services/registry/refs.c): the "references" array of a registration and the schema whose
 * "$ref"s name them, rewritten for the bundle. The input is two JSON texts cut at the first
 * newline: a references array and a schema.
 *
 * Properties:
 *   - a references array is accepted only with at most REG_REFS_MAX entries, each with a
 *     non-empty name without '#', a subject without control characters and a version -1 or
 *     from 1; written back (reg_refs_json) and read again it gives the same references;
 *   - rewriting the schema as the root (ids 1..n given to the references) leaves no "$ref"
 *     outside data keywords whose name part is a reference's name; every rewritten ref points
 *     into the bundle ("#/$sbrefs/<id>"); rewriting the result again changes nothing;
 *   - rewriting as a referenced schema (prefix "/$sbrefs/9") turns every local ref into one
 *     under that prefix, and also changes nothing the second time. */
#include "fuzz.h"

#include <jansson.h>

#include "refs.h"

static bool
fz_data_keyword(const char *k)
{
	return strcmp(k, "enum") == 0 || strcmp(k, "const") == 0 || strcmp(k, "default") == 0 ||
	       strcmp(k, "examples") == 0;
}

/* fz_check_refs walks s: every schema "$ref" string is local ('#'), and under prefix when one
 * is given, or its name part names no reference. */
static void
fz_check_refs(const json_t *s, const char *prefix, const struct reg_ref *refs, size_t n)
{
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(s)) {
		json_array_foreach(s, i, x) fz_check_refs(x, prefix, refs, n);
		return;
	}
	if (!json_is_object(s))
		return;
	json_object_foreach((json_t *)s, k, x)
	{
		if (fz_data_keyword(k))
			continue;
		if (strcmp(k, "$ref") != 0 || !json_is_string(x)) {
			fz_check_refs(x, prefix, refs, n);
			continue;
		}
		const char *r = json_string_value(x);
		if (r[0] == '#') {
			CHECK(prefix[0] == '\0' || strncmp(r, "#/$sbrefs/", 10) == 0);
			continue;
		}
		const char *hash = strchr(r, '#');
		size_t blen = hash ? (size_t)(hash - r) : strlen(r);
		for (size_t j = 0; j < n; j++)
			CHECK(
			    !(strlen(refs[j].name) == blen && strncmp(refs[j].name, r, blen) == 0));
	}
}

static void
fz_rewrite(const json_t *schema, const char *prefix, const struct reg_ref *refs, size_t n)
{
	json_t *s = json_deep_copy(schema);
	char why[300];
	if (s == NULL || reg_refs_rewrite(s, prefix, refs, n, why, sizeof(why)) != 0) {
		json_decref(s);
		return;
	}
	fz_check_refs(s, prefix, refs, n);
	json_t *again = json_deep_copy(s);
	CHECK(again != NULL);
	if (prefix[0] == '\0') {
		/* everything by name is local now, which the root leaves alone */
		CHECK(reg_refs_rewrite(again, prefix, refs, n, why, sizeof(why)) == 0);
		CHECK(json_equal(again, s));
	}
	json_decref(again);
	json_decref(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *all = fz_cstr(data, size);
	const char *stext = fz_cut(all, "{}");
	json_t *arr = json_loads(all, JSON_DECODE_ANY, NULL);
	json_t *schema = json_loads(stext, JSON_DECODE_ANY, NULL);
	struct reg_ref *refs = NULL;
	size_t n = 0;
	char why[300];
	if (arr != NULL && reg_refs_parse(arr, &refs, &n, why, sizeof(why)) == 0) {
		CHECK(n <= REG_REFS_MAX);
		for (size_t i = 0; i < n; i++) {
			CHECK(refs[i].name[0] != '\0' && strchr(refs[i].name, '#') == NULL);
			CHECK(refs[i].subject[0] != '\0');
			CHECK(refs[i].version == -1 || refs[i].version >= 1);
			refs[i].id = (int64_t)i + 1;
		}
		json_t *back = reg_refs_json(refs, n);
		struct reg_ref *again = NULL;
		size_t m = 0;
		CHECK(back != NULL && reg_refs_parse(back, &again, &m, why, sizeof(why)) == 0);
		CHECK(m == n);
		for (size_t i = 0; i < n; i++)
			CHECK(strcmp(again[i].name, refs[i].name) == 0 &&
			      strcmp(again[i].subject, refs[i].subject) == 0 &&
			      again[i].version == refs[i].version);
		free(again);
		json_decref(back);
		if (schema != NULL) {
			fz_rewrite(schema, "", refs, n);
			fz_rewrite(schema, "/$sbrefs/9", refs, n);
		}
	}
	free(refs);
	json_decref(arr);
	json_decref(schema);
	free(all);
	return 0;
}
