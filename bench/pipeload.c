/* pipeload.c: the load tools of bench/pipeline_bench.sh (send -> browser through the whole
 * platform). Built with the rest (bench/CMakeLists.txt); its HTTP sender, WebSocket client,
 * histogram and helpers are bench/lib (bl.h), shared with msgload and wsload.
 *
 *   pipeload send -a HOST:PORT -u USERS -m MEMBERS -r RATE -d SECONDS -S STEP -o ACKED
 *                 [-n SENDERS] [-c CONNS] [-g DRAIN_S]
 *       Open-loop POST /v1/messages: message i is SCHEDULED at start + i/RATE whatever happened
 *       before, and its content is "t=<scheduled CLOCK_REALTIME us> s=<STEP> i=<i>". It goes to
 *       conversation i mod C (C = users / MEMBERS) from member (i / C) mod SENDERS of it, with
 *       that member's own token, on the first idle keep-alive connection. Every 2xx answer
 *       appends "<conversation index> <seq> <STEP> <i>" to ACKED. Prints a line beginning
 *       "RESULT " (key=value: target scheduled sent ok achieved ack_p50_ms ack_p99_ms
 *       ack_max_ms errors cpu_s), ack latency = answer time - scheduled time.
 *
 *   pipeload recv -a HOST:PORT -u USERS -P PART -Q PARTS -C CONTROL [-r OPEN_RATE]
 *       WebSocket receivers for the users n with n mod PARTS == PART, each with its own token
 *       (GET /ws?token=...; the server subscribes it to its conversations and says "ready").
 *       For every message.created frame: per socket a bitmap of the seqs seen (a seq seen
 *       twice on the same client is a duplicate), and for first arrivals the latency receive
 *       time (CLOCK_REALTIME) - the scheduled time in the content, in a histogram per step
 *       (the step is in the content too, so a late delivery counts in its own step). A socket
 *       the server closes after it was ready is reopened with ?resume=1 and subscribes with
 *       since_seq = the last seq it holds without a gap, as a browser would (counted).
 *       Pings are answered. Prints {"phase":"open",...} once every socket is ready or failed.
 *
 *   pipeload tap -a HOST:PORT -C CONTROL
 *       A Redis subscriber (PSUBSCRIBE conv:*): latency from the scheduled time to the moment
 *       the notifier's PUBLISH reaches a subscriber, per step (a hop of the path).
 *
 *   recv and tap report on SIGUSR1: they read CONTROL, a first line "<report id>" and then
 *   lines "<step> <acked file>", and print one JSON line per step listed ({"id":..,"step":..,
 *   ...}: recv compares every acked (conversation, seq) with the bitmaps of its own sockets
 *   of that conversation: expected, got, missing) and then {"id":..,"end":1}. Reports are
 *   cumulative (nothing is reset), so they can be asked for again after a drain.
 *
 *   The histograms are bl.h's; bench/histpct merges reports and prints their percentiles.
 *
 * USERS has one line per user, in user order: "<conversation index> <conversation id>
 * <token>"; user n is a member of conversation n / MEMBERS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bl.h"

#define PL_MAX_STEPS 64

/* ---- users file ------------------------------------------------------------------------ */

struct pl_user {
	int conv;
	char *conv_id, *token;
};

static struct pl_user *
pl_load_users(const char *path, int *n_out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		bl_die(path);
	int cap = 1024, n = 0;
	struct pl_user *u = bl_calloc((size_t)cap, sizeof(*u));
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		char *a = strtok(line, " "), *b = strtok(NULL, " "), *c = strtok(NULL, " ");
		if (a == NULL || b == NULL || c == NULL) {
			fprintf(stderr,
			        "pipeload: %s line %d: want \"<conv index> <conv id> <token>\"\n",
			        path, n + 1);
			exit(2);
		}
		if (n == cap) {
			cap *= 2;
			u = realloc(u, (size_t)cap * sizeof(*u));
			if (u == NULL)
				bl_die("realloc");
		}
		u[n].conv = atoi(a);
		u[n].conv_id = strdup(b);
		u[n].token = strdup(c);
		if (u[n].conv_id == NULL || u[n].token == NULL)
			bl_die("strdup");
		n++;
	}
	free(line);
	fclose(f);
	*n_out = n;
	return u;
}

