#!/usr/bin/env bash
# bench/run.sh — spillway vs nginx vs HAProxy in front of the same zero-delay spillway-mock,
# measured side by side in one run and quoted as ratios to nginx.
#
# Starts ONE spillway-mock region (unlimited quota, ttft/token pace 0) on a free loopback port,
# then spillway (1 worker), nginx (worker_processes 1, upstream keepalive) and HAProxy (nbthread 1,
# http-reuse always) — and with --portkey Portkey's open-source AI gateway (Node) — in front of
# it, and drives each target — plus the mock directly — with wrk POSTing a ~200-byte
# chat-completions body. Everything it starts is stopped on exit, also on failure or Ctrl-C.
#
# --suite adds dimensions beyond throughput, measured in the same run against the same processes:
# latency at one connection, streaming (a second, paced region of the same mock: TTFT and event
# pacing), memory (idle RSS, RSS with N idle keep-alive client connections, RSS under load).
# Upstream connection reuse is measured with every throughput run (the mock's control API counts
# accepted connections).
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
suites="throughput"  # which dimensions: throughput,latency,streaming,memory (or all)
portkey=0
latency_secs=1       # seconds per wrk -c1 run of the latency suite (~10,000 requests)
latency_rounds=15    # latency runs per target, round-robin; the median round is reported (many
                     # short rounds: the machine's drift between targets cancels out better)
latency_one_cpu=1    # also measure the latency suite with every process on one CPU (see usage)
streaming_one_cpu=1  # and the streaming suite
streams=200          # streams per target in the streaming suite
ttft_ms=20           # pace of the streaming region
token_ms=10
stream_tokens=8      # completion tokens per stream
idle_conns=10000     # idle keep-alive client connections in the memory suite
load_secs=5          # wrk run of the memory suite during which RSS is sampled

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
  --targets LIST     comma-separated subset of direct,spillway,nginx,haproxy,portkey
                     (default direct,spillway,nginx,haproxy)
  --portkey          also measure Portkey's AI gateway (@portkey-ai/gateway from bench/portkey,
                     installed there with `npm ci` when node_modules is missing), provider
                     azure-openai with custom_host = the mock
  --suite LIST       comma-separated dimensions, or "all" (default throughput):
                       throughput  wrk -c<connections> as above, plus upstream connection reuse
                                   (new upstream connections per 1,000 requests, from the mock)
                       latency     wrk -t1 -c1 for --latency-secs, --latency-rounds times per
                                   target round-robin; added latency = target - direct (p50/p99)
                                   Twice: with the CPUs shared as in every other suite, then
                                   with the upstream, every proxy and wrk pinned to one CPU
                                   (taskset), where a request's hops take turns on that CPU:
                                   the added latency is then the proxy's own work, not where
                                   and how soon the scheduler runs each hop
                       streaming   --streams SSE streams per target (interleaved, one at a time)
                                   from a second mock region paced at --ttft-ms/--token-ms;
                                   added TTFT = target - direct (p50/p99), and, as root, the
                                   proxy's own delay from kernel timestamps of the segments
                                   on lo (bench/tools/lo_capture.py); event pacing. Twice,
                                   like the latency suite: CPUs shared, then everything (the
                                   client and the capture too) on one CPU, where the scheduler
                                   cannot decide whether a proxy woken by the upstream's head
                                   is still asleep when the first event comes
                       memory      RSS idle (after start), with --idle-conns idle keep-alive
                                   client connections (KB per connection), and peak under a
                                   --load-secs wrk run
                     Results of every suite go into the same latest/smoke/--tag files.
                     bench/run-all.sh = --suite all --portkey, then the plots (bench/plot.sh).
  --latency-secs N   (default 1)      --latency-rounds N  (default 15)
  --no-latency-one-cpu  skip the latency suite's one-CPU pass
  --no-streaming-one-cpu  skip the streaming suite's one-CPU pass
  --streams N        (default 200)    --ttft-ms N (default 20)   --token-ms N (default 10)
  --idle-conns N     (default 10000)  --load-secs N (default 5)
  --no-build         use the existing Release binaries as they are
  --build-dir DIR    Release build tree (default build/release)
  --tag NAME         also keep a copy as bench/results/NAME.{md,json}
  --enforce-budget   exit 3 when spillway < 0.60x nginx requests/s
  --keep-tmp         keep the temporary directory (configs, logs, raw wrk output)
  -h, --help         this text

--smoke with other suites shrinks them too: 1 s latency runs x 1, 10 streams, 300 idle connections,
1 s load.

Exit status: 0 ok; 1 a target failed (non-200, socket errors, no numbers, did not start, a stream
broke or lost events, idle connections refused); 2 bad usage, build failure or a missing tool;
3 budget missed (only with --enforce-budget). Targets other than the budget (latency, TTFT,
memory, reuse) are reported as met/missed, never as an exit status.
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
        --suite|--suites) suites="${2:-}"; shift ;;
        --portkey) portkey=1 ;;
        --latency-secs) need_int "$1" "${2:-}"; latency_secs="$2"; shift ;;
        --latency-rounds) need_int "$1" "${2:-}"; latency_rounds="$2"; shift ;;
        --no-latency-one-cpu) latency_one_cpu=0 ;;
        --no-streaming-one-cpu) streaming_one_cpu=0 ;;
        --streams) need_int "$1" "${2:-}"; streams="$2"; shift ;;
        --ttft-ms) need_int "$1" "${2:-}"; ttft_ms="$2"; shift ;;
        --token-ms) need_int "$1" "${2:-}"; token_ms="$2"; shift ;;
        --idle-conns) need_int "$1" "${2:-}"; idle_conns="$2"; shift ;;
        --load-secs) need_int "$1" "${2:-}"; load_secs="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
