/* sb_pg_util.c: pure helpers of sb_pg: SQLSTATE classification. */
#include "sb_pg.h"
#include "sb_err.h"

#include <string.h>

/* Exact SQLSTATEs with a class of their own; checked before the two-character classes. */
static const struct {
	const char *state;
	enum sb_pg_class cls;
} sb_pg_states[] = {
	{ "57P01", SB_PG_CONNECTION },       /* admin_shutdown */
	{ "57P02", SB_PG_CONNECTION },       /* crash_shutdown */
	{ "57P03", SB_PG_CONNECTION },       /* cannot_connect_now */
	{ "23505", SB_PG_UNIQUE },           /* unique_violation */
	{ "40001", SB_PG_RETRY },            /* serialization_failure */
	{ "40P01", SB_PG_RETRY },            /* deadlock_detected */
	{ "57014", SB_PG_CANCELED },         /* query_canceled */
	{ "42P01", SB_PG_UNDEFINED_OBJECT }, /* undefined_table */
	{ "42883", SB_PG_UNDEFINED_OBJECT }, /* undefined_function */
	{ "26000", SB_PG_UNDEFINED_OBJECT }, /* invalid_sql_statement_name */
};

/* Whole classes, by their first two characters. */
static const struct {
	const char *prefix;
	enum sb_pg_class cls;
} sb_pg_classes[] = {
	{ "08", SB_PG_CONNECTION }, /* connection_exception */
	{ "23", SB_PG_CONSTRAINT }, /* integrity_constraint_violation */
	{ "22", SB_PG_BAD_INPUT },  /* data_exception */
};

static const int sb_pg_class_errs[] = {
	[SB_PG_OTHER] = SB_EIO,        [SB_PG_CONNECTION] = SB_EUNAVAIL,
	[SB_PG_UNIQUE] = SB_EEXIST,    [SB_PG_CONSTRAINT] = SB_EINVAL,
	[SB_PG_RETRY] = SB_EBUSY,      [SB_PG_CANCELED] = SB_ETIMEDOUT,
	[SB_PG_BAD_INPUT] = SB_EINVAL, [SB_PG_UNDEFINED_OBJECT] = SB_EIO,
};

enum sb_pg_class
sb_pg_sqlstate_class(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return SB_PG_OTHER;
	for (size_t i = 0; i < sizeof(sb_pg_states) / sizeof(sb_pg_states[0]); i++) {
		if (strcmp(sqlstate, sb_pg_states[i].state) == 0)
			return sb_pg_states[i].cls;
	}
	for (size_t i = 0; i < sizeof(sb_pg_classes) / sizeof(sb_pg_classes[0]); i++) {
		if (strncmp(sqlstate, sb_pg_classes[i].prefix, 2) == 0)
			return sb_pg_classes[i].cls;
	}
	return SB_PG_OTHER;
}

int
sb_pg_sqlstate_err(const char *sqlstate)
{
	return sb_pg_class_errs[sb_pg_sqlstate_class(sqlstate)];
}

int
sb_pg_array_add(struct sb_buf *b, const char *s)
{
	if (sb_buf_puts(b, b->len == 0 ? "{\"" : ",\"") != 0)
		return SB_ENOMEM;
	for (const char *p = s;;) {
		size_t run = strcspn(p, "\"\\");
		if (sb_buf_append(b, p, run) != 0)
			return SB_ENOMEM;
		p += run;
		if (*p == '\0')
			break;
		char esc[2] = { '\\', *p++ };
		if (sb_buf_append(b, esc, 2) != 0)
			return SB_ENOMEM;
	}
	return sb_buf_puts(b, "\"") == 0 ? 0 : SB_ENOMEM;
}

int
sb_pg_array_end(struct sb_buf *b)
{
	return sb_buf_puts(b, b->len == 0 ? "{}" : "}") == 0 ? 0 : SB_ENOMEM;
}
