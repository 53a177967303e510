# s3.sh: a real S3 server for the files tests: moto's server, which checks SigV4 signatures
# (installed by tools/deps.d/s3.sh into the cache; why this one: docs/files.md "Storage on S3").
# Source after tools/stack.sh.
#
#   sb_s3_start [tls]      starts it on a free loopback port (objects in its memory: it
#                          outlives restarts of sb-files, not its own), makes an IAM user whose
#                          key pair may use S3, and exports SB_TEST_S3_ENDPOINT, _BUCKET,
#                          SB_TEST_S3_ACCESS_KEY, _SECRET_KEY and
#                          SB_FILES_STORE=s3 with the SB_FILES_S3_* settings, so that every
#                          sb-files started afterwards stores into it. The server stops by
#                          itself when the shell that started it is gone (a watchdog polls).
#                          With tls: https with a throwaway certificate for 127.0.0.1, trusted
#                          through SB_TEST_S3_CA (and SB_FILES_S3_CA_FILE for sb-files).
#   sb_s3_stop             stops it now
#   sb_s3_curl ARGS...     curl signing its request with SigV4 (curl's own signer, not ours),
#                          for requests without a body
#   sb_s3_put KEY FILE     puts FILE as object KEY of the test bucket (as application/octet-
#                          stream: moto reads a form-urlencoded body, curl's default, as a form
#                          and stores nothing); prints the status
#   sb_s3_keys PREFIX      the keys of the test bucket under PREFIX, one a line

sb_s3_venv=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/venv-moto

# sb__s3_iam ACTION ARGS...: one IAM call of the setup (moto lets the first three through
# unchecked: INITIAL_NO_AUTH_ACTION_COUNT), answer on stdout.
sb__s3_iam() {
	local a=$1
	shift
	curl -sS ${SB_TEST_S3_CA:+--cacert "$SB_TEST_S3_CA"} --aws-sigv4 "aws:amz:us-east-1:iam" \
		--user "AKIASETUP:setup" -X POST \
		-d "Action=$a&Version=2010-05-08&UserName=switchboard" "$@" "$SB_TEST_S3_ENDPOINT/"
}

sb_s3_start() {
	local bin=$sb_s3_venv/bin/moto_server port log=$SB_TEST_TMP/s3.log try ok="" tls=() scheme=http
	[ -x "$bin" ] || { echo "FAIL: no S3 server in $sb_s3_venv (run tools/install-deps.sh)"; return 1; }
	unset SB_TEST_S3_CA
	if [ "${1:-}" = tls ]; then # a throwaway certificate for 127.0.0.1, trusted by the clients
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
			-subj /CN=s3-test -addext subjectAltName=IP:127.0.0.1 \
			-keyout "$SB_TEST_TMP/s3.key" -out "$SB_TEST_TMP/s3.crt" 2>/dev/null ||
			{ echo "FAIL: no test certificate"; return 1; }
		tls=(-c "$SB_TEST_TMP/s3.crt" -k "$SB_TEST_TMP/s3.key")
		scheme=https
		export SB_TEST_S3_CA=$SB_TEST_TMP/s3.crt
	fi
	for try in 1 2 3; do
		port=$(sb_free_port)
		INITIAL_NO_AUTH_ACTION_COUNT=3 "$bin" -H 127.0.0.1 -p "$port" "${tls[@]}" >"$log" 2>&1 &
		SB_S3_PID=$!
		sb_wait_port 127.0.0.1 "$port" 30 && kill -0 "$SB_S3_PID" 2>/dev/null && { ok=1; break; }
		kill "$SB_S3_PID" 2>/dev/null
		wait "$SB_S3_PID" 2>/dev/null
	done
	[ -n "$ok" ] || { echo "FAIL: the S3 server did not start"; cat "$log"; return 1; }
	local owner=$$
	setsid bash -c "while kill -0 $owner 2>/dev/null && kill -0 $SB_S3_PID 2>/dev/null; do sleep 1; done
		kill -TERM $SB_S3_PID 2>/dev/null" </dev/null >/dev/null 2>&1 &
	export SB_TEST_S3_ENDPOINT=$scheme://127.0.0.1:$port SB_TEST_S3_BUCKET=sb-files-test
	# A user with a key pair allowed s3:*; every later request is checked (SigV4 and policy).
	local key
	sb__s3_iam CreateUser >/dev/null &&
		key=$(sb__s3_iam CreateAccessKey) &&
		sb__s3_iam PutUserPolicy -d PolicyName=s3 --data-urlencode \
			'PolicyDocument={"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}' \
			>/dev/null || { echo "FAIL: S3 user setup"; return 1; }
	SB_TEST_S3_ACCESS_KEY=$(sed -n 's/.*<AccessKeyId>\([^<]*\)<.*/\1/p' <<<"$key")
	SB_TEST_S3_SECRET_KEY=$(sed -n 's/.*<SecretAccessKey>\([^<]*\)<.*/\1/p' <<<"$key")
	[ -n "$SB_TEST_S3_ACCESS_KEY" ] && [ -n "$SB_TEST_S3_SECRET_KEY" ] ||
		{ echo "FAIL: no S3 key pair: $key"; return 1; }
	export SB_TEST_S3_ACCESS_KEY SB_TEST_S3_SECRET_KEY
	export SB_FILES_STORE=s3 SB_FILES_S3_ENDPOINT=$SB_TEST_S3_ENDPOINT \
		SB_FILES_S3_BUCKET=$SB_TEST_S3_BUCKET SB_FILES_S3_REGION=us-east-1 \
		SB_FILES_S3_ACCESS_KEY=$SB_TEST_S3_ACCESS_KEY SB_FILES_S3_SECRET_KEY=$SB_TEST_S3_SECRET_KEY \
		SB_FILES_S3_CA_FILE=${SB_TEST_S3_CA:-}
}

sb_s3_stop() {
	[ -n "${SB_S3_PID:-}" ] || return 0
	kill -TERM "$SB_S3_PID" 2>/dev/null
	wait "$SB_S3_PID" 2>/dev/null
	SB_S3_PID=""
}

sb_s3_curl() {
	curl -sS ${SB_TEST_S3_CA:+--cacert "$SB_TEST_S3_CA"} --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$SB_TEST_S3_ACCESS_KEY:$SB_TEST_S3_SECRET_KEY" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}

sb_s3_put() {
	local sha
	sha=$(sha256sum "$2" | cut -d' ' -f1)
	curl -sS ${SB_TEST_S3_CA:+--cacert "$SB_TEST_S3_CA"} --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$SB_TEST_S3_ACCESS_KEY:$SB_TEST_S3_SECRET_KEY" -H "x-amz-content-sha256: $sha" \
		-H "Content-Type: application/octet-stream" -X PUT --data-binary @"$2" -o /dev/null -w '%{http_code}' \
		"$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET/$1"
}

sb_s3_keys() {
	sb_s3_curl "$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET?list-type=2&prefix=${1//\//%2F}" |
		grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/'
}
