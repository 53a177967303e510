// realtime_idle_client.mjs: one load-generator process of bench/realtime_idle_bench.sh.
// Opens COUNT WebSocket connections to sb-realtime at a steady RATE per second (?token=..., one
// distinct user's token per connection: lines FIRST.. of the file SB_TOKENS),
// waits for each one's `ready` frame, then holds them all idle for HOLD_S seconds (answering
// the server's pings, which `ws` does by itself) and closes them. Prints JSON lines on stdout:
//   {"phase":"open", ...}   once every connection is ready or has failed
//   {"phase":"done", ...}   after the hold: connections still open, this process's CPU time
// Environment: SB_WS_URL (ws://host:port/ws), SB_TOKENS (file, a token per line), SB_FIRST
// (0-based line of this process's first token), SB_COUNT, SB_RATE, SB_HOLD_S,
// SB_WS_MODULE (path of the ws package). Exit status 0 when every connection got `ready` and
// stayed open through the hold, 1 otherwise, 2 on bad arguments.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`realtime_idle_client: ${name} is not set`);
    process.exit(2);
  }
  return v;
}
function count(name) {
  const n = Number(need(name));
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`realtime_idle_client: ${name} must be a positive integer, got "${process.env[name]}"`);
    process.exit(2);
  }
  return n;
}

const WebSocket = createRequire(import.meta.url)(need('SB_WS_MODULE'));
const base = need('SB_WS_URL');
const total = count('SB_COUNT');
const first = Number(process.env.SB_FIRST || 0);
const tokens = readFileSync(need('SB_TOKENS'), 'utf8').split('\n').filter((l) => l.length > 0);
if (!Number.isInteger(first) || first < 0 || first + total > tokens.length) {
  console.error(`realtime_idle_client: tokens ${first}..${first + total} not in SB_TOKENS (${tokens.length} lines)`);
  process.exit(2);
}
let nextToken = 0;
const rate = count('SB_RATE');
const holdMs = count('SB_HOLD_S') * 1000;
const readyTimeoutMs = 15000;

const cpu0 = process.cpuUsage();
const t0 = Date.now();
const socks = [];
const failures = {}; // reason -> count
let ready = 0;
let settled = 0;
let closedAfterReady = 0;
const holdCloses = {}; // close code -> count, for connections closed after `ready`
let openDone;
const allSettled = new Promise((r) => { openDone = r; });

function fail(reason) {
  failures[reason] = (failures[reason] || 0) + 1;
}

function settle() {
  settled++;
  if (settled === total) openDone();
}

function openOne() {
  const url = `${base}?token=${encodeURIComponent(tokens[first + nextToken++])}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: readyTimeoutMs });
  let state = 'connecting'; // -> ready | failed
  const timer = setTimeout(() => {
    if (state !== 'connecting') return;
    state = 'failed';
    fail('no ready frame within 15 s');
    settle();
    ws.terminate();
  }, readyTimeoutMs);
  ws.on('message', (d) => {
    if (state !== 'connecting') return;
    let type;
    try {
      type = JSON.parse(d.toString()).type;
    } catch {
      type = 'unparsable';
    }
    if (type !== 'ready') return;
    state = 'ready';
    clearTimeout(timer);
    ready++;
    settle();
  });
  ws.on('unexpected-response', (_req, res) => {
    if (state !== 'connecting') return;
    state = 'failed';
    clearTimeout(timer);
    fail(`HTTP ${res.statusCode}`);
    settle();
    ws.terminate();
  });
  ws.on('error', (e) => {
    if (state !== 'connecting') return;
    state = 'failed';
    clearTimeout(timer);
    fail(e.code || e.message);
    settle();
  });
  ws.on('close', (code) => {
    if (state === 'connecting') {
      state = 'failed';
      clearTimeout(timer);
      fail(`closed ${code} before ready`);
      settle();
    } else if (state === 'ready') {
      state = 'closed';
      closedAfterReady++;
      holdCloses[code] = (holdCloses[code] || 0) + 1;
    }
  });
  socks.push(ws);
}

// Steady pace: every 10 ms, open as many as the elapsed time allows at `rate` per second.
let opened = 0;
await new Promise((resolve) => {
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
    while (opened < due) {
      openOne();
      opened++;
    }
    if (opened === total) {
      clearInterval(tick);
      resolve();
    }
  }, 10);
});
await allSettled;
const openS = (Date.now() - t0) / 1000;
const cpuOpen = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  phase: 'open', pid: process.pid, requested: total, ready, failures, open_s: openS,
  cpu_s: (cpuOpen.user + cpuOpen.system) / 1e6,
}));

await new Promise((r) => setTimeout(r, holdMs));
const stillOpen = socks.filter((s) => s.readyState === WebSocket.OPEN).length;
const cpu = process.cpuUsage(cpu0);
const wallS = (Date.now() - t0) / 1000;
console.log(JSON.stringify({
  phase: 'done', pid: process.pid, ready, still_open: stillOpen, closed_after_ready: closedAfterReady, close_codes: holdCloses,
  cpu_s: (cpu.user + cpu.system) / 1e6, wall_s: wallS, rss_mb: process.memoryUsage().rss / 1048576,
}));
for (const s of socks) s.terminate();
process.exit(ready === total && stillOpen === total ? 0 : 1);