/* ---- send ------------------------------------------------------------------------------ */

static struct {
	char host[64];
	struct pl_user *users;
	int n_users, members, senders, n_convs, step;
	FILE *acked;
	struct bl_rng rng;
	struct bl_ol ol;
} ps;

/* ps_request: message i goes to conversation i mod C from member (i / C) mod SENDERS of it. */
static size_t
ps_request(struct bl_ol *o, int64_t req, int conn, char **buf, size_t *cap)
{
	(void)conn;
	int conv = (int)(req % ps.n_convs);
	int member = (int)((req / ps.n_convs) % ps.senders);
	const struct pl_user *u = &ps.users[conv * ps.members + member];
	int64_t sched_real = o->t0_real + (int64_t)((double)req * 1e6 / o->rate);
	char id[37], body[512];
	bl_uuid(&ps.rng, id);
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%s\",\"conversation_id\":\"%s\",\"content\":\"t=%" PRId64
	                  " s=%d i=%" PRId64 "\"}",
	                  id, u->conv_id, sched_real, ps.step, req);
	bl_reserve(buf, cap, strlen(u->token) + (size_t)bl + 512);
	int hl =
	    snprintf(*buf, *cap,
	             "POST /v1/messages HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer %s\r\n"
	             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
	             ps.host, ntohs(o->addr.sin_port), u->token, bl);
	memcpy(*buf + hl, body, (size_t)bl);
	return (size_t)hl + (size_t)bl;
}

static int64_t
ps_body_seq(const char *b, size_t len)
{
	const char *p = memmem(b, len, "\"seq\":", 6);
	if (p == NULL)
		return -1;
	p += 6;
	if (p < b + len && *p == '"')
		p++;
	int64_t v = 0;
	int d = 0;
	while (p < b + len && *p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		d++;
	}
	return d ? v : -1;
}

/* ps_answer: every 2xx appends "<conversation index> <seq> <STEP> <i>" to ACKED. */
static void
ps_answer(struct bl_ol *o, int64_t req, int status, const char *body, size_t len)
{
	(void)o;
	if (status >= 200 && status < 300)
		fprintf(ps.acked, "%d %" PRId64 " %d %" PRId64 "\n", (int)(req % ps.n_convs),
		        ps_body_seq(body, len), ps.step, req);
}

static int
ps_usage(const char *m)
{
	fprintf(stderr,
	        "pipeload send: %s\nusage: pipeload send -a HOST:PORT -u USERS -m MEMBERS -r RATE "
	        "-d SECONDS -S STEP -o ACKED [-n SENDERS] [-c CONNS] [-g DRAIN_S]\n",
	        m);
	return 2;
}

