/* frames.c: what passes through a connection: the SP header each peer sends, then each
 * request (backtrace, envelope, method, policy, timing) and each response (code, timing),
 * moved whole from one end's input to the other end's output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "sb_log.h"
#include "sb_metrics.h"

/* pend_add remembers request id of c; inner (an rpc.Batch's call series, ninner of them)
 * moves to the pending entry, freed with it. */
static void
pend_add(struct conn *c, uint32_t id, const struct mesh_method_stats *st,
         const struct mesh_method_stats **inner, size_t ninner)
{
	if (c->npend == c->cappend) {
		if (c->npend >= MESH_PEND_MAX) {
			/* A peer that never answers: forget the oldest. */
			free(c->pend[0].inner);
			memmove(c->pend, c->pend + 1, (c->npend - 1) * sizeof *c->pend);
			c->npend--;
		} else {
			size_t cap = c->cappend ? 2 * c->cappend : 8;
			struct pending *p = realloc(c->pend, cap * sizeof *p);
			if (p == NULL) {
				free(inner);
				return;
			}
			c->pend = p;
			c->cappend = cap;
		}
	}
	c->pend[c->npend++] = (struct pending){ id, mesh__now_us(), st, inner, ninner };
}

static bool
pend_take(struct conn *c, uint32_t id, struct pending *out)
{
	for (size_t i = 0; i < c->npend; i++) {
		if (c->pend[i].id != id)
			continue;
		*out = c->pend[i];
		c->pend[i] = c->pend[--c->npend];
		return true;
	}
	return false;
}

/* batch_stats counts each call of an rpc.Batch (payload, plen) under its own method and
 * returns how many there are, their series in *out (malloc'd, NULL when none or on error). */
static size_t
batch_stats(struct conn *c, const uint8_t *payload, size_t plen,
            const struct mesh_method_stats ***out)
{
	const uint8_t *it = payload, *end = payload + plen, *req;
	size_t rlen, n = 0, cap = 0;
	const struct mesh_method_stats **v = NULL;
	while (mesh_batch_next(&it, end, &req, &rlen) == 0) {
		const uint8_t *mm, *pp;
		size_t ml, pl;
		char name[MESH_METHOD_MAX + 1];
		if (mesh_envelope_method(req, rlen, &mm, &ml, &pp, &pl) != 0)
			break;
		memcpy(name, mm, ml);
		name[ml] = '\0';
		const struct mesh_method_stats *st =
		    mesh_metrics_method(&c->m->metrics, c->dir, name);
		if (st)
			sb_series_inc(st->requests);
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			const struct mesh_method_stats **nv = realloc(v, cap * sizeof *nv);
			if (nv == NULL)
				break;
			v = nv;
		}
		v[n++] = st;
	}
	*out = v;
	return v ? n : 0;
}

/* batch_observe times each call of an answered rpc.Batch: the batch's latency ms, each
 * call's own code from the BatchReply (all failures when the batch itself failed). */
static void
batch_observe(const struct pending *p, uint32_t code, const uint8_t *resp, size_t rlen, double ms)
{
	const uint8_t *it = NULL, *end = NULL;
	if (code == 0) {
		struct mesh_pb_want w[1] = { { .field = 3, .type = 2 } };
		if (mesh_pb_scan(resp, rlen, w, 1) == 0 && w[0].found) {
			it = w[0].ptr;
			end = w[0].ptr + w[0].len;
		}
	}
	for (size_t i = 0; i < p->ninner; i++) {
		const uint8_t *one;
		size_t olen;
		uint32_t c = 2; /* UNKNOWN: no answer of its own */
		if (it && mesh_batch_next(&it, end, &one, &olen) == 0)
			mesh_response_code(one, olen, &c);
		if (p->inner[i])
			sb_series_observe(
			    c == 0 ? p->inner[i]->latency_ok : p->inner[i]->latency_err, ms);
	}
}

/* authz_method decides one request inbound: 0 allowed, or -1 with the refused method in
 * denied (for a batch, the first inner request refused; a malformed batch is refused too). */
static int
authz_method(struct conn *c, const char *method, const uint8_t *payload, size_t plen,
             char denied[MESH_METHOD_MAX + 1])
{
	const struct mesh_policy *p = &c->m->policy;
	if (strcmp(method, "rpc.Batch") != 0) {
		if (mesh_policy_method(p, c->caller, method))
			return 0;
		snprintf(denied, MESH_METHOD_MAX + 1, "%s", method);
		return -1;
	}
	const uint8_t *it = payload, *end = payload + plen, *req;
	size_t rlen;
	int r;
	while ((r = mesh_batch_next(&it, end, &req, &rlen)) == 0) {
		const uint8_t *mm, *pp;
		size_t ml, pl;
		if (mesh_envelope_method(req, rlen, &mm, &ml, &pp, &pl) != 0) {
			snprintf(denied, MESH_METHOD_MAX + 1, "rpc.Batch");
			return -1;
		}
		char inner[MESH_METHOD_MAX + 1];
		memcpy(inner, mm, ml);
		inner[ml] = '\0';
		if (strcmp(inner, "rpc.Batch") == 0 || !mesh_policy_method(p, c->caller, inner)) {
			memcpy(denied, inner, ml + 1);
			return -1;
		}
	}
	if (r < 0) {
		snprintf(denied, MESH_METHOD_MAX + 1, "rpc.Batch");
		return -1;
	}
	return 0;
}

/* mesh__frames_requests moves complete requests from down.in to up.out (or answers refused ones).
 * Returns -1 after closing c. */
