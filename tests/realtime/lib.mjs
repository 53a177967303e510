// lib.mjs: helpers of the realtime tests: tokens from the gateway, REST calls, a ws client that
// queues frames, and a minimal Redis PUBLISH (RESP over a socket) that plays the notifier.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';

export const gateway = process.env.SB_GATEWAY;
export const ports = (process.env.SB_WS_PORTS || '').split(' ').filter(Boolean).map(Number);
const creds = JSON.parse(readFileSync(process.env.SB_CREDENTIALS, 'utf8'));

// token gets an access token for role from a gateway (by default the main one).
export async function token(role, base = gateway) {
  const c = creds[role];
  const basic = Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64');
  const r = await fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  if (r.status !== 200) throw new Error(`token ${role}: ${r.status} ${await r.text()}`);
  const t = (await r.json()).access_token;
  const sub = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()).sub;
  return { token: t, user: sub };
}

export async function api(tok, method, path, body) {
  const r = await fetch(`${gateway}${path}`, {
    method,
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

// send posts a message and, playing the notifier, publishes its frame to Redis.
export async function send(tok, sender, conv, content) {
  const id = crypto.randomUUID();
  const r = await api(tok, 'POST', '/v1/messages', { id, conversation_id: conv, content });
  r.seq = Number(r.seq); // int64 travels as a JSON string
  const frame = {
    type: 'message.created', conversation_id: conv, seq: r.seq,
    message: { id, sender_id: sender, content, content_type: 'text/plain', metadata: {}, created_at: r.created_at },
  };
  await publish(`conv:${conv}`, `${r.seq} ${Date.now()}\n${JSON.stringify(frame)}`);
  return r.seq;
}

export function publish(channel, payload) {
  const u = new URL(process.env.SB_REDIS_URL);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port || 6379), u.hostname);
    const args = ['PUBLISH', channel, payload];
    s.on('error', reject);
    s.on('data', (d) => { s.end(); resolve(d.toString()); });
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  });
}

// Client: a ws connection whose frames queue up until awaited (frames); all keeps every frame
// received, in order, also those next() took out.
export class Client {
  constructor(port, query = '', opts = {}) {
    this.frames = [];
    this.all = [];
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, opts);
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      this.frames.push(f);
      this.all.push(f);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.ws.on('error', () => {});
  }
  static async open(port, tok, extra = '', opts = {}) {
    const c = new Client(port, `?token=${tok}${extra}`, opts);
    await new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await c.next((f) => f.type === 'ready');
    return c;
  }
  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  // next returns (and removes) the first frame matching pred, waiting up to ms.
  async next(pred, ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching frame; have ${JSON.stringify(this.frames).slice(0, 400)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, left); });
    }
  }
  messages(conv) {
    return this.frames.filter((f) => f.type === 'message.created' && f.conversation_id === conv).map((f) => f.seq);
  }
  close() { this.ws.close(); return this.closed; }
}

export function refused(port, query, opts = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, opts);
    ws.on('unexpected-response', (_q, res) => { resolve(res.statusCode); ws.terminate(); });
    ws.on('open', () => { resolve('open'); ws.close(); });
    ws.on('error', () => resolve('error'));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// metric reads one sample (the first series of name) from realtime instance i's /metrics.
export async function metric(i, name) {
  const ops = process.env.SB_RT_OPS.split(' ').map(Number);
  const text = await (await fetch(`http://127.0.0.1:${ops[i]}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

// claims decodes a JWT's payload (no verification: the server does that).
export const claims = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());

// within rejects with a clear message when p has not settled after ms.
export function within(p, ms, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