static int
pl_send_main(int argc, char **argv)
{
	const char *addr = NULL, *users = NULL, *acked = NULL;
	struct bl_ol *o = &ps.ol;
	int opt;
	o->nconns = 512;
	o->drain = 10;
	ps.step = -1;
	while ((opt = getopt(argc, argv, "a:u:m:r:d:S:o:n:c:g:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'u':
			users = optarg;
			break;
		case 'm':
			ps.members = atoi(optarg);
			break;
		case 'r':
			o->rate = atof(optarg);
			break;
		case 'd':
			o->seconds = atof(optarg);
			break;
		case 'S':
			ps.step = atoi(optarg);
			break;
		case 'o':
			acked = optarg;
			break;
		case 'n':
			ps.senders = atoi(optarg);
			break;
		case 'c':
			o->nconns = atoi(optarg);
			break;
		case 'g':
			o->drain = atof(optarg);
			break;
		default:
			return ps_usage("unknown option");
		}
	}
	if (addr == NULL || users == NULL || acked == NULL || ps.members < 1 || o->rate <= 0 ||
	    o->seconds <= 0 || ps.step < 0 || ps.step >= PL_MAX_STEPS || o->nconns < 1 ||
	    o->nconns > 4000)
		return ps_usage("missing or bad arguments");
	if (bl_parse_addr(addr, &o->addr, ps.host, sizeof(ps.host)) != 0)
		return ps_usage("-a: numeric IPv4 HOST:PORT");
	ps.users = pl_load_users(users, &ps.n_users);
	if (ps.n_users < ps.members || ps.n_users % ps.members != 0)
		return ps_usage("USERS must hold a multiple of MEMBERS lines");
	if (ps.senders < 1 || ps.senders > ps.members)
		ps.senders = ps.members;
	ps.n_convs = ps.n_users / ps.members;
	ps.acked = fopen(acked, "w");
	if (ps.acked == NULL)
		bl_die(acked);
	bl_rng_seed(&ps.rng);
	signal(SIGPIPE, SIG_IGN);
	o->request = ps_request;
	o->answer = ps_answer;
	double cpu0 = bl_cpu_s();
	if (bl_ol_run(o) != 0) {
		fprintf(stderr, "pipeload send: could not connect to %s\n", addr);
		return 1;
	}
	fclose(ps.acked);
	char errs[512];
	bl_ol_errors(o, errs, sizeof(errs));
	printf("RESULT target=%.0f scheduled=%" PRId64 " sent=%" PRId64 " ok=%" PRId64
	       " achieved=%.0f ack_p50_ms=%.1f ack_p99_ms=%.1f ack_max_ms=%.1f errors=%s "
	       "cpu_s=%.2f\n",
	       o->rate, o->total, o->next, o->ok, (double)o->ok / bl_ol_span_s(o),
	       bl_pct_ms(o->lat_us, o->n_lat, 0.50), bl_pct_ms(o->lat_us, o->n_lat, 0.99),
	       o->n_lat ? o->lat_us[o->n_lat - 1] / 1000.0 : 0.0, errs, bl_cpu_s() - cpu0);
	bl_ol_free(o);
	return 0;
}

/* ---- control file (recv, tap) ---------------------------------------------------------- */

struct pl_control {
	long id;
	int n;
	int step[PL_MAX_STEPS];
	char *acked[PL_MAX_STEPS];
};

static int
pl_read_control(const char *path, struct pl_control *ctl)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	memset(ctl, 0, sizeof(*ctl));
	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	ctl->id = atol(line);
	while (ctl->n < PL_MAX_STEPS && fgets(line, sizeof(line), f) != NULL) {
		char file[4000];
		int s;
		if (sscanf(line, "%d %3999s", &s, file) != 2 || s < 0 || s >= PL_MAX_STEPS)
			continue;
		ctl->step[ctl->n] = s;
		ctl->acked[ctl->n] = strdup(file);
		ctl->n++;
	}
	fclose(f);
	return 0;
}

static void
pl_free_control(struct pl_control *ctl)
{
	for (int i = 0; i < ctl->n; i++)
		free(ctl->acked[i]);
}

/* pl_content parses "t=<us> s=<step>" at the start of a message's content inside a frame;
 * 0 on success. */
static int
pl_content(const char *p, size_t len, int64_t *sched_us, int *step)
{
	static const char key[] = "\"content\":\"t=";
	const char *t = memmem(p, len, key, sizeof(key) - 1);
	if (t == NULL)
		return -1;
	const char *end = p + len;
	t += sizeof(key) - 1;
	int64_t v = 0;
	int d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 19) {
		v = v * 10 + (*t++ - '0');
		d++;
	}
	if (d < 10 || end - t < 4 || memcmp(t, " s=", 3) != 0)
		return -1;
	t += 3;
	int s = 0;
	d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 4) {
		s = s * 10 + (*t++ - '0');
		d++;
	}
	if (d == 0 || s >= PL_MAX_STEPS)
		return -1;
	*sched_us = v;
	*step = s;
	return 0;
}

/* ---- recv ------------------------------------------------------------------------------ */

enum pr_state { PR_IDLE, PR_CONNECTING, PR_JOINING, PR_READY, PR_CLOSED };

