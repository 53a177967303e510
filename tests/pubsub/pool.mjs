// pool.mjs: run by pubsub_test.sh against an sb-pubsub with SB_PUBSUB_DB_CONNECTIONS=1: the one
// connection is not held by long polls while they wait (services/pubsub/pool.c). Three consumers
// long-poll an empty topic for 4 s; a publish made meanwhile must be answered, and delivered to
// one of them, within 1.5 s. A long poll that kept the connection through its wait would hold
// the publish (and the other polls) back for the whole 4 s.
import assert from 'node:assert/strict';
import { expect, topic, publish, consume } from './lib.mjs';

const t = await topic({ type: 'queue', default_strategy: 'direct' });
const t0 = Date.now();
const polls = Array.from({ length: 3 }, () =>
	consume(t.name, { max: 1, wait_ms: 4000 }).then((m) => ({ m, ms: Date.now() - t0 })));
await new Promise((r) => setTimeout(r, 300)); // the polls are waiting now
const p0 = Date.now();
const r = await publish({ topic: t.name, payload: { n: 1 } });
const publishMs = Date.now() - p0;
assert.ok(publishMs < 1500, `the publish took ${publishMs} ms while long polls waited`);
const got = await Promise.all(polls);
const served = got.filter((g) => g.m.length === 1);
assert.equal(served.length, 1, `one poll gets the message: ${JSON.stringify(got)}`);
assert.equal(served[0].m[0].id, r.id);
assert.ok(served[0].ms - (p0 - t0) < 1500, `delivered ${served[0].ms - (p0 - t0)} ms after the publish`);
for (const g of got.filter((g) => g.m.length === 0))
	assert.ok(g.ms >= 3900, `an empty poll ended after its wait (${g.ms} ms)`);
// and what is stored is still served with one connection
const again = await expect(200, 'GET', `/api/v1/topics/${t.name}`);
assert.equal(again.name, t.name);
console.log(`pool: publish answered in ${publishMs} ms while 3 long polls waited on 1 connection`);
