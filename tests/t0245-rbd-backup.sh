#!/usr/bin/env bash
#  t0245-rbd-backup: the backup-API path for RBD disks (issue 12, item 2), a
#  configured choice: a worker with [storage.rbd] snapshot = backup copies
#  a running RBD guest's disk with libvirt's push backup, as file-live does
#  a file disk (QEMU reads rbd/g1 through its own Ceph client), instead of
#  an RBD snapshot inside a pause. Real parts: a single-node Ceph, a TCG
#  guest g1 on rbd/g1 writing fsync'ed records, no guest agent, the
#  scheduler, the worker and the CLI.
#  Checked as a user would: the job (strategy rbd, as the inventory says)
#  is done with method "backup-api" in `job show`, consistency "crash",
#  pause_ms 0, and libvirt's lifecycle events show no SUSPENDED at all; its
#  image is in the image store (store dir, qcow2, hashed), passes qemu-img
#  check and holds a clean prefix whose end lies in the job's window; Ceph
#  is left as it was (no snapshot of rbd/g1, no new image); the guest runs
#  and writes on; no backup job is left on the domain, no scratch. (A
#  control after the job, virsh suspend + resume, shows the watcher sees
#  a pause.)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0245-rbd-backup
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq qemu-img
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"

SIZE=$((64 << 20))

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"

sf_start_scheduler
sf_start_node n1
uri=$SF_NODE_URI
head -c "$SIZE" /dev/urandom >"$SF_TMP/src.raw"
ceph_import "$SF_TMP/src.raw" rbd/g1 || sf_die "rbd import of rbd/g1 failed"
rm -f "$SF_TMP/src.raw"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g1 "$SF_TMP/n1/vm" rbd/g1 || sf_die "RBD guest g1 did not boot"
log=$(sf_guest_dir n1 g1)/console.log
ceph_sf_worker n1 "$uri" storage.rbd.snapshot=backup
work=$SF_TMP/w-n1/work

# shellcheck disable=SC2317  # called through wait_for
inst () { sf_cli instances --format json | jq -e --arg n "$1" '.instances[] | select(.name == $n)'; }
# shellcheck disable=SC2317  # called through wait_for
phase_seen () { sf_cli job show "$1" --format json | jq -e --arg p "$2" 'any(.events[]; .phase == $p)' >/dev/null; }
# shellcheck disable=SC2317  # called through wait_for
ended () { sf_cli job show "$1" --format json | jq -e '.state == "done" or .state == "failed" or .state == "cancelled"' >/dev/null; }
wait_for 30 inst g1 >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
check_eq "g1's storage class and strategy are rbd" "rbd rbd" \
    "$(inst g1 | jq -r '"\(.storage_class) \(.strategy)"')"
pool_before=$(ceph_rbd_images rbd | sort | tr '\n' ' ')
snaps_before=$(ceph_rbd_snaps rbd/g1 | tr '\n' ' ')

sf_lifewatch n1 g1
lv_wait_seq "$log" 20 60
a=$(lv_guest_seq "$log")
t0=$(_sf_now_ms)
rc=0
out=$(sf_cli snapshot --instance g1 --format json) || rc=$?
check_eq "snapshot of g1 is accepted" 0 "$rc"
job=$(jq -r '.job_id // empty' <<<"$out" 2>/dev/null || true)
[ -n "$job" ] || sf_die "no job id from 'snapshot': $out"
wait_for 120 phase_seen "$job" resumed || fail "job $job never said RESUMED"
m=$(lv_guest_seq "$log")
wait_for 300 ended "$job" || fail "job $job did not end"
b=$(lv_guest_seq "$log")
out=$(sf_cli job show "$job" --format json)
sf_note "job $job in $(($(_sf_now_ms) - t0)) ms: $(jq -c . <<<"$out")"
check_eq "job done, strategy rbd, method backup-api, consistency crash, pause_ms 0" \
    "done rbd backup-api crash 0" \
    "$(jq -r '"\(.state) \(.strategy) \(.method) \(.consistency) \(.pause_ms)"' <<<"$out")"
check_eq "phases in order" "queued paused resumed converted upload_wait uploaded" \
    "$(jq -r '[.events[].phase | select(. != "done")] | join(" ")' <<<"$out")"
human=$(sf_cli job show "$job")
check "'job show' names the method" grep -qE '^method +backup-api$' <<<"$human"

img=$(jq -r '.images[0].path' <<<"$out")
check_eq "one image, in the dir store, qcow2, for vda" "1 dir qcow2 vda" \
    "$(jq -r '"\(.images | length) \(.images[0].store) \(.images[0].format) \(.images[0].disk_target)"' <<<"$out")"
check "the image passes qemu-img check" qemu-img check -q "$img"
check_eq "its sha256 is the file's" "$(sha256sum "$img" | cut -d' ' -f1)" \
    "$(jq -r '.images[0].sha256' <<<"$out")"
check_eq "its virtual size is the RBD disk's" "$SIZE" \
    "$(qemu-img info --output=json "$img" | jq -r '."virtual-size"')"
rec=$(sf_records --min "$a" --max $((m + 10)) "$img" 2>&1) || true
sf_note "sf-records: $rec (console: $a before the job, $m at RESUMED, $b at the end)"
check_eq "the image holds a clean prefix with $a <= K <= $((m + 10))" CLEAN_PREFIX "${rec##*verdict=}"

events=$SF_TMP/lifewatch-g1.events
during=$(awk '$2 == "SUSPENDED"' "$events")
#  A control: the watcher does see a pause (virsh suspend + resume, after
#  the job)
sf_virsh n1 suspend g1 >/dev/null
sf_virsh n1 resume g1 >/dev/null
# shellcheck disable=SC2317  # called through wait_for
saw_control () { awk '$2 == "RESUMED"' "$events" | grep -q .; }
check "the watcher sees the control's SUSPENDED/RESUMED" wait_for 20 saw_control
sf_stop_pid "$SF_TMP/lifewatch-g1.pid" || true
sf_note "lifewatch g1: $(tr '\n' ';' <"$events")"
check_eq "libvirt saw no SUSPENDED event during the job (no pause without an agent)" "" \
    "$during"
check_eq "only the control's SUSPENDED afterwards" 1 "$(awk '$2 == "SUSPENDED"' "$events" | wc -l)"

check_eq "Ceph: no new snapshot of rbd/g1" "$snaps_before" "$(ceph_rbd_snaps rbd/g1 | tr '\n' ' ')"
check_eq "Ceph: no new image in the pool" "$pool_before" "$(ceph_rbd_images rbd | sort | tr '\n' ' ')"
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"
check "g1 keeps writing (seq past $((b + 20)))" lv_wait_seq "$log" $((b + 20)) 60
check_eq "no job left on the domain" None \
    "$(sf_virsh n1 domjobinfo g1 | awk '/^Job type:/ {print $3}')"
check_eq "no scratch left in the worker's workdir" "" "$(find "$work" -type f | tr '\n' ' ')"
sf_done
