#!/usr/bin/env bash
# check.sh [BUILD_DIR]: `make deploy-check` — everything about the deployment that can be
# checked without a cluster, with the real tools (tools/deps.d/deploy.sh installs them):
#   - each service chart's values.schema.json is the one its binary's config table gives;
#   - helm lint --strict and helm template of every chart with each environment's values
#     (charts/env/<env>.yaml, then charts/<chart>/values-<env>.yaml when present), written to
#     BUILD_DIR/rendered/<env>/<chart>.yaml; helm enforces values.schema.json on both;
#   - argocd/ with the Applications its ApplicationSet generates (tools/deploy/appsetrender),
#     and the kustomize overlays of k8s/ (kubectl kustomize where kubectl is present,
#     else the kustomize binary tools/deps.d/deploy.sh built) rendered beside them;
#   - every rendered object validated strictly (kcheck: client-go types with unknown fields
#     refused, CRDs' openAPIV3Schema with the API server's pruning and validation code), then
#     by the npm kubernetes-models types, the env-versus-config-table, Ingress-versus-nginx,
#     NetworkPolicy and pod-rule checks (tests/deploy/validate.mjs);
#   - the PrometheusRules with promtool, the Tiltfile (tiltcheck), the Dockerfiles (hadolint),
#     the CI workflow (actionlint).
# Exits non-zero on the first failing stage; prints one line per stage.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/deploy
tools=$cache/bin
envs=(dev staging prod)
out=${SB_DEPLOY_OUT:-$build/rendered}
export HELM_CACHE_HOME=$cache/helm/cache HELM_CONFIG_HOME=$cache/helm/config HELM_DATA_HOME=$cache/helm/data

for t in helm kcheck tiltcheck appsetrender actionlint; do
	[ -x "$tools/$t" ] || { echo "deploy-check: $tools/$t missing: run bash tools/install-deps.sh" >&2; exit 1; }
done
[ -d "$root/tests/deploy/node_modules/kubernetes-models" ] ||
	{ echo "deploy-check: tests/deploy/node_modules missing: run bash tools/install-deps.sh" >&2; exit 1; }
crd_args=()
for d in "$cache"/crds/*/; do crd_args+=(-crds "$d"); done
[ ${#crd_args[@]} -gt 0 ] || { echo "deploy-check: no CRDs in $cache/crds: run bash tools/install-deps.sh" >&2; exit 1; }

stage() { printf 'deploy-check: %-10s %s\n' "$1" "$2"; }
t0=$(date +%s)

# Charts: the service charts are every charts/<dir> with a Chart.yaml that is not a library.
charts=()
for c in "$root"/charts/*/Chart.yaml; do
	d=$(dirname "$c")
	grep -q '^type: library' "$c" && continue
	charts+=("$(basename "$d")")
