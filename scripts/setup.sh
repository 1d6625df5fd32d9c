#!/usr/bin/env bash
# Installs what building, testing and benchmarking spillway needs on Debian 12 (idempotent).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libssl-dev nlohmann-json3-dev prometheus-cpp-dev libspdlog-dev libcli11-dev libjemalloc-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  nodejs npm curl ca-certificates openssl
  chromium   # the dashboard test renders the admin page in headless Chromium
)
[ "${SPILLWAY_SETUP_BENCH:-0}" = 1 ] && packages+=(wrk nginx-light haproxy gnuplot-nox jq python3 iproute2 procps)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs from another source may provide npm itself.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