struct pr_conn {
	struct bl_ws ws; /* first: epoll's data.ptr points at it */
	enum pr_state state;
	int user, conv;
	const char *conv_id, *token;
	bool was_ready; /* ready once: a close is a reconnect with resume */
	bool resume;    /* this attempt resumes */
	int attempts;
	int64_t retry_at; /* monotonic us; > 0: to be opened then */
	int64_t opened;
	uint64_t *bits; /* seqs received */
	int nwords;
};

struct pr_step {
	struct bl_hist h;
	uint64_t dup;
};

static struct {
	struct sockaddr_in addr;
	char host[64];
	const char *control;
	struct pr_conn *c;
	int n, next_open;
	double open_rate;
	int ep;
	int64_t t_start;
	int ready, failed, retrying, closes_after_ready, reconnects, last_close_code;
	bool open_reported;
	int *conv_first, *conv_socks, n_convs; /* CSR: sockets of each conversation */
	struct pr_step st[PL_MAX_STEPS];
	uint64_t delivered_frames, other_frames, bad_frames, subscribed_frames;
	char failures[512];
} pr;

static void pr_open(struct pr_conn *c);

static void
pr_close(struct pr_conn *c, const char *why)
{
	if (c->state == PR_CLOSED || c->state == PR_IDLE)
		return;
	if (c->state == PR_READY) {
		pr.ready--;
		pr.closes_after_ready++;
	}
	c->state = PR_CLOSED;
	bl_ws_close(&c->ws);
	bl_note(pr.failures, sizeof(pr.failures), why);
	if (c->was_ready) {
		/* a browser reconnects and resumes from the last seq it holds without a gap */
		c->retry_at = bl_now_us(CLOCK_MONOTONIC) + 200000;
		c->attempts = 0;
		pr.retrying++;
		pr.reconnects++;
	} else if (c->attempts < 5) {
		c->retry_at = bl_now_us(CLOCK_MONOTONIC) + 1000000;
		pr.retrying++;
	} else {
		pr.failed++;
	}
}

static bool
pr_seen(struct pr_conn *c, int64_t seq)
{
	int64_t w = seq / 64;
	return seq >= 0 && w < c->nwords && (c->bits[w] >> (seq % 64) & 1);
}

static void
pr_mark(struct pr_conn *c, int64_t seq)
{
	int64_t w = seq / 64;
	if (w >= c->nwords) {
		int n = c->nwords ? c->nwords : 4;
		while (n <= w)
			n *= 2;
		uint64_t *b = realloc(c->bits, (size_t)n * sizeof(*b));
		if (b == NULL)
			bl_die("realloc");
		memset(b + c->nwords, 0, (size_t)(n - c->nwords) * sizeof(*b));
		c->bits = b;
		c->nwords = n;
	}
	c->bits[w] |= 1ULL << (seq % 64);
}

/* pr_contiguous is the last seq held with nothing missing before it (seqs start at 1). */
static int64_t
pr_contiguous(const struct pr_conn *c)
{
	int64_t s = 1;
	while (s / 64 < c->nwords && (c->bits[s / 64] >> (s % 64) & 1))
		s++;
	return s - 1;
}

static int64_t
pr_json_int(const char *p, size_t len, const char *key)
{
	size_t kl = strlen(key);
	const char *t = memmem(p, len, key, kl);
	if (t == NULL)
		return -1;
	t += kl;
	const char *end = p + len;
	int64_t v = 0;
	int d = 0;
	while (t < end && *t >= '0' && *t <= '9' && d < 18) {
		v = v * 10 + (*t++ - '0');
		d++;
	}
	return d ? v : -1;
}

