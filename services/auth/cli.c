/* cli.c: sb-auth's administrative subcommands, run with the service's own configuration
 * (DATABASE_URL and the SB_AUTH_* variables). Each applies the migrations first, so they work
 * on a fresh database. Secrets are printed once, on stdout; logs go to stderr. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"

extern const struct sb_migration auth_migrations[];

struct auth_cli {
	struct auth_cfg cfg;
	struct sb_pg *pg;
	int argc;
	char **argv; /* the arguments after the subcommand's words */
};

typedef int (*auth_cli_fn)(struct auth_cli *cli);

/* auth_cli_opt returns the value of --name among the arguments, or NULL. */
static const char *
auth_cli_opt(const struct auth_cli *cli, const char *name)
{
	for (int i = 0; i + 1 < cli->argc; i++)
		if (strncmp(cli->argv[i], "--", 2) == 0 && strcmp(cli->argv[i] + 2, name) == 0)
			return cli->argv[i + 1];
	return NULL;
}

/* auth_cli_arg returns the first positional argument, or NULL. */
static const char *
auth_cli_arg(const struct auth_cli *cli)
{
	return cli->argc > 0 && strncmp(cli->argv[0], "--", 2) != 0 ? cli->argv[0] : NULL;
}

static int
auth_cli_fail(const struct auth_cli *cli, const char *what, int rv)
{
	const char *pg = cli->pg ? sb_pg_errmsg(cli->pg) : "";
	fprintf(stderr, "sb-auth: %s: %s%s%s\n", what, sb_strerror(rv), pg[0] ? ": " : "", pg);
	return 1;
}

static int
auth_cli_usage_error(const char *msg)
{
	fprintf(stderr, "sb-auth: %s\n", msg);
	return 2;
}

static void
auth_cli_print_secret(const char *id, const char *secret)
{
	json_t *o = json_pack("{s:s, s:s}", "client_id", id, "client_secret", secret);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s != NULL) {
		puts(s);
		explicit_bzero(s, strlen(s));
	}
	free(s);
	json_decref(o);
}

static int
auth_cli_client_create(struct auth_cli *cli)
{
	const char *tenant = auth_cli_opt(cli, "tenant"), *name = auth_cli_opt(cli, "name");
	const char *scopes = auth_cli_opt(cli, "scopes"), *user = auth_cli_opt(cli, "user");
	char tid[AUTH_ID_MAX], uid[AUTH_ID_MAX] = "", id[AUTH_ID_MAX], secret[128];
	char check[AUTH_SCOPE_MAX];
	int rv;
	if (tenant == NULL || name == NULL || scopes == NULL)
		return auth_cli_usage_error("client create needs --tenant, --name and --scopes");
	if (auth_scope_grant(scopes, NULL, NULL, check, sizeof(check)) != 0)
		return auth_cli_usage_error("--scopes: scopes are printable ASCII without quotes, "
		                            "separated by spaces");
	if ((rv = auth_admin_tenant(cli->pg, tenant, tid)) != 0)
		return auth_cli_fail(cli, "tenant", rv);
	if (user != NULL && (rv = auth_admin_user(cli->pg, tid, user, false, uid)) != 0)
		return rv == SB_ENOTFOUND
		           ? auth_cli_usage_error("--user: no such user in the tenant")
		           : auth_cli_fail(cli, "user", rv);
	rv = auth_admin_client_create(cli->pg, &cli->cfg, tid, name, check, uid, id, secret,
	                              sizeof(secret));
	if (rv == SB_EEXIST)
		return auth_cli_usage_error("a client of that name exists in the tenant");
	if (rv != 0)
		return auth_cli_fail(cli, "client create", rv);
	auth_cli_print_secret(id, secret);
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

static int
auth_cli_client_list(struct auth_cli *cli)
{
	PGresult *r = NULL;
	const char *tenant = auth_cli_opt(cli, "tenant");
	const char *p[] = { tenant ? tenant : "" };
	int rv =
	    sb_pg_exec_params(cli->pg,
	                      "SELECT c.client_id, t.name, c.name, c.enabled, c.scopes, "
	                      "coalesce(u.name, '') FROM auth.clients c JOIN auth.tenants t ON "
	                      "t.id = c.tenant_id LEFT JOIN auth.users u ON u.id = c.user_id "
	                      "WHERE $1 = '' OR t.name = $1 ORDER BY t.name, c.name",
	                      1, p, &r);
	if (rv != 0)
		return auth_cli_fail(cli, "client list", rv);
	printf("%-20s %-12s %-16s %-8s %-10s %s\n", "CLIENT_ID", "TENANT", "NAME", "ENABLED",
	       "USER", "SCOPES");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-20s %-12s %-16s %-8s %-10s %s\n", PQgetvalue(r, i, 0),
		       PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		       PQgetvalue(r, i, 3)[0] == 't' ? "yes" : "no", PQgetvalue(r, i, 5),
		       PQgetvalue(r, i, 4));
	PQclear(r);
	return 0;
}

