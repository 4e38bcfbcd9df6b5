#!/usr/bin/env bash
# Installs the dependencies, builds, and shows resilientqueue at work: a live
# 30 fps H.264 camera (1 s GOPs) feeds a consumer that can only take 20 frames
# a second.  The queue fills up to its limit (here 2 s), then drops whole GOPs:
# watch the `resilientqueue-dropped` messages, and note that the decoder never
# complains, because every gap restarts on a keyframe.  Stops after 20 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
. "$root/scripts/env.sh" "$root/build"
exec gst-launch-1.0 -m \
  videotestsrc is-live=true num-buffers=600 pattern=ball \
  ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! clockoverlay \
  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
  ! h264parse \
  ! resilientqueue max-size-time=2000000000 \
  ! identity sleep-time=50000 \
  ! avdec_h264 \
  ! fakesink sync=false 2>&1 \
  | grep --line-buffered -E 'resilientqueue-dropped|WARNING|ERROR|EOS|Execution ended'
