// sim.mjs: a TLCP 2.5 server simulator (WebSocket streaming, HTTP polling) for sb-ingest's tests and
// benchmark. It serves one adapter set whose items produce scripted MERGE updates, and can
// misbehave on cue: LOOP every K notifications, drop the TCP connection every K notifications
// (and answer the recovery from a little earlier than asked: the client must discard the
// notifications it already has, which ingest_feed_test asserts through
// ingest_recovery_skipped_total), refuse
// the first N session creations with CONERR, end the session once (END) so the client must
// start a new one, send SYNC every T ms, and lose the K-th reconf asking for "unlimited" with its
// connection (--lose-restore K: neither applied nor answered, the TCP connection destroyed). The
// official lightstreamer-client-node connects to it in sim_check.mjs, which is what makes us
// trust that it speaks real TLCP.
//
// Over HTTP it serves create_session.txt and the polling (bind_session.txt, control.txt) that
// the official client recovers a dropped WebSocket session with.
//
// node sim.mjs --port P [--items A,B] [--updates N] [--rate R] [--loop-every K]
//   [--drop-every K] [--drop-rewind D] [--conerr N] [--end-after K] [--sync-ms T]
//   [--stats FILE] [--adapter-set NAME] [--tls-cert PEM --tls-key PEM] [--batch-lines L]
//   [--lose-restore K]
//
// Update k (1..N) of item i (1-based) has the fields of FIELDS below (see value()); the test
// checkers compute the same values to compare. --rate is updates per second over all items
// (0: as fast as the connection takes them). --batch-lines: at most L notifications per
// WebSocket message (TLCP allows many lines per message; default 256). --stats FILE gets a
// JSON object of counters (creates, binds, recoveries, loops, drops, conerrs, ends, syncs,
// sent, reconfs, lostReconfs) on every change, and reconf: the LS_requested_max_frequency of every reconf
// request, in order.
import { WebSocketServer } from 'ws';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export const FIELDS = ['Seq', 'Value', 'Status', 'TimeStamp'];
export const TS_BASE = 1767225600000; // 2026-01-01T00:00:00Z

// value(i, k) is the full state of item i after update k; unchanged(i, k) says which fields
// update k leaves as they were (sent as an empty token or a ^N run).
export function value(i, k) {
	const statuses = ['OK', '', null, 'a|b%#$^ é', 'WARN'];
	let s = k;
	while (s > 0 && s % 7 === 3)
		s--; // updates 3, 10, 17, ... leave Status unchanged
	return {
		Seq: String(k),
		Value: (k * 1.5 + i).toFixed(3),
		Status: s === 0 ? null : statuses[s % statuses.length],
		TimeStamp: String(TS_BASE + k * 10),
	};
}

export function unchanged(i, k) {
	return k % 7 === 3 ? new Set(['Status']) : new Set();
}

