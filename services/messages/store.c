/* store.c: the prepared SQL of the service and row ⇄ struct helpers. */
#include "messages.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_pg_outbox.h"
#include "sb_util_time.h"

#define MSG_MS(x) "(extract(epoch from " x ") * 1000)::bigint"

/* The columns msg_conv_row reads, in order; mm is the caller's member row, lm the last
 * message. */
#define MSG_CONV_SELECT                                                                            \
	"SELECT c.id::text, c.kind, c.title, c.created_by, " MSG_MS(                               \
	    "c.created_at") ", c.last_seq, c.activity_us, mm.last_read_seq, lm.id::text, lm.seq, " \
	                    "lm.sender_id, left(lm.content, 140), lm.content_type, " MSG_MS(       \
	                        "lm.created_at") " "
#define MSG_CONV_JOIN_LAST                                                                         \
	"LEFT JOIN messages lm ON lm.tenant_id = c.tenant_id AND lm.id = c.last_message_id "

#define MSG_MESSAGE_SELECT                                                                         \
	"SELECT id::text, conversation_id::text, seq, sender_id, content, content_type, "          \
	"metadata::text, " MSG_MS(                                                                 \
	    "created_at") ", "                                                                     \
	                  "coalesce(array_to_string(attachments, ','), '') FROM messages "

