// sim_drain.mjs: a TLCP client that subscribes to the simulator (sim.mjs) over WebSocket and
// discards what it gets, counting the U lines: it measures how many updates per second the
// simulator can offer, with nothing behind it (bench/ingest_bench.sh runs it before sb-ingest,
// so that a rate sb-ingest misses is not the simulator's).
//
// node sim_drain.mjs --port P --items A,B,... --expect N [--timeout-ms T]
//
// Prints one JSON line: {"updates": counted, "expect": N, "first_ms": ..., "last_ms": ...,
// "rate": updates per second from the first to the last U line}. Exits 0 when N updates
// arrived before the timeout, 1 otherwise.
import WebSocket from 'ws';

const o = { port: 0, items: '', expect: 0, timeoutMs: 60000 };
const argv = process.argv.slice(2);
for (let a = 0; a < argv.length; a += 2) {
	const k = argv[a], v = argv[a + 1];
	if (k === '--port')
		o.port = +v;
	else if (k === '--items')
		o.items = v;
	else if (k === '--expect')
		o.expect = +v;
	else if (k === '--timeout-ms')
		o.timeoutMs = +v;
	else
		throw new Error(`unknown option ${k}`);
}

const ws = new WebSocket(`ws://127.0.0.1:${o.port}/lightstreamer`, 'TLCP-2.5.0.lightstreamer.com');
const NL_U = Buffer.from('\nU,');
let count = 0, first = 0, last = 0, subscribed = false;

function finish(ok) {
	const span = last - first;
	console.log(JSON.stringify({ updates: count, expect: o.expect, first_ms: first, last_ms: last,
		rate: span > 0 ? Math.round((count - 1) * 1000 / span) : 0 }));
	ws.terminate();
	process.exit(ok ? 0 : 1);
}

ws.on('open', () => {
	ws.send('create_session\r\nLS_cid=drain&LS_adapter_set=SIM&LS_send_sync=false');
});
ws.on('message', (data) => {
	// Count the lines that start with "U,": cheap, without decoding the message.
	let n = data.length >= 2 && data[0] === 0x55 && data[1] === 0x2c ? 1 : 0;
	for (let at = data.indexOf(NL_U); at >= 0; at = data.indexOf(NL_U, at + 3))
		n++;
	if (!subscribed && data.indexOf('CONOK,') === 0) {
		subscribed = true;
		const group = o.items.split(',').join('%20');
		ws.send('control\r\nLS_reqId=1&LS_op=add&LS_subId=1&LS_mode=MERGE&LS_group=' + group +
			'&LS_schema=Seq%20Value%20Status%20TimeStamp&LS_snapshot=false');
	}
	if (n > 0) {
		const now = Date.now();
		if (count === 0)
			first = now;
		last = now;
		count += n;
		if (count >= o.expect)
			finish(count === o.expect);
	}
});
ws.on('error', (e) => {
	console.error(`sim_drain: ${e.message}`);
	finish(false);
});
setTimeout(() => finish(false), o.timeoutMs).unref();
