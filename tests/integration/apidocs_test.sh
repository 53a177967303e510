#!/usr/bin/env bash
# docs/api/openapi.yaml and docs/api/asyncapi.yaml are valid documents (independent parsers),
# and openapi.yaml documents exactly the routes of the gateway's table ($SB_BUILD_ROOT/bin/
# sb-gateway --routes), both ways (tests/apidocs/check.mjs).
# labels: docs
set -eu
: "${SB_BUILD_ROOT:?}"
exec node "${SB_SOURCE_ROOT:?}/tests/apidocs/check.mjs"
