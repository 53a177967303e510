#!/usr/bin/env bash
# make deploy-check passes on the repository (tools/deploy/check.sh: helm lint/template of every
# chart per environment, strict schema validation of every rendered object, env against each
# binary's config table, promtool, Tiltfile, Dockerfiles, CI workflow), and every check fails
# on what it is there to catch: a port of 0, a missing image, a typo in a config key or a field
# (httpGett), a secret in the ConfigMap, production without its Secret, a config row the chart
# forgets, a value the binary refuses, a topic without its KafkaTopic, an Ingress path nginx
# routes elsewhere, a caller the NetworkPolicy shuts out, a bad alert expression, a Tiltfile
# with an unknown argument, a missing chart or an unknown dependency, a bad Dockerfile, a
# broken workflow, an ApplicationSet that syncs prod by itself.
# labels: deploy
set -euo pipefail
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/deploy
tools=$cache/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CACHE_HOME=$cache/helm/cache HELM_CONFIG_HOME=$cache/helm/config HELM_DATA_HOME=$cache/helm/data

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}
# expect_fail NAME PATTERN CMD...: CMD must exit non-zero and say PATTERN (so it failed for the
# reason the case is about, not another one).
expect_fail() {
	local name=$1 pat=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		bad "$name: accepted"
		tail -n 5 <<<"$out"
	elif grep -qE -- "$pat" <<<"$out"; then
		ok "$name: refused ($(grep -m1 -oE -- "$pat" <<<"$out"))"
	else
		bad "$name: failed, but not with /$pat/"
		tail -n 5 <<<"$out"
	fi
}

# 1. The whole check on the repository as it is.
r=$tmp/rendered
if SB_DEPLOY_OUT=$r bash "$root/tools/deploy/check.sh" "$build" >"$tmp/check.log" 2>&1 &&
	grep -q '^deploy-check: done' "$tmp/check.log"; then
	ok "make deploy-check: $(grep -c '^deploy-check:' "$tmp/check.log") stages pass"
	grep -E '^(deploy-check|kcheck|validate|config|models):' "$tmp/check.log"
else
	bad "make deploy-check fails on the repository"
	tail -n 40 "$tmp/check.log"
	echo "0 passed, 1 failed"
	exit 1
fi
for e in dev staging prod; do
	for c in gateway auth messages outbox files realtime notifier gc; do
		[ -s "$r/$e/$c.yaml" ] || bad "no rendered manifest $e/$c.yaml"
	done
done

# 2. Bad values: helm refuses them (values.schema.json, the templates' required).
H=("$tools/helm" template auth "$root/charts/auth" --namespace switchboard -f "$root/charts/env/prod.yaml" -f "$root/charts/auth/values-prod.yaml")
expect_fail "ops port 0" "minimum: got 0, want 1|must be >= 1" "${H[@]}" --set service.ports.ops=0
expect_fail "rpc port 0 (lint --strict)" "minimum: got 0, want 1|must be >= 1" "$tools/helm" lint --strict "$root/charts/gateway" -f "$root/charts/env/dev.yaml" --set service.ports.rpc=0
expect_fail "empty image tag" "minLength|length must be >= 1" "${H[@]}" --set image.tag=
expect_fail "no image at all" "missing propert(y|ies) 'image'|image" "${H[@]}" --set image=null
expect_fail "config key typo" "SB_LOG_LEVL" "${H[@]}" --set config.SB_LOG_LEVL=debug
expect_fail "config integer not a number" "SB_RPC_WORKERS" "${H[@]}" --set config.SB_RPC_WORKERS=many
expect_fail "secret row put in the ConfigMap" "SB_AUTH_KEY_ENCRYPTION_KEY" "${H[@]}" --set config.SB_AUTH_KEY_ENCRYPTION_KEY=00
expect_fail "secretEnv without the key encryption key" "minItems|min.*items|secretEnv" "${H[@]}" --set 'secretEnv={DATABASE_URL,REDIS_URL}'
expect_fail "prod without an existing Secret" "secret.existingSecret" "${H[@]}" --set secret.existingSecret=
expect_fail "dev Secret without a key" "secret.data.SB_AUTH_KEY_ENCRYPTION_KEY" "$tools/helm" template auth "$root/charts/auth" -f "$root/charts/env/dev.yaml" --set secret.data.SB_AUTH_KEY_ENCRYPTION_KEY=null
expect_fail "customMetric without a target" "averageValue" "${H[@]}" --set autoscaling.customMetric.name=x

