// api.test.mjs: sb-pubsub through the gateway (tests/integration/pubsub_test.sh starts it with a
// 200 ms backoff base, 3.2 s ceiling and a 50 ms reaper). Every test asserts what a client sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, expect, uniq, topic, publish, consume, ack, sleep } from './lib.mjs';

const ids = (msgs) => msgs.map((m) => m.id);

test('topics: create, list, get, update, metrics, delete (admin only)', async () => {
	const name = uniq('crud');
	const t = await expect(201, 'POST', '/api/v1/topics', {
		name, type: 'queue', max_delivery_attempts: 3, ack_deadline_ms: 1500,
		guarantee: 'at_least_once',
	});
	assert.equal(t.name, name);
	assert.equal(t.type, 'queue');
	assert.equal(t.dlq, `${name}.dlq`);
	assert.equal(t.max_delivery_attempts, 3);
	assert.equal(t.ack_deadline_ms, 1500);
	assert.equal(t.default_strategy, 'round_robin');
	await expect(409, 'POST', '/api/v1/topics', { name });
	const bad = await expect(400, 'POST', '/api/v1/topics', { name: 'x.dlq' });
	assert.ok(bad.errors.some((v) => v.field === 'name'), JSON.stringify(bad));
	await expect(400, 'POST', '/api/v1/topics', { name: uniq('b'), type: 'fanout' });
	await expect(400, 'POST', '/api/v1/topics', { name: uniq('b'), max_delivery_attempts: 5000 });
	await expect(400, 'POST', '/api/v1/topics', { name: uniq('b'), nonsense: 1 });
	const list = await expect(200, 'GET', '/api/v1/topics', undefined, 'consume');
	assert.ok(list.topics.some((x) => x.name === name));
	const got = await expect(200, 'GET', `/api/v1/topics/${name}`, undefined, 'consume');
	assert.equal(got.ack_deadline_ms, 1500);
	const up = await expect(200, 'PUT', `/api/v1/topics/${name}`, { max_delivery_attempts: 7 });
	assert.equal(up.max_delivery_attempts, 7);
	assert.equal(up.ack_deadline_ms, 1500, 'fields left out keep their value');
	await expect(400, 'PUT', `/api/v1/topics/${name}`, { type: 'pubsub' });
	await publish({ topic: name, payload: { n: 1 } });
	const m = await expect(200, 'GET', `/api/v1/topics/${name}/metrics`, undefined, 'consume');
	assert.equal(m.depth, '1');
	assert.equal(m.published_total, '1');
	assert.equal(m.dlq_size, '0');
	assert.ok(m.publish_rate_per_s > 0);
	await expect(403, 'DELETE', `/api/v1/topics/${name}`, undefined, 'consume');
	await expect(403, 'DELETE', `/api/v1/topics/${name}`, undefined, 'produce');
	const del = await expect(200, 'DELETE', `/api/v1/topics/${name}`);
	assert.equal(del.deleted, true);
	await expect(404, 'GET', `/api/v1/topics/${name}`, undefined, 'consume');
	await expect(404, 'DELETE', `/api/v1/topics/${name}`);
});

test('authorization per scope and tenant', async () => {
	const t = await topic({});
	await expect(401, 'GET', '/api/v1/topics', undefined, null);
	await expect(403, 'POST', '/api/v1/topics', { name: uniq('x') }, 'produce');
	await expect(403, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 1 }, 'consume');
	await expect(403, 'GET', `/api/v1/messages/consume/${t.name}`, undefined, 'produce');
	await expect(403, 'GET', '/api/v1/topics', undefined, 'messages');
	const { id } = await publish({ topic: t.name, payload: { secret: true } });
	// Another tenant sees nothing of this one, even with every pubsub scope.
	await expect(404, 'GET', `/api/v1/topics/${t.name}`, undefined, 'other');
	await expect(404, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 1 }, 'other');
	await expect(404, 'GET', `/api/v1/messages/consume/${t.name}`, undefined, 'other');
	await expect(404, 'GET', `/api/v1/messages/${id}`, undefined, 'other');
	const list = await expect(200, 'GET', '/api/v1/topics', undefined, 'other');
	assert.ok(!list.topics.some((x) => x.name === t.name));
	// The other tenant may have a topic of the same name: its own.
	await expect(201, 'POST', '/api/v1/topics', { name: t.name }, 'other');
	assert.deepEqual(await consume(t.name, {}, 'other'), []);
	const [m] = await consume(t.name);
	assert.equal(m.id, id);
	await expect(404, 'POST', `/api/v1/messages/${id}/ack`, {}, 'other');
	await ack(id);
});

