/* commit.c: the group commit. One transaction per batch of queued sends, in a fixed number of
 * statements whatever the batch size, sent as two pipelines (two round trips): BEGIN, lock the
 * conversations involved (in a fixed order), find sends already stored (same id, or same sender
 * and idempotency key), check membership; then, with seqs assigned here in queue order, insert
 * every message, advance each conversation's last_seq, insert every outbox row, NOTIFY,
 * COMMIT. */
#include "messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_names.h"
#include "sb_span.h"
#include "sb_log.h"
#include "sb_util_time.h"

#define MSG_PENDING (-1)

struct msg_lock {
	const char *tenant;
	char id[SB_UUID_STR_LEN + 1];
	int64_t seq;
	const char *last_msg; /* id of the newest message of this batch, or NULL */
};

struct msg_batch {
	struct sb_pg *pg;
	struct msg_send_item **items;
	size_t n;
	struct msg_lock *locks;
	size_t n_locks;
	int *follow; /* index of an earlier send of the batch this one repeats, or -1 */
	bool *member;
};

static void
msg_answer(struct msg_send_item *it, int code, const char *msg)
{
	it->code = code;
	it->error = msg;
}

static struct msg_lock *
msg_batch_lock(struct msg_batch *bt, const char *tenant, const char *conv)
{
	for (size_t i = 0; i < bt->n_locks; i++)
		if (strcmp(bt->locks[i].id, conv) == 0 && strcmp(bt->locks[i].tenant, tenant) == 0)
			return &bt->locks[i];
	return NULL;
}

typedef const char *(*msg_field_fn)(const struct msg_send_item *it);

/* msg_batch_array appends one element per send (or per new send) to b, left open for
 * msg_params_end: f selects the value. */
static int
msg_batch_array(const struct msg_batch *bt, msg_field_fn f, bool fresh_only, struct sb_buf *b)
{
	for (size_t i = 0; i < bt->n; i++) {
		const struct msg_send_item *it = bt->items[i];
		if (fresh_only && (it->code != MSG_PENDING || bt->follow[i] >= 0))
			continue;
		if (msg_arr_add(b, f(it)) != 0)
			return SB_ENOMEM;
	}
	return 0;
}

static const char *
f_tenant(const struct msg_send_item *it)
{
	return it->tenant;
}
static const char *
f_id(const struct msg_send_item *it)
{
	return it->id;
}
static const char *
f_conv(const struct msg_send_item *it)
{
	return it->conv;
}
static const char *
f_sender(const struct msg_send_item *it)
{
	return it->sender;
}
static const char *
f_content(const struct msg_send_item *it)
{
	return it->content;
}
static const char *
f_ctype(const struct msg_send_item *it)
{
	return it->content_type;
}
static const char *
f_meta(const struct msg_send_item *it)
{
	return it->metadata_json;
}
static const char *
f_idem(const struct msg_send_item *it)
{
	return it->idem_key;
}

static const char *
f_attach(const struct msg_send_item *it)
{
	return it->attachments;
}

static const msg_field_fn msg_fields_lookup[] = { f_tenant, f_id, f_sender, f_idem };
static const msg_field_fn msg_fields_members[] = { f_tenant, f_conv, f_sender };
static const msg_field_fn msg_fields_insert[] = { f_tenant,  f_id,    f_conv, NULL,   f_sender,
	                                          f_content, f_ctype, f_meta, f_idem, f_attach };

/* msg_batch_params fills mp with one array per field (a NULL field is the seq column), of
 * every send or only of the new ones. */
static int
msg_batch_params(const struct msg_batch *bt, const msg_field_fn *fields, int nf, bool fresh_only,
                 struct msg_params *mp)
{
	int rv = 0;
	for (int i = 0; i < nf && rv == 0; i++) {
		if (fields[i] != NULL) {
			rv = msg_batch_array(bt, fields[i], fresh_only, &mp->a[i]);
		} else {
			for (size_t k = 0; k < bt->n && rv == 0; k++)
				if (bt->items[k]->code == MSG_PENDING && bt->follow[k] < 0)
					rv = msg_arr_addll(&mp->a[i], bt->items[k]->seq);
		}
	}
	return rv != 0 ? rv : msg_params_end(mp, nf);
}

