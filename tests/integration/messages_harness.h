/* messages_harness.h: what the messages_*_test.c integration tests share. Runs the built
 * sb-messages on free loopback ports against SB_TEST_PG_DSN, calls its RPCs with a principal
 * (messages.Send in batches, as the gateway does), and reads the database directly to check
 * what was written. Included by one test file each (static functions only). */
#ifndef MESSAGES_HARNESS_H
#define MESSAGES_HARNESS_H

#include <arpa/inet.h>

#include "it_port.h"
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "events/messages_events.pb-c.h"
#include "messages.pb-c.h"
#include "sb_rpc.h"
#include "sb_util_uuid.h"

struct h_svc {
	pid_t pid;
	int rpc_port, ops_port;
	struct sb_rpc_client *cli;
	PGconn *db;
};

static void
h_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t
h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
h_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL)
		fail_msg("%s unset: run under tests/lib/with-stack.sh (ctest does)", name);
	return v;
}

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
	char bin[512], log[512], dsn[512], rpc[64], ops[16];
	const char *build = getenv("SB_BUILD_ROOT") ? getenv("SB_BUILD_ROOT") : "build";
	snprintf(bin, sizeof(bin), "%s/bin/sb-messages", build);
	snprintf(log, sizeof(log), "%s/messages.log", h_env("SB_TEST_TMP"));
	snprintf(dsn, sizeof(dsn), "%s", h_env("SB_TEST_PG_DSN"));
	if (access(bin, X_OK) != 0)
		fail_msg("%s not built (cmake --build <dir> --target sb-messages)", bin);
	h->rpc_port = it_free_port();
	h->ops_port = it_free_port();
	snprintf(rpc, sizeof(rpc), "tcp://127.0.0.1:%d", h->rpc_port);
	snprintf(ops, sizeof(ops), "%d", h->ops_port);
	h->pid = fork();
	if (h->pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		(void)f;
		dup2(STDOUT_FILENO, STDERR_FILENO);
		setenv("DATABASE_URL", dsn, 1);
		setenv("SB_RPC_URL", rpc, 1);
		setenv("SB_OPS_PORT", ops, 1);
		setenv("SB_LOG_LEVEL", getenv("H_LOG_LEVEL") ? getenv("H_LOG_LEVEL") : "warn", 1);
		setenv("SB_SHUTDOWN_GRACE_MS", "3000", 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	assert_true(h->pid > 0);
	assert_int_equal(sb_rpc_client_open(rpc, &h->cli), 0);
	/* Sends travel in batches, as from the gateway (SB_RPC_BATCH_IN_FLIGHT): the concurrent
	 * and outage tests then exercise a batch's calls each getting their own answer. */
	static const char *const batched[] = { "messages.Send", NULL };
	assert_int_equal(sb_rpc_client_batch(h->cli, batched, 2), 0);
	int64_t until = h_now_ms() + 20000;
	for (;;) {
		Sb__Rpc__HealthRequest req = SB__RPC__HEALTH_REQUEST__INIT;
		struct sb_rpc_result res;
		struct sb_rpc_meta meta = { .timeout_ms = 1000 };
		assert_int_equal(sb_rpc_call(h->cli, "messages.Health", &req.base,
		                             &sb__rpc__health_response__descriptor, &meta, &res),
		                 0);
		int code = res.code;
		sb_rpc_result_free(&res);
		if (code == SB__RPC__CODE__OK)
			break;
		int st;
		if (waitpid(h->pid, &st, WNOHANG) == h->pid)
			fail_msg("sb-messages exited at start (see %s)", log);
		if (h_now_ms() > until)
			fail_msg("sb-messages did not answer Health within 20 s");
		h_sleep_ms(100);
	}
	h->db = PQconnectdb(dsn);
	assert_int_equal(PQstatus(h->db), CONNECTION_OK);
}

static void
h_stop(struct h_svc *h)
{
	if (h->db != NULL)
		PQfinish(h->db);
	h->db = NULL;
	sb_rpc_client_free(h->cli);
	h->cli = NULL;
	if (h->pid <= 0)
		return;
	kill(h->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 100; i++) {
		if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
			h->pid = 0;
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			return;
		}
		h_sleep_ms(50);
	}
	kill(h->pid, SIGKILL);
	waitpid(h->pid, &st, 0);
	h->pid = 0;
	fail_msg("sb-messages did not stop within 5 s of SIGTERM");
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
