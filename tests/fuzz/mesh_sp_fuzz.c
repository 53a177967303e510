/* mesh_sp_fuzz: libFuzzer target for the mesh sidecar's parsers of what arrives on an RPC
 * connection (mesh/sidecar/sp.c: SP header, length-prefixed frames, REQ/REP backtrace, the
 * envelope's method, batches, the Response code) and of its policy text (policy.c), compiled
 * again here. The first byte picks the mode:
 *   0  the rest is a connection's byte stream, cut as the proxy cuts it (header, then frames
 *      of at most 4096 bytes, then backtrace and envelope of each);
 *   1  the rest is one Response body;
 *   2  the rest is a policy text and a caller/method pair after its first NUL.
 * Properties:
 *   - frames: a frame's length is the big-endian u64 in front of it, read back independently;
 *     a cut never exceeds what is there; a frame over the limit is refused;
 *   - backtrace: a multiple of 4 inside the body, its last word the only one with the top bit;
 *   - envelope: whenever both the sidecar and protobuf-c (the server's parser) read the body as
 *     rpc.Request, they read the same method and payload, so a caller cannot hide a method
 *     from the policy behind an encoding (the sidecar may refuse more: a refused frame closes
 *     the connection and reaches no service); what protobuf-c itself writes for a Request
 *     with a method "<service>.<Rpc>" the sidecar always reads, with that method; an accepted
 *     method lies inside the body; the inner requests of an accepted rpc.Batch are those
 *     protobuf-c reads;
 *   - Response: when both read it, the same code; protobuf-c's own encoding always reads;
 *   - the refusal the sidecar writes for any backtrace and message reads back through
 *     protobuf-c with PERMISSION_DENIED, that message, and the backtrace intact;
 *   - policy: a parsed policy written back as text parses to the same rules and decisions. */
#include "fuzz.h"

#include <fnmatch.h>

#include "rpc.pb-c.h"
#include "sidecar.h"

static bool
fz_method_ok(const char *s)
{
	return s != NULL && mesh_method_valid((const uint8_t *)s, strlen(s));
}

static void
check_reply(const uint8_t *bt, size_t bt_len, const char *msg)
{
	uint8_t out[8 + 4 * MESH_SP_MAX_HOPS + 1100];
	size_t n = mesh_sp_reply(out, sizeof out, bt, bt_len, 7, msg);
	CHECK(n > 8 + bt_len);
	size_t flen, bl;
	uint32_t id, code;
	CHECK(mesh_sp_frame(out, n, 1u << 20, &flen) == 0 && flen == n);
	CHECK(mesh_sp_backtrace(out + 8, n - 8, &bl, &id) == 0 && bl == bt_len);
	CHECK(memcmp(out + 8, bt, bt_len) == 0);
	CHECK(mesh_response_code(out + 8 + bl, n - 8 - bl, &code) == 0 && code == 7);
	Sb__Rpc__Response *r = sb__rpc__response__unpack(NULL, n - 8 - bl, out + 8 + bl);
	CHECK(r != NULL);
	CHECK(r->code == SB__RPC__CODE__PERMISSION_DENIED);
	size_t ml = strlen(msg) > 1024 ? 1024 : strlen(msg);
	CHECK(strlen(r->message) == ml && memcmp(r->message, msg, ml) == 0);
	sb__rpc__response__free_unpacked(r, NULL);
}

static void
check_envelope(const uint8_t *env, size_t n)
{
	const uint8_t *m, *p;
	size_t ml, pl;
	int ours = mesh_envelope_method(env, n, &m, &ml, &p, &pl);
	Sb__Rpc__Request *r = sb__rpc__request__unpack(NULL, n, env);
	if (ours == 0) {
		CHECK(m >= env && m + ml <= env + n && mesh_method_valid(m, ml));
		CHECK(p >= env && p + pl <= env + n);
	}
	if (r != NULL && ours == 0) {
		CHECK(fz_method_ok(r->method));
		CHECK(ml == strlen(r->method) && memcmp(m, r->method, ml) == 0);
		CHECK(pl == r->payload.len && (pl == 0 || memcmp(p, r->payload.data, pl) == 0));
	}
	if (r != NULL && fz_method_ok(r->method)) {
		/* What protobuf-c writes (canonical form) the sidecar always reads. */
		unsigned unknown = r->base.n_unknown_fields;
		r->base.n_unknown_fields = 0; /* what a client writes: known fields only */
		size_t cn = sb__rpc__request__get_packed_size(r);
		uint8_t *canon = malloc(cn ? cn : 1);
		sb__rpc__request__pack(r, canon);
		const uint8_t *cm, *cp;
		size_t cml, cpl;
		CHECK(mesh_envelope_method(canon, cn, &cm, &cml, &cp, &cpl) == 0);
		CHECK(cml == strlen(r->method) && memcmp(cm, r->method, cml) == 0);
		free(canon);
		r->base.n_unknown_fields = unknown;
	}
	if (ours == 0 && ml == 9 && memcmp(m, "rpc.Batch", 9) == 0) {
		Sb__Rpc__Batch *b = sb__rpc__batch__unpack(NULL, pl, p);
		const uint8_t *it = p, *req;
		size_t rl, i = 0;
		int st;
		while ((st = mesh_batch_next(&it, p + pl, &req, &rl)) == 0) {
			CHECK(req >= p && req + rl <= p + pl);
			if (b != NULL) {
				CHECK(i < b->n_requests && rl == b->requests[i].len);
				CHECK(rl == 0 || memcmp(req, b->requests[i].data, rl) == 0);
			}
			i++;
		}
		if (b != NULL) {
			/* protobuf-c accepts unknown fields the sidecar refuses; when neither
			 * differs, both saw the same requests. */
			if (st == 1)
				CHECK(i == b->n_requests);
			sb__rpc__batch__free_unpacked(b, NULL);
		}
	}
	if (r != NULL)
		sb__rpc__request__free_unpacked(r, NULL);
}

