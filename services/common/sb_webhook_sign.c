/* sign.c: the webhook signature, v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>. */
#include "sb_webhook.h"
#include "sb_util_hex.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "sb_err.h"

int
sb_webhook_sign(const char *secret, int64_t ts, const char *body, size_t blen, char *out, size_t n)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	char prefix[32];
	int rv = SB_EIO;
	int plen = snprintf(prefix, sizeof(prefix), "%lld.", (long long)ts);
	if (n < 3 + 64 + 1)
		return SB_ERANGE;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	size_t outl = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		                OSSL_PARAM_construct_end() };
	if (ctx == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body, blen) ||
	    !EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) || outl != 32)
		goto done;
	mlen = (unsigned int)outl;
	memcpy(out, "v1=", 3);
	sb_hex_encode(mac, mlen, out + 3);
	out[3 + 2 * mlen] = '\0';
	rv = 0;
done:
	explicit_bzero(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rv;
}
