#!/usr/bin/env bash
# bench/run.sh — spillway vs nginx vs HAProxy in front of the same zero-delay spillway-mock,
# measured side by side in one run and quoted as ratios to nginx.
#
# Starts ONE spillway-mock region (unlimited quota, ttft/token pace 0) on a free loopback port,
# then spillway (1 worker), nginx (worker_processes 1, upstream keepalive) and HAProxy (nbthread 1,
# http-reuse always) in front of it, and drives each target — plus the mock directly — with wrk
# POSTing a ~200-byte chat-completions body. Everything it starts is stopped on exit, also on
# failure or Ctrl-C.
#
# Usage: bench/run.sh [--smoke] [--duration N] [options]     (bench/run.sh --help)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$ROOT/bench"

duration=10          # seconds per measured run
warmup=2             # seconds of warm-up before each measured run (not measured)
connections=32
threads=1
rounds=1             # >1: the targets are measured round-robin, the median round is reported
smoke=0
build=1
build_dir="$ROOT/build/release"
targets="direct,spillway,nginx,haproxy"
results_dir="$BENCH_DIR/results"
tag=""
keep_tmp=0
enforce_budget=0
budget="0.60"        # project acceptance: spillway (1 worker) >= 0.6x nginx requests/s

usage() {
    cat <<'EOF'
Usage: bench/run.sh [options]

  --smoke            1 s runs, no warm-up, strict 200 check on every answer; only checks that
                     every target answered 200s and produced numbers (exit non-zero otherwise).
                     Writes bench/results/smoke.{md,json}, leaving latest.* alone.
  --duration N       seconds per measured run (default 10)
  --warmup N         seconds of warm-up before each measured run (default 2)
  --connections N    wrk connections (default 32)
  --threads N        wrk threads (default 1)
  --rounds N         measure every target N times, round-robin; report the median round (default 1)
  --targets LIST     comma-separated subset of direct,spillway,nginx,haproxy
  --no-build         use the existing Release binaries as they are
  --build-dir DIR    Release build tree (default build/release)
  --tag NAME         also keep a copy as bench/results/NAME.{md,json}
  --enforce-budget   exit 3 when spillway < 0.60x nginx requests/s
  --keep-tmp         keep the temporary directory (configs, logs, raw wrk output)
  -h, --help         this text

Exit status: 0 ok; 1 a target failed (non-200, socket errors, no numbers, did not start);
2 bad usage or build failure; 3 budget missed (only with --enforce-budget).
EOF
}

die() { echo "run.sh: $*" >&2; exit 2; }
need_int() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1 needs a whole number, got '$2'"; }

args_given=("$@")
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --duration) need_int "$1" "${2:-}"; duration="$2"; shift ;;
        --warmup) need_int "$1" "${2:-}"; warmup="$2"; shift ;;
        --connections) need_int "$1" "${2:-}"; connections="$2"; shift ;;
        --threads) need_int "$1" "${2:-}"; threads="$2"; shift ;;
        --rounds) need_int "$1" "${2:-}"; rounds="$2"; shift ;;
        --targets) targets="${2:-}"; shift ;;
        --no-build) build=0 ;;
        --build-dir) build_dir="${2:-}"; shift ;;
        --tag) tag="${2:-}"; shift ;;
        --keep-tmp) keep_tmp=1 ;;
        --enforce-budget) enforce_budget=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
done
if [[ $smoke == 1 ]]; then
    duration=1; warmup=0; rounds=1
fi
[[ $duration -ge 1 ]] || die "--duration must be >= 1"
[[ $rounds -ge 1 && $connections -ge 1 && $threads -ge 1 ]] || die "--rounds/--connections/--threads must be >= 1"
[[ $threads -le $connections ]] || die "--threads must not exceed --connections"
IFS=',' read -r -a target_list <<<"$targets"
for t in "${target_list[@]}"; do
    case "$t" in direct|spillway|nginx|haproxy) ;; *) die "unknown target '$t'" ;; esac
