// sim_check.mjs: checks the TLCP simulator (sim.mjs) with the official Lightstreamer client
// (npm lightstreamer-client-node 9.2.2, TLCP 2.5.0), so that the simulator sb-ingest is tested
// against speaks real TLCP. For each scripted session the client subscribes in MERGE mode over
// WebSocket streaming and must see, for every item, updates 1..N in order with exactly the
// values the simulator meant (value(i, k)), unchanged fields carried over as the client
// decodes them. Scenarios: normal updates, LOOP and rebind, CONERR then success, SYNC.
// A dropped connection: the client recovers over HTTP polling, which the simulator serves
// (sb-ingest recovers over the WebSocket; tests/integration checks that).
// Exits 0 when every scenario passes; prints one line per scenario.
import assert from 'node:assert/strict';
import ls from 'lightstreamer-client-node';
import { startSim, value, FIELDS } from './sim.mjs';

const { LightstreamerClient, Subscription } = ls;
const ITEMS = ['item1', 'item2', 'item3'];

// forced: the client's forced transport ('' lets it choose: it then recovers a dropped
// WebSocket over HTTP polling).
async function scenario(name, simOpts, expect, forced = 'WS-STREAMING') {
	const sim = startSim({ port: 0, items: ITEMS, adapterSet: 'SIM', ...simOpts });
	await sim.ready;
	const port = sim.address().port;
	const client = new LightstreamerClient(`http://127.0.0.1:${port}`, 'SIM');
	if (forced)
		client.connectionOptions.setForcedTransport(forced);
	client.connectionOptions.setRetryDelay(200);
	client.connectionOptions.setFirstRetryMaxDelay(100);
	const seen = new Map(ITEMS.map((x) => [x, []]));
	const statuses = [];
	const errors = [];
	const sub = new Subscription('MERGE', ITEMS, FIELDS);
	sub.setRequestedSnapshot('yes');
	const total = ITEMS.length * simOpts.updates;
	let got = 0;
	const done = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`timeout: ${got}/${total} updates, ` +
			`statuses ${statuses.join(" > ")}, errors ${errors.join("; ")}, sim ${JSON.stringify(sim.stats)}`)), 20000);
		sub.addListener({
			onItemUpdate: (u) => {
				const vals = {};
				for (const f of FIELDS)
					vals[f] = u.getValue(f);
				seen.get(u.getItemName()).push(vals);
				if (++got === total) {
					clearTimeout(timer);
					resolve();
				}
			},
			onSubscriptionError: (code, msg) => errors.push(`sub ${code} ${msg}`),
		});
	});
	client.addListener({
		onStatusChange: (s) => statuses.push(s),
		onServerError: (code, msg) => errors.push(`server ${code} ${msg}`),
	});
	client.subscribe(sub);
	client.connect();
	try {
		await done;
		// Let anything extra (a duplicate) arrive before judging.
		await new Promise((r) => setTimeout(r, 300));
		for (const [item, ups] of seen) {
			const i = ITEMS.indexOf(item) + 1;
			assert.equal(ups.length, simOpts.updates, `${item}: ${ups.length} updates`);
			ups.forEach((vals, j) => assert.deepEqual(vals, value(i, j + 1),
				`${item} update ${j + 1}`));
		}
		expect(sim.stats, statuses);
		console.log(`ok - ${name}: ${total} updates, stats ${JSON.stringify(sim.stats)}`);
	} finally {
		client.disconnect();
		sim.close();
	}
}

let failed = 0;
const run = async (name, opts, expect, forced) => {
	try {
		await scenario(name, opts, expect, forced);
	} catch (e) {
		failed++;
		console.log(`not ok - ${name}: ${e.message}`);
	}
};

await run('normal updates', { updates: 50 }, (st) => {
	assert.equal(st.creates, 1);
	assert.equal(st.loops, 0);
});
await run('LOOP and rebind', { updates: 60, loopEvery: 40 }, (st) => {
	assert.ok(st.loops >= 3, `loops ${st.loops}`);
	assert.ok(st.binds >= 3, `binds ${st.binds}`);
	assert.equal(st.creates, 1);
});
await run('CONERR then success', { updates: 20, conerr: 2 }, (st, statuses) => {
	assert.equal(st.conerrs, 2);
	assert.equal(st.creates, 3);
	assert.ok(statuses.includes('CONNECTED:WS-STREAMING'), statuses.join(','));
});
await run('SYNC', { updates: 30, rate: 60, syncMs: 150 }, (st) => {
	assert.ok(st.syncs >= 2, `syncs ${st.syncs}`);
});
// A dropped WebSocket (every 50 notifications, the server resending from 3 before what the
// client asked): the official client recovers the session over HTTP polling
// (bind_session.txt with LS_recovery_from) and must still see every update once, in order.
await run('drop and recovery over HTTP polling', { updates: 60, rate: 200, dropEvery: 50,
	dropRewind: 3 }, (st, statuses) => {
	assert.ok(st.drops >= 1, `drops ${st.drops}`);
	assert.ok(st.recoveries >= 1, `recoveries ${st.recoveries}`);
	assert.ok(st.httpBinds >= 1, `HTTP binds ${st.httpBinds}`);
	assert.equal(st.creates, 1);
	assert.ok(statuses.includes('DISCONNECTED:TRYING-RECOVERY'), statuses.join(','));
}, '');
process.exit(failed ? 1 : 0);
