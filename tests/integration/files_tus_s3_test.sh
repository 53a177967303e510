#!/usr/bin/env bash
# The whole tus flow of files_tus_test.sh (every protocol status, creation, deferred length,
# termination, checksums, download with Range, restart and kill -9 of sb-files between PATCHes
# and in the middle of one, then resume) with sb-files storing into a real S3 server
# (SB_FILES_STORE=s3; tests/lib/s3.sh starts the server on a free loopback port), over https
# with a throwaway certificate that sb-files trusts through SB_FILES_S3_CA_FILE.
# stack: pg,redis,kafka
# labels: files,e2e,s3,sanitize
SB_TEST_FILES_STORE=s3 SB_TEST_S3_TLS=1 exec bash "${SB_SOURCE_ROOT:?}/tests/integration/files_tus_test.sh"