done

for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
for t in "${target_list[@]}"; do
    case "$t" in
        nginx) command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)" ;;
        haproxy) command -v haproxy >/dev/null || die "haproxy is not installed" ;;
    esac
done

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ------------------------------------------------------------------------------------------------
# Build

bin_dir="$build_dir/bin"
build_note="not rebuilt (--no-build)"
if [[ $build == 1 ]]; then
    if [[ ! -f "$build_dir/build.ninja" && ! -f "$build_dir/Makefile" ]]; then
        log "configuring Release tree in $build_dir"
        cmake -S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake configure failed"
    fi
    build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
    [[ "$build_type" == "Release" ]] || die "$build_dir is a '$build_type' tree; benchmarks need Release"
    log "building spillway and spillway-mock (Release; log in $build_dir/bench-build.log)"
    if cmake --build "$build_dir" -j2 --target spillway spillway-mock >"$build_dir/bench-build.log" 2>&1; then
        build_note="rebuilt/up to date"
    elif [[ -x "$bin_dir/spillway" && -x "$bin_dir/spillway-mock" ]]; then
        # Other people edit src/ concurrently; a half-edited tree must not block a measurement,
        # but the numbers then belong to the previous binaries, and the report says so.
        build_note="REBUILD FAILED — measured the previous binaries"
        grep -E 'error|FAILED' "$build_dir/bench-build.log" | head -n 10 >&2 || true
        log "WARNING: build failed; using the existing binaries in $bin_dir"
    else
        tail -n 30 "$build_dir/bench-build.log" >&2
        die "build failed and there are no binaries in $bin_dir"
    fi
fi
[[ -x "$bin_dir/spillway" && -x "$bin_dir/spillway-mock" ]] || die "no binaries in $bin_dir (drop --no-build)"

# ------------------------------------------------------------------------------------------------
# Processes and clean-up

tmp="$(mktemp -d /tmp/spillway-bench.XXXXXX)"
chmod 755 "$tmp"   # nginx workers run as 'nobody' when started by root
declare -A pid_of=()

