#!/usr/bin/env bash
#  t0200-snapshot-rbd: the rbd strategy, end to end, with real parts: a
#  single-node Ceph (tests/lib/ceph.sh), a TCG guest whose vda is an RBD
#  image, the scheduler, a worker with [storage.rbd] and the CLI.
#  (1) The inventory says storage class rbd, strategy rbd, and
#  `--strategy file-cold` is refused with a clear error and no job row.
#  (2) Clone mode: the job is done with strategy rbd and consistency paused
#  (the guest has no agent), pause_ms < 200 ms covers libvirt's own
#  SUSPENDED/RESUMED events, the snapshot snapfleet-<catalog>-<job> is
#  protected and the clone <image>-snapfleet-<catalog>-<job> exists and is
#  its child; the clone read
#  back as raw holds a clean prefix of the guest's records bounded by the
#  console and the imported data around them; the guest keeps writing.
#  (3) Export mode (worker restarted with overrides, `--strategy rbd` given
#  explicitly): the image lands in the dir store as a qcow2 that passes
#  qemu-img check, matches its sha256 and holds a clean prefix, and no
#  snapfleet-* snapshot of that job is left on the RBD image. Every name
#  carries the scheduler's catalogue id (snapfleet-<catalog>-<job>); (2b)
#  a snapshot, then an image, of the exact name the next job will make,
#  made beforehand, stop that job with SF_EEXIST before any pause and
#  stay. (4) With the
#  QEMU guest agent in the guest (lv_create_guest --agent), the worker
#  freezes instead of pausing: consistency frozen, no SUSPENDED event.
#  pause_ms < 200 ms is the issue's bound, checked per job. On a loaded
#  2-core machine the window's own parts can exceed it (measured: the
#  rbd_snap_create2 call, which librbd proxies to QEMU as the lock owner,
#  up to ~250 ms, and libvirt's resume up to ~440 ms at load 8); the notes
#  "worker's window of J" show where the time of each job went.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0200-snapshot-rbd
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq cmp
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

SIZE=$((64 << 20))
#  First record slot (sector) of the guest's record area
FIRST_SLOT=2049

records () { "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true; }

#  window_note JOB: what the worker logged of the pause window of JOB
#  (suspend call, snapshot call, resume), so a pause over the bound shows
#  where the time went (on a loaded 2-core machine: librbd and libvirt)
window_note ()
{
    sf_note "worker's window of $1: $(grep -a "job=$1 " "$SF_TMP/worker-n1.log" |
        grep -E 'phase paused|snapshot .* in [0-9]+ ms|phase resumed' |
        sed -e 's/^\([^ ]*\) [^ ]* [^ ]* job=[^ ]* vm=[^ ]* /\1 /' | tr '\n' ';')"
}

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
t=$(_sf_now_ms)
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
sf_note "Ceph up in $(($(_sf_now_ms) - t)) ms"

sf_start_scheduler
catalog=$(sf_catalog_id)     #  sf_naming: every RBD object a job makes carries it
sf_start_node n1
uri=$SF_NODE_URI
src=$SF_TMP/src.raw
head -c "$SIZE" /dev/urandom >"$src"
ceph_import "$src" rbd/g1 || sf_die "rbd import of rbd/g1 failed"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g1 "$SF_TMP/n1/vm" rbd/g1 || sf_die "RBD guest g1 did not boot"
log=$(sf_guest_dir n1 g1)/console.log
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone
work=$SF_TMP/w-n1/work

#  -- (1) inventory and a strategy that does not fit -------------------------
inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
j=$(inst)
sf_note "inventory: $(jq -c . <<<"$j")"
check_eq "g1 is running on n1" "running n1" "$(jq -r '"\(.state) \(.node)"' <<<"$j")"
check_eq "g1's storage class is rbd" rbd "$(jq -r .storage_class <<<"$j")"
check_eq "g1 will get the rbd strategy" rbd "$(jq -r .strategy <<<"$j")"
check "vda is listed with its RBD source rbd/g1" \
    jq -e '.disks | length == 1 and (.[0].target == "vda") and (.[0].source | test("rbd/g1"))' <<<"$j"

