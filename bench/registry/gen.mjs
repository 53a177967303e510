// gen.mjs DIR N: writes DIR/schema.json (a draft 7 schema of an order event) and DIR/docs.jsonl
// (N documents, one per line, deterministic; about one in four breaks the schema in one of
// several ways), the input both validators of registry_validate_bench.sh read.
import { writeFileSync } from 'node:fs';

const [dir, nArg] = process.argv.slice(2);
const n = Number(nArg);
const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'customer', 'status', 'items', 'total', 'created_at'],
  properties: {
    id: { type: 'string', pattern: '^ord_[0-9a-f]{16}$' },
    customer: {
      type: 'object',
      required: ['id', 'email'],
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 64 },
        email: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$' },
        tier: { enum: ['free', 'pro', 'enterprise'] },
      },
    },
    status: { enum: ['new', 'paid', 'shipped', 'cancelled'] },
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'qty', 'price'],
        properties: {
          sku: { type: 'string', maxLength: 32 },
          qty: { type: 'integer', minimum: 1, maximum: 1000 },
          price: { type: 'number', exclusiveMinimum: 0 },
        },
      },
    },
    total: { type: 'number', minimum: 0 },
    note: { type: ['string', 'null'], maxLength: 500 },
    created_at: { type: 'string' },
  },
};
let seed = 42;
const rnd = (k) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k; };
const hex = () => Array.from({ length: 16 }, () => '0123456789abcdef'[rnd(16)]).join('');
const lines = [];
for (let i = 0; i < n; i++) {
  const items = Array.from({ length: 1 + rnd(5) }, (_, j) => ({ sku: `sku-${rnd(1000)}-${j}`, qty: 1 + rnd(9), price: 0.5 + rnd(10000) / 100 }));
  const d = {
    id: `ord_${hex()}`,
    customer: { id: `cus_${rnd(100000)}`, email: `user${rnd(1000)}@example.com`, tier: ['free', 'pro', 'enterprise'][rnd(3)] },
    status: ['new', 'paid', 'shipped', 'cancelled'][rnd(4)],
    items,
    total: items.reduce((s, x) => s + x.qty * x.price, 0),
    note: rnd(3) === 0 ? null : 'leave at the door',
    created_at: '2026-12-06T21:00:00Z',
  };
  switch (i % 16) { // one in four breaks the schema, in different places
    case 3: d.items[0].qty = 0; break;
    case 7: d.status = 'lost'; break;
    case 11: d.customer.email = 'nobody'; break;
    case 15: d.extra = true; break;
  }
  lines.push(JSON.stringify(d));
}
writeFileSync(`${dir}/schema.json`, JSON.stringify(schema));
writeFileSync(`${dir}/docs.jsonl`, lines.join('\n') + '\n');
