#!/usr/bin/env bash
# End-to-end suite: node:test files in tests/e2e, run by Node through tsx, each spawning the
# real artifacts (make build first). E2E_RUNTIMES=bun,deno,node narrows; extra args go to node.
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(ls tests/e2e/*.test.ts 2>/dev/null | sort)
[ -n "$files" ] || { echo "no e2e tests"; exit 1; }
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@" $files
