/* metrics.c: the sidecar's metric families, named as Linkerd's proxy names them where one
 * exists (tcp_*, inbound_tcp_authz_*, identity_cert_expiration_timestamp_seconds, request_total,
 * response_latency_ms), and the cache of per-method series. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_metrics.h"
#include "sidecar.h"

static const char *const dir_names[2] = { "inbound", "outbound" };

/* Linkerd's response_latency_ms buckets, with finer ones below 1 ms for a hop on one host. */
static const double latency_ms_buckets[] = { 0.1,  0.25, 0.5,  1,    2,    3,     4,     5,    10,
	                                     20,   30,   40,   50,   100,  200,   300,   400,  500,
	                                     1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000 };
static const double duration_ms_buckets[] = { 1,     10,     100,     1000,    10000,
	                                      60000, 600000, 3600000, 86400000 };

/* The method series cache: open addressing over (direction, method). Loop thread only. */
struct method_slot {
	int dir;
	char *name; /* NULL: free */
	struct mesh_method_stats st;
};
static struct method_slot method_tab[2 * MESH_METHODS_MAX * 2];
static size_t method_count[2];

int
mesh_metrics_init(struct mesh_metrics *m)
{
	struct sb_metric *open =
	    sb_metrics_counter("tcp_open_total", "Connections opened.", "direction");
	struct sb_metric *close =
	    sb_metrics_counter("tcp_close_total", "Connections closed.", "direction,errno");
	struct sb_metric *conns =
	    sb_metrics_gauge("tcp_open_connections", "Connections open now.", "direction");
	struct sb_metric *rd = sb_metrics_counter(
	    "tcp_read_bytes_total", "Bytes read from peers (plaintext, both ends).", "direction");
	struct sb_metric *wr = sb_metrics_counter(
	    "tcp_write_bytes_total", "Bytes written to peers (plaintext, both ends).", "direction");
	struct sb_metric *dur = sb_metrics_histogram(
	    "tcp_connection_duration_ms", "How long connections stayed open, in milliseconds.",
	    "direction", duration_ms_buckets,
	    sizeof duration_ms_buckets / sizeof duration_ms_buckets[0]);
	struct sb_metric *bad = sb_metrics_counter(
	    "mesh_frames_malformed_total",
	    "Connections closed because of a malformed SP header, frame or envelope.", "direction");
	struct sb_metric *allow = sb_metrics_counter(
	    "inbound_tcp_authz_allow_total",
	    "Inbound connections whose caller identity the policy admits.", NULL);
	struct sb_metric *deny = sb_metrics_counter(
	    "inbound_tcp_authz_deny_total",
	    "Inbound connections refused: no client certificate, one not from the mesh CA, a "
	    "failed handshake, or an identity the policy does not name.",
	    "reason");
	m->deny_method = sb_metrics_counter(
	    "inbound_rpc_authz_deny_total",
	    "Inbound RPCs refused with PERMISSION_DENIED: the caller may not call the method.",
	    "client_id,method");
	m->requests = sb_metrics_counter("request_total", "RPC requests seen, per method.",
	                                 "direction,method");
	m->latency = sb_metrics_histogram(
	    "response_latency_ms", "RPC latency through this sidecar, request to response, ms.",
	    "direction,method,classification", latency_ms_buckets,
	    sizeof latency_ms_buckets / sizeof latency_ms_buckets[0]);
	struct sb_metric *reload =
	    sb_metrics_counter("identity_cert_reloads_total",
	                       "Certificate reloads after the files changed.", "result");
	if (!open || !close || !conns || !rd || !wr || !dur || !bad || !allow || !deny ||
	    !m->deny_method || !m->requests || !m->latency || !reload)
		return -1;
	for (int d = 0; d < 2; d++) {
		struct mesh_dir_metrics *dm = &m->dir[d];
		dm->open = sb_metric_with(open, dir_names[d]);
		dm->close = sb_metric_with(close, dir_names[d], "");
		dm->open_conns = sb_metric_with(conns, dir_names[d]);
		dm->rd = sb_metric_with(rd, dir_names[d]);
		dm->wr = sb_metric_with(wr, dir_names[d]);
		dm->duration = sb_metric_with(dur, dir_names[d]);
		dm->malformed = sb_metric_with(bad, dir_names[d]);
	}
	m->authz_allow = sb_metric_with(allow);
	m->deny_no_cert = sb_metric_with(deny, "no_client_cert");
	m->deny_untrusted = sb_metric_with(deny, "untrusted_cert");
	m->deny_tls = sb_metric_with(deny, "tls_handshake");
	m->deny_identity = sb_metric_with(deny, "identity");
	m->reload_ok = sb_metric_with(reload, "ok");
	m->reload_fail = sb_metric_with(reload, "failed");
	return 0;
}

static uint64_t
method_hash(int dir, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)dir;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

const struct mesh_method_stats *
mesh_metrics_method(struct mesh_metrics *m, int dir, const char *method)
{
	const size_t cap = sizeof method_tab / sizeof method_tab[0];
	const char *name = method;
	for (int pass = 0; pass < 2; pass++) {
		size_t i = method_hash(dir, name) % cap;
		for (;; i = (i + 1) % cap) {
			struct method_slot *s = &method_tab[i];
			if (s->name == NULL)
				break;
			if (s->dir == dir && strcmp(s->name, name) == 0)
				return &s->st;
		}
		/* i is a free slot. Past the cap, every new name is "other" (one more slot). */
		if (method_count[dir] >= MESH_METHODS_MAX && strcmp(name, "other") != 0) {
			name = "other";
			continue;
		}
		struct method_slot *s = &method_tab[i];
		if ((s->name = strdup(name)) == NULL)
			return NULL;
		s->dir = dir;
		method_count[dir]++;
		s->st.label = s->name;
		s->st.requests = sb_metric_with(m->requests, dir_names[dir], name);
		s->st.latency_ok = sb_metric_with(m->latency, dir_names[dir], name, "success");
		s->st.latency_err = sb_metric_with(m->latency, dir_names[dir], name, "failure");
		return &s->st;
	}
	return NULL;
}