/* msg_batch_locks records the locked conversations (b_lock's rows) with their last seq. */
static void
msg_batch_locks(struct msg_batch *bt, const PGresult *res)
{
	bt->n_locks = 0;
	for (int r = 0; r < PQntuples(res) && (size_t)r < bt->n; r++) {
		struct msg_lock *l = &bt->locks[bt->n_locks++];
		/* point the tenant at an item's string so it outlives res */
		l->tenant = NULL;
		for (size_t i = 0; i < bt->n && l->tenant == NULL; i++)
			if (strcmp(bt->items[i]->tenant, PQgetvalue(res, r, 0)) == 0)
				l->tenant = bt->items[i]->tenant;
		snprintf(l->id, sizeof(l->id), "%s", PQgetvalue(res, r, 1));
		l->seq = msg_col_ll(res, r, 2);
		l->last_msg = NULL;
	}
}

/* msg_batch_existing answers sends already stored (b_existing's rows). */
static void
msg_batch_existing(struct msg_batch *bt, const PGresult *res)
{
	for (int r = 0; r < PQntuples(res); r++) {
		long long o = msg_col_ll(res, r, 0);
		if (o < 1 || (size_t)o > bt->n || bt->items[o - 1]->code != MSG_PENDING)
			continue;
		struct msg_send_item *it = bt->items[o - 1];
		if (strcmp(PQgetvalue(res, r, 4), it->sender) != 0) {
			msg_answer(it, SB__RPC__CODE__ALREADY_EXISTS,
			           "message id already used by another sender");
			continue;
		}
		msg_answer(it, SB__RPC__CODE__OK, NULL);
		it->duplicate = true;
		snprintf(it->out_id, sizeof(it->out_id), "%s", PQgetvalue(res, r, 1));
		snprintf(it->out_conv, sizeof(it->out_conv), "%s", PQgetvalue(res, r, 2));
		it->seq = msg_col_ll(res, r, 3);
		it->created_ms = msg_col_ll(res, r, 5);
	}
}

/* msg_batch_members records which sends come from a member (b_members's rows). */
static void
msg_batch_members(struct msg_batch *bt, const PGresult *res)
{
	for (int r = 0; r < PQntuples(res); r++) {
		long long o = msg_col_ll(res, r, 0);
		if (o >= 1 && (size_t)o <= bt->n)
			bt->member[o - 1] = true;
	}
}

/* msg_batch_assign decides each pending send: refused, a repeat of an earlier one of the
 * batch, or new with the next seq of its conversation. Returns how many are new. */
static size_t
msg_batch_assign(struct msg_batch *bt, int64_t now_ms)
{
	size_t fresh = 0;
	for (size_t i = 0; i < bt->n; i++) {
		struct msg_send_item *it = bt->items[i];
		if (it->code != MSG_PENDING)
			continue;
		for (size_t j = 0; j < i && bt->follow[i] < 0; j++) {
			const struct msg_send_item *p = bt->items[j];
			if (p->code != MSG_PENDING || bt->follow[j] >= 0 ||
			    strcmp(p->tenant, it->tenant) != 0)
				continue;
			if (strcmp(p->id, it->id) == 0 ||
			    (it->idem_key && p->idem_key && strcmp(p->sender, it->sender) == 0 &&
			     strcmp(p->idem_key, it->idem_key) == 0))
				bt->follow[i] = (int)j;
		}
		if (bt->follow[i] >= 0)
			continue;
		struct msg_lock *l = msg_batch_lock(bt, it->tenant, it->conv);
		if (l == NULL) {
			msg_answer(it, SB__RPC__CODE__NOT_FOUND, "no such conversation");
			continue;
		}
		if (!bt->member[i]) {
			msg_answer(it, SB__RPC__CODE__PERMISSION_DENIED,
			           "not a member of this conversation");
			continue;
		}
		it->seq = ++l->seq;
		it->created_ms = now_ms;
		l->last_msg = it->id;
		snprintf(it->out_id, sizeof(it->out_id), "%s", it->id);
		snprintf(it->out_conv, sizeof(it->out_conv), "%s", it->conv);
		fresh++;
	}
	return fresh;
}

/* msg_batch_update_params: b_update's arrays, one element per conversation written to. */
static int
msg_batch_update_params(const struct msg_batch *bt, struct msg_params *mp)
{
	struct sb_buf *a = mp->a;
	for (size_t i = 0; i < bt->n_locks; i++) {
		const struct msg_lock *l = &bt->locks[i];
		if (l->last_msg == NULL)
			continue;
		if (msg_arr_add(&a[0], l->tenant) || msg_arr_add(&a[1], l->id) ||
		    msg_arr_addll(&a[2], l->seq) || msg_arr_add(&a[3], l->last_msg))
			return SB_ENOMEM;
	}
	return msg_params_end(mp, 4);
}

