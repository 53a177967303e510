# tools/deps.d/mesh.sh: what the mesh sidecar's tests and benchmark need (sourced by
# tools/install-deps.sh): the openssl CLI for the development CA (tools/mesh-ca.sh), iproute2
# for the network-namespace test, and the two peers of bench/mesh_bench.sh, HAProxy 2.6 and
# stunnel, both from Debian.
sb_apt_ensure openssl iproute2 haproxy stunnel4
