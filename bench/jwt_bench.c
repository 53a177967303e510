/* jwt_bench.c: access-token verifications per second through sb_jwt (one thread), beside the
 * raw signature-verify rate `openssl speed` measures for the same algorithm on this machine.
 *
 *   jwt_bench [seconds]     (default 2 CPU seconds of sb_jwt per algorithm; openssl speed
 *                            runs 3 s)
 *
 * The token is a typical one: the claims the auth service issues. Two references are printed:
 * `openssl speed` run as a separate process (as asked), and the same raw operation it times
 * (EVP_PKEY_verify of a digest with a reused context) measured in this process in slices
 * interleaved with ours, which stays comparable when other work loads the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

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

/* jwt_bench_now returns the CPU time of the calling thread: `openssl speed` divides by user CPU
 * time too (its default without -elapsed), so both rates are per CPU second and stay comparable
 * on a machine that other work keeps busy. */
static double
jwt_bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
		if (strstr(line, row) == NULL)
			continue;
		line[strcspn(line, "\n")] = '\0';
		last = strrchr(line, ' ');
		if (last != NULL)
			v = strtod(last + 1, NULL);
	}
	pclose(f);
	return v;
}

struct jwt_bench_ctx {
	struct sb_jwt_key *key;
	struct sb_jwt_keyset *set;
	struct sb_jwt_verifier *v;
	char *tok;
	size_t toklen;
	/* the raw operation `openssl speed` times: EVP_PKEY_verify of one digest, context reused */
	EVP_PKEY *pkey;
	EVP_PKEY_CTX *raw;
	unsigned char dgst[32], sig[512];
	size_t siglen;
};

static void
jwt_bench_free(struct jwt_bench_ctx *b)
{
	EVP_PKEY_CTX_free(b->raw);
	EVP_PKEY_free(b->pkey);
	free(b->tok);
	sb_jwt_verifier_free(b->v);
	sb_jwt_keyset_release(b->set);
	sb_jwt_key_free(b->key);
}

/* jwt_bench_setup makes a key of alg, a verifier and a typical access token signed by it, and
 * the same key as a plain OpenSSL key with a signed digest. Returns 0 or -1. */
static int
jwt_bench_setup(struct jwt_bench_ctx *b, enum sb_jwt_alg alg)
{
	struct sb_jwt_policy pol = { .issuer = "https://auth.switchboard.example",
		                     .audience = "switchboard",
		                     .typ = "at+jwt",
		                     .leeway_s = 30 };
	time_t now = time(NULL);
	char *pem = NULL;
	BIO *bio;
	EVP_PKEY_CTX *sctx = NULL;
	json_t *claims;
	int ret = -1;

	memset(b, 0, sizeof *b);
	claims =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", pol.issuer, "aud",
	              pol.audience, "sub", "0b6f5a4e-6c1d-4b8e-9d0a-2f3c4b5a6d7e", "tenant_id",
	              "7d2c9e1f-3a4b-4c5d-8e6f-0a1b2c3d4e5f", "client_id", "switchboard-web",
	              "scope", "messages:read messages:write conversations:read files:write", "jti",
	              "5f0e8d7c-6b5a-4938-a7b6-c5d4e3f2a1b0", "iat", (json_int_t)now, "exp",
	              (json_int_t)now + 900);
	if (claims == NULL || sb_jwt_key_generate(alg, 2048, &b->key) != 0 ||
	    sb_jwt_keyset_new(&b->set) != 0 || sb_jwt_keyset_add(b->set, b->key) != 0 ||
	    sb_jwt_verifier_new(&pol, b->set, &b->v) != 0 ||
	    sb_jwt_sign(b->key, claims, "at+jwt", &b->tok) != 0 ||
	    sb_jwt_key_private_pem(b->key, &pem) != 0)
		goto done;
	b->toklen = strlen(b->tok);
	bio = BIO_new_mem_buf(pem, -1);
	b->pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (b->pkey == NULL)
		goto done;
	b->siglen = sizeof b->sig;
	sctx = EVP_PKEY_CTX_new(b->pkey, NULL);
	b->raw = EVP_PKEY_CTX_new(b->pkey, NULL);
	if (sctx == NULL || b->raw == NULL || EVP_PKEY_sign_init(sctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(sctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(sctx, b->sig, &b->siglen, b->dgst, sizeof b->dgst) != 1 ||
	    EVP_PKEY_verify_init(b->raw) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(b->raw, EVP_sha256()) != 1)
		goto done;
	ret = 0;
done:
	EVP_PKEY_CTX_free(sctx);
	sb_jwt_secret_free(pem);
	json_decref(claims);
	return ret;
}

/* jwt_bench_slice runs ours (sb_jwt_verify) or the raw verify for at least seconds of CPU;
 * adds the operations and the CPU time spent. Returns 0, or -1 if a verification failed. */
static int
jwt_bench_slice(struct jwt_bench_ctx *b, bool ours, double seconds, long *n, double *spent)
{
	struct sb_jwt_principal p;
	double t0 = jwt_bench_now(), t1;

	do {
		for (int i = 0; i < 50; i++, (*n)++) {
			if (ours ? sb_jwt_verify(b->v, b->tok, b->toklen, &p) != 0
			         : EVP_PKEY_verify(b->raw, b->sig, b->siglen, b->dgst,
			                           sizeof b->dgst) != 1)
				return -1;
		}
		t1 = jwt_bench_now();
	} while (t1 - t0 < seconds);
	*spent += t1 - t0;
	return 0;
}

int
main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	int ret = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (seconds <= 0) {
		fprintf(stderr, "usage: jwt_bench [seconds > 0]\n");
		return 2;
	}
	printf("%-6s %6s %16s %16s %7s %17s %7s\n", "alg", "token", "sb_jwt verify/s",
	       "EVP verify/s", "ratio", "openssl speed/s", "ratio");
	for (size_t i = 0; i < sizeof jwt_bench_algs / sizeof jwt_bench_algs[0]; i++) {
		const struct jwt_bench_alg *a = &jwt_bench_algs[i];
		struct jwt_bench_ctx b;
		long n_ours = 0, n_raw = 0;
		double t_ours = 0, t_raw = 0, ours, raw, speed;
		int bad = jwt_bench_setup(&b, a->alg);

		/* Interleave short slices of both, so that both see the same machine. */
		for (int r = 0; r < 20 && bad == 0; r++) {
			bad = jwt_bench_slice(&b, true, seconds / 20, &n_ours, &t_ours);
			if (bad == 0)
				bad = jwt_bench_slice(&b, false, seconds / 20, &n_raw, &t_raw);
		}
		speed = bad == 0 ? jwt_bench_openssl(a->speed_cmd, a->speed_row) : -1;
		if (bad != 0 || speed <= 0) {
			fprintf(stderr, "%s: measurement failed\n", sb_jwt_alg_name(a->alg));
			ret = 1;
			jwt_bench_free(&b);
			continue;
		}
		ours = (double)n_ours / t_ours;
		raw = (double)n_raw / t_raw;
		printf("%-6s %5zuB %16.0f %16.0f %6.1f%% %17.0f %6.1f%%\n", sb_jwt_alg_name(a->alg),
		       b.toklen, ours, raw, 100.0 * ours / raw, speed, 100.0 * ours / speed);
		jwt_bench_free(&b);
	}
	return ret;
}
