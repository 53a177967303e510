// pub.mjs: the socket.io publisher of bench/realtime_fanout_bench.sh, the counterpart of
// bench/fanout_pub.c. A socket.io Server that listens to no client, with the same Redis adapter
// as server.mjs, emits "message" to random conversations' rooms at RATE per second for SECONDS,
// evenly paced (message i is due at start + i/RATE; a late loop catches up at once and the lag
// is reported). The payload is the frame Switchboard's notifier publishes for a new message,
// same shape and size; its content starts "t=<publish time, Unix microseconds> ".
//   REDIS_URL=... node pub.mjs CONV_FILE RATE SECONDS [CONTENT_BYTES]
// CONV_FILE: one line per conversation, "<conversation id> <sender id>". Prints one JSON line.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-adapter";

const [file, rateArg, secsArg, bytesArg] = process.argv.slice(2);
const rate = Number(rateArg), secs = Number(secsArg), contentBytes = Number(bytesArg ?? 100);
if (!file || !(rate > 0) || !(secs > 0) || !(contentBytes >= 24) || !process.env.REDIS_URL) {
	console.error("usage: REDIS_URL=... node pub.mjs CONV_FILE RATE SECONDS [CONTENT_BYTES]");
	process.exit(2);
}
const convs = readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => {
	const [id, sender] = l.split(" ");
	return { id, sender, seq: 0 };
});
const pubClient = createClient({ url: process.env.REDIS_URL });
const subClient = pubClient.duplicate();
await Promise.all([pubClient.connect(), subClient.connect()]);
const io = new Server({ adapter: createAdapter(pubClient, subClient) });

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const total = Math.floor(rate * secs);
let sent = 0, maxLag = 0;
const t0 = performance.now() + 1;
const cpu0 = process.cpuUsage();

function publishDue() {
	const now = performance.now();
	const lag = now - (t0 + (sent * 1000) / rate);
	if (lag > maxLag) maxLag = lag;
	while (sent < total && t0 + (sent * 1000) / rate <= now) {
		const c = convs[Math.floor(Math.random() * convs.length)];
		c.seq++;
		const us = nowUs();
		const content = ("t=" + us + " ").padEnd(contentBytes, "x");
		io.to(c.id).emit("message", {
			type: "message.created",
			conversation_id: c.id,
			seq: c.seq,
			message: {
				id: "00000000-0000-4000-8000-" + sent.toString(16).padStart(12, "0"),
				sender_id: c.sender,
				content,
				content_type: "text/plain",
				metadata: {},
				created_at: new Date(Math.floor(us / 1000)).toISOString(),
			},
		});
		sent++;
	}
	if (sent < total) {
		const wait = t0 + (sent * 1000) / rate - performance.now();
		setTimeout(publishDue, wait > 1 ? Math.floor(wait) : 0);
		return;
	}
	const el = (performance.now() - t0) / 1000;
	const cpu = process.cpuUsage(cpu0);
	console.log(JSON.stringify({
		sent, rate, seconds: Number(el.toFixed(2)), achieved: Number((sent / el).toFixed(1)),
		max_lag_ms: Number(maxLag.toFixed(1)), cpu_s: (cpu.user + cpu.system) / 1e6,
	}));
	// let node-redis write the last PUBLISHes before closing
	Promise.allSettled([pubClient.quit(), subClient.quit()]).finally(() => process.exit(0));
}
setTimeout(publishDue, 1);
