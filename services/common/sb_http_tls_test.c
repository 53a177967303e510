/* Tests of sb_http over TLS on 127.0.0.1, with throwaway self-signed certificates made here:
 * curl and an OpenSSL client get answers with HSTS over TLS 1.3, keep-alive, large bodies both
 * ways; TLS 1.2, plain HTTP, garbage, a wrong ALPN and half handshakes are refused without harm;
 * a stalled handshake is closed after the header timeout; certificates are reloaded (on request
 * and when the files change) for new connections while old ones keep theirs; bad files are
 * refused at start and at reload with a log line naming the file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_http.h"
#include "sb_http_testcli.h"
#include "sb_log.h"

static char dir[256]; /* temporary directory of this run */

static char *
path(const char *name)
{
	static char p[4][512];
	static int i;
	i = (i + 1) % 4;
	int n = snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < sizeof(p[i]));
	return p[i];
}

/* Logs, captured to check what an operator would read. */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logs[65536];

static void
log_sink(const char *line, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&log_lock);
	size_t l = strlen(logs);
	snprintf(logs + l, sizeof(logs) - l, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
}

static void
logs_clear(void)
{
	pthread_mutex_lock(&log_lock);
	logs[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static bool
logs_have(const char *a, const char *b)
{
	pthread_mutex_lock(&log_lock);
	bool found = false;
	for (char *line = logs; !found && *line;) {
		char *nl = strchr(line, '\n');
		*nl = '\0';
		found = strstr(line, a) && (!b || strstr(line, b));
		*nl = '\n';
		line = nl + 1;
	}
	pthread_mutex_unlock(&log_lock);
	return found;
}

/* Certificates: an EC P-256 key and a self-signed certificate for IP 127.0.0.1, written to
 * <name>.crt and <name>.key (through a temporary name and rename, as a deployment would). */
static void
make_cert(const char *name, const char *cn, long serial)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, pk);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	char tmp[600], fin[600];
	snprintf(tmp, sizeof(tmp), "%s/%s.key.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	snprintf(fin, sizeof(fin), "%s/%s.key", dir, name);
	assert_int_equal(rename(tmp, fin), 0);
	snprintf(tmp, sizeof(tmp), "%s/%s.crt.tmp", dir, name);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	snprintf(fin, sizeof(fin), "%s/%s.crt", dir, name);
	assert_int_equal(rename(tmp, fin), 0);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Server side: /echo answers method, remote and body size and sum; /big answers 400 KB. */

#define BIG_LEN (400 * 1024)

static void
handler(struct sb_http_req *r, void *arg)
{
	(void)arg;
	if (strcmp(r->path, "/big") == 0) {
		char *b = malloc(BIG_LEN);
		if (b == NULL) {
			sb_http_respond_problem(r, 500, NULL, NULL);
			return;
		}
		for (size_t i = 0; i < BIG_LEN; i++)
			b[i] = (char)('a' + i % 26);
		sb_http_respond(r, 200, "text/plain", NULL, 0, b, BIG_LEN);
		free(b);
		return;
	}
	unsigned sum = 0;
	for (size_t i = 0; i < r->body_len; i++)
		sum += (unsigned char)r->body[i];
	char body[256];
	int n = snprintf(body, sizeof(body), "%s %s from %s len=%zu sum=%u", r->method, r->path,
	                 r->remote, r->body_len, sum);
	sb_http_respond(r, 200, "text/plain", NULL, 0, body, (size_t)n);
}

static struct sb_http_server *
start_tls(const char *name, int header_timeout_ms, int reload_ms)
{
	char crt[300], key[300];
	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	struct sb_http_config cfg = { .addr = "127.0.0.1",
		                      .max_header_bytes = 1024,
		                      .max_body_bytes = 1 << 20,
		                      .header_timeout_ms = header_timeout_ms,
		                      .tls_cert_file = path(crt),
		                      .tls_key_file = path(key),
		                      .tls_reload_ms = reload_ms };
	struct sb_http_server *s = NULL;
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), 0);
	return s;
}

