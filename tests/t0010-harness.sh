#!/usr/bin/env bash
#  t0010-harness: proves the test harness with the real parts and no
#  snapfleet code. A private libvirtd, a TCG guest writing records, then by
#  hand what the worker's file-cold strategy will do (suspend, qemu-img
#  convert -U of the overlay, resume) and the checks later tests rely on:
#  qemu-img check, a clean record prefix bounded by the console, the guest
#  writing on after resume, libvirt's own SUSPENDED/RESUMED events. Also an
#  offline copy of a powered-off two-disk guest and of a never-started
#  (--shutoff) guest. Finally everything is stopped by recorded pid.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0010-harness
sf_need_libvirt
sf_need jq
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
[ -x "$SF_LIFEWATCH" ] || skip "sf-lifewatch not built ($SF_LIFEWATCH)"

t=$(_sf_now_ms)
sf_build_guest
sf_note "guest build (or cache check): $(($(_sf_now_ms) - t)) ms"

t=$(_sf_now_ms)
sf_start_node n1
sf_note "node start: $(($(_sf_now_ms) - t)) ms"
check "libvirtd of node n1 answers on $SF_NODE_URI" sf_virsh n1 version

#  -- a running guest --------------------------------------------------
t=$(_sf_now_ms)
sf_guest n1 g1
sf_note "g1 first records: $(($(_sf_now_ms) - t)) ms after define"
g1=$(sf_guest_dir n1 g1)
log=$g1/console.log
check "g1 is persistent" bash -c "timeout 60 virsh -q -c '$SF_NODE_URI' dominfo g1 | grep -Eq '^Persistent: +yes'"
s=$(lv_guest_seq "$log")
check "g1 records advance (seq $s -> $((s + 20)))" lv_wait_seq "$log" $((s + 20)) 30

sf_lifewatch n1 g1

#  -- suspend, convert, resume: the file-cold strategy by hand -----------
a=$(lv_guest_seq "$log")
t_before=$(_sf_now_ms)
sf_virsh n1 suspend g1 >/dev/null
t_paused=$(_sf_now_ms)
b=$(lv_guest_seq "$log")
state=$(sf_virsh n1 domstate g1)
qemu-img convert -U -O qcow2 "$g1/disk.qcow2" "$SF_TMP/g1-copy.qcow2"
t_converted=$(_sf_now_ms)
sf_virsh n1 resume g1 >/dev/null
t_after=$(_sf_now_ms)
sf_note "pause: suspend call $((t_paused - t_before)) ms, convert $((t_converted - t_paused)) ms, resume call $((t_after - t_converted)) ms; console seq $a before, $b while paused"
check_eq "g1 was paused during the copy" paused "$state"
check "g1 writes on after resume" lv_wait_seq "$log" $((b + 20)) 30

check "qemu-img check passes on the copy" qemu-img check -q "$SF_TMP/g1-copy.qcow2"
backing=$(qemu-img info --output=json "$SF_TMP/g1-copy.qcow2" | jq -r '."backing-filename" // "none"')
check_eq "the copy is standalone (no backing file)" none "$backing"
out=$(sf_records --min "$a" --max $((b + 10)) "$SF_TMP/g1-copy.qcow2" 2>&1) || true
sf_note "sf-records g1 copy: $out"
check_eq "the copy is a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${out##*verdict=}"

#  -- what libvirt saw ---------------------------------------------------
if sf_stop_pid "$SF_TMP/lifewatch-g1.pid"; then
    ok "sf-lifewatch exits 0 on SIGTERM"
else
    fail "sf-lifewatch exits 0 on SIGTERM" "$(cat "$SF_TMP/lifewatch-g1.log")"
fi
events=$SF_TMP/lifewatch-g1.events
sf_note "lifewatch: $(tr '\n' ';' <"$events")"
check_eq "sf-lifewatch saw SUSPENDED then RESUMED" "SUSPENDED RESUMED" \
    "$(awk '{print $2}' "$events" | tr '\n' ' ' | sed 's/ $//')"
ts_s=$(awk '$2 == "SUSPENDED" {print $1; exit}' "$events")
ts_r=$(awk '$2 == "RESUMED" {print $1; exit}' "$events")
check_range "SUSPENDED at wall-clock ms within the suspend call" \
    $((t_before - 50)) "${ts_s:-x}" $((t_paused + 50))
check_range "RESUMED at wall-clock ms within the resume call" \
    $((t_converted - 50)) "${ts_r:-x}" $((t_after + 50))
