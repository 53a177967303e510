#!/usr/bin/env bash
# Fails when a C file of the project is not formatted by the checked-in .clang-format.
set -u
cd "${SB_SOURCE_ROOT:-$(dirname "$0")/../..}"
bad=0
while IFS= read -r f; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run make fmt)"
		bad=$((bad + 1))
	fi
done < <(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null || find services tools bench tests mesh -name '*.[ch]')
echo "format: $bad file(s) need formatting"
[ "$bad" -eq 0 ]
