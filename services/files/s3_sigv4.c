/* s3_sigv4.c: AWS Signature Version 4 in the Authorization header, as S3 documents it: the
 * canonical request, the string to sign and the derived signing key, with OpenSSL's HMAC and
 * SHA-256. */
#include "s3.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_hex.h"

#define S3_HDRS_MAX 16

void
s3_sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	SHA256(p, n, d);
	sb_hex_encode(d, sizeof(d), out);
	out[64] = '\0';
}

void
s3_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int
s3_uri_encode(struct sb_buf *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		             (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
		             *p == '~' || (*p == '/' && keep_slash);
		char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
		if ((plain ? sb_buf_append(out, p, 1) : sb_buf_append(out, e, 3)) != 0)
			return SB_ENOMEM;
	}
	return 0;
}

/* s3_hmac writes HMAC-SHA256(key, msg) to out (32 bytes). */
static int
s3_hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	unsigned int olen = 0;
	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
	            &olen) != NULL &&
	               olen == 32
	           ? 0
	           : SB_EINVAL;
}

static int
s3_hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3_hdr *)a)->name, ((const struct s3_hdr *)b)->name);
}

/* s3_trimmed appends v without leading and trailing blanks, inner runs of blanks as one. */
static int
s3_trimmed(struct sb_buf *b, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	bool blank = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if ((blank && sb_buf_append(b, " ", 1) != 0) || sb_buf_append(b, v, 1) != 0)
			return SB_ENOMEM;
		blank = false;
	}
	return 0;
}

int
s3_sign(const struct s3_sign_in *in, struct sb_buf *out, struct sb_buf *canon)
{
	struct s3_hdr h[S3_HDRS_MAX + 3];
	size_t n = 0;
	struct sb_buf c = SB_BUF_INIT, names = SB_BUF_INIT, sts = SB_BUF_INIT;
	int rv = SB_EINVAL;
	if (in->nhdrs > S3_HDRS_MAX)
		return SB_EINVAL;
	for (size_t i = 0; i < in->nhdrs; i++) {
		for (const char *p = in->hdrs[i].name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				return SB_EINVAL;
		h[n++] = in->hdrs[i];
	}
	h[n++] = (struct s3_hdr){ "host", in->host };
	h[n++] = (struct s3_hdr){ "x-amz-content-sha256", in->payload_sha256 };
	h[n++] = (struct s3_hdr){ "x-amz-date", in->amz_date };
	qsort(h, n, sizeof(h[0]), s3_hdr_cmp);

	/* The canonical request. */
	rv = SB_ENOMEM;
	if (sb_buf_printf(&c, "%s\n%s\n%s\n", in->method, in->uri, in->query) != 0)
		goto done;
	for (size_t i = 0; i < n; i++)
		if (sb_buf_printf(&c, "%s:", h[i].name) != 0 || s3_trimmed(&c, h[i].value) != 0 ||
		    sb_buf_puts(&c, "\n") != 0 ||
		    sb_buf_printf(&names, "%s%s", i ? ";" : "", h[i].name) != 0)
			goto done;
	if (sb_buf_printf(&c, "\n%s\n%s", names.data, in->payload_sha256) != 0)
		goto done;

	/* The string to sign. */
	char day[9], creq[65];
	snprintf(day, sizeof(day), "%.8s", in->amz_date);
	s3_sha256_hex(c.data, c.len, creq);
	if (sb_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", in->amz_date,
	                  day, in->region, in->service, creq) != 0)
		goto done;

	/* The signing key: HMAC chain from "AWS4" + secret over date, region, service. */
	uint8_t k[32], sig[32];
	struct sb_buf secret = SB_BUF_INIT;
	if (sb_buf_printf(&secret, "AWS4%s", in->secret_key) != 0)
		goto done;
	rv = s3_hmac(secret.data, secret.len, day, k);
	explicit_bzero(secret.data, secret.len);
	sb_buf_free(&secret);
	if (rv != 0 || (rv = s3_hmac(k, 32, in->region, k)) != 0 ||
	    (rv = s3_hmac(k, 32, in->service, k)) != 0 ||
	    (rv = s3_hmac(k, 32, "aws4_request", k)) != 0 ||
	    (rv = s3_hmac(k, 32, sts.data, sig)) != 0)
		goto wipe;
	char hex[65];
	sb_hex_encode(sig, 32, hex);
	hex[64] = '\0';
	rv = sb_buf_printf(out,
	                   "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,"
	                   "Signature=%s",
	                   in->access_key, day, in->region, in->service, names.data, hex);
	if (rv == 0 && canon != NULL)
		rv = sb_buf_append(canon, c.data, c.len);
wipe:
	explicit_bzero(k, sizeof(k));
done:
	sb_buf_free(&c);
	sb_buf_free(&names);
	sb_buf_free(&sts);
	return rv;
}
