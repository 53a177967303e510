#!/usr/bin/env bash
# sb-ingest's alert rules (k8s/observability/rules/ingest.rules.yaml): promtool check rules and their unit tests
# (queue above the high watermark, publish failures, reconnect churn, breaker open, broker
# unreachable; each with a series that must fire and one that must not).
# labels: ingest,docs
set -eu
dir=${SB_SOURCE_ROOT:?}/k8s/observability/rules
command -v promtool >/dev/null || {
	echo "FAIL: promtool missing (Debian package prometheus; tools/install-deps.sh)"
	exit 1
}
promtool check rules "$dir/ingest.rules.yaml"
cd "$dir/tests" && promtool test rules ingest.rules.test.yaml