static void
pr_on_text(struct pr_conn *c, const char *p, size_t len)
{
	int64_t now = bl_now_us(CLOCK_REALTIME);
	if (memmem(p, len, "\"type\":\"message.created\"", 24) != NULL) {
		int64_t seq = pr_json_int(p, len, "\"seq\":"), sched;
		int step;
		if (seq <= 0 || pl_content(p, len, &sched, &step) != 0) {
			pr.bad_frames++;
			return;
		}
		if (pr_seen(c, seq)) {
			pr.st[step].dup++;
			return;
		}
		pr_mark(c, seq);
		bl_hist_add(&pr.st[step].h, now - sched);
		return;
	}
	if (memmem(p, len, "\"type\":\"message.delivered\"", 26) != NULL) {
		pr.delivered_frames++;
		return;
	}
	if (c->state == PR_JOINING && memmem(p, len, "\"type\":\"ready\"", 14) != NULL) {
		c->state = PR_READY;
		c->was_ready = true;
		pr.ready++;
		if (c->resume) {
			char sub[256];
			int n = snprintf(sub, sizeof(sub),
			                 "{\"type\":\"subscribe\",\"conversation_id\":\"%s\","
			                 "\"since_seq\":%" PRId64 "}",
			                 c->conv_id, pr_contiguous(c));
			bl_ws_send(&c->ws, 1, sub, (size_t)n);
		}
		return;
	}
	if (memmem(p, len, "\"type\":\"subscribed\"", 19) != NULL) {
		pr.subscribed_frames++;
		return;
	}
	pr.other_frames++;
}

static void
pr_on_open(struct bl_ws *w)
{
	((struct pr_conn *)w)->state = PR_JOINING;
}

static void
pr_on_text_cb(struct bl_ws *w, const char *p, size_t len)
{
	pr_on_text((struct pr_conn *)w, p, len);
}

static void
pr_on_fail(struct bl_ws *w, const char *why, int close_code)
{
	if (close_code != 0)
		pr.last_close_code = close_code;
	pr_close((struct pr_conn *)w, why);
}

static const struct bl_ws_ops pr_ws_ops = { pr_on_open, pr_on_text_cb, pr_on_fail };

static void
pr_open(struct pr_conn *c)
{
	char target[4096], host[96];
	c->attempts++;
	c->resume = c->was_ready;
	c->state = PR_CONNECTING;
	c->opened = bl_now_us(CLOCK_MONOTONIC);
	snprintf(target, sizeof(target), "/ws?token=%s%s", c->token, c->resume ? "&resume=1" : "");
	snprintf(host, sizeof(host), "%s:%u", pr.host, ntohs(pr.addr.sin_port));
	bl_ws_open(&c->ws, &pr_ws_ops, pr.ep, &pr.addr, host, target);
}

static void
pr_timers(int64_t mono)
{
	static int64_t last;
	if (mono - last < 50000)
		return;
	last = mono;
	for (int i = 0; pr.retrying > 0 && i < pr.next_open; i++) {
		struct pr_conn *c = &pr.c[i];
		if (c->state == PR_CLOSED && c->retry_at > 0 && mono >= c->retry_at) {
			c->retry_at = 0;
			pr.retrying--;
			pr_open(c);
		}
	}
	if (pr.open_reported || pr.next_open < pr.n || pr.retrying > 0)
		return;
	bool pending = false;
	for (int i = 0; i < pr.n; i++) {
		struct pr_conn *c = &pr.c[i];
		if (c->state == PR_READY || c->state == PR_CLOSED)
			continue;
		if (mono - c->opened > 30000000)
			pr_close(c, "no ready within 30 s");
		else
			pending = true;
	}
	if (pending || pr.retrying > 0)
		return;
	pr.open_reported = true;
	printf("{\"phase\":\"open\",\"requested\":%d,\"ready\":%d,\"failed\":%d,\"open_s\":%.2f,"
	       "\"cpu_s\":%.3f,\"failures\":\"%s\"}\n",
	       pr.n, pr.ready, pr.failed, (double)(mono - pr.t_start) / 1e6, bl_cpu_s(),
	       pr.failures);
	fflush(stdout);
}

