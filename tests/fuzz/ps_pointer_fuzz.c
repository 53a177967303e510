/* ps_pointer_fuzz: libFuzzer target for pubsub's RFC 6901 JSON pointers (services/pubsub/
 * filter.c, ps_json_pointer), which evaluate the pointers of content filters against message
 * payloads that publishers send. The first byte picks the mode:
 *   even  the rest is "<JSON document>\0<pointer>": the pointer is evaluated on the document;
 *   odd   the rest is a JSON document followed by choice bytes: a path through the document is
 *         chosen with them and written as a pointer (keys escaped: "~" as "~0", "/" as "~1").
 *
 * Properties:
 *   - even: the result is what an independent evaluator written here from RFC 6901 section 4
 *     finds (the same node, or nothing): tokens split on "/", "~1" then "~0" unescaped, a bad
 *     "~" escape or a pointer not starting with "/" names nothing, array indexes are "0" or
 *     digits without a leading zero;
 *   - odd: the pointer written for a path resolves to exactly the node at its end. */
#include "fuzz.h"

#include <jansson.h>

#include "pubsub.h"

/* The reference: RFC 6901 evaluation, written without sharing anything with filter.c. */
static json_t *
ref_eval(json_t *doc, const char *ptr)
{
	if (*ptr == '\0')
		return doc;
	if (*ptr != '/')
		return NULL;
	char *copy = strdup(ptr + 1);
	json_t *cur = doc;
	if (copy == NULL)
		abort();
	/* strsep keeps empty tokens ("/a//b"), as RFC 6901 requires. */
	char *rest = copy;
	for (char *tok; cur != NULL && (tok = strsep(&rest, "/")) != NULL;) {
		for (char *t = tok; *t; t++)
			if (*t == '~' && t[1] != '0' && t[1] != '1') {
				cur = NULL;
				goto out;
			}
		/* "~1" -> "/", then "~0" -> "~" (in that order, RFC 6901 section 4). */
		char buf[2048];
		size_t k = 0;
		for (char *t = tok; *t && k + 1 < sizeof(buf); t++) {
			if (t[0] == '~' && t[1] == '1') {
				buf[k++] = '/';
				t++;
			} else {
				buf[k++] = *t;
			}
		}
		buf[k] = '\0';
		char buf2[2048];
		size_t j = 0;
		for (size_t i = 0; buf[i] && j + 1 < sizeof(buf2); i++) {
			if (buf[i] == '~' && buf[i + 1] == '0') {
				buf2[j++] = '~';
				i++;
			} else {
				buf2[j++] = buf[i];
			}
		}
		buf2[j] = '\0';
		/* the model of the documented limit: a decoded token that does not fit
		 * PS_PTR_TOKEN_MAX names nothing */
		if (strlen(buf2) >= PS_PTR_TOKEN_MAX - 1) {
			cur = NULL;
			goto out;
		}
		if (json_is_object(cur)) {
			cur = json_object_get(cur, buf2);
		} else if (json_is_array(cur)) {
			size_t n = strlen(buf2);
			if (n == 0 || n > 9 || strspn(buf2, "0123456789") != n ||
			    (n > 1 && buf2[0] == '0')) {
				cur = NULL;
				goto out;
			}
			cur = json_array_get(cur, (size_t)strtoul(buf2, NULL, 10));
		} else {
			cur = NULL;
		}
	}
out:
	free(copy);
	return cur;
}

/* Appends the escaped key to b. */
static void
put_token(char *b, size_t cap, const char *key)
{
	size_t n = strlen(b);
	b[n++] = '/';
	for (const char *k = key; *k && n + 3 < cap; k++) {
		if (*k == '~') {
			b[n++] = '~';
			b[n++] = '0';
		} else if (*k == '/') {
			b[n++] = '~';
			b[n++] = '1';
		} else {
			b[n++] = *k;
		}
	}
	b[n] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	int mode = data[0] & 1;
	const char *rest = (const char *)data + 1;
	size_t n = size - 1;
	json_error_t err;
	if (mode == 0) {
		const char *nul = memchr(rest, '\0', n);
		if (nul == NULL)
			return 0;
		json_t *doc = json_loadb(rest, (size_t)(nul - rest), JSON_DECODE_ANY, &err);
		if (doc == NULL)
			return 0;
		char *ptr = fz_cstr((const uint8_t *)nul + 1, n - (size_t)(nul - rest) - 1);
		json_t *got = ps_json_pointer(doc, ptr);
		bool long_token = false;
		for (const char *t = ptr, *e; *t; t = e + (*e != '\0')) {
			e = strchr(t, '/');
			if (e == NULL)
				e = t + strlen(t);
			long_token |= (size_t)(e - t) >= 255;
		}
		if (!long_token)
			CHECK(got == ref_eval(doc, ptr));
		free(ptr);
		json_decref(doc);
		return 0;
	}
	/* odd: the document is the longest prefix jansson accepts with JSON_DISABLE_EOF_CHECK. */
	json_t *doc = json_loadb(rest, n, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &err);
	if (doc == NULL)
		return 0;
	size_t used = (size_t)err.position;
	const uint8_t *choice = (const uint8_t *)rest + used;
	size_t nchoice = used <= n ? n - used : 0;
	char ptr[8192] = "";
	json_t *cur = doc;
	for (size_t i = 0; i < nchoice && strlen(ptr) < 4096; i++) {
		if (json_is_object(cur) && json_object_size(cur) > 0) {
			size_t want = choice[i] % json_object_size(cur), k = 0;
			const char *key;
			json_t *v;
			json_object_foreach(cur, key, v)
			{
				if (k++ == want) {
					if (strlen(key) >= 200)
						goto done; /* beyond filter.c's token size */
					put_token(ptr, sizeof(ptr), key);
					cur = v;
					break;
				}
			}
		} else if (json_is_array(cur) && json_array_size(cur) > 0) {
			size_t idx = choice[i] % json_array_size(cur);
			char num[24];
			snprintf(num, sizeof(num), "%zu", idx);
			put_token(ptr, sizeof(ptr), num);
			cur = json_array_get(cur, idx);
		} else {
			break;
		}
	}
	CHECK(ps_json_pointer(doc, ptr) == cur);
done:
	json_decref(doc);
	return 0;
}