done
[ ${#charts[@]} -gt 0 ] || { echo "deploy-check: no charts" >&2; exit 1; }

# A service built here without a chart yet is named (tests/deploy/newchart.mjs makes one).
missing=()
for b in "$build"/bin/sb-*; do
	[ -x "$b" ] || continue
	s=${b##*/sb-}
	[ -d "$root/charts/$s" ] || missing+=("$s")
done
[ ${#missing[@]} -eq 0 ] || echo "deploy-check: note: no chart yet for: ${missing[*]} (node tests/deploy/newchart.mjs)"

node "$root/tests/deploy/schema.mjs" "$root/charts" "$build/bin" --check
node "$root/tests/deploy/observability.mjs" "$root" --check
stage schema "values.schema.json of ${#charts[@]} charts match their binaries' config tables"

rm -rf "$out" && mkdir -p "$out"
for c in "${charts[@]}"; do
	"$tools/helm" dependency build "$root/charts/$c" >/dev/null
done
# values_args ENV CHART: the -f arguments of an environment.
values_args() {
	local a=(-f "$root/charts/env/$1.yaml")
	[ -f "$root/charts/$2/values-$1.yaml" ] && a+=(-f "$root/charts/$2/values-$1.yaml")
	printf '%s\n' "${a[@]}"
}
for e in "${envs[@]}"; do
	mkdir -p "$out/$e"
	for c in "${charts[@]}"; do
		mapfile -t va < <(values_args "$e" "$c")
		if ! lint=$("$tools/helm" lint --strict "$root/charts/$c" --namespace switchboard "${va[@]}" 2>&1); then
			echo "$lint"
			echo "deploy-check: helm lint --strict failed: $c ($e)" >&2
			exit 1
		fi
		"$tools/helm" template "$c" "$root/charts/$c" --namespace switchboard "${va[@]}" >"$out/$e/$c.yaml"
	done
done
stage helm "lint --strict and template: ${#charts[@]} charts x ${#envs[@]} environments"

# argocd/ and k8s/examples are plain YAML; k8s/ has a kustomize overlay per environment.
mkdir -p "$out/argocd" "$out/examples"
cp "$root"/argocd/*.yaml "$out/argocd/"
"$tools/appsetrender" -root "$root" "$root/argocd/applicationset.yaml" >"$out/argocd/generated-applications.yaml"
cp "$root"/k8s/examples/*.yaml "$out/examples/"
kustomize=()
if command -v kubectl >/dev/null 2>&1; then kustomize=(kubectl kustomize); fi
[ ${#kustomize[@]} -gt 0 ] || kustomize=("$tools/kustomize")
for e in "${envs[@]}"; do
	"${kustomize[@]}" "$root/k8s/overlays/$e" >"$out/$e/cluster.yaml"
done
stage render "argocd/ (and the $(grep -c '^kind: Application$' "$out/argocd/generated-applications.yaml") Applications its ApplicationSet makes), k8s/overlays/{${envs[*]// /,}} with ${kustomize[*]}"

files=("$out"/*/*.yaml)
# Strimzi publishes its CRDs in no registry these machines reach (docs/deployment.md): its
# objects are listed as not schema-checked, every other kind must have a schema.
"$tools/kcheck" -q "${crd_args[@]}" -unchecked kafka.strimzi.io "${files[@]}"
node "$root/tests/deploy/validate.mjs" "$out" "$build/bin" "$root/tools/nginx.conf.in" "${envs[@]}"

rm -rf "$out/rules"
n=$(node "$root/tests/deploy/rules.mjs" "$out/rules" "${files[@]}")
[ "$n" -gt 0 ] || { echo "deploy-check: no PrometheusRule rendered" >&2; exit 1; }
promtool check rules "$out"/rules/*.yaml >"$out/promtool.log" 2>&1 || { cat "$out/promtool.log"; exit 1; }
sed "s|@RULES@|$out/rules/prod-auth-sb-auth.yaml|" "$root/tests/deploy/alerts.test.yaml.in" >"$out/alerts.test.yaml"
promtool test rules "$out/alerts.test.yaml" >"$out/promtool-test.log" 2>&1 || { cat "$out/promtool-test.log"; exit 1; }
# k8s/observability's own unit tests, run against the rules as the PrometheusRule deploys them.
sed "s|^  - ../switchboard.rules.yaml$|  - $out/rules/prod-cluster-switchboard.yaml|" \
	"$root/k8s/observability/rules/tests/switchboard.rules.test.yaml" >"$out/platform.test.yaml"
grep -q "$out/rules/prod-cluster-switchboard.yaml" "$out/platform.test.yaml" ||
	{ echo "deploy-check: k8s/observability's rule test does not name ../switchboard.rules.yaml" >&2; exit 1; }
promtool test rules "$out/platform.test.yaml" >"$out/promtool-platform.log" 2>&1 || { cat "$out/promtool-platform.log"; exit 1; }
stage promtool "$n rule files (alerts, adapter queries) pass promtool check rules; the charts' and the platform's alert unit tests pass"

gofmt=$(dirname "${SB_GO:-/usr/local/go/bin/go}")/gofmt
[ -x "$gofmt" ] || gofmt=$(command -v gofmt)
unformatted=$("$gofmt" -l "$root/tools/deploy")
[ -z "$unformatted" ] || { echo "deploy-check: not gofmt-formatted: $unformatted" >&2; exit 1; }
stage gofmt "tools/deploy's Go is formatted"

"$tools/tiltcheck" -root "$root" -helm "$tools/helm" "$root/Tiltfile"
stage tilt "Tiltfile evaluated with Tilt's functions stubbed"

"$cache/venv-hadolint/bin/hadolint" --config "$root/tools/deploy/hadolint.yaml" "$root"/docker/Dockerfile*
stage hadolint "Dockerfiles lint clean"

"$tools/actionlint" -no-color "$root"/.github/workflows/*.yml
stage actionlint "CI workflows lint clean"

stage done "in $(($(date +%s) - t0)) s; manifests in $out"
