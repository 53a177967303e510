// cursor.test.mjs: cursor subscriptions (migration 007, docs/pubsub.md "Cursor subscriptions"):
// which subscriptions are cursor ones, a lease acknowledged in parts, messages detached from a
// lease (nack, modify-deadline, expiry), a topic update that rules the cursor out, a late
// subscription, and concurrent publishers and consumers (each message exactly once). Run by
// pubsub_test.sh with SB_PUBSUB_CURSOR on (the default) and, by pubsub_rows_test.sh, off: the
// API's answers must be the same in both; only the storage checks differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, expect, topic, publish, consume, ack, sleep, sql } from './lib.mjs';

const cursorOn = process.env.SB_PUBSUB_CURSOR !== 'false';
const modeOf = (t, sub) => sql(`SELECT s.mode FROM pubsub.subscriptions s JOIN pubsub.topics t ON t.id = s.topic_id WHERE t.name = '${t}' AND s.name = '${sub}'`);
const leasesOf = (t) => Number(sql(`SELECT count(*) FROM pubsub.leases l JOIN pubsub.subscriptions s ON s.id = l.sub_id JOIN pubsub.topics t ON t.id = s.topic_id WHERE t.name = '${t}'`));
const ids = (msgs) => msgs.map((m) => m.id);
const sub = (t, body) => expect(201, 'POST', `/api/v1/topics/${t}/subscriptions`, body);
const state = async (id, s = 'default') => {
	const info = await expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume');
	return info.deliveries.find((d) => d.subscription === s);
};
const metrics = (t) => expect(200, 'GET', `/api/v1/topics/${t}/metrics`, undefined, 'consume');

test('cursor subscriptions: direct and fan_out without filter or push, on a topic without ordering keys', async () => {
	const c = cursorOn ? 'cursor' : 'rows';
	const t = await topic({ type: 'pubsub' });
	assert.equal(modeOf(t.name, 'default'), c, 'fan_out');
	await sub(t.name, { subscription: 'd', strategy: 'direct' });
	assert.equal(modeOf(t.name, 'd'), c, 'direct');
	await sub(t.name, { subscription: 'rr', strategy: 'round_robin' });
	await sub(t.name, { subscription: 'll', strategy: 'least_loaded' });
	await sub(t.name, { subscription: 'p', strategy: 'priority' });
	await sub(t.name, { subscription: 'f', strategy: 'direct', filter: { headers: [{ name: 'kind', equals: 'a' }] } });
	for (const s of ['rr', 'll', 'p', 'f'])
		assert.equal(modeOf(t.name, s), 'rows', s);
	const k = await topic({ default_strategy: 'direct', ordering_keys: true });
	assert.equal(modeOf(k.name, 'default'), 'rows', 'a topic with ordering keys');
	const q = await topic({ type: 'queue' });
	assert.equal(modeOf(q.name, 'default'), 'rows', 'queue topics default to round_robin');
});

