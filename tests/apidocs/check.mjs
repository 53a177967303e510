// Validates the API documents with independent parsers: OpenAPI 3.1 (swagger-parser) and
// AsyncAPI 3 (the AsyncAPI project's parser); then checks that docs/api/openapi.yaml and the
// gateway's route table name the same routes, in both directions. The table comes from the code
// itself: `sb-gateway --routes` prints one "METHOD /path/{param}" line per row of the table its
// server matches requests with (services/gateway/routes*.c). Exits non-zero with the problems
// listed.
//
// Environment: SB_SOURCE_ROOT (default: this checkout), SB_BUILD_ROOT (default: build), whose
// bin/sb-gateway is run.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Parser } from '@asyncapi/parser';

const root = process.env.SB_SOURCE_ROOT ?? new URL('../..', import.meta.url).pathname;
const buildRoot = process.env.SB_BUILD_ROOT ?? `${root}/build`;
let failed = 0;

// Routes of the gateway deliberately left out of openapi.yaml, each with its reason. Keep it
// short: a route belongs in the document unless it is not part of the API. Today every route
// is documented (the console's `/` and `/console/{file}` and the development-only
// `/dev/credentials` included, under tag "console"), so the list is empty; an entry is
// "METHOD /path", e.g. 'GET /internal/debug' (reason in a comment beside it).
const UNDOCUMENTED = new Set([]);

// Services other than the gateway that serve documented routes themselves (sb-<name> --routes).
const EDGES = ['files'];

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let api = null;
try {
  api = await SwaggerParser.validate(`${root}/docs/api/openapi.yaml`);
  const paths = Object.keys(api.paths ?? {});
  if (paths.length === 0) throw new Error('no paths');
  console.log(`ok: openapi.yaml valid (${api.openapi}, ${paths.length} paths)`);
} catch (e) {
  failed++;
  console.log(`FAIL: openapi.yaml: ${e.message}`);
}

// The routes both ways: every row of the table is an operation of the document (or listed in
// UNDOCUMENTED), and every operation of the document is a row.
if (api !== null) {
  const bin = `${buildRoot}/bin/sb-gateway`;
  let table = null;
  if (!existsSync(bin)) {
    failed++;
    console.log(`FAIL: routes: ${bin} does not exist (build it, or set SB_BUILD_ROOT)`);
  } else {
    try {
      table = execFileSync(bin, ['--routes'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l !== '');
      // Edge services with routes of their own behind the ingress (files: /files/,
      // /v1/files/{id}/content) are documented in the same document.
      for (const edge of EDGES) {
        table.push(...execFileSync(`${buildRoot}/bin/sb-${edge}`, ['--routes'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => l !== ''));
      }
    } catch (e) {
      failed++;
      console.log(`FAIL: routes: ${bin} --routes: ${e.message}`);
    }
  }
  if (table !== null) {
    const bad = table.filter((l) => !/^[A-Z]+ \/\S*$/.test(l));
    const code = new Set(table);
    const doc = new Set();
    for (const [path, item] of Object.entries(api.paths)) {
      for (const m of METHODS) if (item[m] !== undefined) doc.add(`${m.toUpperCase()} ${path}`);
    }
    const missing = [...code].filter((r) => !doc.has(r) && !UNDOCUMENTED.has(r));
    const unknown = [...doc].filter((r) => !code.has(r));
    const stale = [...UNDOCUMENTED].filter((r) => !code.has(r) || doc.has(r));
    for (const l of bad) console.log(`FAIL: routes: sb-gateway --routes printed "${l}", not "METHOD /path"`);
    for (const r of missing)
      console.log(`FAIL: routes: ${r} is a route of the gateway (services/gateway/routes*.c) but not an operation of docs/api/openapi.yaml`);
    for (const r of unknown)
      console.log(`FAIL: routes: docs/api/openapi.yaml documents ${r}, which is no route of the gateway (sb-gateway --routes)`);
    for (const r of stale)
      console.log(`FAIL: routes: UNDOCUMENTED in tests/apidocs/check.mjs lists ${r}, which is ${code.has(r) ? 'documented after all' : 'no route'}: remove it`);
    if (table.length === 0) console.log('FAIL: routes: sb-gateway --routes printed nothing');
    const n = bad.length + missing.length + unknown.length + stale.length + (table.length === 0 ? 1 : 0);
    if (n > 0) failed++;
    else console.log(`ok: the ${code.size} routes of the gateway are the ${doc.size} operations of openapi.yaml (${UNDOCUMENTED.size} left out on purpose)`);
  }
}

const parser = new Parser();
const text = await readFile(`${root}/docs/api/asyncapi.yaml`, 'utf8');
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  failed++;
  for (const d of errors) console.log(`FAIL: asyncapi.yaml: ${d.path.join('.')}: ${d.message}`);
} else {
  console.log(`ok: asyncapi.yaml valid (${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages)`);
}
console.log(failed === 0 ? 'PASS: API documents' : 'FAIL: API documents');
process.exit(failed === 0 ? 0 : 1);
