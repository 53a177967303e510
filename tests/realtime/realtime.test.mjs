// realtime.test.mjs: the realtime service against three instances (ports in SB_WS_PORTS),
// with real auth, messages, gateway, outbox and notifier. Most scenarios also publish the
// notifier's frames to Redis themselves (lib.mjs send) so as not to wait for its consumer group;
// the pipeline scenario relies on the real notifier only. Run by
// tests/integration/realtime_e2e_test.sh.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, api, claims, metric, ports, publish, refused, send, sleep, token, within } from './lib.mjs';

let alice, bob, conv;
before(async () => {
  alice = await token('alice');
  bob = await token('bob');
  conv = (await api(alice.token, 'POST', '/v1/conversations', { kind: 'group', title: 'rt', member_ids: [bob.user] })).id;
});

test('users on different instances receive each other\'s messages, in order, once', async () => {
  const a = await Client.open(ports[0], alice.token);
  const b = await Client.open(ports[1], bob.token);
  await a.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  await b.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  await sleep(200); // Redis SUBSCRIBE confirmed
  const s1 = await send(alice.token, alice.user, conv, 'hello bob');
  const s2 = await send(bob.token, bob.user, conv, 'hello alice');
  const got = await b.next((f) => f.type === 'message.created' && f.seq === s1);
  assert.equal(got.message.content, 'hello bob');
  assert.equal(got.message.sender_id, alice.user);
  await a.next((f) => f.type === 'message.created' && f.seq === s2);
  await sleep(100);
  assert.deepEqual(b.messages(conv), [s2]);
  a.send({ type: 'ping', id: 'p1' });
  assert.deepEqual(await a.next((f) => f.type === 'pong'), { type: 'pong', id: 'p1' });
  a.send({ type: 'read', conversation_id: conv, up_to_seq: s2 });
  await sleep(200);
  const c = await api(alice.token, 'GET', `/v1/conversations/${conv}`);
  assert.equal(Number(c.last_read_seq), s2);
  await a.close();
  await b.close();
});

test('recovery after a disconnect replays exactly the missed messages in order', async () => {
  const b = await Client.open(ports[0], bob.token);
  const last = await send(alice.token, alice.user, conv, 'before');
  await b.next((f) => f.type === 'message.created' && f.seq === last);
  await b.close();
  const missed = [];
  for (let i = 0; i < 5; i++) missed.push(await send(alice.token, alice.user, conv, `missed ${i}`));
  const r = await Client.open(ports[2], bob.token, '&resume=1');
  r.send({ type: 'subscribe', conversation_id: conv, since_seq: last });
  // live messages sent during the replay must come after it, once
  const during = send(alice.token, alice.user, conv, 'during');
  const sub = await r.next((f) => f.type === 'subscribed');
  assert.equal(sub.recovered, true);
  const live = await during;
  await r.next((f) => f.type === 'message.created' && f.seq === live);
  // exactly the missed ones, in order, before the live one (which next() took out)
  assert.deepEqual(r.messages(conv), missed);
  await r.close();
});

test('a gap larger than the bound says recovered: false', async () => {
  const r = await Client.open(ports[1], bob.token, '&resume=1');
  for (let i = 0; i < 52; i++) await send(alice.token, alice.user, conv, `fill ${i}`);
  r.send({ type: 'subscribe', conversation_id: conv, since_seq: 0 });
  const sub = await r.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  assert.equal(sub.recovered, false);
  assert.ok(sub.last_seq >= 52, `last_seq tells where to reload from: ${sub.last_seq}`);
  await sleep(200);
  assert.deepEqual(r.messages(conv), [], 'nothing replayed past the bound');
  // and it is live from there on
  const next = await send(alice.token, alice.user, conv, 'after the gap');
  await r.next((f) => f.type === 'message.created' && f.seq === next);
  await r.close();
});

