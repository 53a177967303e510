/* conversations.c: create, get and list conversations. */
#include "messages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_hex.h"
#include "sb_util_time.h"

#define MSG_LIST_DEFAULT 50
#define MSG_LIST_MAX     100
#define MSG_OFFSET_MAX   100000

/* msg_conv_member_set validates ids, adds the caller, and drops repeats. Returns the number of
 * distinct members written to out (room for n + 1), or -1 after adding violations. */
static int
msg_conv_member_set(struct sb_rpc_call *call, const char *field, char **ids, size_t n,
                    const char *caller, const char **out)
{
	size_t k = 0;
	bool ok = true;
	if (caller != NULL)
		out[k++] = caller;
	for (size_t i = 0; i < n; i++) {
		char f[48];
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (!msg_valid_user_id(call, f, ids[i])) {
			ok = false;
			continue;
		}
		size_t j = 0;
		while (j < k && strcmp(out[j], ids[i]) != 0)
			j++;
		if (j == k)
			out[k++] = ids[i];
	}
	return ok ? (int)k : -1;
}

/* msg_conv_members_array writes ids as a PostgreSQL array literal into b. */
static int
msg_conv_members_array(struct sb_buf *b, const char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (msg_arr_add(b, ids[i]) != 0)
			return SB_ENOMEM;
	return msg_arr_end(b);
}

int
msg_rpc_create_conversation(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__CreateConversationRequest *req = reqp;
	Sb__Messages__Conversation *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;

	bool ok = true;
	bool direct = strcmp(req->kind, "direct") == 0;
	if (!direct && strcmp(req->kind, "group") != 0) {
		sb_rpc_call_violation(call, "kind",
		                      req->kind[0] ? "not one of direct, group"
		                                   : "required (direct or group)");
		ok = false;
	}
	size_t tlen = strlen(req->title);
	if (tlen > MSG_TITLE_MAX || !msg_utf8_valid(req->title, tlen)) {
		sb_rpc_call_violation(call, "title", "longer than 256 bytes or not valid UTF-8");
		ok = false;
	}
	if (req->n_member_ids > MSG_MEMBERS_MAX) {
		sb_rpc_call_violation(call, "member_ids", "more than 1000 members");
		return msg_invalid(call);
	}
	const char **ids = sb_rpc_call_alloc(call, sizeof(*ids) * (req->n_member_ids + 1));
	if (ids == NULL)
		return SB_ENOMEM;
	int n = msg_conv_member_set(call, "member_ids", req->member_ids, req->n_member_ids,
	                            who.user, ids);
	if (n < 0)
		ok = false;
	else if (direct && n != 2) {
		sb_rpc_call_violation(call, "member_ids",
		                      "a direct conversation has exactly 2 members (the caller and "
		                      "one other user)");
		ok = false;
	}
	if (!ok)
		return msg_invalid(call);

	struct sb_uuid u;
	char id[SB_UUID_STR_LEN + 1];
	if (sb_uuid_v7(&u) != 0)
		return SB_EIO;
	sb_uuid_format(&u, id);

	struct sb_pg *pg = msg_pg(call);
	struct sb_buf arr = SB_BUF_INIT;
	PGresult *res = NULL;
	int rv = msg_conv_members_array(&arr, ids, (size_t)n);
	if (rv != 0)
		goto fail;
	const char *p_conv[] = { who.tenant, id, req->kind, req->title, who.user };
	const char *p_members[] = { who.tenant, id, arr.data };
	if ((rv = sb_pg_begin(pg)) != 0 ||
	    (rv = sb_pg_exec_prepared(pg, "conv_insert", 5, p_conv, &res)) != 0)
		goto fail;
	int64_t created_ms = msg_col_ll(res, 0, 0);
	PQclear(res);
	res = NULL;
	if ((rv = sb_pg_exec_prepared(pg, "members_insert", 3, p_members, NULL)) != 0)
		goto fail;
	Sb__Events__ConversationCreated ev = SB__EVENTS__CONVERSATION_CREATED__INIT;
	ev.conversation_id = id;
	ev.tenant_id = (char *)who.tenant;
	ev.kind = req->kind;
	ev.title = req->title;
	ev.n_member_ids = (size_t)n;
	ev.member_ids = (char **)ids;
	ev.created_by = (char *)who.user;
	ev.created_at_ms = created_ms;
	struct msg_event row = { who.tenant, id,       MSG_EV_CONV_CREATED,
		                 NULL,       &ev.base, sb_rpc_call_traceparent(call) };
	if ((rv = msg_events_insert(pg, &row, 1)) != 0 || (rv = sb_pg_commit(pg)) != 0)
		goto fail;
	sb_buf_free(&arr);
	if ((rv = msg_conv_load(call, pg, &who, id, resp)) != 0)
		return msg_db_error(call, pg, rv);
	return SB__RPC__CODE__OK;
fail:
	PQclear(res);
	sb_buf_free(&arr);
	return msg_db_abort(call, pg, rv);
}

