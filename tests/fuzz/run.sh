#!/usr/bin/env bash
#  tests/fuzz/run.sh [BUILD_DIR]
#
#  Builds the libFuzzer targets (clang-14, ASan + UBSan, -DSF_FUZZ=ON) in
#  BUILD_DIR (default ./build-fuzz, its own tree: everything is compiled
#  with the fuzz flags), then runs each for SF_FUZZ_SECONDS (default 60;
#  0 = only replay the committed corpus) from tests/fuzz/corpus/<target>/.
#  Exit status 1 if any target crashed, leaked, hit UBSan, stalled or ran
#  out of memory. Per target, BUILD_DIR/fuzz/<target>/ keeps the log, the
#  new inputs (corpus/; the committed corpus is only read) and the input
#  that failed (crash-*, leak-*, timeout-*, oom-*). Replay one with
#  BUILD_DIR/tests/fuzz/<target> FILE; commit it to the corpus with its fix.
#  SF_FUZZ_TARGETS="fuzz_cfg fuzz_calendar" runs only those.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-fuzz}
seconds=${SF_FUZZ_SECONDS:-60}
read -r -a targets <<< "${SF_FUZZ_TARGETS:-fuzz_wire fuzz_admin fuzz_cfg fuzz_calendar}"

if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    echo "run.sh: SF_FUZZ_SECONDS must be a number of seconds, not '$seconds'" >&2
    exit 2
fi
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then
    echo "run.sh: clang-14 is missing (tests/setup.sh installs it)" >&2
    exit 2
fi

cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER="$cc" -DSF_FUZZ=ON -DSF_WERROR=ON \
      -DSF_BUILD_TESTS=OFF -DSF_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ "$seconds" = 0 ]; then
    limit=(-runs=0)                     #  -max_total_time=0 would mean forever
else
    limit=(-max_total_time="$seconds")
fi

failed=()
for target in "${targets[@]}"; do
    out=$build/fuzz/$target
    mkdir -p "$out/corpus"
    dict=()
    if [ -f "$top/tests/fuzz/$target.dict" ]; then
        dict=(-dict="$top/tests/fuzz/$target.dict")
    fi
    echo "run.sh: $target for ${seconds}s (log: $out/log)"
    #  -timeout: one input that takes 30 s is a stall, a finding too
    if "$build/tests/fuzz/$target" "${limit[@]}" -timeout=30 -rss_limit_mb=2048 \
           -print_final_stats=1 -artifact_prefix="$out/" "${dict[@]}" \
           "$out/corpus" "$top/tests/fuzz/corpus/$target" >"$out/log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units)' "$out/log" | sed "s/^/  /" || true
    else
        failed+=("$target")
        echo "run.sh: $target FAILED; the end of its log:" >&2
        tail -n 60 "$out/log" >&2
        find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
             -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) \
             -printf '  input kept: %p\n' >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
if [ "$seconds" = 0 ]; then
    echo "run.sh: ${#targets[@]} fuzz targets replayed their corpus cleanly"
else
    echo "run.sh: ${#targets[@]} fuzz targets clean after ${seconds}s each"
fi
