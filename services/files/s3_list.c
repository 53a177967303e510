/* s3_list.c: the S3 backend's reader of ListObjectsV2 answers (untrusted input from the
 * network; fuzzed by files_s3_list_fuzz) and its segment key names. */
#include "s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

int
s3_seg_key(struct sb_buf *out, const char *key, int64_t off)
{
	return sb_buf_printf(out, "%s/%020" PRId64, key, off);
}

/* s3_xml_text copies the text between <tag> and </tag> in [s, e) to out, undoing the five
 * predefined entities; returns a pointer past the closing tag, or NULL when absent or when the
 * text holds a NUL byte (XML 1.0 has no such character, and the copy is read as a C string:
 * "true\0..." would read as "true"; found by files_s3_list_fuzz). */
const char *
s3_xml_text(const char *s, const char *e, const char *tag, struct sb_buf *out)
{
	char open[40], close[40];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = memmem(s, (size_t)(e - s), open, strlen(open));
	if (a == NULL)
		return NULL;
	a += strlen(open);
	const char *b = memmem(a, (size_t)(e - a), close, strlen(close));
	if (b == NULL || memchr(a, '\0', (size_t)(b - a)) != NULL)
		return NULL;
	static const struct {
		const char *ent, *ch;
	} ents[] = { { "&amp;", "&" },
		     { "&lt;", "<" },
		     { "&gt;", ">" },
		     { "&quot;", "\"" },
		     { "&apos;", "'" } };
	sb_buf_reset(out);
	for (const char *p = a; p < b;) {
		size_t k = 0;
		for (; k < sizeof(ents) / sizeof(ents[0]); k++)
			if ((size_t)(b - p) >= strlen(ents[k].ent) &&
			    memcmp(p, ents[k].ent, strlen(ents[k].ent)) == 0)
				break;
		if (k < sizeof(ents) / sizeof(ents[0])) {
			if (sb_buf_puts(out, ents[k].ch) != 0)
				return NULL;
			p += strlen(ents[k].ent);
		} else {
			if (sb_buf_append(out, p, 1) != 0)
				return NULL;
			p++;
		}
	}
	if (out->data == NULL && sb_buf_puts(out, "") != 0)
		return NULL;
	return b + strlen(close);
}

int
s3_list_parse(const char *xml, size_t len, const char *prefix, struct s3_seg **segs, size_t *n,
              char **next)
{
	const char *p = xml, *end = xml + len;
	struct sb_buf t = SB_BUF_INIT;
	size_t pl = strlen(prefix);
	int rv = SB_EPROTO;
	*next = NULL;
	/* XML 1.0 has no NUL character: a listing holding one is malformed, not read up to it. */
	if (memmem(xml, len, "<ListBucketResult", 17) == NULL || memchr(xml, '\0', len) != NULL)
		return SB_EPROTO;
	for (;;) {
		const char *a = memmem(p, (size_t)(end - p), "<Contents>", 10);
		if (a == NULL)
			break;
		const char *b = memmem(a, (size_t)(end - a), "</Contents>", 11);
		if (b == NULL)
			goto done;
		if (s3_xml_text(a, b, "Key", &t) == NULL)
			goto done;
		bool ours = t.len == pl + 20 && memcmp(t.data, prefix, pl) == 0 &&
		            strspn(t.data + pl, "0123456789") == 20;
		int64_t off = 0;
		if (ours) { /* 20 digits may exceed INT64_MAX: not a key this backend writes */
			errno = 0;
			off = strtoll(t.data + pl, NULL, 10);
			ours = errno == 0;
		}
		if (s3_xml_text(a, b, "Size", &t) == NULL)
			goto done;
		char *ep;
		errno = 0;
		long long size = strtoll(t.data, &ep, 10);
		if (t.len == 0 || *ep != '\0' || errno != 0 || size < 0)
			goto done;
		if (ours) {
			struct s3_seg *g = realloc(*segs, (*n + 1) * sizeof(**segs));
			if (g == NULL) {
				rv = SB_ENOMEM;
				goto done;
			}
			*segs = g;
			g[(*n)++] = (struct s3_seg){ off, size };
		}
		p = b + 11;
	}
	if (s3_xml_text(xml, end, "IsTruncated", &t) != NULL && strcmp(t.data, "true") == 0) {
		if (s3_xml_text(xml, end, "NextContinuationToken", &t) == NULL || t.len == 0)
			goto done;
		if ((*next = strdup(t.data)) == NULL) {
			rv = SB_ENOMEM;
			goto done;
		}
	}
	rv = 0;
done:
	sb_buf_free(&t);
	return rv;
}
