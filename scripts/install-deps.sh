#!/usr/bin/env bash
# Installs every system package camrelay needs to build, test and run, from Debian 12.
# Idempotent: safe to run again; it only installs what is missing.
set -euo pipefail

packages=(
  # toolchain
  build-essential g++ meson ninja-build pkg-config git
  # GStreamer 1.22 development packages
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev gstreamer1.0-rtsp
  # plugins and tools
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  # tests
  googletest libgtest-dev libgmock-dev
  # launcher (later issues): HTTP and config
  libsoup-3.0-dev libtomlplusplus-dev
  # launcher RTSPS: GIO's TLS module
  glib-networking
  # fuzz targets (scripts/fuzz.sh): clang with libFuzzer and the sanitizers
  clang libclang-rt-14-dev
  # third-party clients used by integration tests; openssl makes their test certificates
  ffmpeg curl openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
