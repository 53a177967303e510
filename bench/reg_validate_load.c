/* reg_validate_load DIR SECONDS: the registry's validator (services/registry/jsv.h, valijson)
 * on DIR/docs.jsonl against DIR/schema.json, each document from its text, all violations
 * collected, over and over for SECONDS on one thread; prints "docs_per_s invalid_per_pass".
 * The helper of bench/registry_validate_bench.sh (ajv.mjs does the same with ajv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsv.h"

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = len >= 0 ? malloc((size_t)len + 1) : NULL;
	if (b != NULL && fread(b, 1, (size_t)len, f) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b != NULL) {
		b[len] = '\0';
		*n = (size_t)len;
	}
	return b;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: reg_validate_load DIR SECONDS\n");
		return 2;
	}
	char path[4096];
	size_t sn = 0, dn = 0;
	snprintf(path, sizeof(path), "%s/schema.json", argv[1]);
	char *schema = slurp(path, &sn);
	snprintf(path, sizeof(path), "%s/docs.jsonl", argv[1]);
	char *docs = slurp(path, &dn);
	if (schema == NULL || docs == NULL) {
		fprintf(stderr, "reg_validate_load: cannot read the input in %s\n", argv[1]);
		return 1;
	}
	struct reg_jsv *v = NULL;
	char err[256];
	if (reg_jsv_compile(schema, sn, REG_JSV_DRAFT7, NULL, NULL, &v, err, sizeof(err)) != 0) {
		fprintf(stderr, "reg_validate_load: schema refused: %s\n", err);
		return 1;
	}
	/* the documents, one per line */
	size_t cap = 1024, nd = 0;
	char **line = malloc(cap * sizeof(*line));
	size_t *len = malloc(cap * sizeof(*len));
	for (char *p = docs; *p != '\0';) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l > 0) {
			if (nd == cap) {
				cap *= 2;
				line = realloc(line, cap * sizeof(*line));
				len = realloc(len, cap * sizeof(*len));
			}
			line[nd] = p;
			len[nd++] = l;
		}
		p += l + (nl != NULL);
	}
	struct reg_jsv_error e[16];
	size_t ne = 0, invalid = 0;
	for (size_t i = 0; i < nd; i++) {
		int rc = reg_jsv_validate(v, line[i], len[i], e, 16, &ne);
		if (rc < 0) {
			fprintf(stderr, "reg_validate_load: line %zu is not JSON\n", i + 1);
			return 1;
		}
		invalid += rc == 1;
	}
	double secs = atof(argv[2]), t0 = now_s(), t = t0;
	size_t n = 0;
	while (t - t0 < secs) {
		for (size_t i = 0; i < nd; i++)
			reg_jsv_validate(v, line[i], len[i], e, 16, &ne);
		n += nd;
		t = now_s();
	}
	printf("%.0f %zu\n", (double)n / (t - t0), invalid);
	reg_jsv_free(v);
	free(line);
	free(len);
	free(schema);
	free(docs);
	return 0;
}
