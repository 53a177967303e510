#!/usr/bin/env bash
# The alert rules of cdcsink (k8s/observability/rules/cdcsink.rules.yaml) are valid and behave as their
# unit tests say (promtool test rules: lag above 2 minutes, error rate above 1 %, DLQ above
# 10,000, each also just below its threshold); every metric they use is one the sink exports.
# labels: cdcsink,docs
set -u
root=${SB_SOURCE_ROOT:?}
cd "$root/k8s/observability/rules" || exit 1
promtool check rules cdcsink.rules.yaml || { echo "FAIL: promtool check rules"; exit 1; }
promtool test rules tests/cdcsink.rules.test.yaml || { echo "FAIL: promtool test rules"; exit 1; }
for m in $(grep -o 'cdc_[a-z_]*' cdcsink.rules.yaml | sort -u); do
	grep -q "\"$m\"" "$root/services/cdcsink/service.c" ||
		{ echo "FAIL: the rules use $m, which cdcsink does not export"; exit 1; }
done
echo "PASS: cdcsink alert rules"
