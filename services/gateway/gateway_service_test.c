/* gateway_service_test.c: the gateway's start and stop (service.c, pipeline.c, edge.c) and the
 * problem documents it answers (reply.c). A start that fails part-way leaves no worker running
 * and nothing allocated, and a stop joins only threads that were started; every problem body
 * carries the request id. pthread_create and sb_redis_open are wrapped (see CMakeLists.txt) so
 * that the n-th call fails on demand; the wrappers also count running worker threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway.h"
#include "sb_err.h"
#include "sb_redis.h"

/* --- fault injection ------------------------------------------------------------------- */

static _Atomic int create_fail_at;  /* fail the n-th pthread_create from now (0: never) */
static _Atomic int redis_fail_at;   /* fail the n-th sb_redis_open from now (0: never) */
static _Atomic int threads_running; /* threads made through the wrapper, not yet returned */
static pthread_t created[64];       /* threads made since the last reset */
static _Atomic size_t ncreated;
static _Atomic int bad_joins; /* joins of a thread this test never saw created */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t t, void **ret);
int __real_sb_redis_open(const char *url, struct sb_redis **out);

struct trampoline {
	void *(*fn)(void *);
	void *arg;
};

static void *
tramp(void *p)
{
	struct trampoline t = *(struct trampoline *)p;
	free(p);
	void *ret = t.fn(t.arg);
	threads_running--;
	return ret;
}

int
__wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	if (create_fail_at > 0 && --create_fail_at == 0)
		return 11; /* EAGAIN */
	struct trampoline *tp = malloc(sizeof(*tp));
	if (tp == NULL)
		return 12;
	*tp = (struct trampoline){ fn, arg };
	threads_running++;
	int rv = __real_pthread_create(t, a, tramp, tp);
	if (rv != 0) {
		threads_running--;
		free(tp);
		return rv;
	}
	size_t i = ncreated++;
	if (i < 64)
		created[i] = *t;
	return 0;
}

int
__wrap_pthread_join(pthread_t t, void **ret)
{
	size_t n = ncreated < 64 ? ncreated : 64;
	for (size_t i = 0; i < n; i++)
		if (pthread_equal(created[i], t))
			return __real_pthread_join(t, ret);
	bad_joins++; /* joining it for real would be undefined behaviour */
	return 3;    /* ESRCH */
}

int
__wrap_sb_redis_open(const char *url, struct sb_redis **out)
{
	if (redis_fail_at > 0 && --redis_fail_at == 0) {
		*out = NULL;
		return SB_EINVAL;
	}
	return __real_sb_redis_open(url, out);
}

static void
faults_reset(void)
{
	create_fail_at = 0;
	redis_fail_at = 0;
	ncreated = 0;
	bad_joins = 0;
}

/* --- a gateway without a service -------------------------------------------------------- */

struct fixture {
	struct gateway_cfg cfg;
	struct gw gw;
};

static struct fixture *
fixture_new(const char *redis_url, long long workers)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	struct gateway_cfg *c = &f->cfg;
	c->common.redis_url = (char *)redis_url;
	c->common.shutdown_grace_ms = 1000;
	c->http_addr = "127.0.0.1";
	c->tls_cert_file = "";
	c->tls_key_file = "";
	c->http_port = 0;
	c->max_body_bytes = 65536;
	c->max_header_bytes = 16384;
	c->header_timeout_ms = 5000;
	c->idle_timeout_ms = 5000;
	c->max_conns = 100;
	c->max_json_depth = 8;
	c->rpc_timeout_ms = 100;
	c->workers = workers;
	c->queue_max = 100;
	c->auth_enabled = true;
	c->issuer = "http://127.0.0.1:8000";
	c->audience = "switchboard";
	c->leeway_s = 30;
	c->jwks_min_refresh_ms = 5000;
	c->rate_limit_per_min = 60;
	c->rate_limit_routes = "";
	c->redis_fail_open = true;
	c->dev_credentials_file = "";
	f->gw.cfg = c;
	return f;
}

/* --- the worker pipeline ------------------------------------------------------------------ */

static void
test_pipeline_start_stop(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("redis://127.0.0.1:1", 3);
	assert_int_equal(gw_pipeline_start(&f->gw), 0);
	assert_int_equal(f->gw.nthreads, 3);
	assert_int_equal(threads_running, 3);
	gw_pipeline_stop(&f->gw);
	assert_int_equal(threads_running, 0);
	assert_null(f->gw.threads);
	gw_pipeline_stop(&f->gw); /* twice is harmless */
	assert_int_equal(bad_joins, 0);
	free(f);
}

/* A worker that cannot be made (the third of four): the two running are stopped and joined
 * before gw_pipeline_start returns, and nothing is left for gw_pipeline_stop. */