stop_all() {
    local name pid i
    for name in "${!pid_of[@]}"; do
        pid="${pid_of[$name]}"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for name in "${!pid_of[@]}"; do
        pid="${pid_of[$name]}"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    pid_of=()
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    # A measurement in flight: its subshell, then the wrk it started.
    [[ -z "${measure_job:-}" ]] || kill -TERM "$measure_job" 2>/dev/null || true
    if [[ -s "$tmp/wrk.pid" ]]; then kill -TERM "$(cat "$tmp/wrk.pid")" 2>/dev/null || true; fi
    stop_all
    if [[ $keep_tmp == 1 || $rc -ne 0 ]]; then
        log "logs and configs kept in $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() { kill -0 "${pid_of[$1]}" 2>/dev/null; }

fail_start() {
    local name="$1" msg="$2"
    echo "run.sh: $name $msg; its log ($tmp/$name.err):" >&2
    tail -n 30 "$tmp/$name.err" >&2 2>/dev/null || true
    exit 1
}

# Free loopback TCP ports: bound together (so they differ) and released right away.
free_ports() {
    python3 - "$1" <<'EOF' 2>/dev/null && return 0
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
    # No python: random high ports that nothing listens on.
    local out=() p
    while [[ ${#out[@]} -lt $1 ]]; do
        p=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$p" | grep -q . && [[ ! " ${out[*]} " == *" $p "* ]]; then out+=("$p"); fi
    done
    echo "${out[*]}"
}

read -r mock_port spillway_port nginx_port haproxy_port <<<"$(free_ports 4)"

client_key="sk-bench"
upstream_key="mock-bench-key"
azure_path="/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
openai_path="/v1/chat/completions"

declare -A url_of=(
    [direct]="http://127.0.0.1:$mock_port$azure_path"
    [spillway]="http://127.0.0.1:$spillway_port$openai_path"
    [nginx]="http://127.0.0.1:$nginx_port$azure_path"
    [haproxy]="http://127.0.0.1:$haproxy_port$azure_path"
)
declare -A key_of=([direct]="$upstream_key" [spillway]="$client_key" [nginx]="$client_key" [haproxy]="$client_key")

# One POST; prints the status code. The body is the same one wrk sends (model gpt-4o).
probe() {
    local target="$1"
    curl -s -m 2 -o "$tmp/probe-$target.body" -D "$tmp/probe-$target.headers" -w '%{http_code}' \
        -H "content-type: application/json" -H "api-key: ${key_of[$target]}" \
        --data '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":8}' \
        "${url_of[$target]}" 2>/dev/null || true
}

# Waits until TARGET answers a chat completion with 200 (or its process dies).
wait_ready() {
    local target="$1" proc="$2" i code=""
    for ((i = 0; i < 150; i++)); do
        alive "$proc" || fail_start "$proc" "exited during start-up"
        code="$(probe "$target")"
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    fail_start "$proc" "did not answer 200 within 15 s (last status '$code')"
}

# --- upstream: spillway-mock, one zero-delay region, unlimited quota ----------------------------
cat >"$tmp/mock.json" <<EOF
{
  "threads": 1,
  "regions": [
    { "name": "bench", "address": "127.0.0.1", "port": $mock_port, "api_key": "$upstream_key",
      "ttft_ms": 0, "token_ms": 0, "completion_tokens": 16,
      "deployments": [ { "name": "gpt4o", "model": "gpt-4o" } ] }
  ]
}
EOF
log "starting spillway-mock on 127.0.0.1:$mock_port"
"$bin_dir/spillway-mock" --config "$tmp/mock.json" --log-level warn >"$tmp/mock.out" 2>"$tmp/mock.err" &
pid_of[mock]=$!
wait_ready direct mock

# --- spillway, one worker ------------------------------------------------------------------------
start_spillway() {
    cat >"$tmp/spillway.json" <<EOF
{
  "listen": { "address": "127.0.0.1", "port": $spillway_port },
  "admin": { "address": "127.0.0.1", "port": 0 },
  "workers": 1,
  "auth": { "mode": "keys", "keys": [ { "name": "bench", "key": "$client_key" } ] },
  "regions": [
    { "name": "bench", "endpoint": "http://127.0.0.1:$mock_port", "api_key": "$upstream_key",
      "deployments": [ { "model": "gpt-4o", "name": "gpt4o" } ] }
  ],
  "log": { "level": "warn", "access_log": false }
}
EOF
    log "starting spillway (1 worker) on 127.0.0.1:$spillway_port"
    "$bin_dir/spillway" --config "$tmp/spillway.json" >"$tmp/spillway.out" 2>"$tmp/spillway.err" &
    pid_of[spillway]=$!
    wait_ready spillway spillway
}

# --- nginx, one worker process ---------------------------------------------------------------------
start_nginx() {
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default (client and upstream
    # side); spillway and HAProxy do not, so lift the limit rather than charge nginx reconnects.
    keepalive_requests 1000000;
    upstream bench_upstream {
        server 127.0.0.1:$mock_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Replaces the client's api-key, as spillway does with the region key.
            proxy_set_header api-key "$upstream_key";
        }
    }
}
EOF
    log "starting nginx (worker_processes 1) on 127.0.0.1:$nginx_port"
    nginx -e "$tmp/nginx.err" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.out" 2>>"$tmp/nginx.err" &
    pid_of[nginx]=$!
    wait_ready nginx nginx
}

# --- HAProxy, one thread ----------------------------------------------------------------------------
start_haproxy() {
    cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
    pidfile $tmp/haproxy.pid

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always

frontend bench
    bind 127.0.0.1:$haproxy_port
    default_backend mock

backend mock
    # Replaces the client's api-key, as spillway does with the region key.
    http-request set-header api-key $upstream_key
    server mock 127.0.0.1:$mock_port
EOF
    haproxy -c -q -f "$tmp/haproxy.cfg" >"$tmp/haproxy.err" 2>&1 || fail_start haproxy "rejected its config"
    log "starting haproxy (nbthread 1) on 127.0.0.1:$haproxy_port"
    haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.out" 2>>"$tmp/haproxy.err" &
    pid_of[haproxy]=$!
    wait_ready haproxy haproxy
}

for t in "${target_list[@]}"; do
    case "$t" in
        spillway) start_spillway ;;
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
    esac
done

# Pre-flight: every target answers a real chat completion with 200 and an OpenAI-shaped body.
for t in "${target_list[@]}"; do
    code="$(probe "$t")"
    if [[ "$code" != 200 ]] || ! grep -q '"choices"' "$tmp/probe-$t.body"; then
        echo "run.sh: pre-flight: $t answered $code: $(head -c 300 "$tmp/probe-$t.body")" >&2
        exit 1
    fi
done
log "all targets answer 200"

# ------------------------------------------------------------------------------------------------
# Measurement

clk_tck="$(getconf CLK_TCK)"

# Process ids whose CPU time is charged to a target: the proxy process (all its threads) and,
# for nginx, its worker. The mock is measured separately.
pids_of_target() {
    case "$1" in
        direct) echo "${pid_of[mock]}" ;;
        nginx) echo "${pid_of[nginx]}" $(pgrep -P "${pid_of[nginx]}" || true) ;;
        *) echo "${pid_of[$1]}" ;;
    esac
}