const struct sb_pg_stmt msg_stmts[] = {
	{ "access",
	  "SELECT c.last_seq, m.user_id FROM conversations c LEFT JOIN members m ON "
	  "m.tenant_id = c.tenant_id AND m.conversation_id = c.id AND m.user_id = $3 "
	  "WHERE c.tenant_id = $1 AND c.id = $2::uuid",
	  3 },
	{ "access_lock",
	  "SELECT c.last_seq, m.user_id, c.kind FROM conversations c LEFT JOIN members m ON "
	  "m.tenant_id = c.tenant_id AND m.conversation_id = c.id AND m.user_id = $3 "
	  "WHERE c.tenant_id = $1 AND c.id = $2::uuid FOR UPDATE OF c",
	  3 },
	{ "conv_get",
	  MSG_CONV_SELECT "FROM conversations c LEFT JOIN members mm ON mm.tenant_id = c.tenant_id "
	                  "AND mm.conversation_id = c.id AND mm.user_id = $3 " MSG_CONV_JOIN_LAST
	                  "WHERE c.tenant_id = $1 AND c.id = $2::uuid",
	  3 },
	{ "conv_members",
	  "SELECT user_id, last_read_seq, " MSG_MS(
	      "joined_at") " FROM members WHERE tenant_id = $1 "
	                   "AND conversation_id = $2::uuid "
	                   "ORDER BY joined_at, user_id",
	  2 },
	/* $3/$4: the cursor's (activity_us, id), NULL for the first page. */
	{ "conv_list",
	  MSG_CONV_SELECT
	  "FROM members mm JOIN conversations c ON c.tenant_id = mm.tenant_id AND c.id = "
	  "mm.conversation_id " MSG_CONV_JOIN_LAST "WHERE mm.tenant_id = $1 AND mm.user_id = $2 "
	  "AND ($3::bigint IS NULL OR (c.activity_us, c.id) < ($3::bigint, $4::uuid)) "
	  "ORDER BY c.activity_us DESC, c.id DESC LIMIT $5 OFFSET $6",
	  6 },
	{ "conv_insert",
	  "INSERT INTO conversations (tenant_id, id, kind, title, created_by, activity_us) "
	  "VALUES ($1, $2::uuid, $3, $4, $5, (extract(epoch from clock_timestamp()) * "
	  "1000000)::bigint) RETURNING " MSG_MS("created_at"),
	  5 },
	{ "members_insert",
	  "INSERT INTO members (tenant_id, conversation_id, user_id) SELECT $1, $2::uuid, u "
	  "FROM unnest($3::text[]) WITH ORDINALITY AS k(u, o) ORDER BY o "
	  "ON CONFLICT DO NOTHING RETURNING user_id",
	  3 },
	{ "member_delete",
	  "DELETE FROM members WHERE tenant_id = $1 AND conversation_id = $2::uuid AND user_id = "
	  "$3 "
	  "RETURNING user_id",
	  3 },
	{ "read_update",
	  "UPDATE members SET last_read_seq = $4::bigint WHERE tenant_id = $1 AND conversation_id "
	  "= "
	  "$2::uuid AND user_id = $3 AND last_read_seq < $4::bigint RETURNING last_read_seq",
	  4 },
	{ "read_marker",
	  "SELECT last_read_seq FROM members WHERE tenant_id = $1 AND conversation_id = $2::uuid "
	  "AND user_id = $3",
	  3 },
	{ "history_asc",
	  MSG_MESSAGE_SELECT "WHERE tenant_id = $1 AND conversation_id = $2::uuid AND seq > "
	                     "$3::bigint AND seq < $4::bigint ORDER BY seq LIMIT $5",
	  5 },
	{ "history_desc",
	  MSG_MESSAGE_SELECT "WHERE tenant_id = $1 AND conversation_id = $2::uuid AND seq > "
	                     "$3::bigint AND seq < $4::bigint ORDER BY seq DESC LIMIT $5",
	  5 },
	{ "memberships",
	  "SELECT conversation_id::text FROM members WHERE tenant_id = $1 AND user_id = $2 "
	  "ORDER BY conversation_id",
	  2 },
	{ "outbox_insert",
	  "INSERT INTO outbox (" SB_PG_OUTBOX_INSERT_COLUMNS
	  ") SELECT 'conversation', a, e, t, '" MSG_TOPIC
	  "', s, sub, decode(p, 'hex'), tp FROM unnest($1::uuid[], $2::uuid[], $3::text[], "
	  "$4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS "
	  "k(a, e, t, s, sub, p, tp, o) ORDER BY o",
	  7 },
	/* Group commit (commit.c). Conversations are locked in a fixed order. */
	{ "b_lock",
	  "SELECT c.tenant_id, c.id::text, c.last_seq FROM conversations c WHERE (c.tenant_id, "
	  "c.id) "
	  "IN (SELECT t, i FROM unnest($1::text[], $2::uuid[]) AS k(t, i)) ORDER BY c.tenant_id, "
	  "c.id FOR UPDATE",
	  2 },
	/* Two index lookups (primary key; idempotency index) joined by UNION: a single join on
	 * "id = … OR idempotency_key = …" cannot use either index and scans every message. */
	{ "b_existing",
	  "WITH k AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[]) WITH "
	  "ORDINALITY AS k(t, i, s, ik, o)) "
	  "SELECT k.o, m.id::text, m.conversation_id::text, m.seq, m.sender_id, " MSG_MS(
	      "m.created_at") " FROM k JOIN messages m ON m.tenant_id = k.t AND m.id = k.i "
	                      "UNION "
	                      "SELECT k.o, m.id::text, m.conversation_id::text, m.seq, "
	                      "m.sender_id, " MSG_MS(
	                          "m.created_at") " FROM k JOIN messages m ON m.tenant_id = k.t "
	                                          "AND "
	                                          "m.sender_id = k.s AND m.idempotency_key = k.ik "
	                                          "WHERE k.ik IS NOT NULL",
	  4 },
	{ "b_members",
	  "SELECT k.o FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS "
	  "k(t, c, s, o) WHERE EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = k.t AND "
	  "m.conversation_id = k.c AND m.user_id = k.s)",
	  3 },
	{ "b_insert",
	  "INSERT INTO messages (tenant_id, id, conversation_id, seq, sender_id, content, "
	  "content_type, metadata, idempotency_key, attachments, created_at) SELECT t, i, c, s, "
	  "snd, ct, ty, md::jsonb, ik, string_to_array(att, ',')::uuid[], "
	  "to_timestamp($11::bigint / 1000.0) FROM unnest($1::text[], $2::uuid[], $3::uuid[], "
	  "$4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) "
	  "AS k(t, i, c, s, snd, ct, ty, md, ik, att)",
	  11 },
	/* messages.CanReadAttachment: $1 tenant, $2 file id, $3 user: a current member of a
	 * conversation with a message attaching the file */
	{ "attachment_reader",
	  "SELECT 1 FROM messages m JOIN members b ON b.tenant_id = m.tenant_id AND "
	  "b.conversation_id = m.conversation_id AND b.user_id = $3 WHERE m.tenant_id = $1 AND "
	  "m.attachments IS NOT NULL AND m.attachments @> ARRAY[$2::uuid] LIMIT 1",
	  3 },
	{ "b_update",
	  "UPDATE conversations c SET last_seq = k.s, last_message_id = k.m, activity_us = "
	  "(extract(epoch from clock_timestamp()) * 1000000)::bigint FROM unnest($1::text[], "
	  "$2::uuid[], $3::bigint[], $4::uuid[]) AS k(t, i, s, m) WHERE c.tenant_id = k.t AND "
	  "c.id = k.i",
	  4 },
	{ NULL, NULL, 0 },
};

int
msg_arr_add(struct sb_buf *b, const char *s)
{
	if (sb_buf_puts(b, b->len == 0 ? "{" : ",") != 0)
		return SB_ENOMEM;
	if (s == NULL)
		return sb_buf_puts(b, "NULL");
	if (sb_buf_reserve(b, strlen(s) * 2 + 2) != 0)
		return SB_ENOMEM;
	char *d = b->data + b->len;
	*d++ = '"';
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			*d++ = '\\';
		*d++ = *p;
	}
	*d++ = '"';
	*d = '\0';
	b->len = (size_t)(d - b->data);
	return 0;
}

