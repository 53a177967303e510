// load.mjs SYSTEM: the load of bench/pubsub_bench.sh against one system, the same shape for
// all three: 4 producers, each keeping SB_BENCH_WINDOW publishes in flight (every publish waits
// for the system's durable acknowledgement: pubsub's 202, RabbitMQ's publisher confirm,
// JetStream's PubAck), and 4 consumers that take messages in batches and acknowledge each one
// explicitly; SB_BENCH_MESSAGES messages of SB_BENCH_BYTES bytes. It prints one JSON line:
// messages, seconds from the first publish to the last ack, rate, and the publish→ack latency
// of each message (from just before its publish to the return of its ack) at p50/p99/max, and
// pub_rtt_ms: the mean round trip of one publish request (a batch's for the batching producers)
// as the producer sees it; loop_delay_ms: the mean delay of the generator's own event loop
// (monitorEventLoopDelay, 1 ms resolution), which every reply waits behind.
//   pubsub  SB_GW, SB_TOKEN, SB_TOPIC: POST /api/v1/messages/publish, GET consume (max 64,
//           long poll), one POST /api/v1/messages/ack (a batch: each message acked on its own,
//           in one transaction) per consume, all through the gateway over HTTP/1.1 keep-alive
//           (node:http)
//   pubsub-batch  the same, but each producer sends what is pending (at most SB_BENCH_WINDOW
//           messages: the window frees when a batch is acknowledged) in one POST
//           /api/v1/messages/publish-batch, as a client library's batching does; the window of
//           unacknowledged messages is the same as every other producer's
//   pubsub-stream  producers as pubsub-batch; each consumer makes one request per batch: POST
//           /api/v1/messages/consume/{topic} carrying the acks of the batch it finished and
//           leasing the next (max 64, min SB_BENCH_MIN (16): the server waits until that many
//           can be leased, at most SB_BENCH_WAIT_MS (100), then takes what there is). A message
//           counts as acknowledged when the answer carrying its ack's result returns; once all
//           messages were received, the last acks go with wait_ms 0.
//   rabbit  SB_AMQP_URL, SB_QUEUE: a durable quorum queue, persistent messages, publisher
//           confirms, prefetch 64, manual acks
//   nats    SB_NATS, SB_STREAM: a JetStream stream with file storage, a durable pull consumer
//           with explicit acks, fetched 64 at a time; each ack confirmed by the server (AckAck),
//           a batch's acks in flight together
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const SYSTEM = process.argv[2];
const N = Number(process.env.SB_BENCH_MESSAGES || 10000);
const BYTES = Number(process.env.SB_BENCH_BYTES || 1024);
const WINDOW = Number(process.env.SB_BENCH_WINDOW || 8);
const PRODUCERS = 4, CONSUMERS = 4;
const now = () => performance.timeOrigin + performance.now();

const lat = [];
let pubMs = 0, pubs = 0; // the producers' publish round trips (request to acknowledgement)
let acked = 0, t0 = 0, tEnd = 0, errors = 0;
let resolveDone;
const done = new Promise((r) => (resolveDone = r));
function ackedOne(sentAt) {
	lat.push(now() - sentAt);
	acked++;
	if (acked === N) {
		tEnd = now();
		resolveDone();
	}
}

// Every message carries its publish time in its first 20 bytes, padded to BYTES.
function body(i) {
	const head = `${now().toFixed(3)}`.padEnd(24, ' ');
	return head + 'x'.repeat(Math.max(0, BYTES - head.length - 12)) + String(i).padStart(12, '0');
}
const sentAt = (text) => Number(text.slice(0, 24));

// retried runs fn until it resolves, counting each failure in errors; the seventh throws.
async function retried(fn) {
	for (let tries = 0; ; tries++) {
		try {
			return await fn();
		} catch (e) {
			errors++;
			if (tries > 5) throw e;
		}
	}
}

// runProducers runs 4 producers with WINDOW publishes in flight each; publish(i) resolves
// once the system has durably accepted message i.
async function runProducers(publish) {
	let next = 0;
	t0 = now();
	await Promise.all(Array.from({ length: PRODUCERS * WINDOW }, async () => {
		for (;;) {
			const i = next++;
			if (i >= N) return;
			const t = now();
			await retried(() => publish(i));
			pubMs += now() - t;
			pubs++;
		}
	}));
}

