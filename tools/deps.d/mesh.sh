# tools/deps.d/mesh.sh: what the mesh sidecar's tests and benchmark need (sourced by
# tools/install-deps.sh): the openssl CLI for the development CA (tools/mesh-ca.sh), iproute2
# for the network-namespace test, promtool (Debian's prometheus) to check the sidecar's
# exposition, and the two peers of bench/mesh_bench.sh, HAProxy 2.6 and stunnel.
sb_apt_ensure openssl iproute2 haproxy stunnel4 prometheus
