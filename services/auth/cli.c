/* cli.c: sb-auth's administrative subcommands, run with the service's own configuration
 * (DATABASE_URL and the SB_AUTH_* variables). Each applies the migrations first, so they work
 * on a fresh database. Secrets are printed once, on stdout; logs go to stderr. */
#include "auth.h"

#include <errno.h>
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

/* auth_cli_slurp reads the file path ("-": stdin) whole into a NUL-terminated string the caller
 * frees, or returns NULL with errno set. */
static char *
auth_cli_slurp(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t n = 0, cap = 0;
	char *buf = NULL;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap * 2 + 8192);
			if (nb == NULL)
				break;
			buf = nb;
			cap = cap * 2 + 8192;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	bool failed = ferror(f) || buf == NULL || cap - n < 1;
	if (f != stdin)
		fclose(f);
	if (failed) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* auth_cli_user_list checks the --users text (one user name or id a line, Unix line ends, the
 * last newline optional, no empty line) and drops its last newline. Returns the number of
 * users, or 0 after saying what is wrong. */
static size_t
auth_cli_user_list(char *text, const char *path)
{
	size_t n = strlen(text), line = 1;
	if (n > 0 && text[n - 1] == '\n')
		text[--n] = '\0';
	for (size_t i = 0; i <= n; i++) {
		if (text[i] == '\r') {
			fprintf(stderr, "sb-auth: --users %s: line %zu has a carriage return\n",
			        path, line);
			return 0;
		}
		if (text[i] != '\n' && text[i] != '\0')
			continue;
		if (i == 0 || text[i - 1] == '\n') {
			fprintf(stderr, "sb-auth: --users %s: line %zu is empty\n", path, line);
			return 0;
		}
		line += text[i] == '\n';
	}
	return line;
}

/* auth_cli_resolve finds the tenant named tenant and each user of list (newline-separated
 * names or ids of that tenant), in order, in one query. Returns 0 with *out (columns: the
 * line's value, user id or NULL, tenant id; one row a line), SB_ENOTFOUND (no such tenant)
 * or a database error. */
static int
auth_cli_resolve(struct auth_cli *cli, const char *tenant, const char *list, PGresult **out)
{
	const char *p[] = { tenant, list };
	int rv = sb_pg_exec_params(
	    cli->pg,
	    "SELECT l.v, coalesce(un.id, ui.id)::text, t.id::text FROM auth.tenants t "
	    "CROSS JOIN unnest(string_to_array($2, E'\\n')) WITH ORDINALITY AS l(v, ord) "
	    "LEFT JOIN auth.users un ON un.tenant_id = t.id AND un.name = l.v "
	    "LEFT JOIN auth.users ui ON ui.tenant_id = t.id AND ui.id = CASE WHEN l.v ~* "
	    "'^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN l.v::uuid END "
	    "WHERE t.name = $1 ORDER BY l.ord",
	    2, p, out);
	if (rv == 0 && PQntuples(*out) == 0) {
		PQclear(*out);
		*out = NULL;
		rv = SB_ENOTFOUND;
	}
	return rv;
}

/* token issue: access tokens for users of a tenant, signed with the active key and carrying
 * the claims of the token endpoint's (auth_claims_new), client_id AUTH_CLI_CLIENT_ID. For
 * operators and load tests: one key read, then one signature per user, one token per line. */
