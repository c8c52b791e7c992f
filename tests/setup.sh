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
    #  the Glance image store (tests/lib/glance.sh, keystone.sh): a real
    #  Glance and Keystone, started by the tests in temp dirs; the fake
    #  HTTP server of the driver's self test
    glance-api keystone python3-keystonemiddleware uwsgi-core uwsgi-plugin-python3
    curl libmicrohttpd-dev
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
    #  The tests start their own Glance and Keystone: the packages' services
    #  (glance-api on :9292, keystone) must not start on a machine with an
    #  init system. policy-rc.d 101 = "action forbidden", only while
    #  installing, and only if the machine has no policy of its own.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# snapfleet tests/setup.sh: no service starts during install\nexit 101\n' >"$guard"
        chmod 755 "$guard"
        trap 'rm -f "$guard"' EXIT
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ -n "$guard" ]; then
        rm -f "$guard"
        trap - EXIT
    fi
fi

cmake -S "$top" -B "$build" -DSF_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
