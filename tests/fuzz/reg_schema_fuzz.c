/* reg_schema_fuzz: libFuzzer target for what the schema registry reads from clients: JSON
 * Schemas compared for compatibility (services/registry/compat.c) and compiled and used to
 * validate documents (services/registry/jsv.cpp, valijson). The input is two JSON texts cut at
 * the first newline: a schema A and a text B (a second schema, and a document).
 *
 * Properties:
 *   - comparing any two schemas ends (the step budget) and every difference names a pointer
 *     into the schema ("#..."); a schema compared with itself has no difference;
 *   - at every level, reg_compat_check says compatible exactly when it reports no
 *     incompatibility; NONE is always compatible;
 *   - a schema that compiles validates any text: 0 or 1 for JSON, -1 for text that is not;
 *     an invalid document has at least one violation, each at "" or a pointer starting with
 *     '/'; validating twice gives the same verdict and count. */
#include "fuzz.h"

#include <jansson.h>

#include "compat.h"
#include "jsv.h"

static void
fz_compat(const json_t *a, const json_t *b)
{
	struct reg_diffs d = { 0 };
	CHECK(reg_compat_diff(a, b, &d) == 0);
	for (size_t i = 0; i < d.n; i++)
		CHECK(d.v[i].path[0] == '#' && d.v[i].type != NULL);
	reg_diffs_free(&d);
	CHECK(reg_compat_diff(a, a, &d) == 0);
	CHECK(d.n == 0);
	reg_diffs_free(&d);
	const json_t *prev[2] = { a, b };
	for (int l = REG_COMPAT_NONE; l <= REG_COMPAT_FULL_TRANSITIVE; l++) {
		bool ok = false;
		CHECK(reg_compat_check((enum reg_compat_level)l, b, prev, 2, &ok, &d) == 0);
		CHECK(ok == (d.n == 0));
		CHECK(l != REG_COMPAT_NONE || ok);
		reg_diffs_free(&d);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *all = fz_cstr(data, size);
	const char *btext = fz_cut(all, "");
	const char *atext = all;
	json_t *a = json_loads(atext, JSON_DECODE_ANY, NULL);
	json_t *b = json_loads(btext, JSON_DECODE_ANY, NULL);
	if ((json_is_object(a) || json_is_boolean(a)) && (json_is_object(b) || json_is_boolean(b)))
		fz_compat(a, b);
	for (int draft = 4; draft <= 7; draft += 3) {
		struct reg_jsv *v = NULL;
		char err[256];
		if (reg_jsv_compile(atext, strlen(atext), (enum reg_jsv_draft)draft, NULL, NULL, &v,
		                    err, sizeof(err)) != 0) {
			CHECK(v == NULL && strlen(err) < sizeof(err));
			continue;
		}
		struct reg_jsv_error e[8];
		size_t n1 = 0, n2 = 0;
		int r1 = reg_jsv_validate(v, btext, strlen(btext), e, 8, &n1);
		CHECK(r1 == 0 || r1 == 1 || r1 == -1);
		CHECK(r1 != -1 || b == NULL);
		CHECK(r1 != 1 || n1 >= 1);
		for (size_t i = 0; r1 == 1 && i < n1 && i < 8; i++)
			CHECK(e[i].pointer[0] == '\0' || e[i].pointer[0] == '/');
		int r2 = reg_jsv_validate(v, btext, strlen(btext), e, 8, &n2);
		CHECK(r1 == r2 && n1 == n2);
		reg_jsv_free(v);
	}
	json_decref(a);
	json_decref(b);
	free(all);
	return 0;
}
