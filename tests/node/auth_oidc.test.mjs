// auth_oidc.test.mjs: the auth service through the gateway, driven by independent OAuth clients:
// openid-client 6 (discovery from /.well-known/oauth-authorization-server, client credentials
// with client_secret_basic and client_secret_post, refresh, introspection, revocation, token
// exchange) and jose 6 (jwtVerify against the gateway's /.well-known/jwks.json with strict
// options). Run by tests/integration/auth_node_test.sh, which starts sb-auth and sb-gateway and
// seeds the dev credentials:
//   SB_ISSUER        the gateway's base URL, also the configured issuer
//   SB_CREDENTIALS   the file written by `sb-auth seed-dev`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';

const issuer = process.env.SB_ISSUER;
const creds = JSON.parse(readFileSync(process.env.SB_CREDENTIALS, 'utf8'));
const JWKS = jose.createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));

async function configFor(role, auth = client.ClientSecretBasic, secret = creds[role].client_secret) {
  return client.discovery(new URL(issuer), creds[role].client_id, undefined, auth(secret), {
    algorithm: 'oauth2', // RFC 8414 metadata, not OpenID Connect discovery
    execute: [client.allowInsecureRequests], // plain http on loopback in tests
  });
}

async function verify(accessToken) {
  return jose.jwtVerify(accessToken, JWKS, {
    issuer,
    audience: 'switchboard',
    algorithms: ['ES256'],
    typ: 'at+jwt',
    requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'client_id', 'scope', 'tenant_id'],
  });
}

test('discovery gives the RFC 8414 metadata with the exact issuer', async () => {
  const config = await configFor('alice');
  const m = config.serverMetadata();
  assert.equal(m.issuer, issuer);
  assert.equal(m.token_endpoint, `${issuer}/auth/token`);
  assert.equal(m.revocation_endpoint, `${issuer}/auth/revoke`);
  assert.equal(m.introspection_endpoint, `${issuer}/auth/introspect`);
  assert.equal(m.jwks_uri, `${issuer}/.well-known/jwks.json`);
  assert.ok(m.grant_types_supported.includes('client_credentials'));
  assert.ok(m.grant_types_supported.includes('refresh_token'));
  assert.deepEqual(m.token_endpoint_auth_methods_supported.sort(),
    ['client_secret_basic', 'client_secret_post']);
});

test('client credentials (client_secret_basic) gives a JWT that jose verifies', async () => {
  const config = await configFor('alice');
  const tokens = await client.clientCredentialsGrant(config);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.expires_in, 900);
  assert.ok(tokens.refresh_token.startsWith('sbr_'));
  assert.equal(tokens.scope, 'messages:read messages:write files:read files:write');
  const { payload, protectedHeader } = await verify(tokens.access_token);
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.client_id, creds.alice.client_id);
  assert.equal(payload.sub, creds.alice.user_id);
  assert.equal(payload.user_id, creds.alice.user_id);
  assert.equal(payload.tenant_id, creds.alice.tenant_id);
  assert.equal(payload.exp - payload.iat, 900);
});

test('client credentials (client_secret_post) with a narrower scope', async () => {
  const config = await configFor('bob', client.ClientSecretPost);
  const tokens = await client.clientCredentialsGrant(config, { scope: 'messages:read' });
  assert.equal(tokens.scope, 'messages:read');
  const { payload } = await verify(tokens.access_token);
  assert.equal(payload.sub, creds.bob.user_id);
  assert.equal(payload.scope, 'messages:read');
});

