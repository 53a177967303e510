# tools/deps.d/s3.sh: the S3 server the files service's S3 backend is tested against: PyPI
# moto[server] 5.2.5 (Apache-2.0) in a virtualenv in ${SB_CACHE_DIR:-~/.cache/switchboard}/
# venv-moto. It checks AWS Signature Version 4 (a wrong secret is SignatureDoesNotMatch), which
# npm s3rver 3.7.1 and gofakes3 v1.2.0 do not (see docs/files.md). tests/lib/s3.sh starts it on a
# free loopback port. A stamp naming the version makes a second run instant.
sb_s3_version=5.2.5
sb_s3_venv=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/venv-moto
if [ "$(cat "$sb_s3_venv/.sb-stamp" 2>/dev/null)" != "$sb_s3_version" ]; then
	echo "install-deps: moto[server] $sb_s3_version into $sb_s3_venv"
	rm -rf "$sb_s3_venv"
	python3 -m venv "$sb_s3_venv" &&
		"$sb_s3_venv/bin/pip" install -q "moto[server]==$sb_s3_version" &&
		echo "$sb_s3_version" >"$sb_s3_venv/.sb-stamp"
fi