sf_note "libvirt saw the guest suspended for $((${ts_r:-0} - ${ts_s:-0})) ms"

#  -- offline copies -----------------------------------------------------
#  A two-disk guest, powered off hard: both disks hold the records up to
#  the power cut, vdb at most one behind vda (lock-step writes)
t=$(_sf_now_ms)
sf_guest n1 g2 --second-disk
sf_note "g2 first records: $(($(_sf_now_ms) - t)) ms after define"
g2=$(sf_guest_dir n1 g2)
check "g2 console names both disks" grep -aq 'GUEST boot bootid=.* disks=/dev/vda /dev/vdb' "$g2/console.log"
lv_wait_seq "$g2/console.log" 30 30
sf_virsh n1 destroy g2 >/dev/null
c=$(lv_guest_seq "$g2/console.log")
check_eq "g2 is shut off after destroy" "shut off" "$(sf_virsh n1 domstate g2)"
#  No -U: QEMU is gone, so the image lock must be free
qemu-img convert -O qcow2 "$g2/disk.qcow2" "$SF_TMP/g2-vda.qcow2"
qemu-img convert -O qcow2 "$g2/disk2.qcow2" "$SF_TMP/g2-vdb.qcow2"
check "qemu-img check passes on the offline vda copy" qemu-img check -q "$SF_TMP/g2-vda.qcow2"
check "qemu-img check passes on the offline vdb copy" qemu-img check -q "$SF_TMP/g2-vdb.qcow2"
ja=$(sf_records --json --min "$c" --max $((c + 10)) "$SF_TMP/g2-vda.qcow2" 2>/dev/null || true)
jb=$(sf_records --json "$SF_TMP/g2-vdb.qcow2" 2>/dev/null || true)
sf_note "sf-records g2 vda: $ja"
sf_note "sf-records g2 vdb: $jb"
ka=$(jq -r .K <<<"$ja")
kb=$(jq -r .K <<<"$jb")
[[ $ka =~ ^[0-9]+$ ]] || ka=-99
[[ $kb =~ ^[0-9]+$ ]] || kb=-99
check_eq "g2 vda is a clean prefix with $c <= K <= $((c + 10))" CLEAN_PREFIX "$(jq -r .verdict <<<"$ja")"
check_eq "g2 vdb is a clean prefix" CLEAN_PREFIX "$(jq -r .verdict <<<"$jb")"
check_range "g2 vdb is at most one record behind vda" $((ka - 1)) "$kb" "$ka"
check_eq "g2 disks carry the same boot id" "$(jq -c .bootid_list <<<"$ja")" "$(jq -c .bootid_list <<<"$jb")"

#  A never-started guest: defined only, its overlay converts as it is
sf_guest n1 g3 --shutoff
g3=$(sf_guest_dir n1 g3)
check_eq "g3 is defined and shut off" "shut off" "$(sf_virsh n1 domstate g3)"
check "g3 overlay converts offline" qemu-img convert -O qcow2 "$g3/disk.qcow2" "$SF_TMP/g3-copy.qcow2"
check "qemu-img check passes on the g3 copy" qemu-img check -q "$SF_TMP/g3-copy.qcow2"
check "g3 copy holds no records (empty clean prefix)" sf_records --max 0 "$SF_TMP/g3-copy.qcow2"

#  -- stop everything by recorded pid ------------------------------------
node=$SF_TMP/n1
pids=$(lv_node_pids "$node" | tr '\n' ' ')
libvirtd_pid=$(tr -dc '0-9' <"$node/pids/libvirtd.pid")
virtlogd_pid=$(tr -dc '0-9' <"$node/pids/virtlogd.pid" 2>/dev/null || true)
qemu_pid=$(tr -dc '0-9' <"$node/pids/qemu-g1.pid")
sf_note "recorded live pids before stop: $pids"
for p in "$libvirtd_pid" "$virtlogd_pid" "$qemu_pid"; do
    case " $pids " in
        *" $p "*) ;;
        *) fail "pid '$p' (libvirtd/virtlogd/qemu g1) is recorded and alive before stop" ;;
    esac
done
t=$(_sf_now_ms)
check "lv_stop_node stops node n1" lv_stop_node "$node"
sf_note "node stop: $(($(_sf_now_ms) - t)) ms"
left=""
for p in $pids; do
    _lv_alive "$p" && left="$left $p"
done
check_eq "no libvirtd/virtlogd/qemu pid of ours survives" "" "$left"
check_eq "lv_node_pids finds nothing alive" "" "$(lv_node_pids "$node")"

sf_done
