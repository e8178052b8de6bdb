#!/usr/bin/env bash
# `make test`: every suite, in order, each counted; the last line sums them all as
# "N passed, N failed". A step that is not a test runner (type check, lint, build) counts as one.
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1 FORCE_COLOR=0
passed=0
failed=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# One step that is pass/fail as a whole.
step() {
  local name=$1
  shift
  echo "=== $name"
  if "$@" >"$logs/step.log" 2>&1; then
    passed=$((passed + 1))
    tail -n 3 "$logs/step.log"
    echo "--- $name: ok"
  else
    failed=$((failed + 1))
    cat "$logs/step.log"
    echo "--- $name: FAILED"
  fi
}

# A test runner whose own summary gives the counts; $2 is the summary parser.
suite() {
  local name=$1 parser=$2
  shift 2
  echo "=== $name"
  "$@" 2>&1 | tee "$logs/suite.log"
  local rc=${PIPESTATUS[0]}
  local counts
  counts=$("$parser" "$logs/suite.log")
  local p=${counts% *} f=${counts#* }
  # A runner that failed without reporting a failure (crash, no tests) counts as one failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "--- $name: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
}

node_counts() { echo "$(grep -oP '^ℹ pass \K\d+' "$1" | tail -1 || echo 0) $(grep -oP '^ℹ fail \K\d+' "$1" | tail -1 || echo 0)" | sed 's/^ /0 /; s/ $/ 0/'; }
bun_counts() { echo "$(grep -oP '^\s*\K\d+(?= pass$)' "$1" | tail -1 || echo 0) $(grep -oP '^\s*\K\d+(?= fail$)' "$1" | tail -1 || echo 0)" | sed 's/^ /0 /; s/ $/ 0/'; }
deno_counts() { echo "$(grep -oP '\| \K\d+(?= passed)' "$1" | tail -1 || echo 0) $(grep -oP '\| \K\d+(?= failed)' "$1" | tail -1 || echo 0)" | sed 's/^ /0 /; s/ $/ 0/'; }

# Debian packages the suites run for real (redis-server: the shared rate limits), installed
# when missing: CI machines start bare.
debs() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && { echo "present: $*"; return 0; }
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
step "system packages (apt-get: redis-server)" debs redis-server
step "types in sync (make gen)" bash -c 'make -s gen && git diff --exit-code -- src/cli/types-source.ts'
step "type check: tsc (Bun binary and Node bundle)" node_modules/.bin/tsc -p tsconfig.json
step "type check: deno check (Deno entry)" node_modules/.bin/deno check --quiet src/main.ts
step "lint: biome" node_modules/.bin/biome check src tests routes.ts
suite "unit tests on node" node_counts env RUNNER=node bash tests/run-unit.sh
suite "unit tests on bun" bun_counts env RUNNER=bun bash tests/run-unit.sh
suite "unit tests on deno" deno_counts env RUNNER=deno bash tests/run-unit.sh
step "build: dist/switchyard and dist/switchyard.mjs" make -s build
suite "end-to-end on bun, deno, node" node_counts bash tests/run-e2e.sh
suite "soak (websocket + sse)" node_counts node --import tsx --test --test-reporter=spec tests/soak/soak.ts
suite "fuzz (regressions, then ~60 s: fixed and random seed)" node_counts node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/fuzz/replay.test.ts tests/fuzz/fuzz.test.ts

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
