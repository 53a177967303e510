#!/usr/bin/env bash
# tus-js-client uploads 200 MiB in 8 MiB chunks to sb-files, is aborted at about half in the
# middle of a PATCH, and a new client given the same URL resumes from the server's offset; the
# file read back has the original's SHA-256 (tests/files/resume.mjs).
# stack: pg,redis,kafka
# labels: files,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"

files_stack_up || exit 1
cd "$root/tests/files" || exit 1
SB_FILES_URL=$F SB_TOKEN=$alice SB_SIZE_MIB=${SB_FILES_RESUME_MIB:-200} SB_CHUNK_MIB=8 \
	timeout 150 node resume.mjs