/* Client side: sb_http_testcli.h, over TLS offering ALPN http/1.1. */

/* tcli_open connects with TLS, verifying the server against cafile when given. Returns NULL if
 * the handshake fails. */
static struct sb_testcli *
tcli_open(const struct sb_http_server *s, const char *cafile)
{
	struct sb_testcli_opts o = {
		.tls = true, .cafile = cafile, .alpn = "\x08http/1.1", .alpn_len = 9
	};
	return sb_testcli_open_ex(s, &o);
}

/* tcli_peer_cn returns the CN of the certificate the server showed (static buffer). */
static const char *
tcli_peer_cn(struct sb_testcli *c)
{
	static char cn[128];
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	assert_non_null(x);
	cn[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	X509_free(x);
	return cn;
}

/* get sends GET path on c and checks the answer is 200 with HSTS; returns the body's start. */
static void
get_ok(struct sb_testcli *c, const char *p, char *out, size_t n)
{
	char req[256];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", p);
	SB_TESTCLI_SEND(c, req);
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "\r\nStrict-Transport-Security: max-age=31536000\r\n"));
	assert_non_null(strstr(r.head, "\r\nX-Content-Type-Options: nosniff\r\n"));
	assert_null(strcasestr(r.head, "\r\nServer:"));
	snprintf(out, n, "%s", r.body);
	sb_testresp_free(&r);
}

/* raw_closed tells whether the server ends a plain TCP connection within 3 s without having
 * sent anything that looks like an HTTP answer. */
static bool
raw_closed(int fd)
{
	char b[4096];
	size_t total = 0;
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false; /* timeout: still open */
		if (total == 0 && n >= 5 && memcmp(b, "HTTP/", 5) == 0)
			return false;
		total += (size_t)n;
	}
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run runs a shell command, returns its exit status and its stdout+stderr in out. */
static int
run(char *out, size_t n, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t len = fread(out, 1, n - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Tests. */

static void
test_curl(void **state)
{
	(void)state;
	make_cert("a", "sb-a", 1);
	struct sb_http_server *s = start_tls("a", 0, -1);
	int port = sb_http_server_port(s);
	static char out[65536];

	/* One GET with TLS 1.3: the answer, HSTS, nosniff, no Server. */
	assert_int_equal(run(out, sizeof(out),
	                     "curl -sS --max-time 10 --tlsv1.3 --cacert %s -D - "
	                     "https://127.0.0.1:%d/echo 2>&1",
	                     path("a.crt"), port),
	                 0);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "\r\nStrict-Transport-Security: max-age=31536000\r\n"));
	assert_non_null(strstr(out, "\r\nX-Content-Type-Options: nosniff\r\n"));
	assert_null(strcasestr(out, "\r\nServer:"));
	assert_non_null(strstr(out, "GET /echo from 127.0.0.1:"));

	/* Keep-alive: two URLs in one curl run share one connection (same client port). */
	assert_int_equal(run(out, sizeof(out),
	                     "curl -sS --max-time 10 --tlsv1.3 --cacert %s "
	                     "https://127.0.0.1:%d/one -w '\\n' https://127.0.0.1:%d/two 2>&1",
	                     path("a.crt"), port, port),
	                 0);
	char p1[32], p2[32];
	assert_int_equal(sscanf(out, "GET /one from %31s len=0 sum=0\nGET /two from %31s", p1, p2),
	                 2);
	assert_string_equal(p1, p2);

	/* A large POST body (900 KB) arrives whole. */
	FILE *f = fopen(path("body.bin"), "w");
	assert_non_null(f);
	unsigned sum = 0;
	for (int i = 0; i < 900 * 1024; i++) {
		unsigned char b = (unsigned char)(i * 7 + 3);
		sum += b;
		fputc(b, f);
	}
	fclose(f);
	assert_int_equal(run(out, sizeof(out),
	                     "curl -sS --max-time 10 --tlsv1.3 --cacert %s --data-binary @%s "
	                     "https://127.0.0.1:%d/upload 2>&1",
	                     path("a.crt"), path("body.bin"), port),
	                 0);
	char want[64];
	snprintf(want, sizeof(want), "len=%d sum=%u", 900 * 1024, sum);
	assert_non_null(strstr(out, "POST /upload from "));
	assert_non_null(strstr(out, want));

	/* A client limited to TLS 1.2 is refused (curl: 35, handshake failed). */
	int rc = run(out, sizeof(out),
	             "curl -sS --max-time 10 --tls-max 1.2 --cacert %s https://127.0.0.1:%d/echo "
	             "2>&1",
	             path("a.crt"), port);
	assert_int_equal(rc, 35);
	assert_null(strstr(out, "GET /echo"));

	/* Plain HTTP to the TLS port: curl gets no answer. */
	rc = run(out, sizeof(out), "curl -sS --max-time 10 http://127.0.0.1:%d/echo 2>&1", port);
	assert_int_not_equal(rc, 0);
	assert_null(strstr(out, "GET /echo"));
	sb_http_server_stop(s, 1000);
}

