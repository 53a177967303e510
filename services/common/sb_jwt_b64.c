/* sb_jwt_b64.c: strict base64url without padding (RFC 4648 section 5, RFC 7515 section 2),
 * through the runtime's one base64 (sb_util_b64). */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_util_b64.h"

size_t
sb__jwt_b64url_encode_to(const void *in, size_t n, char *out)
{
	size_t len = sb_b64_encoded_len(n, SB_B64_URL);
	(void)sb_b64_encode(in, n, SB_B64_URL, out, len + 1); /* the caller made room */
	return len;
}

int
sb_jwt_b64url_encode(const void *in, size_t n, char **out)
{
	if (n > (SIZE_MAX - 4) / 4 * 3)
		return SB_ENOMEM;
	size_t cap = sb_b64_encoded_len(n, SB_B64_URL) + 1;
	char *s = malloc(cap);
	if (s == NULL)
		return SB_ENOMEM;
	(void)sb_b64_encode(in, n, SB_B64_URL, s, cap);
	*out = s;
	return 0;
}

int
sb_jwt_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	return sb_b64_decode(s, n, SB_B64_URL | SB_B64_NOPAD, out, cap, outlen);
}
