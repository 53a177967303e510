// push_crash.mjs READY_FILE: a push whose sb-pubsub is killed mid-POST is pushed again after the
// restart (run by tests/integration/pubsub_push_test.sh, which kills pubsub with SIGKILL once
// READY_FILE exists and starts it again). The receiver holds the first request of the message
// without answering; every later one gets 204. Exits 0 when the message arrived again (attempt 2,
// valid signature) and is acknowledged; non-zero otherwise.
import assert from 'node:assert/strict';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { call, expect, uniq, topic, publish, sleep } from './lib.mjs';

const SECRET = 'crash-test-secret-0123456789';
const ready = process.argv[2];
const got = [];
const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const raw = Buffer.concat(chunks).toString('utf8');
		got.push({ headers: req.headers, raw, body: JSON.parse(raw) });
		if (got.length === 1) {
			writeFileSync(ready, 'holding\n'); // the test kills pubsub now; no answer
			return;
		}
		res.writeHead(204);
		res.end();
	});
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const t = await topic({ type: 'pubsub', max_delivery_attempts: 5 });
const sub = uniq('crash');
await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
	{ subscription: sub, push_endpoint: `http://127.0.0.1:${server.address().port}/in`, secret: SECRET }, 'consume');
const { id } = await publish({ topic: t.name, payload: { crash: 1 } });
for (const end = Date.now() + 40000; Date.now() < end && got.length < 2; ) await sleep(50);
assert.ok(got.length >= 2, `pushed ${got.length} time(s) only`);
const again = got[1];
assert.equal(again.body.id, id);
assert.equal(again.body.attempt, 2);
const ts = again.headers['switchboard-timestamp'];
assert.equal(again.headers['switchboard-signature'],
	'v1=' + createHmac('sha256', SECRET).update(`${ts}.${again.raw}`).digest('hex'));
let d;
for (let i = 0; i < 100; i++) {
	const r = await call('GET', `/api/v1/messages/${id}`, undefined, 'consume');
	if (r.status === 200) {
		d = r.body.deliveries.find((x) => x.subscription === sub);
		if (d.state === 'acked') break;
	}
	await sleep(100);
}
assert.equal(d?.state, 'acked', JSON.stringify(d));
assert.equal(d.attempt, 2);
assert.deepEqual(d.errors.map((e) => e.reason), ['ack deadline expired']);
server.close();
server.closeAllConnections();
console.log(`push_crash: ${id} pushed again after the kill (attempt 2) and acknowledged`);
