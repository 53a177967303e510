// run.mjs: the client side and the checker of the fault-injection tests (tests/lib/faults.sh,
// tests/integration/kafka_broker_kill_test.sh, notifier_kill_test.sh, kafka_broker_stop_test.sh).
//
// 1. Setup: one user per access token (SB_FAULTS_TOKENS, one a line; the user id is the token's
//    sub), SB_FAULTS_CONVS group conversations of 2 to 4 members created through the gateway's
//    REST API, one WebSocket client per user on realtime (?resume=1, then `subscribe` with
//    since_seq 0 for each of its conversations, so that nothing published after `subscribed`
//    can be missed).
// 2. The run: SB_FAULTS_MESSAGES sends (POST /v1/messages, each with its own client message id)
//    at SB_FAULTS_RATE per second, open loop (a slow answer does not slow the schedule), message
//    i into conversation i % convs from its members in turn. Every request is bounded by
//    SB_FAULTS_REQ_TIMEOUT_MS; 503, 504 and 429 are retried with the same id (after Retry-After,
//    at most 2 s); anything else is a failure (a 5xx is retried too, to learn the outcome).
//    A client whose socket closes reconnects with ?resume=1 and subscribes each conversation
//    with since_seq = the last seq it received there.
// 3. The checks, once every send is answered, the fault is over (the shell holds the file
//    SB_FAULTS_DIR/fault while it lasts) and every expected delivery arrived, or
//    SB_FAULTS_STRAGGLER_S (60) passed since the sends were answered and the fault ended:
//    every answer was 202/200 or a retryable error with a problem+json body
//    (SB_FAULTS_STRICT_202=1: 202/200 only); no request hit its timeout; the acknowledged seqs
//    of each conversation are 1..n; each client received each acknowledged message of each of
//    its conversations exactly once, with the id the send acknowledged, in strictly increasing
//    seq order, and nothing else (2 s more are watched for late duplicates); no subscribe was
//    answered recovered:false or an error. The figures are printed; the exit status is 0
//    only when every check held.
//
// Progress for the shell: SB_FAULTS_DIR/progress is rewritten every 100 ms with
// "<sends started> <acknowledged> <deliveries> <deliveries owed for the acknowledged sends>"
// once sending began; the shell appends "<epoch ms> <what>" lines to SB_FAULTS_DIR/marks (the
// fault's moments), printed on the run's timeline at the end.
//
// SB_FAULTS_BREAK (to see the checker fail on purpose): drop (one delivery is not counted),
// dup (one delivery is counted twice), order (two deliveries of one conversation on one socket
// are swapped).
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

