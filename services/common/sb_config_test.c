/* Tests of sb_config: defaults, bounds, types, validators, secrets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sb_config.h"
#include "sb_err.h"
#include "sb_log.h"

struct test_cfg {
	struct sb_common_cfg common;
	char *db_url;
	char *secret;
	long long batch;
	bool flag;
};

static const struct sb_cfg_key test_tbl[] = {
	SB_CFG_COMMON(struct test_cfg, common, 9199, 7199),
	{ "DATABASE_URL", SB_CFG_STR, offsetof(struct test_cfg, db_url), "postgres://u:pw@h/db", 0,
	  0, 0, sb_config_validate_url, "PostgreSQL connection URL." },
	{ "SB_SECRET", SB_CFG_STR, offsetof(struct test_cfg, secret), NULL, 0, 0,
	  SB_CFG_SECRET | SB_CFG_REQUIRED, NULL, "A secret." },
	{ "SB_BATCH", SB_CFG_INT, offsetof(struct test_cfg, batch), "50", 1, 1000, 0, NULL,
	  "Batch size." },
	{ "SB_FLAG", SB_CFG_BOOL, offsetof(struct test_cfg, flag), "false", 0, 0, 0, NULL,
	  "A flag." },
	{ NULL },
};

/* A fake environment: NULL-terminated name=value list. */
static const char *
fake_getenv(const char *name, void *arg)
{
	const char *const *env = arg;
	size_t n = strlen(name);
	for (; *env; env++) {
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	}
	return NULL;
}

static int
load(const char *const *env, struct test_cfg *cfg, char *err, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	return sb_config_load(test_tbl, cfg, fake_getenv, (void *)env, err, n);
}