done
if [[ $smoke == 1 ]]; then
    duration=1; warmup=0; rounds=1
    latency_secs=1; latency_rounds=1; streams=10; idle_conns=300; load_secs=1
fi
[[ "$suites" == all ]] && suites="throughput,latency,streaming,memory"
declare -A suite_on=()
IFS=',' read -r -a suite_list <<<"$suites"
[[ ${#suite_list[@]} -gt 0 ]] || die "--suite needs at least one of throughput,latency,streaming,memory"
for s in "${suite_list[@]}"; do
    case "$s" in throughput|latency|streaming|memory) suite_on[$s]=1 ;; *) die "unknown suite '$s'" ;; esac
done
has_suite() { [[ -n "${suite_on[$1]:-}" ]]; }
[[ $streams -ge 1 && $latency_secs -ge 1 && $latency_rounds -ge 1 && $load_secs -ge 1 && $idle_conns -ge 1 ]] \
    || die "--streams/--latency-secs/--latency-rounds/--load-secs/--idle-conns must be >= 1"
[[ $token_ms -ge 1 ]] || die "--token-ms must be >= 1 (the pacing check needs a pace)"
[[ $duration -ge 1 ]] || die "--duration must be >= 1"
[[ $rounds -ge 1 && $connections -ge 1 && $threads -ge 1 ]] || die "--rounds/--connections/--threads must be >= 1"
[[ $threads -le $connections ]] || die "--threads must not exceed --connections"
[[ $portkey == 1 && ",$targets," != *",portkey,"* ]] && targets="$targets,portkey"
IFS=',' read -r -a target_list <<<"$targets"
for t in "${target_list[@]}"; do
    case "$t" in direct|spillway|nginx|haproxy|portkey) ;; *) die "unknown target '$t'" ;; esac
done
has_target() { [[ ",$targets," == *",$1,"* ]]; }
if { has_suite latency || has_suite streaming; } && ! has_target direct; then
    die "the latency and streaming suites need the 'direct' target (their reference)"
fi

for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
for t in "${target_list[@]}"; do
    case "$t" in
        nginx) command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)" ;;
        haproxy) command -v haproxy >/dev/null || die "haproxy is not installed" ;;
        portkey) command -v node >/dev/null || die "node is not installed (needed for --portkey)" ;;
    esac
done
if has_suite latency || has_suite streaming || has_suite memory; then
    command -v python3 >/dev/null || die "python3 is not installed (the latency/streaming/memory suites use it)"
fi
if { has_suite latency && [[ $latency_one_cpu == 1 ]]; } || { has_suite streaming && [[ $streaming_one_cpu == 1 ]]; }; then
    command -v taskset >/dev/null || die "taskset is not installed (util-linux; or --no-latency-one-cpu / --no-streaming-one-cpu)"
fi
if has_suite memory; then
    # Every idle client connection is a descriptor in the client and in the proxy.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    fd_limit="$(ulimit -n)"
    [[ "$fd_limit" == unlimited || $idle_conns -le $((fd_limit - 1500)) ]] \
        || die "--idle-conns $idle_conns needs a descriptor limit above $((idle_conns + 1500)); ulimit -n is $fd_limit"
fi
# Connection limit of every proxy: as before (4096) unless the memory suite needs more.
conn_limit=4096
if has_suite memory && [[ $((idle_conns + 1024)) -gt $conn_limit ]]; then conn_limit=$((idle_conns + 1024)); fi

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
    # The suites' clients and RSS sampler (bench/tools/*.py), when one is running.
    [[ -z "${bg_job:-}" ]] || kill -TERM "$bg_job" 2>/dev/null || true
    [[ -z "${sampler_job:-}" ]] || kill -TERM "$sampler_job" 2>/dev/null || true
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

read -r mock_port spillway_port nginx_port haproxy_port portkey_port paced_port <<<"$(free_ports 6)"

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

# Portkey's open-source gateway: provider azure-openai, its custom_host pointing at the mock, so it
# sends the same Azure URL and api-key as nginx and HAProxy do. It has no client keys of its own
# (the region key travels in its config header); the client's api-key is sent and ignored.
portkey_config() {   # PORT [DEPLOYMENT]
    printf '{"provider":"azure-openai","api_key":"%s","resource_name":"bench","deployment_id":"%s","api_version":"2024-10-21","custom_host":"http://127.0.0.1:%s/openai"}' \
        "$upstream_key" "${2:-gpt4o}" "$1"
}
url_of[portkey]="http://127.0.0.1:$portkey_port$openai_path"
key_of[portkey]="$client_key"
# One extra request header per target ("name: value"), sent by probe, wrk and the suites' clients.
declare -A hdr_of=([portkey]="x-portkey-config: $(portkey_config "$mock_port")")