test('a wrong secret is a 401 invalid_client, a foreign scope 400 invalid_scope', async () => {
  const bad = await configFor('alice', client.ClientSecretBasic, 'wrong-secret');
  let err;
  try {
    await client.clientCredentialsGrant(bad);
  } catch (e) {
    err = e;
  }
  // the gateway adds WWW-Authenticate: Basic to the 401, so openid-client reports the
  // challenge; the RFC 6749 error document is the body
  assert.ok(err, 'a wrong secret must be refused');
  assert.equal(err.status, 401);
  const body = err.error ? err : await err.response.json();
  assert.equal(body.error, 'invalid_client');
  const config = await configFor('alice');
  await assert.rejects(client.clientCredentialsGrant(config, { scope: 'auth:admin' }), (err) => {
    assert.equal(err.error, 'invalid_scope');
    assert.equal(err.status, 400);
    return true;
  });
});

test('refresh rotates the token; reusing the old one revokes the family', async () => {
  const config = await configFor('alice');
  const first = await client.clientCredentialsGrant(config);
  const second = await client.refreshTokenGrant(config, first.refresh_token);
  assert.notEqual(second.refresh_token, first.refresh_token);
  await verify(second.access_token);
  await assert.rejects(client.refreshTokenGrant(config, first.refresh_token), (err) => {
    assert.equal(err.error, 'invalid_grant');
    assert.equal(err.status, 400);
    return true;
  });
  await assert.rejects(client.refreshTokenGrant(config, second.refresh_token),
    (err) => err.error === 'invalid_grant');
});

test('/auth/refresh accepts a refresh token without grant_type', async () => {
  const config = await configFor('bob');
  const first = await client.clientCredentialsGrant(config);
  const basic = Buffer.from(`${encodeURIComponent(creds.bob.client_id)}:` +
    `${encodeURIComponent(creds.bob.client_secret)}`).toString('base64');
  const res = await fetch(`${issuer}/auth/refresh`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ refresh_token: first.refresh_token }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = await res.json();
  assert.ok(body.refresh_token.startsWith('sbr_'));
  assert.notEqual(body.refresh_token, first.refresh_token);
  await verify(body.access_token);
});

test('introspection: active with its claims, inactive for garbage', async () => {
  const config = await configFor('alice');
  const tokens = await client.clientCredentialsGrant(config);
  const info = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, creds.alice.client_id);
  assert.equal(info.sub, creds.alice.user_id);
  assert.equal(info.tenant_id, creds.alice.tenant_id);
  assert.equal(info.iss, issuer);
  assert.equal(info.token_type, 'Bearer');
  assert.equal(typeof info.exp, 'number');
  const rt = await client.tokenIntrospection(config, tokens.refresh_token);
  assert.equal(rt.active, true);
  assert.equal(rt.token_type, 'refresh_token');
  const none = await client.tokenIntrospection(config, 'not-a-token');
  assert.deepEqual({ ...none }, { active: false });
});

test('revocation of access and refresh tokens', async () => {
  const config = await configFor('alice');
  const tokens = await client.clientCredentialsGrant(config);
  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
  await client.tokenRevocation(config, tokens.refresh_token);
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false);
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token),
    (err) => err.error === 'invalid_grant');
  // unknown tokens are fine (RFC 7009 section 2.2)
  await client.tokenRevocation(config, 'unknown-token');
});

test('token exchange: admin mints a token for alice, not with its own powers', async () => {
  const config = await configFor('admin');
  const tokens = await client.genericGrantRequest(config,
    'urn:ietf:params:oauth:grant-type:token-exchange', {
      subject_token: creds.alice.user_id,
      subject_token_type: 'urn:switchboard:token-type:user-id',
    });
  const { payload } = await verify(tokens.access_token);
  assert.equal(payload.sub, creds.alice.user_id);
  assert.equal(payload.tenant_id, creds.alice.tenant_id);
  assert.ok(!payload.scope.split(' ').includes('tokens:issue'));
  const alice = await configFor('alice');
  await assert.rejects(client.genericGrantRequest(alice,
    'urn:ietf:params:oauth:grant-type:token-exchange', {
      subject_token: creds.bob.user_id,
      subject_token_type: 'urn:switchboard:token-type:user-id',
    }), (err) => err.error === 'unauthorized_client' && err.status === 400);
});
