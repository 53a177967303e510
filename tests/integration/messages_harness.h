/* messages_harness.h: what the messages_*_test.c integration tests share. Runs the built
 * sb-messages on free loopback ports against SB_TEST_PG_DSN, calls its RPCs with a principal
 * (messages.Send in batches, as the gateway does), and reads the database directly to check
 * what was written. Included by one test file each (static functions only). */
#ifndef MESSAGES_HARNESS_H
#define MESSAGES_HARNESS_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "events/messages_events.pb-c.h"
#include "it.h"
#include "messages.pb-c.h"
#include "sb_rpc.h"
#include "sb_util_uuid.h"

struct h_svc {
	struct it_proc p;
	struct sb_rpc_client *cli; /* p.cli, with messages.Send batched as the gateway does */
	int ops_port;
	PGconn *db;
};

/* h_principal fills p for user of tenant. */
static void
h_principal(Sb__Rpc__Principal *p, const char *tenant, const char *user)
{
	sb__rpc__principal__init(p);
	p->tenant_id = (char *)tenant;
	p->user_id = (char *)user;
}

/* h_call calls method as user of tenant (user NULL: no principal); res freed by the caller. */
static void
h_call(struct h_svc *h, const char *method, const void *req, const ProtobufCMessageDescriptor *rd,
       const char *tenant, const char *user, struct sb_rpc_result *res)
{
	Sb__Rpc__Principal p;
	h_principal(&p, tenant, user);
	struct sb_rpc_meta meta = { .principal = user ? &p : NULL, .timeout_ms = 10000 };
	assert_int_equal(sb_rpc_call(h->cli, method, req, rd, &meta, res), 0);
}

static void
h_start(struct h_svc *h)
{
	char lvl[64];
	snprintf(lvl, sizeof(lvl), "SB_LOG_LEVEL=%s",
	         getenv("H_LOG_LEVEL") ? getenv("H_LOG_LEVEL") : "warn");
	const char *const env[] = { lvl, "SB_SHUTDOWN_GRACE_MS=3000", NULL };
	if (it_spawn(&h->p, "messages", "messages", env) != 0)
		fail_msg("cannot start sb-messages");
	h->ops_port = h->p.ops_port;
	assert_int_equal(sb_rpc_client_open(h->p.rpc_url, &h->p.cli), 0);
	h->cli = h->p.cli;
	/* Sends travel in batches, as from the gateway (SB_RPC_BATCH_IN_FLIGHT): the concurrent
	 * and outage tests then exercise a batch's calls each getting their own answer. */
	static const char *const batched[] = { "messages.Send", NULL };
	assert_int_equal(sb_rpc_client_batch(h->cli, batched, 2), 0);
	if (it_wait_health(&h->p, "messages.Health", 20000) != 0)
		fail_msg("sb-messages did not become healthy (see %s)", h->p.log);
	h->db = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	assert_int_equal(PQstatus(h->db), CONNECTION_OK);
}

/* h_stop closes the database connection, stops sb-messages with SIGTERM and requires a clean
 * exit within 5 s. */
static void
h_stop(struct h_svc *h)
{
	if (h->db != NULL)
		PQfinish(h->db);
	h->db = NULL;
	h->cli = NULL;
	if (h->p.pid <= 0)
		return;
	int st = it_stop(&h->p, SIGTERM, 5000);
	if (st < 0)
		fail_msg("sb-messages did not stop within 5 s of SIGTERM");
	assert_int_equal(st, 0);
}

/* h_sql runs a query that returns one value and returns it as a number. */
static long long
h_sql_ll(struct h_svc *h, const char *sql, const char *p1, const char *p2)
{
	const char *params[] = { p1, p2 };
	int n = p2 ? 2 : p1 ? 1 : 0;
	if (PQstatus(h->db) != CONNECTION_OK)
		PQreset(h->db);
	PGresult *r = PQexecParams(h->db, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("query failed: %s: %s", sql, PQerrorMessage(h->db));
	long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* h_create makes a conversation as user of tenant with the other members; id gets its id. */
static void
h_create(struct h_svc *h, const char *tenant, const char *user, const char *kind, char **members,
         size_t n, char id[SB_UUID_STR_LEN + 1])
{
	Sb__Messages__CreateConversationRequest req =
	    SB__MESSAGES__CREATE_CONVERSATION_REQUEST__INIT;
	req.kind = (char *)kind;
	req.title = "test";
	req.member_ids = members;
	req.n_member_ids = n;
	struct sb_rpc_result res;
	h_call(h, "messages.CreateConversation", &req.base, &sb__messages__conversation__descriptor,
	       tenant, user, &res);
	if (res.code != SB__RPC__CODE__OK)
		fail_msg("CreateConversation: %s %s", sb_rpc_code_name(res.code), res.message);
	snprintf(id, SB_UUID_STR_LEN + 1, "%s", ((Sb__Messages__Conversation *)res.resp)->id);
	sb_rpc_result_free(&res);
}

/* h_send sends content with a fresh or given id; returns the code, *seq the seq. */
static int
h_send(struct h_svc *h, const char *tenant, const char *user, const char *conv, const char *id,
       const char *idem, const char *content, int64_t *seq)
{
	char fresh[SB_UUID_STR_LEN + 1];
	if (id == NULL) {
		struct sb_uuid u;
		sb_uuid_v4(&u);
		sb_uuid_format(&u, fresh);
		id = fresh;
	}
	Sb__Messages__SendRequest req = SB__MESSAGES__SEND_REQUEST__INIT;
	req.id = (char *)id;
	req.conversation_id = (char *)conv;
	req.content = (char *)content;
	req.idempotency_key = idem ? (char *)idem : "";
	struct sb_rpc_result res;
	h_call(h, "messages.Send", &req.base, &sb__messages__send_response__descriptor, tenant,
	       user, &res);
	int code = res.code;
	if (code == SB__RPC__CODE__OK && seq != NULL)
		*seq = ((Sb__Messages__SendResponse *)res.resp)->seq;
	sb_rpc_result_free(&res);
	return code;
}

#endif
