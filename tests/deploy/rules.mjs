// rules.mjs: writes the spec of every PrometheusRule in the given manifests to OUT_DIR as a
// Prometheus rule file, for `promtool check rules`, and the prometheus-adapter rules
// (ConfigMap switchboard-adapter-rules) as recording rules: each metricsQuery with the
// adapter's template fields filled in as the adapter fills them, so promtool parses it as
// PromQL. Prints how many files it wrote.
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
    if (o?.kind === "ConfigMap" && o.metadata.name === "switchboard-adapter-rules") {
      const cfg = YAML.parse(o.data["config.yaml"]);
      const rules = cfg.rules.map((r, i) => {
        const series = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(r.seriesQuery)[1];
        const expr = r.metricsQuery
          .replaceAll("<<.Series>>", series)
          .replaceAll("<<.LabelMatchers>>", 'namespace="switchboard",pod=~"sb-.*"')
          .replaceAll("<<.GroupBy>>", "pod");
        if (expr.includes("<<")) throw new Error(`adapter rule ${i}: unknown template field in ${r.metricsQuery}`);
        return { record: `adapter:${r.name.as}`, expr };
      });
      const name = `${path.basename(path.dirname(f))}-${path.basename(f, ".yaml")}-adapter.yaml`;
      fs.writeFileSync(path.join(out, name), YAML.stringify({ groups: [{ name: "prometheus-adapter", rules }] }));
      n++;
      continue;
    }
    if (o?.kind !== "PrometheusRule") continue;
    const name = `${path.basename(path.dirname(f))}-${path.basename(f, ".yaml")}-${o.metadata.name}.yaml`;
    fs.writeFileSync(path.join(out, name), YAML.stringify({ groups: o.spec.groups }));
    n++;
  }
}
console.log(n);
