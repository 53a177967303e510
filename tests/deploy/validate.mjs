// validate.mjs: checks on the manifests `make deploy-check` rendered, beside kcheck's strict
// schema validation:
//  1. every object through the npm kubernetes-models type of its apiVersion/kind (types and
//     required fields), for the kinds those packages have;
//  2. every service chart's env against its binary's config table, both ways: the ConfigMap and
//     the Secret references together hold exactly the rows of `sb-<svc> --config-reference`, none
//     twice, every row marked secret comes from a Secret; then the binary itself checks the
//     rendered values (`sb-<svc> --check-config` with that environment);
//  3. the Ingress routes against tools/nginx.conf.in (the same path goes to the same service);
//  4. the NetworkPolicy allow-lists against the RPC URLs (whoever calls a service is allowed in);
//  5. the pod rules the issue sets: securityContext, probes on the ops port, the native sidecar,
//     HPA v2 with CPU 70 % and a 300 s scale-down window, VPA in recommendation mode.
//
//  6. the cluster resources: a KafkaTopic for every topic of services/common/sb_names.h and
//     its DLQ, a prometheus-adapter rule for every custom metric an HPA scales on;
//  7. argocd/: every chart has a progressive-sync wave the ApplicationSet has a step for, and
//     every environment the charts have is one the ApplicationSet generates, with an overlay.
//
// Usage: node validate.mjs RENDERED_DIR BIN_DIR NGINX_CONF ENV...  (run from anywhere; the
// repository is found from this file's place)
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import YAML from "yaml";
import { readReference } from "./reference.mjs";

const [renderedDir, binDir, nginxConf, ...envs] = process.argv.slice(2);
let failures = 0;
const fail = (msg) => {
  failures++;
  console.log(`FAIL: ${msg}`);
};

// --- 1. kubernetes-models ----------------------------------------------------------------
const packages = [
  { test: (g) => g === "" || !g.includes(".") || g.endsWith(".k8s.io"), pkg: "kubernetes-models" },
  { test: (g) => g === "monitoring.coreos.com", pkg: "@kubernetes-models/prometheus-operator" },
  { test: (g) => g.endsWith("cert-manager.io"), pkg: "@kubernetes-models/cert-manager" },
  { test: (g) => g === "argoproj.io", pkg: "@kubernetes-models/argo-cd" },
];
const modelCache = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  let model = null;
  for (const p of packages) {
    if (!p.test(group)) continue;
    const spec = group === "" ? `${p.pkg}/${version}/${kind}` : `${p.pkg}/${group}/${version}/${kind}`;
    try {
      const mod = await import(spec);
      model = mod[kind] ?? null;
    } catch {
      model = null;
    }
    break;
  }
  modelCache.set(key, model);
  return model;
}

function loadDocs(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
    .map((d) => d.toJS())
    .filter((o) => o && typeof o === "object");
}

const rendered = {}; // env -> chart -> objects
let nModel = 0;
const noModel = new Set();
for (const env of envs) {
  rendered[env] = {};
  const dir = path.join(renderedDir, env);
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
    const objs = loadDocs(path.join(dir, f));
    rendered[env][f.replace(/\.yaml$/, "")] = objs;
    for (const o of objs) {
      const Model = await modelFor(o.apiVersion, o.kind);
      if (!Model) {
        noModel.add(`${o.apiVersion} ${o.kind}`);
        continue;
      }
      nModel++;
      try {
        new Model(o).validate();
      } catch (e) {
        fail(`${env}/${f}: ${o.kind}/${o.metadata?.name}: ${e.message.split("\n").slice(0, 4).join(" ")}`);
      }
    }
  }
}
for (const extra of ["argocd", "examples"]) {
  const dir = path.join(renderedDir, extra);
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    for (const o of loadDocs(path.join(dir, f))) {
      const Model = await modelFor(o.apiVersion, o.kind);
      if (!Model) {
        noModel.add(`${o.apiVersion} ${o.kind}`);
        continue;
      }
      nModel++;
      try {
        new Model(o).validate();
      } catch (e) {
        fail(`${extra}/${f}: ${o.kind}/${o.metadata?.name}: ${e.message.split("\n").slice(0, 4).join(" ")}`);
      }
    }
  }
}
console.log(`models: ${nModel} objects validated by kubernetes-models types`);
console.log(`models: no npm model (kcheck's CRD schemas only): ${[...noModel].sort().join(", ") || "none"}`);

