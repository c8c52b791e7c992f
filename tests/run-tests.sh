#!/usr/bin/env bash
#  tests/run-tests.sh: install what is needed, build with AddressSanitizer
#  and UBSan, and run the whole suite (unit + integration against a real
#  libvirtd, QEMU guests, Ceph and ZeroMQ). Exit status is ctest's, or the
#  fuzz run's if ctest passed.
#  Extra arguments go to ctest, e.g. tests/run-tests.sh -L unit
#  Without arguments (what CI runs) the fuzz targets run after the suite,
#  each for SF_FUZZ_SECONDS (default 60), built in build-fuzz
#  (tests/fuzz/run.sh); SF_FUZZ_SECONDS set runs them after a partial run too.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build-test
"$top/tests/setup.sh" "$build" -DSF_SANITIZE=ON
cd "$build"
#  Daemons must not leak either; halt_on_error keeps a UBSan report fatal
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
#  Leaks inside libvirt's client (glib allocations) are libvirt's: tests/lsan.supp
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure --timeout 900 "$@"
if [ $# -eq 0 ] || [ -n "${SF_FUZZ_SECONDS:-}" ]; then
    "$top/tests/fuzz/run.sh" "$top/build-fuzz"
fi