test('publish, consume, ack: payload, headers, attempt, state', async () => {
	const t = await topic({});
	const payload = { order: 17, items: ['a', 'b'], nested: { ok: true, n: null } };
	const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
	const r = await expect(202, 'POST', '/api/v1/messages/publish',
		{ topic: t.name, payload, headers: { kind: 'order' } }, 'produce',
		{ traceparent: `00-${trace}-00f067aa0ba902b7-01` });
	assert.match(r.id, /^[0-9a-f-]{36}$/);
	for (const p of [42, 'text', [1, 2], null, true]) {
		if (p === null) {
			await expect(400, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: p }, 'produce');
			continue;
		}
		await publish({ topic: t.name, payload: p });
	}
	await expect(400, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 1, priority: 10 }, 'produce');
	await expect(404, 'POST', '/api/v1/messages/publish', { topic: uniq('none'), payload: 1 }, 'produce');
	const msgs = await consume(t.name, { max: 10 });
	assert.equal(msgs.length, 5);
	assert.equal(msgs[0].id, r.id);
	assert.deepEqual(msgs[0].payload, payload);
	assert.deepEqual(Object.keys(msgs[0].headers).sort(), ['kind', 'traceparent']);
	assert.equal(msgs[0].headers.kind, 'order');
	// The publisher's trace travels in the message's headers to its consumers.
	assert.match(msgs[0].headers.traceparent, new RegExp(`^00-${trace}-[0-9a-f]{16}-0[01]$`));
	assert.match(msgs[1].headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
	assert.equal(msgs[0].attempt, 1);
	assert.deepEqual(msgs.slice(1).map((m) => m.payload), [42, 'text', [1, 2], true]);
	const info = await expect(200, 'GET', `/api/v1/messages/${r.id}`, undefined, 'consume');
	assert.equal(info.deliveries[0].state, 'leased');
	assert.deepEqual(info.payload, payload);
	for (const m of msgs) await ack(m.id, { lease_id: m.lease_id });
	const after = await expect(200, 'GET', `/api/v1/messages/${r.id}`, undefined, 'consume');
	assert.equal(after.deliveries[0].state, 'acked');
	assert.deepEqual(await consume(t.name, { max: 10 }), []);
	// A second ack is harmless; a bad id is a 400.
	await ack(r.id);
	await expect(400, 'POST', '/api/v1/messages/not-a-uuid/ack', {}, 'consume');
});

