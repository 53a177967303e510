// Validates the API documents with independent parsers: OpenAPI 3.1 (swagger-parser) and
// AsyncAPI 3 (the AsyncAPI project's parser). Exits non-zero with the problems listed.
import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Parser } from '@asyncapi/parser';

const root = process.env.SB_SOURCE_ROOT ?? new URL('../..', import.meta.url).pathname;
let failed = 0;

try {
  const api = await SwaggerParser.validate(`${root}/docs/api/openapi.yaml`);
  const paths = Object.keys(api.paths ?? {});
  if (paths.length === 0) throw new Error('no paths');
  console.log(`ok: openapi.yaml valid (${api.openapi}, ${paths.length} paths)`);
} catch (e) {
  failed++;
  console.log(`FAIL: openapi.yaml: ${e.message}`);
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