// HTTP/1.1 with keep-alive through node:http (an agent with a socket per request in flight):
// about half the client CPU of fetch() (undici) per request on this machine, and the load
// generator shares the cores with the systems it measures (docs/benchmarks.md).
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function request(method, url, headers, body) {
	return new Promise((resolve, reject) => {
		const r = http.request(url, { method, headers, agent }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
			res.on('error', reject);
		});
		r.on('error', reject);
		r.end(body);
	});
}

// runBatchProducers runs 4 producers, each keeping at most WINDOW messages unacknowledged:
// what is pending when the window frees is sent together; publishMany(bodies) resolves once
// the system durably accepted all of them (the messages' bodies, made when they became pending).
async function runBatchProducers(publishMany) {
	let next = 0;
	t0 = now();
	await Promise.all(Array.from({ length: PRODUCERS }, async () => {
		while (next < N) {
			const batch = [];
			while (batch.length < WINDOW && next < N) batch.push(body(next++));
			const t = now();
			await retried(() => publishMany(batch));
			pubMs += now() - t;
			pubs++;
		}
	}));
}

async function pubsub(batched = false, stream = false) {
	const GW = process.env.SB_GW, topic = process.env.SB_TOPIC;
	const auth = { Authorization: `Bearer ${process.env.SB_TOKEN}` };
	const json = { ...auth, 'Content-Type': 'application/json' };
	const MIN = Number(process.env.SB_BENCH_MIN || 16), WAIT = Number(process.env.SB_BENCH_WAIT_MS || 100);
	let received = 0;
	// streamConsumer: the acks of one batch ride on the request for the next.
	const streamConsumer = async (c) => {
		let held = []; // delivered, acked by the next request
		while (acked < N) {
			const last = received >= N;
			const r = await request('POST', `${GW}/api/v1/messages/consume/${topic}`, json, JSON.stringify({
				max: 64, min: last ? 0 : MIN, wait_ms: last ? 0 : WAIT, consumer: `c${c}`,
				acks: held.map((m) => ({ id: m.id, lease_id: m.lease_id })),
			}));
			if (r.status !== 200) {
				errors++;
				continue;
			}
			const { messages, acks } = JSON.parse(r.text);
			acks.forEach((x, k) => (x.ok ? ackedOne(sentAt(held[k].payload.d)) : errors++));
			held = messages;
			received += messages.length;
			if (last && !messages.length && !acks.length) return;
		}
	};
	const consumer = stream ? streamConsumer : async (c) => {
		while (acked < N) {
			const r = await request('GET', `${GW}/api/v1/messages/consume/${topic}?max=64&wait_ms=1000&consumer=c${c}`, auth);
			if (r.status !== 200) {
				errors++;
				continue;
			}
			const { messages } = JSON.parse(r.text);
			if (!messages.length) continue;
			// One batch ack (one transaction) for what one consume leased.
			const a = await request('POST', `${GW}/api/v1/messages/ack`, json,
				JSON.stringify({ acks: messages.map((m) => ({ id: m.id, lease_id: m.lease_id })) }));
			if (a.status !== 200) {
				errors++;
				continue;
			}
			const { results } = JSON.parse(a.text);
			results.forEach((x, k) => (x.ok ? ackedOne(sentAt(messages[k].payload.d)) : errors++));
		}
	};
	const cons = Array.from({ length: CONSUMERS }, (_, c) => consumer(c));
	if (batched)
		await runBatchProducers(async (batch) => {
			const r = await request('POST', `${GW}/api/v1/messages/publish-batch`, json,
				JSON.stringify({ topic, messages: batch.map((d) => ({ payload: { d } })) }));
			if (r.status !== 202) throw new Error(`publish-batch ${r.status}`);
		});
	else await runProducers(async (i) => {
		const r = await request('POST', `${GW}/api/v1/messages/publish`, json,
			JSON.stringify({ topic, payload: { d: body(i) } }));
		if (r.status !== 202) throw new Error(`publish ${r.status}`);
	});
	await done;
	await Promise.all(cons);
	agent.destroy();
}

