/* sb_pg_outbox.c: writing an outbox row inside a caller's transaction, and the checks the relay
 * makes on the tables it is given. */
#include "sb_pg_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_names.h"
#include "sb_pg.h"
#include "sb_util_hex.h"

/* sb_pg_outbox_ident tells whether s[0..n) is a lower-case SQL identifier. */
static int
sb_pg_outbox_ident(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

int
sb_pg_outbox_table_valid(const char *s)
{
	if (s == NULL || strlen(s) > SB_PG_OUTBOX_TABLE_MAX)
		return 0;
	const char *dot = strchr(s, '.');
	if (dot == NULL)
		return 0;
	return sb_pg_outbox_ident(s, (size_t)(dot - s)) &&
	       sb_pg_outbox_ident(dot + 1, strlen(dot + 1));
}

int
sb_pg_outbox_table_list(const char *list, char (*out)[SB_PG_OUTBOX_TABLE_MAX + 1], int max)
{
	int n = 0;
	const char *p = list;

	if (list == NULL)
		return SB_EINVAL;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (n >= max || len == 0 || len > SB_PG_OUTBOX_TABLE_MAX)
			return SB_EINVAL;
		memcpy(out[n], p, len);
		out[n][len] = '\0';
		if (!sb_pg_outbox_table_valid(out[n]))
			return SB_EINVAL;
		for (int i = 0; i < n; i++)
			if (strcmp(out[i], out[n]) == 0)
				return SB_EINVAL;
		n++;
		if (end == NULL)
			return n;
		p = end + 1;
	}
}

int
sb_pg_outbox_insert(struct sb_pg *pg, const char *table, struct sb_pg_outbox_event *ev)
{
	char sql[SB_PG_OUTBOX_TABLE_MAX + 256];
	struct sb_uuid u;
	PGresult *res = NULL;
	char *hex = NULL;
	int ret;

	if (!sb_pg_outbox_table_valid(table) || ev == NULL || ev->aggregate_type == NULL ||
	    ev->aggregate_id == NULL || ev->event_type == NULL || ev->topic == NULL ||
	    ev->source == NULL || (ev->payload == NULL && ev->payload_len > 0))
		return SB_EINVAL;
	if ((ret = sb_uuid_v7(&u)) != 0)
		return ret;
	sb_uuid_format(&u, ev->event_id);
	if ((hex = malloc(ev->payload_len * 2 + 1)) == NULL)
		return SB_ENOMEM;
	sb_hex_encode(ev->payload, ev->payload_len, hex);
	hex[ev->payload_len * 2] = '\0';
	snprintf(sql, sizeof(sql),
	         "INSERT INTO %s (" SB_PG_OUTBOX_INSERT_COLUMNS ") VALUES ($1, $2::uuid, $3::uuid, "
	         "$4, $5, $6, $7, decode($8, 'hex'), $9)",
	         table);
	const char *params[] = { ev->aggregate_type, ev->aggregate_id, ev->event_id, ev->event_type,
		                 ev->topic,          ev->source,       ev->subject,  hex,
		                 ev->traceparent };
	ret = sb_pg_exec_params(pg, sql, 9, params, &res);
	free(hex);
	if (ret != 0)
		return ret;
	PQclear(res);
	if ((ret = sb_pg_exec_params(pg, "NOTIFY " SB_PG_OUTBOX_CHANNEL, 0, NULL, &res)) != 0)
		return ret;
	PQclear(res);
	return 0;
}

int
sb_pg_outbox_check(struct sb_pg *pg, const char *table)
{
	char schema[SB_PG_OUTBOX_TABLE_MAX + 1];
	PGresult *res = NULL;
	int ret;

	if (!sb_pg_outbox_table_valid(table))
		return SB_EINVAL;
	snprintf(schema, sizeof(schema), "%s", table);
	*strchr(schema, '.') = '\0';
	const char *params[] = { schema, strchr(table, '.') + 1 };
	ret = sb_pg_exec_params(
	    pg,
	    "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND "
	    "table_name = $2 AND column_name = ANY('{id,aggregate_type,aggregate_id,shard,event_id,"
	    "event_type,topic,source,subject,payload,traceparent,created_at,attempts,last_error,"
	    "relayed_at}'::text[])",
	    2, params, &res);
	if (ret != 0)
		return ret;
	int n = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return n == SB_PG_OUTBOX_NCOLUMNS ? 0 : SB_ENOTFOUND;
}
