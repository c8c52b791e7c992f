#!/usr/bin/env bash
#  tests/run-tests.sh: install what is needed, build with AddressSanitizer
#  and UBSan, and run the whole suite (unit + integration against a real
#  libvirtd, QEMU guests, Ceph and ZeroMQ). Exit status is ctest's.
#  Extra arguments go to ctest, e.g. tests/run-tests.sh -L unit
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build-test
"$top/tests/setup.sh" "$build" -DSF_SANITIZE=ON
cd "$build"
#  Daemons must not leak either; halt_on_error keeps a UBSan report fatal
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure --timeout 900 "$@"