# One POST; prints the status code. The body is the same one wrk sends (model gpt-4o).
probe() {
    local target="$1" extra=()
    [[ -z "${hdr_of[$target]:-}" ]] || extra=(-H "${hdr_of[$target]}")
    curl -s -m 2 -o "$tmp/probe-$target.body" -D "$tmp/probe-$target.headers" -w '%{http_code}' \
        -H "content-type: application/json" -H "api-key: ${key_of[$target]}" "${extra[@]}" \
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
# With the streaming suite the same process serves a second region, "paced": same key and
# deployment, first event after ttft_ms, then one token every token_ms.
paced_region=""
if has_suite streaming; then
    paced_region=",
    { \"name\": \"paced\", \"address\": \"127.0.0.1\", \"port\": $paced_port, \"api_key\": \"$upstream_key\",
      \"ttft_ms\": $ttft_ms, \"token_ms\": $token_ms, \"completion_tokens\": $stream_tokens,
      \"deployments\": [ { \"name\": \"gpt4o-paced\", \"model\": \"gpt-4o\" } ] }"
fi
cat >"$tmp/mock.json" <<EOF
{
  "threads": 1,
  "regions": [
    { "name": "bench", "address": "127.0.0.1", "port": $mock_port, "api_key": "$upstream_key",
      "ttft_ms": 0, "token_ms": 0, "completion_tokens": 16,
      "deployments": [ { "name": "gpt4o", "model": "gpt-4o" } ] }$paced_region
  ]
}
EOF
log "starting spillway-mock on 127.0.0.1:$mock_port${paced_region:+ (paced region on :$paced_port)}"
"$bin_dir/spillway-mock" --config "$tmp/mock.json" --log-level warn >"$tmp/mock.out" 2>"$tmp/mock.err" &
pid_of[mock]=$!
wait_ready direct mock
# The control port (ephemeral) from the mock's start-up line: stats for the reuse figures.
control_port="$(head -n 1 "$tmp/mock.out" | jq -r '.control_port // empty' 2>/dev/null || true)"
# connections_accepted of the zero-delay region so far (empty when the control API is unreachable).
mock_conns() {
    [[ -n "$control_port" ]] || return 0
    curl -s -m 2 "http://127.0.0.1:$control_port/regions/bench/stats" 2>/dev/null | jq -r '.connections_accepted // empty' 2>/dev/null || true
}

# --- spillway, one worker ------------------------------------------------------------------------
start_spillway() {
    local spillway_limits="" spillway_paced=""
    has_suite memory && spillway_limits="
  \"limits\": { \"max_connections\": $conn_limit },"
    has_suite streaming && spillway_paced=",
    { \"name\": \"paced\", \"endpoint\": \"http://127.0.0.1:$paced_port\", \"api_key\": \"$upstream_key\",
      \"deployments\": [ { \"model\": \"gpt-4o-paced\", \"name\": \"gpt4o-paced\" } ] }"
    cat >"$tmp/spillway.json" <<EOF
{
  "listen": { "address": "127.0.0.1", "port": $spillway_port },
  "admin": { "address": "127.0.0.1", "port": 0 },
  "workers": 1,
  "auth": { "mode": "keys", "keys": [ { "name": "bench", "key": "$client_key" } ] },
  "regions": [
    { "name": "bench", "endpoint": "http://127.0.0.1:$mock_port", "api_key": "$upstream_key",
      "deployments": [ { "model": "gpt-4o", "name": "gpt4o" } ] }$spillway_paced
  ],$spillway_limits
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
    local rlimit="" paced_upstream="" paced_location=""
    has_suite memory && rlimit="worker_rlimit_nofile $((conn_limit + 100));"
    if has_suite streaming; then
        paced_upstream="upstream paced_upstream { server 127.0.0.1:$paced_port; keepalive 64; keepalive_requests 1000000; }"
        # SSE needs proxy_buffering off in nginx, or events wait in its buffers.
        paced_location="location /paced/ {
            proxy_pass http://paced_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header api-key \"$upstream_key\";
            proxy_buffering off;
        }"
    fi
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.err warn;
$rlimit
events { worker_connections $conn_limit; }
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
    $paced_upstream
    server {
        listen 127.0.0.1:$nginx_port;
        $paced_location
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
    local strict="" paced_acl="" paced_backend=""
    # HAProxy wants 2 descriptors per maxconn; the hard limit here may be lower than that for the
    # memory suite, so it must not refuse to start (idle clients need one descriptor each).
    has_suite memory && strict="    no strict-limits"
    if has_suite streaming; then
        paced_acl="    use_backend paced if { path_beg /paced/ }"
        # Without http-no-delay HAProxy sends with MSG_MORE and the kernel holds back small SSE
        # events; its manual recommends the option for interactive traffic such as this.
        paced_backend="backend paced
    option http-no-delay
    http-request replace-path /paced(/.*) \\1
    http-request set-header api-key $upstream_key
    server paced 127.0.0.1:$paced_port"
    fi
    cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $conn_limit
$strict
    pidfile $tmp/haproxy.pid

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always

frontend bench
    bind 127.0.0.1:$haproxy_port
$paced_acl
    default_backend mock

backend mock
    # Replaces the client's api-key, as spillway does with the region key.
    http-request set-header api-key $upstream_key
    server mock 127.0.0.1:$mock_port

$paced_backend
EOF
    haproxy -c -q -f "$tmp/haproxy.cfg" >"$tmp/haproxy.err" 2>&1 || fail_start haproxy "rejected its config"
    log "starting haproxy (nbthread 1) on 127.0.0.1:$haproxy_port"
    haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.out" 2>>"$tmp/haproxy.err" &
    pid_of[haproxy]=$!
    wait_ready haproxy haproxy
}

# --- Portkey's AI gateway (Node, one process) ---------------------------------------------------
portkey_entry="$BENCH_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"
start_portkey() {
    if [[ ! -f "$portkey_entry" ]]; then
        log "installing Portkey's gateway into bench/portkey (npm ci; log in $tmp/npm-ci.log)"
        (cd "$BENCH_DIR/portkey" && npm ci --no-audit --no-fund) >"$tmp/npm-ci.log" 2>&1 \
            || { tail -n 20 "$tmp/npm-ci.log" >&2; die "npm ci in bench/portkey failed"; }
    fi
    log "starting Portkey gateway $(jq -r .version "$BENCH_DIR/portkey/node_modules/@portkey-ai/gateway/package.json") (node $(node -v)) on port $portkey_port"
    # NODE_ENV=production and --headless: no UI, no log streaming, as it would be deployed. It has
    # no option for the listen address and listens on all of them; only this script talks to it.
    NODE_ENV=production node "$portkey_entry" --port="$portkey_port" --headless >"$tmp/portkey.out" 2>"$tmp/portkey.err" &
    pid_of[portkey]=$!
    wait_ready portkey portkey
}

for t in "${target_list[@]}"; do
    case "$t" in
        spillway) start_spillway ;;
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
        portkey) start_portkey ;;
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

# Resident memory (KiB) summed over processes: VmRSS, and PSS (shared pages split between the
# processes that map them: nginx's master and worker share most of their pages).
rss_kb() {
    local total=0 pid k v u
    for pid in "$@"; do
        while read -r k v u; do
            [[ $k == VmRSS: ]] && { total=$((total + v)); break; }
        done <"/proc/$pid/status" 2>/dev/null || true
    done
    echo "$total"
}
pss_kb() {
    local total=0 pid k v u
    for pid in "$@"; do
        while read -r k v u; do
            [[ $k == Pss: ]] && { total=$((total + v)); break; }
        done <"/proc/$pid/smaps_rollup" 2>/dev/null || true
    done
    echo "$total"
}
declare -A rss_start=() pss_start=()

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

for t in "${target_list[@]}"; do
    rss_start[$t]="$(rss_kb $(pids_of_target "$t"))"; pss_start[$t]="$(pss_kb $(pids_of_target "$t"))"
done

# Prepended to wrk's command line: the latency suite's one-CPU pass pins wrk with it.
wrk_prefix=()

# Runs wrk once; prints the BENCH_JSON object (with CPU figures added) on stdout. Must run in a
# subshell of its own (measure() starts it in the background) so that read_child_ticks sees
# (almost) only wrk. Optional 5th/6th arguments: connections and threads (default the options').
run_wrk() {
    local target="$1" secs="$2" strict="$3" out="$4" conns="${5:-$connections}" thr="${6:-$threads}"
    local pids cpu0 cpu1 mcpu0 mcpu1 wcpu0 wcpu1 busy0 all0 busy1 all1 child_ticks=0
    pids="$(pids_of_target "$target")"
    cpu0="$(cpu_ticks $pids)"; mcpu0="$(cpu_ticks "${pid_of[mock]}")"; read_child_ticks; wcpu0=$child_ticks
    read -r busy0 all0 <<<"$(machine_ticks)"
    # In the background + wait, and its pid on file, so that on_exit can stop it.
    BENCH_KEY="${key_of[$target]}" BENCH_STRICT="$strict" BENCH_EXTRA_HEADER="${hdr_of[$target]:-}" \
        "${wrk_prefix[@]}" wrk -t"$thr" -c"$conns" -d"${secs}s" --timeout 5s --latency \
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
order_json_early="$(printf '%s\n' "${target_list[@]}" | jq -R . | jq -sc .)"
failed=0
declare -A failed_target=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

throughput_rounds=$rounds
has_suite throughput || throughput_rounds=0
for ((round = 1; round <= throughput_rounds; round++)); do
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
        conns0="$(mock_conns)"
        measure "$t" "$duration" "$strict" "$tmp/wrk-$t-r$round.txt" || { failed=1; failed_target[$t]=1; continue; }
        conns1="$(mock_conns)"
        r="$measured"
        # Upstream connection reuse: connections the mock accepted during the measured run. For
        # "direct" these are wrk's own client connections.
        if [[ -n "$conns0" && -n "$conns1" ]]; then
            r="$(jq -c --argjson n "$((conns1 - conns0))" '. + {upstream: {new_connections: $n,
                    per_1k_requests: (if .requests > 0 then $n * 1000 / .requests else null end),
                    reuse_pct: (if .requests > 0 then 100 * (1 - $n / .requests) else null end)}}' <<<"$r")"
        fi
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

# ------------------------------------------------------------------------------------------------
# Suites beyond throughput. Each writes $tmp/suite-NAME.json; problems set failed=1.

# Runs a command in the background and waits for it (signals are then handled at once, and
# on_exit can stop it). Returns its exit status.
bg_job=""
run_bg() {
    local rc=0
    "$@" &
    bg_job=$!
    wait "$bg_job" || rc=$?
    bg_job=""
    return "$rc"
}

# host, port and path of a target's URL
url_parts() { [[ "$1" =~ ^http://([^:/]+):([0-9]+)(/.*)$ ]] && echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"; }

# Peak RSS (KiB, summed over the given pids) every 100 ms into $tmp/rss-peak until stopped.
sampler_job=""
rss_sampler() {
    local peak=0 total
    while :; do
        total="$(rss_kb "$@")"
        if ((total > peak)); then peak=$total; echo "$peak" >"$tmp/rss-peak"; fi
        sleep 0.1
    done
}

# --- latency at one connection --------------------------------------------------------------------
# Every process the benchmark started that a request passes through (or that sits idle beside
# it): the mock, every target's processes with all their threads, and their children.
bench_pids() {
    local t pid
    for pid in "${pid_of[mock]}" $(for t in "${target_list[@]}"; do pids_of_target "$t"; done); do
        echo "$pid"; pgrep -P "$pid" || true
    done | sort -un
}

# Sets the CPU affinity (a taskset CPU list) of every bench_pids process and of its threads.
set_affinity() {
    local cpus="$1" pid
    for pid in $(bench_pids); do
        taskset -a -p -c "$cpus" "$pid" >/dev/null || { echo "run.sh: taskset -a -p -c $cpus $pid failed" >&2; return 1; }
    done
}

# One pass of the latency suite: --latency-rounds rounds, every target in turn in each, into
# $1 (JSON lines); then per target the median round's p50/p90/p99 and the added latency vs
# "direct" per round (same round, so the same machine conditions), median over rounds, into $2.
latency_pass() {
    local runs="$1" summary="$2" label="$3" round t p
    : >"$runs"
    for ((round = 1; round <= latency_rounds; round++)); do
        for t in "${target_list[@]}"; do
            log "latency${label:+ ($label)} round $round/$latency_rounds: $t, wrk -t1 -c1 for ${latency_secs}s"
            measure "$t" "$latency_secs" 0 "$tmp/lat-$t-r$round${label:+-one-cpu}.txt" 1 1 || { failed=1; continue; }
            p="$(problems_of "$measured")"
            [[ -z "$p" ]] || { echo "run.sh: FAIL $t (latency${label:+, $label}): $(echo "$p" | tr '\n' ';')" >&2; failed=1; }
            jq -c --arg t "$t" --argjson round "$round" --arg p "$p" \
                '{target: $t, round: $round, ok: ($p == ""), problems: $p, rps, latency_us, cpu}' <<<"$measured" >>"$runs"
        done
    done
    jq -s -c --argjson order "$order_json_early" --argjson secs "$latency_secs" --argjson rounds "$latency_rounds" --arg cpus "$label" '
        def med: sort | .[(length - 1) / 2 | floor];
        (map(select(.target == "direct")) | map({key: (.round | tostring), value: .latency_us}) | from_entries) as $d
        | {secs_per_run: $secs, rounds: $rounds, runs: .}
          + (if $cpus != "" then {cpus: $cpus} else {} end)
          + {targets: [ $order[] as $t | [ .[] | select(.target == $t) ] | select(length > 0)
             | { target: $t, ok: all(.ok),
                 rps: (map(.rps) | med),
                 p50_us: (map(.latency_us.p50) | med), p90_us: (map(.latency_us.p90) | med),
                 p99_us: (map(.latency_us.p99) | med), p999_us: (map(.latency_us.p999) | med),
                 cpu_us_per_req: (map(.cpu.target_us_per_req // empty) | if length > 0 then med else null end),
                 added_p50_us: (if $t == "direct" then null else [ .[] | select($d[.round | tostring]) | .latency_us.p50 - $d[.round | tostring].p50 ] | if length > 0 then med else null end end),
                 added_p99_us: (if $t == "direct" then null else [ .[] | select($d[.round | tostring]) | .latency_us.p99 - $d[.round | tostring].p99 ] | if length > 0 then med else null end end) } ] }
    ' "$runs" >"$summary"
}

# The one-CPU passes use the last CPU this script may use; the processes get this script's own
# CPU list back afterwards.
all_cpus="$(taskset -c -p $$ | sed 's/.*: //')"
one_cpu="$(python3 -c 'import os; print(max(os.sched_getaffinity(0)))')"

if has_suite latency; then
    latency_pass "$tmp/latency.jsonl" "$tmp/suite-latency.json" ""
    if [[ $latency_one_cpu == 1 ]]; then
        if set_affinity "$one_cpu"; then
            wrk_prefix=(taskset -c "$one_cpu")
            latency_pass "$tmp/latency-one-cpu.jsonl" "$tmp/suite-latency_one_cpu.json" "CPU $one_cpu"
            wrk_prefix=()
        else
            failed=1
        fi
        set_affinity "$all_cpus" || failed=1
    fi
fi

# --- streaming from the paced region ----------------------------------------------------------------
if has_suite streaming; then
    paced_path="/openai/deployments/gpt4o-paced/chat/completions?api-version=2024-10-21"
    stream_body='{"model":"gpt-4o-paced","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are a terse assistant."},{"role":"user","content":"Summarise the benefits of multi-region load balancing in one line."}],"max_tokens":64}'
    : >"$tmp/stream-targets.jsonl"
    for t in "${target_list[@]}"; do
        case "$t" in
            direct) port=$paced_port; path="$paced_path"; key="$upstream_key"; extra="" ;;
            spillway) port=$spillway_port; path="$openai_path"; key="$client_key"; extra="" ;;
            nginx) port=$nginx_port; path="/paced$paced_path"; key="$client_key"; extra="" ;;
            haproxy) port=$haproxy_port; path="/paced$paced_path"; key="$client_key"; extra="" ;;
            portkey) port=$portkey_port; path="$openai_path"; key="$client_key"; extra="$(portkey_config "$paced_port" gpt4o-paced)" ;;
        esac
        jq -n -c --arg name "$t" --argjson port "$port" --arg path "$path" --arg key "$key" --arg extra "$extra" --arg body "$stream_body" \
            '{name: $name, host: "127.0.0.1", port: $port, path: $path, body: $body,
              headers: ({"api-key": $key} + (if $extra != "" then {"x-portkey-config": $extra} else {} end))}' >>"$tmp/stream-targets.jsonl"
    done
    # upstream_port: sse_streams.py also times the segments on lo (kernel timestamps; root only).
    # own_pids: the processes being measured; any other task's run inside a stream's relay window
    # is reported as an intrusion (bench/tools/cpu_trace.py).
    own_pids="${pid_of[mock]}"   # the upstream, whether or not 'direct' is a target
    for t in "${target_list[@]}"; do own_pids+=" $(pids_of_target "$t")"; done
    own_pids_json="$(printf '%s\n' $own_pids | jq -s -c 'map(tonumber)')"
    jq -s -c --argjson n "$streams" --argjson up "$paced_port" --argjson own "$own_pids_json" \
        '{streams: $n, reference: "direct", upstream_port: $up, own_pids: $own, targets: .}' \
        "$tmp/stream-targets.jsonl" >"$tmp/stream-spec.json"
    # One pass: $1 = suite name (its output is $tmp/suite-$1.json), $2 = label of the CPUs
    # ("" when shared), then the command prefix sse_streams.py runs under (its capture child too).
    streaming_pass() {
        local name="$1" label="$2"
        shift 2
        log "streaming${label:+ ($label)}: $streams streams per target, interleaved, from the paced region (ttft ${ttft_ms} ms, ${token_ms} ms per token, $stream_tokens tokens)"
        if ! run_bg "$@" python3 "$BENCH_DIR/tools/sse_streams.py" "$tmp/stream-spec.json" >"$tmp/suite-$name.json" 2>"$tmp/$name.err"; then
            echo "run.sh: FAIL $name: $(jq -r '[.targets | to_entries[] | select(.value.errors > 0 or .value.events_mismatched > 0 or .value.streams_without_done > 0 or .value.completed == 0) | "\(.key): \(.value.errors) errors, \(.value.events_mismatched) streams with missing/extra events, \(.value.streams_without_done) without [DONE] \(.value.first_error)"] | join("; ")' "$tmp/suite-$name.json" 2>/dev/null || cat "$tmp/$name.err")" >&2
            failed=1
        fi
        [[ -s "$tmp/suite-$name.json" ]] || echo '{}' >"$tmp/suite-$name.json"
        jq -c --argjson ttft "$ttft_ms" --argjson tok "$token_ms" --argjson n "$stream_tokens" --arg cpus "$label" \
            '. + {ttft_ms: $ttft, token_ms: $tok, completion_tokens: $n} + (if $cpus != "" then {cpus: $cpus} else {} end)' \
            "$tmp/suite-$name.json" >"$tmp/suite-$name.tmp" && mv "$tmp/suite-$name.tmp" "$tmp/suite-$name.json"
    }
    streaming_pass streaming ""
    if [[ $streaming_one_cpu == 1 ]]; then
        if set_affinity "$one_cpu"; then
            streaming_pass streaming_one_cpu "CPU $one_cpu" taskset -c "$one_cpu"
        else
            failed=1
        fi
        set_affinity "$all_cpus" || failed=1
    fi