int
msg_rpc_get_conversation(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__GetConversationRequest *req = reqp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	if (!msg_valid_uuid(call, "id", req->id))
		return msg_invalid(call);
	if ((code = msg_access(call, &who, req->id, NULL)) != SB__RPC__CODE__OK)
		return code;
	int rv = msg_conv_load(call, msg_pg(call), &who, req->id, respp);
	if (rv == SB_ENOTFOUND)
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no such conversation");
	return rv == 0 ? SB__RPC__CODE__OK : msg_db_error(call, msg_pg(call), rv);
}

/* The cursor is opaque to clients: the hex of "<activity_us>/<conversation id>" of the last
 * item of the previous page. */
static char *
msg_cursor_encode(struct sb_rpc_call *call, const char *activity_us, const char *id)
{
	char plain[96];
	int n = snprintf(plain, sizeof(plain), "%s/%s", activity_us, id);
	if (n < 0 || (size_t)n >= sizeof(plain))
		return NULL;
	char *out = sb_rpc_call_alloc(call, (size_t)n * 2 + 1);
	if (out == NULL)
		return NULL;
	sb_hex_encode((const uint8_t *)plain, (size_t)n, out);
	out[2 * n] = '\0';
	return out;
}

static int
msg_cursor_decode(const char *cur, char *activity, size_t na, char *id, size_t nid)
{
	size_t n = strlen(cur);
	char plain[96];
	if (n == 0 || n % 2 != 0 || n / 2 >= sizeof(plain))
		return SB_EINVAL;
	if (sb_hex_decode(cur, n / 2, SB_HEX_LOWER, (uint8_t *)plain) != 0)
		return SB_EINVAL; /* lowercase only, as msg_cursor_encode writes it */
	plain[n / 2] = '\0';
	char *slash = strchr(plain, '/');
	if (slash == NULL || (size_t)(slash - plain) >= na || strlen(slash + 1) >= nid)
		return SB_EINVAL;
	*slash = '\0';
	char *end;
	long long v = strtoll(plain, &end, 10);
	struct sb_uuid u;
	if (plain[0] == '\0' || *end != '\0' || v < 0 || sb_uuid_parse(slash + 1, &u) != 0)
		return SB_EINVAL;
	snprintf(activity, na, "%lld", v);
	snprintf(id, nid, "%s", slash + 1);
	return 0;
}

int
msg_rpc_list_conversations(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__ListConversationsRequest *req = reqp;
	Sb__Messages__ListConversationsResponse *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_limit(call, "limit", req->limit, MSG_LIST_MAX);
	char act[32], cid[SB_UUID_STR_LEN + 1];
	bool have_cursor = req->cursor[0] != '\0';
	if (have_cursor && msg_cursor_decode(req->cursor, act, sizeof(act), cid, sizeof(cid))) {
		sb_rpc_call_violation(call, "cursor", "not a cursor returned by this API");
		ok = false;
	}
	if (req->offset < 0 || req->offset > MSG_OFFSET_MAX) {
		sb_rpc_call_violation(call, "offset", "out of range (0..100000)");
		ok = false;
	} else if (req->offset > 0 && have_cursor) {
		sb_rpc_call_violation(call, "offset", "not allowed together with cursor");
		ok = false;
	}
	if (!ok)
		return msg_invalid(call);
	int limit = req->limit ? req->limit : MSG_LIST_DEFAULT;
	char lim[16], off[16];
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	snprintf(off, sizeof(off), "%d", (int)req->offset);
	const char *params[] = {
		who.tenant, who.user, have_cursor ? act : NULL, have_cursor ? cid : NULL, lim, off
	};
	struct sb_pg *pg = msg_pg(call);
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "conv_list", 6, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	int n = PQntuples(res);
	resp->has_more = n > limit;
	if (n > limit)
		n = limit;
	resp->items = sb_rpc_call_alloc(call, sizeof(*resp->items) * (size_t)(n ? n : 1));
	if (resp->items == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		Sb__Messages__Conversation *c = sb_rpc_call_alloc(call, sizeof(*c));
		if (c == NULL)
			goto nomem;
		sb__messages__conversation__init(c);
		if (msg_conv_row(call, res, i, c) != 0)
			goto nomem;
		resp->items[resp->n_items++] = c;
	}
	if (resp->has_more && n > 0) {
		resp->next_cursor =
		    msg_cursor_encode(call, PQgetvalue(res, n - 1, 6), PQgetvalue(res, n - 1, 0));
		if (resp->next_cursor == NULL)
			goto nomem;
	}
	PQclear(res);
	return SB__RPC__CODE__OK;
nomem:
	PQclear(res);
	return SB_ENOMEM;
}
