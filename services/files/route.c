/* route.c: one request on a worker thread: the method (X-HTTP-Method-Override), the route, the
 * tus version, the caller's token and scope, then the handler. */
#include "files.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_uuid.h"

enum files_route_kind {
	FILES_R_TUS_ROOT,   /* /files/ */
	FILES_R_TUS_UPLOAD, /* /files/{id} */
	FILES_R_CONTENT,    /* /v1/files/{id}/content */
	FILES_R_INITIATE,   /* /v1/files/initiate */
	FILES_R_CHUNK,      /* /v1/files/{id}/chunks/{n} */
	FILES_R_CHUNKS,     /* /v1/files/{id}/chunks?chunk_number=n */
	FILES_R_STATUS,     /* /v1/files/{id}/status */
	FILES_R_COMPLETE,   /* /v1/files/{id}/complete */
};
/* The tus routes: Tus-Resumable is checked and answered. */
#define FILES_R_IS_TUS(k) ((k) == FILES_R_TUS_ROOT || (k) == FILES_R_TUS_UPLOAD)

/* One row per route and method: the handler and the scope a token must hold (NULL: none). */
struct files_route_row {
	enum files_route_kind kind;
	const char *method;
	const char *pattern; /* for --routes */
	void (*fn)(struct files_call *c);
	const char *scope;
};

static const struct files_route_row files_routes[] = {
	{ FILES_R_TUS_ROOT, "OPTIONS", "/files/", files_tus_options, NULL },
	{ FILES_R_TUS_ROOT, "POST", "/files/", files_tus_create, "files:write" },
	{ FILES_R_TUS_UPLOAD, "OPTIONS", "/files/{id}", files_tus_options, NULL },
	{ FILES_R_TUS_UPLOAD, "HEAD", "/files/{id}", files_tus_head, "files:write" },
	{ FILES_R_TUS_UPLOAD, "PATCH", "/files/{id}", files_tus_patch, "files:write" },
	{ FILES_R_TUS_UPLOAD, "DELETE", "/files/{id}", files_tus_delete, "files:write" },
	{ FILES_R_CONTENT, "OPTIONS", "/v1/files/{id}/content", files_tus_options, NULL },
	{ FILES_R_CONTENT, "GET", "/v1/files/{id}/content", files_download, "files:read" },
	{ FILES_R_INITIATE, "OPTIONS", "/v1/files/initiate", files_chunks_options, NULL },
	{ FILES_R_INITIATE, "POST", "/v1/files/initiate", files_chunks_initiate, "files:write" },
	{ FILES_R_CHUNK, "OPTIONS", "/v1/files/{id}/chunks/{n}", files_chunks_options, NULL },
	{ FILES_R_CHUNK, "PUT", "/v1/files/{id}/chunks/{n}", files_chunks_put, "files:write" },
	{ FILES_R_CHUNKS, "OPTIONS", "/v1/files/{id}/chunks", files_chunks_options, NULL },
	{ FILES_R_CHUNKS, "POST", "/v1/files/{id}/chunks", files_chunks_put, "files:write" },
	{ FILES_R_STATUS, "OPTIONS", "/v1/files/{id}/status", files_chunks_options, NULL },
	{ FILES_R_STATUS, "GET", "/v1/files/{id}/status", files_chunks_status, "files:write" },
	{ FILES_R_COMPLETE, "OPTIONS", "/v1/files/{id}/complete", files_chunks_options, NULL },
	{ FILES_R_COMPLETE, "POST", "/v1/files/{id}/complete", files_chunks_complete,
	  "files:write" },
	{ 0, NULL, NULL, NULL, NULL },
};

int
files_route_list(struct sb_buf *out)
{
	for (const struct files_route_row *r = files_routes; r->method != NULL; r++) {
		if (sb_buf_printf(out, "%s %s\n", r->method, r->pattern) != 0)
			return SB_ENOMEM;
	}
	return 0;
}

/* files_route_match finds the route kind of path and copies the id it names. Returns false
 * for a path the service does not serve. */