static void
mode_stream(const uint8_t *d, size_t n)
{
	uint16_t proto;
	int h = mesh_sp_header_parse(d, n, &proto);
	if (h == 1) {
		CHECK(n < 8);
		return;
	}
	if (h < 0)
		return;
	CHECK(d[1] == 'S' && d[2] == 'P' && proto == (uint16_t)(d[4] << 8 | d[5]));
	size_t off = 8;
	for (;;) {
		size_t flen;
		int r = mesh_sp_frame(d + off, n - off, 4096, &flen);
		uint64_t len = 0;
		if (n - off >= 8)
			for (int i = 0; i < 8; i++)
				len = len << 8 | d[off + i];
		if (r == 1) {
			CHECK(n - off < 8 || len > n - off - 8);
			return;
		}
		if (r < 0) {
			CHECK(len > 4096);
			return;
		}
		CHECK(flen == 8 + len && flen <= n - off);
		const uint8_t *body = d + off + 8;
		size_t bl;
		uint32_t id;
		if (mesh_sp_backtrace(body, len, &bl, &id) == 0) {
			CHECK(bl % 4 == 0 && bl <= len && (id & 0x80000000u));
			for (size_t i = 0; i + 4 < bl; i += 4)
				CHECK(!(body[i] & 0x80));
			check_envelope(body + bl, len - bl);
			check_reply(body, bl, "mesh: x may not call y.Z");
		}
		off += flen;
	}
}

static void
mode_response(const uint8_t *d, size_t n)
{
	uint32_t code;
	int ours = mesh_response_code(d, n, &code);
	Sb__Rpc__Response *r = sb__rpc__response__unpack(NULL, n, d);
	if (r != NULL) {
		if (ours == 0 && r->code >= 0)
			CHECK(code == (uint32_t)r->code);
		unsigned unknown = r->base.n_unknown_fields;
		r->base.n_unknown_fields = 0;
		size_t cn = sb__rpc__response__get_packed_size(r);
		uint8_t *canon = malloc(cn ? cn : 1);
		sb__rpc__response__pack(r, canon);
		CHECK(mesh_response_code(canon, cn, &code) == 0);
		if (r->code >= 0)
			CHECK(code == (uint32_t)r->code);
		free(canon);
		r->base.n_unknown_fields = unknown;
		sb__rpc__response__free_unpacked(r, NULL);
	}
	char *msg = fz_cstr(d, n);
	const uint8_t bt[4] = { 0x80, 0, 0, 1 };
	check_reply(bt, 4, msg);
	free(msg);
}

static void
mode_policy(const uint8_t *d, size_t n)
{
	char *text = fz_cstr(d, n);
	size_t tl = strlen(text);
	const char *rest = tl < n ? (const char *)d + tl + 1 : "";
	size_t rn = tl < n ? n - tl - 1 : 0;
	char *pair = fz_cstr((const uint8_t *)rest, rn);
	char *method = strchr(pair, ' ');
	if (method)
		*method++ = '\0';
	else
		method = "messages.Send";
	struct mesh_policy p, q;
	char err[128];
	if (mesh_policy_parse(text, &p, err, sizeof err) == 0) {
		size_t cap = 1 + p.n * (64 + MESH_METHOD_MAX + 4), len = 0;
		char *back = malloc(cap);
		back[0] = '\0';
		for (size_t i = 0; i < p.n; i++)
			len +=
			    (size_t)snprintf(back + len, cap - len, "%s=%s%s ", p.rules[i].caller,
			                     p.rules[i].deny ? "!" : "", p.rules[i].glob);
		CHECK(mesh_policy_parse(back, &q, err, sizeof err) == 0);
		CHECK(q.n == p.n);
		for (size_t i = 0; i < p.n; i++)
			CHECK(memcmp(&p.rules[i], &q.rules[i], sizeof p.rules[i]) == 0);
		CHECK(mesh_policy_method(&p, pair, method) == mesh_policy_method(&q, pair, method));
		CHECK(mesh_policy_caller(&p, pair) == mesh_policy_caller(&q, pair));
		/* A decision is an allow rule that matches and no deny rule that matches. */
		bool allow = false, deny = false;
		for (size_t i = 0; i < p.n; i++) {
			const struct mesh_rule *r = &p.rules[i];
			if ((strcmp(r->caller, "*") == 0 || strcmp(r->caller, pair) == 0) &&
			    fnmatch(r->glob, method, 0) == 0)
				*(r->deny ? &deny : &allow) = true;
		}
		CHECK(mesh_policy_method(&p, pair, method) == (allow && !deny));
		mesh_policy_free(&q);
		mesh_policy_free(&p);
		free(back);
	}
	free(pair);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		mode_stream(data + 1, size - 1);
		break;
	case 1:
		mode_response(data + 1, size - 1);
		break;
	default:
		mode_policy(data + 1, size - 1);
		break;
	}
	return 0;
}
