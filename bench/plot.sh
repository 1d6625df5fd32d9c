#!/usr/bin/env bash
# bench/plot.sh — draws the charts of one bench/run.sh result with gnuplot.
#
# Usage: bench/plot.sh RESULT.json [OUTDIR]      (OUTDIR defaults to RESULT.json's folder)
#
# Writes, for what the result holds:
#   OUTDIR/throughput.png      requests/s and the proxy's CPU per request, per target
#   OUTDIR/added-latency.png   what each proxy adds to one request (wrk -c1, p50/p99) and to the
#                              first event of a stream (p50/p99: from the segment timestamps on lo
#                              when the run has them, else the difference of TTFT percentiles);
#                              CPUs shared, and every process on one CPU when the run has those
#                              passes; log scale
# Needs gnuplot (apt-get install gnuplot-nox) and jq. Exit 2 when either is missing.
set -euo pipefail

[[ $# -ge 1 && -f "$1" ]] || { echo "usage: bench/plot.sh RESULT.json [OUTDIR]" >&2; exit 2; }
result="$1"
outdir="${2:-$(dirname "$result")}"
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
command -v jq >/dev/null || { echo "plot.sh: jq is not installed" >&2; exit 2; }
mkdir -p "$outdir"
tmp="$(mktemp -d /tmp/spillway-plot.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

when="$(jq -r '"\(.started) · \(.machine.nproc) CPUs · load avg \(.machine.loadavg_before) → \(.machine.loadavg_after) · spillway \(.binaries | split(" ")[1])"' "$result")"
drawn=()

# --- throughput: one row per target: name rps cpu_us_per_req ratio
jq -r '.summary.targets[]? | "\(.target) \(.rps) \(.cpu.target_us_per_req // 0) \(.ratio_to_nginx // 0)"' "$result" >"$tmp/thr.dat"
if [[ -s "$tmp/thr.dat" ]]; then
    conns="$(jq -r '.params.connections' "$result")"
    gnuplot <<EOF
set terminal pngcairo size 1000,420 font "sans,10"
set output "$outdir/throughput.png"
set multiplot layout 1,2 title "spillway vs nginx vs HAProxy vs Portkey — one worker each, zero-delay upstream, wrk -c$conns\n{/*0.8 $when}"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set key off
set xtics nomirror
set title "requests/s (label: × nginx)"
set yrange [0:*]
plot "$tmp/thr.dat" using 2:xtic(1) lc rgb "#4477aa", \
     "" using 0:2:(sprintf("%.0f\n%.2f×", \$2, \$4)) with labels offset 0,1.6 notitle
set title "proxy CPU per request (µs, log scale)"
set logscale y
set yrange [5:*]
plot "$tmp/thr.dat" using 3:xtic(1) lc rgb "#cc6677", \
     "" using 0:3:(sprintf("%.0f", \$3)) with labels offset 0,0.8 notitle
unset multiplot
EOF
    drawn+=("$outdir/throughput.png")
fi

# --- added latency: rows: target lat_p50 lat_p99 one_cpu_p50 one_cpu_p99 ttft_p50 ttft_p99
# one_cpu_ttft_p50 one_cpu_ttft_p99 (µs; "-" when not measured)
jq -r '
    ((.suites.latency.targets // []) | map({key: .target, value: .}) | from_entries) as $l
    | ((.suites.latency_one_cpu.targets // []) | map({key: .target, value: .}) | from_entries) as $o
    | ((.suites.streaming.targets // {})) as $s
    | ((.suites.streaming_one_cpu.targets // {})) as $so
    | ([$l | keys[]] + [$s | keys[]] + [$so | keys[]] | unique) as $names
    | (["spillway", "nginx", "haproxy", "portkey"] | map(select(. as $n | $names | index($n)))) []
    | . as $n
    | ($s[$n].wire_added_ttft_us // $s[$n].added_ttft_us // {}) as $t
    | ($so[$n].wire_added_ttft_us // $so[$n].added_ttft_us // {}) as $to
    | [$n, ($l[$n].added_p50_us // "-"), ($l[$n].added_p99_us // "-"),
       ($o[$n].added_p50_us // "-"), ($o[$n].added_p99_us // "-"), ($t.p50 // "-"), ($t.p99 // "-"),
       ($to.p50 // "-"), ($to.p99 // "-")]
    | map(tostring) | join(" ")
' "$result" >"$tmp/lat.dat"
ttft_how="$(jq -r 'if (.suites.streaming.targets // {} | to_entries | any(.value.wire_added_ttft_us)) then "on the wire (segment timestamps)" else "TTFT percentile − direct" end' "$result")"
if [[ -s "$tmp/lat.dat" ]]; then
    gnuplot <<EOF
set terminal pngcairo size 1400,540 font "sans,10"
set output "$outdir/added-latency.png"
set title "What the proxy adds (µs, log scale; through the proxy − direct to the upstream)\n{/*0.8 $when}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [1:400000]
set grid ytics
set key top left
set datafile missing "-"
set label 1 "TTFT target: 250 µs" at graph 0.005, first 330 left font ",9" tc rgb "#444444"
set arrow 1 from graph 0, first 250 to graph 1, first 250 nohead dt 2 lc rgb "#444444"
# Values <= 1 µs (or negative: within the noise of the direct run) are drawn at 1.
clamp(x) = (x < 1 ? 1 : x)
# Eight bars per proxy, each 1/9 of a cluster wide (gap 1): label i sits at (i - 3.5) / 9.
plot "$tmp/lat.dat" using (clamp(\$2)):xtic(1) title "request, 1 connection: p50" lc rgb "#4477aa", \
     "" using (clamp(\$3)) title "request, 1 connection: p99" lc rgb "#88ccee", \
     "" using (clamp(\$4)) title "request, 1 connection, all on one CPU: p50" lc rgb "#aa3377", \
     "" using (clamp(\$5)) title "request, 1 connection, all on one CPU: p99" lc rgb "#ee99cc", \
     "" using (clamp(\$6)) title "stream, first event ($ttft_how): p50" lc rgb "#228833", \
     "" using (clamp(\$7)) title "stream, first event: p99" lc rgb "#ccbb44", \
     "" using (clamp(\$8)) title "stream, first event, all on one CPU: p50" lc rgb "#117733", \
     "" using (clamp(\$9)) title "stream, first event, all on one CPU: p99" lc rgb "#999933", \
     for [i=0:7] "" using (\$0 + (i - 3.5) / 9.0):(clamp(column(i + 2))):(sprintf("%.0f", column(i + 2))) \
         with labels offset 0,0.6 font ",8" notitle
EOF
    drawn+=("$outdir/added-latency.png")
fi

[[ ${#drawn[@]} -gt 0 ]] || { echo "plot.sh: nothing to draw in $result" >&2; exit 1; }
printf 'plot.sh: wrote %s\n' "${drawn[@]}" >&2
