#!/usr/bin/env bash
#  t0110-snapshot-offline: a shut-off domain is snapshotted with no pause:
#  strategy offline, pause_ms 0, libvirt sees no SUSPENDED event, the image
#  passes qemu-img check and holds the clean prefix the guest wrote before
#  it was powered off. A two-disk guest gives one image per disk.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0110-snapshot-offline
sf_need_libvirt
sf_need jq

sf_start_scheduler
sf_start_node n1
sf_guest n1 g2 --second-disk
g2=$(sf_guest_dir n1 g2)
lv_wait_seq "$g2/console.log" 30 30
sf_virsh n1 destroy g2 >/dev/null
c=$(lv_guest_seq "$g2/console.log")
sf_start_worker n1 "$SF_NODE_URI"

inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g2")'; }
wait_for 30 inst >/dev/null || sf_die "g2 never appeared in 'snapfleet instances'"
j=$(inst)
check_eq "g2 is shut off" shutoff "$(jq -r .state <<<"$j")"
check_eq "g2 will get the offline strategy" offline "$(jq -r .strategy <<<"$j")"

sf_lifewatch n1 g2
rc=0
out=$(sf_cli snapshot --instance g2 --wait --format json) || rc=$?
sf_note "snapshot: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "snapshot --wait exits 0" 0 "$rc"
check_eq "job is done with strategy offline, consistency offline" "done offline offline" \
    "$(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$out")"
check_eq "pause_ms is 0" 0 "$(jq -r .pause_ms <<<"$out")"
check_eq "two images, one per disk" "vda vdb" \
    "$(jq -r '[.images[].disk_target] | sort | join(" ")' <<<"$out")"
for t in vda vdb; do
    img=$(jq -r --arg t "$t" '.images[] | select(.disk_target == $t) | .path' <<<"$out")
    check "$t image passes qemu-img check" qemu-img check -q "$img"
    rec=$(sf_records --min "$c" --max $((c + 10)) "$img" 2>&1) || true
    sf_note "sf-records $t: $rec"
    check_eq "$t image is a clean prefix with $c <= K <= $((c + 10))" CLEAN_PREFIX "${rec##*verdict=}"
done
check_eq "g2 is still shut off" "shut off" "$(sf_virsh n1 domstate g2)"
sf_stop_pid "$SF_TMP/lifewatch-g2.pid" || true
check_eq "libvirt saw no lifecycle event at all" "" "$(cat "$SF_TMP/lifewatch-g2.events")"
sf_done
