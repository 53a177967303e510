// newchart.mjs: makes charts/<svc>/ for a service from its binary's config table — the one step
// adding a service to the deployment takes. Afterwards: review values.yaml (callers, stores,
// autoscaling signal), run `node tests/deploy/schema.mjs charts build/bin`, and `make deploy-check`.
//
// Usage: node newchart.mjs CHARTS_DIR BIN_DIR SVC OPS_PORT RPC_PORT [EDGE_ADDR_ENV:EDGE_PORT_ENV:PORT]
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { readReference, split } from "./reference.mjs";

const [chartsDir, binDir, svc, ops, rpc, edgeArg] = process.argv.slice(2);
if (!rpc) {
  console.error("usage: node newchart.mjs CHARTS_DIR BIN_DIR SVC OPS_PORT RPC_PORT [ADDR_ENV:PORT_ENV:PORT]");
  process.exit(2);
}
const dir = path.join(chartsDir, svc);
if (fs.existsSync(dir)) {
  console.error(`${dir} exists already`);
  process.exit(1);
}
const rows = readReference(path.join(binDir, `sb-${svc}`));
let edge = null;
if (edgeArg) {
  const [addrEnv, portEnv, p] = edgeArg.split(":");
  edge = { addrEnv, portEnv, port: Number(p) };
}
const parts = split(rows, edge);
// In a cluster the stores are the services of k8s/ (CloudNativePG, Strimzi, Redis behind its
// Sentinel-aware proxy) and the public origin is the Ingress host.
const clusterDefaults = {
  KAFKA_BROKERS: "switchboard-kafka-bootstrap:9092",
  SB_KAFKA_REPLICATION_FACTOR: "3",
  SB_AUTH_ISSUER: "https://switchboard.example.com",
  SB_WS_ALLOWED_ORIGINS: "https://switchboard.example.com",
  SB_OTLP_ENDPOINT: "http://otel-collector.monitoring:4318",
};
const stores = [];
if (rows.some((r) => r.env === "DATABASE_URL")) stores.push("postgres");
if (rows.some((r) => r.env === "REDIS_URL")) stores.push("redis");
if (rows.some((r) => r.env === "KAFKA_BROKERS")) stores.push("kafka");
const values = {
  image: { repository: `ghcr.io/switchboard/sb-${svc}`, tag: "0.1.0", pullPolicy: "IfNotPresent" },
  service: { name: svc, ports: { ops: Number(ops), rpc: Number(rpc) }, edge },
  replicaCount: 2,
  config: Object.fromEntries(parts.config.map((r) => [r.env, clusterDefaults[r.env] ?? r.def])),
  secretEnv: parts.secret,
  secret: { create: false, existingSecret: "" },
  upstreams: Object.fromEntries(parts.upstreams.map((u) => [u.name, u.port])),
  callers: [],
  networkPolicy: { stores },
  autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6, customMetric: null },
};
fs.mkdirSync(path.join(dir, "templates"), { recursive: true });
fs.writeFileSync(
  path.join(dir, "Chart.yaml"),
  YAML.stringify({
    apiVersion: "v2",
    name: svc,
    description: `Switchboard ${svc} service`,
    type: "application",
    version: "0.1.0",
    appVersion: "0.1.0",
    dependencies: [{ name: "switchboard-common", version: "0.1.0", repository: "file://../switchboard-common" }],
    // Argo CD progressive-sync wave (argocd/applicationset.yaml): 2 for a service that calls others.
    annotations: { "switchboard.io/wave": "2" },
  }),
);
fs.writeFileSync(path.join(dir, "templates", "all.yaml"), '{{ include "sb.all" . }}\n');
fs.writeFileSync(path.join(dir, "values.yaml"), `# sb-${svc}: what differs from the library defaults; config is the service's\n# --config-reference minus what the chart computes (ports, upstream URLs) and secretEnv.\n` + YAML.stringify(values, { lineWidth: 0 }));
console.log(`wrote ${dir}`);