njobs () { sf_cli jobs --format json | jq '.jobs | length'; }
n0=$(njobs)
rc=0
err=$(sf_cli snapshot --instance g1 --strategy file-cold --format json 2>&1 >/dev/null) || rc=$?
sf_note "--strategy file-cold: exit $rc: $err"
check_eq "--strategy file-cold on an RBD guest exits 1" 1 "$rc"
check "the error says the strategy does not fit the instance" \
    grep -qF "strategy 'file-cold' does not fit instance 'g1' (storage class rbd, running)" <<<"$err"
check_eq "the refused request made no job" "$n0" "$(njobs)"

#  -- (2) clone mode -------------------------------------------------------
sf_lifewatch n1 g1
lv_wait_seq "$log" 20 60
a=$(lv_guest_seq "$log")
t=$(_sf_now_ms)
rc=0
out=$(sf_cli snapshot --instance g1 --wait --format json) || rc=$?
b=$(lv_guest_seq "$log")
sf_note "snapshot (clone mode) in $(($(_sf_now_ms) - t)) ms: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "snapshot --wait exits 0" 0 "$rc"
check_eq "job is done" "done" "$(jq -r .state <<<"$out")"
check_eq "instance/node/strategy/consistency" "g1 n1 rbd paused" \
    "$(jq -r '"\(.instance) \(.node) \(.strategy) \(.consistency)"' <<<"$out")"
job=$(jq -r .job_id <<<"$out")
pause_ms=$(jq -r .pause_ms <<<"$out")
sf_note "rbd pause_ms (clone mode): $pause_ms"
window_note "$job"
check_range "pause_ms is reported and under 200 ms" 1 "$pause_ms" 199
check "PAUSED comes before RESUMED in the job's events" \
    jq -e '[.events[].phase] | (index("paused") // 99) < (index("resumed") // -1)' <<<"$out"
#  The reason goes in the PAUSED event's text; the job JSON shows no event
#  text, so look for it where it does show: the JSON if it ever does, else
#  the worker's log of that event
if jq -e 'any(.events[]?; has("text"))' <<<"$out" >/dev/null; then
    why=$(jq -r '[.events[] | select(.phase == "paused") | .text // empty] | join(" ")' <<<"$out")
else
    why=$(grep -a "job=$job .*phase paused" "$SF_TMP/worker-n1.log" || true)
fi
sf_note "why paused: $why"
check "the PAUSED event explains the fallback from freeze (no guest agent)" \
    grep -qiE "freeze unavailable.*paused instead" <<<"$why"

clone=g1-snapfleet-$catalog-$job
check_eq "one image" 1 "$(jq -r '.images | length' <<<"$out")"
check_eq "the image is the clone: store, id, path" "rbd rbd/$clone rbd:rbd/$clone" \
    "$(jq -r '.images[0] | "\(.store) \(.id) \(.path)"' <<<"$out")"
check_eq "clone image: size is the virtual size, no sha256, raw, vda" "$SIZE - raw vda" \
    "$(jq -r '.images[0] | "\(.size) \(if .sha256 == "" then "-" else .sha256 end) \(.format) \(.disk_target)"' <<<"$out")"
check_eq "job JSON's image is the clone" "rbd/$clone" "$(jq -r .image.id <<<"$out")"

snaps=$(ceph_rbd_snaps rbd/g1) || sf_die "rbd snap ls rbd/g1 failed"
sf_note "snapshots of rbd/g1: $(tr '\n' ';' <<<"$snaps")"
check_eq "rbd/g1 has the snapshot snapfleet-$catalog-$job, protected" "snapfleet-$catalog-$job true" \
    "$(grep "^snapfleet-$catalog-$job " <<<"$snaps" || true)"
