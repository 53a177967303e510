// pub.mjs: the Centrifugo publisher of bench/realtime_fanout_bench.sh, the counterpart of
// bench/fanout_pub.c and bench/socketio/pub.mjs. It publishes to random conversations' channels
// ("conv:<conversation id>") through Centrifugo's server HTTP API at RATE per second for SECONDS,
// evenly paced (message i is due at start + i/RATE; a late loop catches up at once and the lag
// is reported). The data is the frame Switchboard's notifier publishes for a new message, same
// shape and size as the other two publishers; its content starts "t=<publish time, Unix
// microseconds> ", stamped when the message is due.
// Transport: Node's built-in fetch (undici, keep-alive). At most IN_FLIGHT requests are
// outstanding (1 by default: one ordered stream, like the other publishers' single Redis
// connection); messages that fall due meanwhile leave together in the next request: one due
// message goes as POST /api/publish, several as one POST /api/batch (executed in order, up to
// MAX_BATCH commands). The API key travels in X-API-Key. (Measured here while writing this:
// 8,000 messages/s went through with IN_FLIGHT 1 in requests of about 11 messages; with 2 or 4
// ordered batches outstanding, each publish in a batch took about 5x longer in Centrifugo and
// the publisher fell to 3,200-5,200/s.)
//   CENTRIFUGO_API=http://127.0.0.1:PORT/api CENTRIFUGO_API_KEY=... \
//     node pub.mjs CONV_FILE RATE SECONDS [CONTENT_BYTES]
// CONV_FILE: one line per conversation, "<conversation id> <sender id>". Prints one JSON line:
// sent (publications the API accepted), errors (refused or failed), requests, achieved rate
// (messages handed to the transport per second), max_lag_ms, cpu_s. Knobs: CF_PUB_IN_FLIGHT (1),
// CF_PUB_MAX_BATCH (500), CF_CHANNEL_PREFIX ("conv:"). Before the clock starts, three warm-up
// requests on the channel <prefix>warmup (not counted).
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const [file, rateArg, secsArg, bytesArg] = process.argv.slice(2);
const rate = Number(rateArg), secs = Number(secsArg), contentBytes = Number(bytesArg ?? 100);
const api = process.env.CENTRIFUGO_API, key = process.env.CENTRIFUGO_API_KEY;
const inFlightMax = Number(process.env.CF_PUB_IN_FLIGHT ?? 1);
const maxBatch = Number(process.env.CF_PUB_MAX_BATCH ?? 500);
const prefix = process.env.CF_CHANNEL_PREFIX ?? "conv:";
if (!file || !(rate > 0) || !(secs > 0) || !(contentBytes >= 24) || !api || !key ||
	!(inFlightMax >= 1) || !(maxBatch >= 1)) {
	console.error("usage: CENTRIFUGO_API=http://HOST:PORT/api CENTRIFUGO_API_KEY=K " +
		"node pub.mjs CONV_FILE RATE SECONDS [CONTENT_BYTES]");
	process.exit(2);
}
const convs = readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => {
	const [id, sender] = l.split(" ");
	return { id, sender, seq: 0 };
});
const headers = { "Content-Type": "application/json", "X-API-Key": key };

// Warm-up before the clock starts, as the other publishers connect to Redis first: open the
// keep-alive connection and run both request paths once, on a channel nobody subscribes to.
const warm = { channel: prefix + "warmup", data: { warmup: true } };
const warmBatch = { commands: [{ publish: warm }, { publish: warm }] };
for (const [path, body] of [["/publish", warm], ["/batch", warmBatch], ["/publish", warm]]) {
	const res = await fetch(api + path, { method: "POST", headers, body: JSON.stringify(body) });
	const text = await res.text();
	if (!res.ok) {
		console.log(JSON.stringify({ sent: 0, errors: 1, first_errors: `warm-up: HTTP ${res.status} ${text}` }));
		process.exit(1);
	}
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const total = Math.floor(rate * secs);
let due = 0, sent = 0, errors = 0, requests = 0, inFlight = 0, maxLag = 0, lastOut = 0;
const firstErrors = new Set();
const pending = []; // publish commands due and not yet handed to fetch
const t0 = performance.now() + 1;
const cpu0 = process.cpuUsage();

function noteError(what) {
	errors++;
	if (firstErrors.size < 3) firstErrors.add(what);
}

async function post(batch) {
	inFlight++;
	requests++;
	try {
		const one = batch.length === 1;
		const res = await fetch(api + (one ? "/publish" : "/batch"), {
			method: "POST",
			headers,
			body: JSON.stringify(one ? batch[0] : { commands: batch.map((p) => ({ publish: p })) }),
		});
		const text = await res.text();
		if (!res.ok) {
			for (let i = 0; i < batch.length; i++) noteError("HTTP " + res.status);
			return;
		}
		const body = JSON.parse(text);
		const replies = one ? [body] : (body.replies ?? []);
		for (let i = 0; i < batch.length; i++) {
			const r = replies[i];
			if (r && !r.error) sent++;
			else noteError(r?.error ? `${r.error.code} ${r.error.message}` : "no reply");
		}
	} catch (e) {
		for (let i = 0; i < batch.length; i++) noteError(String(e?.cause?.code ?? e));
	} finally {
		inFlight--;
		flush();
	}
}

function flush() {
	while (pending.length > 0 && inFlight < inFlightMax) {
		post(pending.splice(0, maxBatch));
		if (pending.length === 0) lastOut = performance.now();
	}
	if (due >= total && pending.length === 0 && inFlight === 0) finish();
}

function publishDue() {
	const now = performance.now();
	const lag = now - (t0 + (due * 1000) / rate);
	if (lag > maxLag) maxLag = lag;
	while (due < total && t0 + (due * 1000) / rate <= now) {
		const c = convs[Math.floor(Math.random() * convs.length)];
		c.seq++;
		const us = nowUs();
		const content = ("t=" + us + " ").padEnd(contentBytes, "x");
		pending.push({
			channel: prefix + c.id,
			data: {
				type: "message.created",
				conversation_id: c.id,
				seq: c.seq,
				message: {
					id: "00000000-0000-4000-8000-" + due.toString(16).padStart(12, "0"),
					sender_id: c.sender,
					content,
					content_type: "text/plain",
					metadata: {},
					created_at: new Date(Math.floor(us / 1000)).toISOString(),
				},
			},
		});
		due++;
	}
	flush();
	if (due < total) {
		const wait = t0 + (due * 1000) / rate - performance.now();
		setTimeout(publishDue, wait > 1 ? Math.floor(wait) : 0);
	}
}

let finished = false;
function finish() {
	if (finished) return;
	finished = true;
	const el = (lastOut - t0) / 1000;
	const cpu = process.cpuUsage(cpu0);
	const out = {
		sent, errors, requests, rate, seconds: Number(el.toFixed(2)),
		achieved: Number((due / el).toFixed(1)), max_lag_ms: Number(maxLag.toFixed(1)),
		cpu_s: (cpu.user + cpu.system) / 1e6,
	};
	if (errors > 0) out.first_errors = [...firstErrors].join("; ");
	console.log(JSON.stringify(out));
	process.exit(0);
}
setTimeout(publishDue, 1);
