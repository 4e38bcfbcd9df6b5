#!/usr/bin/env bash
# Configures (once) and builds a build tree.  Usage: scripts/build.sh [BUILD_DIR] [meson options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" "$@"
fi
meson compile -C "$build"
