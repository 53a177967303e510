// group.test.mjs: concurrent publish batches share one group commit (services/pubsub/commit.c),
// run by tests/integration/pubsub_group_test.sh with SB_PUBSUB_PUBLISH_GROUP_ROWS=32.
// docs/pubsub.md "Group commit of publishes". To make the grouping certain rather than likely,
// a psql session holds the topic's row FOR UPDATE while the batches are sent: the first
// group's statement waits for it (a publish locks its topic FOR KEY SHARE) and the other
// batches queue behind that group meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { call, expect, topic, consume, sleep, sql } from './lib.mjs';

const DSN = process.env.SB_TEST_PG_DSN;
// SB_PUBSUB_CURSOR as sb-pubsub was started with (pubsub_group_test.sh)
const cursorOn = process.env.SB_PUBSUB_CURSOR !== 'false';
const batch = (body) => call('POST', '/api/v1/messages/publish-batch', body, 'produce');

// The histogram pubsub_publish_group_size: cumulative counts per bucket ("+Inf" included).
async function groups() {
	const text = await (await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`)).text();
	const b = {};
	for (const m of text.matchAll(/^pubsub_publish_group_size_bucket\{le="([^"]+)"\} (\d+)$/gm))
		b[m[1]] = Number(m[2]);
	assert.ok(b['+Inf'] !== undefined, 'pubsub_publish_group_size is exported');
	return b;
}

// waitFor polls the database until query answers 't' (at most 10 s).
async function waitFor(query, what) {
	for (let i = 0; sql(query) !== 't'; i++) {
		assert.ok(i < 400, what);
		await sleep(25);
	}
}

// hold locks topic `name`'s row FOR UPDATE in a psql session of its own (application_name
// group_test_hold) and resolves once the lock is held, with a function that commits the
// session (releasing the lock) and resolves when it ended.
async function hold(name) {
	const p = spawn('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', DSN], {
		stdio: ['pipe', 'ignore', 'inherit'], env: { ...process.env, PGAPPNAME: 'group_test_hold' },
	});
	const ended = new Promise((resolve, reject) => p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`psql ${c}`)))));
	p.stdin.write(`BEGIN; SELECT 1 FROM pubsub.topics WHERE name = '${name}' FOR UPDATE; SELECT 'held';\n`);
	// the session is idle in its transaction once both statements ran, the lock taken
	await waitFor(`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'group_test_hold' AND state = 'idle in transaction' AND query LIKE '%held%')`, 'psql took the topic lock');
	return () => {
		p.stdin.end('COMMIT;\n');
		return ended;
	};
}

// queued sends lead() while topic `name` is locked, waits until its statement waits for the
// lock (the committer's group, blocked), then sends rest() (an array of requests), which queue in
// pubsub behind it meanwhile, and releases the lock after 700 ms: they are stored as the next
// groups. Answers [lead's answer, ...rest's answers].
// With during, it is called once the others queue, before the release, and must answer within 3
// s (while the lock is still held).
async function queued(name, lead, rest, during) {
	const release = await hold(name);
	const first = lead();
	await waitFor(`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name <> 'group_test_hold')`, 'the leading publish waits for the lock');
	const others = rest();
	await sleep(700);
	if (during) {
		const r = await Promise.race([during(), sleep(3000).then(() => 'timed out')]);
		assert.notEqual(r, 'timed out', 'a request answered while publishes waited for their group');
	}
	await release();
	return Promise.all([first, ...others]);
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
	const send = (b) => batch({ topic: t.name, messages: Array.from({ length: 8 }, (_, i) => ({ payload: { b, i } })) });
	// Meanwhile another topic is read: the queued publishes hold none of pubsub's pooled
	// connections (SB_PUBSUB_DB_CONNECTIONS, 4); the blocked group runs on the committer's own.
	const other = await topic({});
	const res = await queued(t.name, () => send(0), () => Array.from({ length: 11 }, (_, b) => send(b + 1)),
		() => expect(200, 'GET', `/api/v1/topics/${other.name}`));
	for (const r of res) assert.equal(r.status, 202, JSON.stringify(r.body));
	const after = await groups();
	const d = (le) => after[le] - before[le];
	// 12 batches of 8 rows: the first leads alone and waits on the lock; the 11 queued behind
	// it go by groups of at most four batches (32 rows, the cap): 32, 32, 24
	const seen = JSON.stringify({ before, after });
	assert.ok(d('+Inf') <= 6, `fewer statements than batches: ${seen}`);
	assert.ok(d('+Inf') - d('16') >= 2, `groups of more than 16 rows: ${seen}`);
	assert.equal(d('32'), d('+Inf'), `no group above SB_PUBSUB_PUBLISH_GROUP_ROWS: ${seen}`);
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
		const good = (b) => batch({ topic: t.name, messages: Array.from({ length: 4 }, (_, i) => ({ payload: { b, i } })) });
		// the bad batch queues with four good ones behind the leading good batch: one group
		const [lr, br, ...gr] = await queued(t.name, () => good(0), () => [
			batch({ topic: t.name, messages: [{ payload: { ok: 1 } }, { payload: 'poison' }] }),
			...Array.from({ length: 4 }, (_, b) => good(b + 1)),
		]);
		gr.push(lr);
		// a check violation is answered as a payload the store refuses (400 on messages)
		assert.equal(br.status, 400, JSON.stringify(br.body));
		assert.match(br.headers.get('content-type'), /application\/problem\+json/);
		assert.deepEqual(br.body.errors.map((e) => e.field), ['messages']);
		for (const r of gr) assert.equal(r.status, 202, JSON.stringify(r.body));
		const after = await groups();
		// the failed group is observed too; its batches were then stored one statement each
		assert.ok(after['+Inf'] - after['8'] > before['+Inf'] - before['8'], `the batches went in a group of more than 8 rows: ${JSON.stringify({ before, after })}`);
	} finally {
		sql('ALTER TABLE pubsub.messages DROP CONSTRAINT group_test_poison');
	}
	const got = (await drain(t.name)).filter((m) => m.payload !== 'warm');
	assert.equal(got.length, 20, 'every good batch stored, nothing of the bad one');
	assert.ok(got.every((m) => typeof m.payload.b === 'number'));
});

test('one new idempotency key in four batches of a group: stored once, the others answer its id', async () => {
	const t = await topic({});
	await expect(202, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 'warm' }, 'produce');
	const send = (b) => batch({
		topic: t.name,
		messages: [{ payload: { b, k: 'own' }, idempotency_key: `own-${b}` }, { payload: { b, k: 'shared' }, idempotency_key: 'shared' }],
	});
	// the four batches queue together behind a leading publish: one group, whose statement
	// fails on the key (ON CONFLICT cannot touch a row twice) and is then run batch by batch
	const [lead, ...res] = await queued(t.name,
		() => call('POST', '/api/v1/messages/publish', { topic: t.name, payload: 'warm' }, 'produce'),
		() => Array.from({ length: 4 }, (_, b) => send(b)));
	assert.equal(lead.status, 202);
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
		for (const table of ['deliveries', 'acked_deliveries'])
			assert.equal(sql(`SELECT count(*) FROM pubsub.${table} d WHERE NOT EXISTS (SELECT 1 FROM pubsub.messages m WHERE m.id = d.message_id) OR NOT EXISTS (SELECT 1 FROM pubsub.subscriptions s WHERE s.id = d.sub_id)`), '0', `no row of ${table} without its message and subscription`);
	}
});

test('retention deletes the deliveries of the messages it deletes', async () => {
	const t = await topic({ retention_ms: 1000 });
	await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`, { subscription: 'second', strategy: 'direct' });
	const r = await batch({ topic: t.name, messages: [{ payload: 'a' }, { payload: 'b' }] });
	assert.equal(r.status, 202, JSON.stringify(r.body));
	const kept = await expect(202, 'POST', '/api/v1/messages/publish', { topic: t.name, payload: 'kept' }, 'produce');
	const ids = r.body.ids.map((x) => `'${x}'`).join(',');
	for (const sub of ['default', 'second']) {
		const got = await consume(t.name, { max: 2, subscription: sub });
		assert.deepEqual(got.map((m) => m.id), r.body.ids);
		await expect(200, 'POST', '/api/v1/messages/ack', { acks: got.map((m) => ({ id: m.id, subscription: sub })) }, 'consume');
	}
	// A subscription in mode 'rows' keeps a row per delivery; a cursor one (direct or fan_out
	// without filter while SB_PUBSUB_CURSOR is on, migration 007) none: its acks empty a lease.
	const rows = Number(sql(`SELECT count(*) FROM pubsub.subscriptions s JOIN pubsub.topics t ON t.id = s.topic_id WHERE t.name = '${t.name}' AND s.mode = 'rows'`));
	assert.equal(rows, cursorOn ? 1 : 2, 'the modes SB_PUBSUB_CURSOR gives (default: round_robin, rows)');
	// acknowledged deliveries leave deliveries for acked_deliveries (migration 005)
	assert.equal(sql(`SELECT count(*) FROM pubsub.deliveries WHERE message_id IN (${ids})`), '0');
	assert.equal(sql(`SELECT count(*) FROM pubsub.acked_deliveries WHERE message_id IN (${ids})`), String(2 * rows));
	assert.equal(sql(`SELECT count(*) FROM pubsub.leases l JOIN pubsub.subscriptions s ON s.id = l.sub_id JOIN pubsub.topics t ON t.id = s.topic_id WHERE t.name = '${t.name}'`), '0', 'no lease left');
	// SB_PUBSUB_RETENTION_PASS_MS=200 (pubsub_group_test.sh): gone within a few passes
	await waitFor(`SELECT NOT EXISTS (SELECT 1 FROM pubsub.messages WHERE id IN (${ids}))`, 'the acknowledged messages were deleted');
	assert.equal(sql(`SELECT count(*) FROM pubsub.acked_deliveries WHERE message_id IN (${ids})`), '0', 'their deliveries went with them');
	// the unacknowledged message stays (past both cursors), with its two deliveries in mode rows
	assert.equal(sql(`SELECT count(*) FROM pubsub.messages WHERE id = '${kept.id}'`), '1', 'the unacknowledged message stays');
	assert.equal(sql(`SELECT count(*) FROM pubsub.deliveries WHERE message_id = '${kept.id}'`), String(rows));
	const got = await consume(t.name, { max: 1, subscription: 'second' });
	assert.deepEqual(got.map((m) => m.id), [kept.id], 'and is still delivered');
});