// --- 2. env against --config-reference ------------------------------------------------------
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const serviceCharts = {}; // env -> svc -> objects
for (const env of envs) {
  serviceCharts[env] = {};
  for (const [chart, objs] of Object.entries(rendered[env])) {
    // A service chart's Deployment carries the library's labels (cluster.yaml's Redis proxy does not).
    const dep = objs.find((o) => o.kind === "Deployment" && o.metadata.labels?.["helm.sh/chart"]);
    if (dep && dep.metadata.name.startsWith("sb-")) serviceCharts[env][dep.metadata.name.slice(3)] = objs;
  }
}
let nEnvChecked = 0;
for (const env of envs) {
  for (const [svc, objs] of Object.entries(serviceCharts[env])) {
    const where = `${env}/${svc}`;
    const bin = path.join(binDir, `sb-${svc}`);
    if (!fs.existsSync(bin)) {
      fail(`${where}: no binary ${bin} to read the config table from`);
      continue;
    }
    const ref = readReference(bin);
    const cm = find(objs, "ConfigMap", `sb-${svc}-config`);
    const dep = find(objs, "Deployment", `sb-${svc}`);
    const ctr = dep.spec.template.spec.containers.find((c) => c.name === svc);
    if (!cm || !ctr) {
      fail(`${where}: no ConfigMap sb-${svc}-config or container ${svc}`);
      continue;
    }
    const usesCm = (ctr.envFrom ?? []).some((e) => e.configMapRef?.name === cm.metadata.name);
    if (!usesCm) fail(`${where}: the container does not take its env from ${cm.metadata.name}`);
    const cmKeys = Object.keys(cm.data ?? {});
    const secretRefs = (ctr.env ?? []).filter((e) => e.valueFrom?.secretKeyRef);
    const plainEnv = (ctr.env ?? []).filter((e) => !e.valueFrom?.secretKeyRef).map((e) => e.name);
    if (plainEnv.length) fail(`${where}: env set outside the ConfigMap and Secret: ${plainEnv.join(", ")}`);
    const secretKeys = secretRefs.map((e) => e.name);
    const refNames = new Set(ref.map((r) => r.env));
    const all = [...cmKeys, ...secretKeys];
    for (const k of all) if (!refNames.has(k)) fail(`${where}: ${k} is set but sb-${svc} has no such variable`);
    for (const r of ref) {
      const n = all.filter((k) => k === r.env).length;
      if (n === 0) fail(`${where}: ${r.env} of sb-${svc} --config-reference is not set by the chart`);
      if (n > 1) fail(`${where}: ${r.env} is set twice (ConfigMap and Secret)`);
      if (r.secret && !secretKeys.includes(r.env)) fail(`${where}: ${r.env} is a secret row but does not come from a Secret`);
    }
    for (const e of secretRefs) {
      if (e.valueFrom.secretKeyRef.optional) fail(`${where}: ${e.name} is optional: the pod must not start without it`);
    }
    // The binary checks the values: ConfigMap data plus, for the Secret, the rendered dev
    // Secret's values where there is one, or well-formed stand-ins.
    const secretObj = objs.find((o) => o.kind === "Secret");
    const standIn = {
      DATABASE_URL: "postgresql://switchboard:x@switchboard-pg-rw:5432/switchboard",
      REDIS_URL: "redis://sb-redis:6379",
      SB_AUTH_KEY_ENCRYPTION_KEY: "00".repeat(32),
      SB_INGEST_FEED_PASSWORD: "stand-in",
      SB_FILES_S3_SECRET_KEY: "stand-in",
    };
    const env2 = { PATH: process.env.PATH };
    Object.assign(env2, cm.data);
    for (const k of secretKeys) {
      const v = secretObj?.stringData?.[k] ?? standIn[k];
      if (v === undefined) fail(`${where}: no stand-in value for secret ${k}`);
      else env2[k] = v;
    }
    try {
      execFileSync(bin, ["--check-config"], { env: env2, stdio: "pipe" });
      nEnvChecked++;
    } catch (e) {
      fail(`${where}: sb-${svc} --check-config refuses the rendered environment: ${(e.stderr || e.stdout || "").toString().trim().split("\n").pop()}`);
    }
  }
}
console.log(`config: ${nEnvChecked} chart renders match their binary's config table and pass its --check-config`);