// SAFE: printable ASCII without the characters TLCP reserves (nothing to percent-encode).
const SAFE = /^[^\x00-\x1f\x7f-\uffff%|#$^,]*$/;

// encode writes one TLCP value (percent-encoding the characters TLCP reserves).
export function encode(v) {
	if (v === null)
		return '#';
	if (v === '')
		return '$';
	if (SAFE.test(v))
		return v; // nothing to escape (the common case: digits, letters)
	const bytes = Buffer.from(v, 'utf8');
	let out = '';
	for (const b of bytes) {
		const c = String.fromCharCode(b);
		if (b < 0x20 || b === 0x7f || b >= 0x80 || '%|#$^,'.includes(c))
			out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
		else
			out += c;
	}
	return out;
}

export function updateLine(sub, itemIdx, fields, vals, skip) {
	const toks = [];
	let run = 0;
	const flush = () => {
		if (run === 1)
			toks.push('');
		else if (run > 1)
			toks.push('^' + run);
		run = 0;
	};
	for (const f of fields) {
		if (skip.has(f)) {
			run++;
			continue;
		}
		flush();
		toks.push(encode(vals[f]));
	}
	flush();
	return `U,${sub},${itemIdx},${toks.join('|')}`;
}

function parseArgs(argv) {
	const o = {
		port: 0, items: ['item1', 'item2'], updates: 100, rate: 0, loopEvery: 0, dropEvery: 0,
		dropRewind: 3, conerr: 0, endAfter: 0, syncMs: 0, stats: '', adapterSet: '',
		keepaliveMs: 1000, tlsCert: '', tlsKey: '', batchLines: 256, loseRestore: 0,
	};
	for (let a = 0; a < argv.length; a += 2) {
		const k = argv[a], v = argv[a + 1];
		switch (k) {
		case '--port': o.port = +v; break;
		case '--items': o.items = v.split(','); break;
		case '--updates': o.updates = +v; break;
		case '--rate': o.rate = +v; break;
		case '--loop-every': o.loopEvery = +v; break;
		case '--drop-every': o.dropEvery = +v; break;
		case '--drop-rewind': o.dropRewind = +v; break;
		case '--conerr': o.conerr = +v; break;
		case '--end-after': o.endAfter = +v; break;
		case '--sync-ms': o.syncMs = +v; break;
		case '--stats': o.stats = v; break;
		case '--adapter-set': o.adapterSet = v; break;
		case '--keepalive-ms': o.keepaliveMs = +v; break;
		case '--tls-cert': o.tlsCert = v; break;
		case '--tls-key': o.tlsKey = v; break;
		case '--batch-lines': o.batchLines = +v; break;
		case '--lose-restore': o.loseRestore = +v; break;
		default: throw new Error(`unknown option ${k}`);
		}
	}
	return o;
}

export function startSim(opts) {
	const o = { ...parseArgs([]), ...opts };
	const stats = { creates: 0, binds: 0, recoveries: 0, loops: 0, drops: 0, conerrs: 0,
		ends: 0, syncs: 0, sent: 0, generated: 0, reqerrs: 0, reconfs: 0, reconf: [], httpBinds: 0,
		lostReconfs: 0 };
	let conerrLeft = o.conerr;
	let endLeft = o.endAfter > 0 ? 1 : 0;
	let restores = 0;
	const sessions = new Map();
	let nextId = 1;
	const writeStats = () => {
		if (o.stats)
			fs.writeFileSync(o.stats + '.tmp', JSON.stringify(stats)), fs.renameSync(o.stats + '.tmp', o.stats);
	};
	let statsTimer = null;
	const bump = (k, n = 1) => {
		stats[k] += n;
		if (!statsTimer)
			statsTimer = setTimeout(() => { statsTimer = null; writeStats(); }, 50);
	};

	// A session: its log of data notifications (recovery resends from it), the items' update
	// counters, and the connection bound to it (at most one).
	function newSession() {
		const s = { id: `S${process.pid.toString(16)}x${(nextId++).toString(16)}`, log: [],
			started: Date.now(), conn: null, subs: [], gen: null, sent: 0 };
		sessions.set(s.id, s);
		return s;
	}

	function generate(s, sub) {
		// Each subscription's items get updates 1..N, interleaved round-robin, at o.rate/s.
		// With a rate the lines are encoded first (the stream starts after that), so that
		// at rate the timer only appends them to the session's log: encoding an update costs
		// more than sending it and capped what the simulator could offer (docs/ingest.md).
		const total = o.updates * sub.items.length;
		const line = (m) => {
			const idx = (m % sub.items.length) + 1;
			const k = Math.floor(m / sub.items.length) + 1;
			const i = o.items.indexOf(sub.items[idx - 1]) + 1;
			return updateLine(sub.id, idx, sub.fields, value(i, k), unchanged(i, k));
		};
		const pre = o.rate > 0 ? Array.from({ length: total }, (_, m) => line(m)) : null;
		let made = 0;
		const step = (n) => {
			const from = made, end = Math.min(total, made + n);
			for (; made < end; made++)
				s.log.push(pre ? pre[made] : line(made));
			if (made > from)
				bump('generated', made - from);
			if (s.conn)
				pump(s.conn);
		};
		if (o.rate <= 0) {
			step(total);
			return;
		}
		const t0 = Date.now();
		sub.timer = setInterval(() => {
			const due = Math.min(total, Math.floor((Date.now() - t0) * o.rate / 1000));
			step(due - made);
			if (made >= total)
				clearInterval(sub.timer);
		}, 5);
	}

	function send(c, text) {
		c.ws.send(text);
	}

	// pump sends the session's notifications from the connection's cursor, a batch per
	// WebSocket message, minding the socket's buffer (so a client that stops reading slows us).
	function pump(c) {
		const s = c.session;
		if (!s || c.closing || c.pumping)
			return;
		c.pumping = true;
		try {
			while (c.cursor < s.log.length && !c.closing) {
				if (c.ws.bufferedAmount > (1 << 20)) {
					setTimeout(() => pump(c), 5);
					return;
				}
				let n = Math.min(s.log.length - c.cursor, o.batchLines);
				if (o.loopEvery > 0)
					n = Math.min(n, o.loopEvery - c.sinceBind);
				if (o.dropEvery > 0)
					n = Math.min(n, o.dropEvery - c.sinceBind);
				if (endLeft && o.endAfter > 0)
					n = Math.min(n, Math.max(1, o.endAfter - s.sent));
				const lines = s.log.slice(c.cursor, c.cursor + n);
				send(c, lines.join('\r\n') + '\r\n');
				c.cursor += n;
				c.sinceBind += n;
				s.sent = Math.max(s.sent, c.cursor);
				bump('sent', n);
				if (endLeft && o.endAfter > 0 && s.sent >= o.endAfter) {
					endLeft = 0;
					bump('ends');
					send(c, 'END,41,Session%20closed%20by%20the%20simulator\r\n');
					sessions.delete(s.id);
					c.closing = true;
					c.ws.close(1000);
					return;
				}
				if (o.loopEvery > 0 && c.sinceBind >= o.loopEvery) {
					bump('loops');
					send(c, 'LOOP,0\r\n');
					c.closing = true;
					c.ws.close(1000);
					return;
				}
				if (o.dropEvery > 0 && c.sinceBind >= o.dropEvery) {
					bump('drops');
					c.closing = true;
					// Abrupt: no close frame; whatever is in flight may or may not arrive.
					setTimeout(() => c.ws._socket && c.ws._socket.destroy(), 10);
					return;
				}
			}
		} finally {
			c.pumping = false;
		}
	}

	function params(text) {
		const p = new URLSearchParams(text.replace(/\+/g, '%2B'));
		return Object.fromEntries(p.entries());
	}

	function bindConn(c, s, cursor) {
		if (s.conn && s.conn !== c) {
			s.conn.closing = true;
			s.conn.ws.terminate();
		}
		s.conn = c;
		c.session = s;
		c.cursor = cursor;
		c.sinceBind = 0;
	}

	function onRequest(c, name, p) {
		switch (name) {
		case 'wsok':
			send(c, 'WSOK\r\n');
			return;
		case 'create_session': {
			bump('creates');
			if (o.adapterSet && p.LS_adapter_set !== o.adapterSet) {
				send(c, 'CONERR,2,Requested%20Adapter%20Set%20not%20available\r\n');
				c.ws.close(1000);
				return;
			}
			if (conerrLeft > 0) {
				conerrLeft--;
				bump('conerrs');
				send(c, 'CONERR,5,Server%20overloaded%20(simulated)\r\n');
				c.ws.close(1000);
				return;
			}
			const s = newSession();
			bindConn(c, s, 0);
			send(c, `CONOK,${s.id},50000,${o.keepaliveMs},*\r\nSERVNAME,TLCP%20simulator\r\n` +
				'CLIENTIP,127.0.0.1\r\nCONS,unlimited\r\n');
			return;
		}
		case 'bind_session': {
			bump('binds');
			const s = sessions.get(p.LS_session);
			if (!s) {
				send(c, 'CONERR,4,Session%20not%20found\r\n');
				c.ws.close(1000);
				return;
			}
			let cursor = s.sent;
			send(c, `CONOK,${s.id},50000,${o.keepaliveMs},*\r\n`);
			if (p.LS_recovery_from !== undefined) {
				bump('recoveries');
				const want = +p.LS_recovery_from;
				if (!(want >= 0 && want <= s.sent)) {
					send(c, 'END,4,Recovery%20impossible\r\n');
					c.ws.close(1000);
					return;
				}
				cursor = Math.max(0, want - o.dropRewind);
				send(c, `PROG,${cursor}\r\n`);
			}
			bindConn(c, s, cursor);
			pump(c);
			return;
		}
		case 'control': {
			const s = c.session;
			const ack = p.LS_ack !== 'false';
			if (!s) {
				send(c, `REQERR,${p.LS_reqId},65,No%20session\r\n`);
				return;
			}
			if (p.LS_op === 'add') {
				const items = (p.LS_group || '').split(' ');
				const fields = (p.LS_schema || '').split(' ');
				const bad = items.find((x) => !o.items.includes(x)) ||
					fields.find((x) => !FIELDS.includes(x));
				if (p.LS_mode !== 'MERGE' || bad !== undefined) {
					bump('reqerrs');
					send(c, `REQERR,${p.LS_reqId},23,Bad%20item%20or%20field%20${encode(bad || p.LS_mode)}\r\n`);
					return;
				}
				if (ack)
					send(c, `REQOK,${p.LS_reqId}\r\n`);
				const sub = { id: +p.LS_subId, items, fields };
				s.subs.push(sub);
				s.log.push(`SUBOK,${sub.id},${items.length},${fields.length}`);
				generate(s, sub);
				pump(c);
			} else if (p.LS_op === 'reconf') {
				// A new maximum frequency for a subscription: recorded (stats.reconf, in
				// order) and confirmed with REQOK and CONF, a data notification. The
				// simulator does not filter its scripted updates by it: every update is still
				// sent, so tests can count them.
				const sub = s.subs.find((x) => x.id === +p.LS_subId);
				const f = p.LS_requested_max_frequency;
				if (!sub || f === undefined || !(f === 'unlimited' || /^[0-9]+(\.[0-9]+)?$/.test(f))) {
					bump('reqerrs');
					send(c, `REQERR,${p.LS_reqId},1,Bad%20reconf%20request%20(simulated)\r\n`);
					return;
				}
				if (f === 'unlimited' && ++restores === o.loseRestore) {
					// Lost with its connection: never applied, never answered.
					bump('lostReconfs');
					c.closing = true;
					c.ws._socket && c.ws._socket.destroy();
					return;
				}
				stats.reconf.push(f);
				bump('reconfs');
				if (ack)
					send(c, `REQOK,${p.LS_reqId}\r\n`);
				s.log.push(`CONF,${sub.id},${f},filtered`);
				pump(c);
			} else {
				if (ack)
					send(c, `REQOK,${p.LS_reqId}\r\n`);
			}
			return;
		}
		default:
			send(c, `ERROR,1,Unknown%20request%20${encode(name)}\r\n`);
		}
	}

	// HTTP: create_session.txt (the official client's retry after a CONERR), and the HTTP
	// polling it recovers with after a dropped WebSocket: bind_session.txt (with
	// LS_recovery_from the first time, then plain polls) answers CONOK, PROG when recovering,
	// what the session has from the cursor on, and LOOP,0 (poll again); control.txt carries
	// control requests (one per line) while the session is bound over HTTP.
	const onHttp = (req, res) => {
		const name = req.method === 'POST' &&
			(/^\/lightstreamer\/(create_session|bind_session|control)\.txt(\?|$)/.exec(req.url) || [])[1];
		if (!name) {
			res.writeHead(404).end();
			return;
		}
		let body = '';
		req.on('data', (d) => { body += d; });
		req.on('end', () => {
			const chunks = [];
			const fake = { ws: { send: (t) => chunks.push(t), close: () => { fake.closing = true; },
				terminate: () => { fake.closing = true; }, bufferedAmount: 0 },
			session: null, cursor: 0, sinceBind: 0, closing: name === 'create_session', http: true };
			if (name === 'control') {
				for (const line of body.split('\r\n').filter((x) => x)) {
					const p = params(line);
					fake.session = sessions.get(p.LS_session) || null;
					onRequest(fake, 'control', p);
				}
			} else {
				if (name === 'bind_session')
					bump('httpBinds');
				onRequest(fake, name, params(body));
			}
			const s = fake.session;
			if (name !== 'control' && s) {
				if (s.conn === fake)
					s.conn = null;
				if (!fake.closing || name === 'create_session')
					chunks.push('LOOP,0\r\n');
			}
			res.writeHead(200, { 'content-type': 'text/enriched; charset=utf-8' });
			res.end(chunks.join(''));
		});
	};
	// --tls-cert/--tls-key: wss:// (TLS) instead of ws://.
	const server = o.tlsCert ?
		https.createServer({ cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) }, onHttp) :
		http.createServer(onHttp);
	const wss = new WebSocketServer({
		server, path: '/lightstreamer',
		handleProtocols: (protos) => (protos.has('TLCP-2.5.0.lightstreamer.com') ?
			'TLCP-2.5.0.lightstreamer.com' : false),
	});
	const ready = new Promise((r) => server.listen(o.port, '127.0.0.1', r));
	wss.on('connection', (ws) => {
		const c = { ws, session: null, cursor: 0, sinceBind: 0, closing: false };
		ws.on('message', (data) => {
			for (const msg of data.toString('utf8').split(/\r\n(?=wsok|create_session|bind_session|control)/)) {
				const nl = msg.indexOf('\r\n');
				const name = (nl < 0 ? msg : msg.slice(0, nl)).trim();
				onRequest(c, name, params(nl < 0 ? '' : msg.slice(nl + 2)));
			}
		});
		ws.on('close', () => {
			c.closing = true;
			if (c.session && c.session.conn === c)
				c.session.conn = null;
		});
		ws.on('error', () => {});
	});
	// Keepalives and SYNC for every bound connection.
	const ticker = setInterval(() => {
		for (const s of sessions.values()) {
			const c = s.conn;
			if (!c || c.closing)
				continue;
			if (o.syncMs > 0 && Date.now() - (c.lastSync || 0) >= o.syncMs) {
				c.lastSync = Date.now();
				bump('syncs');
				send(c, `SYNC,${Math.floor((Date.now() - s.started) / 1000)}\r\n`);
			} else if (c.cursor >= s.log.length) {
				send(c, 'PROBE\r\n');
			}
		}
	}, Math.max(100, Math.min(o.keepaliveMs, o.syncMs || o.keepaliveMs)));
	writeStats();
	return {
		wss, stats, ready,
		address: () => server.address(),
		close: () => { clearInterval(ticker); writeStats(); for (const s of sessions.values()) for (const sub of s.subs) clearInterval(sub.timer); for (const c of wss.clients) c.terminate(); wss.close(); server.close(); server.closeAllConnections(); },
	};
}

if (import.meta.url === `file://${process.argv[1]}`) {
	const o = parseArgs(process.argv.slice(2));
	const sim = startSim(o);
	sim.ready.then(() => {
		console.log(JSON.stringify({ event: 'listening', port: sim.address().port }));
	});
	const stop = () => { sim.close(); process.exit(0); };
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
	// Stop by ourselves if the parent forgets us.
	const lifeS = +(process.env.SB_SIM_MAX_S || 600);
	setTimeout(stop, lifeS * 1000).unref();
}
