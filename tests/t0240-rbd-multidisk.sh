#!/usr/bin/env bash
#  t0240-rbd-multidisk: the RBD pause with Ceph's monitor as shipped (no
#  paxos tuning: each self-managed snapshot waits for the monitor's ~1 s
#  batch), for a one-disk and a four-disk guest. Real parts: a single-node
#  Ceph started with CEPH_PAXOS=default, two TCG guests on RBD disks, the
#  scheduler, a worker in clone mode and the CLI.
#  (1) The mon runs with Ceph's default paxos interval (asked through its
#  admin socket).
#  (2) A one-disk guest m1 and a four-disk guest m4 (vda..vdd, all RBD),
#  snapshotted alternately, 4 jobs each (a snapshot waits for the monitor's
#  next batch: 0 to 1 s, by when it comes). Every job is done, paused (no
#  agent), libvirt saw one SUSPENDED/RESUMED; once a round reached 500 ms
#  every job's note names its own wait ("RBD snapshot (4 disks at once)
#  waited N ms for the Ceph monitor", N as the worker logged it), and so
#  does its RESUMED event; before that none has a note; at least one round
#  did (the monitor as shipped).
#  The worker starts every disk's snapshot at once, so a four-disk pause
#  holds one monitor round, not four: the longest four-disk pause is under
#  the longest one-disk pause plus one monitor interval, and every one
#  (pause_ms and libvirt's SUSPENDED->RESUMED) under 2 intervals, where
#  snapshots one after the other would hold 3 intervals or more.
#  (3) The first four-disk job: every disk has the job's snapshot, protected,
#  and its clone whose parent it is; vda's and vdb's clones hold clean
#  prefixes of the guest's records from one instant (the guest writes vdb
#  in lock-step with vda: K(vdb) is K(vda) or K(vda)-1), vdc's and vdd's
#  equal the imported data; the job left nothing else in the pool.
#  (4) `snapfleet plan` says, for the guests on that node (JSON and table),
#  that the worker's slowest recent round waited for the monitor, with its
#  figure, and its pause estimate covers it.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0240-rbd-multidisk
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq cmp
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

SIZE=$((16 << 20))
#  First record slot (sector) of the guest's record area
FIRST_SLOT=2049