// --- 3. Ingress against nginx.conf.in ----------------------------------------------------
const conf = fs.readFileSync(nginxConf, "utf8");
const locs = [];
for (const m of conf.matchAll(/location\s+(~\s+)?(\S+)\s*\{([^}]*)\}/g)) {
  const up = /proxy_pass\s+http:\/\/sb_([a-z]+)/.exec(m[3]);
  if (up) locs.push({ regex: !!m[1], pat: m[2], svc: up[1] });
}
if (!locs.length) fail(`${nginxConf}: no locations found`);
function nginxRoute(p) {
  for (const l of locs) if (l.regex && new RegExp(l.pat).test(p)) return l.svc;
  let best = null;
  for (const l of locs) if (!l.regex && p.startsWith(l.pat) && (!best || l.pat.length > best.pat.length)) best = l;
  return best?.svc ?? null;
}
const prefixMatch = (prefix, p) => prefix === "/" || p === prefix || p.startsWith(prefix.replace(/\/$/, "") + "/");
const samples = ["/", "/v1/messages", "/v1/conversations/1/messages", "/oauth/token", "/.well-known/jwks.json", "/ws", "/ws/", "/ws/x", "/wsx", "/files", "/files/abc", "/filesx", "/v1/files", "/v1/files/abc", "/v1/filesx", "/console/"];
for (const env of envs) {
  const rules = [];
  for (const objs of Object.values(rendered[env]))
    for (const o of objs.filter((o) => o.kind === "Ingress"))
      for (const r of o.spec.rules) for (const p of r.http.paths) rules.push({ path: p.path, type: p.pathType, svc: p.backend.service.name.replace(/^sb-/, "") });
  let pending = 0;
  for (const s of samples) {
    let best = null;
    for (const r of rules) {
      const ok = r.type === "Exact" ? s === r.path : prefixMatch(r.path, s);
      if (ok && (!best || r.path.length > best.path.length)) best = r;
    }
    const want = nginxRoute(s);
    const have = best?.svc ?? null;
    if (want === have) continue;
    // A service nginx routes to but whose binary has no public port yet (files before its
    // edge lands): pending, and only while its config table has no HTTP/WS port.
    const wantBin = path.join(binDir, `sb-${want}`);
    const hasEdge = fs.existsSync(wantBin) && readReference(wantBin).some((r) => /_(HTTP|WS)_PORT$/.test(r.env));
    const chartHasEdge = Object.values(serviceCharts[env][want] ?? []).some((o) => o.kind === "Ingress");
    if (fs.existsSync(wantBin) && !hasEdge && !chartHasEdge) {
      pending++;
      console.log(`ingress: ${env}: ${s} → ${want} in nginx.conf.in, pending: sb-${want} has no public port yet (in-cluster: ${have})`);
      continue;
    }
    fail(`ingress: ${env}: ${s} goes to ${have} in the Ingress but to ${want} in ${nginxConf}`);
  }
  console.log(`ingress: ${env}: ${samples.length} paths compared with nginx.conf.in (${pending} pending)`);
}

