/* forward.c: a route row turned into an RPC. The request's fields come from the JSON body (or
 * a form body on GW_FORM rows), the path parameters (percent-decoded), the query string, HTTP
 * Basic credentials (GW_BASIC) and the Idempotency-Key header (GW_IDEMPOTENCY); they are
 * transcoded to the row's request type, the call is made asynchronously with the caller's
 * principal and trace context, and the reply is transcoded back, or mapped to problem+json (or
 * OAuth's error format). */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "sb_err.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_rpc_status.h"
#include "sb_util_hex.h"

#include "rpc.pb-c.h"

/* gw_field_value converts a text value (query, form, path) to the JSON type of the field
 * called name in d: numbers for numeric fields, booleans for bool, strings otherwise. NULL
 * when d has no such field (unknown query and form parameters are ignored, as OAuth asks). */
static json_t *
gw_field_value(const ProtobufCMessageDescriptor *d, const char *name, const char *v)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);
	if (f == NULL)
		return NULL;
	char *end = NULL;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		long long n = strtoll(v, &end, 10);
		return (*v != '\0' && *end == '\0') ? json_integer(n) : json_string(v);
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x = strtod(v, &end);
		return (*v != '\0' && *end == '\0') ? json_real(x) : json_string(v);
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			return json_true();
		if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			return json_false();
		return json_string(v);
	default: /* strings, 64-bit integers (as strings), enums by name, bytes (base64) */
		return json_string(v);
	}
}

/* gw_formdecode decodes n bytes of a form field or query parameter (percent-encoding, '+' as
 * space) into out. Returns 0, or -1 for a bad escape, a NUL or a value longer than cap - 1. */
static int
gw_formdecode(const char *s, size_t n, char *out, size_t cap)
{
	return sb_pct_decode(s, n, SB_PCT_PLUS_SPACE, out, cap, NULL) == 0 ? 0 : -1;
}

int
gw_parse_pairs(json_t *in, const ProtobufCMessageDescriptor *d, const char *s, size_t len,
               bool overwrite)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '&')
			j++;
		const char *eq = memchr(s + i, '=', j - i);
		if (j > i) {
			char name[64], value[8192];
			size_t nlen = eq ? (size_t)(eq - (s + i)) : j - i;
			if (gw_formdecode(s + i, nlen, name, sizeof(name)) != 0)
				return -1;
			value[0] = '\0';
			if (eq != NULL && gw_formdecode(eq + 1, (size_t)(s + j - eq - 1), value,
			                                sizeof(value)) != 0)
				return -1;
			if ((overwrite || json_object_get(in, name) == NULL) &&
			    protobuf_c_message_descriptor_get_field_by_name(d, name) != NULL) {
				/* NULL for a field's value that is not UTF-8: refused, rather
				 * than the field left at its default as if it had not been sent */
				json_t *v = gw_field_value(d, name, value);
				if (v == NULL)
					return -1;
				json_object_set_new(in, name, v);
			}
		}
		i = j + 1;
	}
	return 0;
}

/* gw_base64_len checks that s[0..n) is base64 as token68 allows it in Authorization (RFC 7235:
 * the alphabet of RFC 4648 section 4, '=' padding at the end only, whole quanta) and returns
 * the number of bytes it decodes to, or -1. No whitespace is allowed anywhere: a decoder that
 * skipped some would decode fewer bytes than the raw length says. */
