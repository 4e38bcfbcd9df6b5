#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the test suite.
# This is the README's test command and what CI runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
meson test -C "$root/build" --print-errorlogs --num-processes "$(nproc)"