/* msg_batch_events_params: the outbox rows, one MessageCreated per new message. */
static int
msg_batch_events_params(const struct msg_batch *bt, size_t fresh, struct msg_params *mp)
{
	struct msg_event *ev = calloc(fresh, sizeof(*ev));
	Sb__Events__MessageCreated *mc = calloc(fresh, sizeof(*mc));
	int rv = SB_ENOMEM;
	size_t k = 0;
	if (ev == NULL || mc == NULL)
		goto done;
	for (size_t i = 0; i < bt->n; i++) {
		struct msg_send_item *it = bt->items[i];
		if (it->code != MSG_PENDING || bt->follow[i] >= 0)
			continue;
		sb__events__message_created__init(&mc[k]);
		mc[k].message_id = (char *)it->id;
		mc[k].conversation_id = (char *)it->conv;
		mc[k].tenant_id = (char *)it->tenant;
		mc[k].sender_id = (char *)it->sender;
		mc[k].seq = it->seq;
		mc[k].content = (char *)it->content;
		mc[k].content_type = (char *)it->content_type;
		mc[k].metadata_json = (char *)it->metadata_json;
		mc[k].created_at_ms = it->created_ms;
		mc[k].attachments = it->att;
		mc[k].n_attachments = it->n_att;
		ev[k] = (struct msg_event){ it->tenant, it->conv,    MSG_EV_CREATED,
			                    it->id,     &mc[k].base, it->traceparent };
		k++;
	}
	rv = msg_events_params(ev, k, mp);
done:
	free(ev);
	free(mc);
	return rv;
}

/* msg_batch_try runs the transaction once, in two round trips to PostgreSQL: a pipeline that
 * begins, locks the conversations and reads what the decisions need; then, once seqs are
 * assigned here, a pipeline that writes everything and commits. Returns 0 (pending sends stay
 * MSG_PENDING: they were committed), SB_EEXIST when another writer inserted one of the ids
 * meanwhile (the insert failed, nothing was written: run it again), or the error of the
 * failing step (rolled back). */
static int
msg_batch_try(struct msg_batch *bt)
{
	static const msg_field_fn lockf[] = { f_tenant, f_conv };
	struct msg_params lk = { 0 }, ex = { 0 }, mb = { 0 }, ins = { 0 }, up = { 0 }, evp = { 0 };
	PGresult *rl = NULL, *re = NULL, *rm = NULL;
	int rv;
	if ((rv = msg_batch_params(bt, lockf, 2, false, &lk)) != 0 ||
	    (rv = msg_batch_params(bt, msg_fields_lookup, 4, false, &ex)) != 0 ||
	    (rv = msg_batch_params(bt, msg_fields_members, 3, false, &mb)) != 0)
		goto done;
	const struct sb_pg_step read[] = {
		{ .sql = "BEGIN" },
		{ .name = "b_lock", .nparams = 2, .params = lk.p, .res = &rl },
		{ .name = "b_existing", .nparams = 4, .params = ex.p, .res = &re },
		{ .name = "b_members", .nparams = 3, .params = mb.p, .res = &rm },
	};
	if ((rv = sb_pg_exec_pipeline(bt->pg, read, 4)) != 0)
		goto done;
	msg_batch_locks(bt, rl);
	msg_batch_existing(bt, re);
	msg_batch_members(bt, rm);
	int64_t now_ms = sb_time_now_ms(); /* created_at of every message of the batch */
	size_t fresh = msg_batch_assign(bt, now_ms);
	if (fresh == 0) {
		rv = sb_pg_commit(bt->pg);
		goto done;
	}
	char now[32];
	snprintf(now, sizeof(now), "%lld", (long long)now_ms);
	if ((rv = msg_batch_params(bt, msg_fields_insert, 10, true, &ins)) != 0 ||
	    (rv = msg_batch_update_params(bt, &up)) != 0 ||
	    (rv = msg_batch_events_params(bt, fresh, &evp)) != 0)
		goto done;
	ins.p[10] = now;
	const struct sb_pg_step write[] = {
		{ .name = "b_insert", .nparams = 11, .params = ins.p },
		{ .name = "b_update", .nparams = 4, .params = up.p },
		{ .name = "outbox_insert", .nparams = 7, .params = evp.p },
		{ .sql = "NOTIFY " SB_PG_OUTBOX_CHANNEL },
		{ .sql = "COMMIT" },
	};
	rv = sb_pg_exec_pipeline(bt->pg, write, 5);
done:
	PQclear(rl);
	PQclear(re);
	PQclear(rm);
	msg_params_free(&lk);
	msg_params_free(&ex);
	msg_params_free(&mb);
	msg_params_free(&ins);
	msg_params_free(&up);
	msg_params_free(&evp);
	if (rv != 0)
		sb_pg_rollback(bt->pg);
	return rv;
}

