#!/usr/bin/env bash
# switchyard benchmark harness (`make bench` runs `bash tests/bench/run.sh`).
#
# What it measures
#   For each target, with wrk (-t1, 32 connections, keep-alive, 8 s per test
#   after a warm-up; all on loopback):
#     * small GET   : GET of a 100-byte file   -> requests/s, p50 and p99 latency
#     * 1 MiB GET   : GET of a 1 MiB file      -> MB/s of payload (1 MB = 10^6 bytes)
#     * 10 MiB POST : upload of a 10 MiB body  -> MB/s of payload (1 MB = 10^6 bytes)
#   Targets, all in one run against the same upstream:
#     direct          wrk straight to the upstream (the ceiling of this setup)
#     nginx           reference reverse proxy: a second nginx, 1 worker
#     switchyard-bun  dist/switchyard      (Bun compiled binary)
#     switchyard-deno deno run src/main.ts (node_modules/.bin/deno)
#     switchyard-node node dist/switchyard.mjs (Node bundle)
#   The proxy under test (nginx or switchyard) is pinned to core 1 with
#   `taskset -c 1`; wrk and the upstream are pinned to core 0. So the numbers
#   are "what one core of proxy can do", as long as core 1 shows ~100% busy in
#   the progress lines (if it does not, the load side on core 0 was the limit).
#   The progress lines also show how much of each core went to processes that
#   are not part of the bench; a row where that exceeded 15% of a core is
#   marked "noisy" in the table (the numbers are then not trustworthy).
#
# HTTPS part (tests/bench/tls.sh), in the same run after the plain part and its
# paired phase (BENCH_TLS=0 skips it, BENCH_TLS_ONLY=1 runs only it), for nginx
# and switchyard on each runtime (BENCH_TARGETS; "direct" has no TLS), GET
# /small over TLS to the same upstream:
#     https-h1   : wrk -t1 -c32, keep-alive HTTP/1.1 over TLS         -> req/s
#     https-h2   : h2load -t1 -c32 -m10, ALPN h2                     -> req/s
#     handshakes : wrk -t1 -c32 -H 'Connection: close': one request  -> new TLS
#                  per connection, each a full TLS 1.3 handshake        connections/s
#   and for each, like the A/B mode, µs of proxy CPU per request: utime+stime
#   of the proxy process (/proc/PID/stat, its workers and threads included)
#   over the measurement / responses. All targets are up at once, pinned to
#   core 1 (an idle one takes ~1% of it), warmed (h1: BENCH_TLS_WARMUP s for a
#   switchyard build, 2 s for nginx; then 2 s of h2 and of handshakes), then
#   BENCH_TLS_ROUNDS rounds (default 3) of BENCH_TLS_DURATION s (default 4),
#   each round measuring every test on every target, the target order rotating
#   per round. Reported: medians over rounds, ratios vs nginx, the rounds, and
#   the load side (below). ~3.5 minutes with the defaults.
#   Certificate: a private CA and an EC P-256 leaf for bench.test (SAN
#   DNS:bench.test and IP:127.0.0.1), made with openssl in the temp dir at
#   run time (never committed; removed with the temp dir).
#   nginx: the plain reference's proxy settings on one `listen 127.0.0.1:PORT
#   ssl http2` server, ssl_protocols TLSv1.2 TLSv1.3, the same certificate,
#   nginx's defaults otherwise (no session cache, session tickets on).
#   switchyard: a routes file with `listen` and `tls: { listen, certificates:
#   [{ cert, key }], redirectHttp: false }` on free ports; the TLS port is read
#   from its "listening" line with "tls": true. A build that refuses the tls
#   config, announces no TLS listener or fails the checks is "not measured"
#   (exit status 1). Checks first, per target: curl GET /small verified
#   against the private CA by name (SNI bench.test) over http/1.1 and over h2
#   (ALPN), by IP (IP SAN), and a TLS 1.2-only handshake; the TLS column shows
#   what OpenSSL's defaults (wrk's, curl's) negotiated. wrk connects to
#   https://127.0.0.1:PORT (it sends SNI "127.0.0.1": the default certificate),
#   h2load to https://bench.test:PORT (--connect-to, SNI bench.test).
#   Full handshakes: wrk keeps one SSL object per connection slot and on
#   reconnect calls SSL_clear, which keeps the session, so on its own wrk
#   RESUMES nearly every reconnect (TLS 1.3 PSK from the server's ticket: no
#   certificate, no signature; measured against nginx: 1686 of 1690). So
#   tests/bench/no-resume.c, built with cc into the temp dir and preloaded into
#   wrk only (LD_PRELOAD), drops the session after SSL_clear, and nginx's
#   access log ($ssl_session_reused, $connection_requests) is checked to show
#   that every handshake-test request had its own connection and a full
#   handshake. BENCH_TLS_RESUME=1 measures resumed handshakes instead (no shim,
#   lines named "handshakes-resumed"). h2load resumes too, but holds its
#   connections open.
#   The load side: wrk needs ~30-35 µs of core 0 per HTTPS request (OpenSSL
#   3.0), shared with the upstream, and a full handshake costs the client more
#   than the server (key share + signature verify), so nginx's HTTPS rows and
#   most handshake rows are limited by core 0, not by the proxy. A row whose
#   proxy core was under 90% busy is listed as "Load-bound" with the client's
#   µs per request: there req/s (and its ratio) is the client's limit; compare
#   µs CPU per request.
#
# WebSocket part (tests/bench/ws.sh), in the same run after the HTTPS part
# (BENCH_WS=0 skips it, BENCH_WS_ONLY=1 runs only it; BENCH_TLS_ONLY=1 and
# BENCH_WS_ONLY=1 together run those two parts), for direct, nginx and
# switchyard on each runtime (BENCH_TARGETS): echo round trips per second.
#   An echo upstream (tests/bench/ws-echo.ts: Bun.serve, messages sent back as
#   they came, no compression) and the load generator (tests/bench/ws-load.ts:
#   Bun's native WebSocket client) on core 0, the proxy on core 1 as above.
#   BENCH_WS_CONNECTIONS (default 50) connections, each sending a
#   BENCH_WS_BYTES-byte (default 32) text message and its next one when the
#   echo of the previous one arrives (one in flight per connection). Every echo
#   is compared with what was sent (each message names its connection and
#   sequence number); a target with a mismatched echo is reported as FAILED
#   (exit status 1, ratios n/a). Reported: round trips/s and, as in the HTTPS
#   part, µs of proxy CPU (utime+stime, /proc/PID/stat) per round trip; medians
#   over BENCH_WS_ROUNDS rounds (default 3) of BENCH_WS_DURATION s (default 4)
#   after a warm-up (BENCH_WS_WARMUP s, default 12, per switchyard build: their
#   CPU per round trip falls for ~10 s of load, Bun's 35 -> 28 µs, Node's 67 -> 53;
#   2 s for nginx and direct), all targets up at once and the order rotating per
#   round; ratios vs nginx; the rounds; and the load side: a row whose proxy
#   core was under 90% busy is listed as "Load-bound" with the client's and the
#   echo's µs per round trip (through a proxy they need 1.5-2x what they need
#   direct: 28-38 vs ~19 µs here, so nginx, and at times switchyard-bun, are
#   load-bound; compare µs CPU per round trip there). Each target
#   is first checked with text and binary echoes of 1 to 200000 bytes (the
#   frame-length boundaries 125/126 and 65535/65536 included). nginx: 1 worker,
#   proxy_http_version 1.1, Upgrade passed on, Connection: upgrade, an access
#   log to a file. switchyard: a routes file with upstream 'ws://127.0.0.1:PORT'.
#   ~2 minutes with the defaults.
#
# Load-balancing part (tests/bench/lb.sh), in the same run after the WebSocket
# part (BENCH_LB=0 skips it, BENCH_LB_ONLY=1 runs only it; with other *_ONLY=1
# switches: those parts), for switchyard on each runtime (BENCH_TARGETS): GET
# /small (100 B) with 4 upstreams per policy against 1 upstream, in the same
# run, through one proxy process serving one route per policy (picked by Host):
#     single      upstream: 'http://127.0.0.1:P1'
#     list        upstream: [P1, P2, P3, P4]
#     POLICY      upstream: { targets: [P1..P4], policy: POLICY } for round_robin,
#                 least_conn, random, p2c, first, { hash: 'ip' } (one client
#                 address: one upstream takes all), { hash: 'header', name:
#                 'x-key' } and { sticky: {} }
#   -> req/s, and µs of proxy CPU (utime+stime, /proc/PID/stat) per request, each
#   over the single route's (the issue's bar: within 10%, req/s ratio >= 0.90).
#   The 4 upstreams are one nginx (1 worker, core 0, the plain upstream's
#   settings) listening on 4 ports, so the backend is the same process with the
#   same capacity for the single and the 4-upstream routes; each port serves its
#   own 100-byte /small naming the port, and the proxy's access log shows how
#   the requests of each route spread over the 4 (reported per route). wrk -t1
#   -c32 (tests/bench/lb-wrk.lua) sends on every route the same requests but for
#   the Host: x-key k1..k256 cycling, and a Cookie cycling over 4 sticky cookies
#   (one per upstream, fetched from the sticky route with curl first), so the
#   header hash spreads and the sticky row measures clients holding their cookie.
#   Each runtime in turn: its proxy started, every route checked, a warm-up
#   (BENCH_LB_WARMUP s, default 5, over all routes), then BENCH_LB_ROUNDS
#   rounds (default 3) of S X1 S X2 ... S (S = the single route, X = the others
#   in an order rotating per round; BENCH_LB_DURATION s each, default 1). A
#   route's ratio in a round is its figure over the mean of the single runs
#   just before and after it (on this shared VM runs seconds apart differed by
#   up to 50% with nothing else visible on the cores); reported: medians over
#   rounds, and as a control each single run over its neighbouring single runs
#   (the range of its medians over rounds is the run's resolution).
#   A run with over 15% of a core used by others is run again (at most
#   BENCH_LB_RETRIES times per runtime). The ratio is reported, not enforced
#   (a miss does not change the exit status).
#   ~4.5 minutes with the defaults (4 min 18 s on a quiet machine; each re-run
#   of a noisy run adds ~1.4 s).
#
# The upstream is an nginx (1 worker, own temp prefix, 127.0.0.1, free port)
# serving /small (100 B), /1m (1 MiB) and /upload. /upload reads the whole
# request body into memory *before* answering 200 (proxy_pass with
# proxy_request_buffering on and proxy_pass_request_body off, to a tiny
# location that returns 200). A plain `return 200` would answer before the body
# has arrived and let a proxy get away without forwarding it; a pre-flight
# check below proves the upstream does not answer a half-sent body, and every
# target's sanity check proves the upstream received all 10 MiB through it.
#
# Reference nginx settings (chosen to match what a streaming proxy does):
# upstream keepalive pool (`keepalive 64`), proxy_http_version 1.1, empty
# Connection header, proxy_buffering ON with nginx's default in-memory buffers
# (proxy_buffers 8 x 4k) and proxy_max_temp_file_size 0 (never spools to disk;
# measured here, 16 x 64k buffers made nginx's 1 MiB GET ~3x slower and
# buffering off was the same as the defaults), proxy_request_buffering OFF
# (uploads are streamed, not spooled to a temp file), and an
# unbuffered access log to a file, because switchyard writes one access-log line
# per request as well (its stdout goes to a file).
#
# Output: progress on stderr; on stdout a markdown table, a table of ratios vs
# nginx, the paired small-GET rounds, the HTTPS, WebSocket and load-balancing
# tables, then the HTTPS summary lines (RT = bun, deno, node, those selected; R = 2 decimals, "n/a" if either
# side is missing):
#   bench https-h1 switchyard-RT/nginx: R    (median req/s over nginx's)
#   bench https-h2 switchyard-RT/nginx: R
#   bench handshakes switchyard-RT/nginx: R
#   bench https-h1 cpu-per-request switchyard-RT/nginx: R   (median µs CPU per
#   bench https-h2 cpu-per-request switchyard-RT/nginx: R    request over
#   bench handshakes cpu-per-request switchyard-RT/nginx: R  nginx's; lower is cheaper)
# then the WebSocket tables and its summary lines
#   bench ws-echo switchyard-RT/nginx: R                     (round trips/s over nginx's)
#   bench ws-echo cpu-per-roundtrip switchyard-RT/nginx: R   (µs CPU per round trip over nginx's)
# then the load-balancing summary lines (the worst route of each runtime, and the
# range the control's ratios took: what the run can resolve)
#   bench lb switchyard-RT lowest req/s vs single: R (ROUTE)
#   bench lb switchyard-RT highest cpu-per-request vs single: R (ROUTE)
#   bench lb switchyard-RT control single/single req/s: R-R
# and, always as the very last line (so scripts reading the last line keep
# working; "n/a" with BENCH_TLS_ONLY=1, BENCH_WS_ONLY=1 or BENCH_LB_ONLY=1),
#   bench small-get switchyard/nginx: R
# where R = switchyard-bun small-GET req/s / nginx small-GET req/s (2 decimals;
# "n/a" if either could not be measured). R is the ratio of the medians of a
# paired phase after the table (nginx and switchyard-bun up together, small
# GETs alternating, BENCH_PAIR_ROUNDS rounds, default 3; 0 falls back to the
# table's single measurements): single 8 s runs moved nginx by 27k-39k req/s.
# Exit status: 0 when every selected target was measured without errors.
#
# A/B mode: BENCH_BASELINE=/path/to/other/checkout make bench
#   Compares two builds of switchyard instead of running the table above: for
#   each of bun, deno, node (those BENCH_TARGETS names; default all three) the
#   baseline's build and this checkout's build are started side by side, both
#   pinned to core 1 (the idle one takes ~1% of it, shown per round), each
#   sanity-checked and warmed (BENCH_WARMUP, default 20 s each), then
#   BENCH_PAIR_ROUNDS (default 5 here) small-GET rounds of BENCH_DURATION
#   alternate between them, the order
#   flipping every round; a round during which other processes used over 15%
#   of either core is measured again, both sides (at most BENCH_PAIR_ROUNDS
#   re-runs per runtime). Per round: req/s, and CPU per request = utime+stime
#   of the proxy process (/proc/PID/stat, before and after) / requests wrk
#   completed. Reported: medians of both, the ratio current/baseline, and as
#   the last lines, one per runtime,
#     bench ab RUNTIME cpu-per-request current/baseline: R
#   (below 1.00: the current build spends less CPU per request). Artifacts
#   come from each checkout's own dist/ (dist/switchyard for Bun,
#   dist/switchyard.mjs for Node) and, for Deno, its own src/main.ts,
#   deno.json and node_modules/.bin/deno (a node_modules symlink is fine): run
#   `make build` in the baseline first. A baseline of the last commit:
#     git archive HEAD | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/ &&
#       make -C /tmp/base build && BENCH_BASELINE=/tmp/base make bench
#
# Knobs (environment):
#   BENCH_TARGETS      targets to run (default "direct nginx bun deno node")
#   BENCH_DURATION     seconds per measurement (default 8)
#   BENCH_WARMUP       warm-up seconds before the small GET: 3 for nginx/direct, 20 for
#                      switchyard (Bun's JIT takes ~20 s of load to plateau here: 4.3k req/s
#                      in the first 3 s, 9k after 20 s)
#   BENCH_WARMUP_LARGE warm-up seconds before the 1 MiB GET and upload (default 1)
#   BENCH_CONNECTIONS  wrk connections (default 32)
#   BENCH_KEEP_TMP=1   keep the temp dir (configs, logs, raw wrk/h2load output, the
#                      bench certificate and its private keys)
#   BENCH_PAIR_ROUNDS  paired rounds: nginx vs switchyard-bun (default 3; 0 = none), or
#                      in A/B mode baseline vs current per runtime (default 5)
#   BENCH_BASELINE     another checkout to compare with (A/B mode, above; no HTTPS part)
#   BENCH_DIST         a folder holding this checkout's Bun binary and Node bundle
#                      (DIR/switchyard, DIR/switchyard.mjs) to use instead of dist/, e.g.
#                      builds of a tree others are editing: node_modules/.bin/bun build
#                      src/main.ts --compile --outfile DIR/switchyard (--target=node
#                      --outfile DIR/switchyard.mjs). Deno always runs src/main.ts.
#   BENCH_TLS=0        skip the HTTPS part (default 1)
#   BENCH_TLS_ONLY=1   run only the HTTPS part (the plain part, its paired phase and the WebSocket part are skipped)
#   BENCH_TLS_DURATION seconds per HTTPS measurement (default 4)
#   BENCH_TLS_ROUNDS   HTTPS rounds (default 3)
#   BENCH_TLS_WARMUP   seconds of HTTPS h1 warm-up per switchyard build (default 10; nginx 2)
#   BENCH_H2_STREAMS   h2load -m: concurrent streams per h2 connection (default 10)
#   BENCH_TLS_RESUME=1 the handshake test with wrk's resumed sessions instead of full handshakes
#   BENCH_WS=0         skip the WebSocket part (default 1)
#   BENCH_WS_ONLY=1    run only the WebSocket part (with BENCH_TLS_ONLY=1: the HTTPS and WebSocket parts)
#   BENCH_WS_DURATION  seconds per WebSocket measurement (default 4)
#   BENCH_WS_ROUNDS    WebSocket rounds (default 3)
#   BENCH_WS_WARMUP    seconds of WebSocket warm-up per switchyard build (default 12; nginx, direct 2)
#   BENCH_WS_CONNECTIONS WebSocket connections (default 50)
#   BENCH_WS_BYTES     bytes per WebSocket message (default 32)
#   BENCH_LB=0         skip the load-balancing part (default 1)
#   BENCH_LB_ONLY=1    run only the load-balancing part (with BENCH_TLS_ONLY=1 / BENCH_WS_ONLY=1: those parts too)
#   BENCH_LB_DURATION  seconds per load-balancing run (default 1)
#   BENCH_LB_ROUNDS    load-balancing rounds (default 3)
#   BENCH_LB_WARMUP    seconds of load-balancing warm-up per switchyard build, over all routes (default 5)
#   BENCH_LB_RETRIES   noisy load-balancing measurements run again, per runtime, at most (default 10)
#
# Needs: bash, wrk, nginx, curl, taskset, 2+ cores; for the HTTPS part also
# h2load, openssl and cc; for the WebSocket part node_modules/.bin/bun.
# Installs wrk/nginx/curl (and nghttp2-client, openssl, gcc) with apt-get when
# missing. Artifacts are not built here: run `make build` first (a missing
# artifact is reported as such and its row left empty).