# utime+stime (clock ticks) summed over the given pids.
cpu_ticks() {
    local total=0 pid stat rest
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        rest="${stat##*) }"   # fields after "comm", starting with field 3 (state)
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))   # fields 14 and 15
    done
    echo "$total"
}

# Sets $child_ticks to the waited-for children's utime+stime (fields 16, 17) of the current
# (sub)shell: wrk's CPU time. Not via $(...), which would be a subshell of its own.
read_child_ticks() {
    local stat rest f
    read -r stat <"/proc/$BASHPID/stat"
    rest="${stat##*) }"
    read -r -a f <<<"$rest"
    child_ticks=$((f[13] + f[14]))
}

# Busy and total ticks of the whole machine (all CPUs), from /proc/stat. Interrupt and softirq
# time is left out of "busy": loopback TCP processing of our own traffic lands there, and no
# process is charged for it, so it cannot be told apart from other people's.
machine_ticks() {
    local label user nice system idle iowait irq softirq steal rest
    read -r label user nice system idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + system + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# Runs wrk once; prints the BENCH_JSON object (with CPU figures added) on stdout. Must run in a
# subshell of its own (measure() starts it in the background) so that read_child_ticks sees
# (almost) only wrk.
run_wrk() {
    local target="$1" secs="$2" strict="$3" out="$4"
    local pids cpu0 cpu1 mcpu0 mcpu1 wcpu0 wcpu1 busy0 all0 busy1 all1 child_ticks=0
    pids="$(pids_of_target "$target")"
    cpu0="$(cpu_ticks $pids)"; mcpu0="$(cpu_ticks "${pid_of[mock]}")"; read_child_ticks; wcpu0=$child_ticks
    read -r busy0 all0 <<<"$(machine_ticks)"
    # In the background + wait, and its pid on file, so that on_exit can stop it.
    BENCH_KEY="${key_of[$target]}" BENCH_STRICT="$strict" \
        wrk -t"$threads" -c"$connections" -d"${secs}s" --timeout 5s --latency \
        -s "$BENCH_DIR/wrk/chat.lua" "${url_of[$target]}" >"$out" 2>&1 &
    local wrk_pid=$! wrk_rc=0
    echo "$wrk_pid" >"$tmp/wrk.pid"
    wait "$wrk_pid" || wrk_rc=$?
    rm -f "$tmp/wrk.pid"
    if [[ $wrk_rc -ne 0 ]]; then
        echo "run.sh: wrk failed against $target (exit $wrk_rc):" >&2; cat "$out" >&2; return 1
    fi
    read -r busy1 all1 <<<"$(machine_ticks)"
    read_child_ticks; wcpu1=$child_ticks; cpu1="$(cpu_ticks $pids)"; mcpu1="$(cpu_ticks "${pid_of[mock]}")"
    local line
    line="$(sed -n 's/^BENCH_JSON //p' "$out" | tail -n 1)"
    [[ -n "$line" ]] || { echo "run.sh: no BENCH_JSON from wrk against $target:" >&2; cat "$out" >&2; return 1; }
    # For "direct" the target is the mock, so it is not counted twice in "other".
    local ours=$(( (cpu1 - cpu0) + (wcpu1 - wcpu0) ))
    [[ "$target" == direct ]] || ours=$(( ours + mcpu1 - mcpu0 ))
    jq -c --argjson t "$clk_tck" --argjson c "$((cpu1 - cpu0))" --argjson m "$((mcpu1 - mcpu0))" \
        --argjson w "$((wcpu1 - wcpu0))" --argjson busy "$((busy1 - busy0))" --argjson all "$((all1 - all0))" \
        --argjson ours "$ours" --argjson ncpu "$(nproc)" \
        '. + {cpu: {target_s: ($c / $t), mock_s: ($m / $t), wrk_s: ($w / $t),
                    target_us_per_req: (if .requests > 0 then ($c / $t) * 1e6 / .requests else null end),
                    machine_busy_pct: (if $all > 0 then 100 * $busy / $all else null end),
                    other_processes_cpus: (if $all > 0 then ([($busy - $ours), 0] | max) / $all * $ncpu else null end)}}' <<<"$line"
}

