/* refs.c: Confluent schema references without I/O (refs.h). */
#include "refs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
reg_refs_parse(const json_t *arr, struct reg_ref **out, size_t *n, char *why, size_t wn)
{
	*out = NULL;
	*n = 0;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		snprintf(why, wn, "references must be an array of {name, subject, version}");
		return -1;
	}
	size_t k = json_array_size(arr);
	if (k > REG_REFS_MAX) {
		snprintf(why, wn, "at most %d references", REG_REFS_MAX);
		return -1;
	}
	if (k == 0)
		return 0;
	struct reg_ref *r = calloc(k, sizeof(*r));
	if (r == NULL) {
		snprintf(why, wn, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < k; i++) {
		const json_t *x = json_array_get(arr, i);
		const char *name = json_string_value(json_object_get(x, "name"));
		const char *subject = json_string_value(json_object_get(x, "subject"));
		const json_t *ver = json_object_get(x, "version");
		json_int_t vn = json_integer_value(ver);
		bool ok = name != NULL && name[0] != '\0' && strlen(name) <= REG_REF_NAME_MAX &&
		          strchr(name, '#') == NULL && subject != NULL && subject[0] != '\0' &&
		          strlen(subject) <= REG_REF_NAME_MAX && json_is_integer(ver) &&
		          (vn == -1 || (vn >= 1 && vn <= 2147483647));
		for (const char *c = subject; ok && *c; c++)
			ok = (unsigned char)*c >= 0x20 && *c != 0x7f;
		if (!ok) {
			free(r);
			snprintf(
			    why, wn,
			    "reference %zu: needs a name (without '#'), a subject and a version "
			    "(1.., or -1 for the latest)",
			    i);
			return -1;
		}
		snprintf(r[i].name, sizeof(r[i].name), "%s", name);
		snprintf(r[i].subject, sizeof(r[i].subject), "%s", subject);
		r[i].version = (int)vn;
	}
	*out = r;
	*n = k;
	return 0;
}

json_t *
reg_refs_json(const struct reg_ref *refs, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		json_array_append_new(arr,
		                      json_pack("{s:s,s:s,s:i}", "name", refs[i].name, "subject",
		                                refs[i].subject, "version", refs[i].version));
	return arr;
}

/* keywords whose values are data, not schemas: a "$ref" key in them is not a reference */
static bool
reg_data_keyword(const char *k)
{
	return strcmp(k, "enum") == 0 || strcmp(k, "const") == 0 || strcmp(k, "default") == 0 ||
	       strcmp(k, "examples") == 0;
}

/* reg_ref_target computes the new value of ref r into to (n bytes): 1 rewritten, 0 left as
 * it is, -1 refused (why). */
static int
reg_ref_target(const char *r, const char *prefix, const struct reg_ref *refs, size_t nrefs,
               char *to, size_t n, char *why, size_t wn)
{
	const char *hash = strchr(r, '#');
	size_t blen = hash ? (size_t)(hash - r) : strlen(r);
	const char *frag = hash ? hash + 1 : "";
	int len;
	if (blen == 0) {
		if (prefix[0] == '\0')
			return 0; /* the root's own local ref */
		if (frag[0] != '\0' && frag[0] != '/') {
			snprintf(why, wn,
			         "$ref \"%.200s\": only JSON pointer fragments are supported", r);
			return -1;
		}
		len = snprintf(to, n, "#%s%s", prefix, frag);
	} else {
		const struct reg_ref *ref = NULL;
		for (size_t j = 0; j < nrefs && ref == NULL; j++)
			if (strlen(refs[j].name) == blen && strncmp(refs[j].name, r, blen) == 0)
				ref = &refs[j];
		if (ref == NULL)
			return 0; /* not a reference: the compile refuses it as remote */
		if (frag[0] != '\0' && frag[0] != '/') {
			snprintf(why, wn,
			         "$ref \"%.200s\": only JSON pointer fragments are supported", r);
			return -1;
		}
		len = snprintf(to, n, "#/" REG_BUNDLE_KEY "/%lld%s", (long long)ref->id, frag);
	}
	if (len < 0 || (size_t)len >= n) {
		snprintf(why, wn, "$ref \"%.200s\" is too long", r);
		return -1;
	}
	return 1;
}

int
reg_refs_rewrite(json_t *s, const char *prefix, const struct reg_ref *refs, size_t n, char *why,
                 size_t wn)
{
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(s)) {
		json_array_foreach(s, i, x)
		{
			if (reg_refs_rewrite(x, prefix, refs, n, why, wn) != 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_object(s))
		return 0;
	json_object_foreach(s, k, x)
	{
		if (reg_data_keyword(k))
			continue;
		if (strcmp(k, "$ref") != 0 || !json_is_string(x)) {
			if (reg_refs_rewrite(x, prefix, refs, n, why, wn) != 0)
				return -1;
			continue;
		}
		char to[1024];
		int rc =
		    reg_ref_target(json_string_value(x), prefix, refs, n, to, sizeof(to), why, wn);
		if (rc < 0)
			return -1;
		if (rc > 0 && json_string_set(x, to) != 0) {
			snprintf(why, wn, "out of memory");
			return -1;
		}
	}
	return 0;
}