static long
gw_base64_len(const char *s, size_t n)
{
	size_t pad = 0;
	while (pad < n && pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	if (n == 0 || n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n - pad; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -1;
	}
	return (long)(n / 4 * 3 - pad);
}

int
gw_basic(json_t *in, const ProtobufCMessageDescriptor *d, const char *h)
{
	if (strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	h += 6;
	while (*h == ' ')
		h++;
	int ret = -1;
	unsigned char raw[1024];
	char id[256], secret[512];
	size_t hl = strlen(h);
	long n = hl < sizeof(raw) ? gw_base64_len(h, hl) : -1;
	/* EVP_DecodeBlock writes whole quanta (padding as zero bytes): n + pad of them. */
	if (n < 0 || EVP_DecodeBlock(raw, (const unsigned char *)h, (int)hl) != (int)(hl / 4 * 3))
		goto done;
	char *colon = memchr(raw, ':', (size_t)n);
	if (colon == NULL)
		goto done;
	if (gw_formdecode((char *)raw, (size_t)(colon - (char *)raw), id, sizeof(id)) != 0 ||
	    gw_formdecode(colon + 1, (size_t)n - (size_t)(colon + 1 - (char *)raw), secret,
	                  sizeof(secret)) != 0)
		goto done;
	bool has_id = protobuf_c_message_descriptor_get_field_by_name(d, "client_id") != NULL;
	bool has_secret =
	    protobuf_c_message_descriptor_get_field_by_name(d, "client_secret") != NULL;
	json_t *vi = has_id ? gw_field_value(d, "client_id", id) : NULL;
	json_t *vs = has_secret ? gw_field_value(d, "client_secret", secret) : NULL;
	if ((has_id && vi == NULL) || (has_secret && vs == NULL)) { /* not UTF-8 */
		json_decref(vi);
		json_decref(vs);
		goto done;
	}
	if (vi != NULL)
		json_object_set_new(in, "client_id", vi);
	if (vs != NULL)
		json_object_set_new(in, "client_secret", vs);
	ret = 0;
done:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(raw, sizeof(raw));
	return ret;
}

/* gw_media_is tells whether the Content-Type value ct names media type type (any case), with or
 * without parameters: "application/json; charset=utf-8" is application/json, and
 * "application/jsonx" is not. */
static bool
gw_media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);
	if (ct == NULL || strncasecmp(ct, type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

struct gw_input_error {
	int status;
	const char *detail;
	struct sb_json_errors errs;
};

/* gw_input builds the JSON object the request type is read from. NULL with *e set on error. */
static json_t *
gw_input(struct gw_req *r, struct gw_input_error *e)
{
	const struct gw_route *route = r->route;
	struct sb_http_req *req = r->http;
	json_t *in = NULL;
	const char *ct = sb_http_req_header(req, "Content-Type");
	bool form = gw_media_is(ct, "application/x-www-form-urlencoded");
	if (req->body_len > 0 && form && (route->flags & GW_FORM)) {
		in = json_object();
		if (gw_parse_pairs(in, route->req, req->body, req->body_len, true) != 0) {
			json_decref(in);
			e->status = 400;
			e->detail = "the form body is malformed";
			return NULL;
		}
	} else if (req->body_len > 0) {
		if (!gw_media_is(ct, "application/json")) {
			e->status = 415;
			e->detail =
			    (route->flags & GW_FORM)
			        ? "the body must be application/x-www-form-urlencoded or JSON"
			        : "the body must be application/json";
			return NULL;
		}
		if (sb_json_parse(req->body, req->body_len, (int)r->gw->cfg->max_json_depth, &in,
		                  &e->errs) != 0) {
			e->status = 400;
			e->detail = "the body is not valid JSON";
			return NULL;
		}
		if (route->flags & GW_RAW_BODY) {
			/* checked JSON; the service reads the text itself */
			json_decref(in);
			in = json_object();
			json_t *text = json_stringn(req->body, req->body_len);
			if (in == NULL || text == NULL) {
				json_decref(in);
				json_decref(text);
				e->status = 400;
				e->detail = "the body is not valid JSON";
				return NULL;
			}
			json_object_set_new(in, "body", text);
		} else if (!json_is_object(in)) {
			json_decref(in);
			e->status = 400;
			e->detail = "the body must be a JSON object";
			return NULL;
		}
	} else {
		in = json_object();
	}
	if (req->query != NULL && req->query[0] != '\0' &&
	    gw_parse_pairs(in, route->req, req->query, strlen(req->query), false) != 0) {
		json_decref(in);
		e->status = 400;
		e->detail = "the query string is malformed";
		return NULL;
	}
	const char *auth = sb_http_req_header(req, "Authorization");
	if ((route->flags & GW_BASIC) && auth != NULL && gw_basic(in, route->req, auth) != 0) {
		json_decref(in);
		e->status = 400;
		e->detail = "the Basic credentials are malformed";
		return NULL;
	}
	const char *ik = sb_http_req_header(req, "Idempotency-Key");
	if ((route->flags & GW_IDEMPOTENCY) && ik != NULL) {
		json_t *v = gw_field_value(route->req, "idempotency_key", ik);
		if (v == NULL && protobuf_c_message_descriptor_get_field_by_name(
		                     route->req, "idempotency_key") != NULL) {
			/* not UTF-8: a key dropped would let a retry write twice */
			json_decref(in);
			e->status = 400;
			e->detail = "the Idempotency-Key header is not UTF-8";
			return NULL;
		}
		if (v != NULL)
			json_object_set_new(in, "idempotency_key", v);
	}
	for (size_t i = 0; i < r->params.n; i++) {
		/* a path segment is percent-encoded (RFC 3986 3.3; '+' is itself): the field
		 * gets the decoded value, which must be UTF-8 when the field is a string */
		char dec[GW_PARAM_MAX + 1];
		const char *name = r->params.name[i];
		json_t *v = NULL;
		if (sb_pct_decode(r->params.value[i], strlen(r->params.value[i]), 0, dec,
		                  sizeof(dec), NULL) != 0 ||
		    ((v = gw_field_value(route->req, name, dec)) == NULL &&
		     protobuf_c_message_descriptor_get_field_by_name(route->req, name) != NULL)) {
			json_decref(in);
			e->status = 400;
			e->detail = "the path is malformed (a bad escape, a NUL, or not UTF-8)";
			return NULL;
		}
		if (v != NULL)
			json_object_set_new(in, name, v);
	}
	return in;
}

static json_t *
gw_json_errors(const struct sb_json_errors *errs)
{
	if (errs->n == 0)
		return NULL;
	json_t *arr = json_array();
	for (size_t i = 0; i < errs->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s}", "field", errs->v[i].path,
		                                     "reason", errs->v[i].reason));
	return arr;
}

/* The error codes of RFC 6749 section 5.2, and the two of 4.1.2.1 for a server that cannot
 * answer: a service's message "<error>: <description>" names one of them. */
static const char *const gw_oauth_codes[] = {
	"invalid_request",     "invalid_client",          "invalid_grant",
	"unauthorized_client", "unsupported_grant_type",  "invalid_scope",
	"server_error",        "temporarily_unavailable", NULL,
};

/* gw_oauth_error answers RFC 6749 section 5.2: {"error","error_description"}. The error is the
 * one the message names ("<error>: <description>"); a message that names none (the gateway's
 * own, or a transport failure's) gets one by its status: invalid_client for 401,
 * temporarily_unavailable for 503 and 504, server_error for other 5xx, else invalid_request.
 * Retry-After as for problems (retry_after_ms, or 1 s on 503). */
static void
gw_oauth_error(struct gw_req *r, int status, const char *message, int64_t retry_after_ms)
{
	const char *error = NULL, *desc = message;
	const char *colon = strstr(message, ": ");
	for (size_t i = 0; colon != NULL && gw_oauth_codes[i] != NULL; i++) {
		size_t n = strlen(gw_oauth_codes[i]);
		if ((size_t)(colon - message) == n && strncmp(message, gw_oauth_codes[i], n) == 0) {
			error = gw_oauth_codes[i];
			desc = colon + 2;
		}
	}
	if (error == NULL)
		error = status == 401                    ? "invalid_client"
		        : status == 503 || status == 504 ? "temporarily_unavailable"
		        : status >= 500                  ? "server_error"
		                                         : "invalid_request";
	json_t *body = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct sb_http_header h[4] = { { "Cache-Control", "no-store" }, { "Pragma", "no-cache" } };
	size_t nh = 2;
	/* RFC 6749 5.2: the Basic challenge only when the client authenticated with Basic; a
	 * challenge to a browser that sent its credentials in the body would open a login box. */
	const char *authz = sb_http_req_header(r->http, "Authorization");
	if (status == 401 && authz != NULL && strncasecmp(authz, "Basic ", 6) == 0)
		h[nh++] =
		    (struct sb_http_header){ "WWW-Authenticate", "Basic realm=\"switchboard\"" };
	char secs[24];
	if (retry_after_ms > 0 || status == 503) {
		snprintf(secs, sizeof(secs), "%lld",
		         retry_after_ms > 0 ? (long long)(retry_after_ms + 999) / 1000 : 1LL);
		h[nh++] = (struct sb_http_header){ "Retry-After", secs };
	}
	/* Out of memory: the status and headers without a body rather than no answer. */
	gw_reply(r, status, text ? "application/json" : NULL, h, nh, text, text ? strlen(text) : 0);
	free(text);
}

static void
gw_forward_done(struct sb_rpc_result *res, void *arg)
{
	struct gw_req *r = arg;
	const struct gw_route *route = r->route;
	if (res->code == SB__RPC__CODE__OK && res->resp != NULL) {
		int status = route->ok_status ? route->ok_status : 200;
		if (res->http_status >= 200 && res->http_status < 300)
			status = res->http_status;
		const struct sb_http_header nostore[2] = { { "Cache-Control", "no-store" },
			                                   { "Pragma", "no-cache" } };
		size_t nh = (route->flags & GW_OAUTH) ? 2 : 0;
		if (route->flags & GW_RAW) {
			const Sb__Rpc__RawJson *raw = (const Sb__Rpc__RawJson *)res->resp;
			gw_reply(r, status, "application/json", nostore, nh, raw->json,
			         strlen(raw->json));
		} else {
			struct sb_buf b = SB_BUF_INIT;
			if (sb_pb_to_json_buf(res->resp, &b) == 0)
				gw_reply(r, status, "application/json", nostore, nh, b.data, b.len);
			else
				gw_reply_problem(r, 500, "cannot encode the response", NULL, 0);
			sb_buf_free(&b);
		}
		sb_rpc_result_free(res);
		return;
	}
	int status = sb_rpc_status_http(res->code);
	const char *msg = res->message[0] ? res->message : sb_rpc_code_name(res->code);
	if (route->flags & GW_OAUTH) {
		gw_oauth_error(r, status, msg, res->retry_after_ms);
	} else {
		json_t *errors = NULL;
		if (res->n_violations > 0) {
			errors = json_array();
			for (size_t i = 0; i < res->n_violations; i++)
				json_array_append_new(errors,
				                      json_pack("{s:s,s:s}", "field",
				                                res->violations[i]->field, "reason",
				                                res->violations[i]->reason));
		}
		gw_reply_problem(r, status, msg, errors, res->retry_after_ms);
	}
	sb_rpc_result_free(res);
}

/* gw_request_fast builds r's request straight from a JSON body (sb_json_fast_to_pb), when the
 * body is all there is to read: no form, path parameters, query string, Basic credentials or
 * Idempotency-Key header. NULL when it cannot, and gw_request then takes the general path, which
 * reads the same body into the same message or words the error. */
static ProtobufCMessage *
gw_request_fast(struct gw_req *r)
{
	const struct gw_route *route = r->route;
	const struct sb_http_req *req = r->http;
	if (req->body_len == 0 || r->params.n > 0 ||
	    (req->query != NULL && req->query[0] != '\0') ||
	    (route->flags & (GW_FORM | GW_RAW_BODY | GW_BASIC)) ||
	    ((route->flags & GW_IDEMPOTENCY) &&
	     sb_http_req_header(req, "Idempotency-Key") != NULL) ||
	    !gw_media_is(sb_http_req_header(req, "Content-Type"), "application/json"))
		return NULL;
	const struct sb_json_limits lim = {
		.max_bytes = SB_JSON_DEFAULT_MAX_BYTES,
		.max_depth = (int)r->gw->cfg->max_json_depth,
		.max_members = SB_JSON_DEFAULT_MAX_MEMBERS,
		.max_string = SB_JSON_DEFAULT_MAX_STRING,
	};
	ProtobufCMessage *msg = NULL;
	return sb_json_fast_to_pb(route->req, req->body, req->body_len, &lim, &msg) == 0 ? msg
	                                                                                 : NULL;
}

/* gw_request builds r's request message from everything the route reads, or answers r with the
 * error and returns NULL. */
static ProtobufCMessage *
gw_request(struct gw_req *r)
{
	const struct gw_route *route = r->route;
	ProtobufCMessage *msg = gw_request_fast(r);
	if (msg != NULL)
		return msg;
	struct gw_input_error e = { 0 };
	json_t *in = gw_input(r, &e);
	if (in == NULL) {
		if (route->flags & GW_OAUTH)
			gw_oauth_error(r, e.status, e.detail, 0);
		else
			gw_reply_problem(r, e.status, e.detail, gw_json_errors(&e.errs), 0);
		return NULL;
	}
	if (sb_json_to_pb(route->req, in, &msg, &e.errs) != 0) {
		json_decref(in);
		if (route->flags & GW_OAUTH) {
			char m[512];
			snprintf(m, sizeof(m), "invalid_request: %s: %s", e.errs.v[0].path,
			         e.errs.v[0].reason);
			gw_oauth_error(r, 400, m, 0);
		} else {
			gw_reply_problem(r, 400, "the request has invalid fields",
			                 gw_json_errors(&e.errs), 0);
		}
		return NULL;
	}
	json_decref(in);
	return msg;
}

void
gw_forward(struct gw_req *r)
{
	const struct gw_route *route = r->route;
	ProtobufCMessage *msg = gw_request(r);
	if (msg == NULL)
		return; /* answered */

	/* The principal the services see: who the token says is calling. */
	Sb__Rpc__Principal pr = SB__RPC__PRINCIPAL__INIT;
	char *scopes[SB_JWT_SCOPES_MAX];
	if (r->authenticated) {
		pr.user_id = r->principal.user_id[0] ? r->principal.user_id : r->principal.sub;
		pr.tenant_id = r->principal.tenant_id;
		pr.client_id = r->principal.client_id;
		pr.token_id = r->principal.jti;
		for (size_t i = 0; i < r->principal.nscopes && i < SB_JWT_SCOPES_MAX; i++)
			scopes[i] = (char *)sb_jwt_principal_scope(&r->principal, i);
		pr.n_scopes = r->principal.nscopes;
		pr.scopes = scopes;
	}
	struct sb_rpc_meta meta = {
		.principal = r->authenticated ? &pr : NULL,
		.traceparent = r->traceparent,
		.request_id = r->request_id,
		.timeout_ms = r->gw->cfg->rpc_timeout_ms,
	};
	struct sb_rpc_client *cli = gw_upstream(r->gw, route->peer);
	int rv =
	    cli ? sb_rpc_call_async(cli, route->rpc, msg, route->resp, &meta, gw_forward_done, r)
	        : SB_EUNAVAIL;
	protobuf_c_message_free_unpacked(msg, NULL);
	if (rv != 0 && (route->flags & GW_OAUTH))
		gw_oauth_error(r, 503, "the service is not available", 1000);
	else if (rv != 0)
		gw_reply_problem(r, 503, "the service is not available", NULL, 1000);
}
