#!/usr/bin/env bash
# `make run`: three demo backends on 8080, 8181 and 8888, and the proxy (the Bun binary) with
# the repo's routes.ts on 127.0.0.1:4433. Try:
#   curl -H 'Host: sub1.xyz.com' localhost:4433    -> backend :8080
#   curl -H 'Host: sub2.xyz.com' localhost:4433    -> backend :8181
#   curl -H 'Host: anything.else' localhost:4433   -> backend :8888
#   curl --cacert .tmp/demo-certs/ca.pem --resolve sub1.xyz.com:4443:127.0.0.1 https://sub1.xyz.com:4443/
#                                                   -> backend :8080 over HTTPS (h2)
# Ctrl-C stops everything. RUNTIME=deno|node runs the proxy on another runtime.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash tests/demo/certs.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
for port in 8080 8181 8888; do
  node tests/demo/backend.mjs "$port" &
  pids+=($!)
done
case "${RUNTIME:-bun}" in
  bun) cmd=(dist/switchyard) ;;
  deno) cmd=(node_modules/.bin/deno run -A src/main.ts) ;;
  node) cmd=(node dist/switchyard.mjs) ;;
esac
sleep 0.3
echo "switchyard on 127.0.0.1:4433 and https on 127.0.0.1:4443 (try: curl -H 'Host: sub1.xyz.com' localhost:4433)" >&2
"${cmd[@]}" serve --routes routes.ts &
pids+=($!)
wait "${pids[-1]}"
