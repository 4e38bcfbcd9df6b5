#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer) into build-fuzz/, and runs each one for
# SECONDS_PER_TARGET seconds (default 20), as many at a time as there are
# cores, from a copy of its seed corpus fuzz/corpus/NAME (the repository is
# not modified).  Ends with one line 'fuzz: N targets, M runs, K crashes';
# exits non-zero on any crash, leak, undefined behaviour, timeout or build
# failure.  A crashing input is kept as build-fuzz/artifacts/NAME-crash-*;
# replay it with build-fuzz/fuzz_NAME FILE.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# The main build (GCC, meson) is not involved: only the sources each target
# needs are compiled here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
shift || true
out=$root/build-fuzz
CXX=${CXX:-clang++}

all_targets=(config vendors config_values camera_uri test_uri rtsp_framing)
targets=("${@:-${all_targets[@]}}")

# The sources of ours each target needs, besides fuzz/fuzz_NAME.cpp.
declare -A sources=(
  [config]="launcher/config.cpp launcher/config_reader.cpp launcher/config_values.cpp"
  [vendors]="launcher/config.cpp launcher/config_reader.cpp launcher/config_values.cpp"
  [config_values]="launcher/config_values.cpp"
  [camera_uri]="plugins/camerasrc/camerauri.cpp"
  [test_uri]="plugins/testcamerasrc/gsttestcamerasrc.cpp plugins/testcamerasrc/session.cpp plugins/testcamerasrc/testuri.cpp"
  [rtsp_framing]="plugins/common/rtsp_framing.cpp"
)

if ! command -v "$CXX" >/dev/null; then
  echo "fuzz: $CXX not found (scripts/install-deps.sh installs clang)" >&2
  exit 1
fi

# toml++ header-only, so that its parser is instrumented too: coverage of the
# TOML syntax is what leads the fuzzer to well-formed tables.  Its internal
# assertions are left out, as in the Debian library camrelay links with: one
# of them (parse_key, on a table header such as "[/x]") fires where the
# release build reports a syntax error.  So is the check of unreachable code:
# toml++ 3.3.0's is_non_ascii_horizontal_whitespace() reaches its
# TOML_UNREACHABLE for U+FBE6..U+FEFE, a bug of toml++, not ours (and our code
# marks nothing unreachable).
common_flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer
  -fsanitize=address,undefined -fno-sanitize=unreachable -fno-sanitize-recover=undefined
  -DGST_USE_UNSTABLE_API -DTOML_HEADER_ONLY=1 '-DTOML_ASSERT(expr)=static_assert(true)'
  "-DCAMRELAY_VENDORS_SOURCE=\"$root/gst-presets/vendors.toml\""
  -I"$root/launcher" -I"$root/plugins" -I"$root/fuzz"
  $(pkg-config --cflags gstreamer-1.0))
libs=($(pkg-config --libs gstreamer-1.0))

mkdir -p "$out/obj" "$out/artifacts"
start=$(date +%s)

# Each source once, in parallel.
compile () {  # SOURCE OBJECT [flags...]
  local src=$1 obj=$2
  shift 2
  "$CXX" "${common_flags[@]}" "$@" -c "$root/$src" -o "$obj"
}
declare -A objects=()
pids=()
for target in "${targets[@]}"; do
  if [ -z "${sources[$target]+x}" ]; then
    echo "fuzz: no target '$target' (targets: ${all_targets[*]})" >&2
    exit 1
  fi
  for src in fuzz/fuzz_$target.cpp ${sources[$target]}; do
    [ -n "${objects[$src]+x}" ] && continue
    obj=$out/obj/$(echo "$src" | tr / _).o
    objects[$src]=$obj
    compile "$src" "$obj" -fsanitize=fuzzer-no-link &
    pids+=($!)
    # No more compilers at once than cores.
    if [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; then wait -n || true; fi
  done
done
build_failed=0
for pid in "${pids[@]}"; do wait "$pid" || build_failed=1; done
for target in "${targets[@]}"; do
  objs=()
  for src in fuzz/fuzz_$target.cpp ${sources[$target]}; do objs+=("${objects[$src]}"); done
  "$CXX" "${common_flags[@]}" -fsanitize=fuzzer "${objs[@]}" "${libs[@]}" \
    -o "$out/fuzz_$target" || build_failed=1
done
if [ $build_failed -ne 0 ]; then
  echo "fuzz: build failed"
  exit 1
fi
echo "fuzz: built ${#targets[@]} targets in $(( $(date +%s) - start ))s"

# Each run starts from a copy of the seeds, in a folder of its own.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Full stacks, through GLib too, so that lsan.supp can name its functions.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
run () {  # TARGET
  local target=$1
  mkdir -p "$work/$target"
  cp -r "$root/fuzz/corpus/$target/." "$work/$target/"
  local dict=()
  [ -f "$root/fuzz/$target.dict" ] && dict=(-dict="$root/fuzz/$target.dict")
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a runaway allocation.
  "$out/fuzz_$target" "$work/$target" "${dict[@]}" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$target-" >"$work/$target.log" 2>&1
}
declare -A status=()
pending=("${targets[@]}")
running=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  while [ ${#pending[@]} -gt 0 ] && [ ${#running[@]} -lt "$(nproc)" ]; do
    target=${pending[0]}
    pending=("${pending[@]:1}")
    run "$target" &
    running+=("$target:$!")
  done
  wait -n || true
  still=()
  for entry in "${running[@]}"; do
    target=${entry%%:*}
    pid=${entry##*:}
    if kill -0 "$pid" 2>/dev/null; then
      still+=("$entry")
    else
      wait "$pid" && status[$target]=0 || status[$target]=$?
    fi
  done
  running=("${still[@]+"${still[@]}"}")
done

total_runs=0
crashes=0
for target in "${targets[@]}"; do
  log=$work/$target.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  runs=${runs:-0}
  total_runs=$((total_runs + runs))
  if [ "${status[$target]}" -eq 0 ]; then
    printf 'fuzz: %-14s ok     %9d runs (%d/s)\n' "$target" "$runs" $((runs / seconds))
  else
    crashes=$((crashes + 1))
    printf 'fuzz: %-14s FAILED (exit %d) after %d runs; its log:\n' "$target" \
      "${status[$target]}" "$runs"
    grep -v '^#[0-9]' "$log" | tail -60
  fi
done
echo "fuzz: ${#targets[@]} targets, $total_runs runs, $crashes crashes"
[ $crashes -eq 0 ]
