/* seed.c: `sb-auth seed-dev --out FILE`: the development tenant "dev", users alice and bob and
 * clients admin, alice and bob, with their credentials written to FILE (mode 0600). Idempotent:
 * credentials already in FILE that still authenticate are kept; otherwise the client is
 * created, or its secret rotated. */
#include "auth.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_err.h"

struct auth_seed_role {
	const char *role;   /* key in the file, and the user's name when user is set */
	const char *scopes; /* the client's allowed scopes */
	bool user;          /* the client acts as the user named role */
};

static const struct auth_seed_role auth_seed_roles[] = {
	/* admin holds every scope of the platform's services (docs/api/openapi.yaml lists them) */
	{ "admin",
	  AUTH_SCOPE_ISSUE " " AUTH_SCOPE_ADMIN
	                   " messages:read messages:write files:read files:write"
	                   " ingest:write pubsub:produce pubsub:consume pubsub:admin registry:read"
	                   " registry:write registry:admin cdc:admin",
	  false },
	{ "alice", "messages:read messages:write files:read files:write", true },
	{ "bob", "messages:read messages:write files:read files:write", true },
	{ NULL, NULL, false },
};

/* auth_seed_reuse tells whether the credentials in old still authenticate. */
static bool
auth_seed_reuse(struct sb_pg *pg, const json_t *old, const char *user_id)
{
	const char *id = json_string_value(json_object_get(old, "client_id"));
	const char *secret = json_string_value(json_object_get(old, "client_secret"));
	struct auth_client c;
	char hash[256];
	if (id == NULL || secret == NULL ||
	    auth_store_client_get(pg, id, &c, hash, sizeof(hash)) != 0)
		return false;
	return c.enabled && strcmp(c.user_id, user_id) == 0 && auth_secret_verify(secret, hash);
}

/* auth_seed_client makes sure the client of role exists and writes its credentials to out. */
static int
auth_seed_client(struct sb_pg *pg, const struct auth_cfg *cfg, const char *tenant,
                 const struct auth_seed_role *r, const json_t *old, json_t *out)
{
	char user[AUTH_ID_MAX] = "", id[AUTH_ID_MAX], secret[128], name[64];
	int rv;
	if (r->user && (rv = auth_admin_user(pg, tenant, r->role, true, user)) != 0)
		return rv;
	json_t *o = json_object();
	if (o == NULL)
		return SB_ENOMEM;
	json_object_set_new(out, r->role, o);
	if (user[0] != '\0')
		json_object_set_new(o, "user_id", json_string(user));
	json_object_set_new(o, "tenant_id", json_string(tenant));
	if (old != NULL && auth_seed_reuse(pg, old, user)) {
		json_object_set(o, "client_id", json_object_get(old, "client_id"));
		json_object_set(o, "client_secret", json_object_get(old, "client_secret"));
		return 0;
	}
	snprintf(name, sizeof(name), "dev-%s", r->role);
	rv = auth_admin_client_create(pg, cfg, tenant, name, r->scopes, user, id, secret,
	                              sizeof(secret));
	if (rv == SB_EINVAL || rv == SB_EEXIST) {
		/* the client exists but its secret is lost: set it up again with a new secret */
		const char *p[] = { tenant, name, r->scopes, user };
		PGresult *res = NULL;
		rv = sb_pg_exec_params(pg,
		                       "UPDATE auth.clients SET scopes = $3, user_id = NULLIF($4, "
		                       "'')::uuid, enabled = true WHERE tenant_id = $1::uuid AND "
		                       "name = $2 RETURNING client_id",
		                       4, p, &res);
		if (rv == 0 && PQntuples(res) == 1)
			snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
		else if (rv == 0)
			rv = SB_ENOTFOUND;
		PQclear(res);
		if (rv == 0)
			rv = auth_admin_client_rotate(pg, cfg, id, secret, sizeof(secret));
	}
	if (rv != 0)
		return rv;
	json_object_set_new(o, "client_id", json_string(id));
	json_object_set_new(o, "client_secret", json_string(secret));
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

static int
auth_seed_write(const char *path, const json_t *doc)
{
	char tmp[4096];
	int rv = SB_EIO;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return SB_EINVAL;
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		return SB_ENOMEM;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0 && fchmod(fd, 0600) == 0) {
		size_t n = strlen(text), off = 0;
		while (off < n) {
			ssize_t w = write(fd, text + off, n - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off == n && write(fd, "\n", 1) == 1 && fsync(fd) == 0)
			rv = 0;
	}
	if (fd >= 0)
		close(fd);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = SB_EIO;
	if (rv != 0)
		unlink(tmp);
	explicit_bzero(text, strlen(text));
	free(text);
	return rv;
}

int
auth_seed_dev(struct sb_pg *pg, const struct auth_cfg *cfg, const char *path)
{
	char tenant[AUTH_ID_MAX];
	json_t *old = json_load_file(path, 0, NULL);
	json_t *doc = json_object();
	int rv = doc ? auth_admin_tenant(pg, "dev", tenant) : SB_ENOMEM;
	for (size_t i = 0; rv == 0 && auth_seed_roles[i].role != NULL; i++)
		rv = auth_seed_client(pg, cfg, tenant, &auth_seed_roles[i],
		                      old ? json_object_get(old, auth_seed_roles[i].role) : NULL,
		                      doc);
	if (rv == 0)
		rv = auth_seed_write(path, doc);
	if (rv != 0)
		fprintf(stderr, "sb-auth seed-dev: %s%s%s\n", sb_strerror(rv),
		        sb_pg_errmsg(pg)[0] ? ": " : "", sb_pg_errmsg(pg));
	json_decref(old);
	json_decref(doc);
	return rv;
}