static int
auth_cli_client_disable(struct auth_cli *cli)
{
	const char *id = auth_cli_arg(cli);
	PGresult *r = NULL;
	if (id == NULL)
		return auth_cli_usage_error("client disable needs a client id");
	const char *p[] = { id };
	int rv =
	    sb_pg_exec_params(cli->pg,
	                      "WITH c AS (UPDATE auth.clients SET enabled = false, updated_at = "
	                      "now() WHERE client_id = $1 RETURNING client_id) UPDATE "
	                      "auth.refresh_tokens SET revoked_at = now() WHERE client_id IN "
	                      "(SELECT client_id FROM c) AND revoked_at IS NULL",
	                      1, p, &r);
	PQclear(r);
	if (rv != 0)
		return auth_cli_fail(cli, "client disable", rv);
	struct auth_client c;
	if (auth_store_client_get(cli->pg, id, &c, NULL, 0) != 0)
		return auth_cli_usage_error("no such client");
	auth_audit(cli->pg, "client_disabled", "client_id", id, NULL);
	printf("client %s disabled; its refresh tokens are revoked\n", id);
	return 0;
}

static int
auth_cli_client_rotate(struct auth_cli *cli)
{
	const char *id = auth_cli_arg(cli);
	char secret[128];
	if (id == NULL)
		return auth_cli_usage_error("client rotate-secret needs a client id");
	int rv = auth_admin_client_rotate(cli->pg, &cli->cfg, id, secret, sizeof(secret));
	if (rv == SB_ENOTFOUND)
		return auth_cli_usage_error("no such client");
	if (rv != 0)
		return auth_cli_fail(cli, "client rotate-secret", rv);
	auth_audit(cli->pg, "client_secret_rotated", "client_id", id, NULL);
	auth_cli_print_secret(id, secret);
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

static int
auth_cli_user_create(struct auth_cli *cli)
{
	const char *tenant = auth_cli_opt(cli, "tenant"), *name = auth_cli_opt(cli, "name");
	char tid[AUTH_ID_MAX], uid[AUTH_ID_MAX];
	int rv;
	if (tenant == NULL || name == NULL)
		return auth_cli_usage_error("user create needs --tenant and --name");
	if ((rv = auth_admin_tenant(cli->pg, tenant, tid)) != 0 ||
	    (rv = auth_admin_user(cli->pg, tid, name, true, uid)) != 0)
		return auth_cli_fail(cli, "user create", rv);
	printf("{\"user_id\":\"%s\",\"tenant_id\":\"%s\"}\n", uid, tid);
	return 0;
}

static int
auth_cli_keys_rotate(struct auth_cli *cli)
{
	char kid[AUTH_ID_MAX] = "";
	int rv = auth_keys_rotate(cli->pg, &cli->cfg, kid);
	if (rv != 0)
		return auth_cli_fail(cli, "keys rotate", rv);
	auth_audit(cli->pg, "signing_key_rotated", "kid", kid, NULL);
	printf("{\"kid\":\"%s\"}\n", kid);
	return 0;
}

static int
auth_cli_seed_dev(struct auth_cli *cli)
{
	const char *out = auth_cli_opt(cli, "out");
	if (out == NULL)
		return auth_cli_usage_error("seed-dev needs --out FILE");
	if (auth_seed_dev(cli->pg, &cli->cfg, out) != 0)
		return 1;
	printf("dev credentials written to %s\n", out);
	return 0;
}

static const struct {
	const char *word1, *word2; /* word2 NULL: a one-word command */
	auth_cli_fn fn;
	const char *usage;
} auth_cli_cmds[] = {
	{ "client", "create", auth_cli_client_create,
	  "client create --tenant T --name N --scopes \"a b\" [--user U]" },
	{ "client", "list", auth_cli_client_list, "client list [--tenant T]" },
	{ "client", "disable", auth_cli_client_disable, "client disable CLIENT_ID" },
	{ "client", "rotate-secret", auth_cli_client_rotate, "client rotate-secret CLIENT_ID" },
	{ "user", "create", auth_cli_user_create, "user create --tenant T --name N" },
	{ "keys", "rotate", auth_cli_keys_rotate, "keys rotate" },
	{ "seed-dev", NULL, auth_cli_seed_dev, "seed-dev --out FILE" },
	{ NULL, NULL, NULL, NULL },
};

bool
auth_cli_is_command(int argc, char **argv)
{
	if (argc < 2)
		return false;
	for (size_t i = 0; auth_cli_cmds[i].word1 != NULL; i++)
		if (strcmp(argv[1], auth_cli_cmds[i].word1) == 0)
			return true;
	return false;
}

static void
auth_cli_stderr_sink(const char *line, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

int
auth_cli_main(int argc, char **argv)
{
	struct auth_cli cli = { 0 };
	char err[512] = "";
	size_t i;
	int status = 2;
	for (i = 0; auth_cli_cmds[i].word1 != NULL; i++) {
		const char *w2 = auth_cli_cmds[i].word2;
		if (strcmp(argv[1], auth_cli_cmds[i].word1) == 0 &&
		    (w2 == NULL || (argc > 2 && strcmp(argv[2], w2) == 0)))
			break;
	}
	if (auth_cli_cmds[i].fn == NULL) {
		fprintf(stderr, "usage:\n");
		for (i = 0; auth_cli_cmds[i].word1 != NULL; i++)
			fprintf(stderr, "  sb-auth %s\n", auth_cli_cmds[i].usage);
		return 2;
	}
	int skip = auth_cli_cmds[i].word2 ? 3 : 2;
	cli.argc = argc - skip;
	cli.argv = argv + skip;
	sb_log_init("auth", SB_LOG_WARN);
	sb_log_set_sink(auth_cli_stderr_sink, NULL);
	auth_audit_set_fd(STDERR_FILENO);
	if (sb_config_load(auth_config, &cli.cfg, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sb-auth: configuration error: %s\n", err);
		goto done;
	}
	status = 1;
	int rv = sb_pg_open(cli.cfg.common.database_url, auth_store_stmts, &cli.pg);
	if (rv != 0) {
		auth_cli_fail(&cli, "database", rv);
		goto done;
	}
	if ((rv = sb_migrate(cli.pg, "auth", auth_migrations, err, sizeof(err))) != 0) {
		fprintf(stderr, "sb-auth: migrations: %s\n", err[0] ? err : sb_strerror(rv));
		goto done;
	}
	status = auth_cli_cmds[i].fn(&cli);
done:
	sb_pg_close(cli.pg);
	sb_config_free(auth_config, &cli.cfg);
	return status;
}