static void
msg_batch_reset(struct msg_batch *bt)
{
	for (size_t i = 0; i < bt->n; i++) {
		bt->items[i]->code = MSG_PENDING;
		bt->items[i]->error = NULL;
		bt->items[i]->duplicate = false;
		bt->items[i]->retry_after_ms = 0;
		bt->follow[i] = -1;
		bt->member[i] = false;
	}
}

void
msg_commit_batch(struct sb_pg *pg, struct msg_send_item **items, size_t n)
{
	struct msg_batch bt = { .pg = pg, .items = items, .n = n };
	struct sb_span span;
	struct timespec t0;
	clock_gettime(CLOCK_REALTIME, &t0); /* the spans' start */
	bt.locks = calloc(n, sizeof(*bt.locks));
	bt.follow = calloc(n, sizeof(*bt.follow));
	bt.member = calloc(n, sizeof(*bt.member));
	int rv = SB_ENOMEM;
	if (bt.locks != NULL && bt.follow != NULL && bt.member != NULL) {
		for (int attempt = 0; attempt < 3; attempt++) {
			msg_batch_reset(&bt);
			if ((rv = msg_batch_try(&bt)) != SB_EEXIST && rv != SB_EBUSY)
				break;
		}
	}
	if (rv == 0) {
		for (size_t i = 0; i < n; i++) {
			struct msg_send_item *it = items[i];
			if (bt.follow[i] >= 0) {
				const struct msg_send_item *p = items[bt.follow[i]];
				if (strcmp(p->sender, it->sender) != 0) {
					msg_answer(it, SB__RPC__CODE__ALREADY_EXISTS,
					           "message id already used by another sender");
					continue;
				}
				msg_answer(it, SB__RPC__CODE__OK, NULL);
				it->duplicate = true;
				memcpy(it->out_id, p->out_id, sizeof(it->out_id));
				memcpy(it->out_conv, p->out_conv, sizeof(it->out_conv));
				it->seq = p->seq;
				it->created_ms = p->created_ms;
			} else if (it->code == MSG_PENDING) {
				msg_answer(it, SB__RPC__CODE__OK, NULL);
			}
		}
	} else if (n > 1 && rv != SB_EUNAVAIL && rv != SB_ETIMEDOUT) {
		/* One bad send must not fail the others: commit them one at a time. */
		sb_log_kv(SB_LOG_WARN, "batch failed; committing its sends one by one", "error",
		          sb_pg_errmsg(pg), NULL);
		for (size_t i = 0; i < n; i++)
			msg_commit_batch(pg, &items[i], 1);
	} else {
		int64_t ra = sb_pg_retry_after_ms(pg);
		bool unavail = rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT || rv == SB_EBUSY;
		if (!unavail)
			sb_log_kv(SB_LOG_ERROR, "send failed", "error", sb_pg_errmsg(pg),
			          "sqlstate", sb_pg_sqlstate(pg), NULL);
		for (size_t i = 0; i < n; i++) {
			msg_answer(items[i],
			           unavail ? SB__RPC__CODE__UNAVAILABLE : SB__RPC__CODE__INTERNAL,
			           unavail ? "database unavailable; retry later"
			                   : "internal error");
			items[i]->retry_after_ms = unavail ? (ra < 500 ? 500 : ra) : 0;
		}
	}
	/* One span per send, in the send's own trace, all covering the batch's transaction. */
	for (size_t i = 0; i < n && sb_span_exporting(); i++) {
		sb_span_start_tp(&span, "group commit", SB_SPAN_INTERNAL, items[i]->traceparent);
		span.start_ns = (int64_t)t0.tv_sec * 1000000000LL + t0.tv_nsec;
		sb_span_attr_int(&span, "messages.batch_size", (int64_t)n);
		if (items[i]->code != SB__RPC__CODE__OK)
			sb_span_fail(&span, items[i]->error ? items[i]->error : "refused");
		sb_span_end(&span);
	}
	free(bt.locks);
	free(bt.follow);
	free(bt.member);
}
