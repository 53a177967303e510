// api.js: the REST side of the console. Tokens (OAuth2 client_credentials, refreshed before
// they expire) and JSON calls with problem+json errors turned into readable messages. Every URL
// is relative: the page, the API and /ws share one origin (nginx in a local run).

const SESSION_KEY = 'sb.console.session';
const REFRESH_MARGIN_MS = 60_000;

// Requests carry no cookies (the API takes bearer tokens), and so a 401 of /auth/token with
// WWW-Authenticate: Basic (a wrong client secret) is an error to show, not a browser login
// prompt that would leave the request hanging.
const NO_COOKIES = { credentials: 'omit' };

// ApiError carries the HTTP status and the problem's detail.
export class ApiError extends Error {
  constructor(status, message, retryAfterMs) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

async function errorOf(res) {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    detail = body.detail || body.error_description || body.title || body.error || detail;
  } catch {
    // not JSON: keep the status line
  }
  const ra = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, detail, Number.isFinite(ra) && ra > 0 ? ra * 1000 : 0);
}

// devCredentials returns the seed-dev file's roles ({alice: {client_id, user_id, ...}}), or
// null when the gateway does not serve them (SB_DEV_CREDENTIALS_FILE unset).
export async function devCredentials() {
  const res = await fetch('/dev/credentials', { ...NO_COOKIES, cache: 'no-store' });
  if (res.status === 404) return null;
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

// Session: the tokens of one signed-in client. The client secret stays in memory only (it lets
// the session start over when the refresh token is refused); the tokens go to sessionStorage
// so that a reload keeps the user signed in.
export class Session {
  constructor(onChange) {
    this.onChange = onChange;
    this.access = null;
    this.refreshToken = null;
    this.expiresAt = 0;
    this.label = '';
    this.secret = null;
    this.timer = null;
    this.pending = null;
  }

  restore() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (!s || !s.refresh_token) return false;
      this.refreshToken = s.refresh_token;
      this.label = s.label || '';
      this.access = s.access_token || null;
      this.expiresAt = s.expires_at || 0;
      return true;
    } catch {
      return false;
    }
  }

  save() {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({
      access_token: this.access, refresh_token: this.refreshToken,
      expires_at: this.expiresAt, label: this.label,
    }));
  }

  async grant(form) {
    const res = await fetch('/auth/token', {
      ...NO_COOKIES,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    if (!res.ok) throw await errorOf(res);
    const t = await res.json();
    this.access = t.access_token;
    if (t.refresh_token) this.refreshToken = t.refresh_token;
    this.expiresAt = Date.now() + (Number(t.expires_in) || 900) * 1000;
    this.save();
    this.schedule();
    if (this.onChange) this.onChange(this.access);
  }

  // signIn gets a token with the client credentials grant.
  async signIn(clientId, clientSecret, label) {
    this.label = label || clientId;
    this.secret = { client_id: clientId, client_secret: clientSecret };
    await this.grant({ grant_type: 'client_credentials', ...this.secret });
  }

  // refresh rotates the tokens (refresh_token grant; client credentials again if refused).
  // Concurrent callers share one request.
  refresh() {
    if (!this.pending) {
      this.pending = (async () => {
        try {
          if (this.refreshToken) {
            try {
              await this.grant({ grant_type: 'refresh_token', refresh_token: this.refreshToken });
              return;
            } catch (e) {
              if (!this.secret || (e.status && e.status >= 500)) throw e;
            }
          }
          if (!this.secret) throw new ApiError(401, 'session expired: sign in again');
          await this.grant({ grant_type: 'client_credentials', ...this.secret });
        } finally {
          this.pending = null;
        }
      })();
    }
    return this.pending;
  }

  schedule() {
    clearTimeout(this.timer);
    const wait = Math.max(5_000, this.expiresAt - Date.now() - REFRESH_MARGIN_MS);
    this.timer = setTimeout(() => this.refresh().catch((e) => this.onFail && this.onFail(e)), wait);
  }

  signOut() {
    clearTimeout(this.timer);
    this.access = this.refreshToken = this.secret = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  // token returns a valid access token, refreshing it first when it is about to expire.
  async token() {
    if (!this.access || Date.now() > this.expiresAt - 5_000) await this.refresh();
    return this.access;
  }

  // call makes one REST call and returns the parsed JSON. A 401 refreshes the token and tries
  // once more; a 503 with Retry-After is retried a few times (safe: sends carry their id).
  async call(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(path, {
        ...NO_COOKIES,
        method,
        headers: {
          authorization: `Bearer ${await this.token()}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (res.ok) return res.status === 204 ? null : res.json();
      const err = await errorOf(res);
      if (res.status === 401 && attempt === 0) {
        await this.refresh();
        continue;
      }
      if (res.status === 503 && attempt < 3) {
        await new Promise((r) => setTimeout(r, err.retryAfterMs || 1000));
        continue;
      }
      throw err;
    }
  }
}

// uuid: crypto.randomUUID where the page is a secure context, a v4 UUID from getRandomValues
// elsewhere (plain http on a LAN address).
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
