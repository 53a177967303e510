# tools/deps.d/registry.sh (sourced by tools/install-deps.sh): what the schema registry builds
# and is tested with.
#  - libvalijson-dev + nlohmann-json3-dev: the JSON Schema validator (header-only C++) and the
#    JSON parser its adapter reads, behind services/registry/jsv.cpp;
#  - json-schema-test-suite: the official JSON Schema Test Suite (registry_jsv_suite_test);
#  - confluent-kafka from PyPI (its SchemaRegistryClient) in a virtualenv in the cache, for
#    tests/integration/registry_confluent_test.sh; made again only when the stamp names
#    another version.
sb_apt_ensure libvalijson-dev nlohmann-json3-dev json-schema-test-suite

sb_reg_ck_version=2.16.1
sb_reg_venv=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/venv-confluent
if [ "$(cat "$sb_reg_venv/.sb-stamp" 2>/dev/null)" != "$sb_reg_ck_version json" ]; then
	echo "install-deps: confluent-kafka $sb_reg_ck_version into $sb_reg_venv"
	rm -rf "$sb_reg_venv"
	python3 -m venv "$sb_reg_venv"
	"$sb_reg_venv/bin/pip" install --quiet --disable-pip-version-check \
		"confluent-kafka[schemaregistry,json]==$sb_reg_ck_version"
	echo "$sb_reg_ck_version json" >"$sb_reg_venv/.sb-stamp"
fi
