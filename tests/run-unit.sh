#!/usr/bin/env bash
# Unit tests (node:test files beside the code) under all three runtimes. RUNNER=node|bun|deno
# picks one; default runs all three in turn.
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(find src -name '*.test.ts' | sort)
status=0
run() {
  echo "=== unit tests on $1"
  case $1 in
    node) node --import tsx --test --test-reporter=spec $files || status=1 ;;
    bun) node_modules/.bin/bun test $files 2>&1 || status=1 ;;
    deno) node_modules/.bin/deno test -A --no-check --quiet $files || status=1 ;;
  esac
}
for r in ${RUNNER:-node bun deno}; do run "$r"; done
exit $status
