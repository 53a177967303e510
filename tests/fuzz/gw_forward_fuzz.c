/* gw_forward_fuzz: libFuzzer target for the gateway's form and HTTP Basic decoding
 * (services/gateway/forward.c: gw_parse_pairs for form bodies and query strings, gw_basic for
 * `Authorization: Basic`), compiled again here. The first byte picks the mode and options:
 *   mode 0  the rest is a form body / query string, read into auth.TokenRequest (every field a
 *           string), with or without overwrite, into an object that may already hold fields;
 *   mode 1  the rest is an Authorization value, read into auth.TokenRequest;
 *   mode 2  the rest is a form body read into sb.test.Everything (numbers, booleans, enums,
 *           bytes), whose object must then transcode or be refused with reasons;
 *   mode 3  round trip: the rest is cut into (field, value) pairs that are written as a form
 *           body with escapes chosen by the input, and as Basic credentials the way RFC 6749
 *           2.3.1 says a client writes them; the gateway must read back exactly those values.
 *
 * Properties:
 *   - gw_parse_pairs and gw_basic agree with independent decoders written from RFC 3986 / the
 *     urlencoded form / RFC 4648 + RFC 7617 (fz_form, fz_basic): what they accept is what the
 *     model accepts (within the documented length limits), and the fields they set carry the
 *     model's values; another scheme than Basic changes nothing;
 *   - nothing depends on memory the decoders did not write: each call is made twice, with the
 *     stack below it filled with different bytes first, and must give the same result (the
 *     Basic decoder once read stack bytes past what it decoded). */
#include "fuzz.h"

#include <strings.h>

#include "auth.pb-c.h"
#include "gateway.h"
#include "sb_json.h"
#include "sb_rpc.h"
#include "sb_rpc_status.h"
#include "test/transcode_test.pb-c.h"

/* forward.c's handler (gw_forward) also calls into the rest of the gateway, the RPC client and
 * the HTTP server, which are not built here: nothing this target calls reaches them. */
#define FZ_UNREACHABLE()                                                                           \
	do {                                                                                       \
		fprintf(stderr, "gw_forward_fuzz: %s reached\n", __func__);                        \
		abort();                                                                           \
	} while (0)
void
gw_reply(struct gw_req *r, int status, const char *ctype, const struct sb_http_header *h, size_t nh,
         const char *body, size_t len)
{
	FZ_UNREACHABLE();
}
void
gw_reply_problem(struct gw_req *r, int status, const char *detail, json_t *errors,
                 int64_t retry_after_ms)
{
	FZ_UNREACHABLE();
}
const char *
sb_http_req_header(const struct sb_http_req *r, const char *name)
{
	FZ_UNREACHABLE();
}
const char *
sb_jwt_principal_scope(const struct sb_jwt_principal *p, size_t i)
{
	FZ_UNREACHABLE();
}
struct sb_rpc_client *
sb_service_upstream(struct sb_service *svc, const char *peer)
{
	FZ_UNREACHABLE();
}
int
sb_rpc_call_async(struct sb_rpc_client *cli, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, const struct sb_rpc_meta *meta,
                  sb_rpc_done_fn cb, void *arg)
{
	FZ_UNREACHABLE();
}
void
sb_rpc_result_free(struct sb_rpc_result *res)
{
	FZ_UNREACHABLE();
}
const char *
sb_rpc_code_name(int code)
{
	FZ_UNREACHABLE();
}

#define FZ_NAME_MAX  63   /* longest name gw_parse_pairs reads (documented) */
#define FZ_VALUE_MAX 8191 /* longest value */

/* --- the models -------------------------------------------------------------------------- */

static bool
fz_utf8(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n); /* jansson checks UTF-8 on its own */
	json_decref(j);
	return j != NULL;
}

/* fz_pct decodes an application/x-www-form-urlencoded component: '+' is a space, %XX a byte.
 * Returns the length, or -1 (bad escape, NUL); out holds len + 1 bytes at least. */