static bool
files_route_match(const char *path, enum files_route_kind *kind, char id[37], int64_t *chunk)
{
	struct sb_uuid u;
	if (strcmp(path, "/files") == 0 || strcmp(path, "/files/") == 0) {
		*kind = FILES_R_TUS_ROOT;
		return true;
	}
	if (strncmp(path, "/files/", 7) == 0) {
		const char *p = path + 7;
		if (strlen(p) != 36 || sb_uuid_parse(p, &u) != 0)
			return false;
		sb_uuid_format(&u, id);
		*kind = FILES_R_TUS_UPLOAD;
		return true;
	}
	if (strcmp(path, "/v1/files/initiate") == 0) {
		*kind = FILES_R_INITIATE;
		return true;
	}
	if (strncmp(path, "/v1/files/", 10) == 0) {
		const char *p = path + 10;
		char buf[37];
		if (strlen(p) < 36 + 2 || p[36] != '/')
			return false;
		memcpy(buf, p, 36);
		buf[36] = '\0';
		if (sb_uuid_parse(buf, &u) != 0)
			return false;
		sb_uuid_format(&u, id);
		const char *rest = p + 37;
		static const struct {
			const char *name;
			enum files_route_kind kind;
		} subs[] = { { "content", FILES_R_CONTENT },
			     { "status", FILES_R_STATUS },
			     { "complete", FILES_R_COMPLETE },
			     { "chunks", FILES_R_CHUNKS } };
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
			if (strcmp(rest, subs[i].name) == 0) {
				*kind = subs[i].kind;
				return true;
			}
		}
		if (strncmp(rest, "chunks/", 7) == 0) {
			/* an invalid number is answered 400 by the handler, not 404 */
			*chunk = files_chunk_number(rest + 7, strlen(rest + 7));
			*kind = FILES_R_CHUNK;
			return true;
		}
		return false;
	}
	return false;
}

bool
files_route_streamed(const struct sb_http_req *r)
{
	enum files_route_kind kind;
	char id[37];
	int64_t chunk;
	if (!files_route_match(r->path, &kind, id, &chunk))
		return false;
	const char *m = r->method;
	const char *ov = sb_http_req_header(r, "X-HTTP-Method-Override");
	if (ov != NULL && strcmp(m, "POST") == 0)
		m = ov;
	return (kind == FILES_R_TUS_UPLOAD && strcasecmp(m, "PATCH") == 0) ||
	       (kind == FILES_R_CHUNK && strcasecmp(m, "PUT") == 0) ||
	       (kind == FILES_R_CHUNKS && strcasecmp(m, "POST") == 0);
}

/* files_route_auth verifies the bearer token of c's request into c->who; answers and returns
 * false when it is missing or invalid or lacks scope. */
static bool
files_route_auth(struct files_call *c, const char *scope)
{
	const char *tok;
	size_t len;
	if (sb_authn_bearer(sb_http_req_header(c->req, "Authorization"), &tok, &len) != 0) {
		files_reply_add(&c->rp, "WWW-Authenticate", "Bearer");
		files_reply_problem(&c->rp, 401, "a bearer access token is required");
		return false;
	}
	int rv = sb_authn_verify(&c->f->authn, tok, len, &c->who);
	if (rv != 0) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the access token was refused (%s)",
		         sb_jwt_reason_name(rv));
		files_reply_add(&c->rp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		files_reply_problem(&c->rp, 401, detail);
		return false;
	}
	c->user = c->who.user_id[0] != '\0' ? c->who.user_id : c->who.sub;
	if (!sb_jwt_has_scope(&c->who, scope)) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the access token lacks scope %s", scope);
		files_reply_add(&c->rp, "WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
		files_reply_problem(&c->rp, 403, detail);
		return false;
	}
	return true;
}

/* files_route_span_end names c's span after its route ("PATCH /files/{id}"; the method alone for
 * a path or method the edge does not serve), records the answer and ends it. */