int
mesh__frames_requests(struct conn *c)
{
	struct end *d = &c->down, *u = &c->up;
	struct mesh *m = c->m;
	if (!d->hdr_in) {
		uint16_t proto;
		int r = mesh_sp_header_parse(d->in.p + d->in.off, d->in.len, &proto);
		if (r == 1)
			return 0;
		if (r < 0 || proto != MESH_SP_REQ0) {
			mesh__conn_malformed(c, r < 0 ? "not an SP header" : "peer is not REQ0");
			return -1;
		}
		d->hdr_in = true;
		mesh__buf_consume(&d->in, MESH_SP_HDR_LEN);
	}
	for (;;) {
		size_t flen;
		const uint8_t *f = d->in.p + d->in.off;
		int r = mesh_sp_frame(f, d->in.len, (size_t)m->cfg.max_frame, &flen);
		if (r == 1)
			return 0;
		if (r < 0) {
			mesh__conn_malformed(c, "frame longer than SB_MESH_MAX_FRAME");
			return -1;
		}
		const uint8_t *body = f + 8, *mptr, *payload;
		size_t blen = flen - 8, bt_len, mlen, plen;
		uint32_t id;
		if (mesh_sp_backtrace(body, blen, &bt_len, &id) != 0) {
			mesh__conn_malformed(c, "request without a request id");
			return -1;
		}
		if (mesh_envelope_method(body + bt_len, blen - bt_len, &mptr, &mlen, &payload,
		                         &plen) != 0) {
			mesh__conn_malformed(c, "request envelope malformed or without a method");
			return -1;
		}
		char method[MESH_METHOD_MAX + 1];
		memcpy(method, mptr, mlen);
		method[mlen] = '\0';
		const struct mesh_method_stats *st =
		    mesh_metrics_method(&m->metrics, c->dir, method);
		if (st)
			sb_series_inc(st->requests);
		char denied[MESH_METHOD_MAX + 1];
		if (c->dir == MESH_IN && authz_method(c, method, payload, plen, denied) != 0) {
			const struct mesh_method_stats *ds =
			    mesh_metrics_method(&m->metrics, MESH_IN, denied);
			sb_series_inc(sb_metric_with(m->metrics.deny_method, c->caller,
			                             ds ? ds->label : "other"));
			sb_log_kv(SB_LOG_WARN, "RPC refused by policy", "caller", c->peer_id,
			          "callee", m->tls.self_id, "method", denied, "remote", c->remote,
			          NULL);
			uint8_t reply[8 + 4 * MESH_SP_MAX_HOPS + 1100];
			char msg[MESH_METHOD_MAX + 128];
			snprintf(msg, sizeof msg, "mesh: %s may not call %s", c->caller, denied);
			size_t n = mesh_sp_reply(reply, sizeof reply, body, bt_len,
			                         7 /* PERMISSION_DENIED */, msg);
			if (st)
				sb_series_observe(st->latency_err, 0);
			if (n == 0 || mesh__buf_append(&d->out, reply, n) != 0) {
				mesh__conn_close(c, "out of memory");
				return -1;
			}
		} else {
			if (mesh__buf_append(&u->out, f, flen) != 0) {
				mesh__conn_close(c, "out of memory");
				return -1;
			}
			const struct mesh_method_stats **inner = NULL;
			size_t ninner = 0;
			if (mlen == 9 && memcmp(method, "rpc.Batch", 9) == 0)
				ninner = batch_stats(c, payload, plen, &inner);
			pend_add(c, id, st, inner, ninner);
		}
		mesh__buf_consume(&d->in, flen);
	}
}

/* mesh__frames_responses moves complete responses from up.in to down.out, timing each. */
int
mesh__frames_responses(struct conn *c)
{
	struct end *d = &c->down, *u = &c->up;
	if (!u->hdr_in) {
		uint16_t proto;
		int r = mesh_sp_header_parse(u->in.p + u->in.off, u->in.len, &proto);
		if (r == 1)
			return 0;
		if (r < 0 || proto != MESH_SP_REP0) {
			mesh__conn_malformed(c, r < 0 ? "not an SP header" : "peer is not REP0");
			return -1;
		}
		u->hdr_in = true;
		mesh__buf_consume(&u->in, MESH_SP_HDR_LEN);
	}
	for (;;) {
		size_t flen, bt_len;
		const uint8_t *f = u->in.p + u->in.off;
		int r = mesh_sp_frame(f, u->in.len, (size_t)c->m->cfg.max_frame, &flen);
		if (r == 1)
			return 0;
		uint32_t id, code;
		if (r < 0 || mesh_sp_backtrace(f + 8, flen - 8, &bt_len, &id) != 0 ||
		    mesh_response_code(f + 8 + bt_len, flen - 8 - bt_len, &code) != 0) {
			mesh__conn_malformed(c, r < 0 ? "frame longer than SB_MESH_MAX_FRAME"
			                              : "response malformed");
			return -1;
		}
		struct pending p;
		if (pend_take(c, id, &p)) {
			double ms = (double)(mesh__now_us() - p.t0_us) / 1000.0;
			if (p.st)
				sb_series_observe(code == 0 ? p.st->latency_ok : p.st->latency_err,
				                  ms);
			if (p.inner) {
				batch_observe(&p, code, f + 8 + bt_len, flen - 8 - bt_len, ms);
				free(p.inner);
			}
		}
		if (mesh__buf_append(&d->out, f, flen) != 0) {
			mesh__conn_close(c, "out of memory");
			return -1;
		}
		mesh__buf_consume(&u->in, flen);
	}
}
