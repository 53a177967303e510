#!/usr/bin/env bash
# config-reference.sh BUILD_DIR [--update]: prints README's configuration reference, made from
# each service's own config table (sb-<name> --config-reference). With --update, rewrites the
# section of README.md between the config-reference markers.
set -euo pipefail
build=${1:?usage: config-reference.sh BUILD_DIR [--update]}
root=$(cd "$(dirname "$0")/.." && pwd)

gen() {
	# the services in README's order, then any other service directory (sorted)
	local known="gateway auth messages outbox files realtime notifier gc" svc list
	list=$known
	for svc in $(cd "$root/services" && ls -d */ | tr -d / | sort); do
		[ "$svc" = common ] || [[ " $known " == *" $svc "* ]] || list+=" $svc"
	done
	for svc in $list; do
		bin=$build/bin/sb-$svc
		[ -x "$bin" ] || continue
		printf '\n### %s\n\n' "$svc"
		printf '| variable | type | default | meaning |\n|---|---|---|---|\n'
		"$bin" --config-reference
	done
}

if [ "${2:-}" = "--update" ]; then
	gen >"$build/config-reference.md"
	awk -v f="$build/config-reference.md" '
		/<!-- config-reference:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
		/<!-- config-reference:end -->/ { skip = 0 }
		!skip { print }' "$root/README.md" >"$build/README.md.new"
	mv "$build/README.md.new" "$root/README.md"
else
	gen
fi
