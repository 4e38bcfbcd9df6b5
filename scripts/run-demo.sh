#!/usr/bin/env bash
# Installs the dependencies, builds, and shows camerasrc and resilientqueue at
# work.  A synthetic 30 fps H.264 camera drops its connection every 4 s:
# camerasrc reconnects each time (watch the camerasrc-state messages) while its
# output stays one stream.  resilientqueue then feeds a consumer that only takes
# 20 frames a second: it fills to its 2 s limit and drops whole GOPs (watch the
# resilientqueue-dropped messages).  The decoder never reports an error.
# Stops after 20 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
. "$root/scripts/env.sh" "$root/build"
timeout -s INT 20 gst-launch-1.0 -m \
  camerasrc location='test://demo?width=640&height=360&drop-after=4' retry-delay=500000000 \
  ! resilientqueue max-size-time=2000000000 \
  ! identity sleep-time=50000 \
  ! avdec_h264 \
  ! fakesink sync=false 2>&1 \
  | grep --line-buffered -oE 'camerasrc-state, state=\(GstCameraSrcState\)[a-z]+.*reason=\(string\)("[^"]*"|[^,]*)|resilientqueue-dropped.*|WARNING.*|ERROR.*' \
  || true
