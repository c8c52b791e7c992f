#!/usr/bin/env bash
#  bench/glance-bench.sh: does snapfleet's Glance store upload as fast as
#  curl does to the same Glance?
#
#  A real Glance (tests/lib/glance.sh: workers = 0, sqlite, file store, no
#  auth) on 127.0.0.1, and a qcow2 image F of random data. In the same run,
#  one after the other, RUNS times (after one warm-up round not counted):
#    curl    the reference flow with the curl CLI: POST /v2/images, `curl -T
#            F` (chunked, application/octet-stream) to .../file, GET the
#            image (it must be active with F's size and sha512);
#    driver  snapfleet's upload of F through the worker's own code
#            (bench/sf_upload_bench --glance: sf_imgstore_put into the
#            glance store: create, stream through the curl thread with
#            SHA-256 and SHA-512, GET and check);
#    dir     the same upload into a "dir" store (sf_upload_bench --copy:
#            read, hash, write, fsync), for scale.
#  Each image is deleted after its round. Prints each run, the medians,
#  MB/s and the ratios curl_ms / driver_ms (1.0 = as fast as curl; the
#  target is >= 0.9) and dir_ms / driver_ms.
#
#  Usage: bench/glance-bench.sh [-n RUNS] [-s SIZE]
#    -n RUNS    counted runs (default 3; env RUNS)
#    -s SIZE    image size, IEC (default 1G; env SIZE)
#  Environment: SF_BUILD (build dir, default ./build), SF_TEST_TMP (where
#  the files go, default /var/tmp), SF_KEEP=1 (keep the scratch dir).
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib.sh
. "$bench_dir/../tests/lib.sh"
# shellcheck source=../tests/lib/glance.sh
. "$bench_dir/../tests/lib/glance.sh"

RUNS=${RUNS:-3}
SIZE=${SIZE:-1G}
usage () { sed -n '/^#  Usage:/,/^#  the files go/p' "$0" | sed 's/^#  \{0,1\}//'; }
while getopts 'n:s:h' opt; do
    case $opt in
        n) RUNS=$OPTARG ;;
        s) SIZE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "glance-bench: -n wants a positive integer" >&2; exit 2; }
bytes=$(numfmt --from=iec "$SIZE" 2>/dev/null) || { echo "glance-bench: bad size '$SIZE'" >&2; exit 2; }
[ "$bytes" -ge $((1 << 20)) ] || { echo "glance-bench: size $SIZE is below 1 MiB" >&2; exit 2; }

sf_init glance-bench
sf_need_built bench/sf_upload_bench
sf_need curl jq qemu-img sha256sum sha512sum numfmt glance-api
load0=$(cut -d' ' -f1-3 /proc/loadavg)
gl=$SF_TMP/glance
sf_cleanup_push gl_stop "$gl"
gl_start "$gl" || sf_die "glance did not start"
# shellcheck source=/dev/null
. "$gl/env"
src=$SF_TMP/F.qcow2
store=$SF_TMP/store
results=$SF_TMP/results        #  "RUN CURL_MS DRIVER_MS DIR_MS"
: >"$results"
head -c "$bytes" /dev/urandom >"$SF_TMP/R.raw"
qemu-img convert -f raw -O qcow2 "$SF_TMP/R.raw" "$src"
rm -f "$SF_TMP/R.raw"
size=$(stat -c %s "$src")
sha256=$(sha256sum <"$src" | cut -d' ' -f1)
sha512=$(sha512sum <"$src" | cut -d' ' -f1)
timeout 600 sync