records () { "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true; }

#  -- (1) Ceph with the monitor as shipped ---------------------------------
cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
t=$(_sf_now_ms)
CEPH_PAXOS=default ceph_start "$cdir" >/dev/null ||
    sf_die "single-node Ceph did not start (logs in $cdir/log)"
sf_note "Ceph (default monitor) up in $(($(_sf_now_ms) - t)) ms"
paxos=$(ceph_paxos "$cdir") || sf_die "cannot ask the mon for its paxos settings"
sf_note "mon: $paxos"
check "the mon batches with Ceph's default paxos interval (1 s)" \
    grep -qE '^paxos_propose_interval=1(\.0+)? ' <<<"$paxos"

sf_start_scheduler
catalog=$(sf_catalog_id)
sf_start_node n1
uri=$SF_NODE_URI
for img in m1a m4a m4b m4c m4d; do
    head -c "$SIZE" /dev/urandom >"$SF_TMP/$img.raw"
    ceph_import "$SF_TMP/$img.raw" "rbd/$img" || sf_die "rbd import of rbd/$img failed"
done
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" m1 "$SF_TMP/n1/vm" rbd/m1a || sf_die "RBD guest m1 did not boot"
ceph_lv_guest "$uri" m4 "$SF_TMP/n1/vm" rbd/m4a --rbd-disk vdb=rbd/m4b \
    --rbd-disk vdc=rbd/m4c --rbd-disk vdd=rbd/m4d || sf_die "RBD guest m4 did not boot"
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone
inst () { sf_cli instances --format json | jq -e --arg n "$1" '.instances[] | select(.name == $n)'; }
for g in m1 m4; do
    wait_for 30 inst "$g" >/dev/null || sf_die "$g never appeared in 'snapfleet instances'"
done
check_eq "m4 has four RBD disks, strategy rbd" "4 rbd rbd" \
    "$(inst m4 | jq -r '"\(.disks | length) \(.storage_class) \(.strategy)"')"

#  snap GUEST: snapshot it with libvirt's lifecycle events watched; sets
#  out (job JSON), seen (ms libvirt saw it suspended), a and b (console
#  record counts before and after)
snap ()
{
    local g=$1 log events ts_s ts_r rc=0 t
    log=$(sf_guest_dir n1 "$g")/console.log
    sf_lifewatch n1 "$g"
    lv_wait_seq "$log" 20 60
    a=$(lv_guest_seq "$log")
    t=$(_sf_now_ms)
    out=$(sf_cli snapshot --instance "$g" --wait --format json) || rc=$?
    b=$(lv_guest_seq "$log")
    sf_note "snapshot of $g in $(($(_sf_now_ms) - t)) ms: $(jq -c '{job_id, state, consistency, pause_ms, note}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
    check_eq "$g: snapshot --wait exits 0, job done, rbd, paused" "0 done rbd paused" \
        "$rc $(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$out")"
    sf_stop_pid "$SF_TMP/lifewatch-$g.pid" || true
    events=$SF_TMP/lifewatch-$g.events
    sf_note "lifewatch $g: $(tr '\n' ';' <"$events")"
    check_eq "$g: libvirt saw exactly one SUSPENDED then RESUMED" "SUSPENDED RESUMED" \
        "$(awk '{print $2}' "$events" | tr '\n' ' ' | sed 's/ $//')"
    ts_s=$(awk '$2 == "SUSPENDED" {print $1; exit}' "$events")
    ts_r=$(awk '$2 == "RESUMED" {print $1; exit}' "$events")
    seen=$((${ts_r:-0} - ${ts_s:-0}))
    sf_note "$g: pause_ms $(jq -r .pause_ms <<<"$out"), libvirt saw $seen ms suspended"
    sf_note "$g: worker: $(grep -a "job=$(jq -r .job_id <<<"$out") " "$SF_TMP/worker-n1.log" |
        grep -E 'phase paused|snapshot.* in [0-9]+ ms|phase resumed' | tr '\n' ';')"
}