async function rabbit() {
	const amqp = await import('amqplib');
	const q = process.env.SB_QUEUE;
	const conns = [];
	const open = async () => {
		const c = await amqp.connect(process.env.SB_AMQP_URL);
		conns.push(c);
		return c;
	};
	const setup = await (await open()).createChannel();
	await setup.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
	for (let c = 0; c < CONSUMERS; c++) {
		const ch = await (await open()).createChannel();
		await ch.prefetch(64);
		await ch.consume(q, (m) => {
			ch.ack(m);
			ackedOne(sentAt(m.content.toString('latin1', 0, 24)));
		}, { noAck: false });
	}
	// One connection and confirm channel per producer; WINDOW publishes in flight on each.
	const chans = [];
	for (let p = 0; p < PRODUCERS; p++) chans.push(await (await open()).createConfirmChannel());
	let rr = 0;
	await runProducers((i) => new Promise((res, rej) => {
		const ch = chans[rr++ % PRODUCERS];
		ch.sendToQueue(q, Buffer.from(body(i), 'latin1'), { persistent: true },
			(err) => (err ? rej(err) : res()));
	}));
	await done;
	for (const c of conns) await c.close();
}

async function nats() {
	const { connect, AckPolicy, StorageType } = await import('nats');
	const stream = process.env.SB_STREAM, subj = `${stream}.m`;
	const setup = await connect({ servers: process.env.SB_NATS });
	const jsm = await setup.jetstreamManager();
	await jsm.streams.add({ name: stream, subjects: [subj], storage: StorageType.File });
	await jsm.consumers.add(stream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, max_ack_pending: 10000 });
	const pconns = [], cconns = [];
	for (let p = 0; p < PRODUCERS; p++) pconns.push(await connect({ servers: process.env.SB_NATS }));
	for (let c = 0; c < CONSUMERS; c++) cconns.push(await connect({ servers: process.env.SB_NATS }));
	const cons = cconns.map(async (nc) => {
		const c = await nc.jetstream().consumers.get(stream, 'bench');
		while (acked < N) {
			// Each ack confirmed by the server (AckAck), the batch's acks in flight together
			// (as pubsub's batch of acks is one request), not one round trip after another.
			const batch = await c.fetch({ max_messages: 64, expires: 1000 });
			const acks = [];
			for await (const m of batch) {
				const at = sentAt(Buffer.from(m.data).toString('latin1', 0, 24));
				acks.push(m.ackAck().then(() => ackedOne(at)));
			}
			await Promise.all(acks);
		}
	});
	const js = pconns.map((nc) => nc.jetstream());
	let rr = 0;
	await runProducers(async (i) => {
		await js[rr++ % PRODUCERS].publish(subj, Buffer.from(body(i), 'latin1'));
	});
	await done;
	await Promise.all(cons);
	for (const nc of [...pconns, ...cconns, setup]) await nc.close();
}

const runners = {
	pubsub: () => pubsub(false), 'pubsub-batch': () => pubsub(true),
	'pubsub-stream': () => pubsub(true, true), rabbit, nats,
};
if (!runners[SYSTEM]) {
	console.error('usage: load.mjs pubsub|pubsub-batch|pubsub-stream|rabbit|nats');
	process.exit(2);
}
const guard = setTimeout(() => {
	console.error(`load ${SYSTEM}: timed out with ${acked} of ${N} acked`);
	process.exit(1);
}, Number(process.env.SB_BENCH_TIMEOUT_S || 300) * 1000);
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
await runners[SYSTEM]();
loopDelay.disable();
clearTimeout(guard);
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
const secs = (tEnd - t0) / 1000;
console.log(JSON.stringify({
	system: SYSTEM, messages: N, bytes: BYTES, producers: PRODUCERS, consumers: CONSUMERS,
	window: WINDOW, seconds: +secs.toFixed(2), rate: Math.round(N / secs),
	p50_ms: +q(0.5).toFixed(1), p99_ms: +q(0.99).toFixed(1), max_ms: +lat[lat.length - 1].toFixed(1),
	pub_rtt_ms: +(pubMs / Math.max(1, pubs)).toFixed(2),
	loop_delay_ms: +(loopDelay.mean / 1e6).toFixed(2), errors, cpu_s: +((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(2),
}));
process.exit(0);
