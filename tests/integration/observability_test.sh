#!/usr/bin/env bash
# The observability files of k8s/observability, checked offline with the real tools:
#   - the alert rules: `promtool check rules` and their unit tests (`promtool test rules`); a
#     copy of the rules with one threshold changed must fail those tests;
#   - Alertmanager's routing: `amtool check-config`, critical alerts route to the pager and
#     warnings to the chat (`amtool config routes test --verify.receivers`), and a wrong
#     expectation is reported as wrong;
#   - the Grafana dashboards against @grafana/schema's types (tests/observability/
#     check-dashboards.mjs, the TypeScript compiler); a misspelt field must fail;
#   - every metric a rule or a dashboard queries is one the services (or the mesh sidecar)
#     export (tests/observability/check-names.py); an unknown one must fail.
# stack:
# labels: observability
set -u
root=${SB_SOURCE_ROOT:?}
tmp=${SB_TEST_TMP:?}
obs=$root/k8s/observability
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for t in promtool amtool node python3; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed (tools/install-deps.sh)"; exit 1; }
done
[ -d "$root/tests/observability/node_modules/@grafana/schema" ] ||
	{ echo "FAIL: tests/observability/node_modules missing (tools/install-deps.sh)"; exit 1; }

# Rules
promtool check rules "$obs"/rules/*.yaml || bad "promtool check rules"
promtool test rules "$obs"/rules/tests/*.yaml || bad "promtool test rules"
mkdir -p "$tmp/rules/tests"
sed 's/ > 0.05$/ > 0.5/' "$obs/rules/switchboard.rules.yaml" >"$tmp/rules/switchboard.rules.yaml"
cmp -s "$tmp/rules/switchboard.rules.yaml" "$obs/rules/switchboard.rules.yaml" &&
	bad "the mutation of the 5xx threshold did not apply"
cp "$obs"/rules/tests/*.yaml "$tmp/rules/tests/"
if promtool test rules "$tmp"/rules/tests/*.yaml >"$tmp/mutated.out" 2>&1; then
	bad "the rule tests pass with the 5xx threshold at 50%: they cannot fail"
else
	grep -q SwitchboardHigh5xxRatio "$tmp/mutated.out" || bad "the mutated rules failed for another reason"
fi

# Alertmanager routing
am=$obs/alertmanager/alertmanager.yml
amtool check-config "$am" >/dev/null || bad "amtool check-config"
route() { # expected-receiver labels...
	local want=$1
	shift
	amtool config routes test --config.file="$am" --verify.receivers="$want" "$@" >/dev/null 2>&1
}
route pager severity=critical alertname=SwitchboardServiceDown || bad "critical does not page"
route chat severity=warning alertname=SwitchboardConsumerLag || bad "warning does not go to chat"
route chat alertname=SomethingUnlabelled || bad "an alert without severity does not go to chat"
route chat severity=critical alertname=SwitchboardServiceDown && bad "amtool accepted a wrong receiver"

# Dashboards
(cd "$root/tests/observability" && node check-dashboards.mjs) || bad "dashboards do not match @grafana/schema"
first=$(ls "$obs"/dashboards/*.json | head -1)
sed 's/"gridPos"/"gridPoss"/' "$first" >"$tmp/typo.json"
if (cd "$root/tests/observability" && node check-dashboards.mjs "$tmp/typo.json") >"$tmp/typo.out" 2>&1; then
	bad "a dashboard with a misspelt field (gridPoss) passed the type check"
else
	grep -q gridPoss "$tmp/typo.out" || bad "the misspelt dashboard failed for another reason"
fi

# Metric names
python3 "$root/tests/observability/check-names.py" "$root" || bad "a rule or dashboard queries an unknown metric"
sed 's/outbox_relay_lag_seconds/outbox_relay_lag_secs/' "$obs/rules/switchboard.rules.yaml" >"$tmp/names.yaml"
python3 "$root/tests/observability/check-names.py" "$root" "$tmp/names.yaml" >/dev/null &&
	bad "an unknown metric name (outbox_relay_lag_secs) passed the name check"

[ $fail = 0 ] && echo "ok: rules, their tests, routing, dashboards and metric names"
exit $fail
