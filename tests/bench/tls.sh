# The HTTPS part of tests/bench/run.sh (sourced by it after its helpers; not
# run on its own). What it measures, the knobs and the output are described in
# run.sh's header; this file holds the how.
#
# All targets are up at once, each pinned to the proxy core (an idle one takes
# ~1% of it); after the sanity checks and warm-ups, every round measures h1,
# h2 and handshakes on every target, the target order rotating each round, so
# a slow minute of the shared machine hits all of them instead of one. The
# results are the medians over rounds.
# shellcheck shell=bash
# shellcheck disable=SC2154 # W_* come from run_wrk/run_h2load (printf -v)

TLS_DURATION=${BENCH_TLS_DURATION:-4}
TLS_ROUNDS=${BENCH_TLS_ROUNDS:-3}
TLS_WARMUP=${BENCH_TLS_WARMUP:-10}
H2_STREAMS=${BENCH_H2_STREAMS:-10}
TLS_RESUME=${BENCH_TLS_RESUME:-0} # 1: the handshake test lets wrk resume its sessions (no shim)
TLS_HOST=bench.test
TLS_DIR=$TMP/tls
TLS_CERT=$TLS_DIR/bench.pem
TLS_KEY=$TLS_DIR/bench.key
TLS_CA=$TLS_DIR/ca.pem
TLS_TESTS=(h1 h2 hs)
declare -A TLS_TEST_NAME=([h1]=https-h1 [h2]=https-h2 [hs]=handshakes)
((!TLS_RESUME)) || TLS_TEST_NAME[hs]=handshakes-resumed
NO_RESUME_SO="" # the compiled tests/bench/no-resume.c
# TR[target,test,KEY] = space-separated values, one per clean round, KEY one of
#   rps (req/s), us (proxy CPU µs per request), busy (proxy core % busy),
#   cus (load generator CPU µs per request), noise (% of a core used by others);
# TR[target,status], TR[target,tls] (what the handshake negotiated), TR[target,err].
declare -A TR
TLS_ROWS=() # targets of the HTTPS part, in table order
TLS_UP=()   # those that started and passed their checks

# ------------------------------------------------------------ certificates
# A private CA and an EC P-256 leaf for bench.test (SAN DNS:bench.test and
# IP:127.0.0.1), made fresh in the temp dir for every run (never committed).
tls_make_certs() {
  local d=$TLS_DIR log=$TLS_DIR/openssl.log
  mkdir -p "$d" && chmod 700 "$d"
  cat >"$d/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = switchyard bench CA
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
  cat >"$d/leaf.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $TLS_HOST
EOF
  cat >"$d/leaf.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$TLS_HOST,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    set -e
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
      -config "$d/ca.cnf" -keyout "$d/ca.key" -out "$TLS_CA"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
      -config "$d/leaf.cnf" -keyout "$TLS_KEY" -out "$d/bench.csr"
    openssl x509 -req -in "$d/bench.csr" -CA "$TLS_CA" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days 2 -sha256 -extfile "$d/leaf.ext" -out "$TLS_CERT"
    openssl verify -CAfile "$TLS_CA" "$TLS_CERT"
  ) >"$log" 2>&1 || { say "certificate generation failed:"; sed 's/^/    /' "$log" >&2; return 1; }
  chmod 644 "$TLS_CERT" "$TLS_CA" # readable by nginx workers when not running as root
  chmod 600 "$TLS_KEY" "$d/ca.key"
  [[ $EUID != 0 ]] || chmod 644 "$TLS_KEY" # nginx's "user root" reads it either way
}

# Full handshakes from wrk: it would resume its session on every reconnect
# (see no-resume.c); the shim, preloaded into wrk only, stops that.
tls_build_shim() {
  local cc log=$TLS_DIR/no-resume.log
  cc=$(command -v cc || command -v gcc) || { say "no C compiler for tests/bench/no-resume.c"; return 1; }
  "$cc" -shared -fPIC -O2 -o "$TLS_DIR/no-resume.so" "$SCRIPT_DIR/no-resume.c" -ldl >"$log" 2>&1 ||
    { say "building tests/bench/no-resume.c failed:"; sed 's/^/    /' "$log" >&2; return 1; }
  NO_RESUME_SO=$TLS_DIR/no-resume.so
}