test('an event time at the int64 limit is delivered (a ConversationRead\'s read_at_ms)', async () => {
  const b = await Client.open(ports[1], bob.token);
  await b.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  await sleep(200); // Redis SUBSCRIBE confirmed
  const rejected = await metric(1, 'realtime_pubsub_rejected_total');
  const frame = { type: 'conversation.read', conversation_id: conv, user_id: alice.user, up_to_seq: 424242 };
  await publish(`conv:${conv}`, `0 9223372036854775807\n${JSON.stringify(frame)}`);
  assert.deepEqual(await b.next((f) => f.type === 'conversation.read' && f.up_to_seq === 424242), frame);
  assert.equal(await metric(1, 'realtime_pubsub_rejected_total'), rejected);
  // one past it is refused, and counted
  await publish(`conv:${conv}`, `0 9223372036854775808\n${JSON.stringify({ ...frame, up_to_seq: 424243 })}`);
  await sleep(300);
  assert.equal(await metric(1, 'realtime_pubsub_rejected_total'), rejected + 1);
  assert.equal(b.frames.find((f) => f.up_to_seq === 424243), undefined);
  await b.close();
});

test('invalid or missing token is refused (401, or close 4401 after an auth frame)', async () => {
  assert.equal(await refused(ports[0], '?token=not.a.jwt'), 401);
  assert.equal(await refused(ports[0], '?token='), 401);
  const c = new Client(ports[0]);
  await new Promise((r) => c.ws.once('open', r));
  c.send({ type: 'auth', token: alice.token.slice(0, -4) + 'AAAA' });
  assert.equal((await c.closed).code, 4401);
  const ok = new Client(ports[0]);
  await new Promise((r) => ok.ws.once('open', r));
  ok.send({ type: 'auth', token: bob.token });
  const ready = await ok.next((f) => f.type === 'ready');
  assert.equal(ready.user_id, bob.user);
  ok.send({ type: 'refresh', token: alice.token, id: 'x' }); // another user's token
  assert.equal((await ok.closed).code, 4401);
  const idle = new Client(ports[0]); // never authenticates
  assert.equal((await idle.closed).code, 4401);
});

test('bad origin is refused; allowed origin and no origin accepted', async () => {
  assert.equal(await refused(ports[1], `?token=${alice.token}`, { origin: 'http://evil.example' }), 403);
  assert.equal(await refused(ports[1], `?token=${alice.token}`, { origin: 'http://allowed.example' }), 'open');
  assert.equal(await refused(ports[1], '/x'.replace('/x', '') + `?token=${alice.token}`), 'open');
});

test('non-member subscribe is refused', async () => {
  const other = (await api(alice.token, 'POST', '/v1/conversations', { kind: 'group', title: 'private', member_ids: [] })).id;
  const b = await Client.open(ports[2], bob.token);
  b.send({ type: 'subscribe', conversation_id: other, since_seq: 0 });
  const e = await b.next((f) => f.type === 'error');
  assert.equal(e.code, 'forbidden');
  assert.equal(e.conversation_id, other);
  await send(alice.token, alice.user, other, 'secret');
  await sleep(300);
  assert.deepEqual(b.messages(other), []);
  await b.close();
});

test('per-user connection limit', async () => {
  const cs = [];
  for (let i = 0; i < 3; i++) cs.push(await Client.open(ports[0], alice.token));
  assert.equal(await refused(ports[0], `?token=${alice.token}`), 429);
  await cs[0].close();
  await sleep(100);
  cs[0] = await Client.open(ports[0], alice.token);
  await Promise.all(cs.map((c) => c.close()));
});

test('malformed and oversized frames: error frames, close 1009, never a crash', async () => {
  const c = await Client.open(ports[1], alice.token);
  for (const bad of ['nope', '[]', '{"type":7}', '{"type":"warp"}', '{"type":"subscribe"}',
    '{"type":"read","conversation_id":"x"}', '{"type":"subscribe","conversation_id":"a b"}']) {
    c.send(bad);
    const e = await c.next((f) => f.type === 'error');
    assert.ok(['bad_frame', 'unknown_type', 'invalid_argument'].includes(e.code), JSON.stringify(e));
    assert.ok(e.message.length > 0);
  }
  // an unknown type is quoted up to 64 bytes, cut between characters: a cut inside the "é"
  // (bytes 64 and 65) made an invalid text frame, which ws refuses by closing with 1007
  c.send({ type: `${'a'.repeat(63)}é€` });
  const e = await c.next((f) => f.type === 'error');
  assert.deepEqual(e, { type: 'error', code: 'unknown_type', message: `unknown frame type "${'a'.repeat(63)}"` });
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.equal((await c.next((f) => f.type === 'error')).code, 'bad_frame');
  c.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(5000) }));
  assert.equal((await c.closed).code, 1009);
  const again = await Client.open(ports[1], alice.token); // the instance is still serving
  again.send({ type: 'ping' });
  await again.next((f) => f.type === 'pong');
  await again.close();
});

