// stream.test.mjs: POST /api/v1/messages/consume/{topic} (docs/pubsub.md "Ack and consume in one
// request"): acks with the batch ack's rules and answers, applied even when the consume then
// waits or finds nothing; the next messages leased in the same request; min (the long poll
// waits until min can be leased, or takes what there is at wait_ms); validation, scopes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, expect, topic, publish, consume, sleep } from './lib.mjs';

const stream = (t, body, who = 'consume') =>
	expect(200, 'POST', `/api/v1/messages/consume/${t}`, body, who);
const state = async (id, sub = 'default') =>
	(await expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume')).deliveries
		.find((d) => d.subscription === sub).state;
const ackOf = (m) => ({ id: m.id, lease_id: m.lease_id });

test('consume with acks: the acks answered in order as the batch ack does, the next messages leased', async () => {
	const t = await topic({ ack_deadline_ms: 30000, default_strategy: 'direct' });
	const ids = [];
	for (let i = 0; i < 6; i++) ids.push((await publish({ topic: t.name, payload: { i } })).id);
	const first = await stream(t.name, { max: 3 });
	assert.deepEqual(first.acks, []);
	assert.deepEqual(first.messages.map((m) => m.payload.i), [0, 1, 2]);
	for (const m of first.messages) assert.equal(await state(m.id), 'leased');
	// Ack the three (one of them twice, one with a stale lease id, one malformed) and take the next three.
	const bogusLease = '00000000-0000-4000-8000-000000000000';
	const r = await stream(t.name, {
		max: 3,
		acks: [ackOf(first.messages[0]), ackOf(first.messages[1]), { id: first.messages[2].id, lease_id: bogusLease },
			{ id: 'not-a-uuid' }, ackOf(first.messages[0]), { id: first.messages[2].id, subscription: 'nope' }],
	});
	assert.deepEqual(r.acks.map((a) => [a.id, a.ok || false, a.error || '']), [
		[first.messages[0].id, true, ''], [first.messages[1].id, true, ''],
		[first.messages[2].id, false, 'no_lease'], ['not-a-uuid', false, 'invalid'],
		[first.messages[0].id, true, ''], [first.messages[2].id, false, 'not_found']]);
	assert.deepEqual(r.messages.map((m) => m.payload.i), [3, 4, 5], 'the next three, none of the acked');
	assert.equal(await state(ids[0]), 'acked');
	assert.equal(await state(ids[1]), 'acked');
	assert.equal(await state(ids[2]), 'leased', 'an ack with another lease id acks nothing');
	// Acks ride on a consume that finds nothing and waits: applied, answered after the wait.
	const t0 = Date.now();
	const last = await stream(t.name, { max: 10, wait_ms: 400, acks: [...r.messages, first.messages[2]].map(ackOf) });
	assert.ok(Date.now() - t0 >= 350, `waited ${Date.now() - t0} ms`);
	assert.deepEqual(last.messages, []);
	assert.ok(last.acks.every((a) => a.ok), JSON.stringify(last.acks));
	for (const id of ids) assert.equal(await state(id), 'acked');
	// The metrics count them as acks.
	const m = await expect(200, 'GET', `/api/v1/topics/${t.name}/metrics`, undefined, 'consume');
	assert.equal(Number(m.subscriptions.find((s) => s.name === 'default').acked), 6);
});

test('consume with acks: the acks are applied before a consume that waits for a publish', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const { id } = await publish({ topic: t.name, payload: 'first' });
	const [m] = await consume(t.name);
	const pending = stream(t.name, { max: 5, wait_ms: 5000, acks: [ackOf(m)] });
	await sleep(300);
	assert.equal(await state(id), 'acked', 'acked while the consume still waits');
	const next = (await publish({ topic: t.name, payload: 'second' })).id;
	const r = await pending;
	assert.deepEqual(r.messages.map((x) => x.id), [next]);
	assert.equal(r.acks[0].ok, true);
});

test('consume with acks: a delivery acked after its lease expired is not handed out again by the same request', async () => {
	// at least once: an ack without a lease id is taken while the delivery waits for its retry
	// (pubsub_test.sh runs pubsub with SB_PUBSUB_BACKOFF_BASE_MS=200, SB_PUBSUB_REAPER_MS=50)
	const t = await topic({ ack_deadline_ms: 200, default_strategy: 'direct' });
	const { id } = await publish({ topic: t.name, payload: 1 });
	const [m] = await consume(t.name);
	assert.equal(m.id, id);
	// The reaper returns it with a 200 ms backoff: ready and visible again by now.
	await sleep(900);
	assert.equal(await state(id), 'ready');
	const r = await stream(t.name, { max: 10, acks: [{ id }] });
	assert.equal(r.acks[0].ok, true, JSON.stringify(r.acks));
	assert.deepEqual(r.messages, [], 'the acked delivery is not leased by the same statement');
	assert.equal(await state(id), 'acked');
});

test('consume with acks: exactly_once acks need the current, unexpired lease', async () => {
	const t = await topic({ guarantee: 'exactly_once', ack_deadline_ms: 300, default_strategy: 'direct' });
	const a = (await publish({ topic: t.name, payload: 'a', idempotency_key: 'a' })).id;
	const b = (await publish({ topic: t.name, payload: 'b', idempotency_key: 'b' })).id;
	const got = await stream(t.name, { max: 2 });
	const [ma, mb] = got.messages;
	assert.deepEqual([ma.id, mb.id], [a, b]);
	const r = await stream(t.name, { max: 0, acks: [{ id: a }, ackOf(ma)] });
	assert.deepEqual(r.acks.map((x) => x.error || 'ok'), ['lease_required', 'ok']);
	await sleep(700); // b's lease expired
	const late = await stream(t.name, { acks: [ackOf(mb)] });
	assert.equal(late.acks[0].error, 'no_lease', 'a late ack of an exactly_once delivery is refused');
	assert.notEqual(await state(b), 'acked');
});

