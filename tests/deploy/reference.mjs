// reference.mjs: a service's config table, read from its own binary (sb-<name>
// --config-reference, the Markdown rows README.md is made of), and how the charts split it:
// variables the chart computes from ports and upstreams, variables from the Secret, the rest
// from the ConfigMap.
import { execFileSync } from "node:child_process";

// Credential-bearing URLs: not marked secret in the config tables (their passwords are masked
// in logs instead), but in a cluster they carry passwords, so they come from the Secret.
export const CREDENTIAL_URLS = ["DATABASE_URL", "REDIS_URL"];

export function readReference(bin) {
  const out = execFileSync(bin, ["--config-reference"], { encoding: "utf8" });
  const rows = [];
  for (const line of out.split("\n")) {
    const m = /^\| `([A-Z0-9_]+)` \| ([^|]*) \| ([^|]*) \| (.*) \|$/.exec(line);
    if (!m) continue;
    const [, env, typ, def, help] = m;
    const range = /\((-?\d+)–(-?\d+)\)/.exec(typ);
    rows.push({
      env,
      type: typ.startsWith("integer") ? "integer" : typ.startsWith("boolean") ? "boolean" : "string",
      min: range ? range[1] : null,
      max: range ? range[2] : null,
      def: def.trim().replace(/^`|`$/g, ""),
      secret: help.includes("Secret: never logged."),
      help,
    });
  }
  if (rows.length === 0) throw new Error(`${bin} --config-reference printed no rows`);
  return rows;
}

// split partitions a service's rows as the charts do. edge: {addrEnv, portEnv} or null.
export function split(rows, edge) {
  const computed = new Set(["SB_OPS_ADDR", "SB_OPS_PORT", "SB_RPC_URL"]);
  if (edge) {
    computed.add(edge.addrEnv);
    computed.add(edge.portEnv);
  }
  const upstreams = [];
  for (const r of rows) {
    const m = /^SB_([A-Z]+)_RPC_URL$/.exec(r.env);
    if (m) {
      computed.add(r.env);
      upstreams.push({ name: m[1].toLowerCase(), port: Number(/:(\d+)$/.exec(r.def)[1]) });
    }
  }
  const secret = rows.filter((r) => r.secret || CREDENTIAL_URLS.includes(r.env)).map((r) => r.env);
  const config = rows.filter((r) => !computed.has(r.env) && !secret.includes(r.env));
  return { computed: [...computed], secret, config, upstreams };
}