// --- 4. NetworkPolicy allow-lists against who calls whom ---------------------------------
for (const env of envs) {
  for (const [svc, objs] of Object.entries(serviceCharts[env])) {
    const cm = find(objs, "ConfigMap", `sb-${svc}-config`);
    for (const k of Object.keys(cm.data)) {
      const m = /^SB_([A-Z]+)_RPC_URL$/.exec(k);
      if (!m) continue;
      const callee = m[1].toLowerCase();
      const np = find(serviceCharts[env][callee] ?? [], "NetworkPolicy");
      if (!serviceCharts[env][callee]) continue; // no chart for it (yet): nothing to allow
      const allowed = (np?.spec.ingress ?? []).flatMap((r) => (r.from ?? []).map((f) => f.podSelector?.matchLabels?.["app.kubernetes.io/name"]));
      if (!allowed.includes(`sb-${svc}`)) fail(`netpol: ${env}: sb-${svc} calls sb-${callee} (SB_${m[1]}_RPC_URL) but sb-${callee}'s NetworkPolicy does not let it in`);
      const mesh = find(serviceCharts[env][callee], "Deployment").spec.template.spec.initContainers?.find((c) => c.name === "mesh");
      if (mesh) {
        const allow = mesh.env.find((e) => e.name === "SB_MESH_ALLOW").value.split(",");
        if (!allow.includes(svc)) fail(`mesh: ${env}: sb-${callee}'s sidecar does not allow ${svc}`);
      }
    }
  }
}

// --- 5. pod rules ---------------------------------------------------------------------------
for (const env of envs) {
  for (const [svc, objs] of Object.entries(serviceCharts[env])) {
    const where = `${env}/${svc}`;
    const pod = find(objs, "Deployment").spec.template.spec;
    const psc = pod.securityContext ?? {};
    if (psc.runAsNonRoot !== true || psc.seccompProfile?.type !== "RuntimeDefault") fail(`${where}: pod securityContext`);
    // Only dev's Tilt live update may make the service's root writable (annotated on the pod).
    const liveUpdate = env === "dev" && find(objs, "Deployment").spec.template.metadata.annotations?.["switchboard.io/live-update"] === "true";
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      const sc = c.securityContext ?? {};
      const roRoot = sc.readOnlyRootFilesystem || (liveUpdate && c.name === svc);
      if (!(sc.runAsNonRoot && roRoot && sc.allowPrivilegeEscalation === false && JSON.stringify(sc.capabilities?.drop) === '["ALL"]' && sc.seccompProfile?.type === "RuntimeDefault"))
        fail(`${where}: container ${c.name}: securityContext is not the one the issue asks for`);
      if (!c.resources?.requests?.cpu || !c.resources?.limits?.memory) fail(`${where}: container ${c.name}: no cpu request or memory limit`);
    }
    const main = pod.containers.find((c) => c.name === svc);
    const probe = (p, want) => p?.httpGet?.path === want && p.httpGet.port === "ops";
    if (!probe(main.livenessProbe, "/healthz") || !probe(main.readinessProbe, "/ready") || !probe(main.startupProbe, "/healthz")) fail(`${where}: probes are not /healthz, /ready, /healthz on the ops port`);
    for (const ic of pod.initContainers ?? []) if (ic.name === "mesh" && ic.restartPolicy !== "Always") fail(`${where}: mesh sidecar is not a native sidecar`);
    const hpa = find(objs, "HorizontalPodAutoscaler");
    if (hpa) {
      const cpu = hpa.spec.metrics.find((m) => m.type === "Resource" && m.resource.name === "cpu");
      if (cpu?.resource.target.averageUtilization !== 70) fail(`${where}: HPA CPU target is not 70 %`);
      if (hpa.spec.behavior?.scaleDown?.stabilizationWindowSeconds !== 300) fail(`${where}: HPA scale-down stabilization is not 300 s`);
    }
    const vpa = find(objs, "VerticalPodAutoscaler");
    if (vpa && vpa.spec.updatePolicy?.updateMode !== "Off") fail(`${where}: VPA is not in recommendation mode`);
  }
}

