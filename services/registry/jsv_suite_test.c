/* jsv_suite_test.c: runs the official JSON Schema Test Suite (Debian's json-schema-test-suite,
 * in SB_JSON_SCHEMA_SUITE) through the registry's validator for the drafts it claims (4 and 7),
 * required and optional tests, prints the pass counts per draft and directory, and fails when
 * the set of failing cases differs from the known failures listed in
 * services/registry/jsv_known_failures.txt ("<draft>/<file>: <group> / <case>" lines): a new
 * failure fails the test, and so does a listed failure that now passes (the list stays true). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>

#include "jsv.h"

struct suite {
	const char *root;
	char **known;
	size_t nknown;
	char **failed;
	size_t nfailed;
};

static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b != NULL)
		b[n] = '\0';
	fclose(f);
	return b;
}

/* The suite's remote documents are served at http://localhost:1234/ by its own harness. */
static char *
suite_fetch(void *arg, const char *uri)
{
	const struct suite *s = arg;
	const char *prefix = "http://localhost:1234/";
	if (strncmp(uri, prefix, strlen(prefix)) != 0)
		return NULL;
	char path[1024];
	snprintf(path, sizeof(path), "%s/remotes/%s", s->root, uri + strlen(prefix));
	return read_text(path);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_file(struct suite *s, const char *draft, const char *sub, const char *name, int *pass,
         int *total)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/%s/%s%s", s->root, draft, sub, name);
	json_error_t je;
	json_t *groups = json_load_file(path, 0, &je);
	/* jansson holds no integer beyond 64 bits (optional/bignum.json): such files are read
	 * with integers as doubles, and the cases that depend on the exact big integer are
	 * listed in the known failures as the harness's, not the validator's */
	if (groups == NULL)
		groups = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
	assert_non_null(groups);
	size_t gi;
	json_t *g;
	json_array_foreach(groups, gi, g)
	{
		char *schema = json_dumps(json_object_get(g, "schema"), JSON_ENCODE_ANY);
		struct reg_jsv *v = NULL;
		char err[256];
		int crc =
		    reg_jsv_compile(schema, strlen(schema),
		                    strcmp(draft, "draft4") == 0 ? REG_JSV_DRAFT4 : REG_JSV_DRAFT7,
		                    suite_fetch, s, &v, err, sizeof(err));
		size_t ti;
		json_t *t;
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			bool want = json_is_true(json_object_get(t, "valid"));
			bool got = !want;
			if (crc == 0) {
				char *doc = json_dumps(json_object_get(t, "data"), JSON_ENCODE_ANY);
				size_t n = 0;
				struct reg_jsv_error e[4];
				int rc = reg_jsv_validate(v, doc, strlen(doc), e, 4, &n);
				got = rc == 0;
				/* a violation always names where: a pointer is "" or starts with
				 * '/' */
				for (size_t k = 0; rc == 1 && k < n && k < 4; k++)
					assert_true(e[k].pointer[0] == '\0' ||
					            e[k].pointer[0] == '/');
				free(doc);
			}
			(*total)++;
			if (got == want) {
				(*pass)++;
				continue;
			}
			char line[1024];
			snprintf(line, sizeof(line), "%s/%s%s: %s / %s", draft, sub, name,
			         json_string_value(json_object_get(g, "description")),
			         json_string_value(json_object_get(t, "description")));
			s->failed = realloc(s->failed, (s->nfailed + 1) * sizeof(char *));
			s->failed[s->nfailed++] = strdup(line);
		}
		reg_jsv_free(v);
		free(schema);
	}
	json_decref(groups);
}

static void
run_dir(struct suite *s, const char *draft, const char *sub)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/%s/%s", s->root, draft, sub);
	struct dirent **list = NULL;
	int n = scandir(path, &list, NULL, alphasort);
	assert_true(n > 0);
	int pass = 0, total = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = list[i]->d_name;
		size_t l = strlen(nm);
		if (l > 5 && strcmp(nm + l - 5, ".json") == 0)
			run_file(s, draft, sub, nm, &pass, &total);
		free(list[i]);
	}
	free(list);
	printf("json-schema-test-suite %s%s%s: %d of %d pass\n", draft, sub[0] ? "/" : "",
	       sub[0] ? "optional (+format)" : "", pass, total);
	assert_true(total > 100 || sub[0] != '\0');
}

static void
load_known(struct suite *s)
{
	const char *src = getenv("SB_SOURCE_ROOT");
	assert_non_null(src);
	char path[1024];
	snprintf(path, sizeof(path), "%s/services/registry/jsv_known_failures.txt", src);
	char *text = read_text(path);
	assert_non_null(text);
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		s->known = realloc(s->known, (s->nknown + 1) * sizeof(char *));
		s->known[s->nknown++] = strdup(line);
	}
	free(text);
}

static void
test_suite(void **state)
{
	(void)state;
	struct suite s = { .root = getenv("SB_JSON_SCHEMA_SUITE") };
	assert_non_null(s.root);
	load_known(&s);
	const char *drafts[] = { "draft4", "draft7" };
	for (size_t d = 0; d < 2; d++) {
		run_dir(&s, drafts[d], "");
		run_dir(&s, drafts[d], "optional/");
		if (strcmp(drafts[d], "draft7") == 0)
			run_dir(&s, drafts[d], "optional/format/");
	}
	qsort(s.failed, s.nfailed, sizeof(char *), cmp_str);
	qsort(s.known, s.nknown, sizeof(char *), cmp_str);
	size_t unexpected = 0, fixed = 0;
	for (size_t i = 0; i < s.nfailed; i++) {
		if (bsearch(&s.failed[i], s.known, s.nknown, sizeof(char *), cmp_str) == NULL) {
			printf("UNEXPECTED FAILURE: %s\n", s.failed[i]);
			unexpected++;
		}
	}
	for (size_t i = 0; i < s.nknown; i++) {
		if (bsearch(&s.known[i], s.failed, s.nfailed, sizeof(char *), cmp_str) == NULL) {
			printf("LISTED BUT PASSES: %s\n", s.known[i]);
			fixed++;
		}
	}
	printf("known failures: %zu listed, %zu failing now\n", s.nknown, s.nfailed);
	for (size_t i = 0; i < s.nfailed; i++)
		free(s.failed[i]);
	for (size_t i = 0; i < s.nknown; i++)
		free(s.known[i]);
	free(s.failed);
	free(s.known);
	assert_int_equal(unexpected, 0);
	assert_int_equal(fixed, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_suite) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