static void
test_defaults(void **state)
{
	(void)state;
	const char *env[] = { "SB_SECRET=s3cr3t", NULL };
	struct test_cfg cfg;
	char err[256] = "";
	assert_int_equal(load(env, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.common.ops_port, 9199);
	assert_string_equal(cfg.common.rpc_url, "tcp://127.0.0.1:7199");
	assert_int_equal(cfg.common.rpc_workers, 8);
	assert_int_equal(cfg.batch, 50);
	assert_false(cfg.flag);
	assert_string_equal(cfg.secret, "s3cr3t");
	sb_config_free(test_tbl, &cfg);
	assert_null(cfg.secret);
}

static void
test_bad_values_name_the_variable(void **state)
{
	(void)state;
	static const struct {
		const char *env[3];
		const char *expect;
	} cases[] = {
		{ { "SB_SECRET=x", "SB_BATCH=0", NULL }, "SB_BATCH: 0 is out of range" },
		{ { "SB_SECRET=x", "SB_BATCH=12abc", NULL },
		  "SB_BATCH: \"12abc\" is not an integer" },
		{ { "SB_SECRET=x", "SB_BATCH=", NULL }, "SB_BATCH: \"\" is not an integer" },
		{ { "SB_SECRET=x", "SB_BATCH=99999999999999999999", NULL }, "SB_BATCH:" },
		{ { "SB_SECRET=x", "SB_FLAG=maybe", NULL }, "SB_FLAG: \"maybe\" is not a boolean" },
		{ { "SB_SECRET=x", "SB_OPS_PORT=70000", NULL },
		  "SB_OPS_PORT: 70000 is out of range" },
		{ { "SB_SECRET=x", "SB_LOG_LEVEL=loud", NULL }, "SB_LOG_LEVEL:" },
		{ { "SB_SECRET=x", "SB_RPC_URL=http://x", NULL }, "SB_RPC_URL:" },
		{ { "SB_SECRET=x", "DATABASE_URL=nope", NULL }, "DATABASE_URL:" },
		{ { NULL }, "SB_SECRET: required but not set" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct test_cfg cfg;
		char err[256] = "";
		int rv = load(cases[i].env, &cfg, err, sizeof(err));
		assert_true(rv == SB_EINVAL || rv == SB_ERANGE);
		if (strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err,
			         cases[i].expect);
		sb_config_free(test_tbl, &cfg);
	}
}

static void
test_bool_spellings(void **state)
{
	(void)state;
	const char *yes[] = { "1", "true", "YES", "on" };
	for (int i = 0; i < 4; i++) {
		char kv[32];
		snprintf(kv, sizeof(kv), "SB_FLAG=%s", yes[i]);
		const char *env[] = { "SB_SECRET=x", kv, NULL };
		struct test_cfg cfg;
		char err[256] = "";
		assert_int_equal(load(env, &cfg, err, sizeof(err)), 0);
		assert_true(cfg.flag);
		sb_config_free(test_tbl, &cfg);
	}
}

static char captured[4096];
static void
capture(const char *line, void *arg)
{
	(void)arg;
	snprintf(captured, sizeof(captured), "%s", line);
}

static void
test_log_masks_secrets(void **state)
{
	(void)state;
	const char *env[] = { "SB_SECRET=hunter2", NULL };
	struct test_cfg cfg;
	char err[256];
	assert_int_equal(load(env, &cfg, err, sizeof(err)), 0);
	sb_log_set_sink(capture, NULL);
	sb_config_log(test_tbl, &cfg);
	sb_log_set_sink(NULL, NULL);
	assert_non_null(strstr(captured, "SB_SECRET=***"));
	assert_null(strstr(captured, "hunter2"));
	assert_null(strstr(captured, ":pw@"));
	assert_non_null(strstr(captured, "postgres://u:***@h/db"));
	sb_config_free(test_tbl, &cfg);
}

static void
test_markdown(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(sb_config_markdown(test_tbl, &b), 0);
	assert_non_null(strstr(b.data, "| `SB_BATCH` | integer (1–1000) | `50` | Batch size. |"));
	assert_non_null(strstr(b.data, "| `SB_SECRET` | string | *required* |"));
	sb_buf_free(&b);
}

/* DATABASE_URL: a URL or libpq's keyword/value form (several hosts for a failover). */
static void
test_pg_dsn(void **state)
{
	(void)state;
	char err[256];
	static const char *const good[] = {
		"postgresql://postgres@127.0.0.1:5432/postgres",
		"postgresql://u@a:5432,b:5433/db?target_session_attrs=read-write",
		"host=127.0.0.1,127.0.0.1 port=5432,5433 target_session_attrs=read-write",
		"host = a  dbname='my db' password='it\\'s'",
		"dbname=x",
	};
	static const char *const bad[] = {
		"", "   ", "127.0.0.1:5432", "host", "host=a port", "=x", "dbname='x", "Host=a",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (sb_config_validate_pg_dsn(good[i], err, sizeof(err)) != 0)
			fail_msg("refused \"%s\": %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (sb_config_validate_pg_dsn(bad[i], err, sizeof(err)) != SB_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(err[0] != '\0');
	}
}

/* Passwords are masked in every form a connection string takes. */
static void
test_mask_dsn_passwords(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "postgres://u:pw@h/db", "postgres://u:***@h/db" },
		{ "host=a password=hunter2 port=1", "host=a password=*** port=1" },
		{ "password = 'hunter 2' dbname=x", "password = *** dbname=x" },
		{ "host=a password='it\\'s' x=y", "host=a password=*** x=y" },
		{ "postgresql://h/db?sslmode=require&password=hunter2&x=1",
		  "postgresql://h/db?sslmode=require&password=***&x=1" },
		{ "host=a mypassword=keep", "host=a mypassword=keep" },
		{ "password=a password=b", "password=*** password=***" },
		{ "host=a", "host=a" },
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb_log_mask_url(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_values_name_the_variable),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_log_masks_secrets),
		cmocka_unit_test(test_markdown),
		cmocka_unit_test(test_pg_dsn),
		cmocka_unit_test(test_mask_dsn_passwords),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