#  -- (2) one disk and four disks, alternately -------------------------------
#  A snapshot waits for the monitor's next batch: with the default 1-s
#  interval anywhere from ~0 to ~1 s, depending on when it comes. So the
#  test takes ROUNDS jobs of each guest, alternately, and compares what
#  they held: four snapshots one after the other would wait for at least
#  three full batches more than one snapshot.
ROUNDS=4
interval=$(sed -n 's/^paxos_propose_interval=\([0-9.]*\) .*/\1/p' <<<"$paxos")
interval_ms=$(awk -v i="$interval" 'BEGIN { printf "%d", i * 1000 }')
declare -a p1=() p4=() s4=() jobs1=() jobs4=()
a4=0
b4=0
slowest=0           #  the longest round so far, as the worker logged it
#  note_check G JOB: the job's note names its round exactly when the
#  node's rounds so far reached 500 ms, with this round's figure
note_check ()
{
    local g=$1 job=$2 note round expect
    note=$(jq -r '.note // ""' <<<"$out")
    round=$(grep -a "job=$job " "$SF_TMP/worker-n1.log" |
            sed -n 's/.* snapshot(s) .* at once in \([0-9]*\) ms$/\1/p' | head -1)
    [ -n "$round" ] && [ "$round" -gt "$slowest" ] && slowest=$round
    if [ "$g" = m4 ]; then
        expect="RBD snapshot (4 disks at once) waited ${round:-?} ms for the Ceph monitor"
    else
        expect="RBD snapshot waited ${round:-?} ms for the Ceph monitor"
    fi
    if [ "$slowest" -ge 500 ]; then
        check "$g $job: the note names the monitor's wait (round ${round:-?} ms, slowest $slowest ms)" \
            grep -qF "$expect" <<<"$note"
        #  and so does its RESUMED event (the job JSON shows no event text:
        #  the worker's log of the event)
        check "$g $job: the RESUMED event names it too" \
            grep -aqF "job=$job vm=$g: phase resumed" <(grep -aF "$expect" "$SF_TMP/worker-n1.log")
    else
        check_eq "$g $job: no note after rounds under 500 ms (round ${round:-?} ms)" "" "$note"
    fi
}
for i in $(seq 1 "$ROUNDS"); do
    snap m1
    p1+=("$(jq -r .pause_ms <<<"$out")")
    jobs1+=("$(jq -r .job_id <<<"$out")")
    note_check m1 "${jobs1[-1]}"
    if [ "$i" = 1 ]; then
        job1=${jobs1[0]}
        clone=m1a-snapfleet-$catalog-$job1
        check_eq "m1: the snapshot is there, protected" "snapfleet-$catalog-$job1 true" \
            "$(ceph_rbd_snaps rbd/m1a | grep "^snapfleet-$catalog-$job1 " || true)"
        check "m1: the clone reads back as raw" ceph_export_raw "rbd/$clone" "$SF_TMP/clone.raw"
        rec=$(records "$SF_TMP/clone.raw" "$a" $((b + 10)))
        sf_note "sf-records m1 clone: $rec (console seq $a before, $b after)"
        check_eq "m1: the clone holds a clean prefix" CLEAN_PREFIX "${rec##*verdict=}"
        rm -f "$SF_TMP/clone.raw"
    fi
    snap m4
    p4+=("$(jq -r .pause_ms <<<"$out")")
    s4+=("$seen")
    jobs4+=("$(jq -r .job_id <<<"$out")")
    note_check m4 "${jobs4[-1]}"
    if [ "$i" = 1 ]; then
        out4=$out
        a4=$a
        b4=$b
    fi
done
max () { printf '%s\n' "$@" | sort -n | tail -1; }
mean () { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%d", s / NR }'; }
sf_note "monitor interval $interval_ms ms; one disk: pauses ${p1[*]} ms (mean $(mean "${p1[@]}"));" \
    "four disks: pauses ${p4[*]} ms (mean $(mean "${p4[@]}")), libvirt ${s4[*]} ms;" \
    "slowest round $slowest ms"
check_range "the monitor made at least one round wait 500 ms or more (as shipped)" 500 "$slowest" 60000
check_range "four disks: the longest pause is under the one-disk longest + one monitor interval" \
    1 "$(max "${p4[@]}")" $(($(max "${p1[@]}") + interval_ms - 1))
check_range "four disks: every pause is under 2 monitor intervals (one after the other: 3 or more)" \
    1 "$(max "${p4[@]}")" $((2 * interval_ms - 1))
#  libvirt's view adds the suspend and resume calls around the rounds, which
#  a loaded machine stretches (seen: 2011 ms against 2 intervals): it must
#  stay under the 3 intervals that snapshots one after the other take at least
check_range "four disks: libvirt saw every suspension under 3 monitor intervals" \
    0 "$(max "${s4[@]}")" $((3 * interval_ms - 1))

#  -- (3) the four-disk job's images ---------------------------------------
a=$a4
b=$b4
job4=$(jq -r .job_id <<<"$out4")
snapname=snapfleet-$catalog-$job4
check_eq "m4: one image per disk, each a clone in store rbd" "4 rbd rbd rbd rbd" \
    "$(jq -r '"\(.images | length) \([.images[].store] | join(" "))"' <<<"$out4")"
declare -A K
for d in a:vda b:vdb c:vdc d:vdd; do
    img=m4${d%%:*}
    dev=${d#*:}
    clone=$img-snapfleet-$catalog-$job4
    check_eq "m4 $dev: rbd/$img has the snapshot, protected" "$snapname true" \
        "$(ceph_rbd_snaps "rbd/$img" | grep "^$snapname " || true)"
    parent=$(ceph_rbd info --format json "rbd/$clone" |
             jq -r '.parent | "\(.pool)/\(.image)@\(.snapshot)"') || true
    check_eq "m4 $dev: the clone's parent is that snapshot" "rbd/$img@$snapname" "$parent"
    check_eq "m4 $dev: the job's image for $dev is the clone" "rbd/$clone" \
        "$(jq -r --arg d "$dev" '.images[] | select(.disk_target == $d) | .id' <<<"$out4")"
    check "m4 $dev: the clone reads back as raw" ceph_export_raw "rbd/$clone" "$SF_TMP/clone.raw"
    case $dev in
        vda|vdb)
            rec=$(records "$SF_TMP/clone.raw" "$a" $((b + 10)))
            sf_note "sf-records m4 $dev clone: $rec (console seq $a before, $b after)"
            check_eq "m4 $dev: the clone holds a clean prefix" CLEAN_PREFIX "${rec##*verdict=}"
            K[$dev]=$(sed -n 's/^K=\([0-9]*\) .*/\1/p' <<<"$rec")
            check "m4 $dev: the clone holds the imported data before the record area" \
                cmp -n $((FIRST_SLOT * 512)) "$SF_TMP/$img.raw" "$SF_TMP/clone.raw" ;;
        *)
            check "m4 $dev: the clone equals the imported image" \
                cmp "$SF_TMP/$img.raw" "$SF_TMP/clone.raw" ;;
    esac
    rm -f "$SF_TMP/clone.raw"
