# Observability checks (tests/integration/observability_test.sh): promtool comes with Debian's
# prometheus (the common list); amtool with prometheus-alertmanager, only the binary is used
# (no daemon is started: policy-rc.d refuses it during the install). The dashboards' type check
# uses tests/observability/package.json, installed with the other npm modules.
sb_apt_ensure prometheus-alertmanager
