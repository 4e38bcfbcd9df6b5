#!/usr/bin/env bash
# Installs the dependencies, builds, and runs camrelay on its embedded default:
# the synthetic test camera, served at rtsp://127.0.0.1:8554/test.  Open that
# URL in VLC (Media > Open Network Stream) or `ffplay rtsp://127.0.0.1:8554/test`.
# Extra arguments go to camrelay (e.g. -c camrelay.toml).  Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
. "$root/scripts/env.sh" "$root/build"
exec "$root/build/launcher/camrelay" "$@"
