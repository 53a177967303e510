/* sb_migrate.h: versioned SQL migrations, applied at start under an advisory lock.
 *
 * A service's migrations are the files services/<svc>/migrations/NNN_name.sql, embedded by
 * cmake/sb.cmake into `const struct sb_migration <svc>_migrations[]` (ended by a zeroed row).
 * sb_migrate brings the service's schema up to date:
 *   - it takes a session advisory lock derived from the schema name, so replicas starting
 *     together run one after the other (the second finds everything applied and does nothing);
 *   - it creates the schema and <schema>.schema_migrations(version, name, checksum, applied_at)
 *     if missing;
 *   - it refuses to start when the table is malformed (versions not strictly increasing), when
 *     an applied migration's SHA-256 differs from the embedded file (the error names the file),
 *     or when a missing migration is older than one already applied;
 *   - it applies each missing migration in order, each in its own transaction together with
 *     its schema_migrations row, with search_path set to the schema (then public), and logs it.
 * A migration file must not contain its own BEGIN/COMMIT. Applied versions unknown to this
 * binary (a newer release ran) are logged as a warning and left alone. */
#ifndef SB_MIGRATE_H
#define SB_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

struct sb_pg;

struct sb_migration {
	int version;      /* > 0, strictly increasing along the table; 0 ends the table */
	const char *name; /* file name, e.g. "001_init.sql" */
	const char *sql;  /* the file's text */
};

/* sb_migrate applies the missing migrations of migs to schema (a lower-case SQL identifier)
 * over pg, which stays owned by the caller. It may wait for another replica holding the lock
 * (up to two minutes). Returns 0, or an error with a message in err (size n): SB_EINVAL for a
 * bad table or schema name, SB_EEXIST for a changed or out-of-order migration, SB_EUNAVAIL when
 * the database is unreachable, SB_ETIMEDOUT when the lock was not obtained, or the mapped SQL
 * error of a failing migration (the failed one is rolled back, earlier ones stay applied). */
int sb_migrate(struct sb_pg *pg, const char *schema, const struct sb_migration *migs, char *err,
               size_t n);

/* Pure helpers (sb_migrate_check.c). */

/* sb_migrate_validate checks a table: each row has a name and SQL and versions are > 0 and
 * strictly increasing. Returns 0 or SB_EINVAL with the offending file named in err. */
int sb_migrate_validate(const struct sb_migration *migs, char *err, size_t n);
/* sb_migrate_checksum writes the lower-case hex SHA-256 of sql (65 bytes with the NUL) to
 * out. Returns 0 or SB_EIO. */
int sb_migrate_checksum(const char *sql, char out[65]);
/* sb_migrate_valid_schema tells whether s is usable as a schema name: [a-z_][a-z0-9_]{0,62}. */
int sb_migrate_valid_schema(const char *s);
/* sb_migrate_lock_key returns the advisory lock key of schema (a stable 64-bit hash). */
int64_t sb_migrate_lock_key(const char *schema);

#endif