test('batch ack: one transaction, one result per ack', async () => {
	const t = await topic({});
	const sent = [];
	for (let i = 0; i < 5; i++) sent.push((await publish({ topic: t.name, payload: i })).id);
	const msgs = await consume(t.name, { max: 4 });
	assert.equal(msgs.length, 4);
	const r = await expect(200, 'POST', '/api/v1/messages/ack', { acks: [
		...msgs.slice(0, 3).map((m) => ({ id: m.id, lease_id: m.lease_id })),
		{ id: msgs[3].id, lease_id: '00000000-0000-4000-8000-000000000000' },
		{ id: sent[4] },
		{ id: 'nope' },
		{ id: '00000000-0000-4000-8000-000000000001' },
		{ id: msgs[0].id },
	] }, 'consume');
	assert.deepEqual(r.results.map((x) => [x.ok, x.error]), [
		[true, ''], [true, ''], [true, ''], [false, 'no_lease'], [false, 'no_lease'],
		[false, 'invalid'], [false, 'not_found'], [true, ''],
	]);
	const states = await Promise.all(sent.map((id) => expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume')));
	assert.deepEqual(states.map((m) => m.deliveries[0].state), ['acked', 'acked', 'acked', 'leased', 'ready']);
	const other = await expect(200, 'POST', '/api/v1/messages/ack', { acks: [{ id: msgs[3].id }] }, 'other');
	assert.deepEqual(other.results.map((x) => x.error), ['not_found'], 'another tenant acks nothing');
	assert.deepEqual((await expect(200, 'POST', '/api/v1/messages/ack', {}, 'consume')).results, []);
	await expect(403, 'POST', '/api/v1/messages/ack', { acks: [] }, 'produce');
});

test('retention: acknowledged messages go after retention_ms, unacknowledged ones stay', async () => {
	const t = await topic({ retention_ms: 1000 });
	const a = await publish({ topic: t.name, payload: 'acked' });
	const b = await publish({ topic: t.name, payload: 'kept' });
	const [m] = await consume(t.name);
	assert.equal(m.id, a.id);
	await ack(a.id);
	await expect(200, 'GET', `/api/v1/messages/${a.id}`, undefined, 'consume');
	let gone = false;
	for (let i = 0; i < 40 && !gone; i++) {
		await sleep(100);
		gone = (await call('GET', `/api/v1/messages/${a.id}`, undefined, 'consume')).status === 404;
	}
	assert.ok(gone, 'the acknowledged message was not deleted after its retention');
	await expect(200, 'GET', `/api/v1/messages/${b.id}`, undefined, 'consume');
	assert.deepEqual(ids(await consume(t.name)), [b.id]);
});

test('long poll: a publish wakes a waiting consumer', async () => {
	const t = await topic({});
	const t0 = Date.now();
	const waiting = consume(t.name, { wait_ms: 5000 });
	await sleep(300);
	const { id } = await publish({ topic: t.name, payload: 'wake' });
	const msgs = await waiting;
	assert.deepEqual(ids(msgs), [id]);
	assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
	const t1 = Date.now();
	assert.deepEqual(await consume(t.name, { wait_ms: 600 }), []);
	assert.ok(Date.now() - t1 >= 550, 'an empty long poll waits');
});

test('ack deadline expiry redelivers after the backoff; a stale lease cannot ack', async () => {
	const t = await topic({ ack_deadline_ms: 1000 });
	const { id } = await publish({ topic: t.name, payload: 1 });
	const [first] = await consume(t.name);
	assert.equal(first.attempt, 1);
	assert.deepEqual(await consume(t.name), [], 'nobody else gets it while the lease holds');
	await sleep(500);
	assert.deepEqual(await consume(t.name), [], 'still leased');
	// Lease ends at 1000 ms, then the backoff of attempt 1 (200 ms).
	const again = await consume(t.name, { wait_ms: 3000 });
	assert.deepEqual(ids(again), [id]);
	assert.equal(again[0].attempt, 2);
	assert.notEqual(again[0].lease_id, first.lease_id);
	await expect(412, 'POST', `/api/v1/messages/${id}/ack`, { lease_id: first.lease_id }, 'consume');
	await ack(id, { lease_id: again[0].lease_id });
	const info = await expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume');
	assert.equal(info.deliveries[0].errors[0].reason, 'ack deadline expired');
});

test('modify-deadline extends a lease, 0 gives it up', async () => {
	const t = await topic({ ack_deadline_ms: 1500 });
	const { id } = await publish({ topic: t.name, payload: 1 });
	const [m] = await consume(t.name);
	await expect(200, 'POST', `/api/v1/messages/${id}/modify-deadline`,
		{ lease_id: m.lease_id, ack_deadline_ms: 5000 }, 'consume');
	await sleep(2000);
	assert.deepEqual(await consume(t.name), [], 'the extended lease holds');
	await expect(200, 'POST', `/api/v1/messages/${id}/modify-deadline`,
		{ lease_id: m.lease_id, ack_deadline_ms: 0 }, 'consume');
	const again = await consume(t.name, { wait_ms: 1000 });
	assert.deepEqual(ids(again), [id]);
	assert.equal(again[0].attempt, 2);
	await expect(412, 'POST', `/api/v1/messages/${id}/modify-deadline`,
		{ lease_id: m.lease_id, ack_deadline_ms: 1000 }, 'consume');
});

test('nack with a delay, nack with the exponential backoff', async () => {
	const t = await topic({ max_delivery_attempts: 10 });
	const { id } = await publish({ topic: t.name, payload: 1 });
	let [m] = await consume(t.name);
	await expect(200, 'POST', `/api/v1/messages/${id}/nack`, { delay_ms: 1200, reason: 'busy' }, 'consume');
	const t0 = Date.now();
	assert.deepEqual(await consume(t.name, { wait_ms: 800 }), [], 'not before the delay');
	[m] = await consume(t.name, { wait_ms: 3000 });
	assert.equal(m.id, id);
	assert.ok(Date.now() - t0 >= 1100, `redelivered after ${Date.now() - t0} ms`);
	// Without a delay, the backoff: base * 2^(attempt-1) = 400 ms after attempt 2.
	await expect(200, 'POST', `/api/v1/messages/${id}/nack`, { reason: 'again' }, 'consume');
	const t1 = Date.now();
	[m] = await consume(t.name, { wait_ms: 3000 });
	const waited = Date.now() - t1;
	assert.equal(m.attempt, 3);
	assert.ok(waited >= 350 && waited < 3000, `backoff after attempt 2 took ${waited} ms`);
	await expect(200, 'POST', `/api/v1/messages/${id}/nack`, {}, 'consume');
	const t2 = Date.now();
	[m] = await consume(t.name, { wait_ms: 3000 });
	const waited2 = Date.now() - t2;
	assert.equal(m.attempt, 4);
	assert.ok(waited2 >= 750 && waited2 < 4000, `backoff after attempt 3 took ${waited2} ms`);
	const info = await expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume');
	assert.deepEqual(info.deliveries[0].errors.map((e) => e.reason), ['busy', 'again', 'nack']);
	await ack(m.id);
});

test('max attempts: the delivery goes to {name}.dlq with its history, and replays', async () => {
	const t = await topic({ max_delivery_attempts: 2, ack_deadline_ms: 300 });
	const { id } = await publish({ topic: t.name, payload: { dlq: 1 } });
	const keep = await publish({ topic: t.name, payload: { dlq: 0 } });
	let msgs = await consume(t.name, { max: 2 });
	await ack(keep.id);
	await expect(200, 'POST', `/api/v1/messages/${id}/nack`, { delay_ms: 1, reason: 'bad input' }, 'consume');
	// Second attempt: let the lease expire.
	msgs = await consume(t.name, { wait_ms: 2000 });
	assert.deepEqual(ids(msgs), [id]);
	assert.equal(msgs[0].attempt, 2);
	let dlq;
	for (let i = 0; i < 40; i++) {
		dlq = await expect(200, 'GET', `/api/v1/topics/${t.name}/dlq`, undefined, 'consume');
		if (dlq.messages.length) break;
		await sleep(100);
	}
	assert.equal(dlq.messages.length, 1);
	const d = dlq.messages[0];
	assert.equal(d.id, id);
	assert.equal(d.attempts, 2);
	assert.deepEqual(d.payload, { dlq: 1 });
	assert.deepEqual(d.errors.map((e) => e.reason), ['bad input', 'ack deadline expired']);
	const metrics = await (await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`)).text();
	assert.match(metrics, new RegExp(`^pubsub_dead_lettered_total\\{topic="${t.name}",subscription="default",cause="expired"\\} 1$`, 'm'));
	assert.deepEqual(await consume(t.name, { wait_ms: 500 }), [], 'a dead delivery is not consumed');
	const m = await expect(200, 'GET', `/api/v1/topics/${t.name}/metrics`, undefined, 'consume');
	assert.equal(m.dlq_size, '1');
	await expect(403, 'POST', `/api/v1/topics/${t.name}/dlq/${id}/replay`, {}, 'consume');
	await expect(404, 'POST', `/api/v1/topics/${t.name}/dlq/${keep.id}/replay`, {});
	const rep = await expect(200, 'POST', `/api/v1/topics/${t.name}/dlq/${id}/replay`, {});
	assert.equal(rep.replayed, 1);
	const back = await consume(t.name, { wait_ms: 2000 });
	assert.deepEqual(ids(back), [id]);
	assert.equal(back[0].attempt, 1);
	await ack(id);
	dlq = await expect(200, 'GET', `/api/v1/topics/${t.name}/dlq`, undefined, 'consume');
	assert.equal(dlq.messages.length, 0);
});

test('fan-out: every subscription gets every message, retries per subscription', async () => {
	const t = await topic({ type: 'pubsub' });
	assert.equal(t.default_strategy, 'fan_out');
	for (const s of ['s1', 's2', 's3'])
		await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: s }, 'consume');
	await expect(409, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 's1' }, 'consume');
	const subs = await expect(200, 'GET', `/api/v1/topics/${t.name}/subscriptions`, undefined, 'consume');
	assert.deepEqual(subs.subscriptions.map((s) => s.subscription), ['default', 's1', 's2', 's3']);
	const sent = [];
	for (let i = 0; i < 5; i++) {
		const r = await publish({ topic: t.name, payload: i });
		assert.equal(r.subscriptions, 4);
		sent.push(r.id);
	}
	const got = {};
	for (const s of ['s1', 's2', 's3']) got[s] = await consume(t.name, { subscription: s, max: 10 });
	for (const s of ['s1', 's2', 's3']) assert.deepEqual(ids(got[s]), sent, s);
	// s1 fails one message; s2 and s3 acknowledge everything: only s1 sees it again.
	for (const s of ['s2', 's3']) for (const m of got[s]) await ack(m.id, { subscription: s });
	for (const m of got.s1) {
		if (m.id === sent[2])
			await expect(200, 'POST', `/api/v1/messages/${m.id}/nack`, { subscription: 's1', delay_ms: 1 }, 'consume');
		else await ack(m.id, { subscription: 's1' });
	}
	const again = await consume(t.name, { subscription: 's1', wait_ms: 2000 });
	assert.deepEqual(ids(again), [sent[2]]);
	assert.equal(again[0].attempt, 2);
	for (const s of ['s2', 's3']) assert.deepEqual(await consume(t.name, { subscription: s }), [], s);
	const info = await expect(200, 'GET', `/api/v1/messages/${sent[2]}`, undefined, 'consume');
	const st = Object.fromEntries(info.deliveries.map((d) => [d.subscription, d.state]));
	assert.deepEqual(st, { default: 'ready', s1: 'leased', s2: 'acked', s3: 'acked' });
	await expect(404, 'GET', `/api/v1/messages/consume/${t.name}?subscription=nope`, undefined, 'consume');
});

test('direct: the first consumer that asks gets what is ready', async () => {
	const t = await topic({ default_strategy: 'direct' });
	for (let i = 0; i < 6; i++) await publish({ topic: t.name, payload: i });
	const a = await consume(t.name, { max: 10, consumer: 'a' });
	const b = await consume(t.name, { max: 10, consumer: 'b' });
	assert.equal(a.length, 6);
	assert.equal(b.length, 0);
});

test('load-balanced round robin: three consumers share a queue evenly and disjointly', async () => {
	const t = await topic({ type: 'queue' });
	const cs = ['c1', 'c2', 'c3'];
	for (const c of cs) assert.deepEqual(await consume(t.name, { consumer: c }), []);
	const sent = [];
	for (let i = 0; i < 30; i++) sent.push((await publish({ topic: t.name, payload: i })).id);
	const got = await Promise.all(cs.map((c) => consume(t.name, { consumer: c, max: 30 })));
	assert.deepEqual(got.map((g) => g.length), [10, 10, 10]);
	const all = got.flat().map((m) => m.id).sort();
	assert.deepEqual(all, [...sent].sort());
	assert.equal(new Set(all).size, 30);
});

test('load-balanced least loaded: nobody gets ahead of the least busy consumer', async () => {
	const t = await topic({ default_strategy: 'least_loaded' });
	assert.deepEqual(await consume(t.name, { consumer: 'b' }), []);
	for (let i = 0; i < 10; i++) await publish({ topic: t.name, payload: i });
	const a1 = await consume(t.name, { consumer: 'a', max: 10 });
	assert.equal(a1.length, 1, 'b holds nothing, so a may hold one more than b');
	const b1 = await consume(t.name, { consumer: 'b', max: 10 });
	assert.equal(b1.length, 2);
	const a2 = await consume(t.name, { consumer: 'a', max: 10 });
	assert.equal(a2.length, 2, 'a holds 1, b 2: a may take 2');
	for (const m of [...b1]) await ack(m.id);
	const b2 = await consume(t.name, { consumer: 'b', max: 10 });
	assert.equal(b2.length, 4, 'b holds 0 now, a 3: b may take 4');
	const ids2 = [...a1, ...a2, ...b1, ...b2].map((m) => m.id);
	assert.equal(new Set(ids2).size, 9);
});

test('priority: higher first, FIFO within a priority', async () => {
	const t = await topic({ default_strategy: 'priority' });
	const pr = [1, 5, 9, 5, 0, 9];
	const sent = [];
	for (const p of pr) sent.push({ p, id: (await publish({ topic: t.name, payload: p, priority: p })).id });
	const msgs = await consume(t.name, { max: 10 });
	const want = [...sent].sort((x, y) => y.p - x.p || sent.indexOf(x) - sent.indexOf(y));
	assert.deepEqual(ids(msgs), want.map((x) => x.id));
	// A plain (non-priority) subscription of the same topic keeps publish order.
	await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 'fifo', strategy: 'direct' }, 'consume');
	const later = [];
	for (const p of [1, 9]) later.push((await publish({ topic: t.name, payload: p, priority: p })).id);
	assert.deepEqual(ids(await consume(t.name, { subscription: 'fifo', max: 10 })), later);
});

test('content-based: header filters and JSON-pointer payload filters', async () => {
	const t = await topic({ type: 'pubsub' });
	await expect(400, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 'x', strategy: 'content' }, 'consume');
	await expect(400, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
		{ subscription: 'x', strategy: 'content', filter: { payload: [{ pointer: 'nope', equals: 1 }] } }, 'consume');
	const sub = await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, {
		subscription: 'big-eu-orders', strategy: 'content',
		filter: {
			headers: [{ name: 'type', equals: 'order' }],
			payload: [{ pointer: '/region', equals: 'eu' }, { pointer: '/lines/0/qty', equals: 100 }],
		},
	}, 'consume');
	assert.equal(sub.filter.payload[1].equals, 100);
	const cases = [
		[{ type: 'order' }, { region: 'eu', lines: [{ qty: 100 }] }, true],
		[{ type: 'order' }, { region: 'us', lines: [{ qty: 100 }] }, false],
		[{ type: 'refund' }, { region: 'eu', lines: [{ qty: 100 }] }, false],
		[{}, { region: 'eu', lines: [{ qty: 100 }] }, false],
		[{ type: 'order' }, { region: 'eu', lines: [{ qty: '100' }] }, false],
		[{ type: 'order' }, { region: 'eu' }, false],
		[{ type: 'order', x: 'y' }, { region: 'eu', lines: [{ qty: 100 }, 2] }, true],
	];
	const want = [];
	for (const [headers, payload, match] of cases) {
		const r = await publish({ topic: t.name, headers, payload });
		assert.equal(r.subscriptions, match ? 2 : 1);
		if (match) want.push(r.id);
	}
	assert.deepEqual(ids(await consume(t.name, { subscription: 'big-eu-orders', max: 20 })), want);
	assert.equal((await consume(t.name, { max: 20 })).length, cases.length, 'default gets all');
});

test('exactly-once: duplicate publishes stored once, concurrent consumers never share a message', async () => {
	const t = await topic({ guarantee: 'exactly_once', ack_deadline_ms: 5000, default_strategy: 'direct' });
	await expect(400, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 1 }, 'produce');
	// 20 concurrent publishes with one key: one message, every answer names it.
	const dup = await Promise.all(Array.from({ length: 20 }, () =>
		call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 'once', idempotency_key: 'k-1' }, 'produce')));
	const dupIds = new Set(dup.map((r) => r.body.id));
	assert.equal(dupIds.size, 1, JSON.stringify(dup.map((r) => r.body)));
	assert.equal(dup.filter((r) => r.status === 202).length, 1, 'one 202, the others 200');
	assert.equal(dup.filter((r) => r.status === 200 && r.body.duplicate).length, 19);
	// The Idempotency-Key header works as the field does.
	const h1 = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 'h' }, 'produce', { 'Idempotency-Key': 'hdr-1' });
	const h2 = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 'h' }, 'produce', { 'Idempotency-Key': 'hdr-1' });
	assert.equal(h1.status, 202);
	assert.equal(h2.body.id, h1.body.id);
	// 60 more, each published twice concurrently.
	const keys = Array.from({ length: 60 }, (_, i) => `k-${i + 2}`);
	const pubs = await Promise.all(keys.flatMap((k) => [0, 1].map(() =>
		call('POST', '/api/v1/messages/publish', { topic: t.name, payload: k, idempotency_key: k }, 'produce'))));
	assert.ok(pubs.every((p) => p.status === 202 || p.status === 200), JSON.stringify(pubs.map((p) => p.status)));
	const stored = new Set(pubs.map((p) => p.body.id));
	assert.equal(stored.size, 60);
	// 8 concurrent consumers take everything: each message exactly once.
	const seen = [];
	let acks = 0;
	await Promise.all(Array.from({ length: 8 }, async (_, c) => {
		for (;;) {
			const msgs = await consume(t.name, { max: 5, wait_ms: 300, consumer: `c${c}` });
			if (!msgs.length) return;
			for (const m of msgs) {
				seen.push(m.id);
				await ack(m.id, { lease_id: m.lease_id });
				acks++;
			}
		}
	}));
	assert.equal(seen.length, 62, 'one delivery per stored message');
	assert.equal(new Set(seen).size, 62);
	assert.equal(acks, 62);
	// Acks on exactly-once topics need the lease.
	const { id } = await publish({ topic: t.name, payload: 1, idempotency_key: 'last' });
	const [m] = await consume(t.name);
	await expect(400, 'POST', `/api/v1/messages/${id}/ack`, {}, 'consume');
	await ack(id, { lease_id: m.lease_id });
	const again = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 1, idempotency_key: 'last' }, 'produce');
	assert.equal(again.body.id, id);
	assert.deepEqual(await consume(t.name, { wait_ms: 300 }), [], 'a duplicate after the ack is not delivered again');
});

test('ordering keys: one in flight per key, in publish order, across nacks', async () => {
	const t = await topic({ ordering_keys: true, ack_deadline_ms: 5000 });
	const sent = { a: [], b: [] };
	for (let i = 0; i < 4; i++)
		for (const k of ['a', 'b']) sent[k].push((await publish({ topic: t.name, payload: `${k}${i}`, ordering_key: k })).id);
	const free = (await publish({ topic: t.name, payload: 'free' })).id;
	const got = { a: [], b: [] };
	let first = await consume(t.name, { max: 10 });
	assert.deepEqual(first.map((m) => m.payload).sort(), ['a0', 'b0', 'free']);
	// a's head fails once: a waits for it; b goes on.
	for (const m of first) {
		if (m.payload === 'a0')
			await expect(200, 'POST', `/api/v1/messages/${m.id}/nack`, { delay_ms: 300 }, 'consume');
		else {
			if (m.ordering_key) got[m.ordering_key].push(m.id);
			await ack(m.id);
		}
	}
	for (let round = 0; round < 20 && (got.a.length < 4 || got.b.length < 4); round++) {
		const msgs = await consume(t.name, { max: 10, wait_ms: 1000 });
		const perKey = {};
		for (const m of msgs) perKey[m.ordering_key] = (perKey[m.ordering_key] || 0) + 1;
		for (const k in perKey) assert.equal(perKey[k], 1, `two of key ${k} in flight at once`);
		for (const m of msgs) {
			got[m.ordering_key].push(m.id);
			await ack(m.id);
		}
	}
	assert.deepEqual(got.a, sent.a);
	assert.deepEqual(got.b, sent.b);
	assert.ok(free);
});

test('a topic with a schema subject: publishes validated by the registry, violations named by pointer', async () => {
	const subject = uniq('orders-value');
	// no schema registered yet: refused, nothing stored
	const t = await topic({ schema_subject: subject });
	assert.equal(t.schema_subject, subject);
	let r = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: { id: 1 } }, 'produce');
	assert.equal(r.status, 400, JSON.stringify(r.body));
	await expect(201, 'POST', '/api/v1/schemas', {
		subject,
		schema: {
			type: 'object', required: ['id', 'qty'],
			properties: { id: { type: 'integer' }, qty: { type: 'integer', minimum: 1 } },
		},
	});
	r = await call('POST', '/api/v1/messages/publish',
		{ topic: t.name, payload: { id: 'x', qty: 0 } }, 'produce');
	assert.equal(r.status, 400, JSON.stringify(r.body));
	// each failing member named by its pointer (the validator also reports the enclosing object)
	const fields = (r.body.errors ?? []).map((v) => v.field);
	assert.ok(fields.includes('payload/id') && fields.includes('payload/qty'), JSON.stringify(r.body));
	assert.ok(fields.every((f) => f === 'payload' || f.startsWith('payload/')), JSON.stringify(r.body));
	assert.deepEqual(await consume(t.name), []);
	const ok = await publish({ topic: t.name, payload: { id: 7, qty: 2 } });
	const got = await consume(t.name);
	assert.deepEqual(got.map((m) => m.id), [ok.id]);
	assert.deepEqual(got[0].payload, { id: 7, qty: 2 });
});

test('schema validation uses the publisher\'s tenant: another tenant\'s subject of the same name is not seen', async () => {
	const subject = uniq('tenant-value');
	const t = await topic({ schema_subject: subject });
	await expect(201, 'POST', '/api/v1/schemas', {
		subject, schema: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } },
	});
	await publish({ topic: t.name, payload: { id: 1 } });
	// the other tenant's topic names the same subject, which it never registered: refused as a
	// subject without a schema, though the payload matches the first tenant's schema
	await expect(201, 'POST', '/api/v1/topics', { name: t.name, schema_subject: subject }, 'other');
	const r = await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: { id: 1 } }, 'other');
	assert.equal(r.status, 400, JSON.stringify(r.body));
	assert.match(JSON.stringify(r.body), /no active schema/);
	assert.deepEqual(await consume(t.name, {}, 'other'), []);
});

test('cached routes: a new subscription and a changed topic are seen by the next publish', async () => {
	const metric = async (name) => {
		const text = await (await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`)).text();
		const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
		return m ? Number(m[1]) : 0;
	};
	const t = await topic({ type: 'pubsub' });
	const first = await publish({ topic: t.name, payload: 1 });
	assert.equal(first.subscriptions, 1);
	const reads = await metric('pubsub_route_reads_total');
	const stale = await metric('pubsub_route_stale_total');
	const second = await publish({ topic: t.name, payload: 2 });
	assert.equal(second.subscriptions, 1);
	assert.equal(await metric('pubsub_route_reads_total'), reads, 'the second publish used the cached route');
	// A subscription created since the route was cached: the next publish finds the cached
	// route stale, routes again and reaches it; the earlier ones do not.
	await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 'late' }, 'consume');
	const third = await publish({ topic: t.name, payload: 3 });
	assert.equal(third.subscriptions, 2);
	assert.equal(await metric('pubsub_route_stale_total'), stale + 1);
	assert.equal(await metric('pubsub_route_reads_total'), reads + 1);
	assert.deepEqual(ids(await consume(t.name, { subscription: 'late', max: 10 })), [third.id]);
	// A changed topic: the cached route still says at_least_once, the publish statement finds
	// it stale, and the route read again requires the idempotency key of exactly_once.
	await expect(200, 'PUT', `/api/v1/topics/${t.name}`, { guarantee: 'exactly_once' });
	await expect(400, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 4 }, 'produce');
	assert.equal(await metric('pubsub_route_stale_total'), stale + 2);
	// A deleted topic: the cached route (exactly_once) refuses the keyless publish, and a
	// refusal made with a cached route is checked again with the store's: 404.
	await expect(200, 'DELETE', `/api/v1/topics/${t.name}`);
	await expect(404, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 5 }, 'produce');
	// A publish that passes the cached route's checks: the publish statement finds the topic
	// gone, stores nothing, and the route read again answers 404.
	const u = await topic({});
	await publish({ topic: u.name, payload: 1 });
	await expect(200, 'DELETE', `/api/v1/topics/${u.name}`);
	await expect(404, 'POST', '/api/v1/messages/publish', { topic: u.name, payload: 2 }, 'produce');
	assert.equal(await metric('pubsub_route_stale_total'), stale + 3);
});

test('service metrics count publishes, acks and dead letters', async () => {
	const r = await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`);
	const text = await r.text();
	for (const name of ['pubsub_published_total', 'pubsub_acked_total', 'pubsub_nacked_total',
		'pubsub_delivered_total', 'pubsub_redelivered_total', 'pubsub_dead_lettered_total',
		'pubsub_validation_failures_total', 'pubsub_publish_to_ack_seconds_bucket'])
		assert.match(text, new RegExp(`^${name}\\{`, 'm'), name);
});