# W_* and the cpu_snapshot results are assigned with printf -v:
# shellcheck disable=SC2154
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-}
WARMUP_LARGE=${BENCH_WARMUP_LARGE:-1}
CONNS=${BENCH_CONNECTIONS:-32}
TARGETS=${BENCH_TARGETS:-direct nginx bun deno node}
LOAD_CPU=0
PROXY_CPU=1
SMALL_BYTES=100
LARGE_BYTES=1048576
UPLOAD_BYTES=10485760
WRK_LUA=$SCRIPT_DIR/wrk.lua

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

BASELINE=""
if [[ -n ${BENCH_BASELINE:-} ]]; then
  BASELINE=$(cd "$BENCH_BASELINE" 2>/dev/null && pwd) || die "BENCH_BASELINE=$BENCH_BASELINE is not a directory"
fi
DIST=""
if [[ -n ${BENCH_DIST:-} ]]; then
  DIST=$(cd "$BENCH_DIST" 2>/dev/null && pwd) || die "BENCH_DIST=$BENCH_DIST is not a directory"
fi
TLS=${BENCH_TLS:-1}
TLS_ONLY=${BENCH_TLS_ONLY:-0}
[[ $TLS == [01] && $TLS_ONLY == [01] ]] || die "BENCH_TLS and BENCH_TLS_ONLY take 0 or 1"
((TLS || !TLS_ONLY)) || die "BENCH_TLS=0 with BENCH_TLS_ONLY=1 leaves nothing to run"
WS=${BENCH_WS:-1}
WS_ONLY=${BENCH_WS_ONLY:-0}
[[ $WS == [01] && $WS_ONLY == [01] ]] || die "BENCH_WS and BENCH_WS_ONLY take 0 or 1"
((WS || !WS_ONLY)) || die "BENCH_WS=0 with BENCH_WS_ONLY=1 leaves nothing to run"
LB=${BENCH_LB:-1}
LB_ONLY=${BENCH_LB_ONLY:-0}
[[ $LB == [01] && $LB_ONLY == [01] ]] || die "BENCH_LB and BENCH_LB_ONLY take 0 or 1"
((LB || !LB_ONLY)) || die "BENCH_LB=0 with BENCH_LB_ONLY=1 leaves nothing to run"
# PLAIN: the plain part and its paired phase. An *_ONLY switch runs only the parts it names.
PLAIN=1
if ((TLS_ONLY || WS_ONLY || LB_ONLY)); then
  PLAIN=0
  ((TLS_ONLY)) || TLS=0
  ((WS_ONLY)) || WS=0
  ((LB_ONLY)) || LB=0