imgs=$(ceph_rbd_images rbd) || sf_die "rbd ls rbd failed"
check_eq "the clone rbd/$clone exists" "$clone" "$(grep -x "$clone" <<<"$imgs" || true)"
parent=$(ceph_rbd info --format json "rbd/$clone" | jq -r '.parent | "\(.pool)/\(.image)@\(.snapshot)"') || true
check_eq "the clone's parent is rbd/g1@snapfleet-$catalog-$job" "rbd/g1@snapfleet-$catalog-$job" "$parent"
t=$(_sf_now_ms)
check "the clone reads back as raw" ceph_export_raw "rbd/$clone" "$SF_TMP/clone.raw"
sf_note "export of the 64 MiB clone: $(($(_sf_now_ms) - t)) ms"
rec=$(records "$SF_TMP/clone.raw" "$a" $((b + 10)))
sf_note "sf-records clone: $rec (console seq $a before, $b after)"
check_eq "the clone holds a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"
check "the clone holds the imported data before the record area" \
    cmp -n $((FIRST_SLOT * 512)) "$src" "$SF_TMP/clone.raw"
rm -f "$SF_TMP/clone.raw"
check "images lists the clone with store rbd" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images --format json | jq -e --arg i 'rbd/$clone' '.images[] | select(.id == \$i and .store == \"rbd\")'"
check_eq "no scratch left in the worker's workdir" "" "$(find "$work" -type f | tr '\n' ' ')"

check_eq "g1 is running after the snapshot" running "$(sf_virsh n1 domstate g1)"
check "g1 keeps writing (seq past $((b + 20)))" lv_wait_seq "$log" $((b + 20)) 60

sf_stop_pid "$SF_TMP/lifewatch-g1.pid" || true
events=$SF_TMP/lifewatch-g1.events
sf_note "lifewatch: $(tr '\n' ';' <"$events")"
check_eq "libvirt saw exactly one SUSPENDED then RESUMED" "SUSPENDED RESUMED" \
    "$(awk '{print $2}' "$events" | tr '\n' ' ' | sed 's/ $//')"
ts_s=$(awk '$2 == "SUSPENDED" {print $1; exit}' "$events")
ts_r=$(awk '$2 == "RESUMED" {print $1; exit}' "$events")
seen=$((${ts_r:-0} - ${ts_s:-0}))
sf_note "pause_ms reported $pause_ms, libvirt saw $seen ms suspended"
#  pause_ms runs from the suspend call's start to the resume call's return,
#  so it covers what libvirt saw (50 ms for event delivery); how much more
#  it is depends on libvirt's load, which is not this test's business
check_range "pause_ms covers libvirt's suspended interval" $((seen - 50)) "$pause_ms" 60000