/* pr_report answers SIGUSR1 (see the top of the file). */
static void
pr_report(void)
{
	struct pl_control ctl;
	if (pl_read_control(pr.control, &ctl) != 0) {
		printf("{\"id\":-1,\"error\":\"cannot read %s\"}\n", pr.control);
		fflush(stdout);
		return;
	}
	for (int k = 0; k < ctl.n; k++) {
		int s = ctl.step[k];
		uint64_t expected = 0, got = 0, miss_unready = 0;
		FILE *f = fopen(ctl.acked[k], "r");
		char line[256];
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			int conv;
			long long seq;
			if (sscanf(line, "%d %lld", &conv, &seq) != 2 || conv < 0 ||
			    conv >= pr.n_convs)
				continue;
			for (int j = pr.conv_first[conv]; j < pr.conv_first[conv + 1]; j++) {
				struct pr_conn *c = &pr.c[pr.conv_socks[j]];
				expected++;
				if (pr_seen(c, seq))
					got++;
				else if (!c->was_ready)
					miss_unready++;
			}
		}
		if (f != NULL)
			fclose(f);
		const struct pr_step *st = &pr.st[s];
		printf("{\"id\":%ld,\"step\":%d,\"expected\":%" PRIu64 ",\"got\":%" PRIu64
		       ",\"missing\":%" PRIu64 ",\"missing_never_ready\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"dup\":%" PRIu64 ",\"max_us\":%" PRIu64
		       ",\"hist\":\"",
		       ctl.id, s, expected, got, expected - got, miss_unready, st->h.count, st->dup,
		       st->h.max_us);
		bl_hist_print(&st->h, stdout);
		printf("\"}\n");
	}
	printf("{\"id\":%ld,\"end\":1,\"ready\":%d,\"failed\":%d,\"closes_after_ready\":%d,"
	       "\"reconnects\":%d,\"last_close_code\":%d,\"delivered_frames\":%" PRIu64
	       ",\"subscribed_frames\":%" PRIu64 ",\"other_frames\":%" PRIu64
	       ",\"bad_frames\":%" PRIu64 ",\"cpu_s\":%.3f,\"failures\":\"%s\"}\n",
	       ctl.id, pr.ready, pr.failed, pr.closes_after_ready, pr.reconnects,
	       pr.last_close_code, pr.delivered_frames, pr.subscribed_frames, pr.other_frames,
	       pr.bad_frames, bl_cpu_s(), pr.failures);
	fflush(stdout);
	pl_free_control(&ctl);
}

static int
pr_usage(const char *m)
{
	fprintf(stderr,
	        "pipeload recv: %s\nusage: pipeload recv -a HOST:PORT -u USERS -P PART -Q PARTS "
	        "-C CONTROL [-r OPEN_RATE]\n",
	        m);
	return 2;
}

