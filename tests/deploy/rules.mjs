// rules.mjs: writes the spec of every PrometheusRule in the given manifests to OUT_DIR as a
// Prometheus rule file, for `promtool check rules`; prints how many it wrote.
// Usage: node rules.mjs OUT_DIR FILE...
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const [out, ...files] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
let n = 0;
for (const f of files) {
  for (const d of YAML.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
    const o = d.toJS();
    if (o?.kind !== "PrometheusRule") continue;
    const name = `${path.basename(path.dirname(f))}-${path.basename(f, ".yaml")}-${o.metadata.name}.yaml`;
    fs.writeFileSync(path.join(out, name), YAML.stringify({ groups: o.spec.groups }));
    n++;
  }
}
console.log(n);