# Runs run_wrk in the background and waits for it: a signal to this script is then handled at
# once (bash defers traps while a foreground command, e.g. $(...), is running). Sets $measured.
measure_job=""
measure() {
    measured=""
    run_wrk "$@" >"$tmp/measure.json" &
    measure_job=$!
    local rc=0
    wait "$measure_job" || rc=$?
    measure_job=""
    [[ $rc -eq 0 ]] || return 1
    measured="$(<"$tmp/measure.json")"
}

# Problems in one wrk result, one per line (empty when clean).
problems_of() {
    jq -r '
        (if .requests <= 0 or .rps <= 0 then "no requests completed" else empty end),
        (.errors | to_entries[] | select(.value > 0) | "\(.value) \(.key) errors"),
        (if .first_bad != "" then "first non-200: \(.first_bad)" else empty end)' <<<"$1"
}

raw="$tmp/rounds.jsonl"
: >"$raw"
failed=0
declare -A failed_target=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

for ((round = 1; round <= rounds; round++)); do
    for t in "${target_list[@]}"; do
        [[ -z "${failed_target[$t]:-}" ]] || continue
        if [[ $warmup -gt 0 ]]; then
            # Warm-up answers are checked strictly (every status exactly 200); not measured.
            measure "$t" "$warmup" 1 "$tmp/wrk-$t-r$round-warmup.txt" || { failed=1; failed_target[$t]=1; continue; }
            w="$measured"
            p="$(problems_of "$w")"
            if [[ -n "$p" ]]; then
                echo "run.sh: FAIL $t (warm-up): $p" | tr '\n' ' ' >&2; echo >&2
                failed=1; failed_target[$t]=1; continue
            fi
        fi
        log "round $round/$rounds: $t for ${duration}s (${connections} connections, ${threads} wrk thread(s))"
        strict=0; [[ $smoke == 1 ]] && strict=1
        measure "$t" "$duration" "$strict" "$tmp/wrk-$t-r$round.txt" || { failed=1; failed_target[$t]=1; continue; }
        r="$measured"
        p="$(problems_of "$r")"
        if [[ -n "$p" ]]; then
            echo "run.sh: FAIL $t: $(echo "$p" | tr '\n' ';')" >&2
            failed=1; failed_target[$t]=1
        fi
        alive "$([[ $t == direct ]] && echo mock || echo "$t")" || { echo "run.sh: FAIL $t: process died during the run" >&2; failed=1; }
        jq -c --arg t "$t" --argjson round "$round" --arg p "$p" \
            '{target: $t, round: $round, ok: ($p == ""), problems: $p} + .' <<<"$r" >>"$raw"
        log "  $t: $(jq -r '"\(.rps | floor) req/s, p50 \(.latency_us.p50 / 1000) ms, p99 \(.latency_us.p99 / 1000) ms"' <<<"$r")"
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------------------------------------
# Report