static int
pl_recv_main(int argc, char **argv)
{
	const char *addr = NULL, *users = NULL;
	int part = -1, parts = 0, opt;
	pr.open_rate = 250;
	while ((opt = getopt(argc, argv, "a:u:P:Q:C:r:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'u':
			users = optarg;
			break;
		case 'P':
			part = atoi(optarg);
			break;
		case 'Q':
			parts = atoi(optarg);
			break;
		case 'C':
			pr.control = optarg;
			break;
		case 'r':
			pr.open_rate = atof(optarg);
			break;
		default:
			return pr_usage("unknown option");
		}
	}
	if (addr == NULL || users == NULL || pr.control == NULL || parts < 1 || part < 0 ||
	    part >= parts || pr.open_rate <= 0)
		return pr_usage("missing or bad arguments");
	if (bl_parse_addr(addr, &pr.addr, pr.host, sizeof(pr.host)) != 0)
		return pr_usage("-a: numeric IPv4 HOST:PORT");
	int nu;
	struct pl_user *u = pl_load_users(users, &nu);
	for (int i = 0; i < nu; i++)
		if (u[i].conv + 1 > pr.n_convs)
			pr.n_convs = u[i].conv + 1;
	pr.c = bl_calloc((size_t)nu / (size_t)parts + 1, sizeof(*pr.c));
	uint32_t seed = (uint32_t)bl_now_us(CLOCK_REALTIME) ^ (uint32_t)getpid();
	for (int i = part; i < nu; i += parts) {
		struct pr_conn *c = &pr.c[pr.n++];
		c->ws.fd = -1;
		c->user = i;
		c->conv = u[i].conv;
		c->conv_id = u[i].conv_id;
		c->token = u[i].token;
		c->ws.mask = seed + (uint32_t)i * 2654435761u;
	}
	pr.conv_first = bl_calloc((size_t)pr.n_convs + 1, sizeof(int));
	pr.conv_socks = bl_calloc((size_t)pr.n, sizeof(int));
	for (int i = 0; i < pr.n; i++)
		pr.conv_first[pr.c[i].conv + 1]++;
	for (int k = 0; k < pr.n_convs; k++)
		pr.conv_first[k + 1] += pr.conv_first[k];
	int *fill = bl_calloc((size_t)pr.n_convs, sizeof(int));
	for (int i = 0; i < pr.n; i++) {
		int cv = pr.c[i].conv;
		pr.conv_socks[pr.conv_first[cv] + fill[cv]++] = i;
	}
	free(fill);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	pr.ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || pr.ep < 0)
		bl_die("signalfd/epoll");
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(pr.ep, EPOLL_CTL_ADD, sfd, &sev);
	pr.t_start = bl_now_us(CLOCK_MONOTONIC);
	struct epoll_event evs[512];
	for (;;) {
		int64_t mono = bl_now_us(CLOCK_MONOTONIC);
		while (pr.next_open < pr.n &&
		       mono >= pr.t_start + (int64_t)(pr.next_open * 1e6 / pr.open_rate))
			pr_open(&pr.c[pr.next_open++]);
		int timeout = 50;
		if (pr.next_open < pr.n) {
			int64_t due =
			    pr.t_start + (int64_t)(pr.next_open * 1e6 / pr.open_rate) - mono;
			timeout = due <= 0 ? 0 : (int)(due / 1000) + 1;
			if (timeout > 50)
				timeout = 50;
		}
		int n = epoll_wait(pr.ep, evs, 512, timeout);
		if (n < 0 && errno != EINTR)
			bl_die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct pr_conn *c = evs[i].data.ptr;
			if (c == NULL) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1) {
						pr_report();
						continue;
					}
					return 0;
				}
				continue;
			}
			if (c->state != PR_CLOSED && c->state != PR_IDLE)
				bl_ws_event(&c->ws, evs[i].events);
		}
		pr_timers(bl_now_us(CLOCK_MONOTONIC));
	}
}

/* ---- tap (Redis) ----------------------------------------------------------------------- */

static struct {
	const char *control;
	struct bl_hist h[PL_MAX_STEPS];
	int64_t first_us[PL_MAX_STEPS], last_us[PL_MAX_STEPS]; /* arrivals, CLOCK_REALTIME */
	uint64_t other;
} pt;

/* pt_bulk parses "$<n>\r\n<bytes>\r\n" at *p; the bytes in *s, *n. 1 done, 0 more needed,
 * -1 malformed. */
static int
pt_bulk(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;
	if (q >= end)
		return 0;
	if (*q != '$')
		return -1;
	const char *nl = memchr(q, '\n', (size_t)(end - q));
	if (nl == NULL)
		return 0;
	long len = strtol(q + 1, NULL, 10);
	if (len < 0)
		return -1;
	if (end - (nl + 1) < len + 2)
		return 0;
	*s = nl + 1;
	*n = (size_t)len;
	*p = nl + 1 + len + 2;
	return 1;
}

/* pt_element consumes one top-level reply (an array of bulk strings or a simple line). */
static int
pt_element(const char **p, const char *end)
{
	const char *q = *p;
	if (q >= end)
		return 0;
	const char *nl = memchr(q, '\n', (size_t)(end - q));
	if (nl == NULL)
		return 0;
	if (*q != '*') {
		*p = nl + 1;
		return 1;
	}
	long cnt = strtol(q + 1, NULL, 10);
	const char *s[8];
	size_t n[8];
	const char *r = nl + 1;
	for (long i = 0; i < cnt; i++) {
		if (r < end && *r == ':') { /* integer (the psubscribe count) */
			const char *nl2 = memchr(r, '\n', (size_t)(end - r));
			if (nl2 == NULL)
				return 0;
			r = nl2 + 1;
			continue;
		}
		int rv = pt_bulk(&r, end, &s[i < 8 ? i : 7], &n[i < 8 ? i : 7]);
		if (rv <= 0)
			return rv;
	}
	*p = r;
	if (cnt == 4 && n[0] == 8 && memcmp(s[0], "pmessage", 8) == 0) {
		int64_t sched;
		int step;
		if (pl_content(s[3], n[3], &sched, &step) == 0) {
			int64_t now = bl_now_us(CLOCK_REALTIME);
			bl_hist_add(&pt.h[step], now - sched);
			if (pt.first_us[step] == 0)
				pt.first_us[step] = now;
			pt.last_us[step] = now;
		} else {
			pt.other++;
		}
	}
	return 1;
}

