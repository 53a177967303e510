# Tracing (docs/observability.md, "Traces"):
#   - the OpenTelemetry protocol's .proto files (OTLP traces), which proto/CMakeLists.txt
#     compiles with protoc-c: from the io.opentelemetry.proto:opentelemetry-proto jar on Maven
#     Central, unpacked into the cache (only the four files the trace export needs);
#   - Jaeger (the Go module proxy), which tests/integration/tracing_jaeger_test.sh and
#     `make run OBSERVABILITY=1` run: built once into the cache by tools/jaeger.sh
#     (sb_jaeger_fetch; minutes the first time, a file check after).
sb_otel_proto_version=1.11.0-alpha
sb_otel_cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
sb_otel_dir=$sb_otel_cache/otel-proto-$sb_otel_proto_version
if [ ! -f "$sb_otel_dir/.sb-stamp" ]; then
	echo "install-deps: OpenTelemetry protos $sb_otel_proto_version into $sb_otel_dir"
	rm -rf "$sb_otel_dir" "$sb_otel_dir.tmp"
	mkdir -p "$sb_otel_dir.tmp"
	mvn -q -Dmaven.repo.local="$sb_otel_cache/m2" dependency:copy \
		-Dartifact="io.opentelemetry.proto:opentelemetry-proto:$sb_otel_proto_version" \
		-DoutputDirectory="$sb_otel_dir.tmp" >/dev/null
	(cd "$sb_otel_dir.tmp" && python3 - "opentelemetry-proto-$sb_otel_proto_version.jar" <<'PY'
import sys, zipfile
want = ["opentelemetry/proto/common/v1/common.proto",
        "opentelemetry/proto/resource/v1/resource.proto",
        "opentelemetry/proto/trace/v1/trace.proto",
        "opentelemetry/proto/collector/trace/v1/trace_service.proto"]
with zipfile.ZipFile(sys.argv[1]) as z:
    for w in want:
        z.extract(w, ".")
PY
	)
	rm -f "$sb_otel_dir.tmp"/*.jar
	mv "$sb_otel_dir.tmp" "$sb_otel_dir"
	echo "$sb_otel_proto_version" >"$sb_otel_dir/.sb-stamp"
fi

# Jaeger for the tracing test (built once; a stamp check after).
. "$here/tools/jaeger.sh"
sb_jaeger_fetch
