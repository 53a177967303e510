/* sb_rpc_call.c: the per-request call object of the RPC server: its arena, the reply's error
 * fields and the accessors handlers use. */
#include "sb_rpc.h"
#include "sb_err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_RPC_CHUNK 8192

struct sb_rpc_chunk {
	struct sb_rpc_chunk *next;
	size_t cap;
	size_t used;
	max_align_t data[];
};

static const char *const sb_rpc_code_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

const char *
sb_rpc_code_name(int code)
{
	if (code < 0 || code >= SB_RPC_N_CODES)
		return "UNKNOWN";
	return sb_rpc_code_names[code];
}

int64_t
sb__rpc_now_epoch_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
sb__rpc_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
sb__rpc_call_init(struct sb_rpc_call *call, void *srv_ctx, void *state)
{
	memset(call, 0, sizeof(*call));
	call->srv_ctx = srv_ctx;
	call->state = state;
}

void
sb__rpc_call_reset(struct sb_rpc_call *call)
{
	struct sb_rpc_chunk *c, *next;

	/* Keep the first chunk for the next call; free any overflow. */
	for (c = call->arena; c != NULL; c = next) {
		next = c->next;
		if (next == NULL) {
			c->used = 0;
			call->arena = c;
			break;
		}
		free(c);
	}
	call->env = NULL;
	call->method = NULL;
	call->message = NULL;
	call->violations = NULL;
	call->n_violations = 0;
	call->cap_violations = 0;
	call->retry_after_ms = 0;
	call->http_status = 0;
	call->span_on = false;
	call->span_tp[0] = '\0';
}

void
sb__rpc_call_fini(struct sb_rpc_call *call)
{
	struct sb_rpc_chunk *c, *next;

	for (c = call->arena; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	call->arena = NULL;
}

void *
sb_rpc_call_alloc(struct sb_rpc_call *call, size_t n)
{
	struct sb_rpc_chunk *c = call->arena;
	size_t a = sizeof(max_align_t);
	size_t need = (n + a - 1) / a * a;
	void *p;

	if (n > SIZE_MAX / 2)
		return NULL;
	if (need == 0)
		need = a;
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > SB_RPC_CHUNK ? need : SB_RPC_CHUNK;

		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* The newest chunk goes first; the oldest (last) is the one kept. */
		c->next = call->arena;
		call->arena = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	memset(p, 0, n);
	return p;
}

char *
sb_rpc_call_strdup(struct sb_rpc_call *call, const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		s = "";
	n = strlen(s) + 1;
	if ((p = sb_rpc_call_alloc(call, n)) != NULL)
		memcpy(p, s, n);
	return p;
}

int
sb_rpc_call_error(struct sb_rpc_call *call, int code, const char *fmt, ...)
{
	va_list ap;
	char tmp[512];

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	call->message = sb_rpc_call_strdup(call, tmp);
	return code;
}

int
sb_rpc_call_violation(struct sb_rpc_call *call, const char *field_path, const char *reason)
{
	Sb__Rpc__Violation *v;

	if (call->n_violations == call->cap_violations) {
		size_t cap = call->cap_violations ? call->cap_violations * 2 : 8;
		Sb__Rpc__Violation **nv = sb_rpc_call_alloc(call, cap * sizeof(*nv));

		if (nv == NULL)
			return SB_ENOMEM;
		if (call->n_violations > 0)
			memcpy(nv, call->violations, call->n_violations * sizeof(*nv));
		call->violations = nv;
		call->cap_violations = cap;
	}
	if ((v = sb_rpc_call_alloc(call, sizeof(*v))) == NULL)
		return SB_ENOMEM;
	sb__rpc__violation__init(v);
	v->field = sb_rpc_call_strdup(call, field_path);
	v->reason = sb_rpc_call_strdup(call, reason);
	if (v->field == NULL || v->reason == NULL)
		return SB_ENOMEM;
	call->violations[call->n_violations++] = v;
	return 0;
}

void
sb_rpc_call_clear_violations(struct sb_rpc_call *call)
{
	call->n_violations = 0;
}

void
sb_rpc_call_retry_after(struct sb_rpc_call *call, int64_t ms)
{
	call->retry_after_ms = ms < 0 ? 0 : ms;
}

void
sb_rpc_call_set_http_status(struct sb_rpc_call *call, int status)
{
	call->http_status = (status >= 200 && status < 300) ? status : 0;
}

const char *
sb_rpc_call_method(const struct sb_rpc_call *call)
{
	return call->method ? call->method : "";
}

const Sb__Rpc__Principal *
sb_rpc_call_principal(const struct sb_rpc_call *call)
{
	return call->env ? call->env->principal : NULL;
}

const char *
sb_rpc_call_traceparent(const struct sb_rpc_call *call)
{
	if (call->span_tp[0] != '\0')
		return call->span_tp;
	return call->env && call->env->traceparent ? call->env->traceparent : "";
}

const char *
sb_rpc_call_request_id(const struct sb_rpc_call *call)
{
	return call->env && call->env->request_id ? call->env->request_id : "";
}

int64_t
sb_rpc_call_deadline_ms(const struct sb_rpc_call *call)
{
	return call->env && call->env->deadline_ms > 0 ? call->env->deadline_ms : 0;
}

int64_t
sb_rpc_call_remaining_ms(const struct sb_rpc_call *call)
{
	int64_t d = sb_rpc_call_deadline_ms(call), now;

	if (d == 0)
		return INT64_MAX;
	now = sb__rpc_now_epoch_ms();
	return d > now ? d - now : 0;
}

void *
sb_rpc_call_worker_state(const struct sb_rpc_call *call)
{
	return call->state;
}

void *
sb_rpc_call_server_ctx(const struct sb_rpc_call *call)
{
	return call->srv_ctx;
}
