// batch.test.mjs: POST /api/v1/messages/publish-batch through the gateway (run by
// tests/integration/pubsub_test.sh after api.test.mjs). docs/pubsub.md "Batch publish".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, expect, uniq, topic, consume, ack } from './lib.mjs';

const PATH = '/api/v1/messages/publish-batch';
const batch = (body, who = 'produce') => call('POST', PATH, body, who);

test('batch publish: ids in request order, stored with payloads, headers and priorities', async () => {
	const t = await topic({});
	const messages = Array.from({ length: 5 }, (_, i) => ({
		payload: { n: i }, headers: { h: `v${i}` }, priority: i,
	}));
	const r = await batch({ topic: t.name, messages });
	assert.equal(r.status, 202, JSON.stringify(r.body));
	assert.equal(r.body.ids.length, 5);
	assert.equal(new Set(r.body.ids).size, 5);
	assert.deepEqual(r.body.results.map((x) => x.id), r.body.ids);
	assert.ok(r.body.results.every((x) => !x.duplicate && x.subscriptions === 1), JSON.stringify(r.body));
	const got = await consume(t.name, { max: 10 });
	assert.deepEqual(got.map((m) => m.id), r.body.ids, 'delivered in batch order');
	assert.deepEqual(got.map((m) => m.payload), messages.map((m) => m.payload));
	assert.deepEqual(got.map((m) => m.headers.h), ['v0', 'v1', 'v2', 'v3', 'v4']);
	assert.deepEqual(got.map((m) => m.priority ?? 0), [0, 1, 2, 3, 4]);
	for (const m of got) await ack(m.id);
});

test('batch publish is atomic: one invalid message refuses the batch, every violation named, nothing stored', async () => {
	const t = await topic({});
	const r = await batch({
		topic: t.name,
		messages: [{ payload: 1 }, { payload: 2, priority: 12 }, { headers: { a: 'b' } }, { payload: 4, topic: 'elsewhere' }],
	});
	assert.equal(r.status, 400, JSON.stringify(r.body));
	assert.match(r.headers.get('content-type'), /application\/problem\+json/);
	const fields = r.body.errors.map((e) => e.field).sort();
	assert.deepEqual(fields, ['messages/1/priority', 'messages/2/payload', 'messages/3/topic']);
	assert.match(r.body.detail, /3 of 4 messages are invalid/);
	assert.deepEqual(await consume(t.name, { max: 10 }), [], 'nothing of the refused batch stored');
	// limits: at least one message, at most 1000
	for (const messages of [[], Array.from({ length: 1001 }, () => ({ payload: 0 }))]) {
		const e = await batch({ topic: t.name, messages });
		assert.equal(e.status, 400, JSON.stringify(e.body));
		assert.deepEqual(e.body.errors.map((x) => x.field), ['messages']);
	}
	const full = await batch({ topic: t.name, messages: Array.from({ length: 1000 }, (_, i) => ({ payload: i })) });
	assert.equal(full.status, 202, JSON.stringify(full.body).slice(0, 300));
	assert.equal(full.body.ids.length, 1000);
	let n = 0;
	for (;;) {
		const msgs = await consume(t.name, { max: 100 });
		if (!msgs.length) break;
		for (const m of msgs) assert.equal(m.payload, n++);
		await expect(200, 'POST', '/api/v1/messages/ack', { acks: msgs.map((m) => ({ id: m.id })) }, 'consume');
	}
	assert.equal(n, 1000, 'the full batch stored, in order');
});