static void
test_client(void **state)
{
	(void)state;
	make_cert("a", "sb-a", 1);
	struct sb_http_server *s = start_tls("a", 0, -1);
	struct sb_testcli *c = tcli_open(s, path("a.crt"));
	assert_non_null(c);
	assert_int_equal(SSL_version(c->ssl), TLS1_3_VERSION);
	const unsigned char *alpn;
	unsigned alen;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
	assert_int_equal(alen, 8);
	assert_memory_equal(alpn, "http/1.1", 8);

	/* Keep-alive: three requests on one connection, then a 400 KB answer. */
	char body[256];
	for (int i = 0; i < 3; i++) {
		get_ok(c, "/echo", body, sizeof(body));
		assert_true(strncmp(body, "GET /echo from 127.0.0.1:", 25) == 0);
	}
	SB_TESTCLI_SEND(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, BIG_LEN);
	assert_int_equal(r.body[BIG_LEN - 1], 'a' + (BIG_LEN - 1) % 26);
	sb_testresp_free(&r);

	/* Head and 10 KB body in one TLS record, larger than the 1 KiB head buffer: the body
	 * bytes TLS already decrypted must be read without any new socket event. */
	char req[12 * 1024];
	int hl = snprintf(req, sizeof(req),
	                  "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10240\r\n\r\n");
	memset(req + hl, 'z', 10240);
	sb_testcli_send(c, req, (size_t)hl + 10240);
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	char want[64];
	snprintf(want, sizeof(want), "len=10240 sum=%u", 10240u * 'z');
	assert_non_null(strstr(r.body, want));
	sb_testresp_free(&r);

	/* Two pipelined requests in one record. */
	SB_TESTCLI_SEND(c,
	                "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_true(strncmp(r.body, "GET /p1 ", 8) == 0);
	sb_testresp_free(&r);
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_true(strncmp(r.body, "GET /p2 ", 8) == 0);
	sb_testresp_free(&r);

	/* A malformed request gets its 400 over TLS, with HSTS. */
	SB_TESTCLI_SEND(c, "GET / HTTP/1.1\r\nHost : x\r\n\r\n");
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.head, "\r\nStrict-Transport-Security: max-age=31536000\r\n"));
	sb_testresp_free(&r);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_refusals(void **state)
{
	(void)state;
	make_cert("a", "sb-a", 1);
	logs_clear();
	sb_log_set_level(SB_LOG_DEBUG);
	struct sb_http_server *s = start_tls("a", 0, -1);
	int port = sb_http_server_port(s);

	/* TLS 1.2 at most: refused for the protocol version. */
	struct sb_testcli_opts o = { .tls = true,
		                     .cafile = path("a.crt"),
		                     .max_version = TLS1_2_VERSION,
		                     .alpn = "\x08http/1.1",
		                     .alpn_len = 9 };
	assert_null(sb_testcli_open_ex(s, &o));
	/* ALPN without http/1.1: refused. */
	o = (struct sb_testcli_opts){
		.tls = true, .cafile = path("a.crt"), .alpn = "\x02h2", .alpn_len = 3
	};
	assert_null(sb_testcli_open_ex(s, &o));

	/* Plain HTTP, garbage, half a ClientHello then gone: closed, no answer. */
	int fd = sb_testcli_tcp(port);
	const char *plain = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(send(fd, plain, strlen(plain), MSG_NOSIGNAL), (ssize_t)strlen(plain));
	assert_true(raw_closed(fd));
	close(fd);
	fd = sb_testcli_tcp(port);
	char junk[4096];
	unsigned seed = 7;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)rand_r(&seed);
	ssize_t sent = send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
	assert_true(sent > 0);
	assert_true(raw_closed(fd));
	close(fd);
	fd = sb_testcli_tcp(port);
	const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	assert_int_equal(send(fd, hello, sizeof(hello) - 1, MSG_NOSIGNAL), sizeof(hello) - 1);
	close(fd);
	fd = sb_testcli_tcp(port);
	close(fd);
	/* A client that resets the connection while large answers are being written. */
	struct sb_testcli *c = tcli_open(s, path("a.crt"));
	assert_non_null(c);
	SB_TESTCLI_SEND(c,
	                "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n"
	                "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	usleep(20000);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	sb_testcli_close(c);

	/* The server is unharmed. */
	usleep(100000);
	c = tcli_open(s, path("a.crt"));
	assert_non_null(c);
	char body[256];
	get_ok(c, "/echo", body, sizeof(body));
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
	assert_true(logs_have("TLS handshake failed", "unsupported protocol"));
	assert_true(logs_have("TLS handshake failed", "http request"));
	sb_log_set_level(SB_LOG_INFO);
}