# ------------------------------------------------------------ nginx -------
# The reference: the plain reference's proxy settings, one `listen ... ssl
# http2` server (TLSv1.2 TLSv1.3, the same certificate, nginx's defaults
# otherwise: no session cache, tickets on). The access log adds the TLS
# protocol, whether the session was resumed and the request's number on its
# connection, which prove "one full handshake per request" in the handshake test.
write_tls_reference_conf() { # $1 prefix, $2 port, $3 upstream port
  local log="log_format tls '\$remote_addr - \$remote_user [\$time_local] \"\$request\" \$status \$body_bytes_sent '
                 '\"\$http_referer\" \"\$http_user_agent\" \$ssl_protocol \$ssl_session_reused \$connection_requests';
  access_log $1/access.log tls;"
  local certs="    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;"
  write_reference_conf "$1" "$2" "$3" " ssl http2" "$certs" "$log"
}

# ------------------------------------------------------- switchyard -------
# tls_pick_port: a free port below the kernel's ephemeral range, so that no
# outgoing connection (the handshake test goes through tens of thousands) can
# hold it when switchyard binds it; pick_port's range when that is too small.
tls_pick_port() {
  local low p i
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=0
  ((low > 12000)) || { pick_port; return; }
  for ((i = 0; i < 200; i++)); do
    p=$((10000 + RANDOM % (low - 10000)))
    port_open "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# tls_start_switchyard RUNTIME: a routes file with a plain and a TLS listener on
# free ports, then waits for the TLS listener's "listening" line (tls: true).
# Sets STARTED_PID and STARTED_PORT (the TLS port) or TR[RUNTIME,status].
tls_start_switchyard() {
  local rt=$1 name=tls-$1 routes=$TLS_DIR/routes-$1.ts plain tls out line port="" i try
  switchyard_cmd "$rt" "$ROOT"
  if ((${#CMD[@]} == 0)); then
    say "${LABEL[$rt]} (HTTPS): artifact missing ($ART); not measured"
    TR[$rt,status]="not measured: artifact missing"; return 1
  fi
  for ((try = 1; ; try++)); do
    plain=$(tls_pick_port) && tls=$(tls_pick_port) && [[ $plain != "$tls" ]] || { TR[$rt,status]="not measured: no free port"; return 1; }
    cat >"$routes" <<EOF
export default {
  listen: '127.0.0.1:$plain',
  tls: { listen: '127.0.0.1:$tls', certificates: [{ cert: '$TLS_CERT', key: '$TLS_KEY' }], redirectHttp: false },
  routes: [{ host: '*', upstream: 'http://127.0.0.1:$UP_PORT' }],
};
EOF
    SY_ROUTES=$routes start_switchyard "$name" "$ROOT" "${CMD[@]}" && break
    # A port taken between the pick and the bind (a shared machine): new ports, twice more.
    if ((try < 3)) && grep -q EADDRINUSE "$TMP/$name.stderr" "$TMP/$name.stdout" 2>/dev/null; then
      say "${LABEL[$rt]}: a port was taken meanwhile; again with other ports"; continue
    fi
    TR[$rt,status]="not measured: failed to start with a tls listener (its output is in the progress lines)"; return 1
  done
  out=$TMP/$name.stdout
  for ((i = 0; i < 100; i++)); do # the listening lines come together; 10 s at most
    line=$(grep '"listening"' "$out" 2>/dev/null | grep -m1 -E '"tls" *: *true' || true)
    port=$(grep -o '"port" *: *[0-9]*' <<<"$line" | head -n1 | grep -o '[0-9]*$' || true)
    [[ -n $port ]] && break
    alive "$STARTED_PID" || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    say "${LABEL[$rt]}: no TLS listener announced (no \"listening\" line with \"tls\":true); stdout/stderr tail:"
    tail -n 5 "$out" "$TMP/$name.stderr" 2>/dev/null | sed 's/^/    /' >&2 || true
    stop_pid "$STARTED_PID"; forget_pid "$STARTED_PID"
    TR[$rt,status]="not measured: no TLS listener announced"; return 1
  fi
  [[ $port == "$tls" ]] || say "${LABEL[$rt]}: TLS listener announced port $port, the routes file asked for $tls"
  for ((i = 0; i < 50; i++)); do port_open "$port" && break; sleep 0.1; done
  STARTED_PORT=$port
}

# ------------------------------------------------------------ checks ------
# tls_check TARGET PORT: GET /small over h1 and h2 with the certificate
# verified against the private CA (by name through SNI, and by IP), and a
# TLS 1.2-only handshake. Records what the h1 handshake negotiated.
tls_check() {
  local t=$1 port=$2 base="https://$TLS_HOST:$2" got v
  local c=(curl -sS --max-time 10 --cacert "$TLS_CA" --resolve "$TLS_HOST:$port:127.0.0.1" -o /dev/null)
  got=$("${c[@]}" --http1.1 -w '%{http_code} %{size_download} %{http_version}' "$base/small" 2>&1) || true
  [[ $got == "200 $SMALL_BYTES 1.1" ]] || { say "${LABEL[$t]}: HTTPS GET /small over http/1.1 -> $got (want 200 $SMALL_BYTES 1.1)"; return 1; }
  got=$("${c[@]}" --http2 -w '%{http_code} %{size_download} %{http_version}' "$base/small" 2>&1) || true
  [[ $got == "200 $SMALL_BYTES 2" ]] || { say "${LABEL[$t]}: HTTPS GET /small over h2 -> $got (want 200 $SMALL_BYTES 2: ALPN h2)"; return 1; }
  got=$("${c[@]}" -w '%{http_code}' "https://127.0.0.1:$port/small" 2>&1) || true
  [[ $got == 200 ]] || { say "${LABEL[$t]}: HTTPS GET https://127.0.0.1:$port/small (IP SAN) -> $got"; return 1; }
  got=$("${c[@]}" --http1.1 -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$base/small" 2>&1) || true
  [[ $got == 200 ]] || { say "${LABEL[$t]}: TLS 1.2 handshake -> $got"; TR[$t,err]+="TLS 1.2 refused "; }
  # What wrk (OpenSSL's defaults, as curl here) negotiates: protocol, cipher, key exchange.
  v=$("${c[@]}" -v --http1.1 "$base/small" 2>&1 | sed -n 's/^\* SSL connection using \([^ ]*\) \/ \([^ ]*\)\( \/ \([^ ]*\)\)\?.*/\1 \2 \4/p' | head -n1) || true
  TR[$t,tls]=${v% }
}

# tls_check_handshakes LOGLINES: the nginx access-log lines after line
# LOGLINES (a handshake run) must each be alone on their connection, and on a
# full handshake (or, with BENCH_TLS_RESUME=1, are counted as resumed or not).
tls_check_handshakes() {
  local from=$1 log=$TMP/tls-reference/access.log v total shared resumed
  v=$(tail -n +"$((from + 1))" "$log" |
    awk '{ n++ } $NF != 1 { s++ } $(NF - 1) == "r" { r++ } END { printf "%d %d %d", n, s, r }')
  read -r total shared resumed <<<"$v"
  ((shared == 0)) || { say "nginx: $shared of $total handshake-test requests shared a connection"; TR[nginx,err]+="handshake test: $shared requests shared a connection "; }
  if ((TLS_RESUME)); then
    say "nginx: $resumed of $total handshake-test requests were on resumed sessions (BENCH_TLS_RESUME=1)"
  elif ((resumed > 0)); then
    say "nginx: $resumed of $total handshake-test requests were on resumed sessions, not full handshakes"
    TR[nginx,err]+="handshake test: $resumed of $total requests on resumed sessions "
  else
    say "nginx: all $total handshake-test requests had their own connection and a full handshake"
  fi
}

# ------------------------------------------------------------ measuring ---
# run_h2load TAG PORT SECONDS -> the W_* variables run_wrk sets (requests =
# 2xx responses; errors = failed/errored/timed-out requests and non-2xx).
run_h2load() {
  local tag=$1 port=$2 secs=$3 raw=$TMP/h2load-$1.txt before after h2_pid rc=0 v
  cpu_snapshot before
  taskset -c "$LOAD_CPU" h2load -t1 -c"$CONNS" -m"$H2_STREAMS" -D "$secs" \
    --connect-to="127.0.0.1:$port" "https://$TLS_HOST:$port/small" </dev/null >"$raw" 2>&1 &
  h2_pid=$!
  PIDS+=("$h2_pid")
  wait "$h2_pid" || rc=$?
  forget_pid "$h2_pid"
  cpu_snapshot after
  if ((rc != 0)); then
    say "h2load failed ($tag, exit $rc):"; tail -n 5 "$raw" | sed 's/^/    /' >&2; return 1
  fi
  grep -q '^Application protocol: h2$' "$raw" || { say "h2load ($tag) did not negotiate h2:"; grep -i 'protocol' "$raw" | sed 's/^/    /' >&2; return 1; }
  v=$(awk '
    /^finished in / { d = $3; sub(/,$/, "", d); u = d; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", d)
                      f = (u == "s") ? 1e6 : (u == "ms") ? 1e3 : 1; dur = d * f }
    /^requests: / { for (i = 2; i <= NF; i++) { if ($(i + 1) ~ /^(failed|errored|timeout),?$/) e += $i } }
    /^status codes: / { ok = $3; e += $5 + $7 + $9 }
    END { printf "%d %d %d", ok, dur, e }' "$raw")
  read -r W_requests W_duration_us W_errors <<<"$v"
  W_cipher=$(sed -n 's/^Cipher: //p' "$raw" | head -n1) || true
  ((W_duration_us > 0)) || { say "no result from h2load ($tag)"; tail -n 8 "$raw" >&2; return 1; }
  read -r W_cpu0 W_cpu1 W_other0 W_other1 < <(cpu_delta "$before" "$after")
  W_cpu="core$LOAD_CPU ${W_cpu0}% busy (${W_other0}% other), core$PROXY_CPU ${W_cpu1}% busy (${W_other1}% other)"
  W_worst=$((W_other0 > W_other1 ? W_other0 : W_other1))
  W_proxy_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[8] - x[8] }')
  W_client_ticks=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); print y[9] - x[9] }')
}

# tls_run TARGET TEST TAG SECONDS: one measurement (h1 / h2 / hs) of TARGET.
tls_run() {
  local t=$1 test=$2 tag=$3 secs=$4 port=${TR[$1,port]} rc=0
  CUR_PROXY_PID=${TR[$t,pid]}
  case $test in
    h1) run_wrk "$tag" "https://127.0.0.1:$port/small" 0 "$secs" || rc=1 ;;
    h2)
      run_h2load "$tag" "$port" "$secs" || rc=1
      [[ $rc != 0 || -n ${TR[$t,tls2]:-} ]] || TR[$t,tls2]=$W_cipher ;;
    hs)
      WRK_ARGS=(-H 'Connection: close')
      ((TLS_RESUME)) || WRK_ENV=("LD_PRELOAD=$NO_RESUME_SO")
      run_wrk "$tag" "https://127.0.0.1:$port/small" 0 "$secs" || rc=1
      WRK_ARGS=() WRK_ENV=() ;;
  esac
  CUR_PROXY_PID=""
  return "$rc"
}

