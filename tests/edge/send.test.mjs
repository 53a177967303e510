// POST /v1/messages through the gateway, whose sends travel to the messages service in batches
// (SB_RPC_BATCH_IN_FLIGHT): a burst of concurrent sends, good and bad mixed, must each get the
// answer of its own send. Run by tests/integration/gateway_send_test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const GW = process.env.SB_GW;
const GW_OPS = process.env.SB_GW_OPS;
const MSG_OPS = process.env.SB_MSG_OPS;
const creds = JSON.parse(readFileSync(process.env.SB_CREDENTIALS, 'utf8'));

async function token(name) {
  const c = creds[name];
  const basic = Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret)}`).toString('base64');
  const res = await fetch(`${GW}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assert.equal(res.status, 200);
  return (await res.json()).access_token;
}

function post(tok, path, body, headers = {}) {
  return fetch(`${GW}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

// metric returns the value of one series (exact name and labels) on an ops endpoint, 0 if absent.
async function metric(base, series) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

test('a burst of concurrent sends: each answered for itself, seq 1..N, replays and errors in the same batches', async () => {
  const alice = await token('alice');
  const bob = await token('bob');
  const conv = await post(alice, '/v1/conversations', { kind: 'group', title: 'batch', member_ids: [creds.bob.user_id] });
  assert.equal(conv.status, 201);
  const convId = (await conv.json()).id;

  const batches0 = await metric(MSG_OPS, 'rpc_server_batch_calls_count');
  const calls0 = await metric(MSG_OPS, 'rpc_server_batch_calls_sum');

  // 100 good sends from two users at once, plus bad ones in the same burst.
  const good = Array.from({ length: 100 }, (_, i) => ({ id: randomUUID(), content: `m${i}`, tok: i % 2 ? bob : alice }));
  const bad = [
    { body: { id: 'not-a-uuid', conversation_id: convId, content: 'x' }, field: 'id' },
    { body: { id: randomUUID(), conversation_id: convId, content: 'x', content_type: 'image/png' }, field: 'content_type' },
    { body: { id: randomUUID(), conversation_id: randomUUID(), content: 'x' }, status: 404 },
  ];
  const res = await Promise.all([
    ...good.map((g) => post(g.tok, '/v1/messages', { id: g.id, conversation_id: convId, content: g.content })),
    ...bad.map((b) => post(alice, '/v1/messages', b.body)),
  ]);
  const seqs = [];
  for (let i = 0; i < good.length; i++) {
    assert.equal(res[i].status, 202, `send ${i}`);
    const body = await res[i].json();
    assert.equal(body.id, good[i].id); // its own answer, not a neighbour's
    good[i].seq = Number(body.seq);
    seqs.push(good[i].seq);
  }
  assert.deepEqual(seqs.sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
  for (let j = 0; j < bad.length; j++) {
    const r = res[good.length + j];
    assert.equal(r.status, bad[j].status ?? 400);
    assert.match(r.headers.get('content-type'), /application\/problem\+json/);
    const p = await r.json();
    if (bad[j].field) assert.ok(p.errors.some((e) => e.field === bad[j].field), JSON.stringify(p));
  }

  // History in seq order, each message where its send said.
  const hist = await (await fetch(`${GW}/v1/conversations/${convId}/messages?limit=100`, { headers: { authorization: `Bearer ${bob}` } })).json();
  assert.equal(hist.items.length, 100);
  hist.items.forEach((m, i) => assert.equal(Number(m.seq), i + 1));
  for (const g of good) assert.equal(hist.items[g.seq - 1].id, g.id);

  // Replays of 20 of them, concurrently: 200 with the original seq, nothing written.
  const again = await Promise.all(good.slice(0, 20).map((g) => post(g.tok, '/v1/messages', { id: g.id, conversation_id: convId, content: g.content })));
  for (let i = 0; i < 20; i++) {
    assert.equal(again[i].status, 200);
    assert.equal(Number((await again[i].json()).seq), good[i].seq);
  }
  const after = await (await fetch(`${GW}/v1/conversations/${convId}`, { headers: { authorization: `Bearer ${alice}` } })).json();
  assert.equal(Number(after.last_seq), 100);

  // The sends did travel in batches: fewer batches than sends reached the messages service.
  const batches = (await metric(MSG_OPS, 'rpc_server_batch_calls_count')) - batches0;
  const calls = (await metric(MSG_OPS, 'rpc_server_batch_calls_sum')) - calls0;
  assert.equal(calls, 123, 'every send (100 + 3 bad + 20 replays) went in a batch');
  assert.ok(batches < calls, `${batches} batches for ${calls} sends`);
  console.log(`${batches} batches carried ${calls} sends`);
  assert.ok((await metric(GW_OPS, 'rpc_client_requests_total{method="messages.Send",code="OK"}')) >= 120);
});
