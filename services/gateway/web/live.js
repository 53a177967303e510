// live.js: the console's WebSocket to realtime (docs/realtime.md). Connects with ?resume=1,
// authenticates with its first frame (never with ?token=: URLs end up in access logs) and
// subscribes every known conversation from its cursor (since_seq), so a reconnect replays the
// gap; reconnects with capped, jittered exponential backoff; pings to notice a dead link; tells
// the page its state: connecting, connected, reconnecting (with the delay), offline.

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class Live {
  // opts: token() → Promise<string>, refresh() → Promise, cursors() → [[conversation_id,
  // since_seq]], onFrame(frame), onState(state, detail).
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.subscribed = new Set();
    window.addEventListener('online', () => this.kick());
    // The browser knows before the socket does: show it at once (a close handshake with the
    // network gone can take long to report), then drop the socket; its close schedules the retry.
    window.addEventListener('offline', () => {
      if (this.stopped) return;
      this.opts.onState('offline', 'no network');
      if (this.ws) this.ws.close();
    });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.clearPing();
    if (this.ws) this.ws.close(1000, 'signed out');
    this.ws = null;
    this.opts.onState('offline', 'signed out');
  }

  // kick reconnects now (network back, user asked).
  kick() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.ready === true;
  }

  send(frame) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // subscribe asks for one conversation from since_seq (no-op when already subscribed).
  subscribe(conversationId, sinceSeq) {
    if (this.subscribed.has(conversationId)) return;
    if (this.send({ type: 'subscribe', conversation_id: conversationId, since_seq: sinceSeq }))
      this.subscribed.add(conversationId);
  }

  async connect() {
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.opts.onState('offline', 'no network');
      return;
    }
    this.opts.onState(this.attempt === 0 ? 'connecting' : 'reconnecting', 'connecting…');
    let token;
    try {
      token = await this.opts.token();
    } catch (e) {
      this.retry(`sign-in failed: ${e.message}`);
      return;
    }
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws?resume=1`);
    this.ws = ws;
    this.ready = false;
    this.subscribed.clear();
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onclose = (ev) => this.onClose(ws, ev);
    ws.onerror = () => {}; // the close that follows says what happened
  }

  onMessage(ev) {
    let f;
    try {
      f = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (f.type === 'ready') {
      this.ready = true;
      this.attempt = 0;
      this.opts.onState('connected', 'live');
      for (const [id, since] of this.opts.cursors()) this.subscribe(id, since);
      this.schedulePing();
    } else if (f.type === 'pong') {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    this.opts.onFrame(f);
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this.clearPing();
    if (this.stopped) return;
    if (ev.code === 4401) {
      // token expired or refused: a fresh one, then straight back
      this.opts.refresh().then(() => this.connect(), (e) => this.retry(`sign-in: ${e.message}`));
      return;
    }
    if (ev.code === 4008 || ev.code === 1011) {
      // slow consumer / messages briefly unavailable: resume from our cursors at once
      this.attempt = 0;
      this.retry('resuming', 250);
      return;
    }
    this.retry(ev.code === 4429 ? 'too many connections' : 'connection lost');
  }

  retry(why, fixedMs) {
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const ms = fixedMs ?? Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt++;
    this.opts.onState(navigator.onLine ? 'reconnecting' : 'offline',
      `${why}; retrying in ${Math.ceil(ms / 1000)} s`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), ms);
  }

  schedulePing() {
    this.clearPing();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping' }) || this.pongTimer) return;
      this.pongTimer = setTimeout(() => this.ws && this.ws.close(4000, 'no pong'), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  clearPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = this.pongTimer = null;
  }
}
