/* sb_http_tls.c: TLS for sb_http: loading the certificate files into a TLS 1.3 server context,
 * swapping it on reload (by request or when the files change), and non-blocking handshakes,
 * reads and writes mapped to what the event loop must wait for.
 *
 * The current context is a pointer guarded by ctx_lock; each connection takes a reference to it
 * (SSL_new), so freeing a replaced context never disturbs the connections made from it. Reloads
 * are serialised by reload_lock, which the loop only ever try-locks. */
#include "sb_http.h"
#include "sb_err.h"
#include "sb_log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SB_HTTP_TLS_RELOAD_MS 5000

/* What a file looked like when it was last loaded. */
struct sb_http_tls_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool ok; /* stat succeeded */
};

struct sb__http_tls {
	char *cert, *key;
	int reload_ms;
	int64_t next_check;
	pthread_mutex_t ctx_lock; /* guards ctx */
	SSL_CTX *ctx;
	pthread_mutex_t reload_lock; /* guards the stamps; one reload at a time */
	struct sb_http_tls_stamp cert_stamp, key_stamp;
};

/* sb_http_tls_error returns the text of the first OpenSSL error of this thread (the cause;
 * later ones only say which layer gave up). */
static const char *
sb_http_tls_error(char *buf, size_t n)
{
	unsigned long e = ERR_peek_error();
	if (e == 0)
		return "unknown error";
	const char *r = ERR_reason_error_string(e);
	if (r != NULL)
		return r;
	ERR_error_string_n(e, buf, n);
	return buf;
}

/* sb_http_tls_no_passphrase refuses encrypted keys instead of prompting on a terminal. */
static int
sb_http_tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* sb_http_tls_alpn picks http/1.1 from the client's ALPN list; a client that offers ALPN
 * without it gets the no_application_protocol alert. */
