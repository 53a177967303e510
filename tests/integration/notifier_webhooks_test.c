/* notifier_webhooks_test.c: webhooks of the real sb-notifier. A receiver in this process
 * (a small HTTP server thread) gets the events its tenant subscribed to, signed: it checks
 * Switchboard-Timestamp and Switchboard-Signature (HMAC-SHA256 over "<timestamp>.<body>"). A
 * receiver answering 500 gets SB_WEBHOOK_MAX_ATTEMPTS attempts, then the event lands in
 * sb.notifier.webhooks.v1.dlq with the error. With SB_WEBHOOK_ALLOW_PRIVATE=false, loopback and
 * private URLs are refused at registration, and a stored URL whose name resolves to loopback is
 * refused at connect time (DNS rebinding) and dead-lettered without any request. Against the
 * run's Apache Kafka broker, topics under this test's SB_KAFKA_TOPIC_PREFIX.
 * stack: pg,redis,kafka
 * labels: notifier
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "events/messages_events.pb-c.h"
#include "notifier.pb-c.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_rpc.h"

#include "notifier_harness.h"

#define CONV   "0b6c7e1a-2222-4a4a-8a8a-000000000002"
#define TENANT "t-hooks"
#define SECRET "s3cr3t-0123456789abcdef"

struct t_ctx {
	struct it_proc p; /* the notifier */
	char group[64];
	char topic[256], dlq[256]; /* sb.messages.v1 and the webhook DLQ, with the prefix */
	struct sb_kafka_producer *prod;
	PGconn *db;
	bool allow_private;
};
static struct t_ctx T;

/* t_start runs sb-notifier (webhook settings for the tests) and waits for its Health RPC. */
static void
t_start(void)
{
	const char *const env[] = { T.allow_private ? "SB_WEBHOOK_ALLOW_PRIVATE=true"
		                                    : "SB_WEBHOOK_ALLOW_PRIVATE=false",
		                    "SB_WEBHOOK_MAX_ATTEMPTS=3",
		                    "SB_WEBHOOK_BACKOFF_BASE_MS=200",
		                    "SB_WEBHOOK_BACKOFF_MAX_MS=1000",
		                    "SB_WEBHOOK_TIMEOUT_MS=2000",
		                    NULL };
	nh_start(&T.p, T.group, env);
}

/* t_stop sends SIGTERM and expects a clean exit within 10 s. */
static void
t_stop(void)
{
	nh_stop(&T.p);
}

/* --- the receiver ------------------------------------------------------------------------ */