static long
fz_pct(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (len - i < 3 || fz_hex((unsigned char)s[i + 1]) < 0 ||
			    fz_hex((unsigned char)s[i + 2]) < 0)
				return -1;
			c = (unsigned char)(fz_hex((unsigned char)s[i + 1]) * 16 +
			                    fz_hex((unsigned char)s[i + 2]));
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

/* The model's verdict. FZ_UNSURE: the gateway may accept or refuse (over a length limit the
 * documentation leaves to the implementation, or text that is not UTF-8). */
enum fz_verdict { FZ_REFUSE, FZ_ACCEPT, FZ_UNSURE };

/* fz_form reads s[0..len) into the object want as gw_parse_pairs is documented to. */
static enum fz_verdict
fz_form(json_t *want, const ProtobufCMessageDescriptor *d, const char *s, size_t len,
        bool overwrite)
{
	enum fz_verdict v = FZ_ACCEPT;
	char *name = malloc(len + 1), *value = malloc(len + 1);
	CHECK(name != NULL && value != NULL);
	for (size_t i = 0; i <= len;) {
		const char *amp = memchr(s + i, '&', len - i);
		size_t j = amp ? (size_t)(amp - s) : len;
		if (j > i) {
			const char *eq = memchr(s + i, '=', j - i);
			long nl = fz_pct(s + i, eq ? (size_t)(eq - s - i) : j - i, name);
			long vl = eq ? fz_pct(eq + 1, (size_t)(s + j - eq - 1), value) : 0;
			if (!eq)
				value[0] = '\0';
			if (nl < 0 || vl < 0) {
				v = FZ_REFUSE;
				break;
			}
			if (nl > FZ_NAME_MAX || vl > FZ_VALUE_MAX) {
				v = FZ_UNSURE;
				break;
			}
			/* As documented: a pair naming one of d's fields sets it as a JSON
			 * string, and a value that is not UTF-8 refuses the whole input; a pair
			 * naming no field of d is ignored by the parser, so the model ignores
			 * it too. */
			bool field =
			    protobuf_c_message_descriptor_get_field_by_name(d, name) != NULL;
			if (field && (overwrite || json_object_get(want, name) == NULL)) {
				if (!fz_utf8(value, (size_t)vl)) {
					v = FZ_REFUSE;
					break;
				}
				json_object_set_new(want, name, json_string(value));
			}
		}
		i = j + 1;
	}
	free(name);
	free(value);
	return v;
}

static int
fz_b64val(unsigned char c)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

/* fz_basic reads an Authorization value into want as gw_basic is documented to: RFC 7617
 * credentials, base64 exactly as token68 (RFC 4648 alphabet, padding only at the end), then
 * "id:secret" each form-urlencoded (RFC 6749 2.3.1). *scheme is false for another scheme. */
static enum fz_verdict
fz_basic(json_t *want, const char *h, bool *scheme)
{
	*scheme = strncasecmp(h, "Basic ", 6) == 0;
	if (!*scheme)
		return FZ_ACCEPT;
	h += 6;
	h += strspn(h, " ");
	size_t n = strlen(h), pad = 0;
	while (pad < 2 && pad < n && h[n - 1 - pad] == '=')
		pad++;
	if (n == 0 || n % 4 != 0)
		return FZ_REFUSE;
	unsigned char *raw = malloc(n), *o = raw;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		int v = i < n - pad ? fz_b64val((unsigned char)h[i]) : 0;
		if (v < 0) {
			free(raw);
			return FZ_REFUSE;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			*o++ = (unsigned char)(acc >> 16);
			*o++ = (unsigned char)(acc >> 8);
			*o++ = (unsigned char)acc;
			acc = 0;
		}
	}
	size_t rl = (size_t)(o - raw) - pad;
	enum fz_verdict v = n >= 1024 ? FZ_UNSURE : FZ_ACCEPT;
	unsigned char *colon = memchr(raw, ':', rl);
	char *id = malloc(rl + 1), *secret = malloc(rl + 1);
	long il = -1, sl = -1;
	if (colon != NULL) {
		il = fz_pct((char *)raw, (size_t)(colon - raw), id);
		sl = fz_pct((char *)colon + 1, rl - (size_t)(colon + 1 - raw), secret);
	}
	if (colon == NULL || il < 0 || sl < 0) {
		v = FZ_REFUSE;
	} else if (il > 255 || sl > 511) {
		v = FZ_UNSURE;
	} else if (v == FZ_ACCEPT) {
		if (!fz_utf8(id, (size_t)il) || !fz_utf8(secret, (size_t)sl)) {
			v = FZ_UNSURE;
		} else {
			json_object_set_new(want, "client_id", json_string(id));
			json_object_set_new(want, "client_secret", json_string(secret));
		}
	}
	free(id);
	free(secret);
	free(raw);
	return v;
}