test('a lease acknowledged in parts: states, metrics, repeated acks', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const sent = [];
	for (let i = 0; i < 4; i++) sent.push((await publish({ topic: t.name, payload: { i } })).id);
	const got = await consume(t.name, { max: 4 });
	assert.deepEqual(ids(got), sent, 'in publish order');
	assert.ok(got.every((m) => m.attempt === 1));
	if (cursorOn) {
		assert.equal(new Set(got.map((m) => m.lease_id)).size, 1, 'one lease for the claim');
		assert.equal(leasesOf(t.name), 1);
		assert.equal(sql(`SELECT count(*) FROM pubsub.deliveries WHERE message_id IN (${sent.map((x) => `'${x}'`).join(',')})`), '0', 'no delivery rows');
	}
	const r = await expect(200, 'POST', '/api/v1/messages/ack', { acks: got.slice(0, 2).map((m) => ({ id: m.id, lease_id: m.lease_id })) }, 'consume');
	assert.deepEqual(r.results.map((x) => x.ok), [true, true]);
	assert.equal((await state(sent[0])).state, 'acked');
	assert.equal((await state(sent[2])).state, 'leased');
	let m = await metrics(t.name);
	assert.equal(Number(m.in_flight), 2);
	assert.equal(Number(m.acked_total), 2);
	assert.equal(Number(m.depth), 0);
	// acking again answers acked; another lease id or no lease on a held message is refused
	assert.equal((await ack(sent[0], { lease_id: got[0].lease_id })).state, 'acked');
	const wrong = await expect(200, 'POST', '/api/v1/messages/ack', { acks: [{ id: sent[2], lease_id: '00000000-0000-4000-8000-000000000000' }] }, 'consume');
	assert.equal(wrong.results[0].ok, false);
	assert.equal(wrong.results[0].error, 'no_lease');
	// the rest without a lease id (at_least_once: whoever holds it)
	const rest = await expect(200, 'POST', '/api/v1/messages/ack', { acks: got.slice(2).map((x) => ({ id: x.id })) }, 'consume');
	assert.deepEqual(rest.results.map((x) => x.ok), [true, true]);
	if (cursorOn) assert.equal(leasesOf(t.name), 0, 'the emptied lease went');
	m = await metrics(t.name);
	assert.equal(Number(m.in_flight), 0);
	assert.equal(Number(m.acked_total), 4);
	assert.ok(Number(m.ack_rate_per_s) > 0, 'acks of the last minute counted');
	assert.deepEqual(await consume(t.name, { wait_ms: 0 }), [], 'nothing delivered twice');
});

test('one message of a lease nacked: redelivered alone, the others stay leased', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const sent = [];
	for (let i = 0; i < 3; i++) sent.push((await publish({ topic: t.name, payload: { i } })).id);
	const got = await consume(t.name, { max: 3 });
	await expect(200, 'POST', `/api/v1/messages/${sent[1]}/nack`, { lease_id: got[1].lease_id, delay_ms: 1, reason: 'later' }, 'consume');
	const again = await consume(t.name, { max: 3, wait_ms: 2000 });
	assert.deepEqual(ids(again), [sent[1]]);
	assert.equal(again[0].attempt, 2);
	assert.equal((await state(sent[0])).state, 'leased');
	for (const i of [0, 2]) await ack(sent[i], { lease_id: got[i].lease_id });
	await ack(sent[1], { lease_id: again[0].lease_id });
	const info = await state(sent[1]);
	assert.equal(info.state, 'acked');
	assert.deepEqual(info.errors.map((e) => e.reason), ['later']);
	if (cursorOn) assert.equal(leasesOf(t.name), 0);
});

test('a cursor lease expires: each unacknowledged message redelivered, the old lease cannot ack', async () => {
	const t = await topic({ default_strategy: 'direct', ack_deadline_ms: 800 });
	const a = await publish({ topic: t.name, payload: 'a' });
	const b = await publish({ topic: t.name, payload: 'b' });
	const got = await consume(t.name, { max: 2 });
	await ack(a.id, { lease_id: got[0].lease_id });
	const again = await consume(t.name, { max: 2, wait_ms: 4000 });
	assert.deepEqual(ids(again), [b.id], 'only the unacknowledged one');
	assert.equal(again[0].attempt, 2);
	await expect(412, 'POST', `/api/v1/messages/${b.id}/ack`, { lease_id: got[1].lease_id }, 'consume');
	await ack(b.id, { lease_id: again[0].lease_id });
	const info = await state(b.id);
	assert.deepEqual(info.errors.map((e) => e.reason), ['ack deadline expired']);
	assert.equal((await state(a.id)).state, 'acked');
});

test('modify-deadline of one message of a lease: it stays leased while the others expire', async () => {
	const t = await topic({ default_strategy: 'direct', ack_deadline_ms: 1000 });
	const a = await publish({ topic: t.name, payload: 'a' });
	const b = await publish({ topic: t.name, payload: 'b' });
	const got = await consume(t.name, { max: 2 });
	await expect(200, 'POST', `/api/v1/messages/${a.id}/modify-deadline`, { lease_id: got[0].lease_id, ack_deadline_ms: 8000 }, 'consume');
	const again = await consume(t.name, { max: 2, wait_ms: 4000 });
	assert.deepEqual(ids(again), [b.id]);
	assert.equal((await state(a.id)).state, 'leased');
	await ack(a.id, { lease_id: got[0].lease_id });
	await ack(b.id, { lease_id: again[0].lease_id });
});