static int
auth_cli_token_issue(struct auth_cli *cli)
{
	const char *tenant = auth_cli_opt(cli, "tenant"), *scopes = auth_cli_opt(cli, "scopes");
	const char *ttl_arg = auth_cli_opt(cli, "ttl"), *user = auth_cli_opt(cli, "user");
	const char *users = auth_cli_opt(cli, "users");
	struct auth_grant g = { 0 };
	struct sb_jwt_key *key = NULL;
	PGresult *r = NULL;
	char *list = NULL, *end = NULL, count[24], ttl_txt[24];
	size_t n = 1;
	int rv, status = 2;

	if (tenant == NULL || scopes == NULL || ttl_arg == NULL ||
	    (user == NULL) == (users == NULL))
		return auth_cli_usage_error("token issue needs --tenant, --scopes, --ttl and one "
		                            "of --user or --users");
	errno = 0;
	long long ttl = strtoll(ttl_arg, &end, 10);
	if (errno != 0 || end == ttl_arg || *end != '\0' || ttl < 1 ||
	    ttl > cli->cfg.access_ttl_s) {
		fprintf(stderr,
		        "sb-auth: --ttl: seconds from 1 to SB_AUTH_ACCESS_TTL_S (%lld): a longer "
		        "token could outlive its signing key's stay in the JWKS after a rotation\n",
		        cli->cfg.access_ttl_s);
		return 2;
	}
	if (auth_scope_grant(scopes, NULL, NULL, g.scope, sizeof(g.scope)) != 0)
		return auth_cli_usage_error("--scopes: scopes are printable ASCII without quotes, "
		                            "separated by spaces");
	if (auth_scope_has(g.scope, AUTH_SCOPE_ISSUE) || auth_scope_has(g.scope, AUTH_SCOPE_ADMIN))
		return auth_cli_usage_error("--scopes: " AUTH_SCOPE_ISSUE " and " AUTH_SCOPE_ADMIN
		                            " are never given to user tokens");
	if (user != NULL) {
		if (user[0] == '\0' || strchr(user, '\n') != NULL)
			return auth_cli_usage_error("--user: a user name or id");
		list = strdup(user);
	} else if ((list = auth_cli_slurp(users)) == NULL) {
		fprintf(stderr, "sb-auth: --users %s: %s\n", users, strerror(errno));
		return 2;
	} else if ((n = auth_cli_user_list(list, users)) == 0) {
		goto done;
	}
	status = 1;
	if (list == NULL) {
		auth_cli_fail(cli, "token issue", SB_ENOMEM);
		goto done;
	}
	if ((rv = auth_cli_resolve(cli, tenant, list, &r)) != 0) {
		if (rv == SB_ENOTFOUND)
			fprintf(stderr, "sb-auth: --tenant: no tenant named %s\n", tenant);
		else
			auth_cli_fail(cli, "token issue", rv);
		goto done;
	}
	if ((size_t)PQntuples(r) != n) {
		fprintf(stderr, "sb-auth: token issue: %zu users asked, %d found\n", n,
		        PQntuples(r));
		goto done;
	}
	size_t missing = 0;
	for (int i = 0; i < PQntuples(r); i++)
		if (PQgetisnull(r, i, 1) && missing++ < 5)
			fprintf(stderr, "sb-auth: %s%.0d: no user %s in tenant %s\n",
			        users ? "--users line " : "--user", users ? i + 1 : 0,
			        PQgetvalue(r, i, 0), tenant);
	if (missing > 0) {
		fprintf(stderr, "sb-auth: token issue: %zu unknown users; nothing issued\n",
		        missing);
		goto done;
	}
	if ((rv = auth_keys_ensure(cli->pg, &cli->cfg)) != 0 ||
	    (rv = auth_keys_load_active(cli->pg, &cli->cfg, &key)) != 0) {
		auth_cli_fail(cli, "signing key", rv);
		goto done;
	}
	snprintf(g.tenant_id, sizeof(g.tenant_id), "%s", PQgetvalue(r, 0, 2));
	snprintf(g.client_id, sizeof(g.client_id), "%s", AUTH_CLI_CLIENT_ID);
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *claims = NULL;
		char *tok = NULL;
		snprintf(g.user_id, sizeof(g.user_id), "%s", PQgetvalue(r, i, 1));
		memcpy(g.sub, g.user_id, sizeof(g.sub));
		if ((rv = auth_claims_new(&cli->cfg, &g, ttl, &claims)) == 0)
			rv = sb_jwt_sign(key, claims, "at+jwt", &tok);
		json_decref(claims);
		if (rv != 0) {
			auth_cli_fail(cli, "sign", rv);
			goto done;
		}
		fputs(tok, stdout);
		fputc('\n', stdout);
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sb-auth: token issue: cannot write the tokens: %s\n",
		        strerror(errno));
		goto done;
	}
	snprintf(count, sizeof(count), "%d", PQntuples(r));
	snprintf(ttl_txt, sizeof(ttl_txt), "%lld", ttl);
	auth_audit(cli->pg, "tokens_issued_cli", "tenant_id", g.tenant_id, "count", count, "ttl_s",
	           ttl_txt, "scope", g.scope, NULL);
	status = 0;
done:
	sb_jwt_key_free(key);
	PQclear(r);
	free(list);
	return status;
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
	{ "token", "issue", auth_cli_token_issue,
	  "token issue --tenant T --scopes \"a b\" --ttl SECONDS (--user U | --users FILE)" },
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