static void
pt_report(void)
{
	struct pl_control ctl;
	if (pl_read_control(pt.control, &ctl) != 0) {
		printf("{\"id\":-1,\"error\":\"cannot read %s\"}\n", pt.control);
		fflush(stdout);
		return;
	}
	for (int k = 0; k < ctl.n; k++) {
		const struct bl_hist *h = &pt.h[ctl.step[k]];
		int s = ctl.step[k];
		printf("{\"id\":%ld,\"step\":%d,\"received\":%" PRIu64 ",\"max_us\":%" PRIu64
		       ",\"span_us\":%" PRId64 ",\"hist\":\"",
		       ctl.id, s, h->count, h->max_us, pt.last_us[s] - pt.first_us[s]);
		bl_hist_print(h, stdout);
		printf("\"}\n");
	}
	printf("{\"id\":%ld,\"end\":1,\"other\":%" PRIu64 ",\"cpu_s\":%.3f}\n", ctl.id, pt.other,
	       bl_cpu_s());
	fflush(stdout);
	pl_free_control(&ctl);
}

static int
pl_tap_main(int argc, char **argv)
{
	const char *addr = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "a:C:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'C':
			pt.control = optarg;
			break;
		default:
			goto usage;
		}
	}
	struct sockaddr_in sa;
	char host[64];
	if (addr == NULL || pt.control == NULL || bl_parse_addr(addr, &sa, host, sizeof(host)) != 0)
		goto usage;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		bl_die("connect to Redis");
	static const char cmd[] = "*2\r\n$10\r\nPSUBSCRIBE\r\n$6\r\nconv:*\r\n";
	if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)sizeof(cmd) - 1)
		bl_die("write");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		bl_die("signalfd/epoll");
	struct epoll_event e1 = { .events = EPOLLIN, .data.fd = fd },
	                   e2 = { .events = EPOLLIN, .data.fd = sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e1);
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e2);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	printf("{\"phase\":\"open\"}\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1)
						pt_report();
					else
						return 0;
				}
				continue;
			}
			bl_reserve(&buf, &cap, len + 65536);
			ssize_t r = read(fd, buf + len, cap - len);
			if (r <= 0) {
				fprintf(stderr, "pipeload tap: Redis connection lost\n");
				return 1;
			}
			len += (size_t)r;
			const char *p = buf, *end = buf + len;
			int rv;
			while ((rv = pt_element(&p, end)) == 1)
				;
			if (rv < 0) {
				fprintf(stderr, "pipeload tap: unexpected reply from Redis\n");
				return 1;
			}
			len = (size_t)(end - p);
			memmove(buf, p, len);
		}
	}
usage:
	fprintf(stderr, "usage: pipeload tap -a HOST:PORT -C CONTROL\n");
	return 2;
}

int
main(int argc, char **argv)
{
	bl_prog = "pipeload";
	if (argc < 2) {
		fprintf(stderr, "usage: pipeload send|recv|tap ...\n");
		return 2;
	}
	const char *mode = argv[1];
	argv[1] = argv[0];
	if (strcmp(mode, "send") == 0)
		return pl_send_main(argc - 1, argv + 1);
	if (strcmp(mode, "recv") == 0)
		return pl_recv_main(argc - 1, argv + 1);
	if (strcmp(mode, "tap") == 0)
		return pl_tap_main(argc - 1, argv + 1);
	fprintf(stderr, "pipeload: unknown mode %s\n", mode);
	return 2;
}
