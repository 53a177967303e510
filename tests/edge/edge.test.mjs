// The gateway's edge as a client sees it: tokens from the real auth service, forged tokens made
// with jose (an independent JOSE implementation), revocation, scopes, rate limits, body limits,
// key rotation picked up without a restart, the local revocation set (scanned at start, kept
// through a Redis outage, resynced after). Run by tests/integration/gateway_edge_test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, openSync, closeSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import * as jose from 'jose';

const GW = process.env.SB_GW;
const creds = JSON.parse(readFileSync(process.env.SB_CREDENTIALS, 'utf8'));
const authBin = process.env.SB_AUTH_BIN;
const pgDsn = process.env.SB_PG_DSN;
const ISS = GW;
const AUD = 'switchboard';
const RATE = Number(process.env.SB_TEST_RATE_LIMIT);
const GW_OPS = process.env.SB_GW_OPS;
const REDIS_URL = process.env.SB_REDIS_URL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function token(name, extra = {}) {
  const c = creds[name];
  const basic = Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret)}`).toString('base64');
  const res = await fetch(`${GW}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...extra }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).access_token;
}

const me = (tok, headers = {}) =>
  fetch(`${GW}/v1/me`, { headers: tok ? { authorization: `Bearer ${tok}`, ...headers } : headers });

async function expect401(tok, why) {
  const res = await me(tok);
  assert.equal(res.status, 401, `${why}: expected 401, got ${res.status}`);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/, why);
  assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
}

