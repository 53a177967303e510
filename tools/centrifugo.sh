#!/usr/bin/env bash
# centrifugo.sh: builds Centrifugo v6 (the third peer of bench/realtime_fanout_bench.sh) from the
# Go module proxy into a cache outside the repository; nothing downloaded or built is committed.
# Not part of tools/install-deps.sh: only the fan-out benchmark asks for it, on demand.
#
#   source tools/centrifugo.sh; sb_centrifugo_build && "$SB_CENTRIFUGO_BIN" version
#   bash tools/centrifugo.sh            # the same from a shell: builds, prints the binary's path
#
#   SB_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/switchboard)
#   SB_GO          go binary (default: go from PATH, else /usr/local/go/bin/go)
#
# Layout: $SB_CACHE_DIR/centrifugo-<version>/{bin,gopath,gomodcache,gocache}; the stamp
# bin/.sb-stamp holds the module path and version it was built from, so the second call is a
# file check. The first build took 92 s here (2 cores, 2026-12-06, module downloads included;
# about 1.7 GB of module and build cache, an 88 MB binary); later calls about 10 ms.

SB_CENTRIFUGO_MODULE=github.com/centrifugal/centrifugo/v6
SB_CENTRIFUGO_VERSION=v6.9.1
SB_CACHE_DIR=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
SB_CENTRIFUGO_HOME=$SB_CACHE_DIR/centrifugo-$SB_CENTRIFUGO_VERSION
SB_CENTRIFUGO_BIN=$SB_CENTRIFUGO_HOME/bin/centrifugo

sb_go() {
	if [ -n "${SB_GO:-}" ]; then echo "$SB_GO"; return; fi
	command -v go 2>/dev/null || echo /usr/local/go/bin/go
}

# sb_centrifugo_build: go install of the pinned version into $SB_CENTRIFUGO_HOME/bin. Quick when
# the binary and its stamp are there. Prints how long a real build took.
sb_centrifugo_build() {
	local h=$SB_CENTRIFUGO_HOME stamp=$SB_CENTRIFUGO_HOME/bin/.sb-stamp
	local want="$SB_CENTRIFUGO_MODULE@$SB_CENTRIFUGO_VERSION" go t0 t1 ldflags
	# the release builds stamp their version this way; without it `centrifugo version` says 0.0.0
	ldflags="-X $SB_CENTRIFUGO_MODULE/internal/build.Version=${SB_CENTRIFUGO_VERSION#v}"
	if [ -x "$SB_CENTRIFUGO_BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		return 0
	fi
	go=$(sb_go)
	[ -x "$go" ] || command -v "$go" >/dev/null 2>&1 || { echo "centrifugo: no Go toolchain (SB_GO, PATH, /usr/local/go/bin/go)" >&2; return 1; }
	mkdir -p "$h/bin" "$h/gopath" "$h/gomodcache" "$h/gocache" || return 1
	rm -f "$stamp"
	echo "centrifugo: building $want into $h (go install, first time only)" >&2
	t0=$(date +%s)
	(cd "$h" && env GOBIN="$h/bin" GOPATH="$h/gopath" GOMODCACHE="$h/gomodcache" \
		GOCACHE="$h/gocache" GOFLAGS=-modcacherw GO111MODULE=on CGO_ENABLED=0 \
		"$go" install -ldflags "$ldflags" "$want") || { echo "centrifugo: go install $want failed" >&2; return 1; }
	t1=$(date +%s)
	[ -x "$SB_CENTRIFUGO_BIN" ] || { echo "centrifugo: no binary at $SB_CENTRIFUGO_BIN after go install" >&2; return 1; }
	echo "$want" >"$stamp"
	echo "centrifugo: built in $((t1 - t0)) s ($("$SB_CENTRIFUGO_BIN" version 2>/dev/null | head -1))" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	sb_centrifugo_build || exit 1
	echo "$SB_CENTRIFUGO_BIN"
fi