# tls_measure TARGET TEST ROUND: a measured round, its figures appended to TR.
tls_measure() {
  local t=$1 test=$2 r=$3 rps us cus flag=""
  if ! tls_run "$t" "$test" "tls-$t-$test-$r" "$TLS_DURATION"; then
    TR[$t,err]+="$test round $r failed "
    alive "${TR[$t,pid]}" || { TR[$t,dead]=1; say "${LABEL[$t]}: the process is gone"; }
    return 1
  fi
  ((W_requests > 0)) || { TR[$t,err]+="$test round $r: no requests "; return 1; }
  ((W_errors == 0)) || { TR[$t,err]+="$test round $r: $W_errors errors "; flag=" ERRORS=$W_errors"; }
  rps=$(awk -v q="$W_requests" -v d="$W_duration_us" 'BEGIN { print q * 1e6 / d }')
  us=$(awk -v t="$W_proxy_ticks" -v q="$W_requests" -v hz="$CLK_TCK" 'BEGIN { print t * 1e6 / hz / q }')
  cus=$(awk -v t="$W_client_ticks" -v q="$W_requests" 'BEGIN { print t * 1e4 / q }')
  TR[$t,$test,rps]+="$rps " TR[$t,$test,us]+="$us " TR[$t,$test,cus]+="$cus "
  TR[$t,$test,busy]+="$W_cpu1 " TR[$t,$test,noise]+="$W_worst "
  say "round $r ${TLS_TEST_NAME[$test]} ${LABEL[$t]}: $(fmt "$rps") req/s, $(fmt "$us" 1) µs proxy CPU/req," \
    "client $(fmt "$cus" 1) µs/req ($W_cpu)$flag"
}

