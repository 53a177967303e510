/* gateway_revocation_test.c: the gateway's local revocation set (revocation.c): insert,
 * lookup, expiry with leeway, growth, the published message format, concurrent readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"
#include "sb_err.h"

static void
test_add_contains(void **state)
{
	(void)state;
	struct gw_revset *s = NULL;
	assert_int_equal(gw_revset_new(30, &s), 0);
	assert_false(gw_revset_contains(s, "a"));
	assert_int_equal(gw_revset_size(s), 0);
	assert_int_equal(gw_revset_add(s, "0b5c-jti-1", 1000), 0);
	assert_true(gw_revset_contains(s, "0b5c-jti-1"));
	assert_false(gw_revset_contains(s, "0b5c-jti-2"));
	assert_false(gw_revset_contains(s, "0b5c-jti-")); /* a prefix is no match */
	assert_false(gw_revset_contains(s, "0b5c-jti-10"));
	/* adding again does not duplicate */
	assert_int_equal(gw_revset_add(s, "0b5c-jti-1", 900), 0);
	assert_int_equal(gw_revset_size(s), 1);
	/* bad ids are refused */
	assert_int_equal(gw_revset_add(s, "", 1000), SB_EINVAL);
	char big[SB_JWT_ID_MAX + 1];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(gw_revset_add(s, big, 1000), SB_EINVAL);
	big[SB_JWT_ID_MAX - 1] = '\0'; /* the longest a jti can be */
	assert_int_equal(gw_revset_add(s, big, 1000), 0);
	assert_true(gw_revset_contains(s, big));
	assert_int_equal(gw_revset_size(s), 2);
	gw_revset_free(s);
}

static void
test_expiry(void **state)
{
	(void)state;
	struct gw_revset *s = NULL;
	assert_int_equal(gw_revset_new(30, &s), 0);
	assert_int_equal(gw_revset_add(s, "early", 1000), 0);
	assert_int_equal(gw_revset_add(s, "late", 2000), 0);
	assert_int_equal(gw_revset_add(s, "extended", 1000), 0);
	assert_int_equal(gw_revset_add(s, "extended", 3000), 0); /* the later exp wins */
	/* within the leeway nothing goes: a token 30 s past exp still verifies */
	assert_int_equal(gw_revset_expire(s, 1030), 0);
	assert_true(gw_revset_contains(s, "early"));
	assert_int_equal(gw_revset_expire(s, 1031), 1);
	assert_false(gw_revset_contains(s, "early"));
	assert_true(gw_revset_contains(s, "late"));
	assert_true(gw_revset_contains(s, "extended"));
	assert_int_equal(gw_revset_size(s), 2);
	assert_int_equal(gw_revset_expire(s, 2500), 1);
	assert_false(gw_revset_contains(s, "late"));
	assert_true(gw_revset_contains(s, "extended"));
	assert_int_equal(gw_revset_expire(s, 4000), 1);
	assert_int_equal(gw_revset_size(s), 0);
	gw_revset_free(s);
}

static void
test_many(void **state)
{
	(void)state;
	struct gw_revset *s = NULL;
	assert_int_equal(gw_revset_new(0, &s), 0);
	enum { N = 50000 };
	char jti[64];
	for (int i = 0; i < N; i++) {
		snprintf(jti, sizeof(jti), "jti-%08d", i);
		assert_int_equal(gw_revset_add(s, jti, i % 2 ? 100 : 200), 0);
	}
	assert_int_equal(gw_revset_size(s), N);
	for (int i = 0; i < N; i++) {
		snprintf(jti, sizeof(jti), "jti-%08d", i);
		assert_true(gw_revset_contains(s, jti));
		snprintf(jti, sizeof(jti), "other-%08d", i);
		assert_false(gw_revset_contains(s, jti));
	}
	assert_int_equal(gw_revset_expire(s, 150), N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(jti, sizeof(jti), "jti-%08d", i);
		assert_int_equal(gw_revset_contains(s, jti), i % 2 == 0);
	}
	gw_revset_free(s);
}

