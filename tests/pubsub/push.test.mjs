// push.test.mjs: push subscriptions of sb-pubsub through the gateway, against this file's own
// loopback receiver (tests/integration/pubsub_push_test.sh starts pubsub with
// SB_PUBSUB_PUSH_ALLOW_PRIVATE=true, a 200 ms backoff base and a 3.2 s ceiling). PUSH_MODE=refuse
// runs only the creation rules of a pubsub that does not allow private addresses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { call, expect, uniq, topic, publish, sleep } from './lib.mjs';

const SECRET = 'push-test-secret-0123456789';

if (process.env.PUSH_MODE === 'refuse') {
	test('a private, loopback or link-local push endpoint is refused at creation', async () => {
		const t = await topic({ type: 'pubsub' });
		for (const url of ['http://127.0.0.1:9/hook', 'http://localhost:8080/', 'http://10.1.2.3/x',
			'http://192.168.0.10/', 'http://169.254.169.254/latest', 'http://[::1]:80/',
			'http://[fd00::1]/', 'https://example.com/', 'ftp://example.com/', 'not a url']) {
			const b = await expect(400, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
				{ subscription: uniq('p'), push_endpoint: url }, 'consume');
			assert.ok(b.errors.some((e) => e.field === 'push_endpoint'), `${url}: ${JSON.stringify(b)}`);
		}
		const subs = await expect(200, 'GET', `/api/v1/topics/${t.name}/subscriptions`, undefined, 'consume');
		assert.deepEqual(subs.subscriptions.map((s) => s.subscription), ['default'], 'nothing was created');
		// A public literal address is accepted (nothing is sent: no message is published).
		const ok = await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
			{ subscription: 'pub', push_endpoint: 'http://192.0.2.1/hook' }, 'consume');
		assert.equal(ok.push_endpoint, 'http://192.0.2.1/hook');
		// A short secret, and a secret on a pull subscription, are refused.
		await expect(400, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
			{ subscription: 'p2', push_endpoint: 'http://192.0.2.1/', secret: 'short' }, 'consume');
		await expect(400, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
			{ subscription: 'p3', secret: SECRET }, 'consume');
	});
} else {
	// The receiver: /<name>/ok answers 204; /<name>/flaky 500 twice per message then 200;
	// /<name>/fail always 500; /<name>/gone 410; /<name>/hang never answers (pubsub gives up
	// after SB_PUBSUB_PUSH_TIMEOUT_MS), counting how many it holds at once. Every request is
	// kept with its headers.
	const got = []; // {path, headers, body, raw}
	const failures = new Map();
	const hang = { open: 0, max: 0, held: new Set() };
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const raw = Buffer.concat(chunks).toString('utf8');
			let body = null;
			try {
				body = JSON.parse(raw);
			} catch {
				body = null;
			}
			got.push({ path: req.url, headers: req.headers, body, raw });
			const kind = req.url.split('/').pop();
			if (kind === 'hang') {
				hang.open++;
				hang.max = Math.max(hang.max, hang.open);
				hang.held.add(res);
				res.on('close', () => {
					hang.open--;
					hang.held.delete(res);
				});
				return;
			}
			let status = 204;
			if (kind === 'fail') status = 500;
			else if (kind === 'gone') status = 410;
			else if (kind === 'flaky') {
				const n = (failures.get(body?.id) || 0) + 1;
				failures.set(body?.id, n);
				status = n <= 2 ? 500 : 200;
			}
			res.writeHead(status, { 'Content-Length': 0 });
			res.end();
		});
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	after(() => server.close());
	const base = `http://127.0.0.1:${server.address().port}`;

	// signed tells whether a request carries a valid signature of its body with secret.
	const signed = (r, secret) => {
		const ts = r.headers['switchboard-timestamp'];
		const want = 'v1=' + createHmac('sha256', secret).update(`${ts}.${r.raw}`).digest('hex');
		return typeof ts === 'string' && /^\d+$/.test(ts) &&
			Math.abs(Number(ts) - Date.now() / 1000) < 300 && r.headers['switchboard-signature'] === want;
	};
	const waitFor = async (pred, ms = 15000) => {
		for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (pred()) return true;
		return pred();
	};
	const pushSub = async (t, kind, extra = {}) => {
		const name = uniq(kind);
		const s = await expect(201, 'POST', `/api/v1/topics/${t.name}/subscriptions`,
			{ subscription: name, push_endpoint: `${base}/${name}/${kind}`, ...extra }, 'consume');
		return { ...s, path: `/${name}/${kind}` };
	};
	const info = (id) => expect(200, 'GET', `/api/v1/messages/${id}`, undefined, 'consume');
	const delivery = async (id, sub) => (await info(id)).deliveries.find((d) => d.subscription === sub);

	test('every message reaches the receiver once, signed, and is acknowledged', async () => {
		const t = await topic({ type: 'pubsub' });
		const s = await pushSub(t, 'ok', { secret: SECRET });
		assert.equal(s.push_endpoint, `${base}${s.path}`);
		assert.equal(s.secret, SECRET);
		const sent = new Map();
		for (let i = 0; i < 20; i++) {
			const r = await publish({ topic: t.name, payload: { n: i, text: 'é"\\' }, headers: { k: `v${i}` } });
			sent.set(r.id, i);
		}
		const mine = () => got.filter((r) => r.path === s.path);
		assert.ok(await waitFor(() => mine().length >= 20), `got ${mine().length} of 20`);
		await sleep(700); // anything pushed twice would arrive meanwhile
		const reqs = mine();
		assert.equal(reqs.length, 20, 'each message once');
		assert.deepEqual(new Set(reqs.map((r) => r.body.id)), new Set(sent.keys()));
		for (const r of reqs) {
			assert.ok(signed(r, SECRET), `bad signature: ${JSON.stringify(r.headers)}`);
			assert.ok(!signed(r, SECRET + 'x'), 'the signature depends on the secret');
			const n = sent.get(r.body.id);
			assert.deepEqual(r.body.payload, { n, text: 'é"\\' });
			assert.equal(r.body.headers.k, `v${n}`);
			assert.equal(r.body.topic, t.name);
			assert.equal(r.body.subscription, s.subscription);
			assert.equal(r.body.attempt, 1);
			assert.equal(r.headers['switchboard-message-id'], r.body.id);
			assert.equal(r.headers['content-type'], 'application/json');
		}
		for (const id of sent.keys()) {
			let d;
			for (let i = 0; i < 40 && (d = await delivery(id, s.subscription)).state !== 'acked'; i++) await sleep(50);
			assert.equal(d.state, 'acked');
			assert.equal(d.attempt, 1);
		}
		// A push subscription is not consumed by pull; its secret is not listed.
		await expect(400, 'GET', `/api/v1/messages/consume/${t.name}?subscription=${s.subscription}`, undefined, 'consume');
		const subs = await expect(200, 'GET', `/api/v1/topics/${t.name}/subscriptions`, undefined, 'consume');
		const listed = subs.subscriptions.find((x) => x.subscription === s.subscription);
		assert.equal(listed.push_endpoint, `${base}${s.path}`);
		assert.ok(!listed.secret, 'the secret is answered only at creation');
	});

	test('a generated secret is returned once and signs the pushes', async () => {
		const t = await topic({ type: 'pubsub' });
		const s = await pushSub(t, 'ok');
		assert.match(s.secret, /^[0-9a-f]{64}$/);
		const { id } = await publish({ topic: t.name, payload: [1, 2, 3] });
		assert.ok(await waitFor(() => got.some((r) => r.path === s.path)));
		const r = got.find((x) => x.path === s.path);
		assert.equal(r.body.id, id);
		assert.ok(signed(r, s.secret));
	});

	test('a receiver failing twice gets the message on the third attempt, with the history', async () => {
		const t = await topic({ type: 'pubsub', max_delivery_attempts: 5 });
		const s = await pushSub(t, 'flaky', { secret: SECRET });
		const t0 = Date.now();
		const { id } = await publish({ topic: t.name, payload: { flaky: true } });
		const mine = () => got.filter((r) => r.path === s.path);
		assert.ok(await waitFor(() => mine().length >= 3), `got ${mine().length} of 3`);
		let d;
		for (let i = 0; i < 60 && (d = await delivery(id, s.subscription)).state !== 'acked'; i++) await sleep(50);
		assert.equal(d.state, 'acked');
		assert.equal(d.attempt, 3);
		assert.deepEqual(d.errors.map((e) => e.reason), ['push: HTTP 500', 'push: HTTP 500']);
		assert.deepEqual(mine().map((r) => r.body.attempt), [1, 2, 3]);
		assert.deepEqual(mine().map((r) => r.headers['switchboard-attempt']), ['1', '2', '3']);
		for (const r of mine()) assert.ok(signed(r, SECRET));
		// The backoff: 200 ms after the first failure, 400 ms after the second.
		assert.ok(Date.now() - t0 >= 600, `retried too soon (${Date.now() - t0} ms)`);
		await sleep(500);
		assert.equal(mine().length, 3, 'nothing after the acknowledgement');
	});

	test('a receiver always failing sends the message to {name}.dlq after max attempts', async () => {
		const t = await topic({ type: 'pubsub', max_delivery_attempts: 3 });
		const s = await pushSub(t, 'fail', { secret: SECRET });
		const { id } = await publish({ topic: t.name, payload: { doomed: 1 } });
		let dlq;
		for (let i = 0; i < 200; i++) {
			dlq = await expect(200, 'GET', `/api/v1/topics/${t.name}/dlq`, undefined, 'consume');
			if (dlq.messages.length) break;
			await sleep(50);
		}
		assert.equal(dlq.messages.length, 1);
		const m = dlq.messages[0];
		assert.equal(m.id, id);
		assert.equal(m.attempts, 3);
		assert.deepEqual(m.payload, { doomed: 1 });
		assert.deepEqual(m.errors.map((e) => e.reason), ['push: HTTP 500', 'push: HTTP 500', 'push: HTTP 500']);
		await sleep(1000);
		assert.equal(got.filter((r) => r.path === s.path).length, 3, 'no attempt after the last');
		const metrics = await (await fetch(`${process.env.SB_PUBSUB_OPS}/metrics`)).text();
		assert.match(metrics, new RegExp(`^pubsub_dead_lettered_total\\{topic="${t.name}",subscription="${s.subscription}",cause="push"\\} 1$`, 'm'));
		// Replayed, it is pushed again (and fails again).
		await expect(200, 'POST', `/api/v1/topics/${t.name}/dlq/${id}/replay`, {});
		assert.ok(await waitFor(() => got.filter((r) => r.path === s.path).length >= 4));
	});

	test('a permanent refusal (410) dead-letters at once', async () => {
		const t = await topic({ type: 'pubsub', max_delivery_attempts: 5 });
		const s = await pushSub(t, 'gone');
		const { id } = await publish({ topic: t.name, payload: 'x' });
		let d;
		for (let i = 0; i < 100 && (d = await delivery(id, s.subscription)).state !== 'dead'; i++) await sleep(50);
		assert.equal(d.state, 'dead');
		assert.equal(d.attempt, 1);
		assert.deepEqual(d.errors.map((e) => e.reason), ['push: HTTP 410 (permanent)']);
	});
	test('an endpoint that hangs holds at most SB_PUBSUB_PUSH_PER_SUBSCRIPTION (2) of the 4 workers', async () => {
		// Twelve deliveries to an endpoint that never answers: without the cap they would hold
		// all four workers for 3 rounds of the 2 s push timeout, oldest first, and the healthy
		// subscription's pushes (newer) would wait about 6 s.
		const slow = await topic({ type: 'pubsub', max_delivery_attempts: 1 });
		const h = await pushSub(slow, 'hang');
		for (let i = 0; i < 12; i++) await publish({ topic: slow.name, payload: { hang: i } });
		assert.ok(await waitFor(() => hang.open >= 2, 5000), `the hanging endpoint holds ${hang.open}`);
		const t = await topic({ type: 'pubsub' });
		const s = await pushSub(t, 'ok');
		const t0 = Date.now();
		for (let i = 0; i < 5; i++) await publish({ topic: t.name, payload: { quick: i } });
		const mine = () => got.filter((r) => r.path === s.path);
		assert.ok(await waitFor(() => mine().length >= 5, 3000),
			`the healthy endpoint got ${mine().length} of 5 within ${Date.now() - t0} ms`);
		assert.ok(got.filter((r) => r.path === h.path).length < 12, 'the hanging deliveries were not all tried yet');
		assert.equal(hang.max, 2, 'pushes held by the hanging endpoint at once');
		const del = await call('DELETE', `/api/v1/topics/${slow.name}`);
		assert.ok(del.status === 204 || del.status === 200, `topic delete: ${del.status}`);
		for (const res of hang.held) res.destroy();
	});
}
