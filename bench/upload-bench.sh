#!/usr/bin/env bash
#  bench/upload-bench.sh: does an upload into the directory image store run
#  at the speed of the disk?
#
#  In the same run and on the same file system, one after the other, RUNS
#  times (after one warm-up round that is not counted):
#    dd      `dd if=F of=G bs=4M conv=fsync` of an image file F;
#    copy    snapfleet's upload of F into a "dir" image store through the
#            worker's own code (bench/sf_upload_bench --copy, i.e.
#            sf_imgstore_put: read, SHA-256, write, fsync, publish), as a
#            job does when its grant sets a rate or its scratch is on
#            another file system;
#    adopt   the same upload of A, a fresh copy of F's bytes (its pages
#            dirty, as qemu-img leaves a conversion) on the store's file
#            system with no rate, as a job's scratch image is stored: hard
#            link, SHA-256 in place, fsync, publish; no copy. (A, not F:
#            the store drops what it adopted from the page cache.)
#  Every step starts with a `sync`; the source's bytes are in the page
#  cache for all three. Each upload's SHA-256, size and bytes are checked against F's.
#  Prints on stdout each run, the medians, MB/s and the ratios dd_ms /
#  copy_ms and dd_ms / adopt_ms (1.0 = as fast as dd; the target is >= 0.9).
#
#  Usage: bench/upload-bench.sh [-n RUNS] [-s SIZE]
#    -n RUNS    counted runs of each (default 3; env RUNS)
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
sf_need dd sha256sum numfmt cmp
load0=$(cut -d' ' -f1-3 /proc/loadavg)
master=$SF_TMP/R               #  the random bytes, never written again
src=$SF_TMP/F                  #  dd's and the copy's source
fresh=$SF_TMP/A                #  the adopted one, rewritten every round
store=$SF_TMP/store
results=$SF_TMP/results        #  "RUN DD_MS COPY_MS ADOPT_MS"
: >"$results"
head -c "$bytes" /dev/urandom >"$master"
sum=$(sha256sum <"$master" | cut -d' ' -f1)
cp "$master" "$src"
timeout 600 sync

ms () { local t=${EPOCHREALTIME/./}; printf '%s' $((10#$t / 1000)); }

#  upload [--copy] FILE: store FILE, check it, remove it; prints the ms
upload ()
{
    local out up_ms up_bytes up_sum up_id
    out=$(timeout -k 10 600 "$SF_BUILD/bench/sf_upload_bench" "$@" "$store") ||
        sf_die "the upload failed ($*)"
    read -r up_ms up_bytes up_sum up_id <<<"$out"
    [ "$up_sum" = "$sum" ] || sf_die "the upload's SHA-256 $up_sum is not sha256sum's $sum"
    [ "$up_bytes" = "$bytes" ] || sf_die "the upload stored $up_bytes bytes, not $bytes"
    cmp -s "$master" "$store/$up_id.qcow2" || sf_die "the stored image differs from the source"
    rm -f "$store/$up_id.qcow2" "$store/$up_id.json"
    printf '%s' "${up_ms%.*}"
}

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
    copy_ms=$(upload --copy "$src")
    #  A fresh A, its pages dirty as a conversion leaves them
    timeout 600 sync
    cp "$master" "$fresh"
    adopt_ms=$(upload "$fresh")
    rm -f "$fresh"
    if [ "$i" = 0 ]; then
        sf_note "run 0: dd $dd_ms ms, copy $copy_ms ms, adopt $adopt_ms ms (warm-up, not counted)"
    else
        sf_note "run $i: dd $dd_ms ms, copy $copy_ms ms, adopt $adopt_ms ms"
        echo "$i $dd_ms $copy_ms $adopt_ms" >>"$results"
    fi
done

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
dd_med=$(awk '{ print $2 }' "$results" | median)
copy_med=$(awk '{ print $3 }' "$results" | median)
adopt_med=$(awk '{ print $4 }' "$results" | median)
mbs () { awk -v b="$bytes" -v m="$1" 'BEGIN { printf "%.0f", (m > 0 ? b / 1e6 / (m / 1e3) : 0) }'; }
ratio () { awk -v d="$1" -v u="$2" 'BEGIN { printf "%.2f", (u > 0 ? d / u : 0) }'; }

echo "snapfleet upload benchmark, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, load $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(numfmt --to=iec-i --suffix=B "$bytes") of random data, $(df --output=fstype "$SF_TMP" | tail -1) ($SF_TMP)"
printf '%-6s %8s %8s %8s %10s %10s\n' run dd_ms copy_ms adopt_ms dd/copy dd/adopt
while read -r i d c a; do
    printf '%-6s %8s %8s %8s %10s %10s\n' "$i" "$d" "$c" "$a" "$(ratio "$d" "$c")" "$(ratio "$d" "$a")"
done <"$results"
printf '%-6s %8s %8s %8s %10s %10s\n' median "$dd_med" "$copy_med" "$adopt_med" \
    "$(ratio "$dd_med" "$copy_med")" "$(ratio "$dd_med" "$adopt_med")"
echo "MB/s (medians): dd conv=fsync $(mbs "$dd_med"), copy $(mbs "$copy_med"), adopt $(mbs "$adopt_med")"
echo "ratio = dd_ms / upload_ms of the same run (target >= 0.9)"
echo "reproduce: SF_BUILD=$SF_BUILD bench/upload-bench.sh -n $RUNS -s $SIZE"
sf_done
