// group.test.mjs: concurrent publish batches share one group commit (services/pubsub/commit.c),
// run by tests/integration/pubsub_group_test.sh with SB_PUBSUB_PUBLISH_GROUP_ROWS=32.
// docs/pubsub.md "Group commit of batches". To make the grouping certain rather than likely,
// a psql session holds the topic's row FOR UPDATE while the batches are sent: the first
// group's statement waits for it (a publish locks its topic FOR KEY SHARE) and the other
// batches queue behind that group meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { call, expect, topic, consume, sleep } from './lib.mjs';

const DSN = process.env.SB_TEST_PG_DSN;
const batch = (body) => call('POST', '/api/v1/messages/publish-batch', body, 'produce');
const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', DSN, '-c', q], { encoding: 'utf8' }).trim();

// The histogram pubsub_publish_group_size: cumulative counts per bucket ("+Inf" included).
async function groups() {
	const text = await (await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`)).text();
	const b = {};
	for (const m of text.matchAll(/^pubsub_publish_group_size_bucket\{le="([^"]+)"\} (\d+)$/gm))
		b[m[1]] = Number(m[2]);
	assert.ok(b['+Inf'] !== undefined, 'pubsub_publish_group_size is exported');
	return b;
}

// hold locks topic `name`'s row for ms in a psql session of its own; resolves once the lock is
// held, with a promise of the session's end.
async function hold(name, ms) {
	const p = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', DSN], { stdio: ['pipe', 'pipe', 'inherit'] });
	let out = '';
	const ended = new Promise((resolve, reject) => p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`psql ${c}`)))));
	p.stdout.on('data', (d) => { out += d; });
	p.stdin.end(`BEGIN; SELECT 'locked' FROM pubsub.topics WHERE name = '${name}' FOR UPDATE;\n` +
		`SELECT pg_sleep(${ms / 1000}); COMMIT;\n`);
	for (let i = 0; !out.includes('locked'); i++) {
		assert.ok(i < 200, 'psql took the topic lock');
		await sleep(25);
	}
	return ended;
}

async function drain(name) {
	const got = [];
	for (;;) {
		const msgs = await consume(name, { max: 100 });
		if (!msgs.length) return got;
		got.push(...msgs);
		await expect(200, 'POST', '/api/v1/messages/ack', { acks: msgs.map((m) => ({ id: m.id })) }, 'consume');
	}
}

test('concurrent batches are stored by one statement per group, at most SB_PUBSUB_PUBLISH_GROUP_ROWS rows', async () => {
	const t = await topic({});
	// a first publish reads the topic's route; the batches below use the cached one
	await expect(202, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 'warm' }, 'produce');
	const before = await groups();
	const ended = await hold(t.name, 1500);
	const sent = Array.from({ length: 12 }, (_, b) => batch({
		topic: t.name, messages: Array.from({ length: 8 }, (_, i) => ({ payload: { b, i } })),
	}));
	const res = await Promise.all(sent);
	await ended;
	for (const r of res) assert.equal(r.status, 202, JSON.stringify(r.body));
	const after = await groups();
	const d = (le) => after[le] - before[le];
	// 12 batches of 8 rows: the first group waited on the lock with one batch or a few; the
	// queued rest went by groups of four batches (32 rows, the cap)
	assert.ok(d('+Inf') < 12, `fewer statements than batches: ${d('+Inf')} groups`);
	assert.ok(d('+Inf') - d('8') >= 2, `groups of more than 8 rows: ${JSON.stringify({ before, after })}`);
	assert.equal(d('32'), d('+Inf'), 'no group above SB_PUBSUB_PUBLISH_GROUP_ROWS');
	// every message stored once, each batch in its order
	const got = (await drain(t.name)).filter((m) => m.payload !== 'warm');
	assert.equal(got.length, 96);
	assert.equal(new Set(got.map((m) => m.id)).size, 96);
	for (let b = 0; b < 12; b++) {
		const mine = got.filter((m) => m.payload.b === b);
		assert.deepEqual(mine.map((m) => m.payload.i), [0, 1, 2, 3, 4, 5, 6, 7], `batch ${b} in order`);
		assert.deepEqual(mine.map((m) => m.id), res[b].body.ids, `batch ${b}'s ids`);
	}
});

