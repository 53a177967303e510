/* sb_jwt_stress_test.c: four threads verify in a loop while the main thread keeps replacing
 * the verifier's key set (as a JWKS refetch does). Under ASan a use-after-free or a leak of a
 * replaced set fails the run; here every result must be one that one of the sets explains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "sb_err.h"
#include "sb_jwt.h"

#define T_THREADS 4

struct t_shared {
	struct sb_jwt_verifier *v;
	char *stable;  /* signed by a key present in every set */
	char *rotated; /* signed by a key present only in every other set */
	atomic_int stop;
	atomic_long ok, unknown, wrong;
};

static void *
t_worker(void *arg)
{
	struct t_shared *s = arg;
	struct sb_jwt_principal p;

	while (!atomic_load(&s->stop)) {
		int a = sb_jwt_verify(s->v, s->stable, strlen(s->stable), &p);
		if (a == 0 && strcmp(p.sub, "u") == 0)
			atomic_fetch_add(&s->ok, 1);
		else
			atomic_fetch_add(&s->wrong, 1);
		int b = sb_jwt_verify(s->v, s->rotated, strlen(s->rotated), &p);
		if (b == 0)
			atomic_fetch_add(&s->ok, 1);
		else if (b == SB_JWT_UNKNOWN_KID)
			atomic_fetch_add(&s->unknown, 1);
		else
			atomic_fetch_add(&s->wrong, 1);
	}
	return NULL;
}

static char *
t_token(const struct sb_jwt_key *key)
{
	int64_t now = (int64_t)time(NULL);
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", "i", "aud", "a", "sub", "u",
	                      "jti", "j", "iat", (json_int_t)now, "exp", (json_int_t)(now + 600));
	char *tok;

	assert_int_equal(sb_jwt_sign(key, c, "at+jwt", &tok), 0);
	json_decref(c);
	return tok;
}

static void
test_replace_keys_while_verifying(void **state)
{
	struct sb_jwt_policy pol = { .issuer = "i", .audience = "a", .typ = "at+jwt" };
	struct sb_jwt_key *stable, *rotated;
	struct sb_jwt_keyset *with, *without;
	struct t_shared s = { 0 };
	pthread_t th[T_THREADS];
	char *jwks_with, *jwks_without;
	long swaps = 0;
	struct timespec t0, t1;

	assert_int_equal(sb_jwt_key_generate(SB_JWT_ES256, 0, &stable), 0);
	assert_int_equal(sb_jwt_key_generate(SB_JWT_RS256, 0, &rotated), 0);
	assert_int_equal(sb_jwt_keyset_new(&with), 0);
	assert_int_equal(sb_jwt_keyset_add(with, stable), 0);
	assert_int_equal(sb_jwt_keyset_add(with, rotated), 0);
	assert_int_equal(sb_jwt_keyset_new(&without), 0);
	assert_int_equal(sb_jwt_keyset_add(without, stable), 0);
	assert_int_equal(sb_jwt_keyset_to_jwks(with, &jwks_with), 0);
	assert_int_equal(sb_jwt_keyset_to_jwks(without, &jwks_without), 0);
	sb_jwt_keyset_release(with);
	sb_jwt_keyset_release(without);

	s.stable = t_token(stable);
	s.rotated = t_token(rotated);
	assert_int_equal(sb_jwt_keyset_parse_jwks(jwks_with, strlen(jwks_with), &with, NULL), 0);
	assert_int_equal(sb_jwt_verifier_new(&pol, with, &s.v), 0);
	sb_jwt_keyset_release(with);
	for (int i = 0; i < T_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, t_worker, &s), 0);

	/* For a second, every swap installs a freshly parsed set and drops the previous one, so
	 * a verification still using a set it fetched races with that set's last release. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		const char *doc = swaps % 2 ? jwks_without : jwks_with;
		struct sb_jwt_keyset *set;
		assert_int_equal(sb_jwt_keyset_parse_jwks(doc, strlen(doc), &set, NULL), 0);
		sb_jwt_verifier_set_keys(s.v, set);
		sb_jwt_keyset_release(set);
		swaps++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1000);

	atomic_store(&s.stop, 1);
	for (int i = 0; i < T_THREADS; i++)
		pthread_join(th[i], NULL);
	print_message("swaps %ld, ok %ld, unknown kid %ld, other %ld\n", swaps, atomic_load(&s.ok),
	              atomic_load(&s.unknown), atomic_load(&s.wrong));
	assert_int_equal(atomic_load(&s.wrong), 0);
	assert_true(atomic_load(&s.ok) > 0);
	assert_true(atomic_load(&s.unknown) > 0); /* the swaps did land between verifications */
	assert_true(swaps > 10);

	sb_jwt_verifier_free(s.v);
	sb_jwt_key_free(stable);
	sb_jwt_key_free(rotated);
	free(s.stable);
	free(s.rotated);
	free(jwks_with);
	free(jwks_without);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_keys_while_verifying),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