/* --- calling the gateway, twice ---------------------------------------------------------- */

struct fz_call {
	int mode; /* 0 pairs, 1 basic */
	const ProtobufCMessageDescriptor *d;
	const char *s;
	size_t len;
	bool overwrite;
	const json_t *start; /* what the object holds before */
};

/* fz_dirty fills the stack the decoders are about to use with byte b. */
static __attribute__((noinline)) void
fz_dirty(int b)
{
	volatile char pad[64 * 1024];
	memset((char *)pad, b, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");
}

/* fz_run calls the decoder on `in` with nothing in between that could use the stack. */
static __attribute__((noinline)) int
fz_run(const struct fz_call *c, json_t *in)
{
	if (c->mode == 0)
		return gw_parse_pairs(in, c->d, c->s, c->len, c->overwrite);
	return gw_basic(in, c->d, c->s);
}

static int
fz_call(const struct fz_call *c, json_t **out)
{
	json_t *again = json_deep_copy(c->start);
	*out = json_deep_copy(c->start);
	CHECK(*out != NULL && again != NULL);
	fz_dirty(0x00);
	int rc = fz_run(c, *out);
	fz_dirty(0xff);
	int rc2 = fz_run(c, again);
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == rc2 && json_equal(*out, again)); /* the same, whatever the stack held */
	json_decref(again);
	return rc;
}

static void
fz_check(enum fz_verdict v, int rc, const json_t *got, const json_t *want)
{
	if (v == FZ_UNSURE)
		return;
	CHECK(rc == (v == FZ_ACCEPT ? 0 : -1));
	if (v == FZ_ACCEPT)
		CHECK(json_equal(got, want));
}

/* --- mode 3: written as a client writes them --------------------------------------------- */

static const char *const fz_fields[] = { "grant_type", "client_id",     "client_secret",
	                                 "scope",      "refresh_token", "audience" };

/* fz_enc percent-encodes s[0..n) into *o, each byte the way choice's bits say. */
static void
fz_enc(char **o, const uint8_t *s, size_t n, uint8_t choice)
{
	static const char up[] = "0123456789ABCDEF", low[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned c = s[i];
		bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (c == ' ' && (choice & 1)) {
			*(*o)++ = '+';
		} else if (safe && !(choice & 2)) {
			*(*o)++ = (char)c;
		} else {
			const char *hex = (choice & 4) ? low : up;
			*(*o)++ = '%';
			*(*o)++ = hex[c >> 4];
			*(*o)++ = hex[c & 15];
		}
		choice = (uint8_t)(choice >> 1 | choice << 7);
	}
}

static void
fz_b64(char *o, const uint8_t *s, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
		             (i + 2 < n ? s[i + 2] : 0);
		*o++ = a[v >> 18];
		*o++ = a[(v >> 12) & 63];
		*o++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? a[v & 63] : '=';
	}
	*o = '\0';
}

