#!/usr/bin/env bash
#  tests/setup.sh [BUILD_DIR] [CMAKE_ARGS...]
#
#  Installs every Debian 12 package snapfleet needs to build, to run its
#  demo and to run its whole test suite against the real parts (libvirtd +
#  QEMU, Ceph, ZeroMQ), then configures and builds into BUILD_DIR (default
#  ./build). Must run as root on Debian 12 (bookworm). Safe to run again:
#  apt-get is skipped when everything is already installed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
shift || true

packages=(
    #  build
    build-essential cmake pkg-config protobuf-c-compiler
    libczmq-dev libzmq3-dev libsodium-dev libprotobuf-c-dev libvirt-dev
    libsqlite3-dev libcurl4-openssl-dev libinih-dev libjansson-dev
    libxml2-dev librbd-dev librados-dev libssl-dev
    #  the fuzz targets (tests/fuzz/run.sh): clang and its libFuzzer archive
    clang-14 libclang-rt-14-dev
    #  real parts for the demo and the integration tests
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    qemu-system-x86 qemu-utils qemu-block-extra qemu-guest-agent
    busybox-static linux-image-cloud-amd64 cpio kmod xz-utils
    ceph-mon ceph-osd ceph-mgr ceph-common
    jq procps iproute2 shellcheck uuid-runtime diffutils util-linux
)

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: must run as root (it installs packages and starts libvirtd)" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S "$top" -B "$build" -DSF_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