static int
sb_http_tls_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                 const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const char want[] = "http/1.1";
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (l == 0 || i + 1 + l > inlen)
			break;
		if (l == sizeof(want) - 1 && memcmp(in + i + 1, want, l) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void
sb_http_tls_stamp(const char *path, struct sb_http_tls_stamp *st)
{
	struct stat sb;
	memset(st, 0, sizeof(*st));
	if (stat(path, &sb) != 0)
		return;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->ok = true;
}

static bool
sb_http_tls_stamp_same(const struct sb_http_tls_stamp *a, const struct sb_http_tls_stamp *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* sb_http_tls_log_loaded logs which certificate a new context serves and until when. */
static void
sb_http_tls_log_loaded(SSL_CTX *ctx, const char *cert)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subject[256] = "?", expires[32] = "?";
	struct tm tm;
	if (x != NULL) {
		X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
			strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	sb_log_kv(SB_LOG_INFO, "TLS certificate loaded", "file", cert, "subject", subject,
	          "expires", expires, NULL);
}

/* sb_http_tls_readable logs msg with the file's name and the system's reason when file cannot
 * be opened for reading. */
static int
sb_http_tls_readable(const char *file, const char *msg)
{
	FILE *f = fopen(file, "r");
	if (f != NULL) {
		fclose(f);
		return 0;
	}
	sb_log_kv(SB_LOG_ERROR, msg, "file", file, "error", strerror(errno), NULL);
	return SB_EINVAL;
}

/* sb_http_tls_ctx_load builds a context from the files; see sb__http_tls_new for errors. */
static int
sb_http_tls_ctx_load(const char *cert, const char *key, SSL_CTX **out)
{
	char ebuf[256];
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return SB_ENOMEM;
	int ret = SB_EINVAL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		sb_log_kv(SB_LOG_ERROR, "TLS 1.3 is not available", "error",
		          sb_http_tls_error(ebuf, sizeof(ebuf)), NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, sb_http_tls_no_passphrase);
	SSL_CTX_set_alpn_select_cb(ctx, sb_http_tls_alpn, NULL);
	if (sb_http_tls_readable(cert, "cannot read the TLS certificate") != 0 ||
	    sb_http_tls_readable(key, "cannot read the TLS key") != 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		sb_log_kv(SB_LOG_ERROR, "cannot load the TLS certificate", "file", cert, "error",
		          sb_http_tls_error(ebuf, sizeof(ebuf)), NULL);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		sb_log_kv(SB_LOG_ERROR, "cannot load the TLS key", "file", key, "error",
		          sb_http_tls_error(ebuf, sizeof(ebuf)), NULL);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		sb_log_kv(SB_LOG_ERROR, "the TLS key does not match the certificate", "file", key,
		          "cert_file", cert, NULL);
		goto fail;
	}
	ERR_clear_error();
	sb_http_tls_log_loaded(ctx, cert);
	*out = ctx;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ret;
}

int
sb__http_tls_new(const char *cert, const char *key, int reload_ms, struct sb__http_tls **out)
{
	if (cert == NULL || key == NULL || *cert == '\0' || *key == '\0') {
		sb_log_kv(SB_LOG_ERROR, "TLS needs both a certificate file and a key file",
		          "cert_file", cert, "key_file", key, NULL);
		return SB_EINVAL;
	}
	struct sb__http_tls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SB_ENOMEM;
	int ret = SB_ENOMEM;
	if ((t->cert = strdup(cert)) == NULL || (t->key = strdup(key)) == NULL)
		goto fail;
	t->reload_ms = reload_ms == 0 ? SB_HTTP_TLS_RELOAD_MS : reload_ms;
	sb_http_tls_stamp(cert, &t->cert_stamp);
	sb_http_tls_stamp(key, &t->key_stamp);
	if ((ret = sb_http_tls_ctx_load(cert, key, &t->ctx)) != 0)
		goto fail;
	pthread_mutex_init(&t->ctx_lock, NULL);
	pthread_mutex_init(&t->reload_lock, NULL);
	*out = t;
	return 0;
fail:
	free(t->cert);
	free(t->key);
	free(t);
	return ret;
}

void
sb__http_tls_free(struct sb__http_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->ctx_lock);
	pthread_mutex_destroy(&t->reload_lock);
	free(t->cert);
	free(t->key);
	free(t);
}

/* sb_http_tls_reload_locked loads the files and swaps contexts; reload_lock is held. */
static int
sb_http_tls_reload_locked(struct sb__http_tls *t)
{
	/* Stamp first: a file replaced while it is being read changes again after. */
	sb_http_tls_stamp(t->cert, &t->cert_stamp);
	sb_http_tls_stamp(t->key, &t->key_stamp);
	SSL_CTX *ctx;
	int rc = sb_http_tls_ctx_load(t->cert, t->key, &ctx);
	if (rc != 0) {
		sb_log_kv(SB_LOG_WARN, "TLS reload failed; keeping the previous certificate",
		          "file", t->cert, NULL);
		return rc;
	}
	pthread_mutex_lock(&t->ctx_lock);
	SSL_CTX *old = t->ctx;
	t->ctx = ctx;
	pthread_mutex_unlock(&t->ctx_lock);
	SSL_CTX_free(old); /* connections made from it hold their own references */
	return 0;
}

int
sb__http_tls_reload(struct sb__http_tls *t)
{
	pthread_mutex_lock(&t->reload_lock);
	int rc = sb_http_tls_reload_locked(t);
	pthread_mutex_unlock(&t->reload_lock);
	return rc;
}

int
sb__http_tls_poll(struct sb__http_tls *t, int64_t now_ms)
{
	if (t->reload_ms < 0)
		return -1;
	if (now_ms < t->next_check)
		return (int)(t->next_check - now_ms);
	t->next_check = now_ms + t->reload_ms;
	if (pthread_mutex_trylock(&t->reload_lock) != 0)
		return t->reload_ms; /* a reload is under way elsewhere */
	struct sb_http_tls_stamp c, k;
	sb_http_tls_stamp(t->cert, &c);
	sb_http_tls_stamp(t->key, &k);
	if (!sb_http_tls_stamp_same(&c, &t->cert_stamp) ||
	    !sb_http_tls_stamp_same(&k, &t->key_stamp)) {
		sb_log_kv(SB_LOG_INFO, "TLS files changed; reloading", "file", t->cert, NULL);
		(void)sb_http_tls_reload_locked(t); /* logged; the old context stays on failure */
	}
	pthread_mutex_unlock(&t->reload_lock);
	return t->reload_ms;
}

struct ssl_st *
sb__http_tls_conn_new(struct sb__http_tls *t, int fd)
{
	pthread_mutex_lock(&t->ctx_lock);
	SSL *s = SSL_new(t->ctx);
	pthread_mutex_unlock(&t->ctx_lock);
	if (s == NULL)
		return NULL;
	if (SSL_set_fd(s, fd) != 1) {
		SSL_free(s);
		return NULL;
	}
	SSL_set_accept_state(s);
	return s;
}

void
sb__http_tls_conn_free(struct ssl_st *s, bool clean)
{
	if (s == NULL)
		return;
	if (clean) {
		ERR_clear_error();
		(void)SSL_shutdown(s); /* one non-blocking try to send close_notify */
	}
	ERR_clear_error();
	SSL_free(s);
}

/* sb_http_tls_status maps the result r of an SSL call to what the loop must do. */
static enum sb__http_tls_io
sb_http_tls_status(SSL *s, int r)
{
	switch (SSL_get_error(s, r)) {
	case SSL_ERROR_WANT_READ:
		return SB__HTTP_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return SB__HTTP_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return SB__HTTP_TLS_EOF;
	default:
		return SB__HTTP_TLS_FAIL;
	}
}

enum sb__http_tls_io
sb__http_tls_handshake(struct ssl_st *s, const char *remote)
{
	ERR_clear_error();
	int r = SSL_do_handshake(s);
	if (r == 1)
		return SB__HTTP_TLS_DONE;
	enum sb__http_tls_io st = sb_http_tls_status(s, r);
	if (st != SB__HTTP_TLS_WANT_READ && st != SB__HTTP_TLS_WANT_WRITE &&
	    sb_log_enabled(SB_LOG_DEBUG)) {
		char ebuf[256];
		sb_log_kv(SB_LOG_DEBUG, "TLS handshake failed", "remote", remote, "error",
		          ERR_peek_last_error() ? sb_http_tls_error(ebuf, sizeof(ebuf))
		                                : "connection closed",
		          NULL);
	}
	ERR_clear_error();
	return st == SB__HTTP_TLS_EOF ? SB__HTTP_TLS_FAIL : st;
}

enum sb__http_tls_io
sb__http_tls_read(struct ssl_st *s, void *buf, size_t n, size_t *got)
{
	ERR_clear_error();
	int r = SSL_read_ex(s, buf, n, got);
	if (r == 1)
		return SB__HTTP_TLS_DONE;
	enum sb__http_tls_io st = sb_http_tls_status(s, r);
	ERR_clear_error();
	return st;
}

enum sb__http_tls_io
sb__http_tls_write(struct ssl_st *s, const void *buf, size_t n, size_t *put)
{
	ERR_clear_error();
	int r = SSL_write_ex(s, buf, n, put);
	if (r == 1)
		return SB__HTTP_TLS_DONE;
	enum sb__http_tls_io st = sb_http_tls_status(s, r);
	ERR_clear_error();
	return st;
}

bool
sb__http_tls_pending(struct ssl_st *s)
{
	return SSL_pending(s) > 0;
}