// eventually401 retries /v1/me with tok until it is refused as invalid, for up to ms.
async function eventually401(tok, why, ms, base = GW) {
  const until = Date.now() + ms;
  let status;
  for (;;) {
    const res = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${tok}` } });
    status = res.status;
    if (status === 401) {
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/, why);
      return;
    }
    if (Date.now() > until) break;
    await sleep(20);
  }
  assert.fail(`${why}: expected 401 within ${ms} ms, still ${status}`);
}

// metric reads one sample ("name" or 'name{label="v"}') from a Prometheus text endpoint; 0 when
// the series does not exist yet.
async function metric(opsBase, series) {
  const text = await (await fetch(`${opsBase}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const redisCli = (...args) => execFileSync('redis-cli', ['-u', REDIS_URL, ...args]).toString().trim();

async function revoke(tok, who = 'alice') {
  const c = creds[who];
  return fetch(`${GW}/auth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tok, token_type_hint: 'access_token', client_id: c.client_id, client_secret: c.client_secret }),
  });
}

// The active signing key, read from auth's table as an attacker with database access could:
// used only to mint tokens whose CLAIMS are wrong, so the claim checks are what is tested.
function activeKey() {
  const row = execFileSync('psql', [pgDsn, '-tAc',
    "SELECT kid || ' ' || alg || ' ' || replace(private_key, E'\\n', '|') FROM auth.signing_keys WHERE retired_at IS NULL"]).toString().trim();
  const [kid, alg, ...parts] = row.split(' ');
  const rest = parts.join(' ');
  assert.ok(rest.startsWith('pem:'), 'the test expects unencrypted keys (no SB_AUTH_KEY_ENCRYPTION_KEY)');
  return { kid, alg, pem: rest.slice(4).replaceAll('|', '\n') };
}

async function signWith(keyInfo, claims, header = {}) {
  const key = await jose.importPKCS8(keyInfo.pem, keyInfo.alg);
  const now = Math.floor(Date.now() / 1000);
  // every claim given explicitly, overrides last, so a test can make exactly one claim wrong
  const payload = {
    iss: ISS, aud: AUD, sub: 'u', iat: now, exp: now + 300, user_id: 'u', tenant_id: 't',
    scope: 'messages:read', client_id: 'c', jti: crypto.randomUUID(), ...claims,
  };
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg: keyInfo.alg, kid: keyInfo.kid, typ: 'at+jwt', ...header })
    .sign(key);
}

test('a token from auth opens /v1/me with the caller\'s principal', async () => {
  const tok = await token('alice');
  const res = await me(tok);
  assert.equal(res.status, 200);
  const body = await res.json();
  const claims = jose.decodeJwt(tok);
  assert.equal(body.user_id, claims.user_id);
  assert.equal(body.tenant_id, claims.tenant_id);
  assert.deepEqual(body.scopes.sort(), claims.scope.split(' ').sort());
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('server'), null, 'no Server header');
});

test('no token: 401 with a bare Bearer challenge', async () => {
  const res = await me(null);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
});

test('forged tokens are refused with 401 invalid_token', async () => {
  const good = await token('alice');
  const [h, p, s] = good.split('.');
  const header = jose.decodeProtectedHeader(good);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

  // alg none, with and without the trailing dot
  const noneHeader = b64({ alg: 'none', typ: 'at+jwt', kid: header.kid });
  await expect401(`${noneHeader}.${p}.`, 'alg none');
  await expect401(`${noneHeader}.${p}`, 'alg none without signature');

  // HS256 signed with the public key's bytes (key confusion)
  const jwks = await (await fetch(`${GW}/.well-known/jwks.json`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  const pub = await jose.importJWK(jwk, jwk.alg);
  const spki = await jose.exportSPKI(pub);
  const hs = await new jose.SignJWT(jose.decodeJwt(good))
    .setProtectedHeader({ alg: 'HS256', kid: header.kid, typ: 'at+jwt' })
    .sign(new TextEncoder().encode(spki));
  await expect401(hs, 'HS256 with the public key');

  // a foreign key that claims our kid
  const foreign = await jose.generateKeyPair(header.alg);
  const forged = await new jose.SignJWT(jose.decodeJwt(good))
    .setProtectedHeader({ alg: header.alg, kid: header.kid, typ: 'at+jwt' })
    .sign(foreign.privateKey);
  await expect401(forged, 'foreign key with our kid');

  // an unknown kid
  const unknown = await new jose.SignJWT(jose.decodeJwt(good))
    .setProtectedHeader({ alg: header.alg, kid: 'no-such-kid', typ: 'at+jwt' })
    .sign(foreign.privateKey);
  await expect401(unknown, 'unknown kid');

  // tampered payload: more scopes, same signature
  const claims = jose.decodeJwt(good);
  await expect401(`${h}.${b64({ ...claims, scope: claims.scope + ' admin' })}.${s}`, 'tampered payload');
});

test('claims are checked: expired, wrong iss, wrong aud, wrong typ, not yet valid', async () => {
  const k = activeKey();
  const now = Math.floor(Date.now() / 1000);
  const ok = await signWith(k, {});
  assert.equal((await me(ok)).status, 200, 'control: a well-formed token signed with the key passes');
  await expect401(await signWith(k, { exp: now - 120 }), 'expired');
  await expect401(await signWith(k, { iss: 'https://evil.example' }), 'wrong iss');
  await expect401(await signWith(k, { aud: 'someone-else' }), 'wrong aud');
  await expect401(await signWith(k, {}, { typ: 'JWT' }), 'wrong typ');
  await expect401(await signWith(k, { nbf: now + 600 }), 'not yet valid');
});

test('a revoked access token is refused', async () => {
  const tok = await token('alice');
  assert.equal((await me(tok)).status, 200);
  const c = creds.alice;
  const res = await fetch(`${GW}/auth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tok, token_type_hint: 'access_token', client_id: c.client_id, client_secret: c.client_secret }),
  });
  assert.equal(res.status, 200);
  // the gateway learns of it asynchronously (Redis pub/sub): within 2 s at most
  await eventually401(tok, 'revoked jti', 2000);
});

test('a missing scope is 403', async () => {
  const tok = await token('alice', { scope: 'files:read' });
  assert.equal(jose.decodeJwt(tok).scope, 'files:read');
  const res = await fetch(`${GW}/v1/conversations`, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('www-authenticate') ?? '', /insufficient_scope/);
});

