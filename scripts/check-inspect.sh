#!/usr/bin/env bash
# Inspects the built plugin and each of its elements; fails on any GLib
# WARNING or CRITICAL, or if an element is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/scripts/env.sh" "$build"
export GST_REGISTRY_1_0="$build/registry-inspect.bin"
status=0
for target in camrelay resilientqueue camerasrc testcamerasrc gopcache; do
  out=$(gst-inspect-1.0 "$target" 2>&1) || { echo "gst-inspect-1.0 $target failed:"; echo "$out"; status=1; continue; }
  if grep -E 'WARNING|CRITICAL' <<<"$out"; then
    echo "gst-inspect-1.0 $target printed a GLib WARNING or CRITICAL"
    status=1
  else
    echo "gst-inspect-1.0 $target: clean ($(wc -l <<<"$out") lines)"
  fi
done
exit $status
