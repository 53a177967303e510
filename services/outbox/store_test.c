/* store_test.c: the pure helpers of the relay: the fair share of shards per replica and the
 * id array literal handed to PostgreSQL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "outbox.h"
#include "sb_err.h"

static void
test_share_covers_every_shard(void **state)
{
	(void)state;
	assert_int_equal(outbox_lease_share(64, 1), 64);
	assert_int_equal(outbox_lease_share(64, 2), 32);
	assert_int_equal(outbox_lease_share(64, 3), 22);
	assert_int_equal(outbox_lease_share(64, 64), 1);
	assert_int_equal(outbox_lease_share(64, 100), 1);
	/* A count of 0 (the query raced a restart) still takes work. */
	assert_int_equal(outbox_lease_share(64, 0), 64);
	/* live replicas each holding their share hold every shard. */
	for (int live = 1; live <= 70; live++)
		assert_true(outbox_lease_share(64, live) * live >= 64);
}

static void
test_id_array(void **state)
{
	(void)state;
	const int64_t ids[] = { 1, 42, 9223372036854775807LL };
	char buf[64];
	assert_int_equal(outbox_store_id_array(ids, 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{1,42,9223372036854775807}");
	assert_int_equal(outbox_store_id_array(ids, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{}");
	/* Too small: an error, never a truncated list that would mark the wrong rows. */
	assert_int_equal(outbox_store_id_array(ids, 3, buf, 10), SB_ERANGE);
	assert_int_equal(outbox_store_id_array(ids, 1, buf, 3), SB_ERANGE);
	assert_int_equal(outbox_store_id_array(ids, 1, buf, 4), 0);
	assert_string_equal(buf, "{1}");
}

static void
test_config_defaults_and_bounds(void **state)
{
	(void)state;
	int seen = 0;
	for (const struct sb_cfg_key *k = outbox_config; k->env != NULL; k++) {
		if (strcmp(k->env, "SB_OUTBOX_SHARDS") == 0) {
			/* Fixed by the table's generated column. */
			assert_string_equal(k->def, "64");
			assert_int_equal(k->min, 64);
			assert_int_equal(k->max, 64);
			seen++;
		} else if (strcmp(k->env, "SB_OUTBOX_POLL_MS") == 0) {
			assert_string_equal(k->def, "500");
			seen++;
		} else if (strcmp(k->env, "SB_OUTBOX_RETENTION_S") == 0) {
			assert_string_equal(k->def, "604800");
			seen++;
		} else if (strcmp(k->env, "SB_OUTBOX_BATCH_SIZE") == 0 ||
		           strcmp(k->env, "SB_OUTBOX_MAX_ATTEMPTS") == 0) {
			seen++;
		}
	}
	assert_int_equal(seen, 5);
}

static const char *
fake_env(const char *name, void *arg)
{
	const char *const *kv = arg;
	for (; kv[0] != NULL; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static void
test_config_rejects_other_shard_counts(void **state)
{
	(void)state;
	const char *bad[] = { "SB_OUTBOX_SHARDS", "32", NULL };
	const char *ok[] = { "SB_OUTBOX_BATCH_SIZE", "2000", NULL };
	struct outbox_cfg cfg;
	char err[256] = "";

	memset(&cfg, 0, sizeof(cfg));
	/* sb_config.h says SB_EINVAL; out-of-bounds integers come back as SB_ERANGE. */
	int ret = sb_config_load(outbox_config, &cfg, fake_env, bad, err, sizeof(err));
	assert_true(ret == SB_EINVAL || ret == SB_ERANGE);
	assert_non_null(strstr(err, "SB_OUTBOX_SHARDS"));
	sb_config_free(outbox_config, &cfg);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(sb_config_load(outbox_config, &cfg, fake_env, ok, err, sizeof(err)), 0);
	assert_int_equal(cfg.batch_size, 2000);
	assert_int_equal(cfg.shards, 64);
	assert_int_equal(cfg.poll_ms, 500);
	sb_config_free(outbox_config, &cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share_covers_every_shard),
		cmocka_unit_test(test_id_array),
		cmocka_unit_test(test_config_defaults_and_bounds),
		cmocka_unit_test(test_config_rejects_other_shard_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
