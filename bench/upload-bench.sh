#!/usr/bin/env bash
#  bench/upload-bench.sh: does an upload into the directory image store run
#  at the speed of the disk?
#
#  In the same run and on the same file system, alternately: `dd if=F of=G
#  bs=4M conv=fsync` of an image file F, and snapfleet's upload of the same
#  F into a "dir" image store through the worker's own code
#  (bench/sf_upload_bench: sf_imgstore_put, i.e. read, SHA-256, write,
#  fsync, publish, exactly as a job's upload). Every run starts with a
#  `sync`; F stays in the page cache for both. The upload's SHA-256 and
#  size are checked against sha256sum's. Prints on stdout the times, the
#  medians, MB/s and the ratio dd_ms / upload_ms (1.0 = as fast as dd;
#  the target is >= 0.9).
#
#  Usage: bench/upload-bench.sh [-n RUNS] [-s SIZE]
#    -n RUNS    runs of each (default 3; env RUNS)
#    -s SIZE    image size, IEC (default 1G; env SIZE)
#  Environment: SF_BUILD (build dir with bench/sf_upload_bench, default
#  ./build), SF_TEST_TMP (where the files go, default /var/tmp), SF_KEEP=1
#  (keep the scratch dir). Needs no root. Notes go to stderr.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib.sh
. "$bench_dir/../tests/lib.sh"

RUNS=${RUNS:-3}
SIZE=${SIZE:-1G}
usage () { sed -n '/^#  Usage:/,/^#  (keep the scratch/p' "$0" | sed 's/^#  \{0,1\}//'; }
while getopts 'n:s:h' opt; do
    case $opt in
        n) RUNS=$OPTARG ;;
        s) SIZE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "upload-bench: -n wants a positive integer" >&2; exit 2; }
bytes=$(numfmt --from=iec "$SIZE" 2>/dev/null) || { echo "upload-bench: bad size '$SIZE'" >&2; exit 2; }
[ "$bytes" -ge $((1 << 20)) ] || { echo "upload-bench: size $SIZE is below 1 MiB" >&2; exit 2; }

sf_init upload-bench
sf_need_built bench/sf_upload_bench
sf_need dd sha256sum numfmt
load0=$(cut -d' ' -f1-3 /proc/loadavg)
src=$SF_TMP/F
store=$SF_TMP/store
results=$SF_TMP/results        #  "RUN DD_MS UPLOAD_MS"
: >"$results"
head -c "$bytes" /dev/urandom >"$src"
sum=$(sha256sum <"$src" | cut -d' ' -f1)
sync

ms () { local t=${EPOCHREALTIME/./}; printf '%s' $((10#$t / 1000)); }

#  Run 0 is a warm-up, not counted: the first writes into blocks the file
#  system has not used for a while are several times slower here (a thin
#  virtual disk), whichever program comes first
for ((i = 0; i <= RUNS; i++)); do
    timeout 600 sync
    t=$(ms)
    dd if="$src" of="$SF_TMP/G" bs=4M conv=fsync status=none
    dd_ms=$(($(ms) - t))
    rm -f "$SF_TMP/G"
    timeout 600 sync
    out=$(timeout -k 10 600 "$SF_BUILD/bench/sf_upload_bench" "$src" "$store") ||
        sf_die "the upload failed (run $i)"
    read -r up_ms up_bytes up_sum up_id <<<"$out"
    [ "$up_sum" = "$sum" ] || sf_die "the upload's SHA-256 $up_sum is not sha256sum's $sum"
    [ "$up_bytes" = "$bytes" ] || sf_die "the upload stored $up_bytes bytes, not $bytes"
    cmp -s "$src" "$store/$up_id.qcow2" || sf_die "the stored image differs from the source"
    rm -f "$store/$up_id.qcow2" "$store/$up_id.json"
    up_ms=${up_ms%.*}
    if [ "$i" = 0 ]; then
        sf_note "run 0: dd $dd_ms ms, upload $up_ms ms (warm-up, not counted)"
    else
        sf_note "run $i: dd $dd_ms ms, upload $up_ms ms"
        echo "$i $dd_ms $up_ms" >>"$results"
    fi
done

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
dd_med=$(awk '{ print $2 }' "$results" | median)
up_med=$(awk '{ print $3 }' "$results" | median)
mbs () { awk -v b="$bytes" -v m="$1" 'BEGIN { printf "%.0f", (m > 0 ? b / 1e6 / (m / 1e3) : 0) }'; }

echo "snapfleet upload benchmark, $(date '+%Y-%m-%d %H:%M'), $(nproc) cores, load $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(numfmt --to=iec-i --suffix=B "$bytes") of random data in $SF_TEST_NAME's scratch dir on $(df --output=fstype "$SF_TMP" | tail -1)"
printf '%-4s %10s %10s %7s\n' run dd_ms upload_ms ratio
while read -r i d u; do
    printf '%-4s %10s %10s %7s\n' "$i" "$d" "$u" "$(awk -v d="$d" -v u="$u" 'BEGIN { printf "%.2f", d / u }')"
done <"$results"
printf '%-4s %10s %10s %7s\n' median "$dd_med" "$up_med" "$(awk -v d="$dd_med" -v u="$up_med" 'BEGIN { printf "%.2f", d / u }')"
echo "dd conv=fsync: $(mbs "$dd_med") MB/s; upload (read, SHA-256, write, fsync, publish): $(mbs "$up_med") MB/s"
echo "ratio = dd_ms / upload_ms (target >= 0.9)"
echo "reproduce: SF_BUILD=$SF_BUILD bench/upload-bench.sh -n $RUNS -s $SIZE"
sf_done