ms () { local t=${EPOCHREALTIME/./}; printf '%s' $((10#$t / 1000)); }
h=(-H 'Accept: application/json')

#  check_image ID: active, F's size and sha512; then deleted
check_image ()
{
    local img
    img=$(curl -fsS -m 60 "${h[@]}" "$GL_URL/v2/images/$1")
    [ "$(jq -r '"\(.status) \(.size) \(.os_hash_value)"' <<<"$img")" = "active $size $sha512" ] ||
        sf_die "image $1 is not F: $(jq -c '{status, size, os_hash_value}' <<<"$img")"
    curl -fsS -m 60 "${h[@]}" -X DELETE "$GL_URL/v2/images/$1" >/dev/null
}

#  curl's flow; prints the ms
by_curl ()
{
    local t id
    t=$(ms)
    id=$(curl -fsS -m 60 "${h[@]}" -X POST -H 'Content-Type: application/json' -d \
        '{"name":"bench","disk_format":"qcow2","container_format":"bare","visibility":"private"}' \
        "$GL_URL/v2/images" | jq -r .id)
    curl -fsS -m 600 "${h[@]}" -X PUT -H 'Content-Type: application/octet-stream' \
        -H 'Transfer-Encoding: chunked' -T "$src" "$GL_URL/v2/images/$id/file" >/dev/null
    curl -fsS -m 60 "${h[@]}" "$GL_URL/v2/images/$id" | jq -e '.status == "active"' >/dev/null
    printf '%s' $(($(ms) - t))
    check_image "$id"
}

#  sf_upload_bench ARGS...: prints the ms; checks the hash and size
by_bench ()
{
    local out up_ms up_bytes up_sum up_id
    out=$(timeout -k 10 900 "$SF_BUILD/bench/sf_upload_bench" "$@") ||
        sf_die "the upload failed ($*)"
    read -r up_ms up_bytes up_sum up_id <<<"$out"
    [ "$up_sum" = "$sha256" ] || sf_die "the upload's SHA-256 $up_sum is not F's"
    [ "$up_bytes" = "$size" ] || sf_die "the upload stored $up_bytes bytes, not $size"
    printf '%s %s' "${up_ms%.*}" "$up_id"
}

for ((i = 0; i <= RUNS; i++)); do
    curl_ms=$(by_curl)
    read -r driver_ms id <<<"$(by_bench --glance "$src" "$GL_URL")"
    check_image "$id"
    timeout 600 sync
    read -r dir_ms id <<<"$(by_bench --copy "$src" "$store")"
    rm -f "$store/$id.qcow2" "$store/$id.json"
    timeout 600 sync
    if [ "$i" = 0 ]; then
        sf_note "run 0: curl $curl_ms ms, driver $driver_ms ms, dir $dir_ms ms (warm-up, not counted)"
    else
        sf_note "run $i: curl $curl_ms ms, driver $driver_ms ms, dir $dir_ms ms"
        echo "$i $curl_ms $driver_ms $dir_ms" >>"$results"
    fi
done

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
curl_med=$(awk '{ print $2 }' "$results" | median)
driver_med=$(awk '{ print $3 }' "$results" | median)
dir_med=$(awk '{ print $4 }' "$results" | median)
mbs () { awk -v b="$size" -v m="$1" 'BEGIN { printf "%.0f", (m > 0 ? b / 1e6 / (m / 1e3) : 0) }'; }
ratio () { awk -v d="$1" -v u="$2" 'BEGIN { printf "%.2f", (u > 0 ? d / u : 0) }'; }

echo "snapfleet Glance upload benchmark, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, load $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(numfmt --to=iec-i --suffix=B --round=nearest "$size") ($size bytes) qcow2 of random data; Glance $(dpkg-query -W -f='${Version}' glance-api 2>/dev/null || echo '?'), workers = 0, file store in $SF_TMP"
printf '%-6s %9s %9s %9s %12s %12s\n' run curl_ms driver_ms dir_ms curl/driver dir/driver
while read -r i c d s; do
    printf '%-6s %9s %9s %9s %12s %12s\n' "$i" "$c" "$d" "$s" "$(ratio "$c" "$d")" "$(ratio "$s" "$d")"
done <"$results"
printf '%-6s %9s %9s %9s %12s %12s\n' median "$curl_med" "$driver_med" "$dir_med" \
    "$(ratio "$curl_med" "$driver_med")" "$(ratio "$dir_med" "$driver_med")"
echo "MB/s (medians): curl -T $(mbs "$curl_med"), driver $(mbs "$driver_med"), dir store $(mbs "$dir_med")"
echo "ratio curl_ms / driver_ms of the same run (target >= 0.9)"
echo "reproduce: SF_BUILD=$SF_BUILD bench/glance-bench.sh -n $RUNS -s $SIZE"
sf_done