fi

# --- memory: idle, with N idle keep-alive connections, under load ------------------------------------
if has_suite memory; then
    : >"$tmp/memory.jsonl"
    idle_body='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
    for t in "${target_list[@]}"; do
        pids="$(pids_of_target "$t")"
        read -r host port path <<<"$(url_parts "${url_of[$t]}")"
        hdr_args=(--header "api-key: ${key_of[$t]}")
        [[ -z "${hdr_of[$t]:-}" ]] || hdr_args+=(--header "${hdr_of[$t]}")
        # First under load (before the idle connections, whose memory an allocator may keep):
        # peak RSS while wrk (--connections) runs for --load-secs.
        rm -f "$tmp/rss-peak"
        rss_sampler $pids &
        sampler_job=$!
        load_json='{}'
        if measure "$t" "$load_secs" 0 "$tmp/memload-$t.txt"; then
            load_json="$measured"
            p="$(problems_of "$load_json")"
            [[ -z "$p" ]] || { echo "run.sh: FAIL $t (memory under load): $(echo "$p" | tr '\n' ';')" >&2; failed=1; }
        else
            failed=1
        fi
        kill -TERM "$sampler_job" 2>/dev/null || true
        wait "$sampler_job" 2>/dev/null || true
        sampler_job=""
        peak="$(cat "$tmp/rss-peak" 2>/dev/null || echo 0)"
        sleep 1
        # Idle after load, then N idle keep-alive connections.
        rss0="$(rss_kb $pids)"; pss0="$(pss_kb $pids)"
        # Connections already established to the port (the proxies' pooled connections, for the mock).
        held0="$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)"
        log "memory: $t: opening $idle_conns idle keep-alive connections (one request each)"
        python3 "$BENCH_DIR/tools/idle_conns.py" --host "$host" --port "$port" --path "$path" --n "$idle_conns" \
            "${hdr_args[@]}" --body "$idle_body" --hold 600 >"$tmp/idle-$t.out" 2>"$tmp/idle-$t.err" &
        bg_job=$!
        for ((i = 0; i < 1800; i++)); do
            grep -q '"ready"' "$tmp/idle-$t.out" 2>/dev/null && break
            kill -0 "$bg_job" 2>/dev/null || break
            sleep 0.1
        done
        sleep 1   # let the proxy settle (its last answers written, buffers released)
        held="$(( $(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l) - held0 ))"
        rss1="$(rss_kb $pids)"; pss1="$(pss_kb $pids)"
        idle_line="$(grep '"ready"' "$tmp/idle-$t.out" 2>/dev/null || echo '{}')"
        kill -TERM "$bg_job" 2>/dev/null || true
        wait "$bg_job" 2>/dev/null || true
        bg_job=""
        sleep 1
        rss2="$(rss_kb $pids)"
        if ! jq -e --argjson n "$idle_conns" '.ok == $n' <<<"$idle_line" >/dev/null; then
            echo "run.sh: FAIL $t (memory): only $(jq -r '.ok // 0' <<<"$idle_line") of $idle_conns idle connections opened: $(jq -r '.first_error // empty' <<<"$idle_line") $(tail -n 3 "$tmp/idle-$t.err")" >&2
            failed=1
        fi
        jq -n -c --arg t "$t" --argjson rs "${rss_start[$t]}" --argjson ps "${pss_start[$t]}" \
            --argjson r0 "$rss0" --argjson p0 "$pss0" --argjson r1 "$rss1" --argjson p1 "$pss1" --argjson r2 "$rss2" \
            --argjson held "$held" --argjson n "$idle_conns" --argjson idle "$idle_line" --argjson peak "$peak" \
            --argjson load "$load_json" --argjson nproc "$(wc -w <<<"$pids")" \
            '{target: $t, processes: $nproc, rss_start_kb: $rs, pss_start_kb: $ps, rss_before_kb: $r0, pss_before_kb: $p0,
              idle_requested: $n, idle_opened_ok: ($idle.ok // 0), idle_open_s: ($idle.open_s // null),
              idle_held: $held, rss_idle_conns_kb: $r1, pss_idle_conns_kb: $p1, rss_after_close_kb: $r2,
              kb_per_conn: (if $held > 0 then ($r1 - $r0) / $held else null end),
              pss_kb_per_conn: (if $held > 0 then ($p1 - $p0) / $held else null end),
              rss_load_peak_kb: $peak, load_rps: ($load.rps // null), load_connections: '"$connections"', load_secs: '"$load_secs"'}' >>"$tmp/memory.jsonl"
        log "  $t: under load (peak) $((peak / 1024)) MiB, idle after load $((rss0 / 1024)) MiB, with $held idle connections $((rss1 / 1024)) MiB"
        alive "$([[ $t == direct ]] && echo mock || echo "$t")" || { echo "run.sh: FAIL $t: process died during the memory suite" >&2; failed=1; }
    done
    jq -s -c --argjson n "$idle_conns" '{idle_conns: $n, targets: .}' "$tmp/memory.jsonl" >"$tmp/suite-memory.json"
fi

suites_json="$(jq -n -c '{}')"
for s in latency latency_one_cpu streaming streaming_one_cpu memory; do
    if [[ -s "$tmp/suite-$s.json" ]]; then
        suites_json="$(jq -c --arg s "$s" --slurpfile v "$tmp/suite-$s.json" '. + {($s): $v[0]}' <<<"$suites_json")"
    fi
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
    --arg portkey_v "$(has_target portkey && echo "@portkey-ai/gateway $(jq -r .version "$BENCH_DIR/portkey/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null) (@hono/node-server $(jq -r .version "$BENCH_DIR/portkey/node_modules/@hono/node-server/package.json" 2>/dev/null)), node $(node -v)" || true)" \
    --arg suites "$(IFS=,; echo "${suite_list[*]}")" --argjson suites_json "$suites_json" \
    '{started: $started, command: $cmd, git: $rev, build: $build, binaries: $binaries,
      machine: {nproc: $nproc, cpu: $cpu, kernel: $kernel, loadavg_before: $load_before, loadavg_after: $load_after},
      versions: ({nginx: $nginx_v, haproxy: $haproxy_v, wrk: $wrk_v} + (if $portkey_v != "" then {portkey: $portkey_v} else {} end)),
      params: {duration_s: $duration, warmup_s: $warmup, connections: $conns, wrk_threads: $threads,
               rounds: $rounds, smoke: ($smoke == 1), body: "~200-byte chat.completions JSON, non-streaming",
               upstream: "spillway-mock, 1 thread, ttft 0 ms, token pace 0 ms, 16 completion tokens, no quota",
               suites: ($suites | split(","))},
      failed: ($failed == 1), summary: $summary, rounds: $rounds_raw, suites: $suites_json}' >"$tmp/result.json"

table="$(jq -r '
    def ms: . / 1000 | (. * 100 | round) / 100 | tostring;
    def r2: (. * 100 | round) / 100 | tostring;
    "| target | path sent | req/s | × nginx | p50 ms | p99 ms | target CPU µs/req | target CPU % | other load (CPUs) | new upstream conns / 1k req |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    (.summary.targets[] |
        "| \(.target)\(if .ok then "" else " **FAILED**" end) | \(if .target == "spillway" then "/v1/chat/completions" elif .target == "portkey" then "/v1/chat/completions + x-portkey-config" else "/openai/deployments/gpt4o/…" end) | \(.rps | floor) | \(if .ratio_to_nginx then (.ratio_to_nginx | r2) else "–" end) | \(.latency_us.p50 | ms) | \(.latency_us.p99 | ms) | \(if .cpu.target_us_per_req then (.cpu.target_us_per_req | floor | tostring) else "–" end) | \(.cpu.target_s / .duration_s * 100 | round) | \(if .cpu.other_processes_cpus then (.cpu.other_processes_cpus | r2) else "–" end) | \(if .target == "direct" or .upstream.per_1k_requests == null then "–" else (.upstream.per_1k_requests * 1000 | round / 1000 | tostring) end) |")