test('a slow consumer is closed with 4008 and then recovers exactly what it missed', async () => {
  // The queue is filled with frames published straight to Redis in a conversation of its own
  // (they exist nowhere else); the messages that count are real ones in conv, so that the
  // recovery has something to replay and the test can say exactly what.
  const flood = (await api(alice.token, 'POST', '/v1/conversations', { kind: 'group', title: 'flood', member_ids: [bob.user] })).id;
  const c = await Client.open(ports[2], bob.token);
  await c.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  await c.next((f) => f.type === 'subscribed' && f.conversation_id === flood);
  await sleep(200);
  const sent = [await send(alice.token, alice.user, conv, 'read before the pause')];
  await c.next((f) => f.type === 'message.created' && f.seq === sent[0]);
  c.ws._socket.pause(); // stop reading
  // queued behind the paused socket: the client may or may not get them before the close
  for (let i = 0; i < 3; i++) sent.push(await send(alice.token, alice.user, conv, `queued ${i}`));
  const big = 'y'.repeat(3000);
  const closes = () => metric(2, 'websocket_slow_consumer_closes_total');
  const before = await closes();
  // publish until the instance counts the slow-consumer close (its queue bound is 64 KiB)
  let i = 1;
  for (; i <= 5000; i++) {
    const frame = { type: 'message.created', conversation_id: flood, seq: i, message: { id: `f${i}`, sender_id: alice.user, content: big } };
    await publish(`conv:${flood}`, `${i} ${Date.now()}\n${JSON.stringify(frame)}`);
    if (i % 50 === 0 && (await closes()) > before) break;
  }
  assert.ok(i <= 5000, 'the slow consumer was never closed');
  c.ws._socket.resume();
  const { code } = await c.closed;
  // The server closed it as a slow consumer (its metric counted it above) with 4008. When the
  // client's path is congested the close frame may be lost with the unread data (the peer's
  // reset discards it) and the client sees 1006: clients treat both the same, by resuming.
  assert.ok(code === 4008 || code === 1006, `closed with ${code}`);
  // sent while it was away
  for (let k = 0; k < 3; k++) sent.push(await send(alice.token, alice.user, conv, `missed ${k}`));
  // what it processed is a gap-free prefix of what was sent; it resumes after the last of it
  const seen = [sent[0], ...c.messages(conv)];
  assert.deepEqual(seen, sent.slice(0, seen.length), 'the slow consumer saw a prefix, in order, once');
  const since = seen[seen.length - 1];
  const missed = sent.filter((s) => s > since);
  assert.ok(missed.length >= 3, `missed ${JSON.stringify(missed)}`);
  const r = await Client.open(ports[0], bob.token, '&resume=1');
  r.send({ type: 'subscribe', conversation_id: conv, since_seq: since });
  const sub = await r.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  assert.equal(sub.recovered, true);
  assert.equal(sub.last_seq, sent[sent.length - 1]);
  // exactly the missed seqs, in order, each once, all before "subscribed"...
  const replayed = r.all.slice(0, r.all.indexOf(sub))
    .filter((f) => f.type === 'message.created' && f.conversation_id === conv).map((f) => f.seq);
  assert.deepEqual(replayed, missed, 'replayed before subscribed');
  // ...and nothing after it (the notifier publishing the same messages late is deduplicated)
  await sleep(500);
  assert.deepEqual(r.messages(conv), missed, 'replayed once, nothing more');
  await r.close();
});

test('keepalive: a client that answers pings stays; one that does not is closed with 1008', async () => {
  // the instances ping every 1 s and allow 1 s for the pong
  const good = await Client.open(ports[0], alice.token);
  const mute = await Client.open(ports[0], bob.token, '', { autoPong: false });
  let pings = 0;
  mute.ws.on('ping', () => { pings++; });
  let goodClosed = null;
  good.closed.then((x) => { goodClosed = x; });
  const t0 = Date.now();
  const m = await within(mute.closed, 6000, 'the client that never answers pings');
  assert.equal(m.code, 1008);
  assert.ok(pings >= 1, 'it was pinged before being closed');
  assert.ok(Date.now() - t0 >= 1500, 'closed only after the pong timeout');
  await sleep(Math.max(0, 3500 - (Date.now() - t0))); // well past several pong timeouts
  assert.equal(goodClosed, null);
  assert.equal(good.ws.readyState, WebSocket.OPEN);
  good.send({ type: 'ping', id: 'still' });
  await good.next((f) => f.type === 'pong' && f.id === 'still');
  await good.close();
});

