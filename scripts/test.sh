#!/usr/bin/env bash
# Fresh machine -> every test: installs what is missing, then builds and runs
#   1. unit + integration tests (Release),
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer (Debug),
#   3. end-to-end tests with the official `openai` npm SDK against the real binaries,
#   4. a smoke run of the benchmarks (every suite: spillway, nginx, HAProxy; microbenchmarks), so they never rot.
set -euo pipefail
cd "$(dirname "$0")/.."
SPILLWAY_SETUP_BENCH=1 scripts/setup.sh

echo "== release build and tests"
scripts/build.sh release
ctest --test-dir build/release --output-on-failure --timeout 300

echo "== asan/ubsan build and tests"
scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure --timeout 600

echo "== end-to-end tests (openai npm SDK)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
SPILLWAY_BIN="$PWD/build/release/bin/spillway" SPILLWAY_MOCK_BIN="$PWD/build/release/bin/spillway-mock" \
  node --test tests/e2e/

echo "== benchmark smoke run (checks that it runs, not how fast)"
python3 -m unittest discover -s bench/tools -p 'test_*.py'
# every suite once, briefly (throughput, latency, streaming with its segment capture and scheduler
# trace, memory), and the plots; Portkey's gateway is left to the full runs
bench/run-all.sh --smoke --no-build --no-portkey
build/release/bin/bench_hot_path --benchmark_min_time=0.01
