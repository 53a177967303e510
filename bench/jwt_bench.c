/* jwt_bench.c: access-token verifications per second through sb_jwt (one thread), beside the
 * raw signature-verify rate `openssl speed` measures for the same algorithm on this machine.
 *
 *   jwt_bench [seconds]     (default 2 s of sb_jwt per algorithm; openssl speed runs 3 s)
 *
 * The token is a typical one: the claims the auth service issues, about 600 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_jwt.h"

struct jwt_bench_alg {
	enum sb_jwt_alg alg;
	const char *speed_cmd; /* openssl speed for the same algorithm */
	const char *speed_row; /* the start of its result row */
};

static const struct jwt_bench_alg jwt_bench_algs[] = {
	{ SB_JWT_ES256, "openssl speed -seconds 3 ecdsap256 2>/dev/null",
	  "256 bits ecdsa (nistp256)" },
	{ SB_JWT_RS256, "openssl speed -seconds 3 rsa2048 2>/dev/null", "rsa 2048 bits" },
};

static double
jwt_bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* jwt_bench_openssl runs cmd and returns the last number of the row starting with row (the
 * verify/s column), or -1. */
static double
jwt_bench_openssl(const char *cmd, const char *row)
{
	char line[512];
	double v = -1;
	FILE *f = popen(cmd, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		char *last;
		if (strncmp(line, row, strlen(row)) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		last = strrchr(line, ' ');
		if (last != NULL)
			v = strtod(last + 1, NULL);
	}
	pclose(f);
	return v;
}

/* jwt_bench_verify signs a typical token with a new key of alg and verifies it for seconds;
 * returns verifications per second, or -1 on any failure. */
static double
jwt_bench_verify(enum sb_jwt_alg alg, double seconds, size_t *toklen)
{
	struct sb_jwt_policy pol = { .issuer = "https://auth.switchboard.example",
		                     .audience = "switchboard",
		                     .typ = "at+jwt",
		                     .leeway_s = 30 };
	struct sb_jwt_key *key = NULL;
	struct sb_jwt_keyset *set = NULL;
	struct sb_jwt_verifier *v = NULL;
	struct sb_jwt_principal p;
	json_t *claims = NULL;
	char *tok = NULL;
	double rate = -1, t0, t1;
	long n = 0;
	time_t now = time(NULL);

	claims =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", pol.issuer, "aud",
	              pol.audience, "sub", "0b6f5a4e-6c1d-4b8e-9d0a-2f3c4b5a6d7e", "tenant_id",
	              "7d2c9e1f-3a4b-4c5d-8e6f-0a1b2c3d4e5f", "client_id", "switchboard-web",
	              "scope", "messages:read messages:write conversations:read files:write", "jti",
	              "5f0e8d7c-6b5a-4938-a7b6-c5d4e3f2a1b0", "iat", (json_int_t)now, "exp",
	              (json_int_t)now + 900);
	if (claims == NULL || sb_jwt_key_generate(alg, 2048, &key) != 0 ||
	    sb_jwt_keyset_new(&set) != 0 || sb_jwt_keyset_add(set, key) != 0 ||
	    sb_jwt_verifier_new(&pol, set, &v) != 0 ||
	    sb_jwt_sign(key, claims, "at+jwt", &tok) != 0)
		goto done;
	*toklen = strlen(tok);
	t0 = jwt_bench_now();
	do {
		for (int i = 0; i < 100; i++, n++)
			if (sb_jwt_verify(v, tok, *toklen, &p) != 0)
				goto done;
		t1 = jwt_bench_now();
	} while (t1 - t0 < seconds);
	rate = (double)n / (t1 - t0);
done:
	free(tok);
	json_decref(claims);
	sb_jwt_verifier_free(v);
	sb_jwt_keyset_release(set);
	sb_jwt_key_free(key);
	return rate;
}

int
main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	int ret = 0;

	if (seconds <= 0) {
		fprintf(stderr, "usage: jwt_bench [seconds > 0]\n");
		return 2;
	}
	printf("%-6s %8s %14s %18s %7s\n", "alg", "token", "sb_jwt verify/s", "openssl verify/s",
	       "ratio");
	for (size_t i = 0; i < sizeof jwt_bench_algs / sizeof jwt_bench_algs[0]; i++) {
		const struct jwt_bench_alg *a = &jwt_bench_algs[i];
		size_t toklen = 0;
		double ours = jwt_bench_verify(a->alg, seconds, &toklen);
		double raw = jwt_bench_openssl(a->speed_cmd, a->speed_row);
		if (ours < 0 || raw <= 0) {
			fprintf(stderr, "%s: measurement failed (sb_jwt %.0f, openssl %.0f)\n",
			        sb_jwt_alg_name(a->alg), ours, raw);
			ret = 1;
			continue;
		}
		printf("%-6s %7zuB %15.0f %18.0f %6.1f%%\n", sb_jwt_alg_name(a->alg), toklen, ours,
		       raw, 100.0 * ours / raw);
	}
	return ret;
}