static void
files_route_span_end(struct files_call *c, const struct files_route_row *row)
{
	/* c->req is gone once answered: the method was recorded when the span started */
	if (row != NULL)
		snprintf(c->span.name, sizeof(c->span.name), "%s %s", row->method, row->pattern);
	else
		snprintf(c->span.name, sizeof(c->span.name), "%.16s", c->span.attrs[0].sval);
	if (row != NULL)
		sb_span_attr(&c->span, "http.route", row->pattern);
	sb_span_attr_int(&c->span, "http.response.status_code", c->rp.status);
	if (c->id[0] != '\0')
		sb_span_attr(&c->span, "sb.upload_id", c->id);
	if (c->rp.status >= 500)
		sb_span_fail(&c->span, sb_http_reason(c->rp.status));
	sb_span_end(&c->span);
}

void
files_route(struct files *f, struct sb_pg *pg, struct sb_http_req *r)
{
	struct files_call *c = calloc(1, sizeof(*c)); /* large (a principal): not on the stack */
	enum files_route_kind kind;
	const struct files_route_row *row = NULL;
	if (c == NULL) {
		sb_http_respond_problem(r, 503, NULL, "out of memory");
		return;
	}
	c->f = f;
	c->pg = pg;
	c->req = r;
	c->method = r->method;
	sb_span_start_tp(&c->span, "HTTP", SB_SPAN_SERVER, sb_http_req_header(r, "traceparent"));
	sb_span_attr(&c->span, "http.request.method", r->method); /* attrs[0], see span_end */
	c->chunk = -1;
	bool matched = files_route_match(r->path, &kind, c->id, &c->chunk);
	if (matched && kind == FILES_R_CHUNKS)
		c->chunk = files_chunk_query(r->query);
	files_reply_init(&c->rp, f, r, matched && FILES_R_IS_TUS(kind));
	if (!matched) {
		files_reply_problem(&c->rp, 404, "no such resource");
		goto done;
	}
	/* X-HTTP-Method-Override: clients that can only send GET and POST (tus 1.0 "Method
	 * Override"). Honoured on POST, for the methods the route serves. */
	const char *ov = sb_http_req_header(r, "X-HTTP-Method-Override");
	if (ov != NULL && strcmp(r->method, "POST") == 0) {
		static const char *const known[] = { "PATCH", "DELETE",  "HEAD",
			                             "GET",   "OPTIONS", "POST" };
		c->method = NULL;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcasecmp(ov, known[i]) == 0)
				c->method = known[i];
		if (c->method == NULL) {
			files_reply_problem(&c->rp, 400,
			                    "X-HTTP-Method-Override names no known method");
			goto done;
		}
	}
	char allow[64] = "";
	for (const struct files_route_row *w = files_routes; w->method != NULL; w++) {
		if (w->kind != kind)
			continue;
		size_t al = strlen(allow);
		snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", w->method);
		if (strcmp(w->method, c->method) == 0)
			row = w;
	}
	if (row == NULL) {
		files_reply_add(&c->rp, "Allow", allow);
		files_reply_problem(&c->rp, 405, "method not allowed on this resource");
		goto done;
	}
	if (row->scope != NULL && !files_route_auth(c, row->scope))
		goto done;
	if (FILES_R_IS_TUS(kind) && row->fn != files_tus_options) {
		const char *v = sb_http_req_header(r, "Tus-Resumable");
		if (v == NULL || strcmp(v, FILES_TUS_VERSION) != 0) {
			files_reply_add(&c->rp, "Tus-Version", FILES_TUS_VERSION);
			files_reply_problem(&c->rp, 412,
			                    v == NULL ? "Tus-Resumable is required"
			                              : "unsupported Tus-Resumable version");
			goto done;
		}
	}
	row->fn(c);
done:
	if (c->rp.req != NULL) { /* a handler that forgot to answer: a bug, not a hang */
		sb_log_kv(SB_LOG_ERROR, "handler did not answer", "path", r->path, NULL);
		files_reply_problem(&c->rp, 500, "internal error");
	}
	files_route_span_end(c, row);
	free(c);
}
