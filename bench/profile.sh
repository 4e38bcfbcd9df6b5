#!/usr/bin/env bash
# Where a relay's per-client CPU goes: N TCP clients of fakecam's clip through
# camrelay or the baseline relay, all playing before anything is measured,
# then `perf stat` (syscalls, context switches, CPU time) and `perf record -g`
# of the relay alone.  Prints both; leaves perf.data in the work folder.
#
#   bench/profile.sh camrelay|baseline [CLIENTS] [BUILD] [PORT]
#
# Needs linux-perf and root (or perf_event_paranoid <= 0).  PORT (default
# 61000) and PORT+1 must be free and outside the ephemeral range the load
# client's own connections take (32768-60999 on Linux).
set -euo pipefail
relay=${1:?camrelay or baseline}
clients=${2:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${3:-$root/build}" && pwd)
port=${4:-61000}
work=$(mktemp -d "$build/bench/profile-XXXXXX")
export GST_PLUGIN_PATH_1_0="$build/plugins" GST_REGISTRY_1_0="$work/registry.bin"
clip="$build/bench/clip-720p30.mp4"
[ -f "$clip" ] || { echo "profile: no $clip (bench/run makes it)"; exit 2; }
pids=()
cleanup () { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
"$build/bench/fakecam" --port "$port" "$clip" > "$work/fakecam.log" 2>&1 & pids+=($!)
sleep 2
url="rtsp://127.0.0.1:$((port + 1))/cam"
if [ "$relay" = camrelay ]; then
  printf '[server]\nbind = "127.0.0.1"\nport = %d\nmax_connections = 0\nmax_connections_per_ip = 0\n[http]\nenabled = false\n[[cameras]]\nname = "cam"\nlocation = "rtsp://127.0.0.1:%d/cam"\n' \
    $((port + 1)) "$port" > "$work/camrelay.toml"
  "$build/launcher/camrelay" -c "$work/camrelay.toml" > "$work/relay.log" 2>&1 & pids+=($!)
else
  "$build/bench/baseline-relay" --port $((port + 1)) "rtsp://127.0.0.1:$port/cam" > "$work/relay.log" 2>&1 & pids+=($!)
fi
relay_pid=${pids[1]}
sleep 3
# Clients start over 8 s; everything is measured from 14 s to 32 s.
"$build/bench/rtspload/rtspload" --url "$url" -n "$clients" -d 42 --ramp 8 -q > "$work/load.log" 2>&1 &
load_pid=$!
sleep 14
perf stat -e syscalls:sys_enter_sendmsg,syscalls:sys_enter_writev,syscalls:sys_enter_write,context-switches,task-clock \
  -p "$relay_pid" -o "$work/stat.txt" -- sleep 6 > /dev/null 2>&1
perf record -F 499 -g -p "$relay_pid" -o "$work/perf.data" -- sleep 12 > /dev/null 2>&1
wait "$load_pid" || true
set +o pipefail  # head closes the pipes below early
echo "== $relay, $clients clients ($work)"
sed -n 2p "$work/load.log"
grep -v '^#\|^$' "$work/stat.txt"
echo "-- by library"
perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -8
echo "-- by thread"
perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | head -5
echo "-- by symbol"
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep '%' | head -20 | cut -c1-110