git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git_dirty="$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | grep -q . && echo " (src/ has uncommitted changes)" || true)"
# Other people rebuild src/ while benchmarks run: name the exact binaries that were measured.
binaries="spillway $(sha256sum "$bin_dir/spillway" | cut -c1-12) built $(date -r "$bin_dir/spillway" '+%F %T'), spillway-mock $(sha256sum "$bin_dir/spillway-mock" | cut -c1-12)"
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
cmdline="bench/run.sh${args_given[*]:+ ${args_given[*]}}"
order_json="$(printf '%s\n' "${target_list[@]}" | jq -R . | jq -sc .)"

summary="$(jq -s -c --argjson order "$order_json" --argjson budget "$budget" '
    def median_round: sort_by(.rps) | .[(length - 1) / 2 | floor];
    (group_by(.target) | map({key: .[0].target, value: median_round}) | from_entries) as $by
    | ($by.nginx.rps // null) as $ng
    | {targets: [ $order[] | select($by[.]) | $by[.] as $r
                  | $r + {ratio_to_nginx: (if $ng then $r.rps / $ng else null end)} ],
       spillway_vs_nginx: (if $ng and $by.spillway then $by.spillway.rps / $ng else null end),
       budget: $budget}
    | . + {budget_met: (if .spillway_vs_nginx then .spillway_vs_nginx >= $budget else null end)}
' "$raw")"

jq -n \
    --arg started "$started_at" --arg cmd "$cmdline" --arg rev "$git_rev$git_dirty" \
    --arg build "$build_note" --arg binaries "$binaries" --arg cpu "$cpu_model" --arg kernel "$(uname -r)" \
    --argjson nproc "$(nproc)" --arg load_before "$load_before" --arg load_after "$load_after" \
    --argjson duration "$duration" --argjson warmup "$warmup" --argjson conns "$connections" \
    --argjson threads "$threads" --argjson rounds "$rounds" --argjson smoke "$smoke" \
    --argjson failed "$failed" --argjson summary "$summary" --slurpfile rounds_raw "$raw" \
    --arg nginx_v "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
    --arg haproxy_v "$(haproxy -v 2>/dev/null | head -n 1 | awk '{print $3}')" \
    --arg wrk_v "$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')" \
    '{started: $started, command: $cmd, git: $rev, build: $build, binaries: $binaries,
      machine: {nproc: $nproc, cpu: $cpu, kernel: $kernel, loadavg_before: $load_before, loadavg_after: $load_after},
      versions: {nginx: $nginx_v, haproxy: $haproxy_v, wrk: $wrk_v},
      params: {duration_s: $duration, warmup_s: $warmup, connections: $conns, wrk_threads: $threads,
               rounds: $rounds, smoke: ($smoke == 1), body: "~200-byte chat.completions JSON, non-streaming",
               upstream: "spillway-mock, 1 thread, ttft 0 ms, token pace 0 ms, 16 completion tokens, no quota"},
      failed: ($failed == 1), summary: $summary, rounds: $rounds_raw}' >"$tmp/result.json"