static void
test_pipeline_thread_fails(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("", 4);
	create_fail_at = 3;
	assert_int_equal(gw_pipeline_start(&f->gw), SB_EIO);
	assert_int_equal(threads_running, 0); /* no worker is left using f->gw */
	assert_int_equal(ncreated, 2);
	gw_pipeline_stop(&f->gw);
	assert_int_equal(bad_joins, 0);
	free(f);
}

/* A worker whose Redis connection cannot be set up (the third of four): the same, and the
 * stop that follows joins only the two threads that ever ran. */
static void
test_pipeline_redis_fails(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("redis://127.0.0.1:1", 4);
	redis_fail_at = 3;
	assert_int_equal(gw_pipeline_start(&f->gw), SB_EINVAL);
	assert_int_equal(threads_running, 0);
	assert_int_equal(ncreated, 2);
	gw_pipeline_stop(&f->gw);
	assert_int_equal(bad_joins, 0);
	free(f);
}

/* --- gw_open / gw_close ------------------------------------------------------------------- */

static void
assert_nothing_left(struct fixture *f)
{
	assert_int_equal(threads_running, 0);
	assert_null(f->gw.threads);
	assert_null(f->gw.http);
	assert_null(f->gw.rl);
	assert_null(f->gw.authn);
	assert_null(f->gw.revo);
	assert_int_equal(bad_joins, 0);
}

/* The workers fail to start: authn and the rate limit, started before, are freed again. */
static void
test_open_fails_at_pipeline(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("", 3);
	create_fail_at = 2;
	assert_int_equal(gw_open(&f->gw), SB_EIO);
	assert_nothing_left(f);
	free(f);
}

/* The HTTP edge cannot listen (port taken): the workers are stopped, then the rest. */
static void
test_open_fails_at_edge(void **state)
{
	(void)state;
	faults_reset();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	struct fixture *f = fixture_new("", 3);
	f->cfg.http_port = ntohs(a.sin_port);
	assert_int_not_equal(gw_open(&f->gw), 0);
	assert_nothing_left(f);
	close(fd);
	free(f);
}

/* http sends one request to port and returns the whole response (static buffer). */
static const char *
http(int port, const char *request)
{
	static char buf[8192];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_port = htons((uint16_t)port),
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	size_t n = 0;
	ssize_t k;
	while (n + 1 < sizeof(buf) && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* problem checks that response has status, a problem+json body with that status and the
 * request id rid (also in X-Request-Id), and the header line hdr when not NULL. */
static void
problem(const char *response, int status, const char *rid, const char *hdr)
{
	char line[64];
	snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
	if (strncmp(response, line, strlen(line)) != 0)
		fail_msg("expected %d, got: %s", status, response);
	assert_non_null(strstr(response, "\r\nContent-Type: application/problem+json\r\n"));
	char xrid[96];
	snprintf(xrid, sizeof(xrid), "\r\nX-Request-Id: %s\r\n", rid);
	assert_non_null(strstr(response, xrid));
	if (hdr != NULL && strstr(response, hdr) == NULL)
		fail_msg("no \"%s\" in: %s", hdr, response);
	const char *body = strstr(response, "\r\n\r\n");
	assert_non_null(body);
	json_error_t err;
	json_t *doc = json_loads(body + 4, 0, &err);
	if (doc == NULL)
		fail_msg("body is not JSON: %s", body + 4);
	assert_string_equal(json_string_value(json_object_get(doc, "type")), "about:blank");
	assert_string_equal(json_string_value(json_object_get(doc, "title")),
	                    sb_http_reason(status));
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), status);
	assert_non_null(json_string_value(json_object_get(doc, "detail")));
	assert_string_equal(json_string_value(json_object_get(doc, "request_id")), rid);
	json_decref(doc);
}

/* A gateway that starts whole answers 404, 405 and 401 with problem documents that carry the
 * request id (the client's X-Request-Id, or the one made for it), then stops completely. */
