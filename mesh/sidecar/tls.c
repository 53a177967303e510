/* tls.c: the sidecar's identity: TLS 1.3 contexts for both directions made from one
 * certificate, key and CA bundle, swapped when the files change. A connection holds a
 * reference to the context it was made from (SSL_new), so a swap never disturbs one. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sb_log.h"
#include "sidecar.h"

static void
tls_log_error(const char *what, const char *file)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	sb_log_kv(SB_LOG_ERROR, what, "file", file, "error", buf, NULL);
}

static void
tls_stamp(const char *path, long long out[3])
{
	struct stat st;
	if (stat(path, &st) != 0) {
		out[0] = out[1] = out[2] = -1;
		return;
	}
	out[0] = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	out[1] = (long long)st.st_size;
	out[2] = (long long)st.st_ino;
}

bool
mesh_tls_changed(struct mesh_tls *t)
{
	const char *files[3] = { t->cert, t->key, t->ca };
	for (int i = 0; i < 3; i++) {
		long long s[3];
		tls_stamp(files[i], s);
		if (s[0] != t->stamp[i].mtime_ns || s[1] != t->stamp[i].size ||
		    s[2] != t->stamp[i].ino)
			return true;
	}
	return false;
}

/* tls_ctx_new makes one context: TLS 1.3 only, our certificate chain and key, peers verified
 * against the CA file; a server requires a client certificate. */
static SSL_CTX *
tls_ctx_new(struct mesh_tls *t, bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	/* Connections are long-lived nng pipes: no resumption, no tickets to send. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Read whole bursts with one read(2) instead of a record header and a body each. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
		tls_log_error("cannot load certificate", t->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_error("cannot load key (or it does not match the certificate)", t->key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
		tls_log_error("cannot load CA", t->ca);
		goto fail;
	}
	SSL_CTX_set_verify(
	    ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER,
	    NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
mesh_tls_cert_id(X509 *cert, char *out, size_t n)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int found = 0, ret = -1;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type != GEN_URI)
			continue;
		found++;
		const ASN1_IA5STRING *uri = g->d.uniformResourceIdentifier;
		int len = ASN1_STRING_length(uri);
		if (len <= 0 || (size_t)len >= n || memchr(ASN1_STRING_get0_data(uri), 0, len))
			continue;
		memcpy(out, ASN1_STRING_get0_data(uri), (size_t)len);
		out[len] = '\0';
		ret = 0;
	}
	GENERAL_NAMES_free(names);
	/* An X.509 SVID carries exactly one URI SAN. */
	return found == 1 ? ret : -1;
}

int
mesh_tls_peer_id(SSL *s, char *out, size_t n)
{
	X509 *peer = SSL_get0_peer_certificate(s);
	if (peer == NULL)
		return -1;
	return mesh_tls_cert_id(peer, out, n);
}

int
mesh_tls_load(struct mesh_tls *t)
{
	long long st[3][3];
	const char *files[3] = { t->cert, t->key, t->ca };
	for (int i = 0; i < 3; i++)
		tls_stamp(files[i], st[i]);
	SSL_CTX *srv = tls_ctx_new(t, true);
	SSL_CTX *cli = srv ? tls_ctx_new(t, false) : NULL;
	if (cli == NULL) {
		SSL_CTX_free(srv);
		return -1;
	}
	X509 *cert = SSL_CTX_get0_certificate(srv);
	char id[MESH_ID_MAX];
	struct mesh_id parts;
	if (mesh_tls_cert_id(cert, id, sizeof id) != 0 ||
	    mesh_id_parse(id, strlen(id), &parts) != 0) {
		sb_log_kv(SB_LOG_ERROR, "certificate has no single SPIFFE URI SAN", "file", t->cert,
		          NULL);
		SSL_CTX_free(srv);
		SSL_CTX_free(cli);
		return -1;
	}
	struct tm tm;
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	long long not_after = 0;
	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		not_after = (long long)timegm(&tm);
	/* Ours are refused by peers once expired; still load it, /ready reports it. */
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	t->server = srv;
	t->client = cli;
	memcpy(t->self_id, id, sizeof id);
	for (int i = 0; i < 3; i++) {
		t->stamp[i].mtime_ns = st[i][0];
		t->stamp[i].size = st[i][1];
		t->stamp[i].ino = st[i][2];
	}
	atomic_store(&t->not_after, not_after);
	atomic_store(&t->loaded, true);
	char exp[32];
	snprintf(exp, sizeof exp, "%lld", not_after);
	sb_log_kv(SB_LOG_INFO, "identity loaded", "id", id, "not_after", exp, NULL);
	return 0;
}

void
mesh_tls_free(struct mesh_tls *t)
{
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	t->server = t->client = NULL;
}