test('wrong client secret is 401 invalid_client', async () => {
  const res = await fetch(`${GW}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.bob.client_id, client_secret: 'wrong' }),
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, 'invalid_client');
  assert.equal(res.headers.get('cache-control'), 'no-store');
});

test('oversized body is 413; unknown route 404; wrong method 405; bad JSON 400', async () => {
  const tok = await token('bob');
  const auth = { authorization: `Bearer ${tok}`, 'content-type': 'application/json' };
  let res = await fetch(`${GW}/v1/messages`, { method: 'POST', headers: auth, body: JSON.stringify({ content: 'x'.repeat(70000) }) });
  assert.equal(res.status, 413);
  res = await fetch(`${GW}/v1/nothing-here`, { headers: auth });
  assert.equal(res.status, 404);
  assert.equal((await res.json()).status, 404);
  res = await fetch(`${GW}/v1/me`, { method: 'PUT', headers: auth });
  assert.equal(res.status, 405);
  assert.match(res.headers.get('allow'), /GET/);
  res = await fetch(`${GW}/v1/conversations`, { method: 'POST', headers: auth, body: '{"kind": "group",' });
  assert.equal(res.status, 400);
  // An object nested deeper than the limit (a top-level array would be refused for its type).
  const deep = '{"title":' + '{"a":'.repeat(40) + '1' + '}'.repeat(40) + '}';
  res = await fetch(`${GW}/v1/conversations`, { method: 'POST', headers: auth, body: deep });
  assert.equal(res.status, 400, 'nesting deeper than the limit');
  const why = (await res.json()).errors?.map((e) => e.reason).join(';') ?? '';
  assert.match(why, /nesting deeper than/, `refused for its depth, not another reason: ${why}`);
});

test('rate limit: 429 exactly past the limit, with Retry-After and RateLimit headers', async () => {
  // admin has made no state-changing request yet in this run: its window starts empty
  const tok = await token('admin');
  const headers = { authorization: `Bearer ${tok}`, 'content-type': 'application/json' };
  const statuses = [];
  let last;
  for (let i = 0; i < RATE + 1; i++) {
    last = await fetch(`${GW}/v1/conversations`, { method: 'POST', headers, body: JSON.stringify({ kind: 'group', title: `t${i}`, member_ids: [] }) });
    statuses.push(last.status);
  }
  assert.ok(statuses.slice(0, RATE).every((s) => s >= 200 && s < 300), `the first ${RATE} succeed (2xx): ${statuses}`);
  assert.equal(statuses[RATE], 429, `request ${RATE + 1} is limited: ${statuses}`);
  const retry = Number(last.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  assert.equal(last.headers.get('ratelimit-limit'), String(RATE));
  assert.equal(last.headers.get('ratelimit-remaining'), '0');
  // another user is not affected
  const other = await token('alice');
  const res = await fetch(`${GW}/v1/conversations`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${other}` }, body: JSON.stringify({ kind: 'group', title: 'x', member_ids: [] }) });
  assert.notEqual(res.status, 429);
});

