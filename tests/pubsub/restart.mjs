// restart.mjs publish FILE | verify FILE: the restart scenario of pubsub_test.sh. "publish"
// creates a topic with two subscriptions, publishes 200 messages (every one acknowledged 202),
// leases 20 of them without acking, and writes what it was told to FILE. After pubsub is killed
// and PostgreSQL crashed and restarted, "verify" consumes both subscriptions and checks that
// every acknowledged publish is delivered to each, the 20 leased ones included (their lease
// ran out meanwhile or runs out now), and nothing else.
import { readFileSync, writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { expect, uniq, publish, consume, ack } from './lib.mjs';

const [mode, file] = process.argv.slice(2);
if (mode === 'publish') {
	const name = uniq('restart');
	await expect(201, 'POST', '/api/v1/topics', { name, type: 'pubsub', ack_deadline_ms: 1000 });
	await expect(201, 'POST', `/api/v1/topics/${name}/subscriptions`, { subscription: 'other' }, 'consume');
	const ids = [];
	await Promise.all(Array.from({ length: 4 }, async (_, w) => {
		for (let i = 0; i < 50; i++) {
			const r = await publish({ topic: name, payload: { w, i }, headers: { w: String(w) } });
			assert.equal(r.subscriptions, 2);
			ids.push(r.id);
		}
	}));
	const leased = await consume(name, { max: 20 });
	assert.equal(leased.length, 20);
	writeFileSync(file, JSON.stringify({ name, ids }));
	console.log(`published ${ids.length} to ${name}, leased 20 unacked`);
} else if (mode === 'verify') {
	const { name, ids } = JSON.parse(readFileSync(file, 'utf8'));
	for (const sub of ['default', 'other']) {
		const seen = new Set();
		const deadline = Date.now() + 30000;
		while (seen.size < ids.length && Date.now() < deadline) {
			const msgs = await consume(name, { subscription: sub, max: 100, wait_ms: 1000 });
			for (const m of msgs) {
				assert.ok(!seen.has(m.id), `${m.id} delivered twice to ${sub} after its ack`);
				seen.add(m.id);
				await ack(m.id, { subscription: sub });
			}
		}
		const missing = ids.filter((id) => !seen.has(id));
		assert.deepEqual(missing, [], `${sub}: acknowledged publishes lost`);
		assert.equal(seen.size, ids.length, `${sub}: unexpected messages`);
		console.log(`${sub}: all ${ids.length} delivered after the restart`);
	}
} else {
	console.error('usage: restart.mjs publish|verify FILE');
	process.exit(2);
}