static void
test_open_close_problems(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("", 2);
	assert_int_equal(gw_open(&f->gw), 0);
	assert_int_equal(threads_running, 3); /* two workers and the HTTP loop */
	int port = sb_http_server_port(f->gw.http);
	problem(http(port, "GET /nothing HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-404\r\n"
	                   "Connection: close\r\n\r\n"),
	        404, "rid-404", NULL);
	problem(http(port, "PUT /v1/me HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-405\r\n"
	                   "Content-Length: 0\r\nConnection: close\r\n\r\n"),
	        405, "rid-405", "\r\nAllow: GET\r\n");
	problem(http(port, "GET /v1/me HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-401\r\n"
	                   "Connection: close\r\n\r\n"),
	        401, "rid-401", "\r\nWWW-Authenticate: Bearer\r\n");
	problem(http(port, "GET /v1/me HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-401b\r\n"
	                   "Authorization: Basic dTpw\r\nConnection: close\r\n\r\n"),
	        401, "rid-401b", "\r\nWWW-Authenticate: Bearer error=\"invalid_token\"");
	/* no (or an unusable) X-Request-Id: the one made for the request is in both places */
	const char *resp = http(port, "GET /nothing HTTP/1.1\r\nHost: t\r\nX-Request-Id: a b\r\n"
	                              "Connection: close\r\n\r\n");
	const char *x = strstr(resp, "\r\nX-Request-Id: ");
	assert_non_null(x);
	char rid[64];
	assert_int_equal(sscanf(x + 16, "%63[^\r]", rid), 1);
	assert_int_equal(strlen(rid), 36);
	problem(resp, 404, rid, NULL);
	assert_int_equal(gw_close(&f->gw), 0);
	assert_int_equal(f->gw.inflight, 0);
	assert_nothing_left(f);
	free(f);
}

/* oauth checks that response has status, the JSON body of an RFC 6749 5.2 error naming
 * error, Cache-Control: no-store, and the header line hdr when not NULL. */
static void
oauth(const char *response, int status, const char *error, const char *hdr)
{
	char line[64];
	snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
	if (strncmp(response, line, strlen(line)) != 0)
		fail_msg("expected %d, got: %s", status, response);
	assert_non_null(strstr(response, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(response, "\r\nCache-Control: no-store\r\n"));
	if (hdr != NULL && strstr(response, hdr) == NULL)
		fail_msg("no \"%s\" in: %s", hdr, response);
	const char *body = strstr(response, "\r\n\r\n");
	assert_non_null(body);
	json_t *doc = json_loads(body + 4, 0, NULL);
	if (doc == NULL)
		fail_msg("body is not JSON: %s", body + 4);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), error);
	assert_non_null(json_string_value(json_object_get(doc, "error_description")));
	assert_int_equal(json_object_size(doc), 2);
	json_decref(doc);
}

/* The OAuth routes answer RFC 6749 error documents whose error is one RFC 6749 defines, also
 * for failures the gateway meets itself: a body of another type (415, invalid_request) and a
 * service it cannot call (503, temporarily_unavailable, with Retry-After; was a problem
 * document). */