test('consume with acks: ordering keys see the ack of the head in the same request', async () => {
	const t = await topic({ ordering_keys: true, ack_deadline_ms: 30000, default_strategy: 'direct' });
	const k1 = (await publish({ topic: t.name, payload: 'k0', ordering_key: 'k' })).id;
	const k2 = (await publish({ topic: t.name, payload: 'k1', ordering_key: 'k' })).id;
	const first = await stream(t.name, { max: 10 });
	assert.deepEqual(first.messages.map((m) => m.id), [k1], 'one in flight per key');
	const r = await stream(t.name, { max: 10, acks: [ackOf(first.messages[0])] });
	assert.equal(r.acks[0].ok, true);
	assert.deepEqual(r.messages.map((m) => m.id), [k2], 'the next of the key, in the same request');
});

test('consume with acks: priority subscriptions lease highest priority first, acks applied first', async () => {
	const t = await topic({ ack_deadline_ms: 30000, default_strategy: 'priority' });
	const ids = {};
	for (const p of [1, 5, 3, 9]) ids[p] = (await publish({ topic: t.name, payload: p, priority: p })).id;
	const first = await stream(t.name, { max: 2 });
	assert.deepEqual(first.messages.map((m) => m.payload), [9, 5]);
	const r = await stream(t.name, { max: 5, acks: first.messages.map(ackOf) });
	assert.ok(r.acks.every((a) => a.ok), JSON.stringify(r.acks));
	assert.deepEqual(r.messages.map((m) => m.payload), [3, 1]);
	assert.equal(await state(ids[9]), 'acked');
	assert.equal(await state(ids[5]), 'acked');
});

test('min: a consume waits until min messages can be leased, published over time', async () => {
	const t = await topic({ ack_deadline_ms: 30000, default_strategy: 'direct' });
	const t0 = Date.now();
	const pending = stream(t.name, { max: 10, min: 5, wait_ms: 10000 });
	const sent = [];
	for (let i = 0; i < 5; i++) {
		await sleep(120);
		sent.push((await publish({ topic: t.name, payload: i })).id);
	}
	const r = await pending;
	const took = Date.now() - t0;
	assert.deepEqual(r.messages.map((m) => m.id), sent, 'all five in one answer, in order');
	assert.ok(took >= 500 && took < 3000, `answered after ${took} ms`);
});

test('min: at wait_ms a consume takes what there is', async () => {
	const t = await topic({ ack_deadline_ms: 30000, default_strategy: 'direct' });
	const ids = [(await publish({ topic: t.name, payload: 1 })).id, (await publish({ topic: t.name, payload: 2 })).id];
	const t0 = Date.now();
	const r = await stream(t.name, { max: 10, min: 5, wait_ms: 600 });
	const took = Date.now() - t0;
	assert.deepEqual(r.messages.map((m) => m.id), ids);
	assert.ok(took >= 550 && took < 2500, `answered after ${took} ms`);
	// Nothing at all: an empty answer at wait_ms.
	const e0 = Date.now();
	assert.deepEqual((await stream(t.name, { max: 10, min: 3, wait_ms: 300 })).messages, []);
	assert.ok(Date.now() - e0 >= 250);
	// min reached at once: no wait.
	for (let i = 0; i < 4; i++) await publish({ topic: t.name, payload: i });
	const f0 = Date.now();
	assert.equal((await stream(t.name, { max: 10, min: 4, wait_ms: 5000 })).messages.length, 4);
	assert.ok(Date.now() - f0 < 2000);
});

test('consume with acks: bad requests, scopes and tenancy', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const bad = async (body, field) => {
		const p = await expect(400, 'POST', `/api/v1/messages/consume/${t.name}`, body, 'consume');
		assert.ok(JSON.stringify(p).includes(field), `${field} named: ${JSON.stringify(p)}`);
	};
	await bad({ max: 101 }, 'max');
	await bad({ max: 5, min: 6 }, 'min');
	await bad({ min: -1 }, 'min');
	await bad({ wait_ms: 1000000 }, 'wait_ms');
	await bad({ acks: Array.from({ length: 1001 }, () => ({ id: '00000000-0000-4000-8000-000000000000' })) }, 'acks');
	await bad({ acks: 'x' }, 'acks');
	await expect(404, 'POST', '/api/v1/messages/consume/no-such-topic', {}, 'consume');
	await expect(404, 'POST', `/api/v1/messages/consume/${t.name}`, { subscription: 'nope' }, 'consume');
	await expect(404, 'POST', `/api/v1/messages/consume/${t.name}`, {}, 'other');
	await expect(403, 'POST', `/api/v1/messages/consume/${t.name}`, {}, 'produce');
	await expect(401, 'POST', `/api/v1/messages/consume/${t.name}`, {}, null);
	// Nothing was acked by a refused request.
	const { id } = await publish({ topic: t.name, payload: 1 });
	const [m] = await consume(t.name);
	await expect(400, 'POST', `/api/v1/messages/consume/${t.name}`, { max: 101, acks: [ackOf(m)] }, 'consume');
	assert.equal(await state(id), 'leased');
	// A push subscription is not consumed by pull.
	await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
		{ subscription: 'hook', push_endpoint: 'http://192.0.2.1/hook' }, 'consume');
	await bad({ subscription: 'hook' }, 'subscription');
	// GET consume and the batch ack are unchanged beside it.
	assert.equal((await call('GET', `/api/v1/messages/consume/${t.name}?max=1`, undefined, 'consume')).status, 200);
});