done
sf_note "m4: K(vda)=${K[vda]:-?} K(vdb)=${K[vdb]:-?}"
check "m4: vda and vdb are from one instant (K(vdb) is K(vda) or K(vda)-1)" \
    test "${K[vdb]:-x}" = "${K[vda]:-y}" -o "${K[vdb]:-x}" = "$((${K[vda]:-0} - 1))"
check_eq "m4: the job left its four snapshots and clones, nothing else" \
    "$(for i in a b c d; do printf 'm4%s-%s m4%s@%s ' "$i" "$snapname" "$i" "$snapname"; done)" \
    "$(ceph_sf_job_left rbd "$job4" | LC_ALL=C sort | tr '\n' ' ')"
for g in m1 m4; do
    check_eq "$g is running after its snapshot" running "$(sf_virsh n1 domstate "$g")"
done

#  -- (4) the plan says so ---------------------------------------------------
#  The worker reports its last round in its heartbeats; the plan's pause
#  estimate for an rbd instance on that node is at least that round
# shellcheck disable=SC2317  # called through wait_for
planned () { sf_cli plan --all --format json | jq -e '.jobs[] | select(.instance == "m4" and .note != null)'; }
wait_for 30 planned >/dev/null || sf_die "the plan never noted the monitor's wait for m4"
plan=$(sf_cli plan --all --format json)
sf_note "plan: $(jq -c '[.jobs[] | {instance, strategy, capture_ms, note}]' <<<"$plan")"
check_eq "plan: m4's note gives the node's slowest recent round" \
    "RBD snapshots on this node waited $slowest ms for the Ceph monitor; a guest without a guest agent is paused that long" \
    "$(jq -r '.jobs[] | select(.instance == "m4") | .note' <<<"$plan")"
check_range "plan: m4's pause estimate covers that round" "$slowest" \
    "$(jq -r '.jobs[] | select(.instance == "m4") | .capture_ms' <<<"$plan")" 600000
table=$(sf_cli plan --all --jobs 2>&1 || true)
sf_note "plan (table): $(tr '\n' ';' <<<"$table")"
check "plan (table) prints the note for node n1" \
    grep -qF "note: node n1: RBD snapshots on this node waited $slowest ms for the Ceph monitor" <<<"$table"
sf_done
