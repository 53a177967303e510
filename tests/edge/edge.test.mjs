// The gateway's edge as a client sees it: tokens from the real auth service, forged tokens made
// with jose (an independent JOSE implementation), revocation, scopes, rate limits, body limits,
// key rotation picked up without a restart. Run by tests/integration/gateway_edge_test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as jose from 'jose';

const GW = process.env.SB_GW;
const creds = JSON.parse(readFileSync(process.env.SB_CREDENTIALS, 'utf8'));
const authBin = process.env.SB_AUTH_BIN;
const pgDsn = process.env.SB_PG_DSN;
const ISS = GW;
const AUD = 'switchboard';
const RATE = Number(process.env.SB_TEST_RATE_LIMIT);

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
  await expect401(tok, 'revoked jti');
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
  res = await fetch(`${GW}/v1/conversations`, { method: 'POST', headers: auth, body: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' });
  assert.equal(res.status, 400, 'nesting deeper than the limit');
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
  assert.deepEqual(statuses.slice(0, RATE).filter((s) => s === 429), [], `the first ${RATE} pass: ${statuses}`);
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