static void
test_stalled_handshake(void **state)
{
	(void)state;
	make_cert("a", "sb-a", 1);
	struct sb_http_server *s = start_tls("a", 500, -1);
	int port = sb_http_server_port(s);

	/* Connects and says nothing; then: starts a record and stalls. */
	for (int round = 0; round < 2; round++) {
		int fd = sb_testcli_tcp(port);
		double t0 = now_s();
		if (round == 1)
			assert_int_equal(send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL), 3);
		assert_true(raw_closed(fd));
		double took = now_s() - t0;
		assert_true(took >= 0.45 && took < 1.5);
		close(fd);
	}

	/* The head's clock starts with the connection, not with the first byte after the
	 * handshake: 350 ms of silence leave 150 ms for a head that never ends, then 408 at about
	 * 500 ms (a clock restarted by the first head byte would say 408 at about 850 ms). */
	double t0 = now_s();
	struct sb_testcli *c = tcli_open(s, path("a.crt"));
	assert_non_null(c);
	usleep(350000);
	SB_TESTCLI_SEND(c, "GET /echo HTTP/1.1\r\n");
	struct sb_testresp r;
	assert_int_equal(sb_testcli_read(c, &r, false), 0);
	double took = now_s() - t0;
	assert_int_equal(r.status, 408);
	assert_true(took >= 0.45 && took < 0.75);
	sb_testresp_free(&r);
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);
}