static void
fz_round_trip(const uint8_t *data, size_t size)
{
	/* Pairs: [field index byte, escape choice byte, value...] separated by NUL bytes. */
	/* each pair at most 3 * (13 + value) + 2 bytes, and each takes 3 input bytes or more */
	char *form = malloc(size * 16 + 64), *o = form;
	json_t *want = json_object();
	const uint8_t *vals[2] = { NULL, NULL };
	size_t vlen[2] = { 0, 0 }, npairs = 0;
	CHECK(form != NULL && want != NULL);
	while (size > 0) {
		const uint8_t *part;
		size_t plen;
		fz_next(&data, &size, &part, &plen);
		if (plen < 2)
			continue;
		const char *name = fz_fields[part[0] % 6];
		uint8_t choice = part[1];
		part += 2, plen -= 2;
		if (plen > FZ_VALUE_MAX || !fz_utf8((const char *)part, plen))
			continue; /* the gateway's fields are JSON strings */
		if (npairs++ > 0)
			*o++ = '&';
		fz_enc(&o, (const uint8_t *)name, strlen(name), choice);
		*o++ = '=';
		fz_enc(&o, part, plen, choice);
		json_object_set_new(want, name, json_stringn((const char *)part, plen));
		if (npairs <= 2)
			vals[npairs - 1] = part, vlen[npairs - 1] = plen;
	}
	json_t *start = json_object();
	struct fz_call c = { 0,    &sb__auth__token_request__descriptor,
		             form, (size_t)(o - form),
		             true, start };
	json_t *got = NULL;
	CHECK(fz_call(&c, &got) == 0 && json_equal(got, want));
	json_decref(got);

	/* Basic: the first two values as id and secret (the id's ':' escaped, as it must be). */
	if (vlen[0] <= 255 && vlen[1] <= 511) {
		uint8_t *cred = malloc(3 * (vlen[0] + vlen[1]) + 2);
		char *q = (char *)cred;
		fz_enc(&q, vals[0] ? vals[0] : (const uint8_t *)"", vlen[0], 0);
		*q++ = ':';
		fz_enc(&q, vals[1] ? vals[1] : (const uint8_t *)"", vlen[1], 0xff);
		size_t cl = (size_t)(q - (char *)cred);
		char *h = malloc(16 + cl / 3 * 4 + 8);
		memcpy(h, "Basic ", 6);
		fz_b64(h + 6, cred, cl);
		if (strlen(h + 6) < 1024) {
			json_t *bw = json_object();
			json_object_set_new(
			    bw, "client_id",
			    json_stringn((const char *)(vals[0] ? vals[0] : (const uint8_t *)""),
			                 vlen[0]));
			json_object_set_new(
			    bw, "client_secret",
			    json_stringn((const char *)(vals[1] ? vals[1] : (const uint8_t *)""),
			                 vlen[1]));
			struct fz_call b = { 1,     &sb__auth__token_request__descriptor,
				             h,     0,
				             false, start };
			CHECK(fz_call(&b, &got) == 0 && json_equal(got, bw));
			json_decref(got);
			json_decref(bw);
		}
		free(h);
		free(cred);
	}
	json_decref(start);
	json_decref(want);
	free(form);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	int mode = opt & 3;
	data++, size--;
	if (mode == 3) {
		fz_round_trip(data, size);
		return 0;
	}
	/* What the object holds before: nothing, or fields an earlier source (body) set. */
	json_t *start = json_object();
	if (opt & 4)
		json_object_set_new(start, "client_id", json_string("from-the-body"));
	if (opt & 8)
		json_object_set_new(start, "scope", json_string("messages:read"));
	bool overwrite = (opt & 16) != 0;
	char *s = mode == 1 ? fz_cstr(data, size) : fz_dup(data, size);
	json_t *got = NULL, *want = json_deep_copy(start);

	if (mode == 0) {
		struct fz_call c = { 0,    &sb__auth__token_request__descriptor, s, size, overwrite,
			             start };
		int rc = fz_call(&c, &got);
		fz_check(fz_form(want, c.d, s, size, overwrite), rc, got, want);
	} else if (mode == 1) {
		struct fz_call c = { 1, &sb__auth__token_request__descriptor, s, 0, false, start };
		bool scheme;
		int rc = fz_call(&c, &got);
		enum fz_verdict v = fz_basic(want, s, &scheme);
		if (!scheme)
			CHECK(rc == 0 && json_equal(got, start));
		fz_check(v, rc, got, want);
	} else {
		/* Typed fields: whatever the form sets must transcode, or be refused with reasons.
		 */
		struct fz_call c = {
			0, &sb__test__everything__descriptor, s, size, overwrite, start
		};
		if (fz_call(&c, &got) == 0) {
			ProtobufCMessage *m = NULL;
			struct sb_json_errors errs;
			json_object_del(got, "client_id");
			json_object_del(got, "scope");
			if (sb_json_to_pb(c.d, got, &m, &errs) == 0)
				protobuf_c_message_free_unpacked(m, NULL);
			else
				CHECK(errs.n >= 1);
		}
	}
	json_decref(got);
	json_decref(want);
	json_decref(start);
	free(s);
	return 0;
}
