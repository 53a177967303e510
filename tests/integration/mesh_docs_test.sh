#!/usr/bin/env bash
# docs/mesh.md's configuration table is exactly what `sb-sidecar --config-reference` prints,
# and the sidecar's --check-config accepts a good configuration and names a bad variable.
# labels: docs,mesh
set -uo pipefail
root=${SB_SOURCE_ROOT:?}
bin=${SB_BUILD_ROOT:?}/bin/sb-sidecar
want=$("$bin" --config-reference)
have=$(awk '/<!-- sidecar-config:begin -->/{on=1;next} /<!-- sidecar-config:end -->/{on=0} on' "$root/docs/mesh.md")
if [ "$want" != "$have" ]; then
	echo "FAIL: docs/mesh.md's configuration table differs from sb-sidecar --config-reference:"
	diff <(echo "$have") <(echo "$want") | head -20
	exit 1
fi
base=(SB_MESH_SERVICE=messages SB_MESH_CERT=/x SB_MESH_KEY=/x SB_MESH_CA=/x)
env -i "${base[@]}" "$bin" --check-config >/dev/null || { echo "FAIL: a good configuration refused"; exit 1; }
for bad in SB_MESH_ALLOW=gateway SB_MESH_INBOUND=nowhere SB_MESH_SERVICE=Bad \
	SB_MESH_MAX_FRAME=10 "SB_MESH_OUTBOUND=auth=127.0.0.1:1"; do
	out=$(env -i "${base[@]}" "$bad" "$bin" --check-config 2>&1)
	rc=$?
	[ $rc = 1 ] || { echo "FAIL: $bad: exit $rc, want 1"; exit 1; }
	grep -q "${bad%%=*}\|upstream\|bad rule" <<<"$out" || { echo "FAIL: $bad: error does not say what: $out"; exit 1; }
done
echo "PASS: sidecar configuration table and checks"
