#!/usr/bin/env bash
#  t0235-store-adopt: a converted image goes into the directory store
#  without a copy, with real parts. One running file-backed guest with a
#  256 MiB disk of random data; the worker's scratch (workdir) and its image
#  store are on the same file system and the scheduler sets no bandwidth
#  limit, so the store adopts the job's scratch image: a hard link as
#  <id>.qcow2.tmp, hashed in place, fsynced, renamed, its JSON last
#  (worker/sf_imgstore_dir.c). A sampler records every 10 ms the inode and
#  size of the job's scratch image and of the store's temporary file.
#  Asserted: the job is done; the store's temporary file was seen, always
#  at the image's final size (it never grew: nothing was copied into it)
#  and with the inode of the scratch image the conversion wrote, which the
#  published image keeps; the image passes qemu-img check, its sha256 is
#  sha256sum's and the metadata's, it holds a clean prefix of the guest's
#  records; no temporary file, pending sidecar or scratch file is left;
#  the guest runs on. (With a bandwidth limit the store copies at the
#  granted rate instead: t0310.)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0235-store-adopt
sf_need_libvirt
sf_need jq qemu-img sha256sum stat awk

sf_start_scheduler
sf_start_node n1
sf_guest n1 g1 --size 256M
g1=$(sf_guest_dir n1 g1)
sf_start_worker n1 "$SF_NODE_URI"
work=$SF_TMP/w-n1/work
store=$SF_TMP/images

inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
check_eq "g1 is file-backed (its default: file-live; this test asks for file-cold)" file-live \
    "$(inst | jq -r .strategy)"

#  Every 10 ms: "<ms> <inode> <size> <path>" of the scratch images and the
#  store's temporary files, whenever that set changes
watch_files ()
{
    local out=$1 prev="" cur t f
    set +e
    trap - ERR
    shopt -s nullglob
    while :; do
        cur=""
        for f in "$work"/J*/*.qcow2 "$store"/*.qcow2.tmp; do
            cur+="$(stat -c '%i %s %n' "$f" 2>/dev/null)"$'\n'
        done
        if [ "$cur" != "$prev" ]; then
            t=${EPOCHREALTIME/./}
            printf '%s' "$cur" | awk -v t=$((10#$t / 1000)) 'NF == 3 { print t, $0 }' >>"$out"
            prev=$cur
        fi
        sleep 0.01
    done
}
samples=$SF_TMP/files.samples
: >"$samples"
sf_spawn watch watch_files "$samples"

#  -- the snapshot ------------------------------------------------------------
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
rc=0
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || rc=$?
b=$(lv_guest_seq "$g1/console.log")
sf_stop_pid "$SF_TMP/watch.pid" || true
sf_note "snapshot: $(jq -c '{state, strategy, pause_ms, convert_ms, upload_ms, bytes, image}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "snapshot --wait exits 0" 0 "$rc"
check_eq "job is done" "done file-cold" "$(jq -r '"\(.state) \(.strategy)"' <<<"$out")"
img=$(jq -r .image.path <<<"$out")
id=$(jq -r .image.id <<<"$out")
size=$(stat -c %s "$img")

#  -- no copy -------------------------------------------------------------------
sf_note "samples: $(awk '{ printf "%s %s %s %s; ", $1, $2, $3, $4 }' "$samples")"
tmp_rows=$(awk -v f="$store/$id.qcow2.tmp" '$4 == f' "$samples")
check "the store's temporary file was seen" test -n "$tmp_rows"
check_eq "it was always the image's final size ($size): it never grew, nothing was copied" \
    "$size" "$(awk '{ print $3 }' <<<"$tmp_rows" | sort -u | tr '\n' ' ' | sed 's/ $//')"
tmp_ino=$(awk '{ print $2 }' <<<"$tmp_rows" | sort -u | tr '\n' ' ' | sed 's/ $//')
scratch_ino=$(awk -v w="$work/" 'index($4, w) == 1 && $4 ~ /\/vda\.qcow2$/ { print $2 }' "$samples" |
    sort -u | tr '\n' ' ' | sed 's/ $//')
check "the job's scratch image was seen" test -n "$scratch_ino"
check_eq "the temporary file is the scratch image the conversion wrote (same inode)" \
    "$scratch_ino" "$tmp_ino"
check_eq "the published image keeps that inode" "$scratch_ino" "$(stat -c %i "$img")"
check_eq "scratch and store share a file system" "$(stat -c %d "$work")" "$(stat -c %d "$store")"

#  -- the image ---------------------------------------------------------------
check "qemu-img check passes" qemu-img check -q "$img"
check_eq "image is standalone (no backing file)" none \
    "$(qemu-img info --output=json "$img" | jq -r '."backing-filename" // "none"')"
check_eq "reported size is the file's size" "$size" "$(jq -r .image.size <<<"$out")"
sum=$(sha256sum "$img" | cut -d' ' -f1)
check_eq "reported sha256 is sha256sum's" "$sum" "$(jq -r .image.sha256 <<<"$out")"
check_eq "metadata's sha256 and size are the image's" "$sum $size" \
    "$(jq -r '"\(.sha256) \(.size)"' "${img%.qcow2}.json" 2>/dev/null)"
check_eq "image and metadata are 0640" "640 640" \
    "$(stat -c %a "$img" "${img%.qcow2}.json" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the image has one name: the store's" 1 "$(stat -c %h "$img")"
rec=$(sf_records --min "$a" --max $((b + 10)) "$img" 2>&1) || true
sf_note "sf-records: $rec"
check_eq "image holds a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"
check_eq "no temporary file or pending sidecar left in the store" "" \
    "$(find "$store" \( -name '*.tmp*' -o -name '*.pending' \) | tr '\n' ' ')"
check_eq "no scratch left in the worker's workdir" "" \
    "$(find "$work" -path "$work/J*" -type f | tr '\n' ' ')"
check "images lists the image" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images --format json | jq -e --arg i '$id' '.images[] | select(.id == \$i)'"

#  -- the guest afterwards -------------------------------------------------------
check_eq "g1 is running after the snapshot" running "$(sf_virsh n1 domstate g1)"
check "g1 keeps writing (seq past $((b + 20)))" lv_wait_seq "$g1/console.log" $((b + 20)) 30

sf_done