static void
test_parse_msg(void **state)
{
	(void)state;
	char jti[SB_JWT_ID_MAX];
	int64_t exp = 0;
	const char *ok = "0b5c9e2a-41d3 1767225600";
	assert_int_equal(gw_revset_parse_msg(ok, strlen(ok), jti, sizeof(jti), &exp), 0);
	assert_string_equal(jti, "0b5c9e2a-41d3");
	assert_int_equal(exp, 1767225600);
	/* the length given is honoured: no NUL needed, trailing bytes ignored */
	const char *pfx = "abc 12xyz";
	assert_int_equal(gw_revset_parse_msg(pfx, 6, jti, sizeof(jti), &exp), 0);
	assert_string_equal(jti, "abc");
	assert_int_equal(exp, 12);
	const char *bad[] = {
		"",       "abc",     "abc ",    " 123",    "abc 12x",
		"abc -5", "abc  12", "a\tb 12", "abc 1 2", "abc 99999999999999999999"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    gw_revset_parse_msg(bad[i], strlen(bad[i]), jti, sizeof(jti), &exp), SB_EINVAL);
	/* an id longer than the buffer (or than a jti may be) is refused, not truncated */
	char small[4];
	assert_int_equal(gw_revset_parse_msg("abcd 1", 6, small, sizeof(small), &exp), SB_EINVAL);
	char lng[SB_JWT_ID_MAX + 8];
	memset(lng, 'j', SB_JWT_ID_MAX);
	memcpy(lng + SB_JWT_ID_MAX, " 1", 3);
	assert_int_equal(gw_revset_parse_msg(lng, strlen(lng), jti, sizeof(jti), &exp), SB_EINVAL);
}

/* Readers look up ids that are always present and ids never added while one writer adds and
 * expires others: a reader must never miss the first nor see the second. */
struct reader_arg {
	struct gw_revset *s;
	_Atomic int *stop;
	long errors;
	long lookups;
};

static void *
reader_main(void *p)
{
	struct reader_arg *a = p;
	char jti[32];
	while (!*a->stop) {
		for (int i = 0; i < 100; i++) {
			snprintf(jti, sizeof(jti), "keep-%d", i);
			if (!gw_revset_contains(a->s, jti))
				a->errors++;
			snprintf(jti, sizeof(jti), "never-%d", i);
			if (gw_revset_contains(a->s, jti))
				a->errors++;
			a->lookups += 2;
		}
	}
	return NULL;
}

static void
test_concurrent_readers(void **state)
{
	(void)state;
	struct gw_revset *s = NULL;
	assert_int_equal(gw_revset_new(0, &s), 0);
	char jti[32];
	for (int i = 0; i < 100; i++) {
		snprintf(jti, sizeof(jti), "keep-%d", i);
		assert_int_equal(gw_revset_add(s, jti, INT64_MAX / 4), 0);
	}
	_Atomic int stop = 0;
	enum { R = 4 };
	pthread_t th[R];
	struct reader_arg args[R];
	for (int i = 0; i < R; i++) {
		args[i] = (struct reader_arg){ .s = s, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
	}
	/* the writer: waves of short-lived entries, grown then expired (tables resize) */
	for (int wave = 0; wave < 20; wave++) {
		for (int i = 0; i < 2000; i++) {
			snprintf(jti, sizeof(jti), "w%d-%d", wave, i);
			assert_int_equal(gw_revset_add(s, jti, wave), 0);
		}
		assert_int_equal(gw_revset_expire(s, wave + 1), 2000);
	}
	stop = 1;
	long lookups = 0;
	for (int i = 0; i < R; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].errors, 0);
		lookups += args[i].lookups;
	}
	assert_true(lookups > 0);
	assert_int_equal(gw_revset_size(s), 100);
	gw_revset_free(s);
}

/* Without a watcher (auth off, or no REDIS_URL) nothing is revoked and nothing is unsynced. */
static void
test_check_without_watcher(void **state)
{
	(void)state;
	struct gw gw;
	memset(&gw, 0, sizeof(gw));
	assert_int_equal(gw_revocation_check(&gw, "any"), GW_REVO_OK);
	gw_revocation_stop(&gw); /* a no-op */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_contains),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_parse_msg),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_check_without_watcher),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