test('key rotation: old tokens stay valid, new ones carry the new kid, no gateway restart', async () => {
  const before = await token('alice');
  const kidBefore = jose.decodeProtectedHeader(before).kid;
  execFileSync(authBin, ['keys', 'rotate'], { env: { ...process.env, DATABASE_URL: pgDsn }, stdio: 'pipe' });
  // auth reloads its active key; wait until a new token carries another kid
  let after;
  for (let i = 0; i < 50; i++) {
    after = await token('alice');
    if (jose.decodeProtectedHeader(after).kid !== kidBefore) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.notEqual(jose.decodeProtectedHeader(after).kid, kidBefore, 'auth signs with the new key');
  assert.equal((await me(after)).status, 200, 'the gateway accepts the new kid (JWKS refetched)');
  assert.equal((await me(before)).status, 200, 'tokens of the old key stay valid until they expire');
});

test('a revocation already in Redis when a gateway starts is honoured (scanned at start)', async () => {
  const revoked = await token('alice');
  const other = await token('bob');
  const { jti, exp } = jose.decodeJwt(revoked);
  // written directly, as another edge or an operator could: no message is published
  const ttl = exp - Math.floor(Date.now() / 1000);
  assert.equal(redisCli('SET', `sb:revoked:jti:${jti}`, '1', 'EX', String(ttl)), 'OK');

  const env = Object.fromEntries(readFileSync(process.env.SB_GW2_ENV, 'utf8').trim().split('\n')
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const log = openSync(process.env.SB_GW2_LOG, 'a');
  const gw2 = spawn(process.env.SB_GW_BIN, [], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise((r) => gw2.on('exit', r));
  try {
    const base = `http://127.0.0.1:${env.SB_HTTP_PORT}`;
    const ops = `http://127.0.0.1:${env.SB_OPS_PORT}`;
    const status = (url) => fetch(url).then((r) => r.status, () => 0);
    await until(async () => (await status(`${ops}/ready`)) === 200 && (await status(`${base}/v1/me`)) === 401,
      20000, 'gateway 2 ready and serving');
    // no retry: the set is loaded before the gateway's edge listens
    const res = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${revoked}` } });
    assert.equal(res.status, 401, 'the token revoked before the start is refused');
    const ok = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${other}` } });
    assert.equal(ok.status, 200, 'another token still passes');
    assert.equal(await metric(ops, 'gateway_revocation_synced'), 1);
    assert.ok(await metric(ops, 'gateway_revocations_known') >= 1, 'the set counts the revocation');
  } finally {
    gw2.kill('SIGTERM');
    await exited;
  }
  assert.equal(gw2.exitCode, 0, 'gateway 2 stops cleanly');
});

// Last: stops and restarts the test's Redis.
test('Redis stopped: /v1/me still 200 (fail-open, counted), known revocations kept, resync after restart', async () => {
  const tok = await token('alice');
  const gone = await token('alice');
  assert.equal((await me(tok)).status, 200);
  assert.equal((await revoke(gone)).status, 200);
  await eventually401(gone, 'revoked before the outage', 2000);
  const open = 'gateway_redis_unavailable_total{mode="open"}';
  const before = await metric(GW_OPS, open);
  assert.equal(await metric(GW_OPS, 'gateway_revocation_synced'), 1);

  const port = new URL(REDIS_URL).port;
  const dir = `${process.env.SB_TEST_TMP}/redis`;
  try { redisCli('SHUTDOWN', 'NOSAVE'); } catch { /* the connection closes as Redis exits */ }
  try {
    await until(async () => (await metric(GW_OPS, 'gateway_revocation_synced')) === 0, 3000, 'the gateway to notice the outage');
    const res = await me(tok);
    assert.equal(res.status, 200, 'fail-open: the request is let through');
    assert.ok(await metric(GW_OPS, open) > before, `${open} counts it`);
    await expect401(gone, 'a revocation known before the outage stays in force');
  } finally {
    execFileSync('redis-server', ['--port', port, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'yes', '--pidfile', `${dir}/redis.pid`, '--logfile', `${dir}/redis.log`]);
  }
  await until(async () => (await metric(GW_OPS, 'gateway_revocation_synced')) === 1, 10000, 'the gateway to resync');
  // Redis restarted empty: the set keeps what it knew, and new revocations arrive again
  await expect401(gone, 'still refused after the resync');
  const later = await token('alice');
  assert.equal((await me(later)).status, 200);
  let st;
  await until(async () => (st = (await revoke(later)).status) === 200, 10000, `auth to revoke again (last ${st})`);
  await eventually401(later, 'revoked after the restart (resubscribed)', 2000);
  assert.equal((await me(tok)).status, 200, 'a token never revoked still passes');
});
