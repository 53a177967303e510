/* body.c: request bodies stored as they arrive (files_body_store, files.h).
 *
 * A streamed body (sb_http_req_read, decided by files_route_streamed) is read on the worker in
 * pieces of FILES_BODY_PIECE bytes; each piece is digested and put through the store's writer
 * at once, which starts its writeback early, and the writer's fdatasync at the end makes the
 * whole body durable before the caller commits and answers. Memory per request is one piece,
 * whatever the body's size. A store without a writer (S3: one object per acknowledged write)
 * gets the body whole, read into memory first, as before streaming. */
#include "files.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

/* files_body_digest finishes b's digest and compares it with b->want. Returns 0 or
 * SB_EINVAL (mismatch). */
static int
files_body_digest(EVP_MD_CTX *md, struct files_body *b)
{
	if (md == NULL)
		return 0;
	if (EVP_DigestFinal_ex(md, b->digest, &b->digest_len) != 1)
		return SB_EIO;
	if (b->want != NULL &&
	    (b->want_len != b->digest_len || memcmp(b->want, b->digest, b->want_len) != 0))
		return SB_EINVAL;
	return 0;
}

/* files_body_held stores a body that is whole in memory: checked first, then written. */
static int
files_body_held(struct files_call *c, const char *key, int64_t off, const char *body, size_t len,
                EVP_MD_CTX *md, struct files_body *b)
{
	int rv;
	if (md != NULL && EVP_DigestUpdate(md, body, len) != 1)
		return SB_EIO;
	if ((rv = files_body_digest(md, b)) != 0)
		return rv;
	if (key != NULL && len > 0 &&
	    (rv = c->f->store->ops->write(c->f->store, key, off, body, len)) != 0)
		return SB_EIO;
	b->got = (int64_t)len;
	return 0;
}

/* files_body_read_all reads c's streamed body whole into memory, for a store without a
 * writer. */
static int
files_body_read_all(struct files_call *c, char **out)
{
	size_t len = c->req->body_len, have = 0;
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return SB_ENOMEM;
	while (have < len) {
		ssize_t n = sb_http_req_read(c->req, buf + have, len - have);
		if (n <= 0) {
			free(buf);
			return n < 0 ? (int)n : SB_ECLOSED;
		}
		have += (size_t)n;
	}
	*out = buf;
	return 0;
}

/* files_body_pieces streams c's body through the store's writer. */
static int
files_body_pieces(struct files_call *c, const char *key, int64_t off, EVP_MD_CTX *md,
                  struct files_body *b)
{
	const struct files_store_ops *ops = c->f->store->ops;
	struct files_wr *w = NULL;
	char *piece = malloc(FILES_BODY_PIECE);
	int rv = piece == NULL ? SB_ENOMEM
	         : key == NULL ? 0 /* digest only */
	                       : ops->wopen(c->f->store, key, off, &w);
	if (rv != 0) {
		free(piece);
		return rv == SB_ENOMEM ? rv : SB_EIO;
	}
	int64_t got = 0, len = (int64_t)c->req->body_len;
	int client = 0;
	while (got < len) {
		ssize_t n = sb_http_req_read(c->req, piece, FILES_BODY_PIECE);
		if (n <= 0) {
			client = n < 0 ? (int)n : SB_ECLOSED;
			break;
		}
		if (md != NULL && EVP_DigestUpdate(md, piece, (size_t)n) != 1) {
			rv = SB_EIO;
			break;
		}
		if (w != NULL && (rv = ops->wput(w, piece, (size_t)n)) != 0)
			break;
		got += n;
	}
	free(piece);
	if (w == NULL) { /* digest only */
		if (rv != 0 || client != 0)
			return rv != 0 ? rv : client;
		if ((rv = files_body_digest(md, b)) == 0)
			b->got = got;
		return rv;
	}
	if (rv != 0) {
		ops->wclose(w, false);
		return SB_EIO;
	}
	if (client != 0) {
		/* The client left or stalled: keep what arrived when asked to, durably. */
		if (b->keep_partial && got > 0 && ops->wclose(w, true) == 0)
			b->got = got;
		else if (!b->keep_partial || got == 0)
			ops->wclose(w, false);
		return client;
	}
	if ((rv = files_body_digest(md, b)) != 0) {
		ops->wclose(w, false);
		return rv;
	}
	if (ops->wclose(w, true) != 0)
		return SB_EIO;
	b->got = got;
	return 0;
}

int
files_body_store(struct files_call *c, const char *key, int64_t off, struct files_body *b)
{
	EVP_MD_CTX *md = NULL;
	b->got = 0;
	b->digest_len = 0;
	if (b->md != NULL) {
		if ((md = EVP_MD_CTX_new()) == NULL)
			return SB_ENOMEM;
		if (EVP_DigestInit_ex(md, (const EVP_MD *)b->md, NULL) != 1) {
			EVP_MD_CTX_free(md);
			return SB_EIO;
		}
	}
	int rv;
	if (!c->req->streamed) {
		rv = files_body_held(c, key, off, c->req->body, c->req->body_len, md, b);
	} else if (key == NULL || c->f->store->ops->wopen != NULL) {
		rv = files_body_pieces(c, key, off, md, b);
	} else {
		char *buf = NULL;
		if ((rv = files_body_read_all(c, &buf)) == 0)
			rv = files_body_held(c, key, off, buf, c->req->body_len, md, b);
		free(buf);
	}
	EVP_MD_CTX_free(md);
	if (rv == SB_EIO)
		sb_log_kv(SB_LOG_ERROR, "cannot store a request body", "key", key, NULL);
	return rv;
}
