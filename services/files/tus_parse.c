/* tus_parse.c: parsers of the tus request headers and of file names. Everything here reads
 * untrusted input and is checked by tests/fuzz/files_tus_fuzz.c. */
#include "files.h"

#include <string.h>

#include <openssl/evp.h>

#include "sb_err.h"
#include "sb_util_b64.h"

int
files_parse_size(const char *s, int64_t *out)
{
	if (s == NULL || *s == '\0')
		return SB_EINVAL;
	size_t n = strlen(s);
	if (n > 19)
		return SB_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SB_EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return SB_EINVAL;
	*out = (int64_t)v;
	return 0;
}

bool
files_type_ok(const char *s)
{
	static const char tspecials[] = "()<>@,;:\\\"/[]?={} \t";
	size_t n = strlen(s);
	if (n == 0 || n >= FILES_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	/* type "/" subtype, both non-empty tokens; anything after ';' is parameters */
	size_t i = 0;
	while (i < n && strchr(tspecials, s[i]) == NULL)
		i++;
	if (i == 0 || i >= n || s[i] != '/')
		return false;
	size_t j = ++i;
	while (i < n && strchr(tspecials, s[i]) == NULL)
		i++;
	if (i == j)
		return false;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == n || s[i] == ';';
}

/* files_utf8_len returns the length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
files_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	/* C1 controls (U+0080..U+009F) are control characters too */
	if (len == 2 && cp < 0xa0)
		return 0;
	return len;
}

void
files_sanitize_name(const char *in, size_t n, char out[FILES_NAME_MAX])
{
	const unsigned char *s = (const unsigned char *)in;
	size_t start = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\\')
			start = i + 1;
	size_t o = 0;
	bool lead = true;
	for (size_t i = start; i < n;) {
		size_t len = files_utf8_len(s + i, n - i);
		char repl = 0;
		if (len == 0) {
			repl = '_';
			len = 1;
		} else if (len == 1 && (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == ';' ||
		                        s[i] == '%')) {
			repl = '_';
		}
		if (lead && len == 1 && repl == 0 && (s[i] == '.' || s[i] == ' ')) {
			i++;
			continue;
		}
		lead = false;
		size_t need = repl ? 1 : len;
		if (o + need >= FILES_NAME_MAX)
			break;
		if (repl)
			out[o++] = repl;
		else
			memcpy(out + o, s + i, len), o += len;
		i += len;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '.'))
		o--;
	if (o == 0) {
		strcpy(out, "file");
		return;
	}
	out[o] = '\0';
}

#define FILES_META_PAIRS_MAX 64
#define FILES_META_VALUE_MAX 4096

int
files_meta_parse(const char *s, struct files_meta *m)
{
	memset(m, 0, sizeof(*m));
	if (s == NULL)
		return 0;
	const char *keys[FILES_META_PAIRS_MAX];
	size_t klens[FILES_META_PAIRS_MAX];
	const char *p = s;
	if (*p == '\0')
		return 0;
	for (;;) {
		while (*p == ' ')
			p++;
		const char *k = p;
		while (*p > 0x20 && *p < 0x7f && *p != ',')
			p++;
		size_t klen = (size_t)(p - k);
		if (klen == 0)
			return SB_EINVAL;
		const char *v = NULL;
		size_t vlen = 0;
		if (*p == ' ') {
			while (*p == ' ')
				p++;
			v = p;
			while (*p != '\0' && *p != ',' && *p != ' ')
				p++;
			vlen = (size_t)(p - v);
			while (*p == ' ')
				p++;
		}
		if (*p != '\0' && *p != ',')
			return SB_EINVAL;
		if (m->npairs == FILES_META_PAIRS_MAX)
			return SB_EINVAL;
		for (size_t i = 0; i < m->npairs; i++)
			if (klens[i] == klen && memcmp(keys[i], k, klen) == 0)
				return SB_EINVAL;
		keys[m->npairs] = k;
		klens[m->npairs] = klen;
		m->npairs++;
		uint8_t val[FILES_META_VALUE_MAX];
		size_t got = 0;
		if (v != NULL &&
		    sb_b64_decode(v, vlen, SB_B64_STD | SB_B64_PAD, val, sizeof(val), &got) != 0)
			return SB_EINVAL;
#define KEY_IS(lit) (klen == sizeof(lit) - 1 && memcmp(k, lit, klen) == 0)
		if (KEY_IS("filename") || (KEY_IS("name") && m->filename[0] == '\0')) {
			files_sanitize_name((const char *)val, got, m->filename);
		} else if (KEY_IS("filetype") || KEY_IS("type") || KEY_IS("contentType")) {
			if (got >= FILES_TYPE_MAX)
				return SB_EINVAL;
			memcpy(m->type, val, got);
			m->type[got] = '\0';
			if (got > 0 && !files_type_ok(m->type))
				return SB_EINVAL;
		}
#undef KEY_IS
		if (*p == '\0')
			return 0;
		p++; /* ',' */
	}
}

int
files_checksum_parse(const char *s, enum files_sum_alg *alg, uint8_t digest[64], size_t *dlen)
{
	if (s == NULL)
		return SB_EINVAL;
	const char *sp = strchr(s, ' ');
	if (sp == NULL || sp == s)
		return SB_EINVAL;
	size_t alen = (size_t)(sp - s);
	size_t want;
	if (alen == 4 && memcmp(s, "sha1", 4) == 0) {
		*alg = FILES_SUM_SHA1;
		want = 20;
	} else if (alen == 6 && memcmp(s, "sha256", 6) == 0) {
		*alg = FILES_SUM_SHA256;
		want = 32;
	} else if (alen == 3 && memcmp(s, "md5", 3) == 0) {
		*alg = FILES_SUM_MD5;
		want = 16;
	} else {
		for (size_t i = 0; i < alen; i++)
			if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
				return SB_EINVAL;
		return SB_ENOTFOUND;
	}
	const char *b = sp + 1;
	if (sb_b64_decode(b, strlen(b), SB_B64_STD | SB_B64_PAD, digest, 64, dlen) != 0 ||
	    *dlen != want)
		return SB_EINVAL;
	return 0;
}

const EVP_MD *
files_checksum_md(enum files_sum_alg alg)
{
	return alg == FILES_SUM_SHA1     ? EVP_sha1()
	       : alg == FILES_SUM_SHA256 ? EVP_sha256()
	       : alg == FILES_SUM_MD5    ? EVP_md5()
	                                 : NULL;
}

size_t
files_checksum_compute(enum files_sum_alg alg, const void *buf, size_t n, uint8_t out[64])
{
	const EVP_MD *md = files_checksum_md(alg);
	unsigned int len = 0;
	if (md == NULL || EVP_Digest(buf, n, out, &len, md, NULL) != 1)
		return 0;
	return len;
}