static void
test_oauth_errors(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("", 2);
	assert_int_equal(gw_open(&f->gw), 0);
	int port = sb_http_server_port(f->gw.http);
	oauth(http(port, "POST /auth/token HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
	                 "Content-Length: 3\r\nConnection: close\r\n\r\nabc"),
	      415, "invalid_request", NULL);
	oauth(http(port, "POST /auth/token HTTP/1.1\r\nHost: t\r\n"
	                 "Content-Type: application/x-www-form-urlencoded\r\n"
	                 "Content-Length: 29\r\nConnection: close\r\n\r\n"
	                 "grant_type=client_credentials"),
	      503, "temporarily_unavailable", "\r\nRetry-After: 1\r\n");
	oauth(http(port,
	           "POST /auth/revoke HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	           "Content-Length: 13\r\nConnection: close\r\n\r\n{\"token\":\"x\"}"),
	      503, "temporarily_unavailable", "\r\nRetry-After: 1\r\n");
	oauth(http(port,
	           "POST /auth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	           "Content-Length: 12\r\nConnection: close\r\n\r\n{\"bogus\":\"x\"}"),
	      400, "invalid_request", NULL);
	assert_int_equal(gw_close(&f->gw), 0);
	assert_nothing_left(f);
	free(f);
}

/* What forward.c refuses before any RPC: a body whose type only starts like JSON (415), an
 * Idempotency-Key that is not UTF-8 (400: dropped, a retry would have written twice), a query
 * parameter that is not UTF-8 (400: dropped, the first page was answered), a path parameter
 * that does not decode; and what it lets through: long, escaped path parameters. */
static void
test_input_errors(void **state)
{
	(void)state;
	faults_reset();
	struct fixture *f = fixture_new("", 2);
	f->cfg.auth_enabled = false;
	assert_int_equal(gw_open(&f->gw), 0);
	int port = sb_http_server_port(f->gw.http);
	const char send[] = "{\"id\":\"00000000-0000-4000-8000-000000000000\","
	                    "\"conversation_id\":\"00000000-0000-4000-8000-000000000001\","
	                    "\"content\":\"x\"}";
	char req[1024];
	snprintf(req, sizeof(req),
	         "POST /v1/messages HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-415\r\n"
	         "Content-Type: application/jsonx\r\nContent-Length: %zu\r\n"
	         "Connection: close\r\n\r\n%s",
	         strlen(send), send);
	problem(http(port, req), 415, "rid-415", NULL);
	snprintf(req, sizeof(req),
	         "POST /v1/messages HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-ik\r\n"
	         "Content-Type: application/json; charset=utf-8\r\nIdempotency-Key: caf\xe9\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	         strlen(send), send);
	problem(http(port, req), 400, "rid-ik", NULL);
	/* the same with a UTF-8 key gets as far as the (missing) service */
	snprintf(req, sizeof(req),
	         "POST /v1/messages HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-ok\r\n"
	         "Content-Type: application/json; charset=utf-8\r\n"
	         "Idempotency-Key: caf\xc3\xa9\r\nContent-Length: %zu\r\n"
	         "Connection: close\r\n\r\n%s",
	         strlen(send), send);
	problem(http(port, req), 503, "rid-ok", "\r\nRetry-After: 1\r\n");
	problem(http(port, "GET /v1/conversations?cursor=%FF HTTP/1.1\r\nHost: t\r\n"
	                   "X-Request-Id: rid-q\r\nConnection: close\r\n\r\n"),
	        400, "rid-q", NULL);
	/* path parameters are percent-decoded: a bad escape or a NUL is 400; a user id of 128
	 * bytes, escaped or not, reaches the service (it was 404, "no route", and such a member
	 * could not be removed) */
	problem(http(port, "DELETE /v1/conversations/c/members/a%zz HTTP/1.1\r\nHost: t\r\n"
	                   "X-Request-Id: rid-p1\r\nConnection: close\r\n\r\n"),
	        400, "rid-p1", NULL);
	problem(http(port, "DELETE /v1/conversations/c/members/a%00 HTTP/1.1\r\nHost: t\r\n"
	                   "X-Request-Id: rid-p2\r\nConnection: close\r\n\r\n"),
	        400, "rid-p2", NULL);
	problem(http(port, "DELETE /v1/conversations/c/members/caf%E9 HTTP/1.1\r\nHost: t\r\n"
	                   "X-Request-Id: rid-p3\r\nConnection: close\r\n\r\n"),
	        400, "rid-p3", NULL);
	char uid[3 * 128 + 1];
	for (int i = 0; i < 128; i++)
		memcpy(uid + 3 * i, "%41", 3);
	uid[3 * 128] = '\0';
	snprintf(req, sizeof(req),
	         "DELETE /v1/conversations/c/members/%s HTTP/1.1\r\nHost: t\r\n"
	         "X-Request-Id: rid-p4\r\nConnection: close\r\n\r\n",
	         uid);
	problem(http(port, req), 503, "rid-p4", NULL);
	assert_int_equal(gw_close(&f->gw), 0);
	assert_nothing_left(f);
	free(f);
}

/* gw_problem_body: every field, errors kept, a detail that is not UTF-8 or missing. */
static void
test_problem_body(void **state)
{
	(void)state;
	json_t *errors = json_pack("[{s:s,s:s}]", "field", "kind", "reason", "required");
	char *text = gw_problem_body(400, "bad \"input\"", "r-1", errors);
	assert_non_null(text);
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "type")), "about:blank");
	assert_string_equal(json_string_value(json_object_get(doc, "title")), "Bad Request");
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 400);
	assert_string_equal(json_string_value(json_object_get(doc, "detail")), "bad \"input\"");
	assert_string_equal(json_string_value(json_object_get(doc, "request_id")), "r-1");
	assert_int_equal(json_array_size(json_object_get(doc, "errors")), 1);
	json_decref(doc);
	free(text);
	text = gw_problem_body(503, "\xff\xfe not UTF-8", "r-2", NULL);
	assert_non_null(text);
	doc = json_loads(text, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(doc, "detail")),
	                    "Service Unavailable");
	assert_string_equal(json_string_value(json_object_get(doc, "request_id")), "r-2");
	assert_null(json_object_get(doc, "errors"));
	json_decref(doc);
	free(text);
	text = gw_problem_body(404, NULL, "r-3", NULL);
	doc = json_loads(text, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(doc, "detail")), "Not Found");
	json_decref(doc);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline_start_stop),
		cmocka_unit_test(test_pipeline_thread_fails),
		cmocka_unit_test(test_pipeline_redis_fails),
		cmocka_unit_test(test_open_fails_at_pipeline),
		cmocka_unit_test(test_open_fails_at_edge),
		cmocka_unit_test(test_open_close_problems),
		cmocka_unit_test(test_oauth_errors),
		cmocka_unit_test(test_input_errors),
		cmocka_unit_test(test_problem_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