# 3. Strict schemas: unknown fields and wrong values in rendered objects, built-in and CRD.
crds=()
for d in "$cache"/crds/*/; do crds+=(-crds "$d"); done
K=("$tools/kcheck" -q "${crds[@]}" -unchecked kafka.strimzi.io)
# One kcheck run over all the broken files (loading the CRDs is the slow part); each file must
# be refused for its own reason.
sed 's/httpGet:/httpGett:/' "$r/prod/auth.yaml" >"$tmp/typo-probe.yaml"
sed 's/scrapeTimeout:/scrapeTimeoutt:/' "$r/prod/auth.yaml" >"$tmp/typo-sm.yaml"
sed 's/^  instances: 3$/  instancess: 3/' "$r/prod/cluster.yaml" >"$tmp/typo-pg.yaml"
sed 's/updateMode: "Off"/updateMode: "Sometimes"/' "$r/prod/auth.yaml" >"$tmp/bad-vpa.yaml"
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n' >"$tmp/widget.yaml"
if "${K[@]}" "$tmp"/typo-probe.yaml "$tmp"/typo-sm.yaml "$tmp"/typo-pg.yaml "$tmp"/bad-vpa.yaml "$tmp"/widget.yaml >"$tmp/kcheck.log" 2>&1; then
	bad "kcheck accepted broken manifests"
else
	for c in "httpGett in a probe|typo-probe.yaml|unknown field \"spec.template.spec.containers\[0\].livenessProbe.httpGett\"" \
		"unknown field in a ServiceMonitor (CRD)|typo-sm.yaml|unknown field \"spec.endpoints\[0\].scrapeTimeoutt\"" \
		"unknown field in the CloudNativePG Cluster|typo-pg.yaml|unknown field \"spec.instancess\"" \
		"VPA updateMode outside its enum|bad-vpa.yaml|updateMode: Unsupported value" \
		"a kind with no schema|widget.yaml|no schema known"; do
		IFS='|' read -r name file pat <<<"$c"
		if grep -qE -- "^$tmp/$file: .*$pat" "$tmp/kcheck.log"; then ok "$name: refused"; else bad "$name: not refused"; fi
	done
	grep -q "kcheck: [0-9]* objects, 5 invalid" "$tmp/kcheck.log" || { bad "kcheck: expected exactly the 5 broken objects invalid"; cat "$tmp/kcheck.log"; }
fi

# 4. validate.mjs: env against the binaries, cluster resources, Ingress, NetworkPolicy.
V() { node "$root/tests/deploy/validate.mjs" "$1" "$build/bin" "$root/tools/nginx.conf.in" dev staging prod; }
mutate() { # mutate NAME FILE SED-EXPR: a copy of the render with FILE edited.
	rm -rf "$tmp/$1" && cp -r "$r" "$tmp/$1" && sed -i "$3" "$tmp/$1/$2"
	cmp -s "$r/$2" "$tmp/$1/$2" && { echo "mutate $1: the edit changed nothing" >&2; return 1; }
	return 0
}
mutate m1 prod/auth.yaml '/^  SB_AUTH_AUDIENCE: /d'
expect_fail "a config row the chart forgets" "SB_AUTH_AUDIENCE of sb-auth --config-reference is not set" V "$tmp/m1"
mutate m2 prod/auth.yaml 's/^  SB_LOG_LEVEL: "info"$/  SB_LOG_LEVEL: "info"\n  SB_AUTH_KEY_ENCRYPTION_KEY: "00"/'
expect_fail "the secret also in the ConfigMap" "SB_AUTH_KEY_ENCRYPTION_KEY is set twice" V "$tmp/m2"
mutate m3 prod/auth.yaml 's/^  SB_AUTH_ACCESS_TTL_S: "900"$/  SB_AUTH_ACCESS_TTL_S: "0"/'
expect_fail "a value the binary refuses" "sb-auth --check-config refuses.*SB_AUTH_ACCESS_TTL_S" V "$tmp/m3"
mutate m4 prod/cluster.yaml 's/topicName: sb.messages.v1.dlq/topicName: sb.messages.v1.dead/'
expect_fail "a DLQ without its KafkaTopic" "no KafkaTopic for sb.messages.v1.dlq" V "$tmp/m4"
mutate m5 staging/realtime.yaml 's|path: /ws$|path: /wss|'
expect_fail "an Ingress path nginx routes elsewhere" "/ws goes to gateway in the Ingress but to realtime" V "$tmp/m5"
"$tools/helm" template auth "$root/charts/auth" --namespace switchboard -f "$root/charts/env/dev.yaml" -f "$root/charts/auth/values-dev.yaml" --set 'callers={gateway}' >"$tmp/auth-dev.yaml"
rm -rf "$tmp/m6" && cp -r "$r" "$tmp/m6" && cp "$tmp/auth-dev.yaml" "$tmp/m6/dev/auth.yaml"
expect_fail "a caller the NetworkPolicy shuts out" "sb-realtime calls sb-auth .* does not let it in" V "$tmp/m6"
mutate m7 prod/gateway.yaml 's/averageUtilization: 70/averageUtilization: 90/'
expect_fail "HPA CPU target other than 70 %" "HPA CPU target is not 70" V "$tmp/m7"

sed 's/{env: prod, server: "https:\/\/prod.k8s.example.com", autoSync: "false"}/{env: prod, server: "https:\/\/prod.k8s.example.com", autoSync: "true"}/' "$root/argocd/applicationset.yaml" >"$tmp/appset-prod-auto.yaml"
rm -rf "$tmp/m8" && cp -r "$r" "$tmp/m8"
"$tools/appsetrender" -root "$root" "$tmp/appset-prod-auto.yaml" >"$tmp/m8/argocd/generated-applications.yaml"
expect_fail "Argo CD: prod synced automatically" "prod-auth: prod syncs automatically" V "$tmp/m8"

# 5. promtool on an alert with a broken expression.
"$tools/helm" template auth "$root/charts/auth" -f "$root/charts/env/dev.yaml" --set-json 'alerts=[{"alert":"Broken","expr":"rate(up[5m]"}]' >"$tmp/alert.yaml"
node "$root/tests/deploy/rules.mjs" "$tmp/rules" "$tmp/alert.yaml" >/dev/null
expect_fail "an alert that is not PromQL" "parse error|unclosed left parenthesis" promtool check rules "$tmp"/rules/*.yaml
sed 's/for: 10m/for: 30m/' "$r/rules/prod-auth-sb-auth.yaml" >"$tmp/slow-alert.yaml"
sed "s|@RULES@|$tmp/slow-alert.yaml|" "$root/tests/deploy/alerts.test.yaml.in" >"$tmp/alerts.test.yaml"
expect_fail "an alert that fires too late (promtool test rules)" "alertname: SwitchboardServiceNotReady, time: 16m" promtool test rules "$tmp/alerts.test.yaml"

# 6. The Tiltfile checker.
tilt() { "$tools/tiltcheck" -root "$root" -helm "$tools/helm" "$1"; }
sed 's/port_forwards = forwards,/port_forwards = forwards, port_forwardz = 1,/' "$root/Tiltfile" >"$tmp/Tiltfile.arg"
expect_fail "Tiltfile: unknown argument" "unexpected keyword argument \"port_forwardz\"" tilt "$tmp/Tiltfile.arg"
sed 's|"charts/" + name,|"charts/no-such-" + name,|' "$root/Tiltfile" >"$tmp/Tiltfile.path"
expect_fail "Tiltfile: missing chart path" "charts/no-such-auth/Chart.yaml\" does not exist" tilt "$tmp/Tiltfile.path"
sed 's|resource_deps = \["cmake-build"\]|resource_deps = ["cmake-build", "sb-postgres"]|' "$root/Tiltfile" >"$tmp/Tiltfile.dep"
expect_fail "Tiltfile: unknown resource dependency" "depends on unknown resource \"sb-postgres\"" tilt "$tmp/Tiltfile.dep"

# 7. Dockerfile and workflow linters.
printf 'FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nCMD ["/bin/true"]\n' >"$tmp/Dockerfile.bad"
expect_fail "hadolint: a bad Dockerfile" "DL3007|DL3015" "$cache/venv-hadolint/bin/hadolint" --config "$root/tools/deploy/hadolint.yaml" "$tmp/Dockerfile.bad"
mkdir -p "$tmp/wf" && sed 's/runs-on: ubuntu-24.04/runs-onn: ubuntu-24.04/' "$root/.github/workflows/ci.yml" >"$tmp/wf/ci.yml"
expect_fail "actionlint: a broken workflow" "runs-onn" "$tools/actionlint" -no-color "$tmp/wf/ci.yml"

# 8. Adding a service is one generated chart: newchart.mjs makes one for notifier (from its
# binary alone) that lints, renders and validates strictly in every environment, with the same
# config keys and secrets as the checked-in chart.
mkdir -p "$tmp/newcharts" "$tmp/newrender"
cp -r "$root/charts/switchboard-common" "$root/charts/env" "$tmp/newcharts/"
if node "$root/tests/deploy/newchart.mjs" "$tmp/newcharts" "$build/bin" notifier 9107 7107 >/dev/null &&
	node "$root/tests/deploy/schema.mjs" "$tmp/newcharts" "$build/bin" >/dev/null &&
	"$tools/helm" dependency build "$tmp/newcharts/notifier" >/dev/null; then
	nc_ok=1
	for e in dev staging prod; do
		"$tools/helm" lint --strict "$tmp/newcharts/notifier" -f "$tmp/newcharts/env/$e.yaml" >"$tmp/newlint.log" 2>&1 &&
			"$tools/helm" template notifier "$tmp/newcharts/notifier" --namespace switchboard -f "$tmp/newcharts/env/$e.yaml" >"$tmp/newrender/$e.yaml" ||
			{ nc_ok=0; cat "$tmp/newlint.log"; }
	done
	"${K[@]}" "$tmp"/newrender/*.yaml >"$tmp/newk.log" 2>&1 || { nc_ok=0; cat "$tmp/newk.log"; }
	keys() { node -e 'const Y=require(process.argv[1]);const v=Y.parse(require("fs").readFileSync(process.argv[2],"utf8"));console.log(Object.keys(v.config).sort().join(" "),"|",v.secretEnv.sort().join(" "))' "$root/tests/deploy/node_modules/yaml/dist/index.js" "$1"; }
	[ "$(keys "$tmp/newcharts/notifier/values.yaml")" = "$(keys "$root/charts/notifier/values.yaml")" ] ||
		{ nc_ok=0; echo "generated and checked-in notifier charts differ in config keys or secrets"; }
	cmp -s "$tmp/newcharts/notifier/values.schema.json" "$root/charts/notifier/values.schema.json" ||
		{ nc_ok=0; echo "generated notifier schema differs from the checked-in one"; }
	if [ "$nc_ok" = 1 ]; then ok "a chart generated by newchart.mjs lints, renders and validates in 3 environments"; else bad "a chart generated by newchart.mjs"; fi
else
	bad "newchart.mjs / schema.mjs failed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