// --- 6. cluster resources -----------------------------------------------------------------
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const names = fs.readFileSync(path.join(repo, "services/common/sb_names.h"), "utf8");
const dlq = /#define SB_TOPIC_DLQ_SUFFIX\s+"([^"]+)"/.exec(names)[1];
// A topic marked /* sink */ (where failed events end) has no .dlq of its own.
const topicDefs = [...names.matchAll(/#define (SB_TOPIC_[A-Z_]+)\s+"([^"]+)"([^\n]*)/g)].filter((m) => m[1] !== "SB_TOPIC_DLQ_SUFFIX");
const topics = topicDefs.map((m) => m[2]);
const sinks = new Set(topicDefs.filter((m) => /\/\*\s*sink\b/.test(m[3])).map((m) => m[2]));
if (!topics.length) fail("sb_names.h: no SB_TOPIC_ names found");
for (const env of envs) {
  const cluster = rendered[env].cluster;
  if (!cluster) {
    fail(`${env}: no cluster.yaml (k8s/overlays/${env}) rendered`);
    continue;
  }
  const kt = cluster.filter((o) => o.kind === "KafkaTopic").map((o) => o.spec.topicName ?? o.metadata.name);
  const want = topics.flatMap((t) => (sinks.has(t) ? [t] : [t, t + dlq]));
  for (const t of want) if (!kt.includes(t)) fail(`${env}: no KafkaTopic for ${t} (services/common/sb_names.h)`);
  for (const t of kt) if (!want.includes(t)) fail(`${env}: KafkaTopic ${t} is not a topic of services/common/sb_names.h`);
  const adapter = cluster.find((o) => o.kind === "ConfigMap" && o.metadata.name === "switchboard-adapter-rules");
  const served = adapter ? YAML.parse(adapter.data["config.yaml"]).rules.map((r) => r.name.as) : [];
  for (const objs of Object.values(serviceCharts[env]))
    for (const h of objs.filter((o) => o.kind === "HorizontalPodAutoscaler"))
      for (const m of h.spec.metrics.filter((m) => m.type === "Pods"))
        if (!served.includes(m.pods.metric.name)) fail(`${env}: HPA ${h.metadata.name} scales on ${m.pods.metric.name}, which no prometheus-adapter rule serves`);
  const pg = cluster.find((o) => o.kind === "Cluster" && o.apiVersion.startsWith("postgresql.cnpg.io/"));
  if (env === "prod" && !(pg?.spec.instances === 3 && pg.spec.postgresql?.synchronous?.number >= 1 && pg.spec.backup?.barmanObjectStore))
    fail(`prod: the PostgreSQL cluster is not 3 instances with synchronous replication and continuous backup`);
  const kafka = cluster.find((o) => o.kind === "Kafka");
  const pool = cluster.find((o) => o.kind === "KafkaNodePool");
  if (env === "prod" && !(pool?.spec.replicas === 3 && kafka?.spec.kafka.config["default.replication.factor"] === 3 && kafka.spec.kafka.config["min.insync.replicas"] === 2 && kafka.metadata.annotations?.["strimzi.io/kraft"] === "enabled"))
    fail(`prod: Kafka is not KRaft with 3 brokers, RF 3 and min ISR 2`);
}

// --- 7. argocd -----------------------------------------------------------------------------
const argoFile = path.join(renderedDir, "argocd", "applicationset.yaml");
const appset = fs.existsSync(argoFile) ? loadDocs(argoFile).find((o) => o.kind === "ApplicationSet") : null;
if (!appset) fail("argocd: no ApplicationSet");
else {
  const steps = appset.spec.strategy.rollingSync.steps.flatMap((s) => s.matchExpressions.flatMap((e) => e.values));
  const genEnvs = appset.spec.generators[0].matrix.generators[0].list.elements.map((e) => e.env);
  for (const e of envs) if (!genEnvs.includes(e)) fail(`argocd: environment ${e} is not generated by the ApplicationSet`);
  for (const e of genEnvs) {
    if (!fs.existsSync(path.join(repo, "k8s/overlays", e, "kustomization.yaml"))) fail(`argocd: no k8s/overlays/${e}`);
    if (!fs.existsSync(path.join(repo, "charts/env", e + ".yaml"))) fail(`argocd: no charts/env/${e}.yaml`);
  }
  const auto = appset.spec.templatePatch.includes("automated:") && appset.spec.templatePatch.includes("selfHeal: true");
  if (!auto) fail("argocd: the template patch does not turn on automated sync with self-heal");
  const prod = appset.spec.generators[0].matrix.generators[0].list.elements.find((e) => e.env === "prod");
  if (prod?.autoSync !== "false") fail("argocd: prod must be synced by hand");
  for (const c of fs.readdirSync(path.join(repo, "charts"))) {
    const cy = path.join(repo, "charts", c, "Chart.yaml");
    if (!fs.existsSync(cy)) continue;
    const chart = YAML.parse(fs.readFileSync(cy, "utf8"));
    if (chart.type === "library") continue;
    const wave = chart.annotations?.["switchboard.io/wave"];
    if (!wave || !steps.includes(wave)) fail(`argocd: chart ${c} has wave ${wave}, which no RollingSync step takes`);
  }
  // The Applications the ApplicationSet makes (tools/deploy/appsetrender).
  const genFile = path.join(renderedDir, "argocd", "generated-applications.yaml");
  const apps = fs.existsSync(genFile) ? loadDocs(genFile).filter((o) => o.kind === "Application") : [];
  const charts = fs.readdirSync(path.join(repo, "charts")).filter((c) => fs.existsSync(path.join(repo, "charts", c, "Chart.yaml")) && YAML.parse(fs.readFileSync(path.join(repo, "charts", c, "Chart.yaml"), "utf8")).type !== "library");
  const wantApps = genEnvs.length * (charts.length + 1);
  if (apps.length !== wantApps) fail(`argocd: the ApplicationSet makes ${apps.length} Applications, want ${wantApps} (${genEnvs.length} environments x (${charts.length} charts + cluster))`);
  for (const a of apps) {
    const env = a.metadata.labels["switchboard.io/env"];
    const src = a.spec.source;
    if (!fs.existsSync(path.join(repo, src.path))) fail(`argocd: ${a.metadata.name}: path ${src.path} does not exist`);
    for (const vf of src.helm?.valueFiles ?? []) {
      const f = path.join(repo, src.path, vf);
      if (!fs.existsSync(f) && !vf.startsWith("values-")) fail(`argocd: ${a.metadata.name}: value file ${vf} does not exist`);
    }
    if (src.helm && !src.helm.valueFiles?.includes(`../env/${env}.yaml`)) fail(`argocd: ${a.metadata.name}: does not take charts/env/${env}.yaml`);
    const auto = a.spec.syncPolicy?.automated;
    if (env === "prod" && auto) fail(`argocd: ${a.metadata.name}: prod syncs automatically`);
    if (env === "dev" && !(auto?.prune && auto?.selfHeal)) fail(`argocd: ${a.metadata.name}: dev without automated prune and self-heal`);
    if (!steps.includes(a.metadata.labels["switchboard.io/wave"])) fail(`argocd: ${a.metadata.name}: no RollingSync step for its wave`);
  }
  console.log(`argocd: ${apps.length} generated Applications checked`);
}

const nCharts = Object.values(serviceCharts).reduce((n, e) => n + Object.keys(e).length, 0);
if (nCharts === 0) fail("no service chart was rendered");
console.log(`validate: ${nCharts} service chart renders over ${envs.length} environments, ${failures} failures`);
process.exit(failures ? 1 : 0);