test('a batch PostgreSQL refuses fails alone: the other batches of its group are stored', async () => {
	const t = await topic({});
	await expect(202, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 'warm' }, 'produce');
	// The gateway and pubsub let no payload through that PostgreSQL's json input refuses, so
	// the store refuses one here: a check constraint of this test's own (removed afterwards)
	// fails every statement that inserts the payload "poison".
	sql(`ALTER TABLE pubsub.messages ADD CONSTRAINT group_test_poison CHECK (payload::text <> '"poison"') NOT VALID`);
	try {
		const before = await groups();
		const ended = await hold(t.name, 1000);
		const bad = batch({ topic: t.name, messages: [{ payload: { ok: 1 } }, { payload: 'poison' }] });
		const good = Array.from({ length: 5 }, (_, b) => batch({
			topic: t.name, messages: Array.from({ length: 4 }, (_, i) => ({ payload: { b, i } })),
		}));
		const [br, ...gr] = await Promise.all([bad, ...good]);
		await ended;
		// a check violation is answered as a payload the store refuses (400 on messages)
		assert.equal(br.status, 400, JSON.stringify(br.body));
		assert.match(br.headers.get('content-type'), /application\/problem\+json/);
		assert.deepEqual(br.body.errors.map((e) => e.field), ['messages']);
		for (const r of gr) assert.equal(r.status, 202, JSON.stringify(r.body));
		const after = await groups();
		// the failed group is observed too; its batches were then stored one statement each
		assert.ok(after['+Inf'] - after['8'] > before['+Inf'] - before['8'], 'the batches went in a group of more than 8 rows');
	} finally {
		sql('ALTER TABLE pubsub.messages DROP CONSTRAINT group_test_poison');
	}
	const got = (await drain(t.name)).filter((m) => m.payload !== 'warm');
	assert.equal(got.length, 20, 'every good batch stored, nothing of the bad one');
	assert.ok(got.every((m) => typeof m.payload.b === 'number'));
});

test('one new idempotency key in two batches of a group: stored once, the other answers its id', async () => {
	const t = await topic({});
	await expect(202, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 'warm' }, 'produce');
	const ended = await hold(t.name, 1000);
	// the first batch may lead alone; the others queue together
	const res = await Promise.all(Array.from({ length: 4 }, (_, b) => batch({
		topic: t.name,
		messages: [{ payload: { b, k: 'own' }, idempotency_key: `own-${b}` }, { payload: { b, k: 'shared' }, idempotency_key: 'shared' }],
	})));
	await ended;
	for (const r of res) assert.ok(r.status === 202, JSON.stringify(r.body));
	const shared = res.map((r) => r.body.results[1]);
	assert.equal(shared.filter((x) => !x.duplicate).length, 1, JSON.stringify(shared));
	assert.equal(new Set(shared.map((x) => x.id)).size, 1, 'every batch answers the first id');
	const got = (await drain(t.name)).filter((m) => m.payload !== 'warm');
	assert.equal(got.length, 5, 'four own keys and one shared');
	assert.equal(got.filter((m) => m.payload.k === 'shared').length, 1);
});

test('a topic deleted while publishes race it leaves no message or delivery behind', async () => {
	for (let round = 0; round < 3; round++) {
		const t = await topic({});
		await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 'second', strategy: 'direct' });
		const id = sql(`SELECT id FROM pubsub.topics WHERE name = '${t.name}'`);
		let stop = false;
		const status = {};
		const worker = async (w) => {
			for (let i = 0; !stop; i++) {
				const r = i % 2 ? await batch({ topic: t.name, messages: [{ payload: { w, i } }, { payload: { w, i, n: 2 } }] })
					: await call('POST', '/api/v1/messages/publish', { topic: t.name, payload: { w, i } }, 'produce');
				status[r.status] = (status[r.status] || 0) + 1;
				if (r.status === 404) return;
			}
		};
		const workers = Array.from({ length: 6 }, (_, w) => worker(w));
		await sleep(150 + 100 * round);
		await expect(200, 'DELETE', `/api/v1/topics/${t.name}`);
		await sleep(100);
		stop = true;
		await Promise.all(workers);
		assert.ok(status[202] > 0, `publishes before the delete: ${JSON.stringify(status)}`);
		assert.deepEqual(Object.keys(status).filter((s) => s !== '202' && s !== '404'), [], JSON.stringify(status));
		assert.equal(sql(`SELECT count(*) FROM pubsub.messages WHERE topic_id = ${id}`), '0', 'no message of the deleted topic');
		assert.equal(sql('SELECT count(*) FROM pubsub.deliveries d WHERE NOT EXISTS (SELECT 1 FROM pubsub.messages m WHERE m.id = d.message_id) OR NOT EXISTS (SELECT 1 FROM pubsub.subscriptions s WHERE s.id = d.sub_id)'), '0', 'no delivery without its message and subscription');
	}
});
