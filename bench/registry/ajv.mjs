// ajv.mjs DIR SECONDS: validates DIR/docs.jsonl against DIR/schema.json with ajv (all errors
// collected, as the registry does), each document parsed from its text first (the registry
// receives text), over and over for SECONDS; prints "docs_per_s invalid_per_pass".
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';

const [dir, secs] = process.argv.slice(2);
const schema = JSON.parse(readFileSync(`${dir}/schema.json`, 'utf8'));
const docs = readFileSync(`${dir}/docs.jsonl`, 'utf8').split('\n').filter((l) => l.length > 0);
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
let invalid = 0;
for (const t of docs) if (!validate(JSON.parse(t))) invalid++;
let n = 0;
const t0 = process.hrtime.bigint();
const until = t0 + BigInt(Math.round(Number(secs) * 1e9));
let now = t0;
while (now < until) {
  for (const t of docs) validate(JSON.parse(t));
  n += docs.length;
  now = process.hrtime.bigint();
}
console.log(`${Math.round(n / (Number(now - t0) / 1e9))} ${invalid}`);
