# jaeger.sh: Jaeger (v2) from the Go module proxy, for the tracing test and
# `make run OBSERVABILITY=1`. Source it; it uses sb_free_port from tools/stack.sh.
#
#   sb_jaeger_fetch            build github.com/jaegertracing/jaeger/cmd/jaeger into the cache
#                              (SB_CACHE_DIR, ~/.cache/switchboard) once; fast when present
#   sb_jaeger_start DIR [OTLP QUERY]  start it with its data and log in DIR, on the given
#                              ports or free ones; sets SB_JAEGER_OTLP (http://127.0.0.1:port),
#                              SB_JAEGER_QUERY (http://127.0.0.1:port) and SB_JAEGER_PID
#   sb_jaeger_stop             stop it
sb_jaeger_version=v1.75.0
sb_jaeger_cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
SB_JAEGER_BIN=$sb_jaeger_cache/jaeger-$sb_jaeger_version/jaeger

sb_jaeger_fetch() {
	[ -x "$SB_JAEGER_BIN" ] && return 0
	local go=go
	command -v go >/dev/null 2>&1 || go=/usr/local/go/bin/go
	if ! command -v "$go" >/dev/null 2>&1; then
		echo "jaeger: no Go toolchain (the machine's /usr/local/go or Debian's golang-go)" >&2
		return 1
	fi
	echo "jaeger: building $sb_jaeger_version into $SB_JAEGER_BIN (several minutes, once)" >&2
	local mod=$sb_jaeger_cache/jaeger-mod
	rm -rf "$mod"
	mkdir -p "$mod" "$(dirname "$SB_JAEGER_BIN")"
	# As a tool of a throwaway module: jaeger's own go.mod has replace directives, which
	# `go install pkg@version` refuses.
	(cd "$mod" && export GOPATH=$sb_jaeger_cache/go GOMODCACHE=$sb_jaeger_cache/go/pkg/mod \
		GOCACHE=$sb_jaeger_cache/go/cache GOFLAGS=-mod=mod &&
		"$go" mod init sbjaeger >/dev/null 2>&1 &&
		"$go" get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$sb_jaeger_version" >/dev/null 2>&1 &&
		"$go" build -o "$SB_JAEGER_BIN.tmp" github.com/jaegertracing/jaeger/cmd/jaeger) &&
		mv "$SB_JAEGER_BIN.tmp" "$SB_JAEGER_BIN"
}

sb_jaeger_start() {
	local dir=$1 otlp=${2:-} query=${3:-}
	sb_jaeger_fetch || return 1
	mkdir -p "$dir"
	[ -n "$otlp" ] || otlp=$(sb_free_port)
	[ -n "$query" ] || query=$(sb_free_port)
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	sed -e "s/@OTLP_PORT@/$otlp/" -e "s/@QUERY_PORT@/$query/" \
		-e "s/@QUERY_GRPC_PORT@/$(sb_free_port)/" -e "s/@HEALTH_PORT@/$(sb_free_port)/" \
		"$here/tests/tracing/jaeger.yaml.in" >"$dir/jaeger.yaml"
	"$SB_JAEGER_BIN" --config "$dir/jaeger.yaml" >"$dir/jaeger.log" 2>&1 &
	SB_JAEGER_PID=$!
	SB_JAEGER_OTLP=http://127.0.0.1:$otlp
	SB_JAEGER_QUERY=http://127.0.0.1:$query
	local i
	for i in $(seq 1 150); do
		curl -s -o /dev/null "$SB_JAEGER_QUERY/api/services" && return 0
		kill -0 "$SB_JAEGER_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "jaeger did not start:" >&2
	tail -n 20 "$dir/jaeger.log" >&2
	return 1
}

sb_jaeger_stop() {
	[ -n "${SB_JAEGER_PID:-}" ] || return 0
	kill -TERM "$SB_JAEGER_PID" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$SB_JAEGER_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$SB_JAEGER_PID" 2>/dev/null
	wait "$SB_JAEGER_PID" 2>/dev/null
	SB_JAEGER_PID=
}
