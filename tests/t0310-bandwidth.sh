#!/usr/bin/env bash
#  t0310-bandwidth: a bandwidth cap holds. The scheduler runs with
#  [limits] bandwidth=8M (8 MiB/s for the whole fleet); one node, one
#  running guest whose 64 MiB disk is all random data (the overlay's raw
#  base is written from /dev/urandom), so the image is 64 MiB that nothing
#  compresses. The worker waits for its upload grant after the capture and
#  stores at the granted rate through its token bucket. Measured two ways:
#  the job's own bytes / upload_ms, and the growth of the image store's
#  temporary file sampled every 100 ms while the upload runs. Both must be
#  8 MiB/s within 10% over at least 5 s; the image passes qemu-img check.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0310-bandwidth
sf_need_libvirt
sf_need jq
sf_need awk

rate=$((8 << 20))
sf_start_scheduler limits.bandwidth=8M
sf_start_node n1
sf_guest n1 g1 --size 64M
sf_start_worker n1 "$SF_NODE_URI"

inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
sf_note "g1: $(inst | jq -c '{state, strategy, disks: [.disks[] | {target, virtual_size, allocated_size}]}')"

#  Size of every temporary image file, every 100 ms: "<epoch_ms> <bytes>"
# shellcheck disable=SC2317  # runs through sf_spawn
_t0310_sizes ()
{
    local out=$1 f size
    set +e
    trap - ERR
    shopt -s nullglob
    while :; do
        for f in "$SF_TMP"/images/*.qcow2.tmp; do
            size=$(stat -c %s "$f" 2>/dev/null) && printf '%s %s\n' "$(_sf_epoch_ms)" "$size" >>"$out"
        done
        sleep 0.1
    done
}
: >"$SF_TMP/sizes.samples"
sf_spawn sizes _t0310_sizes "$SF_TMP/sizes.samples"

rc=0
out=$(sf_cli snapshot --instance g1 --wait --format json) || rc=$?
sf_stop_pid "$SF_TMP/sizes.pid" || true
sf_note "snapshot: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "snapshot --wait exits 0" 0 "$rc"
check_eq "job is done" "done" "$(jq -r .state <<<"$out" 2>/dev/null)"
bytes=$(jq -r '.bytes // 0' <<<"$out" 2>/dev/null || echo 0)
upload_ms=$(jq -r '.upload_ms // 0' <<<"$out" 2>/dev/null || echo 0)
img=$(jq -r '.image.path // ""' <<<"$out" 2>/dev/null || true)

#  -- the job's own figures -------------------------------------------------
check_range "the image holds at least 48 MiB" $((48 << 20)) "$bytes" $((1 << 30))
check_range "the upload took at least 5 s" 5000 "$upload_ms" 600000
job_bps=$(awk -v b="$bytes" -v ms="$upload_ms" 'BEGIN { printf "%d", (ms > 0 ? b * 1000 / ms : 0) }')
sf_note "job: $bytes bytes stored in $upload_ms ms = $(awk -v r="$job_bps" 'BEGIN { printf "%.2f", r / 1048576 }') MiB/s (cap 8 MiB/s)"
check_range "job's bytes/upload_ms is 8 MiB/s within 10%" \
    $((rate * 9 / 10)) "$job_bps" $((rate * 11 / 10))

#  -- the store's temporary file, as it grew --------------------------------
samples=$SF_TMP/sizes.samples
sf_note "size samples: $(wc -l <"$samples"), first: $(head -n 1 "$samples"), last: $(tail -n 1 "$samples")"
#  From the first sample that holds data to the last one before the
#  rename: span and growth; also the slowest and fastest 1 s windows
read -r span grown tmp_bps lo hi < <(awk '
    BEGIN { n = 0 }
    $2 > 0 && !t0 { t0 = $1; s0 = $2 }
    $2 > 0 { t[n] = $1; s[n] = $2; n++; t1 = $1; s1 = $2 }
    END {
        span = t1 - t0; grown = s1 - s0
        lo = -1; hi = 0; j = 0
        for (i = 0; i < n; i++) {
            while (j < n && t[j] - t[i] < 1000) j++
            if (j >= n) break
            r = (s[j] - s[i]) * 1000 / (t[j] - t[i])
            if (lo < 0 || r < lo) lo = r
            if (r > hi) hi = r
        }
        printf "%d %d %d %d %d\n", span, grown, (span > 0 ? grown * 1000 / span : 0), (lo < 0 ? 0 : lo), hi
    }' "$samples")
sf_note "store file: grew $grown bytes in $span ms = $(awk -v r="$tmp_bps" 'BEGIN { printf "%.2f", r / 1048576 }') MiB/s; 1 s windows $(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f..%.2f", a / 1048576, b / 1048576 }') MiB/s"
check_range "the temporary file was seen growing for at least 5 s" 5000 "$span" 600000
check_range "the temporary file grew at 8 MiB/s within 10%" \
    $((rate * 9 / 10)) "$tmp_bps" $((rate * 11 / 10))
check "the worker waited for its upload grant" \
    grep -q "upload granted" "$SF_TMP/worker-n1.log"

#  -- the image ---------------------------------------------------------------
check "image file exists" test -f "$img"
check "qemu-img check passes" qemu-img check -q "$img"
check_eq "reported size is the file's size" "$(stat -c %s "$img" 2>/dev/null)" \
    "$(jq -r .image.size <<<"$out" 2>/dev/null)"
check_eq "no temp files left in the store" "" \
    "$(find "$SF_TMP/images" -name '*.tmp*' | tr '\n' ' ')"
check_eq "g1 is running after the snapshot" running "$(sf_virsh n1 domstate g1)"

printf '# measured: job %s MiB/s, store file %s MiB/s over %s ms (cap 8 MiB/s)\n' \
    "$(awk -v r="$job_bps" 'BEGIN { printf "%.2f", r / 1048576 }')" \
    "$(awk -v r="$tmp_bps" 'BEGIN { printf "%.2f", r / 1048576 }')" "$span"
sf_done