# ------------------------------------------------------------ the part ----
tls_part() {
  local t test r i n order pid port warm from t0=$SECONDS
  for t in nginx bun deno node; do
    selected "$t" && TLS_ROWS+=("$t")
  done
  ((${#TLS_ROWS[@]})) || { say "HTTPS part: BENCH_TARGETS selects none of nginx, bun, deno, node"; return 0; }
  say "---- HTTPS: ${TLS_ROWS[*]}; h1 wrk, h2 h2load (-m$H2_STREAMS), new handshakes (wrk, Connection: close);" \
    "$TLS_ROUNDS rounds of ${TLS_DURATION}s"
  if ! tls_make_certs; then
    for t in "${TLS_ROWS[@]}"; do TR[$t,status]="not measured: no certificate"; done
    FAILED=1; return 1
  fi
  say "certificate: private CA + EC P-256 leaf for $TLS_HOST (SAN DNS:$TLS_HOST, IP:127.0.0.1) in $TLS_DIR"
  if ((!TLS_RESUME)) && ! tls_build_shim; then
    say "the handshake test is not run (it would measure resumed sessions; BENCH_TLS_RESUME=1 measures those)"
    TLS_TESTS=(h1 h2)
    for t in "${TLS_ROWS[@]}"; do TR[$t,err]+="handshake test not run (no-resume shim) "; done
  fi

  for t in "${TLS_ROWS[@]}"; do
    if [[ $t == nginx ]]; then
      start_nginx tls-reference "$PROXY_CPU" write_tls_reference_conf "$UP_PORT" ||
        { TR[$t,status]="not measured: failed to start"; FAILED=1; continue; }
    else
      tls_start_switchyard "$t" || { FAILED=1; continue; }
    fi
    pid=$STARTED_PID port=$STARTED_PORT
    if ! tls_check "$t" "$port"; then
      TR[$t,status]="not measured: failed its HTTPS checks"; FAILED=1
      stop_pid "$pid"; forget_pid "$pid"; continue
    fi
    TR[$t,pid]=$pid TR[$t,port]=$port
    TLS_UP+=("$t")
    say "${LABEL[$t]} HTTPS on 127.0.0.1:$port (pid $pid, core $PROXY_CPU; ${TR[$t,tls]:-?})"
  done
  ((${#TLS_UP[@]})) || return 1

  # Warm-up: h1 (the JIT of a switchyard build needs it), then a little of h2
  # and of handshakes (whose nginx access-log lines are checked).
  for t in "${TLS_UP[@]}"; do
    warm=$TLS_WARMUP
    [[ $t != nginx ]] || warm=2
    say "${LABEL[$t]}: HTTPS warm-up ${warm}s h1, 2s h2, 2s handshakes"
    if tls_run "$t" h1 "tls-$t-h1-warm" "$warm" && tls_run "$t" h2 "tls-$t-h2-warm" 2; then
      [[ " ${TLS_TESTS[*]} " == *" hs "* ]] || continue
      [[ $t != nginx ]] || from=$(wc -l <"$TMP/tls-reference/access.log")
      if tls_run "$t" hs "tls-$t-hs-warm" 2; then
        [[ $t != nginx ]] || tls_check_handshakes "$from"
      else
        TR[$t,err]+="handshake warm-up failed "
      fi
    else
      TR[$t,err]+="warm-up failed "
    fi
  done

  for ((r = 1; r <= TLS_ROUNDS; r++)); do
    rotate_order "$r" "${TLS_UP[@]}"
    for test in "${TLS_TESTS[@]}"; do
      for t in "${order[@]}"; do
        [[ -z ${TR[$t,dead]:-} ]] || continue
        tls_measure "$t" "$test" "$r" || true
      done
    done
  done

  for t in "${TLS_UP[@]}"; do
    stop_pid "${TR[$t,pid]}"; forget_pid "${TR[$t,pid]}"
    if [[ -n ${TR[$t,dead]:-} ]]; then
      TR[$t,status]="died during the run"
    elif [[ -z ${TR[$t,err]:-} ]]; then
      TR[$t,status]=ok
    else
      TR[$t,status]="errors: ${TR[$t,err]% }"
    fi
    for test in "${TLS_TESTS[@]}"; do
      [[ -n ${TR[$t,$test,rps]:-} ]] || { TR[$t,status]+=", no ${TLS_TEST_NAME[$test]} figure"; FAILED=1; }
    done
    [[ ${TR[$t,status]} == ok ]] || FAILED=1
  done
  rm -f "$TMP/tls-reference/access.log" "$TMP"/tls-{bun,deno,node}.stdout # access logs can be large
  say "HTTPS part took $((SECONDS - t0)) s"
}

# ------------------------------------------------------------ report ------
tls_med() { # tls_med TARGET TEST KEY -> median over rounds, or empty
  local v=${TR[$1,$2,$3]:-}
  # shellcheck disable=SC2086 # space-separated on purpose
  [[ -z $v ]] || median $v
}
tls_cell() { # tls_cell TARGET TEST KEY DECIMALS
  local v
  v=$(tls_med "$1" "$2" "$3")
  if [[ -n $v ]]; then fmt "$v" "$4"; else printf -- '-'; fi
}
tls_ratio() { # tls_ratio TARGET TEST KEY -> median / nginx median (2 decimals), or n/a
  local a b
  a=$(tls_med "$1" "$2" "$3") b=$(tls_med nginx "$2" "$3")
  if [[ -n $a && -n $b ]]; then awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
  else printf 'n/a'; fi
}
tls_max() { printf '%s\n' "$@" | sort -g | tail -n1; }

tls_report() {
  local t test v line noisy
  ((${#TLS_ROWS[@]})) || return 0
  echo "switchyard HTTPS bench: GET /small (${SMALL_BYTES} B) through each proxy over TLS (ECDSA P-256 leaf for $TLS_HOST, private CA);"
  echo "h1 = wrk -t1 -c$CONNS keep-alive; h2 = h2load -t1 -c$CONNS -m$H2_STREAMS; handshakes = wrk -t1 -c$CONNS -H 'Connection: close'"
  if ((TLS_RESUME)); then
    echo "(one request per connection, wrk resuming its TLS sessions: BENCH_TLS_RESUME=1). $TLS_ROUNDS rounds of ${TLS_DURATION}s, targets"
  else
    echo "(one request per connection, each a full handshake: no-resume.c drops wrk's session). $TLS_ROUNDS rounds of ${TLS_DURATION}s, targets"
  fi
  echo "alternating; medians over rounds; µs CPU/req = utime+stime of the proxy process (/proc/PID/stat, workers and threads) / responses."
  echo
  echo "| target | h1 req/s | h1 µs CPU/req | h2 req/s | h2 µs CPU/req | handshakes/s | µs CPU/handshake | TLS: h1 (wrk/curl); h2 (h2load) | status |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  for t in "${TLS_ROWS[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(tls_cell "$t" h1 rps 0)" "$(tls_cell "$t" h1 us 1)" "$(tls_cell "$t" h2 rps 0)" "$(tls_cell "$t" h2 us 1)" \
      "$(tls_cell "$t" hs rps 0)" "$(tls_cell "$t" hs us 1)" "${TR[$t,tls]:--}; ${TR[$t,tls2]:--}" "${TR[$t,status]:-?}"
  done
  echo
  echo "Relative to nginx (req/s: higher is better; CPU per request: lower is better)"
  echo
  echo "| target | h1 req/s | h1 CPU/req | h2 req/s | h2 CPU/req | handshakes/s | CPU/handshake |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in "${TLS_ROWS[@]}"; do
    [[ $t != nginx ]] || continue
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(tls_ratio "$t" h1 rps)" "$(tls_ratio "$t" h1 us)" "$(tls_ratio "$t" h2 rps)" "$(tls_ratio "$t" h2 us)" \
      "$(tls_ratio "$t" hs rps)" "$(tls_ratio "$t" hs us)"
  done
  echo
  echo "Load side: the proxy core's busy % (median) and the load generator's CPU µs per request (wrk or h2load, core $LOAD_CPU,"
  echo "which also runs the upstream). A proxy core under 90% busy means the client was the limit: compare CPU per request there."
  echo
  echo "| target | h1 proxy core % | h1 client µs/req | h2 proxy core % | h2 client µs/req | handshakes proxy core % | client µs/handshake |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in "${TLS_ROWS[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
      "$(tls_cell "$t" h1 busy 0)" "$(tls_cell "$t" h1 cus 1)" "$(tls_cell "$t" h2 busy 0)" "$(tls_cell "$t" h2 cus 1)" \
      "$(tls_cell "$t" hs busy 0)" "$(tls_cell "$t" hs cus 1)"
  done
  echo
  for t in "${TLS_ROWS[@]}"; do
    for test in "${TLS_TESTS[@]}"; do
      [[ -n ${TR[$t,$test,rps]:-} ]] || continue
      line=""
      for v in ${TR[$t,$test,rps]}; do line+="$(fmt "$v") "; done
      line+="req/s; µs CPU/req "
      for v in ${TR[$t,$test,us]}; do line+="$(fmt "$v" 1) "; done
      # shellcheck disable=SC2086
      noisy=$(tls_max ${TR[$t,$test,noise]})
      ((noisy <= NOISE_LIMIT)) || line+="(noisy: up to ${noisy}% of a core used by other processes)"
      echo "${LABEL[$t]} ${TLS_TEST_NAME[$test]} per round: ${line% }"
    done
  done
  echo
  local bound=0
  for t in "${TLS_ROWS[@]}"; do
    for test in "${TLS_TESTS[@]}"; do
      v=$(tls_med "$t" "$test" busy)
      [[ -n $v ]] || continue
      v=$(fmt "$v")
      ((v < 90)) || continue
      bound=1
      echo "Load-bound: ${LABEL[$t]} ${TLS_TEST_NAME[$test]}: the proxy core was ${v}% busy; the client needed" \
        "$(tls_cell "$t" "$test" cus 0) µs of core $LOAD_CPU per request (shared with the upstream) vs the proxy's $(tls_cell "$t" "$test" us 0)."
    done
  done
  if ((bound)); then
    echo "In those rows req/s is the load side's limit, not the proxy's (its ratios to nginx are then not the proxies' ratio):"
    echo "compare µs CPU/request; and a proxy that is not saturated batches less, so even its CPU per request reads a little high."
  fi
  echo
  return 0
}

# The summary lines (printed before run.sh's final small-get line): per test
# and runtime, req/s over nginx's, then CPU per request over nginx's.
tls_summary() {
  local test t
  ((${#TLS_ROWS[@]})) || return 0
  for test in h1 h2 hs; do
    for t in bun deno node; do
      [[ " ${TLS_ROWS[*]} " == *" $t "* ]] || continue
      echo "bench ${TLS_TEST_NAME[$test]} ${LABEL[$t]}/nginx: $(tls_ratio "$t" "$test" rps)"
    done
  done
  for test in h1 h2 hs; do
    for t in bun deno node; do
      [[ " ${TLS_ROWS[*]} " == *" $t "* ]] || continue
      echo "bench ${TLS_TEST_NAME[$test]} cpu-per-request ${LABEL[$t]}/nginx: $(tls_ratio "$t" "$test" us)"
    done
  done
  return 0
}