static void
test_reload(void **state)
{
	(void)state;
	make_cert("live", "sb-one", 1);
	struct sb_http_server *s = start_tls("live", 0, -1);
	struct sb_testcli *old = tcli_open(s, NULL);
	assert_non_null(old);
	assert_string_equal(tcli_peer_cn(old), "sb-one");
	char body[256];
	get_ok(old, "/echo", body, sizeof(body));

	/* New files, then a reload: new connections see the new certificate. */
	make_cert("live", "sb-two", 2);
	logs_clear();
	assert_int_equal(sb_http_server_reload_tls(s), 0);
	assert_true(logs_have("TLS certificate loaded", "sb-two"));
	struct sb_testcli *c = tcli_open(s, path("live.crt")); /* verifies against the new cert */
	assert_non_null(c);
	assert_string_equal(tcli_peer_cn(c), "sb-two");
	assert_int_equal(
	    ASN1_INTEGER_get(X509_get0_serialNumber(SSL_get0_peer_certificate(c->ssl))), 2);
	get_ok(c, "/echo", body, sizeof(body));
	sb_testcli_close(c);
	/* The old keep-alive connection still works, with its certificate. */
	get_ok(old, "/echo", body, sizeof(body));
	assert_string_equal(tcli_peer_cn(old), "sb-one");
	sb_testcli_close(old);

	/* Broken files at reload: an error naming the file, and the previous cert stays. */
	write_file(path("live.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
	logs_clear();
	assert_int_equal(sb_http_server_reload_tls(s), SB_EINVAL);
	assert_true(logs_have("cannot load the TLS certificate", path("live.crt")));
	assert_true(logs_have("keeping the previous certificate", NULL));
	c = tcli_open(s, NULL);
	assert_non_null(c);
	assert_string_equal(tcli_peer_cn(c), "sb-two");
	get_ok(c, "/echo", body, sizeof(body));
	sb_testcli_close(c);
	sb_http_server_stop(s, 1000);

	/* A plain server has no certificate to reload. */
	struct sb_http_config cfg = { .addr = "127.0.0.1" };
	assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), 0);
	assert_int_equal(sb_http_server_reload_tls(s), SB_EINVAL);
	sb_http_server_stop(s, 1000);
}

static void
test_reload_on_change(void **state)
{
	(void)state;
	make_cert("watched", "sb-first", 1);
	struct sb_http_server *s = start_tls("watched", 0, 100);
	struct sb_testcli *c = tcli_open(s, NULL);
	assert_non_null(c);
	assert_string_equal(tcli_peer_cn(c), "sb-first");
	sb_testcli_close(c);
	make_cert("watched", "sb-second", 2);
	double t0 = now_s();
	bool seen = false;
	while (!seen && now_s() - t0 < 3.0) {
		usleep(50000);
		c = tcli_open(s, NULL);
		assert_non_null(c);
		seen = strcmp(tcli_peer_cn(c), "sb-second") == 0;
		sb_testcli_close(c);
	}
	assert_true(seen);
	sb_http_server_stop(s, 1000);
}

static void
test_bad_files_at_start(void **state)
{
	(void)state;
	make_cert("a", "sb-a", 1);
	make_cert("b", "sb-b", 2);
	write_file(path("junk.crt"), "hello\n");
	static const struct {
		const char *crt, *key, *log, *named;
	} cases[] = {
		{ "missing.crt", "a.key", "cannot read the TLS certificate", "missing.crt" },
		{ "junk.crt", "a.key", "cannot load the TLS certificate", "junk.crt" },
		{ "a.crt", "missing.key", "cannot read the TLS key", "missing.key" },
		{ "a.crt", "junk.crt", "cannot load the TLS key", "junk.crt" },
		{ "a.crt", "b.key", "key values mismatch", "b.key" },
		{ "a.crt", NULL, "TLS needs both a certificate file and a key file", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sb_http_config cfg = { .addr = "127.0.0.1",
			                      .tls_cert_file = path(cases[i].crt),
			                      .tls_key_file =
			                          cases[i].key ? path(cases[i].key) : NULL };
		struct sb_http_server *s = NULL;
		logs_clear();
		assert_int_equal(sb_http_server_start(&cfg, handler, NULL, &s), SB_EINVAL);
		assert_null(s);
		assert_true(logs_have(cases[i].log, cases[i].named ? path(cases[i].named) : NULL));
	}
}

static int
setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/sb_http_tls_XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	/* SIGPIPE keeps its default action: a server write that raised it would kill the test. */
	sb_log_init("sb_http_tls_test", SB_LOG_INFO);
	sb_log_set_sink(log_sink, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curl),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_stalled_handshake),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_reload_on_change),
		cmocka_unit_test(test_bad_files_at_start),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
