#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the test suite, ending with one
# line 'tests: N passed, N failed'.  This is the README's test command and
# what CI runs first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
status=0
# The opt-in soak (30 min) and network-fault (root) suites are not part of it.
meson test -C "$root/build" --print-errorlogs --num-processes "$(nproc)" \
  --no-suite soak --no-suite netfault || status=$?
"$root/scripts/test-summary.py" tests "$root/build" || status=1
exit $status
