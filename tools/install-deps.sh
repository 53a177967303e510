#!/usr/bin/env bash
# install-deps.sh: idempotent installer for everything Switchboard builds, tests and runs with.
# Called by `make run`, `make test` and `make bench`. Fast (a dpkg query) when all is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

debs=(
	build-essential cmake pkg-config git ca-certificates curl jq
	clang clang-format libclang-rt-14-dev
	librdkafka-dev libnng-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	libpq-dev libhiredis-dev libwebsockets-dev libssl-dev libcmocka-dev libjansson-dev
	libuv1-dev libev-dev libwebsockets-evlib-ev # realtime runs lws on libev (epoll)
	postgresql postgresql-contrib redis-server nginx-light kcat prometheus
	yamllint wrk procps psmisc iproute2
	chromium fonts-liberation # the web console's browser test (tests/browser, playwright-core)
	gnuplot-nox               # bench/pipeline_bench.sh draws its latency-versus-rate plot
)
# Node may come from another packaging (which bundles npm); only ask Debian when it is absent.
command -v node >/dev/null 2>&1 || debs+=(nodejs)
command -v npm >/dev/null 2>&1 || debs+=(npm)
# Java and Maven run and fetch the Apache Kafka broker (tools/kafka); the machine may bring its
# own (a JDK outside Debian's packaging), Debian's are taken only when they are absent.
command -v java >/dev/null 2>&1 || debs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || debs+=(maven)

missing=()
for p in "${debs[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages (${missing[*]}) and not root" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Do not let package post-install scripts start system daemons we run ourselves.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi

# npm modules used by the tests (independent protocol clients, API document validators) and by
# the benchmarks (bench/socketio: the socket.io peer): each tests/<dir>/package.json and
# bench/<dir>/package.json is installed in place, again only when it changed.
for pkg in "$here"/tests/*/package.json "$here"/bench/*/package.json; do
	[ -f "$pkg" ] || continue
	dir=$(dirname "$pkg")
	stamp="$dir/node_modules/.sb-stamp"
	if [ ! -f "$stamp" ] || [ "$pkg" -nt "$stamp" ]; then
		echo "install-deps: npm install in ${dir#"$here"/}"
		(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
		mkdir -p "$dir/node_modules" && touch "$stamp"
	fi
done

# The Apache Kafka broker (KRaft) from Maven Central into a cache outside the repository
# (tools/kafka/pom.xml; SB_CACHE_DIR, by default ~/.cache/switchboard). A stamp check when present.
. "$here/tools/kafka/kafka.sh"
sb_kafka_fetch

# schemathesis (PyPI), which tests/integration/apidocs_schemathesis_test.sh runs against the
# gateway with docs/api/openapi.yaml: a virtualenv in the cache outside the repository
# (SB_CACHE_DIR, by default ~/.cache/switchboard), made again only when its stamp names another
# version.
sb_st_version=4.32.0
sb_st_venv=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/venv-schemathesis
if [ "$(cat "$sb_st_venv/.sb-stamp" 2>/dev/null)" != "$sb_st_version" ]; then
	echo "install-deps: schemathesis $sb_st_version into $sb_st_venv"
	if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
		[ "$(id -u)" = 0 ] || { echo "install-deps: python3-venv missing and not root" >&2; exit 1; }
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
	fi
	rm -rf "$sb_st_venv"
	python3 -m venv "$sb_st_venv"
	"$sb_st_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$sb_st_version"
	echo "$sb_st_version" >"$sb_st_venv/.sb-stamp"
fi

# Drop-ins: each tools/deps.d/*.sh (one per subsystem: a service's test peers, a deployment
# tool) installs what only it needs, into the same cache, idempotently and quickly when present.
# They may call sb_apt_ensure PKG... for Debian packages.
sb_apt_ensure() {
	local p st miss=()
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || miss+=("$p")
	done
	[ ${#miss[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || { echo "install-deps: missing packages (${miss[*]}) and not root" >&2; return 1; }
	echo "install-deps: installing ${miss[*]}"
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null ||
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null; }
	local rc=$?
	rm -f /usr/sbin/policy-rc.d
	return $rc
}
for f in "$here"/tools/deps.d/*.sh; do
	[ -f "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
done