#  -- (2b) a name the next job will make exists: not ours, left alone ------
#  Job ids are J<seq> of the scheduler's jobs table, so the next one is
#  known: someone made the snapshot (then the clone) of exactly that name.
#  The job fails with SF_EEXIST before any pause, that object stays, and
#  nothing of the job is left.
check_eq "the catalogue id is 16 lowercase hex digits" 16 "$(tr -dc '0-9a-f' <<<"$catalog" | wc -c)"
next_job ()
{
    python3 - "$SF_TMP/scheduler/scheduler.db" <<'PY'
import sqlite3, sys
row = sqlite3.connect (sys.argv [1]).execute (
    "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone ()
print ("J%d" % ((row [0] if row else 0) + 1))
PY
}
for kind in snapshot image; do
    jn=$(next_job)
    if [ "$kind" = snapshot ]; then
        obj=rbd/g1@snapfleet-$catalog-$jn
        ceph_snap_create "$obj" || sf_die "cannot create $obj"
    else
        obj=rbd/g1-snapfleet-$catalog-$jn
        ceph_rbd create --size 4M "$obj" || sf_die "cannot create $obj"
    fi
    rc=0
    out3=$(sf_cli snapshot --instance g1 --wait --format json) || rc=$?
    sf_note "snapshot with $obj already there: exit $rc: $(jq -c '{job_id, state, error}' <<<"$out3" 2>/dev/null || printf '%s' "$out3")"
    check_eq "snapshot --wait exits 1 (the job failed)" 1 "$rc"
    check_eq "job $jn failed with SF_EEXIST (3)" "$jn failed 3"         "$(jq -r '"\(.job_id) \(.state) \(.error.code)"' <<<"$out3" 2>/dev/null)"
    check_eq "its error says the $kind is not ours" "$kind '$obj' already exists; not ours, left alone" \
        "$(jq -r '.error.text // ""' <<<"$out3" 2>/dev/null)"
    check_eq "no pause: no paused event" true \
        "$(jq -r '[.events[]?.phase] | index("paused") == null' <<<"$out3" 2>/dev/null)"
    if [ "$kind" = snapshot ]; then
        check_eq "the snapshot $obj is still there" "snapfleet-$catalog-$jn false" \
            "$(ceph_rbd_snaps rbd/g1 | grep "^snapfleet-$catalog-$jn " || true)"
        ceph_rbd snap rm --no-progress "$obj" >/dev/null 2>&1 || sf_die "cannot remove $obj"
    else
        check_eq "the image $obj is still there" "${obj#rbd/}" \
            "$(ceph_rbd_images rbd | grep -x "${obj#rbd/}" || true)"
        check_eq "job $jn left nothing else in the pool" "${obj#rbd/}" \
            "$(ceph_sf_job_left rbd "$jn" | tr '\n' ' ' | sed 's/ $//')"
        ceph_rbd rm --no-progress "$obj" >/dev/null 2>&1 || sf_die "cannot remove $obj"
    fi
    check "the worker holds no leftovers entry for $jn" test ! -e "$work/leftovers/$jn"
done
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"

#  -- (3) export mode ------------------------------------------------------
welcomes () { grep -c 'welcomed by the scheduler' "$SF_TMP/worker-n1.log" || true; }
w0=$(welcomes)
rc=0
sf_stop_pid "$SF_TMP/worker-n1.pid" || rc=$?
check_eq "the clone-mode worker exits 0 on SIGTERM" 0 "$rc"
ceph_sf_worker n1 "$uri" storage.rbd.mode=export
wait_for 30 bash -c "[ \"\$(grep -c 'welcomed by the scheduler' '$SF_TMP/worker-n1.log')\" -gt $w0 ]" ||
    sf_die "the export-mode worker was never welcomed"
wait_for 30 inst >/dev/null || sf_die "g1 is gone from the inventory"
a=$(lv_guest_seq "$log")
t=$(_sf_now_ms)
rc=0
out2=$(sf_cli snapshot --instance g1 --strategy rbd --wait --format json) || rc=$?
b=$(lv_guest_seq "$log")
sf_note "snapshot (export mode) in $(($(_sf_now_ms) - t)) ms: $(jq -c . <<<"$out2" 2>/dev/null || printf '%s' "$out2")"
check_eq "snapshot --strategy rbd --wait exits 0" 0 "$rc"
check_eq "job is done, strategy rbd, consistency paused" "done rbd paused" \
    "$(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$out2")"
job2=$(jq -r .job_id <<<"$out2")
pause2=$(jq -r .pause_ms <<<"$out2")
sf_note "rbd pause_ms (export mode): $pause2"
window_note "$job2"
check_range "pause_ms is under 200 ms in export mode too" 1 "$pause2" 199
check_eq "one image, in the dir store, qcow2, for vda" "1 dir qcow2 vda" \
    "$(jq -r '"\(.images | length) \(.images[0].store) \(.images[0].format) \(.images[0].disk_target)"' <<<"$out2")"
img=$(jq -r .image.path <<<"$out2")
check "image file exists" test -f "$img"
check "qemu-img check passes" qemu-img check -q "$img"
check_eq "image is a standalone qcow2" "qcow2 none" \
    "$(qemu-img info --output=json "$img" | jq -r '"\(.format) \(."backing-filename" // "none")"')"
check_eq "reported size is the file's size" "$(stat -c %s "$img")" "$(jq -r .image.size <<<"$out2")"
check_eq "reported sha256 is the file's" "$(sha256sum "$img" | cut -d' ' -f1)" "$(jq -r .image.sha256 <<<"$out2")"
check_eq "metadata beside the image names the job, catalogue and strategy rbd" \
    "$job2 $catalog rbd g1" \
    "$(jq -r '"\(.job_id) \(.catalog_id) \(.strategy) \(.instance_name)"' "${img%.qcow2}.json" 2>/dev/null)"
rec=$(records "$img" "$a" $((b + 10)))
sf_note "sf-records export: $rec (console seq $a before, $b after)"
check_eq "the exported image holds a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"

left=$(ceph_sf_job_left rbd "$job2") || sf_die "cannot list rbd pool"
check_eq "export mode leaves nothing of job $job2 in the pool" "" "$(printf '%s' "$left" | tr '\n' ' ')"
check_eq "job $job's snapshot and clone are untouched" "g1-snapfleet-$catalog-$job g1@snapfleet-$catalog-$job " \
    "$(ceph_sf_job_left rbd "$job" | LC_ALL=C sort | tr '\n' ' ')"
check_eq "no snapfleet-* snapshot on rbd/g1 but job $job's" "snapfleet-$catalog-$job" \
    "$(ceph_rbd_snaps rbd/g1 | awk '$1 ~ /^snapfleet-/ {print $1}' | tr '\n' ' ' | sed 's/ $//')"
check_eq "no scratch left in the worker's workdir" "" "$(find "$work" -type f | tr '\n' ' ')"
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"
check "g1 keeps writing (seq past $((b + 20)))" lv_wait_seq "$log" $((b + 20)) 60

#  -- (4) a guest with the QEMU guest agent: freeze instead of pause ---------
if ! command -v qemu-ga >/dev/null 2>&1 && [ ! -x /usr/sbin/qemu-ga ]; then
    skip_check "a guest with an agent is frozen, not paused" "needs qemu-ga (qemu-guest-agent)"
    sf_done
fi
sf_virsh n1 destroy g1 >/dev/null || true
ceph_import "$src" rbd/g3 || sf_die "rbd import of rbd/g3 failed"
ceph_lv_guest "$uri" g3 "$SF_TMP/n1/vm" rbd/g3 --agent || sf_die "RBD guest g3 (with agent) did not boot"
log3=$(sf_guest_dir n1 g3)/console.log
agent_up () { sf_virsh n1 qemu-agent-command g3 '{"execute":"guest-ping"}'; }
wait_for 60 agent_up >/dev/null || sf_die "g3's guest agent never answered"
wait_for 30 bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' instances --format json | jq -e '.instances[] | select(.name == \"g3\" and .strategy == \"rbd\")'" >/dev/null ||
    sf_die "g3 never appeared with strategy rbd"
sf_lifewatch n1 g3
a=$(lv_guest_seq "$log3")
rc=0
out3=$(sf_cli snapshot --instance g3 --wait --format json) || rc=$?
b=$(lv_guest_seq "$log3")
sf_note "snapshot (agent, export mode): $(jq -c . <<<"$out3" 2>/dev/null || printf '%s' "$out3")"
check_eq "the agent guest's snapshot is done, strategy rbd, consistency frozen" "0 done rbd frozen" \
    "$rc $(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$out3")"
sf_note "freeze->thaw pause_ms: $(jq -r .pause_ms <<<"$out3")"
check_range "pause_ms (the freeze->thaw window) is reported" 0 "$(jq -r .pause_ms <<<"$out3")" 60000
job3=$(jq -r .job_id <<<"$out3")
window_note "$job3"
if jq -e 'any(.events[]?; has("text"))' <<<"$out3" >/dev/null; then
    why=$(jq -r '[.events[] | select(.phase == "paused") | .text // empty] | join(" ")' <<<"$out3")
else
    why=$(grep -a "job=$job3 .*phase paused" "$SF_TMP/worker-n1.log" || true)
fi
check "the PAUSED event says frozen" grep -q "frozen" <<<"$why"
img3=$(jq -r .image.path <<<"$out3")
rec=$(records "$img3" "$a" $((b + 10)))
sf_note "sf-records agent guest: $rec (console seq $a before, $b after)"
check_eq "its image holds a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"
sf_stop_pid "$SF_TMP/lifewatch-g3.pid" || true
check_eq "libvirt saw no SUSPENDED/RESUMED for the frozen guest" "" \
    "$(awk '{print $2}' "$SF_TMP/lifewatch-g3.events" | tr '\n' ' ' | sed 's/ $//')"
check_eq "g3 is running" running "$(sf_virsh n1 domstate g3)"
check "g3's agent still answers (thawed)" agent_up
sf_done
