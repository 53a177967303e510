#!/usr/bin/env bash
# docs/api/openapi.yaml and docs/api/asyncapi.yaml are valid documents (independent parsers).
# labels: docs
set -eu
exec node "${SB_SOURCE_ROOT:?}/tests/apidocs/check.mjs"
