#!/usr/bin/env bash
# bench/run-all.sh — every benchmark dimension in one command, all targets side by side in one run:
#
#   bench/run.sh --suite all --portkey [your options]   throughput + upstream reuse, latency at one
#                                                       connection, streaming (TTFT, pacing), memory
#   bench/plot.sh <result> bench/results                throughput.png, added-latency.png
#
# Usage: bench/run-all.sh [--no-portkey] [any bench/run.sh option]   e.g.
#   bench/run-all.sh --no-build --tag full
#   bench/run-all.sh --smoke --no-build            (quick check that every part still works)
# Exit status: bench/run.sh's (plots are skipped, with a warning, when gnuplot is missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
portkey=(--portkey)
smoke=0
for a in "$@"; do
    case "$a" in
        --no-portkey) portkey=() ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --smoke) smoke=1; args+=("$a") ;;
        *) args+=("$a") ;;
    esac
done

printf '[run-all] load average now: %s (other work on the machine shows in every "other load" column)\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
marker="$(mktemp /tmp/spillway-run-all.XXXXXX)"
trap 'rm -f "$marker"' EXIT
rc=0
"$ROOT/bench/run.sh" --suite all "${portkey[@]}" "${args[@]}" || rc=$?

result="$ROOT/bench/results/latest.json"
[[ $smoke == 1 ]] && result="$ROOT/bench/results/smoke.json"
if [[ $rc -ne 2 && -f "$result" && "$result" -nt "$marker" ]]; then
    if command -v gnuplot >/dev/null; then
        if [[ $smoke == 1 ]]; then
            # smoke: only check that the plots can be drawn; results/ keeps the real run's
            plot_dir="$(mktemp -d /tmp/spillway-plots.XXXXXX)"
            "$ROOT/bench/plot.sh" "$result" "$plot_dir" || echo "[run-all] plotting failed" >&2
            rm -rf "$plot_dir"
        else
            "$ROOT/bench/plot.sh" "$result" "$ROOT/bench/results" || echo "[run-all] plotting failed" >&2
        fi
    else
        echo "[run-all] gnuplot is not installed (apt-get install gnuplot-nox): no plots" >&2
    fi
fi
exit "$rc"