table="$(jq -r '
    def ms: . / 1000 | (. * 100 | round) / 100 | tostring;
    def r2: (. * 100 | round) / 100 | tostring;
    "| target | path sent | req/s | × nginx | p50 ms | p99 ms | target CPU µs/req | target CPU % | other load (CPUs) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    (.summary.targets[] |
        "| \(.target)\(if .ok then "" else " **FAILED**" end) | \(if .target == "spillway" then "/v1/chat/completions" else "/openai/deployments/gpt4o/…" end) | \(.rps | floor) | \(if .ratio_to_nginx then (.ratio_to_nginx | r2) else "–" end) | \(.latency_us.p50 | ms) | \(.latency_us.p99 | ms) | \(if .cpu.target_us_per_req then (.cpu.target_us_per_req | floor | tostring) else "–" end) | \(.cpu.target_s / .duration_s * 100 | round) | \(if .cpu.other_processes_cpus then (.cpu.other_processes_cpus | r2) else "–" end) |")
' "$tmp/result.json")"

verdict="$(jq -r '
    if .summary.spillway_vs_nginx == null then "spillway vs nginx: not measured"
    else "spillway / nginx requests/s = \(.summary.spillway_vs_nginx * 100 | round / 100) — budget ≥ \(.summary.budget): \(if .summary.budget_met then "MET" else "NOT MET" end)"
    end' "$tmp/result.json")"

md="$(jq -r --arg table "$table" --arg verdict "$verdict" '
"# spillway benchmark\(if .params.smoke then " (smoke)" else "" end)

- when: \(.started) · git \(.git) · build: \(.build)
- binaries: \(.binaries)
- command: `\(.command)`
- machine: \(.machine.nproc) CPUs, \(.machine.cpu), kernel \(.machine.kernel); load average \(.machine.loadavg_before) before, \(.machine.loadavg_after) after
- load: wrk \(.versions.wrk), \(.params.wrk_threads) thread(s), \(.params.connections) connections, \(.params.duration_s) s per run after \(.params.warmup_s) s warm-up, \(.params.rounds) round(s) (median round shown); \(.params.body)
- upstream: \(.params.upstream); proxies: spillway 1 worker, nginx \(.versions.nginx) worker_processes 1 + keepalive 64, HAProxy \(.versions.haproxy) nbthread 1 + http-reuse always
- all on loopback on the same machine: wrk, the upstream and the proxy share the CPUs; other processes kept \([.rounds[].cpu.other_processes_cpus // empty] | if length > 0 then (add / length * 100 | round / 100 | tostring) else "?" end) of the \(.machine.nproc) CPUs busy on average during the measured runs

\($table)

\($verdict)

target CPU = user+system CPU time of the proxy process (nginx: master + worker; `direct`: the mock) during the measured run, per request and as % of one CPU. other load = how many CPUs the rest of the machine (not wrk, the mock or the target) kept busy on average during the run: the noise from other work.
\(if .failed then "\n**FAILED: at least one target returned non-200 answers, socket errors, or no numbers — see the run output.**\n" else "" end)"' "$tmp/result.json")"

echo
echo "$md"

mkdir -p "$results_dir"
base="latest"; [[ $smoke == 1 ]] && base="smoke"
cp "$tmp/result.json" "$results_dir/$base.json"
printf '%s\n' "$md" >"$results_dir/$base.md"
if [[ -n "$tag" ]]; then
    cp "$tmp/result.json" "$results_dir/$tag.json"
    printf '%s\n' "$md" >"$results_dir/$tag.md"
fi
log "wrote $results_dir/$base.md and $base.json${tag:+ (+ $tag.md/.json)}"

# Every target must have produced numbers.
for t in "${target_list[@]}"; do
    if ! jq -e --arg t "$t" '.summary.targets | any(.target == $t)' "$tmp/result.json" >/dev/null; then
        echo "run.sh: FAIL $t produced no numbers" >&2
        failed=1
    fi
done
[[ $failed == 0 ]] || { echo "run.sh: FAILED (see above)" >&2; exit 1; }
if [[ $enforce_budget == 1 ]] && jq -e '.summary.budget_met == false' "$tmp/result.json" >/dev/null; then
    echo "run.sh: $verdict" >&2
    exit 3
fi
exit 0
