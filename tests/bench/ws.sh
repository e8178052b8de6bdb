# The WebSocket part of tests/bench/run.sh (sourced by it after its helpers; not
# run on its own). What it measures, the knobs and the output are described in
# run.sh's header; this file holds the how.
#
# One echo upstream (tests/bench/ws-echo.ts, Bun.serve) on the load core; every
# target is up at once, the proxies pinned to the proxy core (an idle one takes
# ~1% of it). Each target is checked (tests/bench/ws-load.ts --check: text and
# binary echoes around the frame-length boundaries and of 200000 bytes) and
# warmed, then every round measures every target with the load generator
# (tests/bench/ws-load.ts, Bun's WebSocket client, on the load core), the target
# order rotating each round. The results are the medians over rounds.
# shellcheck shell=bash
# shellcheck disable=SC2154 # W_* are set with printf -v

WS_DURATION=${BENCH_WS_DURATION:-4}
WS_ROUNDS=${BENCH_WS_ROUNDS:-3}
WS_WARMUP=${BENCH_WS_WARMUP:-12}
WS_CONNS=${BENCH_WS_CONNECTIONS:-50}
WS_BYTES=${BENCH_WS_BYTES:-32}
WS_DIR=$TMP/ws
WS_ECHO_PID="" WS_ECHO_PORT=""
WS_BUN=""
# WR[target,KEY] = space-separated values, one per round, KEY one of rps (round
# trips/s), us (proxy CPU µs per round trip), busy (proxy core % busy), cus
# (load generator CPU µs per round trip), eus (echo upstream CPU µs per round
# trip), noise (% of a core used by others); WR[target,status|err|pid|url|dead|mismatches].
declare -A WR
WS_ROWS=() # targets of the WebSocket part, in table order
WS_UP=()   # those that started and passed their check

# ------------------------------------------------------------ nginx -------
# The reference: nginx's documented WebSocket proxying (HTTP/1.1 to the
# upstream, Upgrade passed on, Connection: upgrade), 1 worker, an access log to
# a file as in the plain reference (switchyard writes one line per tunnel).
write_ws_reference_conf() { # $1 prefix, $2 port, $3 echo upstream port
  {
    nginx_common "$1"
    cat <<EOF
http {
  access_log $1/access.log;
  tcp_nodelay on;
$(nginx_temp_paths "$1")
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:$3;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }
}
EOF
  } >"$1/nginx.conf"
}

# ------------------------------------------------------- upstream ---------
# ws_start_echo: tests/bench/ws-echo.ts on the load core; sets WS_ECHO_PID/PORT.
ws_start_echo() {
  local out=$WS_DIR/echo.stdout i
  taskset -c "$LOAD_CPU" "$WS_BUN" "$SCRIPT_DIR/ws-echo.ts" </dev/null >"$out" 2>"$WS_DIR/echo.stderr" &
  WS_ECHO_PID=$!
  PIDS+=("$WS_ECHO_PID")
  for ((i = 0; i < 100; i++)); do
    WS_ECHO_PORT=$(grep -o '"port" *: *[0-9]*' "$out" 2>/dev/null | head -n1 | grep -o '[0-9]*$' || true)
    [[ -n $WS_ECHO_PORT ]] && return 0
    alive "$WS_ECHO_PID" || break
    sleep 0.1
  done
  say "the WebSocket echo upstream did not start:"
  tail -n 5 "$out" "$WS_DIR/echo.stderr" 2>/dev/null | sed 's/^/    /' >&2 || true
  stop_pid "$WS_ECHO_PID"; forget_pid "$WS_ECHO_PID"
  WS_ECHO_PID=""
  return 1
}