test('a topic update that orders by key: its cursor subscriptions keep a row per delivery, nothing lost', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const sent = [];
	for (let i = 0; i < 3; i++) sent.push((await publish({ topic: t.name, payload: { i } })).id);
	const [first] = await consume(t.name, { max: 1 });
	assert.equal(first.id, sent[0]);
	await expect(200, 'PUT', `/api/v1/topics/${t.name}`, { ordering_keys: true });
	assert.equal(modeOf(t.name, 'default'), 'rows');
	assert.equal(leasesOf(t.name), 0);
	assert.equal((await state(sent[0])).state, 'leased', 'the lease survives the change');
	await ack(sent[0], { lease_id: first.lease_id });
	const rest = await consume(t.name, { max: 5 });
	assert.deepEqual(ids(rest), sent.slice(1), 'what the cursor had not reached, in order');
	for (const m of rest) await ack(m.id, { lease_id: m.lease_id });
	const p = await publish({ topic: t.name, payload: 'after', ordering_key: 'k' });
	assert.deepEqual(ids(await consume(t.name)), [p.id]);
});

test('a subscription made after a publish does not get it', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const before = await publish({ topic: t.name, payload: 'before' });
	await sub(t.name, { subscription: 'late', strategy: 'direct' });
	const after = await publish({ topic: t.name, payload: 'after' });
	assert.deepEqual(ids(await consume(t.name, { max: 5, subscription: 'late' })), [after.id]);
	const info = await expect(200, 'GET', `/api/v1/messages/${before.id}`, undefined, 'consume');
	assert.deepEqual(info.deliveries.map((d) => d.subscription), ['default']);
	await expect(404, 'POST', `/api/v1/messages/${before.id}/ack`, { subscription: 'late' }, 'consume');
});

test('concurrent publishers and consumers: every message delivered once', async () => {
	const t = await topic({ default_strategy: 'direct' });
	const N = 8, per = 30;
	const sent = new Set(), seen = [];
	let done = false;
	const producer = async (p) => {
		for (let i = 0; i < per; i += 3) {
			if (i % 2) {
				const r = await expect(202, 'POST', '/api/v1/messages/publish-batch',
					{ topic: t.name, messages: [0, 1, 2].map((k) => ({ payload: { p, i: i + k } })) }, 'produce');
				r.ids.forEach((id) => sent.add(id));
			} else
				for (let k = 0; k < 3; k++) sent.add((await publish({ topic: t.name, payload: { p, i: i + k } })).id);
		}
	};
	const consumer = async (c) => {
		let held = [];
		while (!done || held.length) {
			const r = await call('POST', `/api/v1/messages/consume/${t.name}`,
				{ max: 7, wait_ms: 100, consumer: `c${c}`, acks: held.map((m) => ({ id: m.id, lease_id: m.lease_id })) }, 'consume');
			assert.equal(r.status, 200, JSON.stringify(r.body));
			assert.ok(r.body.acks.every((x) => x.ok), JSON.stringify(r.body.acks));
			held = r.body.messages;
			seen.push(...ids(held));
			if (done && !held.length) break;
		}
	};
	const cons = [0, 1, 2].map(consumer);
	await Promise.all(Array.from({ length: N }, (_, p) => producer(p)));
	for (let i = 0; i < 100 && seen.length < sent.size; i++) await sleep(50);
	done = true;
	await Promise.all(cons);
	assert.equal(sent.size, N * per);
	assert.equal(seen.length, sent.size, 'as many deliveries as messages');
	assert.deepEqual(new Set(seen), sent, 'each message delivered, none twice');
	const m = await metrics(t.name);
	assert.equal(Number(m.acked_total), N * per);
	assert.equal(Number(m.in_flight), 0);
});