' "$tmp/result.json")"
has_suite throughput || table="(throughput suite not run)"

verdict="$(jq -r '
    if .summary.spillway_vs_nginx == null then "spillway vs nginx: not measured"
    else "spillway / nginx requests/s = \(.summary.spillway_vs_nginx * 100 | round / 100) — budget ≥ \(.summary.budget): \(if .summary.budget_met then "MET" else "NOT MET" end)"
    end' "$tmp/result.json")"
has_suite throughput || verdict=""

md="$(jq -r --arg table "$table" --arg verdict "$verdict" '
"# spillway benchmark\(if .params.smoke then " (smoke)" else "" end)

- when: \(.started) · git \(.git) · build: \(.build)
- binaries: \(.binaries)
- command: `\(.command)`
- machine: \(.machine.nproc) CPUs, \(.machine.cpu), kernel \(.machine.kernel); load average \(.machine.loadavg_before) before, \(.machine.loadavg_after) after
- load: wrk \(.versions.wrk), \(.params.wrk_threads) thread(s), \(.params.connections) connections, \(.params.duration_s) s per run after \(.params.warmup_s) s warm-up, \(.params.rounds) round(s) (median round shown); \(.params.body)
- upstream: \(.params.upstream); proxies: spillway 1 worker, nginx \(.versions.nginx) worker_processes 1 + keepalive 64, HAProxy \(.versions.haproxy) nbthread 1 + http-reuse always\(if .versions.portkey then ", Portkey \(.versions.portkey) (one Node process, provider azure-openai, custom_host = the mock)" else "" end)
- suites: \(.params.suites | join(", "))
- all on loopback on the same machine: wrk, the upstream and the proxy share the CPUs; other processes kept \([.rounds[].cpu.other_processes_cpus // empty] | if length > 0 then (add / length * 100 | round / 100 | tostring) else "?" end) of the \(.machine.nproc) CPUs busy on average during the measured runs

\($table)

\($verdict)

target CPU = user+system CPU time of the proxy process (nginx: master + worker; `direct`: the mock) during the measured run, per request and as % of one CPU. other load = how many CPUs the rest of the machine (not wrk, the mock or the target) kept busy on average during the run: the noise from other work.
\(if .failed then "\n**FAILED: at least one target returned non-200 answers, socket errors, or no numbers — see the run output.**\n" else "" end)"' "$tmp/result.json")"
# The other suites' sections (and the targets verdicts, also written into result.json).
if [[ "$suites_json" != "{}" ]] || { has_suite throughput && command -v python3 >/dev/null; }; then
    if suite_md="$(python3 "$BENCH_DIR/tools/report.py" "$tmp/result.json")"; then
        [[ -z "$suite_md" ]] || md="$md

$suite_md"
    else
        echo "run.sh: bench/tools/report.py failed" >&2; failed=1
    fi
fi

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
has_suite throughput || target_list=()
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
