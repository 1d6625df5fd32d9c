#!/usr/bin/env bash
# Fresh machine -> running demo: installs what is missing, builds, runs `spillway --demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/release/bin/spillway --demo "$@"