test('an expired token closes the connection with 4401 at exp, unless refreshed', async () => {
  const short = process.env.SB_GATEWAY_SHORT; // its auth issues 3-second access tokens
  const t1 = await token('alice', short);
  const c1 = claims(t1.token);
  assert.ok(c1.exp - c1.iat <= 3, `short-lived token expected, got ${c1.exp - c1.iat} s`);
  const a = await Client.open(ports[2], t1.token);
  const b = await Client.open(ports[2], t1.token);
  await sleep(1100);
  const t2 = await token('alice', short);
  const exp2 = claims(t2.token).exp;
  assert.ok(exp2 > c1.exp);
  b.send({ type: 'refresh', token: t2.token, id: 'r1' });
  await b.next((f) => f.type === 'refreshed' && f.id === 'r1');
  const ca = await within(a.closed, 5000, 'the connection with the expired token');
  assert.equal(ca.code, 4401);
  assert.match(ca.reason, /expired/);
  assert.ok(Date.now() >= c1.exp * 1000 - 100, 'not closed before exp');
  assert.equal(b.ws.readyState, WebSocket.OPEN, 'the refreshed connection outlives the first exp');
  const cb = await within(b.closed, 5000, 'the refreshed connection at its new exp');
  assert.equal(cb.code, 4401);
  assert.ok(Date.now() >= exp2 * 1000 - 100);
  // an expired token is refused before the upgrade
  assert.equal(await refused(ports[2], `?token=${t1.token}`), 401);
});

test('the full pipeline: REST send → outbox → Kafka → notifier → Redis → realtime, and delivered', async () => {
  const pconv = (await api(alice.token, 'POST', '/v1/conversations', { kind: 'group', title: 'pipeline', member_ids: [bob.user] })).id;
  const a = await Client.open(ports[1], alice.token);
  const b = await Client.open(ports[2], bob.token);
  await a.next((f) => f.type === 'subscribed' && f.conversation_id === pconv);
  await b.next((f) => f.type === 'subscribed' && f.conversation_id === pconv);
  await sleep(200);
  const id = crypto.randomUUID();
  const r = await api(alice.token, 'POST', '/v1/messages', { id, conversation_id: pconv, content: 'through the notifier' });
  assert.equal(typeof r.seq, 'string'); // the REST API: int64 as a JSON string
  const seq = Number(r.seq);
  // the notifier's first consumer-group join takes a few seconds
  const got = await b.next((f) => f.type === 'message.created' && f.conversation_id === pconv, 20000);
  assert.equal(got.seq, seq); // the realtime frame: seq as a JSON number
  assert.equal(got.message.id, id);
  assert.equal(got.message.content, 'through the notifier');
  assert.equal(got.message.sender_id, alice.user);
  const d = await a.next((f) => f.type === 'message.delivered' && f.conversation_id === pconv, 10000);
  assert.deepEqual(d, { type: 'message.delivered', conversation_id: pconv, seq, user_id: bob.user });
  await sleep(300);
  assert.deepEqual(b.messages(pconv), [], 'delivered once');
  await a.close();
  await b.close();
});

test('killing one instance: its clients reconnect to another and recover without a gap', async () => {
  const pid = Number(process.env.SB_RT_PIDS.split(' ')[0]);
  const b = await Client.open(ports[0], bob.token);
  await b.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  await sleep(200);
  const s1 = await send(alice.token, alice.user, conv, 'before kill');
  await b.next((f) => f.type === 'message.created' && f.seq === s1);
  process.kill(pid, 'SIGKILL');
  const { code } = await b.closed;
  assert.equal(code, 1006);
  const lost = [];
  for (let i = 0; i < 3; i++) lost.push(await send(alice.token, alice.user, conv, `lost ${i}`));
  const r = await Client.open(ports[1], bob.token, '&resume=1');
  r.send({ type: 'subscribe', conversation_id: conv, since_seq: s1 });
  const sub = await r.next((f) => f.type === 'subscribed' && f.conversation_id === conv);
  assert.equal(sub.recovered, true, JSON.stringify(sub));
  assert.deepEqual(r.messages(conv), lost, JSON.stringify(r.frames).slice(0, 600));
  await r.close();
});
