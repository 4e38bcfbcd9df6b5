#!/usr/bin/env bash
# rtspload against the real camrelay with one 320x240 test:// camera on
# 127.0.0.1: 20 TCP clients, then 20 UDP clients, 5 s each, and the
# aggregate checked; then a wrong path and a bad option, to show that the
# checks can fail.  Suite 'bench-tools' (meson test --suite bench-tools).
#
# Usage: test_rtspload.sh CAMRELAY RTSPLOAD
set -u
camrelay=$1
rtspload=$2
work=$(mktemp -d)
camrelay_pid=
failures=0

cleanup () {
  if [ -n "$camrelay_pid" ]; then
    kill "$camrelay_pid" 2>/dev/null
    wait "$camrelay_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

check () {  # check DESCRIPTION FILE PATTERN: PATTERN (grep -E) must be in FILE
  if grep -Eq -- "$3" "$2"; then
    echo "ok: $1"
  else
    echo "FAILED: $1 (no line matching '$3')"
    failures=$((failures + 1))
  fi
}

cat > "$work/camrelay.toml" <<'TOML'
[server]
bind = "127.0.0.1"
port = 0

[http]
bind = "127.0.0.1"
port = 0

[[cameras]]
name = "test"
location = "test://cam?width=320&height=240"
TOML

"$camrelay" -c "$work/camrelay.toml" 2> "$work/camrelay.log" &
camrelay_pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.* on RTSP [^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/camrelay.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$camrelay_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "FAILED: camrelay did not start:"
  cat "$work/camrelay.log"
  exit 1
fi
url="rtsp://127.0.0.1:$port/test"
echo "camrelay pid $camrelay_pid on $url"

for transport in tcp udp; do
  out="$work/$transport.txt"
  "$rtspload" --url "$url" --clients 20 --duration 5 --transport "$transport" --verbose \
      --json "$work/$transport.json" --watch-pid "$camrelay_pid" > "$out"
  status=$?
  grep -v '^client ' "$out"
  [ "$status" = 0 ] || { echo "FAILED: $transport: exit status $status"; failures=$((failures + 1)); }
  check "$transport: 20 connected" "$out" '^clients 20 connected 20 failed 0 statuses \{200:20\}$'
  check "$transport: all playing at the end" "$out" 'playing-at-end 20$'
  check "$transport: 20 per-client lines" <(grep -c '^client .* outcome 200 ' "$out") '^20$'
  # Every client received frames: no per-client line says "frames 0 ".
  check "$transport: frames for every client" <(grep -c ' frames 0 ' "$out") '^0$'
  check "$transport: a keyframe in every session" "$out" 'sessions 20 without-keyframe 0$'
  check "$transport: a decodable keyframe for every client" "$out" '^decodable keyframe ms p50/p95/max [0-9./]+ clients 20 live ms '
  check "$transport: JSON written" "$work/$transport.json" '"clients": \['
done
check "tcp: no RTP loss" "$work/tcp.txt" '^rtp packets [1-9][0-9]* lost 0 '

# It reports failures rather than hiding them, and exits 0 for a run that completed.
"$rtspload" --url "rtsp://127.0.0.1:$port/nothing-here" --clients 3 --duration 1 --quiet \
    > "$work/missing.txt"
status=$?
[ "$status" = 0 ] || { echo "FAILED: missing path: exit status $status"; failures=$((failures + 1)); }
check "wrong path: 404 reported" "$work/missing.txt" '^clients 3 connected 0 failed 3 statuses \{404:3\}$'
"$rtspload" --url "$url" --transport carrier-pigeon > /dev/null 2>&1
status=$?
[ "$status" = 2 ] && echo "ok: bad option exits 2" \
    || { echo "FAILED: bad option exits $status, not 2"; failures=$((failures + 1)); }

echo "$failures failure(s)"
[ "$failures" = 0 ]
