// check-dashboards.mjs: type-checks every Grafana dashboard of k8s/observability/dashboards
// (or the files given as arguments) against @grafana/schema's types with the TypeScript
// compiler. Each dashboard becomes an object literal assigned to a strictly typed constant, so
// the compiler rejects an unknown or misspelt field anywhere (excess property checks) and a
// field of the wrong type. Panels are typed by their `type`: timeseries and stat panels take
// those panels' own option and field-config types from @grafana/schema; rows are RowPanel;
// any other panel type is an error (add its types here first). The schema's string enums are
// accepted as their values, as JSON writes them (Json<T>). Queries are Prometheus
// queries: refId and expr required, nothing else but the fields listed in PromTarget.
// Exit status 0 when every file compiles, 1 otherwise (with the compiler's messages).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const dir = join(root, 'k8s/observability/dashboards');
const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => resolve(f))
  : readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
if (files.length === 0) {
  console.error('no dashboards to check');
  process.exit(1);
}

const schema = '@grafana/schema';
const preamble = `import type { Dashboard, Panel, RowPanel, DataSourceRef } from '${schema}';
import type { Options as TimeSeriesOptions, FieldConfig as TimeSeriesFieldConfig } from '${schema}/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Options as StatOptions } from '${schema}/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
interface PromTarget {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: DataSourceRef;
  instant?: boolean;
  range?: boolean;
  interval?: string;
  format?: 'time_series' | 'table' | 'heatmap';
}
type TimeSeriesPanel = Omit<Panel<TimeSeriesOptions, TimeSeriesFieldConfig>, 'type' | 'targets' | 'options'> & {
  type: 'timeseries'; targets: PromTarget[]; options: TimeSeriesOptions;
};
type StatPanel = Omit<Panel<StatOptions>, 'type' | 'targets' | 'options'> & {
  type: 'stat'; targets: PromTarget[]; options: StatOptions;
};
type Row = Omit<RowPanel, 'type'> & { type: 'row' };
type SwitchboardDashboard = Omit<Dashboard, 'panels'> & {
  uid: string; title: string; panels: Array<TimeSeriesPanel | StatPanel | Row>;
};
// JSON spells the schema's string enums by their values: accept exactly those values.
type Json<T> = T extends string ? \`\${T}\` : T extends Array<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
`;

const work = mkdtempSync(join(tmpdir(), 'sb-dash-'));
const sources = [];
files.forEach((f, i) => {
  const json = JSON.parse(readFileSync(f, 'utf8'));
  const ts = join(work, `d${i}.ts`);
  writeFileSync(ts, `${preamble}\n// ${f}\nexport const d${i}: Json<SwitchboardDashboard> = ${JSON.stringify(json, null, 2)};\n`);
  sources.push(ts);
});
writeFileSync(join(work, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    strict: true, noEmit: true, target: 'es2022', module: 'nodenext',
    moduleResolution: 'nodenext', skipLibCheck: true,
    typeRoots: [], baseUrl: here, paths: { [`${schema}`]: [join(here, 'node_modules', schema)], [`${schema}/*`]: [join(here, 'node_modules', schema, '*')] },
  },
  files: sources,
}));
try {
  execFileSync(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', join(work, 'tsconfig.json')],
    { stdio: 'pipe', cwd: here });
  console.log(`ok: ${files.length} dashboard(s) match @grafana/schema`);
} catch (e) {
  const out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  // name the dashboard file instead of the generated one
  console.error(out.replace(/[^\s(]*\bd(\d+)\.ts/g, (m, n) => files[Number(n)] ?? m));
  process.exit(1);
}