# ------------------------------------------------------------ measuring ---
# run_wsload TAG URL SECONDS [CONNECTIONS] -> W_requests (round trips in the
# window), W_duration_us, W_mismatches, W_errors, W_connections, and as run_wrk:
# W_cpu*, W_other*, W_worst, W_proxy_ticks, W_client_ticks, plus W_up_ticks (the
# echo upstream's CPU).
run_wsload() {
  local tag=$1 url=$2 secs=$3 conns=${4:-$WS_CONNS} raw=$WS_DIR/load-$1.txt before after pid rc=0 line kv k v
  W_mismatches=0 W_errors=0
  cpu_snapshot before
  # In the background + wait, so that a signal runs the cleanup trap at once.
  taskset -c "$LOAD_CPU" "$WS_BUN" "$SCRIPT_DIR/ws-load.ts" "$url" "$conns" "$secs" "$WS_BYTES" </dev/null >"$raw" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  cpu_snapshot after
  line=$(grep -m1 '^WSRESULT ' "$raw") || { say "no result from ws-load ($tag, exit $rc):"; tail -n 5 "$raw" | sed 's/^/    /' >&2; return 1; }
  for kv in ${line#WSRESULT }; do
    k=${kv%%=*} v=${kv#*=}
    printf -v "W_$k" '%s' "$v"
  done
  W_requests=$W_roundtrips
  if ((rc != 0 || W_errors > 0)); then
    say "ws-load ($tag): exit $rc, $W_errors errors:"; grep -v '^WSRESULT ' "$raw" | tail -n 5 | sed 's/^/    /' >&2 || true
  fi
  ((rc == 0)) || return 1
  read -r W_cpu0 W_cpu1 W_other0 W_other1 < <(cpu_delta "$before" "$after")
  W_cpu="core$LOAD_CPU ${W_cpu0}% busy (${W_other0}% other), core$PROXY_CPU ${W_cpu1}% busy (${W_other1}% other)"
  W_worst=$((W_other0 > W_other1 ? W_other0 : W_other1))
  W_up_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[7] - x[7] }')
  W_proxy_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[8] - x[8] }')
  W_client_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[9] - x[9] }')
}

# ws_run TARGET TAG SECONDS: one load run against TARGET (its proxy's CPU counted).
ws_run() {
  local t=$1 rc=0
  CUR_PROXY_PID=${WR[$t,pid]:-}
  run_wsload "$2" "${WR[$t,url]}" "$3" || rc=1
  CUR_PROXY_PID=""
  return "$rc"
}

# ws_measure TARGET ROUND: a measured round, its figures appended to WR.
ws_measure() {
  local t=$1 r=$2 rps us="" cus eus flag=""
  if ! ws_run "$t" "ws-$t-$r" "$WS_DURATION"; then
    WR[$t,err]+="round $r failed "
    [[ -z ${WR[$t,pid]:-} ]] || alive "${WR[$t,pid]}" || { WR[$t,dead]=1; say "${LABEL[$t]}: the process is gone"; }
    return 1
  fi
  ((W_requests > 0)) || { WR[$t,err]+="round $r: no round trips "; return 1; }
  ((W_mismatches == 0)) || { WR[$t,mismatches]=$((${WR[$t,mismatches]:-0} + W_mismatches)); flag+=" MISMATCHES=$W_mismatches"; }
  ((W_errors == 0)) || { WR[$t,err]+="round $r: $W_errors errors "; flag+=" ERRORS=$W_errors"; }
  rps=$(awk -v q="$W_requests" -v d="$W_duration_us" 'BEGIN { print q * 1e6 / d }')
  cus=$(awk -v t="$W_client_ticks" -v q="$W_requests" 'BEGIN { print t * 1e4 / q }')
  eus=$(awk -v t="$W_up_ticks" -v q="$W_requests" -v hz="$CLK_TCK" 'BEGIN { print t * 1e6 / hz / q }')
  WR[$t,rps]+="$rps " WR[$t,cus]+="$cus " WR[$t,eus]+="$eus " WR[$t,noise]+="$W_worst "
  if [[ -n ${WR[$t,pid]:-} ]]; then
    us=$(awk -v t="$W_proxy_ticks" -v q="$W_requests" -v hz="$CLK_TCK" 'BEGIN { print t * 1e6 / hz / q }')
    WR[$t,us]+="$us " WR[$t,busy]+="$W_cpu1 "
    us=", $(fmt "$us" 1) µs proxy CPU/round trip"
  fi
  say "round $r ws-echo ${LABEL[$t]}: $(fmt "$rps") round trips/s$us, client $(fmt "$cus" 1) + echo $(fmt "$eus" 1) µs/round trip ($W_cpu)$flag"
}