#define R_MAX 32
struct r_req {
	char head[4096];
	char *body;
	int64_t at;
};
static struct {
	int fd, port;
	pthread_t th;
	atomic_int status;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct r_req reqs[R_MAX];
	int n;
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *
r_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&R.stop)) {
		int c = accept(R.fd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = { 2, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char buf[65536];
		size_t got = 0;
		char *eoh = NULL;
		long clen = -1;
		for (;;) {
			ssize_t r = recv(c, buf + got, sizeof(buf) - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = '\0';
			if (eoh == NULL && (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
				const char *cl = strcasestr(buf, "content-length:");
				clen = cl ? strtol(cl + 15, NULL, 10) : 0;
			}
			if (eoh != NULL && got >= (size_t)(eoh + 4 - buf) + (size_t)clen)
				break;
		}
		if (eoh != NULL) {
			pthread_mutex_lock(&R.mu);
			if (R.n < R_MAX) {
				struct r_req *q = &R.reqs[R.n++];
				size_t hl = (size_t)(eoh - buf);
				memcpy(q->head, buf,
				       hl < sizeof(q->head) - 1 ? hl : sizeof(q->head) - 1);
				q->body = strndup(eoh + 4, (size_t)clen);
				q->at = it_now_ms();
			}
			pthread_mutex_unlock(&R.mu);
			char resp[128];
			int n = snprintf(
			    resp, sizeof(resp),
			    "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			    atomic_load(&R.status));
			if (send(c, resp, (size_t)n, MSG_NOSIGNAL) < 0)
				break;
		}
		close(c);
	}
	return NULL;
}

static void
r_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	R.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(R.fd >= 0);
	assert_int_equal(bind(R.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(R.fd, 16), 0);
	getsockname(R.fd, (struct sockaddr *)&a, &len);
	R.port = ntohs(a.sin_port);
	struct timeval tv = { 0, 200000 };
	setsockopt(R.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	atomic_store(&R.status, 200);
	assert_int_equal(pthread_create(&R.th, NULL, r_main, NULL), 0);
}

/* r_count returns how many requests carried event id ce_id. */
static int
r_count(const char *ce_id)
{
	char h[128];
	int n = 0;
	snprintf(h, sizeof(h), "Switchboard-Event-Id: %s\r", ce_id);
	pthread_mutex_lock(&R.mu);
	for (int i = 0; i < R.n; i++)
		n += strstr(R.reqs[i].head, h) != NULL;
	pthread_mutex_unlock(&R.mu);
	return n;
}

static int
r_wait(const char *ce_id, int n, int ms)
{
	int64_t until = it_now_ms() + ms;
	while (r_count(ce_id) < n && it_now_ms() < until)
		it_sleep_ms(50);
	return r_count(ce_id);
}

/* r_header copies header name of request i to out. */
static void
r_header(int i, const char *name, char *out, size_t n)
{
	char key[64];
	snprintf(key, sizeof(key), "\r\n%s: ", name);
	const char *p = strstr(R.reqs[i].head, key);
	if (p == NULL)
		fail_msg("request %d has no %s header", i, name);
	p += strlen(key);
	size_t l = strcspn(p, "\r");
	snprintf(out, n, "%.*s", (int)(l < n ? l : n - 1), p);
}

/* --- helpers ----------------------------------------------------------------------------- */

static const Sb__Rpc__Principal *
t_principal(const char *tenant)
{
	static Sb__Rpc__Principal p;
	sb__rpc__principal__init(&p);
	p.user_id = "admin";
	p.tenant_id = (char *)tenant;
	return tenant ? &p : NULL;
}

static int
t_create(const char *tenant, const char *url, const char *secret, char **types, size_t ntypes,
         char *id_out, char *secret_out)
{
	Sb__Notifier__CreateWebhookRequest req = SB__NOTIFIER__CREATE_WEBHOOK_REQUEST__INIT;
	struct sb_rpc_result res;
	struct sb_rpc_meta meta = { .principal = t_principal(tenant), .timeout_ms = 5000 };
	req.url = (char *)url;
	req.secret = (char *)secret;
	req.event_types = types;
	req.n_event_types = ntypes;
	assert_int_equal(sb_rpc_call(T.p.cli, "notifier.CreateWebhook", &req.base,
	                             &sb__notifier__webhook__descriptor, &meta, &res),
	                 0);
	int code = res.code;
	if (code == SB__RPC__CODE__OK) {
		const Sb__Notifier__Webhook *w = (const void *)res.resp;
		assert_int_equal(strlen(w->id), 36);
		assert_string_equal(w->url, url);
		assert_int_equal(w->n_event_types, ntypes);
		assert_true(strlen(w->created_at) == 24 && w->created_at[23] == 'Z');
		if (id_out)
			strcpy(id_out, w->id);
		if (secret_out)
			strcpy(secret_out, w->secret);
	}
	sb_rpc_result_free(&res);
	return code;
}

static size_t
t_list(const char *tenant, int *code)
{
	Sb__Notifier__ListWebhooksRequest req = SB__NOTIFIER__LIST_WEBHOOKS_REQUEST__INIT;
	struct sb_rpc_result res;
	struct sb_rpc_meta meta = { .principal = t_principal(tenant), .timeout_ms = 5000 };
	assert_int_equal(sb_rpc_call(T.p.cli, "notifier.ListWebhooks", &req.base,
	                             &sb__notifier__list_webhooks_response__descriptor, &meta,
	                             &res),
	                 0);
	size_t n = 0;
	*code = res.code;
	if (res.code == SB__RPC__CODE__OK) {
		const Sb__Notifier__ListWebhooksResponse *l = (const void *)res.resp;
		n = l->n_items;
		for (size_t i = 0; i < n; i++)
			assert_string_equal(l->items[i]->secret, ""); /* never listed */
	}
	sb_rpc_result_free(&res);
	return n;
}

static int
t_delete(const char *tenant, const char *id)
{
	Sb__Notifier__DeleteWebhookRequest req = SB__NOTIFIER__DELETE_WEBHOOK_REQUEST__INIT;
	struct sb_rpc_result res;
	struct sb_rpc_meta meta = { .principal = t_principal(tenant), .timeout_ms = 5000 };
	req.id = (char *)id;
	assert_int_equal(sb_rpc_call(T.p.cli, "notifier.DeleteWebhook", &req.base,
	                             &sb__notifier__delete_webhook_response__descriptor, &meta,
	                             &res),
	                 0);
	int code = res.code;
	sb_rpc_result_free(&res);
	return code;
}

static void
t_msg_created(const char *ce_id, int64_t seq)
{
	Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
	uint8_t buf[1024];
	e.message_id = "7a000000-0000-4000-8000-000000000001";
	e.conversation_id = CONV;
	e.tenant_id = TENANT;
	e.sender_id = "alice";
	e.seq = seq;
	e.content = "hello";
	e.content_type = "text/plain";
	e.created_at_ms = 1700000000000LL;
	size_t n = protobuf_c_message_pack(&e.base, buf);
	struct sb_cloudevent ce = { .id = ce_id,
		                    .source = "/tenants/" TENANT,
		                    .type = "io.switchboard.message.created.v1" };
	assert_int_equal(
	    sb_kafka_produce(T.prod, T.topic, CONV, strlen(CONV), buf, n, &ce, NULL, NULL), 0);
	assert_int_equal(sb_kafka_flush(T.prod, 10000), 0);
}

/* t_dlq_find consumes the DLQ topic from the start and returns the JSON value of the record for
 * event ce_id (caller json_decref()s), or fails after ms. */
static json_t *
t_dlq_find(const char *ce_id, int ms)
{
	const char *const topics[] = { T.dlq, NULL };
	const char *const conf[] = { "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000",
		                     NULL };
	char base[64], group[256];
	struct sb_kafka_consumer *c = NULL;
	json_t *found = NULL;
	snprintf(base, sizeof(base), "it-dlq-%d-%lld", (int)getpid(), (long long)it_now_ms());
	it_kafka_name(base, group, sizeof(group));
	assert_int_equal(
	    sb_kafka_consumer_new(it_env("SB_TEST_KAFKA_BROKERS"), group, topics, conf, &c), 0);
	for (int64_t until = it_now_ms() + ms; found == NULL && it_now_ms() < until;) {
		rd_kafka_message_t *m = sb_kafka_consumer_poll(c, 200);
		if (m == NULL)
			continue;
		char id[128], type[128];
		if (m->err == 0 && sb_kafka_header(m, "ce_id", id, sizeof(id)) > 0 &&
		    strcmp(id, ce_id) == 0) {
			assert_true(sb_kafka_header(m, "ce_type", type, sizeof(type)) > 0);
			assert_string_equal(type, "io.switchboard.notifier.webhook.failed.v1");
			found = json_loadb(m->payload, m->len, 0, NULL);
			assert_non_null(found);
		}
		rd_kafka_message_destroy(m);
	}
	sb_kafka_consumer_close(c);
	if (found == NULL)
		fail_msg("no DLQ record for %s within %d ms", ce_id, ms);
	return found;
}

static void
t_db_delivery(const char *ce_id, const char *status, int attempts)
{
	PGconn *db = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	const char *p[] = { ce_id };
	PGresult *r = PQexecParams(db,
	                           "SELECT status, attempts FROM notifier.webhook_deliveries "
	                           "WHERE event_id = $1",
	                           1, NULL, p, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), status);
	assert_int_equal(atoi(PQgetvalue(r, 0, 1)), attempts);
	PQclear(r);
	PQfinish(db);
}

static int
setup(void **state)
{
	(void)state;
	char err[256];
	sb_log_set_level(SB_LOG_WARN);
	snprintf(T.group, sizeof(T.group), "it-notifier-wh-%d", (int)getpid());
	it_kafka_name("sb.messages.v1", T.topic, sizeof(T.topic));
	it_kafka_name("sb.notifier.webhooks.v1.dlq", T.dlq, sizeof(T.dlq));
	/* Auto topic creation is off on the broker: both topics exist before anything is
	 * produced or consumed (the notifier creates them too, with the same settings). */
	const struct sb_kafka_topic_spec specs[] = { { T.topic, 6, -1, 0 }, { T.dlq, 6, -1, 0 } };
	assert_int_equal(sb_kafka_ensure_topics(it_env("SB_TEST_KAFKA_BROKERS"), specs, 2, 15000,
	                                        err, sizeof(err)),
	                 0);
	assert_int_equal(sb_kafka_producer_new(it_env("SB_TEST_KAFKA_BROKERS"), NULL, &T.prod), 0);
	r_start();
	T.allow_private = true;
	t_start();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	t_stop();
	sb_kafka_producer_free(T.prod);
	atomic_store(&R.stop, true);
	pthread_join(R.th, NULL);
	close(R.fd);
	for (int i = 0; i < R.n; i++)
		free(R.reqs[i].body);
	return 0;
}

/* --- tests ------------------------------------------------------------------------------- */

/* Registration, listing and deletion are scoped by the caller's tenant; bad input is refused. */
static void
test_webhook_crud(void **state)
{
	(void)state;
	char id[64], secret[300], url[128];
	char *types[] = { "message.created" }, *bad[] = { "message.exploded" };
	int code;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/other", R.port);
	assert_int_equal(t_create(TENANT, url, "", types, 1, id, secret), SB__RPC__CODE__OK);
	assert_int_equal(strlen(secret), 64); /* generated, returned once */
	assert_int_equal(t_list(TENANT, &code), 1);
	assert_int_equal(t_list("someone-else", &code), 0);
	assert_int_equal(t_delete("someone-else", id), SB__RPC__CODE__NOT_FOUND);
	assert_int_equal(t_delete(TENANT, id), SB__RPC__CODE__OK);
	assert_int_equal(t_delete(TENANT, id), SB__RPC__CODE__NOT_FOUND);
	assert_int_equal(t_delete(TENANT, "not-a-uuid"), SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_list(TENANT, &code), 0);
	assert_int_equal(t_list(NULL, &code), 0);
	assert_int_equal(code, SB__RPC__CODE__UNAUTHENTICATED);
	assert_int_equal(t_create(NULL, url, "", types, 1, NULL, NULL),
	                 SB__RPC__CODE__UNAUTHENTICATED);
	assert_int_equal(t_create(TENANT, "https://example.com/x", "", types, 1, NULL, NULL),
	                 SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_create(TENANT, "ftp://example.com/x", "", types, 1, NULL, NULL),
	                 SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_create(TENANT, url, "", bad, 1, NULL, NULL),
	                 SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_create(TENANT, url, "", types, 0, NULL, NULL),
	                 SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(t_create(TENANT, url, "short", types, 1, NULL, NULL),
	                 SB__RPC__CODE__INVALID_ARGUMENT);
}

/* A receiver gets the subscribed event once, signed; a failing one gets retries then a DLQ. */
static void
test_webhook_signed_retries_dlq(void **state)
{
	(void)state;
	char url[128], id[64], secret[300], ts[32], sig[128], want[128];
	char *types[] = { "message.created" };
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", R.port);
	assert_int_equal(t_create(TENANT, url, SECRET, types, 1, id, secret), SB__RPC__CODE__OK);
	assert_string_equal(secret, SECRET);

	t_msg_created("ce-wh-ok", 1);
	assert_int_equal(r_wait("ce-wh-ok", 1, 20000), 1);
	pthread_mutex_lock(&R.mu);
	int i = R.n - 1;
	assert_true(strncmp(R.reqs[i].head, "POST /hook HTTP/1.1\r\n", 21) == 0);
	r_header(i, "Switchboard-Timestamp", ts, sizeof(ts));
	r_header(i, "Switchboard-Signature", sig, sizeof(sig));
	char *body = strdup(R.reqs[i].body);
	pthread_mutex_unlock(&R.mu);
	long long t = atoll(ts);
	assert_true(llabs(t - (long long)time(NULL)) < 60);
	/* verify as a receiver would: HMAC-SHA256(secret, "<timestamp>.<body>") */
	char *signed_text = NULL;
	assert_true(asprintf(&signed_text, "%s.%s", ts, body) > 0);
	unsigned char mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)signed_text,
	     strlen(signed_text), mac, &ml);
	assert_int_equal(ml, 32);
	strcpy(want, "v1=");
	for (int k = 0; k < 32; k++)
		sprintf(want + 3 + 2 * k, "%02x", mac[k]);
	assert_string_equal(sig, want);
	json_t *j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "message.created");
	assert_string_equal(json_string_value(json_object_get(j, "id")), "ce-wh-ok");
	json_t *data = json_object_get(j, "data");
	assert_string_equal(json_string_value(json_object_get(data, "conversation_id")), CONV);
	assert_string_equal(json_string_value(json_object_get(data, "seq")), "1");
	json_decref(j);
	free(signed_text);
	free(body);
	it_sleep_ms(500);
	assert_int_equal(r_count("ce-wh-ok"), 1); /* delivered once */
	t_db_delivery("ce-wh-ok", "delivered", 1);

	/* 500s: SB_WEBHOOK_MAX_ATTEMPTS (3) attempts, spaced by backoff, then the DLQ */
	atomic_store(&R.status, 500);
	t_msg_created("ce-wh-fail", 2);
	assert_int_equal(r_wait("ce-wh-fail", 3, 20000), 3);
	json_t *d = t_dlq_find("ce-wh-fail", 20000);
	assert_string_equal(json_string_value(json_object_get(d, "error")), "HTTP 500");
	assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
	assert_string_equal(json_string_value(json_object_get(d, "webhook_id")), id);
	assert_string_equal(json_string_value(json_object_get(json_object_get(d, "event"), "id")),
	                    "ce-wh-fail");
	json_decref(d);
	t_db_delivery("ce-wh-fail", "dead", 3);
	it_sleep_ms(1000);
	assert_int_equal(r_count("ce-wh-fail"), 3); /* no fourth attempt */
	atomic_store(&R.status, 200);
	assert_int_equal(t_delete(TENANT, id), SB__RPC__CODE__OK);
}

/* Without SB_WEBHOOK_ALLOW_PRIVATE, private targets are refused, also after resolution. */
static void
test_webhook_private_refused(void **state)
{
	(void)state;
	char url[128];
	char *types[] = { "message.created" };
	t_stop();
	T.allow_private = false;
	t_start();
	const char *refused[] = { "http://127.0.0.1:%d/hook", "http://[::1]:%d/hook",
		                  "http://10.1.2.3:%d/",      "http://169.254.169.254:%d/",
		                  "http://localhost:%d/",     "http://[::ffff:127.0.0.1]:%d/" };
	for (size_t k = 0; k < sizeof(refused) / sizeof(*refused); k++) {
		snprintf(url, sizeof(url), refused[k], R.port);
		if (t_create(TENANT, url, SECRET, types, 1, NULL, NULL) !=
		    SB__RPC__CODE__INVALID_ARGUMENT)
			fail_msg("%s was not refused", url);
	}
	/* A stored URL whose name now resolves to loopback (as after DNS rebinding): the worker
	 * checks the resolved address and refuses to connect. */
	PGconn *db = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	snprintf(url, sizeof(url), "http://localhost:%d/hook", R.port);
	const char *p[] = { TENANT, url };
	PGresult *r = PQexecParams(db,
	                           "INSERT INTO notifier.webhooks (id, tenant_id, url, secret, "
	                           "event_types) VALUES (gen_random_uuid(), $1, $2, 'x', "
	                           "'{message.created}')",
	                           2, NULL, p, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(db);
	t_msg_created("ce-wh-rebind", 3);
	json_t *d = t_dlq_find("ce-wh-rebind", 25000);
	assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "refused"));
	assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 1);
	json_decref(d);
	assert_int_equal(r_count("ce-wh-rebind"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webhook_crud),
		cmocka_unit_test(test_webhook_signed_retries_dlq),
		cmocka_unit_test(test_webhook_private_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