const env = process.env;
const num = (name, def) => {
  const v = env[name] === undefined || env[name] === '' ? def : Number(env[name]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number, got ${env[name]}`);
  return v;
};
const GW = env.SB_GW;
const WS_URL = env.SB_FAULTS_WS; // ws://127.0.0.1:PORT/ws
const DIR = env.SB_FAULTS_DIR;
const N_MSG = num('SB_FAULTS_MESSAGES', 5000);
const RATE = num('SB_FAULTS_RATE', 250);
const N_CONV = num('SB_FAULTS_CONVS', 50);
const REQ_TIMEOUT = num('SB_FAULTS_REQ_TIMEOUT_MS', 10000);
const SEND_DEADLINE = num('SB_FAULTS_SEND_DEADLINE_MS', 90000);
const STRAGGLER_MS = num('SB_FAULTS_STRAGGLER_S', 60) * 1000;
const FAULT_MAX_MS = num('SB_FAULTS_FAULT_MAX_S', 120) * 1000;
const STRICT_202 = env.SB_FAULTS_STRICT_202 === '1';
const BREAK = env.SB_FAULTS_BREAK || '';
if (!GW || !WS_URL || !DIR || !env.SB_FAULTS_TOKENS) {
  console.error('run.mjs: SB_GW, SB_FAULTS_WS, SB_FAULTS_DIR and SB_FAULTS_TOKENS are required');
  process.exit(2);
}
if (BREAK && !['drop', 'dup', 'order'].includes(BREAK)) {
  console.error(`run.mjs: SB_FAULTS_BREAK must be drop, dup or order, got ${BREAK}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();
const failures = [];
const fail = (what) => {
  failures.push(what);
  if (failures.length <= 30) console.log(`FAIL: ${what}`);
};
const log = (s) => console.log(`[faults +${((now() - T0) / 1000).toFixed(1)} s] ${s}`);
const T0 = now();

// ---------------------------------------------------------------------------------------------
// Users and conversations.
const tokens = readFileSync(env.SB_FAULTS_TOKENS, 'utf8').split('\n').filter(Boolean);
const users = tokens.map((token) => ({
  token,
  id: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub,
}));
const U = users.length;
if (U < 4) throw new Error('at least 4 users');

async function rest(token, method, path, body) {
  const r = await fetch(`${GW}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(REQ_TIMEOUT),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

// Conversation c: 2, 3 or 4 members (c % 3 + 2): users 2c and 2c+1 (so that every user is in
// one), then 2c+31 and 2c+67 (mod the number of users).
const convs = [];
for (let c = 0; c < N_CONV; c++) {
  const want = 2 + (c % 3);
  const m = [];
  for (const off of [0, 1, 31, 67, 13, 47]) {
    const u = (2 * c + off) % U;
    if (!m.includes(u)) m.push(u);
    if (m.length === want) break;
  }
  convs.push({ c, members: m, id: null, acked: new Map() /* seq -> message id */ });
}
for (let i = 0; i < convs.length; i += 10) {
  await Promise.all(convs.slice(i, i + 10).map(async (cv) => {
    const [creator, ...others] = cv.members;
    const r = await rest(users[creator].token, 'POST', '/v1/conversations', {
      kind: 'group', title: `faults ${cv.c}`, member_ids: others.map((u) => users[u].id),
    });
    cv.id = r.id;
  }));
}
const convById = new Map(convs.map((cv) => [cv.id, cv]));
const userConvs = users.map(() => []);
for (const cv of convs) for (const u of cv.members) userConvs[u].push(cv);
const memberships = convs.reduce((a, cv) => a + cv.members.length, 0);
log(`${convs.length} conversations created (${memberships} memberships of ${U} users)`);

// ---------------------------------------------------------------------------------------------
// WebSocket clients.
const sendStart = new Map(); // message id -> first attempt (ms)
const latencies = [];
let framesSeen = 0;
let deliveries = 0;
let stopping = false;

class Client {
  constructor(ui) {
    this.ui = ui;
    this.user = users[ui];
    this.convs = userConvs[ui];
    this.last = new Map(this.convs.map((cv) => [cv.id, 0])); // highest seq received
    this.counts = new Map(); // "conv seq" -> times received
    this.ids = new Map(); // "conv seq" -> message id received
    this.order = 0; // frames whose seq was not above the last of their conversation
    this.liveGaps = 0; // frames whose seq jumped over one not received yet
    this.dups = 0;
    this.received = 0;
    this.connects = 0;
    this.closes = [];
    this.notRecovered = 0;
    this.errors = [];
    this.held = null; // SB_FAULTS_BREAK=order
    this.pending = new Map(); // conv -> resolve of its `subscribed`
  }

  frame(f) {
    if (f.type === 'message.created') {
      framesSeen++;
      if (BREAK === 'drop' && framesSeen === 1000) return;
      if (BREAK === 'order') {
        if (framesSeen === 1000) { this.held = f; return; }
        if (this.held && this.held.conversation_id === f.conversation_id) {
          const h = this.held;
          this.held = null;
          this.created(f);
          this.created(h);
          return;
        }
      }
      this.created(f);
      if (BREAK === 'dup' && framesSeen === 1000) this.created(f);
    } else if (f.type === 'subscribed') {
      if (f.recovered === false) {
        this.notRecovered++;
        fail(`user ${this.ui}: subscribed recovered:false in ${f.conversation_id} (last_seq ${f.last_seq})`);
      }
      const r = this.pending.get(f.conversation_id);
      if (r) { this.pending.delete(f.conversation_id); r(true); }
    } else if (f.type === 'error') {
      this.errors.push(`${f.code}: ${f.message} (${f.conversation_id || ''})`);
      const r = f.conversation_id && this.pending.get(f.conversation_id);
      if (r) { this.pending.delete(f.conversation_id); r(false); }
    }
  }

  created(f) {
    const seq = Number(f.seq);
    const key = `${f.conversation_id} ${seq}`;
    const n = (this.counts.get(key) || 0) + 1;
    this.counts.set(key, n);
    if (n > 1) {
      this.dups++;
      if (this.dups <= 3) fail(`user ${this.ui}: seq ${seq} of ${f.conversation_id} received ${n} times`);
      return;
    }
    this.received++;
    deliveries++;
    this.ids.set(key, f.message && f.message.id);
    const last = this.last.get(f.conversation_id);
    if (last === undefined) {
      fail(`user ${this.ui}: a message of ${f.conversation_id}, not one of its conversations`);
      return;
    }
    if (seq <= last) {
      this.order++;
      if (this.order <= 3) fail(`user ${this.ui}: seq ${seq} after ${last} in ${f.conversation_id}`);
    } else {
      if (seq > last + 1) this.liveGaps++;
      this.last.set(f.conversation_id, seq);
    }
    const t = sendStart.get(f.message && f.message.id);
    if (t !== undefined) latencies.push(now() - t);
  }

  // connect opens the socket (?resume=1) and subscribes each conversation from the last seq
  // received; resolves once every subscription is confirmed (retried while refused).
  async connect() {
    for (let attempt = 1; ; attempt++) {
      if (stopping) return;
      try {
        await this.open();
        return;
      } catch (e) {
        if (this.ws) this.ws.terminate();
        if (attempt === 1 || attempt % 10 === 0) log(`user ${this.ui}: connect attempt ${attempt}: ${e.message}`);
        await sleep(Math.min(2000, 100 * attempt));
      }
    }
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${WS_URL}?token=${this.user.token}&resume=1`);
      this.ws = ws;
      this.connects++;
      let ready = false;
      const timer = setTimeout(() => reject(new Error('not ready within 15 s')), 15000);
      ws.on('unexpected-response', (_q, res) => { clearTimeout(timer); reject(new Error(`HTTP ${res.statusCode}`)); });
      ws.on('error', (e) => { if (!ready) { clearTimeout(timer); reject(e); } });
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.type === 'ready' && !ready) {
          ready = true;
          this.subscribeAll().then(() => { clearTimeout(timer); resolve(); }, (e) => { clearTimeout(timer); reject(e); });
          return;
        }
        this.frame(f);
      });
      ws.on('close', (code, reason) => {
        if (this.ws !== ws) return;
        for (const r of this.pending.values()) r(false);
        this.pending.clear();
        if (!ready) { clearTimeout(timer); reject(new Error(`closed ${code} before ready`)); return; }
        if (stopping) return;
        this.closes.push(`${code}${reason.length ? ' ' + reason.toString() : ''}`);
        log(`user ${this.ui}: socket closed (${code} ${reason.toString()}), resuming`);
        sleep(200).then(() => this.connect());
      });
    });
  }

  async subscribeAll() {
    await Promise.all(this.convs.map(async (cv) => {
      for (let attempt = 1; ; attempt++) {
        const ok = await new Promise((resolve) => {
          this.pending.set(cv.id, resolve);
          this.ws.send(JSON.stringify({ type: 'subscribe', conversation_id: cv.id, since_seq: this.last.get(cv.id) }));
          setTimeout(() => { if (this.pending.get(cv.id) === resolve) { this.pending.delete(cv.id); resolve(false); } }, 10000);
        });
        if (ok) return;
        if (this.ws.readyState !== WebSocket.OPEN) throw new Error('socket closed while subscribing');
        if (attempt >= 20) throw new Error(`subscribe ${cv.id} refused 20 times: ${this.errors.slice(-1)}`);
        await sleep(250 * attempt);
      }
    }));
  }
}