# ------------------------------------------------------------ the part ----
ws_part() {
  local t r i n order pid port warm got t0=$SECONDS saved_up=$UP_PID
  for t in direct nginx bun deno node; do
    selected "$t" && WS_ROWS+=("$t")
  done
  ((${#WS_ROWS[@]})) || { say "WebSocket part: BENCH_TARGETS selects none of direct, nginx, bun, deno, node"; return 0; }
  say "---- WebSocket: ${WS_ROWS[*]}; $WS_CONNS connections, ${WS_BYTES}-byte text messages, one in flight per connection;" \
    "$WS_ROUNDS rounds of ${WS_DURATION}s"
  mkdir -p "$WS_DIR"
  WS_BUN=$ROOT/node_modules/.bin/bun
  [[ -x $WS_BUN ]] || WS_BUN=$(command -v bun 2>/dev/null || true)
  if [[ -z $WS_BUN ]] || ! ws_start_echo; then
    [[ -n $WS_BUN ]] || say "WebSocket part: no bun (node_modules/.bin/bun) for the echo upstream and the load generator"
    for t in "${WS_ROWS[@]}"; do WR[$t,status]="not measured: no echo upstream"; done
    FAILED=1; return 1
  fi
  UP_PID=$WS_ECHO_PID # cpu_snapshot's "upstream": the echo server's CPU is the load side's, not "other"
  say "WebSocket echo upstream (Bun.serve) on 127.0.0.1:$WS_ECHO_PORT (pid $WS_ECHO_PID, core $LOAD_CPU)"
  printf "export default { routes: [{ host: '*', upstream: 'ws://127.0.0.1:%s' }] }\n" "$WS_ECHO_PORT" >"$WS_DIR/routes.ts"

  for t in "${WS_ROWS[@]}"; do
    pid="" port=$WS_ECHO_PORT
    case $t in
      nginx)
        start_nginx ws-reference "$PROXY_CPU" write_ws_reference_conf "$WS_ECHO_PORT" ||
          { WR[$t,status]="not measured: failed to start"; FAILED=1; continue; }
        pid=$STARTED_PID port=$STARTED_PORT ;;
      bun | deno | node)
        switchyard_cmd "$t" "$ROOT"
        if ((${#CMD[@]} == 0)); then
          say "${LABEL[$t]} (WebSocket): artifact missing ($ART); not measured"
          WR[$t,status]="not measured: artifact missing"; FAILED=1; continue
        fi
        ROUTES=$WS_DIR/routes.ts start_switchyard "ws-$t" "$ROOT" "${CMD[@]}" ||
          { WR[$t,status]="not measured: failed to start"; FAILED=1; continue; }
        pid=$STARTED_PID port=$STARTED_PORT ;;
    esac
    WR[$t,pid]=$pid WR[$t,url]="ws://127.0.0.1:$port/echo"
    got=$(taskset -c "$LOAD_CPU" timeout -k 2 30 "$WS_BUN" "$SCRIPT_DIR/ws-load.ts" --check "${WR[$t,url]}" 2>&1 </dev/null) || true
    if [[ $got != "WSCHECK ok"* ]]; then
      say "${LABEL[$t]}: WebSocket check failed: ${got//$'\n'/ / }"
      WR[$t,status]="not measured: failed its WebSocket check"; FAILED=1
      [[ -z $pid ]] || { stop_pid "$pid"; forget_pid "$pid"; }
      continue
    fi
    WS_UP+=("$t")
    if [[ -n $pid ]]; then
      say "${LABEL[$t]} WebSocket on 127.0.0.1:$port (pid $pid, core $PROXY_CPU; ${got#WSCHECK } echoed)"
    else
      say "direct: ${got#WSCHECK } echoed by the upstream"
    fi
  done
  if ((${#WS_UP[@]} == 0)); then UP_PID=$saved_up; return 1; fi

  for t in "${WS_UP[@]}"; do
    warm=$WS_WARMUP
    [[ $t == bun || $t == deno || $t == node ]] || warm=2
    say "${LABEL[$t]}: WebSocket warm-up ${warm}s"
    ws_run "$t" "ws-$t-warm" "$warm" || WR[$t,err]+="warm-up failed "
    ((W_mismatches == 0)) || WR[$t,mismatches]=$((${WR[$t,mismatches]:-0} + W_mismatches))
  done

  for ((r = 1; r <= WS_ROUNDS; r++)); do
    rotate_order "$r" "${WS_UP[@]}"
    for t in "${order[@]}"; do
      [[ -z ${WR[$t,dead]:-} ]] || continue
      ws_measure "$t" "$r" || true
    done
  done

  for t in "${WS_UP[@]}"; do
    [[ -z ${WR[$t,pid]:-} ]] || { stop_pid "${WR[$t,pid]}"; forget_pid "${WR[$t,pid]}"; }
    if [[ -n ${WR[$t,dead]:-} ]]; then
      WR[$t,status]="died during the run"
    elif ((${WR[$t,mismatches]:-0} > 0)); then
      WR[$t,status]="FAILED: ${WR[$t,mismatches]} echoes differed from what was sent"
      [[ -z ${WR[$t,err]:-} ]] || WR[$t,status]+="; ${WR[$t,err]% }"
    elif [[ -z ${WR[$t,err]:-} ]]; then
      WR[$t,status]=ok
    else
      WR[$t,status]="errors: ${WR[$t,err]% }"
    fi
    [[ -n ${WR[$t,rps]:-} ]] || WR[$t,status]+=", no figure"
    [[ ${WR[$t,status]} == ok ]] || FAILED=1
  done
  stop_pid "$WS_ECHO_PID"; forget_pid "$WS_ECHO_PID"
  UP_PID=$saved_up
  rm -f "$TMP/ws-reference/access.log" "$TMP"/ws-{bun,deno,node}.stdout # access logs
  say "WebSocket part took $((SECONDS - t0)) s"
}

# ------------------------------------------------------------ report ------
ws_ok() { [[ ${WR[$1,status]:-} == ok* || ${WR[$1,status]:-} == errors* ]]; } # measured, echoes all correct
ws_med() { # ws_med TARGET KEY -> median over rounds, or empty
  local v=${WR[$1,$2]:-}
  # shellcheck disable=SC2086 # space-separated on purpose
  [[ -z $v ]] || median $v
}
ws_cell() { # ws_cell TARGET KEY DECIMALS
  local v
  v=$(ws_med "$1" "$2")
  if [[ -n $v ]]; then fmt "$v" "$3"; else printf -- '-'; fi
}
ws_ratio() { # ws_ratio TARGET KEY -> median / nginx median (2 decimals), or n/a (also for a failed target)
  local a b
  ws_ok "$1" && ws_ok nginx || { printf 'n/a'; return 0; }
  a=$(ws_med "$1" "$2") b=$(ws_med nginx "$2")
  if [[ -n $a && -n $b ]]; then awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
  else printf 'n/a'; fi
}

ws_report() {
  local t v line noisy bound=0
  ((${#WS_ROWS[@]})) || return 0
  echo "switchyard WebSocket bench: echo round trips, $WS_CONNS connections, ${WS_BYTES}-byte text messages, each connection sending"
  echo "its next message when the echo of the previous one arrives (Bun WebSocket client -> proxy -> Bun.serve echo; every echo"
  echo "compared with what was sent). $WS_ROUNDS rounds of ${WS_DURATION}s after a warm-up, targets alternating; medians over rounds;"
  echo "µs CPU/round trip = utime+stime of the proxy process (/proc/PID/stat, workers and threads) / round trips."
  echo "Proxy on core $PROXY_CPU; load generator and echo upstream on core $LOAD_CPU."
  echo
  echo "| target | round trips/s | µs CPU/round trip | proxy core % | client µs/round trip | echo µs/round trip | status |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for t in "${WS_ROWS[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(ws_cell "$t" rps 0)" "$(ws_cell "$t" us 1)" "$(ws_cell "$t" busy 0)" "$(ws_cell "$t" cus 1)" "$(ws_cell "$t" eus 1)" \
      "${WR[$t,status]:-?}"
  done
  echo
  echo "Relative to nginx (round trips/s: higher is better; CPU per round trip: lower is better; n/a for a failed target)"
  echo
  echo "| target | round trips/s | CPU/round trip |"
  echo "|---|---:|---:|"
  for t in "${WS_ROWS[@]}"; do
    [[ $t != nginx ]] || continue
    if [[ $t == direct ]]; then
      printf '| %s | %s | - |\n' "${LABEL[$t]}" "$(ws_ratio "$t" rps)"
    else
      printf '| %s | %s | %s |\n' "${LABEL[$t]}" "$(ws_ratio "$t" rps)" "$(ws_ratio "$t" us)"
    fi
  done
  echo
  for t in "${WS_ROWS[@]}"; do
    [[ -n ${WR[$t,rps]:-} ]] || continue
    line=""
    for v in ${WR[$t,rps]}; do line+="$(fmt "$v") "; done
    if [[ -n ${WR[$t,us]:-} ]]; then
      line+="round trips/s; µs CPU/round trip "
      for v in ${WR[$t,us]}; do line+="$(fmt "$v" 1) "; done
    else
      line+="round trips/s "
    fi
    # shellcheck disable=SC2086
    noisy=$(printf '%s\n' ${WR[$t,noise]} | sort -g | tail -n1)
    ((noisy <= NOISE_LIMIT)) || line+="(noisy: up to ${noisy}% of a core used by other processes)"
    echo "${LABEL[$t]} ws-echo per round: ${line% }"
  done
  echo
  for t in "${WS_ROWS[@]}"; do
    v=$(ws_med "$t" busy)
    [[ -n $v ]] || continue
    v=$(fmt "$v")
    ((v < 90)) || continue
    bound=1
    echo "Load-bound: ${LABEL[$t]} ws-echo: the proxy core was ${v}% busy; the load side needed $(ws_cell "$t" cus 1) (client) +" \
      "$(ws_cell "$t" eus 1) (echo) µs of core $LOAD_CPU per round trip vs the proxy's $(ws_cell "$t" us 1)."
  done
  if ((bound)); then
    echo "In those rows round trips/s is the load side's limit, not the proxy's: compare µs CPU/round trip. Through a proxy the"
    echo "client and the echo need 1.5-2x the CPU per round trip they need direct (each wake-up finds fewer messages), so the"
    echo "direct row is no ceiling for them; and a proxy that is not saturated batches less, so even its CPU per round trip reads high."
  fi
  echo
  return 0
}

# The summary lines (printed before run.sh's final small-get line): per runtime,
# round trips/s over nginx's, then CPU per round trip over nginx's.
ws_summary() {
  local t
  ((${#WS_ROWS[@]})) || return 0
  for t in bun deno node; do
    [[ " ${WS_ROWS[*]} " == *" $t "* ]] || continue
    echo "bench ws-echo ${LABEL[$t]}/nginx: $(ws_ratio "$t" rps)"
  done
  for t in bun deno node; do
    [[ " ${WS_ROWS[*]} " == *" $t "* ]] || continue
    echo "bench ws-echo cpu-per-roundtrip ${LABEL[$t]}/nginx: $(ws_ratio "$t" us)"
  done
  return 0
}