fi
[[ -z $BASELINE ]] || TLS=0 WS=0 LB=0 # A/B mode measures plain small GETs only

# ---------------------------------------------------------------- tools ----
need_install=()
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
if ((TLS)); then
  command -v h2load >/dev/null 2>&1 || need_install+=(nghttp2-client)
  command -v openssl >/dev/null 2>&1 || need_install+=(openssl)
  command -v cc >/dev/null 2>&1 || need_install+=(gcc) # builds tests/bench/no-resume.c
fi
if ((${#need_install[@]})); then
  say "installing ${need_install[*]} with apt-get"
  SUDO=()
  ((EUID == 0)) || SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${need_install[@]}" >&2
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is missing"
# The harness itself (curl, awk, ...) stays off the proxy core too: re-run
# this script pinned to the load core.
if [[ -z ${SWITCHYARD_BENCH_PINNED:-} ]]; then
  ncpu=$(nproc)
  ((ncpu >= 2)) || die "need at least 2 cores to pin the proxy apart from the load (have $ncpu)"
  export SWITCHYARD_BENCH_PINNED=1
  exec taskset -c "$LOAD_CPU" bash "${BASH_SOURCE[0]}" "$@"
fi

# --------------------------------------------------- processes & cleanup ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
PIDS=()

# children_of PID: PIDs whose parent is PID (from /proc; no procps needed).
# /proc/PID/task/*/children when the kernel has it (a few ms: cpu_snapshot
# runs it around every measurement, inside the measured window), else a scan
# of every process (~40 ms).
children_of() {
  local f line rest fields
  if [[ -e /proc/$1/task/$1/children ]]; then
    for f in /proc/"$1"/task/*/children; do
      fields=()
      { read -r -a fields <"$f"; } 2>/dev/null || true # no newline at its end
      ((${#fields[@]} == 0)) || printf '%s\n' "${fields[@]}"
    done
    return 0
  fi
  for f in /proc/[0-9]*/stat; do
    { IFS= read -r line <"$f"; } 2>/dev/null || continue
    rest=${line##*) }
    read -r -a fields <<<"$rest"
    [[ ${fields[1]} == "$1" ]] && echo "${f//[!0-9]/}"
  done
  return 0
}

# Stop one process we started, by PID: SIGTERM, then SIGKILL after 5 s. Its
# direct children (nginx workers) are collected first and stopped too if they
# outlive it.
stop_pid() {
  local pid=$1 kids i state
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kids=$(children_of "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    [[ $state == gone || $state == Z ]] && break
    sleep 0.1
  done
  [[ $state == gone || $state == Z ]] || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in $kids; do
    kill -0 "$i" 2>/dev/null && kill -KILL "$i" 2>/dev/null || true
  done
  return 0
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  [[ -n ${BENCH_KEEP_TMP:-} ]] || rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() { # drop a stopped PID from PIDS
  local pid=$1 p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    port_open "$p" || { echo "$p"; return 0; }
  done
  return 1
}

alive() { # running and not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone)
  [[ $state != gone && $state != Z ]]
}

# ------------------------------------------------------------ nginx -------
NGINX_USER=""
((EUID == 0)) && NGINX_USER="user root root;"

nginx_common() { # $1 = prefix dir
  cat <<EOF
worker_processes 1;
$NGINX_USER
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}

nginx_temp_paths() { # $1 = prefix dir
  cat <<EOF
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
EOF
}

# The http-level settings of the bench's upstream nginx, shared by the plain upstream and the
# load-balancing part's four-port one (lb.sh), so both serve files the same way.
nginx_upstream_http_settings() { # $1 = prefix dir
  cat <<EOF
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  open_file_cache max=16 inactive=300s;
$(nginx_temp_paths "$1")
EOF
}

write_upstream_conf() { # $1 prefix, $2 port
  local d=$1 port=$2
  {
    nginx_common "$d"
    cat <<EOF
http {
$(nginx_upstream_http_settings "$d")
  log_format upload '\$request_length \$status';
  upstream sink { server 127.0.0.1:$port; keepalive 16; }
  server {
    listen 127.0.0.1:$port backlog=4096;
    root $d/www;
    location = /small { }
    location = /1m { }
    # Reads the whole body (into memory: client_body_buffer_size > 10 MiB)
    # before contacting /sink, so the 200 only leaves once every byte is in.
    location = /upload {
      client_max_body_size 20m;
      client_body_buffer_size 16m;
      access_log $d/upload.log upload;
      proxy_pass http://sink/sink;
      proxy_method GET;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /sink { return 200 "ok\n"; }
  }
}
EOF
  } >"$d/nginx.conf"
}

# write_reference_conf PREFIX PORT UPSTREAM_PORT [LISTEN_EXTRA SERVER_LINES ACCESS_LOG]: the
# reference reverse proxy. The HTTPS reference (tls.sh) is the same with `ssl http2` on the
# listen line, its certificate lines and an access log of its own.
write_reference_conf() {
  local d=$1 port=$2 up=$3 listen_extra=${4:-} server_lines=${5:-} access_log=${6:-"access_log $1/access.log;"}
  {
    nginx_common "$d"
    cat <<EOF
http {
  $access_log
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 20m;
$(nginx_temp_paths "$d")
  upstream backend {
    server 127.0.0.1:$up;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$port$listen_extra backlog=4096;
$server_lines
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
      proxy_max_temp_file_size 0;
      proxy_request_buffering off;
    }
  }
}
EOF
  } >"$d/nginx.conf"
}

# start_nginx NAME CPU CONF_WRITER [extra args for the writer]
# Sets STARTED_PID and STARTED_PORT. Retries with another port if the bind
# loses a race.
start_nginx() {
  local name=$1 cpu=$2 writer=$3 d=$TMP/$1 port pid try i
  shift 3
  mkdir -p "$d"
  for ((try = 0; try < 5; try++)); do
    port=$(pick_port) || return 1
    "$writer" "$d" "$port" "$@"
    taskset -c "$cpu" "$NGINX" -p "$d" -c "$d/nginx.conf" -g 'daemon off;' \
      </dev/null >"$d/stdout.log" 2>"$d/stderr.log" &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
      port_open "$port" && { STARTED_PID=$pid STARTED_PORT=$port; return 0; }
      alive "$pid" || break
      sleep 0.05
    done
    say "$name nginx did not come up on port $port:"
    sed 's/^/    /' "$d/stderr.log" "$d/error.log" 2>/dev/null | tail -n 5 >&2 || true
    stop_pid "$pid"
    forget_pid "$pid"
  done
  return 1
}

# ------------------------------------------------------- switchyard -------
ROUTES=$TMP/routes.ts

# switchyard_cmd RUNTIME DIR: sets CMD to the command that serves the build in
# checkout DIR on RUNTIME, from DIR's own artifacts and node_modules: bun ->
# dist/switchyard, deno -> node_modules/.bin/deno run src/main.ts, node ->
# node dist/switchyard.mjs. Leaves CMD empty when something is missing; ART
# names what it looked for.
switchyard_cmd() {
  local rt=$1 dir=$2 dist=$2/dist
  [[ $dir != "$ROOT" || -z $DIST ]] || dist=$DIST # BENCH_DIST: this checkout's Bun/Node artifacts
  CMD=() ART=""
  case $rt in
    bun)
      ART=$dist/switchyard
      [[ -x $ART ]] && CMD=("$ART" serve) ;;
    deno)
      ART=$dir/node_modules/.bin/deno
      [[ -x $ART && -f $dir/deno.json && -f $dir/src/main.ts ]] &&
        CMD=("$ART" run -A --config "$dir/deno.json" "$dir/src/main.ts" serve)
      ART="$ART, $dir/deno.json, $dir/src/main.ts" ;;
    node)
      ART=$dist/switchyard.mjs
      command -v node >/dev/null 2>&1 && [[ -f $ART ]] && CMD=(node "$ART" serve)
      ART="node + $ART" ;;
  esac
  return 0
}

# start_switchyard NAME DIR CMD...  (run from checkout DIR, pinned to PROXY_CPU)
# Reads the port from the "listening" JSON line. stdout (the access log) goes
# to a file, never a pipe. Sets STARTED_PID and STARTED_PORT. SY_ROUTES=FILE
# serves that routes file with its own listen addresses (no --listen).
start_switchyard() {
  local name=$1 dir=$2 out=$TMP/$1.stdout err=$TMP/$1.stderr pid port="" i line
  local args=(--routes "$ROUTES" --listen 127.0.0.1:0)
  [[ -z ${SY_ROUTES:-} ]] || args=(--routes "$SY_ROUTES")
  shift 2
  (cd "$dir" && exec taskset -c "$PROXY_CPU" "$@" "${args[@]}") \
    </dev/null >"$out" 2>"$err" &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 600; i++)); do # up to 60 s (first Deno run may compile)
    line=$(grep -m1 '"listening"' "$out" 2>/dev/null || true)
    [[ -n $line ]] || line=$(head -n1 "$out" 2>/dev/null || true)
    port=$(grep -o '"port" *: *[0-9]*' <<<"$line" | head -n1 | grep -o '[0-9]*$' || true)
    [[ -n $port ]] && break
    alive "$pid" || break
    sleep 0.1
  done
  if [[ -z $port ]] || ! alive "$pid"; then
    say "$name did not announce a port; stdout/stderr tail:"
    tail -n 5 "$out" "$err" 2>/dev/null | sed 's/^/    /' >&2 || true
    stop_pid "$pid"
    forget_pid "$pid"
    return 1
  fi
  for ((i = 0; i < 50; i++)); do port_open "$port" && break; sleep 0.1; done
  STARTED_PID=$pid STARTED_PORT=$port
}

# --------------------------------------------------------- measuring -----
# CPU accounting, to tell whether the run had the cores to itself.
# proc_ticks PID...: utime+stime (clock ticks) of these processes and their
# direct children (nginx workers); threads are included by the kernel.
proc_ticks() {
  local p all=()
  for p in "$@"; do
    [[ -n $p ]] || continue
    all+=("$p")
    mapfile -t -O "${#all[@]}" all < <(children_of "$p")
  done
  ((${#all[@]})) || { echo 0; return 0; }
  for p in "${all[@]}"; do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

UP_PID="" CUR_PROXY_PID=""
# cpu_snapshot VAR: stores "busy0 user0 total0 busy1 user1 total1 up proxy kids"
# (ticks): per core, busy = all but idle/iowait, user = user+nice+system (what
# process times are comparable with); up/proxy = ticks of the upstream nginx and
# of the proxy under test; kids = CPU of this shell's finished children (wrk).
# Runs `times` in this shell (not a subshell) so that wrk is counted.
cpu_snapshot() {
  local stat kids
  stat=$(awk -v a="cpu$LOAD_CPU" -v b="cpu$PROXY_CPU" '
    $1 == a || $1 == b { t = 0; for (i = 2; i <= NF; i++) t += $i
                         v[$1] = (t - $5 - $6) " " ($2 + $3 + $4) " " t }
    END { print v[a], v[b] }' /proc/stat)
  times >"$TMP/times"
  kids=$(awk 'NR == 2 { t = 0
      for (i = 1; i <= 2; i++) { m = $i; sub(/m.*/, "", m); x = $i; sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); t += m * 60 + x }
      printf "%d\n", t * 100 }' "$TMP/times")
  printf -v "$1" '%s %s %s %s' "$stat" "$(proc_ticks "$UP_PID")" "$(proc_ticks "$CUR_PROXY_PID")" "$kids"
}

# cpu_delta BEFORE AFTER -> "busy0% busy1% other0% other1%", where other = CPU
# on that core not used by the bench's own processes (upstream + wrk on the load
# core, the proxy on the proxy core): someone else was running there.
cpu_delta() {
  awk -v b="$1" -v a="$2" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    d0 = y[3] - x[3] + 1e-9; d1 = y[6] - x[6] + 1e-9
    o0 = (y[2] - x[2]) - (y[7] - x[7]) - (y[9] - x[9]); if (o0 < 0) o0 = 0
    o1 = (y[5] - x[5]) - (y[8] - x[8]); if (o1 < 0) o1 = 0
    printf "%.0f %.0f %.0f %.0f\n", 100 * (y[1] - x[1]) / d0, 100 * (y[4] - x[4]) / d1, 100 * o0 / d0, 100 * o1 / d1 }'
}

NOISE_LIMIT=15 # % of a core used by others during a measurement -> row marked noisy

# run_wrk TAG URL UPLOAD_BYTES SECONDS -> sets W_* variables. WRK_ARGS (array):
# extra wrk arguments (the HTTPS part's -H 'Connection: close'); WRK_ENV (array):
# NAME=VALUE for wrk's environment only (the HTTPS part's LD_PRELOAD).
WRK_ARGS=() WRK_ENV=()
run_wrk() {
  local tag=$1 url=$2 upload=$3 secs=$4 raw=$TMP/wrk-$1.txt line before after
  local wrk_pid rc=0
  cpu_snapshot before
  # In the background + wait, so that a signal runs the cleanup trap at once.
  env BENCH_UPLOAD_BYTES="$upload" "${WRK_ENV[@]}" taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s --latency -s "$WRK_LUA" "${WRK_ARGS[@]}" "$url" \
    </dev/null >"$raw" 2>&1 &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  wait "$wrk_pid" || rc=$?
  forget_pid "$wrk_pid"
  cpu_snapshot after
  if ((rc != 0)); then
    say "wrk failed ($tag, exit $rc):"; sed 's/^/    /' "$raw" >&2; return 1
  fi
  line=$(grep -m1 '^BENCHRESULT ' "$raw") || { say "no result from wrk ($tag)"; cat "$raw" >&2; return 1; }
  local kv k v
  for kv in ${line#BENCHRESULT }; do
    k=${kv%%=*} v=${kv#*=}
    printf -v "W_$k" '%s' "$v"
  done
  W_errors=$((W_err_connect + W_err_read + W_err_write + W_err_timeout + W_err_status))
  read -r W_cpu0 W_cpu1 W_other0 W_other1 < <(cpu_delta "$before" "$after")
  W_cpu="core$LOAD_CPU ${W_cpu0}% busy (${W_other0}% other), core$PROXY_CPU ${W_cpu1}% busy (${W_other1}% other)"
  W_worst=$((W_other0 > W_other1 ? W_other0 : W_other1))
  # CPU ticks of the proxy under test during the run (utime+stime, threads included).
  W_proxy_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[8] - x[8] }')
  # CPU of the load generator (this shell's finished children: wrk), in 1/100 s.
  W_client_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[9] - x[9] }')
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

note_noise() { # keep the worst "other" load seen in TARGET's measurements
  local w=$W_worst
  [[ $1 != direct ]] || w=$W_other0 # the proxy core is unused in the direct row
  ((w <= ${RES[$1,noise]:-0})) || RES[$1,noise]=$w
}

declare -A RES   # RES[target,key]
FAILED=0

# Pre-flight: send half of a 10 MiB body, make sure the upstream stays silent,
# send the rest, expect 200 and a logged request length >= 10 MiB.
check_upstream_reads_body() {
  local port=$1 fd line
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  printf 'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' \
    "$UPLOAD_BYTES" >&"$fd"
  head -c $((UPLOAD_BYTES / 2)) /dev/zero >&"$fd"
  if IFS= read -r -t 1 line <&"$fd"; then
    exec {fd}>&-
    say "upstream answered before the upload body was complete: $line"
    return 1
  fi
  head -c $((UPLOAD_BYTES - UPLOAD_BYTES / 2)) /dev/zero >&"$fd"
  IFS= read -r -t 10 line <&"$fd" || line=""
  exec {fd}>&-
  [[ $line == "HTTP/1.1 200"* ]] || { say "upstream upload check: got '$line'"; return 1; }
  check_upload_logged || return 1
}

UPLOAD_LOG=""
check_upload_logged() { # last upstream /upload log line: full length, 200
  local len status
  sleep 0.05
  read -r len status < <(tail -n1 "$UPLOAD_LOG")
  if ((len < UPLOAD_BYTES)) || [[ $status != 200 ]]; then
    say "upstream logged request_length=$len status=$status for a $UPLOAD_BYTES-byte upload"
    return 1
  fi
}

# Sanity-check a target before measuring it: sizes, statuses, full upload.
check_target() {
  local name=$1 base=$2 got n
  got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$base/small") || got="curl failed"
  [[ $got == "200 $SMALL_BYTES" ]] || { say "$name: GET /small -> $got (want 200 $SMALL_BYTES)"; return 1; }
  got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$base/1m") || got="curl failed"
  [[ $got == "200 $LARGE_BYTES" ]] || { say "$name: GET /1m -> $got (want 200 $LARGE_BYTES)"; return 1; }
  n=$(wc -l <"$UPLOAD_LOG")
  got=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/upload.bin" "$base/upload") || got="curl failed"
  [[ $got == 200 ]] || { say "$name: POST /upload -> $got (want 200)"; return 1; }
  (($(wc -l <"$UPLOAD_LOG") == n + 1)) || { say "$name: upload did not reach the upstream exactly once"; return 1; }
  check_upload_logged || { say "$name: upload was not forwarded in full"; return 1; }
}

fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, v }'; }

# bench_target NAME BASE_URL: the three measurements, stored in RES.
bench_target() {
  local t=$1 base=$2 flag=""
  check_target "$t" "$base" || return 1

  local warm=$WARMUP
  if [ -z "$warm" ]; then case $t in direct | nginx) warm=3 ;; *) warm=20 ;; esac; fi
  say "$t: warm-up ${warm}s"
  run_wrk "$t-warm" "$base/small" 0 "$warm" || return 1
  run_wrk "$t-small" "$base/small" 0 "$DURATION" || return 1
  RES[$t,rps]=$(awk -v r="$W_requests" -v d="$W_duration_us" 'BEGIN { print r * 1e6 / d }')
  RES[$t,p50]=$(awk -v u="$W_p50_us" 'BEGIN { print u / 1000 }')
  RES[$t,p99]=$(awk -v u="$W_p99_us" 'BEGIN { print u / 1000 }')
  note_noise "$t"
  ((W_errors == 0)) || { RES[$t,err]+="small:$W_errors "; flag=" ERRORS=$W_errors"; }
  say "$t: small GET  $(fmt "${RES[$t,rps]}") req/s  p50 $(fmt "${RES[$t,p50]}" 2) ms  p99 $(fmt "${RES[$t,p99]}" 2) ms  ($W_cpu)$flag"

  flag=""
  run_wrk "$t-1m-warm" "$base/1m" 0 "$WARMUP_LARGE" || return 1
  run_wrk "$t-1m" "$base/1m" 0 "$DURATION" || return 1
  RES[$t,large]=$(awk -v r="$W_requests" -v d="$W_duration_us" -v s="$LARGE_BYTES" 'BEGIN { print r * s / d }')
  note_noise "$t"
  ((W_errors == 0)) || { RES[$t,err]+="1m:$W_errors "; flag=" ERRORS=$W_errors"; }
  say "$t: 1 MiB GET  $(fmt "${RES[$t,large]}") MB/s  ($W_cpu)$flag"

  flag=""
  run_wrk "$t-up-warm" "$base/upload" "$UPLOAD_BYTES" "$WARMUP_LARGE" || return 1
  run_wrk "$t-up" "$base/upload" "$UPLOAD_BYTES" "$DURATION" || return 1
  RES[$t,upload]=$(awk -v r="$W_requests" -v d="$W_duration_us" -v s="$UPLOAD_BYTES" 'BEGIN { print r * s / d }')
  note_noise "$t"
  ((W_errors == 0)) || { RES[$t,err]+="upload:$W_errors "; flag=" ERRORS=$W_errors"; }
  say "$t: 10 MiB POST $(fmt "${RES[$t,upload]}") MB/s  ($W_cpu)$flag"

  [[ -z ${RES[$t,err]:-} ]]
}

# The HTTPS part's functions (tls_part, tls_report, tls_summary).
# The targets for round $1 (1-based) of a rotating order: round r starts at the r-th target,
# so no target always runs first, or always right after the same one. Sets `order`.
rotate_order() {
  local r=$1 i
  shift
  local -a all=("$@")
  order=()
  for ((i = 0; i < ${#all[@]}; i++)); do order+=("${all[(i + r - 1) % ${#all[@]}]}"); done
}

# shellcheck source=tests/bench/tls.sh
source "$SCRIPT_DIR/tls.sh"
# The WebSocket part's functions (ws_part, ws_report, ws_summary).
# shellcheck source=tests/bench/ws.sh
source "$SCRIPT_DIR/ws.sh"
# The load-balancing part's functions (lb_part, lb_report, lb_summary).
# shellcheck source=tests/bench/lb.sh
source "$SCRIPT_DIR/lb.sh"

# ------------------------------------------------------------- main ------
# Other load on the cores makes every number noisy: say so up front.
cpu_snapshot idle_before
sleep 1
cpu_snapshot idle_after
read -r _ _ BG0 BG1 < <(cpu_delta "$idle_before" "$idle_after")
if ((BG0 > 10 || BG1 > 10)); then
  say "warning: machine not idle before the run (core$LOAD_CPU ${BG0}%, core$PROXY_CPU ${BG1}% busy): results will be noisy"
fi

# The plain and HTTPS parts' upstream (the WebSocket part has its own).
if ((PLAIN || TLS)) || [[ -n $BASELINE ]]; then
  head -c "$UPLOAD_BYTES" /dev/zero | tr '\0' 'x' >"$TMP/upload.bin"

  start_nginx upstream "$LOAD_CPU" write_upstream_conf || die "could not start the upstream nginx"
  UP_PID=$STARTED_PID UP_PORT=$STARTED_PORT
  UPLOAD_LOG=$TMP/upstream/upload.log
  mkdir -p "$TMP/upstream/www"
  head -c "$SMALL_BYTES" /dev/zero | tr '\0' 's' >"$TMP/upstream/www/small"
  head -c "$LARGE_BYTES" /dev/urandom >"$TMP/upstream/www/1m"
  : >"$UPLOAD_LOG"
  say "upstream nginx on 127.0.0.1:$UP_PORT (pid $UP_PID, core $LOAD_CPU)"
  check_upstream_reads_body "$UP_PORT" || die "upstream /upload does not read the whole body before answering"
  say "upstream /upload verified: no answer to a half-sent body, 200 after all $UPLOAD_BYTES bytes"

  printf "export default { routes: [{ host: '*', upstream: 'http://127.0.0.1:%s' }] }\n" "$UP_PORT" >"$ROUTES"
fi

# ------------------------------------------ A/B mode (BENCH_BASELINE) -----
# Two builds of switchyard on one runtime, both up and warm, pinned to the same
# core; small-GET rounds alternate between them (the order flips every round,
# so neither always runs just after the other's GC or right after warm-up).
declare -A AB # AB[runtime,side,rps|us] = space-separated values per round; AB[runtime,status]
AB_ROUNDS=${BENCH_PAIR_ROUNDS:-5}
AB_PIDS=() # the builds of the runtime being measured
CLK_TCK=$(getconf CLK_TCK)

# ab_start RUNTIME SIDE DIR: starts DIR's build; sets AB_PID and AB_PORT.
ab_start() {
  local rt=$1 side=$2 dir=$3
  switchyard_cmd "$rt" "$dir"
  if ((${#CMD[@]} == 0)); then
    say "$rt $side: artifact missing ($ART) - run 'make build' in $dir first"
    AB[$rt,status]="$side artifact missing"; return 1
  fi
  start_switchyard "$rt-$side" "$dir" "${CMD[@]}" || { AB[$rt,status]="$side failed to start"; return 1; }
  AB_PIDS+=("$STARTED_PID")
  check_target "$rt-$side" "http://127.0.0.1:$STARTED_PORT" || { AB[$rt,status]="$side failed its sanity check"; return 1; }
  AB_PID=$STARTED_PID AB_PORT=$STARTED_PORT
  say "$rt $side ($dir) on 127.0.0.1:$AB_PORT (pid $AB_PID, core $PROXY_CPU)"
}

# ab_runtime RUNTIME: warm both builds, then AB_ROUNDS alternating rounds; per
# round, req/s and µs of proxy CPU (utime+stime) per request wrk completed.
ab_runtime() {
  local rt=$1 warm=${WARMUP:-20} r side peer peer0 idle loadbound=0 noisy=0 retries=$AB_ROUNDS
  local -A pid port
  AB[$rt,status]=ok
  ab_start "$rt" baseline "$BASELINE" || return 1
  pid[baseline]=$AB_PID port[baseline]=$AB_PORT
  ab_start "$rt" current "$ROOT" || return 1
  pid[current]=$AB_PID port[current]=$AB_PORT
  for side in baseline current; do
    say "$rt $side: warm-up ${warm}s"
    CUR_PROXY_PID=${pid[$side]}
    run_wrk "ab-$rt-$side-warm" "http://127.0.0.1:${port[$side]}/small" 0 "$warm" || { AB[$rt,status]="warm-up failed"; return 1; }
  done
  # A round is a pair (one measurement per build). Other processes on either core (a shared
  # machine) starve wrk or the proxy and change the batching, so CPU per request moves with
  # them: a round in which either side saw that is measured again, both sides, so neither
  # build gets more warm-up or more quiet than the other.
  local -A got
  for ((r = 1; r <= AB_ROUNDS; r++)); do
    local order=(baseline current) worst=0 ok=1
    ((r % 2)) || order=(current baseline)
    for side in "${order[@]}"; do
      CUR_PROXY_PID=${pid[$side]}
      [[ $side == baseline ]] && peer=${pid[current]} || peer=${pid[baseline]}
      peer0=$(proc_ticks "$peer")
      run_wrk "ab-$rt-$side-$r" "http://127.0.0.1:${port[$side]}/small" 0 "$DURATION" || { ok=0; break; }
      ((W_errors == 0)) || { say "$rt $side round $r: $W_errors errors, round ignored"; ok=0; break; }
      ((W_requests > 0)) || { say "$rt $side round $r: no requests, round ignored"; ok=0; break; }
      ((W_worst <= worst)) || worst=$W_worst
      got[$side,rps]=$(awk -v q="$W_requests" -v d="$W_duration_us" 'BEGIN { print q * 1e6 / d }')
      got[$side,us]=$(awk -v t="$W_proxy_ticks" -v q="$W_requests" -v hz="$CLK_TCK" 'BEGIN { print t * 1e6 / hz / q }')
      got[$side,loadbound]=$((W_cpu1 < 90))
      # The idle build shares the proxy core: its CPU (timers, GC) is shown, so a skew would be seen.
      idle=$(awk -v a="$(proc_ticks "$peer")" -v b="$peer0" -v d="$W_duration_us" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (a - b) / hz * 1e8 / d }')
      say "$rt round $r: $side $(fmt "${got[$side,rps]}") req/s, $(fmt "${got[$side,us]}" 1) µs CPU/request ($W_cpu; idle build ${idle}%)"
    done
    ((ok)) || continue
    if ((worst > NOISE_LIMIT && retries > 0)); then
      retries=$((retries - 1)) r=$((r - 1))
      say "$rt: round noisy (${worst}% of a core used by others), measured again ($retries re-runs left)"
      continue
    fi
    ((worst <= NOISE_LIMIT)) || noisy=$((noisy + 1))
    for side in baseline current; do
      AB[$rt,$side,rps]+="${got[$side,rps]} " AB[$rt,$side,us]+="${got[$side,us]} "
      loadbound=$((loadbound + got[$side,loadbound]))
    done
  done
  CUR_PROXY_PID=""
  ((loadbound == 0)) || AB[$rt,status]+=", $loadbound measurement(s) with the proxy core under 90% busy (load-bound)"
  ((noisy == 0)) || AB[$rt,status]+=", $noisy of $AB_ROUNDS rounds noisy (over $NOISE_LIMIT% of a core used by others)"
  [[ -n ${AB[$rt,baseline,us]:-} && -n ${AB[$rt,current,us]:-} ]] || { AB[$rt,status]="no clean rounds"; return 1; }
}

ab_ratio() { # ab_ratio RUNTIME KEY -> median(current) / median(baseline), 2 decimals, or n/a
  local c=${AB[$1,current,$2]:-} b=${AB[$1,baseline,$2]:-}
  [[ -n $c && -n $b ]] || { printf 'n/a'; return 0; }
  # shellcheck disable=SC2086 # the values are space-separated on purpose
  awk -v a="$(median $c)" -v b="$(median $b)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

ab_cell() { # ab_cell RUNTIME SIDE KEY DECIMALS -> median, or -
  local v=${AB[$1,$2,$3]:-}
  # shellcheck disable=SC2086
  if [[ -n $v ]]; then fmt "$(median $v)" "$4"; else printf -- '-'; fi
}

run_ab() {
  local rt pid
  local rts=()
  for rt in bun deno node; do
    if [[ " $TARGETS " == *" $rt "* ]]; then rts+=("$rt"); fi
  done
  ((${#rts[@]})) || die "BENCH_TARGETS selects none of bun, deno, node"
  for rt in "${rts[@]}"; do
    say "---- A/B $rt: baseline $BASELINE vs current $ROOT, $AB_ROUNDS alternating rounds of ${DURATION}s"
    ab_runtime "$rt" || FAILED=1
    for pid in "${AB_PIDS[@]}"; do stop_pid "$pid"; forget_pid "$pid"; done
    AB_PIDS=()
    rm -f "$TMP/$rt-baseline.stdout" "$TMP/$rt-current.stdout" # access logs can be large
  done

  echo
  echo "switchyard A/B small GET: wrk -t1 -c$CONNS, $AB_ROUNDS alternating rounds of ${DURATION}s after ${WARMUP:-20}s of warm-up each;"
  echo "both builds on core $PROXY_CPU, wrk + upstream nginx on core $LOAD_CPU; medians over rounds; CPU = utime+stime of the proxy / requests"
  echo "baseline: $BASELINE"
  echo "current:  $ROOT"
  echo "(background load before the run: core$LOAD_CPU ${BG0}%, core$PROXY_CPU ${BG1}%)"
  echo
  echo "| runtime | baseline req/s | current req/s | req/s current/baseline | baseline µs CPU/req | current µs CPU/req | CPU current/baseline | status |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  for rt in "${rts[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rt" \
      "$(ab_cell "$rt" baseline rps 0)" "$(ab_cell "$rt" current rps 0)" "$(ab_ratio "$rt" rps)" \
      "$(ab_cell "$rt" baseline us 1)" "$(ab_cell "$rt" current us 1)" "$(ab_ratio "$rt" us)" "${AB[$rt,status]}"
  done
  echo
  local side v line
  for rt in "${rts[@]}"; do
    for side in baseline current; do
      line=""
      for v in ${AB[$rt,$side,us]:-}; do line+="$(fmt "$v" 1) "; done
      echo "$rt $side µs CPU/request per round: ${line:--}"
    done
  done
  echo

  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
  [[ -z ${BENCH_KEEP_TMP:-} ]] || say "kept temp dir $TMP"
  # The last lines, one per runtime: CPU per request, current over baseline
  # (below 1.00 is better; within a few % is run-to-run noise here).
  for rt in "${rts[@]}"; do echo "bench ab $rt cpu-per-request current/baseline: $(ab_ratio "$rt" us)"; done
  exit "$FAILED"
}

[[ -z $BASELINE ]] || run_ab

ROWS=(direct nginx bun deno node)
declare -A LABEL=([direct]=direct [nginx]=nginx [bun]=switchyard-bun [deno]=switchyard-deno [node]=switchyard-node)
declare -A STATUS

selected() { [[ " $TARGETS " == *" $1 "* ]]; }

for t in "${ROWS[@]}"; do
  ((PLAIN)) && selected "$t" || { STATUS[$t]="not selected"; continue; }
  say "---- ${LABEL[$t]}"
  pid=""
  case $t in
    direct)
      port=$UP_PORT ;;
    nginx)
      if start_nginx reference "$PROXY_CPU" write_reference_conf "$UP_PORT"; then
        pid=$STARTED_PID port=$STARTED_PORT
      else
        STATUS[$t]="failed to start"; FAILED=1; continue
      fi ;;
    bun | deno | node)
      switchyard_cmd "$t" "$ROOT"
      if ((${#CMD[@]} == 0)); then
        say "${LABEL[$t]}: artifact missing ($ART) - run 'make build' first; row skipped"
        STATUS[$t]="artifact missing"; FAILED=1; continue
      fi
      if start_switchyard "$t" "$ROOT" "${CMD[@]}"; then
        pid=$STARTED_PID port=$STARTED_PORT
      else
        STATUS[$t]="failed to start"; FAILED=1; continue
      fi ;;
  esac
  [[ -n $pid ]] && say "${LABEL[$t]} on 127.0.0.1:$port (pid $pid, core $PROXY_CPU)"
  CUR_PROXY_PID=$pid
  if bench_target "$t" "http://127.0.0.1:$port"; then
    STATUS[$t]=ok
  else
    if [[ -n ${RES[$t,rps]:-} || -n ${RES[$t,large]:-} || -n ${RES[$t,upload]:-} ]]; then
      STATUS[$t]="errors: ${RES[$t,err]:-incomplete}"
    else
      STATUS[$t]="failed"
    fi
    FAILED=1
  fi
  if ((${RES[$t,noise]:-0} > NOISE_LIMIT)); then
    STATUS[$t]+=", noisy (up to ${RES[$t,noise]}% of a core used by other processes)"
  fi
  CUR_PROXY_PID=""
  if [[ -n $pid ]]; then
    stop_pid "$pid"; forget_pid "$pid"
    rm -f "$TMP/$t.stdout" "$TMP/reference/access.log" # access logs can be large
  fi
done

# ----------------------------------------------------- paired small GET --
# One 8 s measurement per target is at the mercy of whatever else the shared
# machine does during those 8 s (nginx's small GET moved 27k-39k req/s between
# runs while switchyard-bun stayed at 13.8k). So the final ratio comes from a
# paired phase: nginx and switchyard-bun both up (the idle one uses no CPU),
# small GETs alternating between them for PAIR_ROUNDS rounds, medians of each.
PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-3}
declare -a PAIR_N=() PAIR_B=()
PAIR_LOADBOUND=0 # nginx rounds where nginx's core was under 90% busy (the load side was the limit)
if ((PAIR_ROUNDS > 0)) && [[ ${STATUS[nginx]:-} == ok* && ${STATUS[bun]:-} == ok* ]]; then
  say "---- paired small GET: nginx and switchyard-bun alternating, $PAIR_ROUNDS rounds of ${DURATION}s"
  if start_nginx reference "$PROXY_CPU" write_reference_conf "$UP_PORT"; then
    npid=$STARTED_PID nport=$STARTED_PORT
    switchyard_cmd bun "$ROOT"
    if start_switchyard bun "$ROOT" "${CMD[@]}"; then
      bpid=$STARTED_PID bport=$STARTED_PORT
      run_wrk pair-bun-warm "http://127.0.0.1:$bport/small" 0 20 &&
        run_wrk pair-nginx-warm "http://127.0.0.1:$nport/small" 0 3 || PAIR_ROUNDS=0
      for ((r = 1; r <= PAIR_ROUNDS; r++)); do
        for side in nginx bun; do
          if [[ $side == nginx ]]; then
            url="http://127.0.0.1:$nport/small" CUR_PROXY_PID=$npid
          else
            url="http://127.0.0.1:$bport/small" CUR_PROXY_PID=$bpid
          fi
          run_wrk "pair-$side-$r" "$url" 0 "$DURATION" || continue
          rps=$(awk -v q="$W_requests" -v d="$W_duration_us" 'BEGIN { print q * 1e6 / d }')
          ((W_errors == 0)) || { say "pair $side round $r: $W_errors errors, round ignored"; continue; }
          if [[ $side == nginx ]]; then
            PAIR_N+=("$rps")
            ((W_cpu1 >= 90)) || PAIR_LOADBOUND=$((PAIR_LOADBOUND + 1))
          else
            PAIR_B+=("$rps")
          fi
          say "pair round $r: $side $(fmt "$rps") req/s ($W_cpu)"
        done
      done
      CUR_PROXY_PID=""
      stop_pid "$bpid"; forget_pid "$bpid"
    fi
    stop_pid "$npid"; forget_pid "$npid"
  fi
fi

# ---------------------------------------------------------------- HTTPS --
# After the plain part (and its paired phase), in the same run: tests/bench/tls.sh.
((!TLS)) || tls_part || true

# ------------------------------------------------------------ WebSocket --
# After the HTTPS part, in the same run: tests/bench/ws.sh.
((!WS)) || ws_part || true

# ------------------------------------------------------- load balancing --
# After the WebSocket part, in the same run: tests/bench/lb.sh.
((!LB)) || lb_part || true

# ------------------------------------------------------------ report ------
cell() { # cell TARGET KEY DECIMALS
  local v=${RES[$1,$2]:-}
  if [[ -n $v ]]; then fmt "$v" "$3"; else printf -- '-'; fi
}
ratio() { # ratio TARGET KEY -> value / nginx value
  local v=${RES[$1,$2]:-} n=${RES[nginx,$2]:-}
  if [[ -n $v && -n $n ]]; then awk -v a="$v" -v b="$n" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
  else printf -- '-'; fi
}

if ((PLAIN)); then
  echo
  echo "switchyard bench: wrk -t1 -c$CONNS, ${DURATION}s per test after warm-up; proxy on core $PROXY_CPU, wrk + upstream nginx on core $LOAD_CPU; MB = 10^6 bytes"
  echo "(background load before the run: core$LOAD_CPU ${BG0}%, core$PROXY_CPU ${BG1}%)"
  echo
  echo "| target | small GET req/s | p50 ms | p99 ms | 1 MiB GET MB/s | 10 MiB upload MB/s | status |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for t in "${ROWS[@]}"; do
    [[ ${STATUS[$t]} == "not selected" ]] && continue
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(cell "$t" rps 0)" "$(cell "$t" p50 2)" "$(cell "$t" p99 2)" \
      "$(cell "$t" large 0)" "$(cell "$t" upload 0)" "${STATUS[$t]}"
  done
  echo
  echo "Relative to nginx (throughput: higher is better; latency: lower is better)"
  echo
  echo "| target | req/s | p50 | p99 | 1 MiB GET | 10 MiB upload |"
  echo "|---|---:|---:|---:|---:|---:|"
  for t in "${ROWS[@]}"; do
    [[ ${STATUS[$t]} == "not selected" ]] && continue
    printf '| %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(ratio "$t" rps)" "$(ratio "$t" p50)" "$(ratio "$t" p99)" \
      "$(ratio "$t" large)" "$(ratio "$t" upload)"
  done
  echo

  if ((${#PAIR_N[@]} > 0 && ${#PAIR_B[@]} > 0)); then
    pn="" pb=""
    for v in "${PAIR_N[@]}"; do pn+="$(fmt "$v") "; done
    for v in "${PAIR_B[@]}"; do pb+="$(fmt "$v") "; done
    echo "Paired small GET (alternating rounds, req/s): nginx ${pn}-> median $(fmt "$(median "${PAIR_N[@]}")");" \
      "switchyard-bun ${pb}-> median $(fmt "$(median "${PAIR_B[@]}")"); the last line's ratio is of these medians."
    if ((PAIR_LOADBOUND > 0)); then
      echo "Warning: in $PAIR_LOADBOUND of ${#PAIR_N[@]} nginx rounds nginx's core was under 90% busy: the load side" \
        "(wrk + upstream on core $LOAD_CPU) was the limit, so nginx's figure is a lower bound and the ratio overstates switchyard."
    fi
    echo
  fi
fi
((!TLS)) || tls_report
((!WS)) || ws_report
((!LB)) || lb_report

# Stop everything before the final line so nothing can print after it.
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
PIDS=()
[[ -z ${BENCH_KEEP_TMP:-} ]] || say "kept temp dir $TMP"

# The HTTPS, WebSocket and load-balancing summary lines first, so that the very last line stays the plain one.
((!TLS)) || tls_summary
((!WS)) || ws_summary
((!LB)) || lb_summary
if ((${#PAIR_N[@]} > 0 && ${#PAIR_B[@]} > 0)); then
  R=$(awk -v a="$(median "${PAIR_B[@]}")" -v b="$(median "${PAIR_N[@]}")" 'BEGIN { printf "%.2f", a / b }')
else
  R=$(ratio bun rps) # no paired phase: the single measurements of the table
fi
[[ $R == "-" ]] && R="n/a" # also with BENCH_TLS_ONLY=1, BENCH_WS_ONLY=1 or BENCH_LB_ONLY=1 (no plain part)
echo "bench small-get switchyard/nginx: $R"
exit "$FAILED"