const clients = users.map((_, i) => new Client(i));
for (let i = 0; i < clients.length; i += 20) await Promise.all(clients.slice(i, i + 20).map((c) => c.connect()));
log(`${clients.length} WebSocket clients subscribed`);

// ---------------------------------------------------------------------------------------------
// Sending.
const statusCounts = new Map(); // "202" -> n ("timeout", "error" for no answer)
let started = 0;
let acked = 0;
let owed = 0; // deliveries the acknowledged sends call for
let acked200 = 0;
let retries = 0;
let retriedMsgs = 0;
let hangs = 0;
let maxHttpMs = 0;
let gaveUp = 0;
const timeline = []; // per second: [acks, deliveries, retryable answers]
const tl = (i) => (timeline[i] ||= [0, 0, 0]);
let runStart = 0;
const count = (k) => statusCounts.set(k, (statusCounts.get(k) || 0) + 1);

async function send(i) {
  const cv = convs[i % convs.length];
  const sender = users[cv.members[Math.floor(i / convs.length) % cv.members.length]];
  const id = randomUUID();
  const body = JSON.stringify({ id, conversation_id: cv.id, content: `faults message ${i}` });
  const t0 = now();
  sendStart.set(id, t0);
  let tries = 0;
  for (;;) {
    tries++;
    if (tries === 2) retriedMsgs++;
    if (tries > 1) retries++;
    const ta = now();
    let r, text;
    try {
      r = await fetch(`${GW}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sender.token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(REQ_TIMEOUT),
      });
      text = await r.text();
    } catch (e) {
      const timedOut = e.name === 'TimeoutError' || (e.cause && e.cause.name === 'TimeoutError');
      count(timedOut ? 'timeout' : 'error');
      if (timedOut) { hangs++; fail(`send ${i}: no answer within ${REQ_TIMEOUT} ms`); } else fail(`send ${i}: ${e.message} ${e.cause ? e.cause.code || e.cause.message : ''}`);
      if (now() - t0 > SEND_DEADLINE) { gaveUp++; fail(`send ${i}: given up after ${tries} attempts`); return; }
      await sleep(500);
      continue;
    }
    const ms = now() - ta;
    if (ms > maxHttpMs) maxHttpMs = ms;
    count(String(r.status));
    if (r.status === 202 || r.status === 200) {
      let b;
      try { b = JSON.parse(text); } catch { b = {}; }
      const seq = Number(b.seq);
      if (b.id !== id || !(seq > 0)) { fail(`send ${i}: ${r.status} with body ${text}`); return; }
      if (r.status === 200) acked200++;
      const prev = cv.acked.get(seq);
      if (prev !== undefined && prev !== id) fail(`conversation ${cv.c}: seq ${seq} acknowledged for two messages`);
      cv.acked.set(seq, id);
      acked++;
      owed += cv.members.length;
      tl(Math.floor((now() - runStart) / 1000))[0]++;
      if (STRICT_202 && tries > 1) fail(`send ${i}: needed ${tries} attempts (every send must be answered 202 at once)`);
      return;
    }
    const retryable = r.status === 503 || r.status === 504 || r.status === 429;
    const problem = (r.headers.get('content-type') || '').startsWith('application/problem+json') &&
      (() => { try { return JSON.parse(text).status === r.status; } catch { return false; } })();
    if (retryable) tl(Math.floor((now() - runStart) / 1000))[2]++;
    if (!retryable || STRICT_202) fail(`send ${i}: answered ${r.status} ${text.slice(0, 200)}`);
    else if (!problem) fail(`send ${i}: ${r.status} without a problem+json body: ${text.slice(0, 200)}`);
    if (!retryable && r.status < 500) return; // a 4xx other than 429 is final
    if (now() - t0 > SEND_DEADLINE) { gaveUp++; fail(`send ${i}: given up after ${tries} attempts (last ${r.status})`); return; }
    const ra = Number(r.headers.get('retry-after'));
    await sleep(Number.isFinite(ra) && ra > 0 ? Math.min(2000, ra * 1000) : 200);
  }
}

const progress = () => {
  try {
    writeFileSync(`${DIR}/progress.tmp`, `${started} ${acked} ${deliveries} ${owed}\n`);
    renameSync(`${DIR}/progress.tmp`, `${DIR}/progress`);
  } catch { /* best effort */ }
};
const progressTimer = setInterval(progress, 100);
let lastDeliv = 0;
const delivTimer = setInterval(() => {
  if (!runStart) return;
  tl(Math.floor((now() - runStart) / 1000) - 1)[1] += deliveries - lastDeliv;
  lastDeliv = deliveries;
}, 1000);

runStart = now();
log(`sending ${N_MSG} messages at ${RATE}/s into ${convs.length} conversations`);
const inflight = [];
await new Promise((resolve) => {
  const tick = () => {
    const due = Math.min(N_MSG, Math.floor(((now() - runStart) * RATE) / 1000) + 1);
    while (started < due) inflight.push(send(started++));
    if (started >= N_MSG) { resolve(); return; }
    setTimeout(tick, 5);
  };
  tick();
});
const sendEnd = now();
log(`all ${N_MSG} sends started in ${((sendEnd - runStart) / 1000).toFixed(1)} s (${(N_MSG * 1000 / (sendEnd - runStart)).toFixed(0)}/s)`);
await Promise.all(inflight);
log(`all sends answered: ${acked} acknowledged`);

// Stragglers: wait until each client has every acknowledged message of its conversations, at
// most STRAGGLER_MS counted from the moment the sends are answered and the fault is over (the
// shell holds SB_FAULTS_DIR/fault while it lasts, at most FAULT_MAX_MS: the checks always see
// the platform whole again), then 2 s more for anything that should not come (duplicates).
const expectedOf = (cl) => cl.convs.reduce((a, cv) => a + cv.acked.size, 0);
const expectedTotal = clients.reduce((a, cl) => a + expectedOf(cl), 0);
const allIn = () => clients.every((cl) => cl.received >= expectedOf(cl));
let waitStart = now();
let faultLogged = false;
while (existsSync(`${DIR}/fault`) && now() - waitStart < FAULT_MAX_MS) {
  if (!faultLogged) { log('waiting for the fault to end'); faultLogged = true; }
  await sleep(100);
}
if (existsSync(`${DIR}/fault`)) fail(`the fault still lasts ${FAULT_MAX_MS} ms after the last send was answered`);
waitStart = now();
while (now() - waitStart < STRAGGLER_MS) {
  if (allIn()) break;
  await sleep(100);
}
const waited = now() - waitStart;
await sleep(2000); // anything after the last expected one (a duplicate) still counts
stopping = true;
clearInterval(progressTimer);
clearInterval(delivTimer);
progress();
for (const cl of clients) cl.ws.close();

// ---------------------------------------------------------------------------------------------
// Checks.
for (const cv of convs) {
  for (let s = 1; s <= cv.acked.size; s++) {
    if (!cv.acked.has(s)) { fail(`conversation ${cv.c}: acknowledged seqs are not 1..${cv.acked.size} (no ${s})`); break; }
  }
}
let missing = 0, dups = 0, orderBad = 0, unexpected = 0, wrongId = 0, liveGaps = 0, reconnects = 0, notRecovered = 0;
const perSocket = [];
for (const cl of clients) {
  let miss = 0;
  for (const cv of cl.convs) {
    for (const [seq, id] of cv.acked) {
      const key = `${cv.id} ${seq}`;
      if (!cl.counts.has(key)) {
        miss++;
        if (missing + miss <= 5) fail(`user ${cl.ui}: seq ${seq} of conversation ${cv.c} never received`);
      } else if (cl.ids.get(key) !== id) {
        wrongId++;
        if (wrongId <= 3) fail(`user ${cl.ui}: seq ${seq} of conversation ${cv.c} came with id ${cl.ids.get(key)}, acknowledged for ${id}`);
      }
    }
  }
  for (const key of cl.counts.keys()) {
    const [conv, seq] = key.split(' ');
    if (!convById.get(conv) || !convById.get(conv).acked.has(Number(seq))) unexpected++;
  }
  missing += miss;
  dups += cl.dups;
  orderBad += cl.order;
  liveGaps += cl.liveGaps;
  reconnects += cl.connects - 1;
  notRecovered += cl.notRecovered;
  perSocket.push({ ui: cl.ui, got: cl.received, want: expectedOf(cl), miss, dups: cl.dups, closes: cl.closes, errors: cl.errors });
}
if (missing > 0) fail(`${missing} deliveries missing after waiting ${(waited / 1000).toFixed(1)} s for stragglers`);
if (dups > 0) fail(`${dups} duplicate deliveries`);
if (orderBad > 0) fail(`${orderBad} deliveries out of order`);
if (wrongId > 0) fail(`${wrongId} deliveries with another message id than the acknowledged one`);
if (unexpected > 0) fail(`${unexpected} deliveries of seqs never acknowledged`);
const subErrors = perSocket.reduce((a, s) => a + s.errors.length, 0);
if (subErrors > 0) fail(`${subErrors} error frames, first: ${perSocket.find((s) => s.errors.length).errors[0]}`);

// ---------------------------------------------------------------------------------------------
// Figures.
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
const delivered = perSocket.reduce((a, s) => a + s.got, 0);
const statuses = [...statusCounts].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
console.log('--- figures');
console.log(`sent: ${N_MSG} messages (${started} started), ${memberships} memberships, ${clients.length} sockets; answers: ${statuses}`);
console.log(`acknowledged: ${acked} (${acked - acked200} x 202, ${acked200} x 200 on a retry); retried: ${retries} retries of ${retriedMsgs} messages; no answer within ${REQ_TIMEOUT} ms: ${hangs}; given up: ${gaveUp}; slowest answer: ${maxHttpMs} ms`);
console.log(`delivered: ${delivered} of ${expectedTotal} expected; duplicates: ${dups}; missing: ${missing}; out of order: ${orderBad}; wrong id: ${wrongId}; unacknowledged seqs: ${unexpected}; seq jumps seen live: ${liveGaps}`);
const byWant = new Map();
for (const s of perSocket) {
  const k = s.got === s.want ? `${s.want}` : `${s.got}/${s.want}`;
  byWant.set(k, (byWant.get(k) || 0) + 1);
}
console.log(`delivered per socket (received[/expected] x sockets): ${[...byWant].sort((a, b) => parseInt(a[0]) - parseInt(b[0])).map(([k, v]) => `${k} x ${v}`).join(', ')}`);
for (const s of perSocket.filter((s) => s.got !== s.want || s.dups)) console.log(`  socket of user ${s.ui}: ${s.got} of ${s.want}, ${s.miss} missing, ${s.dups} duplicates, closes: ${s.closes.join(' ') || 'none'}`);
console.log(`sockets: ${reconnects} reconnections (closes: ${perSocket.flatMap((s) => s.closes).join(', ') || 'none'}); recovered:false: ${notRecovered}`);
console.log(`send->receive latency: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${latencies.length ? latencies[latencies.length - 1] : NaN} ms (${latencies.length} deliveries); stragglers waited for: ${(waited / 1000).toFixed(1)} s after the sends were answered${faultLogged ? ' and the fault ended' : ''}`);
// The run's timeline: per 2 s, acknowledged sends, deliveries and retryable answers, and the
// fault's moments (SB_FAULTS_DIR/marks) where they happened.
const marks = existsSync(`${DIR}/marks`) ? readFileSync(`${DIR}/marks`, 'utf8').split('\n').filter(Boolean).map((l) => {
  const sp = l.indexOf(' ');
  return { t: (Number(l.slice(0, sp)) - runStart) / 1000, what: l.slice(sp + 1) };
}) : [];
const rows = [];
for (let s = 0; s < timeline.length; s += 2) {
  const a = tl(s), b = tl(s + 1);
  const m = marks.filter((k) => k.t >= s && k.t < s + 2).map((k) => ` <- ${k.what} at +${k.t.toFixed(1)} s`).join('');
  rows.push(`  +${String(s).padStart(3)} s  acked ${String(a[0] + b[0]).padStart(5)}  delivered ${String(a[1] + b[1]).padStart(6)}  retryable ${String(a[2] + b[2]).padStart(4)}${m}`);
}
console.log('timeline (per 2 s):');
console.log(rows.join('\n'));
for (const k of marks.filter((k) => k.t < 0 || k.t >= timeline.length)) console.log(`  ${k.what} at +${k.t.toFixed(1)} s`);
if (failures.length > 30) console.log(`(${failures.length - 30} more failures not shown)`);
console.log(failures.length === 0 ? 'faults: every check held' : `faults: ${failures.length} failures`);
process.exit(failures.length === 0 ? 0 : 1);