int
msg_arr_addll(struct sb_buf *b, long long v)
{
	char s[32];
	snprintf(s, sizeof(s), "%lld", v);
	return msg_arr_add(b, s);
}

int
msg_arr_end(struct sb_buf *b)
{
	return sb_buf_puts(b, b->len == 0 ? "{}" : "}");
}

char *
msg_time_str(struct sb_rpc_call *call, int64_t ms)
{
	char s[SB_TIME_RFC3339_LEN + 1];
	if (sb_time_format_rfc3339(ms, s, sizeof(s)) != 0)
		s[0] = '\0';
	return sb_rpc_call_strdup(call, s);
}

char *
msg_col(struct sb_rpc_call *call, const PGresult *res, int r, int c)
{
	return sb_rpc_call_strdup(call, PQgetvalue(res, r, c));
}

int64_t
msg_col_ll(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

int
msg_conv_row(struct sb_rpc_call *call, const PGresult *res, int r, Sb__Messages__Conversation *conv)
{
	conv->id = msg_col(call, res, r, 0);
	conv->kind = msg_col(call, res, r, 1);
	conv->title = msg_col(call, res, r, 2);
	conv->created_by = msg_col(call, res, r, 3);
	conv->created_at = msg_time_str(call, msg_col_ll(res, r, 4));
	conv->last_seq = msg_col_ll(res, r, 5);
	conv->last_activity_at = msg_time_str(call, msg_col_ll(res, r, 6) / 1000);
	conv->last_read_seq = msg_col_ll(res, r, 7);
	conv->unread_count = PQgetisnull(res, r, 7) ? 0 : conv->last_seq - conv->last_read_seq;
	if (!PQgetisnull(res, r, 8)) {
		Sb__Messages__MessagePreview *p = sb_rpc_call_alloc(call, sizeof(*p));
		if (p == NULL)
			return SB_ENOMEM;
		sb__messages__message_preview__init(p);
		p->id = msg_col(call, res, r, 8);
		p->seq = msg_col_ll(res, r, 9);
		p->sender_id = msg_col(call, res, r, 10);
		p->content = msg_col(call, res, r, 11);
		p->content_type = msg_col(call, res, r, 12);
		p->created_at = msg_time_str(call, msg_col_ll(res, r, 13));
		conv->last_message = p;
	}
	return 0;
}

int
msg_conv_load(struct sb_rpc_call *call, struct sb_pg *pg, const struct msg_who *who,
              const char *conv_id, Sb__Messages__Conversation *conv)
{
	const char *params[] = { who->tenant, conv_id, who->user };
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "conv_get", 3, params, &res);
	if (rv != 0)
		return rv;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return SB_ENOTFOUND;
	}
	rv = msg_conv_row(call, res, 0, conv);
	PQclear(res);
	if (rv != 0)
		return rv;
	if ((rv = sb_pg_exec_prepared(pg, "conv_members", 2, params, &res)) != 0)
		return rv;
	int n = PQntuples(res);
	conv->members = sb_rpc_call_alloc(call, sizeof(*conv->members) * (size_t)(n ? n : 1));
	if (conv->members == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		Sb__Messages__Member *m = sb_rpc_call_alloc(call, sizeof(*m));
		if (m == NULL)
			goto nomem;
		sb__messages__member__init(m);
		m->user_id = msg_col(call, res, i, 0);
		m->last_read_seq = msg_col_ll(res, i, 1);
		m->joined_at = msg_time_str(call, msg_col_ll(res, i, 2));
		conv->members[conv->n_members++] = m;
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	return SB_ENOMEM;
}

int
msg_metadata_parse(struct sb_rpc_call *call, const char *json,
                   Sb__Messages__Message__MetadataEntry ***out, size_t *n)
{
	json_t *root = json_loads(json, 0, NULL);
	*n = 0;
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return SB_EINVAL;
	}
	size_t count = json_object_size(root);
	*out = sb_rpc_call_alloc(call, sizeof(**out) * (count ? count : 1));
	if (*out == NULL)
		goto nomem;
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		Sb__Messages__Message__MetadataEntry *e = sb_rpc_call_alloc(call, sizeof(*e));
		if (e == NULL)
			goto nomem;
		sb__messages__message__metadata_entry__init(e);
		e->key = sb_rpc_call_strdup(call, k);
		e->value = sb_rpc_call_strdup(call, json_is_string(v) ? json_string_value(v) : "");
		(*out)[(*n)++] = e;
	}
	json_decref(root);
	return 0;
nomem:
	json_decref(root);
	return SB_ENOMEM;
}