test('batch publish: idempotency keys within a batch and across publishes', async () => {
	const t = await topic({ guarantee: 'exactly_once' });
	// exactly_once needs every message's key
	let r = await batch({ topic: t.name, messages: [{ payload: 1, idempotency_key: 'a' }, { payload: 2 }] });
	assert.equal(r.status, 400, JSON.stringify(r.body));
	assert.deepEqual(r.body.errors.map((e) => e.field), ['messages/1/idempotency_key']);
	// one key twice in a batch: stored once, the second answers the first's id
	r = await batch({ topic: t.name, messages: [
		{ payload: 'k1', idempotency_key: 'k1' }, { payload: 'k2', idempotency_key: 'k2' },
		{ payload: 'k1 again', idempotency_key: 'k1' }] });
	assert.equal(r.status, 202, JSON.stringify(r.body));
	const [k1, k2, k1b] = r.body.ids;
	assert.equal(k1b, k1);
	assert.deepEqual(r.body.results.map((x) => !!x.duplicate), [false, false, true]);
	// a single publish and a later batch see the keys of the first batch
	const single = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 'x', idempotency_key: 'k2' }, 'produce');
	assert.equal(single.status, 200);
	assert.equal(single.body.id, k2);
	r = await batch({ topic: t.name, messages: [{ payload: 'x', idempotency_key: 'k2' }, { payload: 'k3', idempotency_key: 'k3' }] });
	assert.equal(r.status, 202);
	assert.equal(r.body.ids[0], k2);
	assert.deepEqual(r.body.results.map((x) => !!x.duplicate), [true, false]);
	const k3 = r.body.ids[1];
	// only repeats: 200, nothing stored
	r = await batch({ topic: t.name, messages: [{ payload: 'x', idempotency_key: 'k1' }, { payload: 'y', idempotency_key: 'k3' }] });
	assert.equal(r.status, 200, JSON.stringify(r.body));
	assert.deepEqual(r.body.ids, [k1, k3]);
	const got = await consume(t.name, { max: 10 });
	assert.deepEqual(got.map((m) => m.id), [k1, k2, k3]);
	assert.deepEqual(got.map((m) => m.payload), ['k1', 'k2', 'k3']);
});

test('batch publish: schema validation per message, violations named by pointer', async () => {
	const subject = uniq('batch-value');
	const t = await topic({ schema_subject: subject });
	await expect(201, 'POST', '/api/v1/schemas', {
		subject, schema: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } },
	});
	const r = await batch({ topic: t.name, messages: [{ payload: { id: 1 } }, { payload: { id: 'x' } }, { payload: { id: 3 } }] });
	assert.equal(r.status, 400, JSON.stringify(r.body));
	const fields = r.body.errors.map((e) => e.field);
	assert.ok(fields.includes('messages/1/payload/id'), JSON.stringify(r.body));
	assert.ok(fields.every((f) => f.startsWith('messages/1/payload')), JSON.stringify(r.body));
	assert.deepEqual(await consume(t.name), []);
	const ok = await batch({ topic: t.name, messages: [{ payload: { id: 1 } }, { payload: { id: 2 } }] });
	assert.equal(ok.status, 202);
	assert.deepEqual((await consume(t.name, { max: 5 })).map((m) => m.id), ok.body.ids);
});

test('batch publish: ordering keys keep the batch order', async () => {
	const t = await topic({ ordering_keys: true, ack_deadline_ms: 5000 });
	const keys = ['a', 'b', 'a', 'a', 'b'];
	const r = await batch({ topic: t.name, messages: keys.map((k, i) => ({ payload: `${k}${i}`, ordering_key: k })) });
	assert.equal(r.status, 202);
	const got = { a: [], b: [] };
	for (let round = 0; round < 10 && got.a.length + got.b.length < 5; round++) {
		const msgs = await consume(t.name, { max: 10 });
		assert.ok(msgs.length <= 2, 'one in flight per key');
		for (const m of msgs) {
			got[m.ordering_key].push(m.payload);
			await ack(m.id);
		}
	}
	assert.deepEqual(got, { a: ['a0', 'a2', 'a3'], b: ['b1', 'b4'] });
});

test('batch publish: scopes and tenancy as for a single publish', async () => {
	const t = await topic({});
	const body = { topic: t.name, messages: [{ payload: 1 }] };
	assert.equal((await batch(body, 'consume')).status, 403);
	assert.equal((await batch(body, null)).status, 401);
	// another tenant does not see the topic
	assert.equal((await batch(body, 'other')).status, 404);
	assert.equal((await batch({ topic: uniq('none'), messages: [{ payload: 1 }] })).status, 404);
	assert.deepEqual(await consume(t.name), []);
});
