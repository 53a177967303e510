/* filter.c: names, strategies and content filters (header equality, RFC 6901 JSON pointers
 * into the payload). Pure functions, no I/O: unit-tested in filter_test.c. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ps_strategy_names[] = {
	[PS_DIRECT] = "direct",           [PS_FAN_OUT] = "fan_out",
	[PS_ROUND_ROBIN] = "round_robin", [PS_LEAST_LOADED] = "least_loaded",
	[PS_PRIORITY] = "priority",       [PS_CONTENT] = "content",
};

bool
ps_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > PS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	size_t sl = strlen(PS_DLQ_SUFFIX);
	return !(n >= sl && strcmp(s + n - sl, PS_DLQ_SUFFIX) == 0);
}

bool
ps_strategy_parse(const char *s, enum ps_strategy *out)
{
	for (size_t i = 0; i < sizeof(ps_strategy_names) / sizeof(ps_strategy_names[0]); i++) {
		if (s != NULL && strcmp(s, ps_strategy_names[i]) == 0) {
			*out = (enum ps_strategy)i;
			return true;
		}
	}
	return false;
}

const char *
ps_strategy_name(enum ps_strategy s)
{
	return ps_strategy_names[s];
}

/* Decodes one reference token (~1 is '/', ~0 is '~') of length n into out (size on). Returns
 * false for a bad escape or a token that does not fit. */
static bool
ps_ptr_token(const char *p, size_t n, char *out, size_t on)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '~') {
			if (i + 1 >= n || (p[i + 1] != '0' && p[i + 1] != '1'))
				return false;
			c = p[++i] == '0' ? '~' : '/';
		}
		if (k + 1 >= on)
			return false;
		out[k++] = c;
	}
	out[k] = '\0';
	return true;
}

/* Parses an array index: "0" or digits without a leading zero. */
static bool
ps_ptr_index(const char *tok, size_t *out)
{
	size_t n = strlen(tok), v = 0;
	if (n == 0 || n > 9 || (n > 1 && tok[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return false;
		v = v * 10 + (size_t)(tok[i] - '0');
	}
	*out = v;
	return true;
}

json_t *
ps_json_pointer(json_t *doc, const char *ptr)
{
	char tok[PS_PTR_TOKEN_MAX];
	if (ptr == NULL)
		return NULL;
	if (ptr[0] == '\0')
		return doc;
	if (ptr[0] != '/')
		return NULL;
	const char *p = ptr + 1;
	json_t *cur = doc;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!ps_ptr_token(p, n, tok, sizeof(tok)))
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			size_t idx;
			if (!ps_ptr_index(tok, &idx))
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		if (cur == NULL)
			return NULL;
		if (slash == NULL)
			return cur;
		p = slash + 1;
	}
}

/* Checks that ptr is a well-formed RFC 6901 pointer. */
static bool
ps_ptr_ok(const char *ptr)
{
	char tok[PS_PTR_TOKEN_MAX];
	if (ptr[0] == '\0')
		return true;
	if (ptr[0] != '/' || strlen(ptr) > 1024)
		return false;
	for (const char *p = ptr + 1;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!ps_ptr_token(p, n, tok, sizeof(tok)))
			return false;
		if (slash == NULL)
			return true;
		p = slash + 1;
	}
}

json_t *
ps_filter_from_pb(const Sb__Pubsub__Filter *f, char *path, size_t pn, char *why, size_t wn)
{
	json_t *out = json_object(), *hs = json_object(), *ps = json_array();
	if (out == NULL || hs == NULL || ps == NULL)
		goto fail_nomem;
	json_object_set_new(out, "headers", hs);
	json_object_set_new(out, "payload", ps);
	if (f == NULL)
		return out;
	for (size_t i = 0; i < f->n_headers; i++) {
		const Sb__Pubsub__HeaderFilter *h = f->headers[i];
		if (h->name == NULL || h->name[0] == '\0' || strlen(h->name) > 256) {
			snprintf(path, pn, "filter.headers[%zu].name", i);
			snprintf(why, wn, "1 to 256 characters");
			goto fail;
		}
		if (json_object_get(hs, h->name) != NULL) {
			snprintf(path, pn, "filter.headers[%zu].name", i);
			snprintf(why, wn, "header named twice");
			goto fail;
		}
		json_object_set_new(hs, h->name, json_string(h->equals ? h->equals : ""));
	}
	for (size_t i = 0; i < f->n_payload; i++) {
		const Sb__Pubsub__PayloadFilter *p = f->payload[i];
		json_error_t err;
		if (p->pointer == NULL || !ps_ptr_ok(p->pointer)) {
			snprintf(path, pn, "filter.payload[%zu].pointer", i);
			snprintf(why, wn, "not an RFC 6901 JSON pointer");
			goto fail;
		}
		json_t *eq = (p->equals && p->equals->json && p->equals->json[0])
		                 ? json_loads(p->equals->json, JSON_DECODE_ANY, &err)
		                 : json_null();
		if (eq == NULL) {
			snprintf(path, pn, "filter.payload[%zu].equals", i);
			snprintf(why, wn, "not JSON");
			goto fail;
		}
		json_t *c = json_pack("{s:s,s:o}", "pointer", p->pointer, "equals", eq);
		if (c == NULL || json_array_append_new(ps, c) != 0)
			goto fail_nomem;
	}
	return out;
fail_nomem:
	snprintf(path, pn, "filter");
	snprintf(why, wn, "out of memory");
fail:
	json_decref(out);
	return NULL;
}

bool
ps_filter_match(const json_t *filter, const json_t *headers, json_t *payload)
{
	const char *k;
	json_t *v;
	json_t *hs = json_object_get(filter, "headers");
	json_object_foreach(hs, k, v)
	{
		json_t *have = json_object_get(headers, k);
		if (!json_is_string(have) || !json_equal(have, v))
			return false;
	}
	json_t *ps = json_object_get(filter, "payload");
	size_t i;
	json_array_foreach(ps, i, v)
	{
		json_t *at =
		    payload
		        ? ps_json_pointer(payload, json_string_value(json_object_get(v, "pointer")))
		        : NULL;
		if (at == NULL || !json_equal(at, json_object_get(v, "equals")))
			return false;
	}
	return true;
}
