#!/usr/bin/env bash
#  f0500-faults: the fault-injection suite (issue 11), real daemons only.
#
#  The fleet: a single-node Ceph; node n1 (its own libvirtd, worker and a
#  dir image store on a tmpfs this test mounts, so the store can "stop":
#  filled up) with a running file-backed guest g1, a running RBD
#  guest r1 and SF_FAULT_IDLE shut-off file domains; node n2 (its own
#  libvirtd; its worker runs in a network namespace the test makes, joined
#  to this host by a veth pair, so the link can be cut) with two running
#  file-backed guests g2, g3 and SF_FAULT_IDLE shut-off file domains. The
#  scheduler listens on the host's end of the veth pair, max_paused = 1,
#  max_uploads = 2; workers pause at most SF_FAULT_MAX_PAUSE.
#
#  Phases, each one or more bulks of every instance (2 * IDLE + 4 jobs):
#    a  workers SIGKILLed and restarted, SF_FAULT_KILLS times in all, each
#       at a point picked at random: a guest just paused, a conversion in
#       scratch, an upload in the store, a job's result, or a random delay
#    b  the scheduler SIGKILLed and restarted SF_FAULT_SCHED_KILLS times
#    c  the link between the scheduler and n2's worker cut and restored
#       (some cuts shorter, some longer than node_timeout)
#    d  Ceph frozen (SIGSTOP of its daemons) and n1's image store full
#       (ENOSPC) mid-bulk, each returning after a while
#  Then `snapfleet gc`.
#
#  The witnesses are independent of snapfleet: libvirt's lifecycle events
#  of every domain (tests/tools/sf-lifewatch), samples of the stores'
#  temporary files, the store directories, the work directories and the
#  Ceph pool. Asserted, per bulk and at the end: every job ended done,
#  failed with a reason, skipped with a reason or cancelled (none lost, none
#  left running); one job per instance per bulk; no image recorded twice
#  and every catalogued image present; guests paused past their deadline 0
#  and left paused 0; no guest paused twice by one job; at most max_paused
#  guests paused and max_uploads uploads at any instant; after gc, nothing
#  in the stores, work directories or the pool that the catalogue does not
#  hold. The seed is printed: SF_FAULT_SEED=N replays the same choices.
set -euo pipefail
# shellcheck source=../lib.sh source-path=SCRIPTDIR/..
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../lib/ceph.sh source-path=SCRIPTDIR/..
. "$(dirname "$0")/../lib/ceph.sh"
# shellcheck source=../lib/fleet.sh source-path=SCRIPTDIR/..
. "$(dirname "$0")/../lib/fleet.sh"
# shellcheck source=../lib/faults.sh source-path=SCRIPTDIR/..
. "$(dirname "$0")/../lib/faults.sh"

export SF_TEST_TIMEOUT=${SF_TEST_TIMEOUT:-1500}
sf_init f0500-faults
sf_need_libvirt
sf_need_root
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq ip mount
[ -x "$SF_LIFEWATCH" ] || skip "sf-lifewatch not built ($SF_LIFEWATCH)"

SEED=${SF_FAULT_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
sf_note "seed $SEED (replay with SF_FAULT_SEED=$SEED)"
PHASES=${SF_FAULT_PHASES:-abcd}
IDLE=${SF_FAULT_IDLE:-25}
KILLS=${SF_FAULT_KILLS:-30}
SCHED_KILLS=${SF_FAULT_SCHED_KILLS:-5}
MAX_PAUSE_S=${SF_FAULT_MAX_PAUSE:-20}
MAX_PAUSED=1
MAX_UPLOADS=2
export LV_GUEST_PACE_MS=${LV_GUEST_PACE_MS:-20} LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-180}

#  -- the parts --------------------------------------------------------------
faults_netns "sff$$"
cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
SF_SCHED_HOST=$FAULT_HOST_IP sf_start_scheduler "limits.max_paused=$MAX_PAUSED" \
    "limits.max_uploads=$MAX_UPLOADS" limits.retry_backoff=2s limits.max_attempts=3 \
    gc.grace=1s
sf_start_node n1
sf_start_node n2
ceph_lv_secret "$(sf_node_uri n1)" admin >/dev/null || sf_die "cannot define the ceph secret on n1"

#  n1's store: a tmpfs of our own (filled up in phase d)
mkdir -p "$SF_TMP/store-n1" "$SF_TMP/store-n2"
mount -t tmpfs -o size=2g,mode=0755 sf-faults "$SF_TMP/store-n1" ||
    sf_die "cannot mount a tmpfs for n1's store"
sf_cleanup_push umount -l "$SF_TMP/store-n1"

head -c 16M /dev/urandom >"$SF_TMP/src.raw"
boot () { sf_guest "$1" "$2" --size 16M; }
boot n1 g1 >"$SF_TMP/boot-g1.log" 2>&1 &
p1=$!
boot n2 g2 >"$SF_TMP/boot-g2.log" 2>&1 &
p2=$!
boot n2 g3 >"$SF_TMP/boot-g3.log" 2>&1 &
p3=$!
{ ceph_import "$SF_TMP/src.raw" rbd/r1 &&
    ceph_lv_guest "$(sf_node_uri n1)" r1 "$SF_TMP/n1/vm" rbd/r1; } >"$SF_TMP/boot-r1.log" 2>&1 &
p4=$!
for i in $(seq 1 "$IDLE"); do
    sf_guest n1 "s1-$i" --size 4M --shutoff >/dev/null 2>&1 || sf_die "cannot define s1-$i"
    sf_guest n2 "s2-$i" --size 4M --shutoff >/dev/null 2>&1 || sf_die "cannot define s2-$i"
done
for p in $p1 $p2 $p3 $p4; do
    wait "$p" || sf_die "a guest did not boot: $(tail -n 3 "$SF_TMP"/boot-*.log)"
done
NJOBS=$((2 * IDLE + 4))

start_n1 () {
    ceph_sf_worker n1 "$(sf_node_uri n1)" \
        "imagestore.path=$SF_TMP/store-n1" "pause.max_pause=${MAX_PAUSE_S}s" worker.max_jobs=4
}
start_n2 () {
    SF_WORKER_NETNS=$FAULT_NS sf_start_worker n2 "$(sf_node_uri n2)" \
        "imagestore.path=$SF_TMP/store-n2" "pause.max_pause=${MAX_PAUSE_S}s" worker.max_jobs=4
}
start_n1
start_n2
inv_ready () {
    sf_cli instances --format json | jq -e --argjson n "$NJOBS" '.instances | length == $n'
}
wait_for 90 inv_ready >/dev/null || sf_die "not all $NJOBS instances listed"

#  -- the witnesses ----------------------------------------------------------
sf_lifewatch_node n1
sf_lifewatch_node n2
sf_storewatch uploads 10 "$SF_TMP/store-n1/*.qcow2.tmp" "$SF_TMP/store-n2/*.qcow2.tmp"
EVENTS=("$SF_TMP/lifewatch-node-n1.events" "$SF_TMP/lifewatch-node-n2.events")

#  -- the faults -------------------------------------------------------------
#  kill_worker NODE: SIGKILL its worker and start it again
kill_worker ()
{
    sf_kill_pid "$SF_TMP/worker-$1.pid" KILL
    faults_mark KILL "$1"       #  once it is gone: nothing it started writes after
    "start_$1" >/dev/null
}

suspended_count () { cat "${EVENTS[@]}" | grep -c ' SUSPENDED ' || true; }
done_count () { grep -c 'job done (' "$SF_TMP/worker-$1.log" 2>/dev/null || true; }
scratch_busy () { compgen -G "$SF_TMP/w-$1/work/J*/*.qcow2*" >/dev/null; }
upload_busy () { compgen -G "$SF_TMP/store-$1/*.qcow2.tmp" >/dev/null; }

#  wait_point NODE POINT: wait (bounded 15 s) for a moment of that kind on
#  NODE; returns 1 if it did not come
wait_point ()
{
    local node=$1 point=$2 before deadline
    deadline=$(($(_sf_now_ms) + 15000))
    case $point in
        pause) before=$(suspended_count) ;;
        result) before=$(done_count "$node") ;;
    esac
    while [ "$(_sf_now_ms)" -lt "$deadline" ]; do
        case $point in
            pause) [ "$(suspended_count)" -gt "$before" ] && return 0 ;;
            convert) scratch_busy "$node" && return 0 ;;
            upload) upload_busy "$node" && return 0 ;;
            result) [ "$(done_count "$node")" -gt "$before" ] && return 0 ;;
        esac
        sleep 0.02
    done
    return 1
}

#  start_bulk: a bulk of every instance; prints its id. (The CLI exits 1
#  when some job of it failed already at creation: that is checked later.)
start_bulk ()
{
    local out id
    out=$(sf_cli snapshot --all --format json 2>"$SF_TMP/snapshot.err") || true
    id=$(jq -r '.bulk_id // empty' <<<"$out" 2>/dev/null || true)
    [ -n "$id" ] || sf_die "snapshot --all made no bulk: $out $(cat "$SF_TMP/snapshot.err")"
    printf '%s\n' "$id"
}

BULKS=()
declare -A BULK_PHASE=()

#  finish_bulk ID: wait for it (riding out faults still injected), record it
finish_bulk ()
{
    local id=$1 out
    out=$(faults_wait_bulk "$id" 420) || true
    printf '%s\n' "$out" >"$SF_TMP/bulk-$id.json"
    BULKS+=("$id")
}

phase_a ()
{
    local kills=0 id node point points=(pause convert upload result delay)
    while [ "$kills" -lt "$KILLS" ]; do
        id=$(start_bulk)
        BULK_PHASE[$id]=a
        while [ "$kills" -lt "$KILLS" ] &&
            sf_cli --timeout 5 bulk show "$id" --format json 2>/dev/null |
            jq -e '.state == "running"' >/dev/null; do
            node=n$(faults_rand 1 2)
            point=${points[$(faults_rand 0 4)]}
            if [ "$point" = delay ]; then
                sleep "0.$(faults_rand 1 9)"
            elif ! wait_point "$node" "$point"; then
                continue
            fi
            kills=$((kills + 1))
            sf_note "a: kill $kills of $KILLS: worker $node at $point (bulk $id)"
            kill_worker "$node"
        done
        finish_bulk "$id"
    done
}

phase_b ()
{
    local k id
    id=$(start_bulk)
    BULK_PHASE[$id]=b
    for k in $(seq 1 "$SCHED_KILLS"); do
        sleep "$(faults_rand 1 4).$(faults_rand 0 9)"
        sf_note "b: kill $k of $SCHED_KILLS: scheduler (bulk $id)"
        sf_kill_pid "$SF_TMP/scheduler.pid" KILL
        sleep "0.$(faults_rand 0 9)"
        sf_restart_scheduler
    done
    finish_bulk "$id"
}

phase_c ()
{
    local k id cut
    id=$(start_bulk)
    BULK_PHASE[$id]=c
    for k in 1 2 3; do
        sleep "$(faults_rand 1 3)"
        cut=$(faults_rand 2 12)
        sf_note "c: cut $k: n2's link down for ${cut} s (bulk $id)"
        faults_link down
        sleep "$cut"
        faults_link up
    done
    finish_bulk "$id"
}

phase_d ()
{
    local id t
    #  Ceph stops as the bulk starts (its RBD job meets it), the store
    #  fills while an upload into it runs
    t=$(faults_rand 3 10)
    ceph_freeze "$cdir"
    id=$(start_bulk)
    BULK_PHASE[$id]=d
    sf_note "d: Ceph frozen for $t s (bulk $id)"
    sleep "$t"
    ceph_thaw "$cdir"
    wait_point n1 upload || sf_note "d: no upload into n1's store seen"
    t=$(faults_rand 3 10)
    sf_note "d: n1's store full for $t s (bulk $id)"
    #  The running upload takes space between df and fallocate (a fast
    #  copy into the tmpfs can take a lot): try again with what is left
    local try
    for try in 1 2 3 4 5; do
        fallocate -l "$(df --output=avail -B1 "$SF_TMP/store-n1" | tail -n 1)" \
            "$SF_TMP/store-n1/fill.blob" 2>/dev/null && break
        rm -f "$SF_TMP/store-n1/fill.blob"
        [ "$try" = 5 ] && sf_die "cannot fill n1's store"
    done
    sleep "$t"
    rm -f "$SF_TMP/store-n1/fill.blob"
    finish_bulk "$id"
}

for phase in a b c d; do
    [[ $PHASES == *$phase* ]] || continue
    t=$(_sf_now_ms)
    "phase_$phase"
    sf_note "phase $phase took $(($(_sf_now_ms) - t)) ms"
done

#  -- every bulk: no job lost, none twice, every end with a reason --------------
for id in "${BULKS[@]}"; do
    f=$SF_TMP/bulk-$id.json
    p=${BULK_PHASE[$id]}
    check_eq "$p/$id: the bulk is over" "done" "$(jq -r '.state' "$f")"
    check_eq "$p/$id: one job per instance ($NJOBS)" "$NJOBS $NJOBS" \
        "$(jq -r '"\(.jobs | length) \([.jobs[] | "\(.node)/\(.instance)"] | unique | length)"' "$f")"
    check_eq "$p/$id: every job ended (done, failed, skipped or cancelled)" 0 \
        "$(jq '[.jobs[] | select(.state | IN("done", "failed", "skipped", "cancelled") | not)] | length' "$f")"
    check_eq "$p/$id: every failed or skipped job says why" 0 \
        "$(jq '[.jobs[] | select(.state == "failed" or .state == "skipped")
                | select((.error.text // "") == "")] | length' "$f")"
    sf_note "$p/$id: $(jq -c '[.jobs[] | .state] | group_by(.) | map({(.[0]): length}) | add' "$f")"
done
if [[ $PHASES == *b* ]] || [[ $PHASES == *c* ]]; then
    #  Faults that cost no job its work: the scheduler's restarts and cut links
    for id in "${BULKS[@]}"; do
        case ${BULK_PHASE[$id]} in
            b | c) check_eq "${BULK_PHASE[$id]}/$id: every job done" "$NJOBS" \
                "$(jq '[.jobs[] | select(.state == "done")] | length' "$SF_TMP/bulk-$id.json")" ;;
        esac
    done
fi

#  -- the guests ---------------------------------------------------------------
sleep 1
sf_stop_pid "$SF_TMP/uploads.pid" || true
for n in n1 n2; do
    sf_stop_pid "$SF_TMP/lifewatch-node-$n.pid" || true
done
read -r longest open npauses <<<"$(faults_pause_report "${EVENTS[@]}")"
sf_note "$npauses pauses, the longest $longest ms"
check_eq "no guest left paused" 0 "$open"
check "no guest paused past its deadline ($MAX_PAUSE_S s)" \
    test "$longest" -lt $((MAX_PAUSE_S * 1000 + 2000))
for g in n1:g1 n1:r1 n2:g2 n2:g3; do
    IFS=: read -r n d <<<"$g"
    check_eq "$d is running" running "$(sf_virsh "$n" domstate "$d" | head -n 1)"
    jobs_of=$(for id in "${BULKS[@]}"; do
        jq --arg d "$d" '[.jobs[] | select(.instance == $d)] | length' "$SF_TMP/bulk-$id.json"
    done | awk '{ s += $1 } END { print s + 0 }')
    check "$d paused at most once per job ($(faults_pauses_of "$d@$n" "${EVENTS[@]}") pauses, $jobs_of jobs)" \
        test "$(faults_pauses_of "$d@$n" "${EVENTS[@]}")" -le "$jobs_of"
done
read -r most at who <<<"$(fleet_pauses "${EVENTS[@]}" | fleet_max_overlap)"
check "at most $MAX_PAUSED guest(s) paused at once (saw $most at $at: $who)" \
    test "$most" -le "$MAX_PAUSED"
read -r most at who <<<"$(faults_uploads "$SF_TMP/uploads.samples" | fleet_max_overlap)"
check "at most $MAX_UPLOADS uploads at once (saw $most at $at: $who)" \
    test "$most" -le "$MAX_UPLOADS"

#  -- the catalogue and what is on disk and in the pool after gc -------------------
gc_out=$(sf_cli gc --format json 2>&1) || sf_die "snapfleet gc failed: $gc_out"
printf '%s\n' "$gc_out" >"$SF_TMP/gc.json"
sleep 2
images=$(sf_cli images --limit 10000 --format json)
printf '%s\n' "$images" >"$SF_TMP/images.json"
check_eq "no image recorded twice" \
    "$(jq '.images | length' <<<"$images")" \
    "$(jq '[.images[] | "\(.store)/\(.id)"] | unique | length' <<<"$images")"
check_eq "no job has two images of one disk" 0 \
    "$(jq '[.images | group_by(.job_id + "/" + .disk_target)[] | select(length > 1)] | length' <<<"$images")"
#  Every catalogued dir image is there, and nothing else is
for n in n1 n2; do
    paths=$(jq -r '.images[] | select(.store != "rbd") | .path' <<<"$images" |
        grep -F "$SF_TMP/store-$n/" || true)
    want=""
    missing=""
    for p in $paths; do
        if [ -e "$p" ]; then
            want+="$(basename "$p")"$'\n'
        else
            missing+="$p "
        fi
    done
    want=$(printf '%s' "$want" | sort)
    check_eq "$n: every catalogued image is in the store" "" "$missing"
    have=$(find "$SF_TMP/store-$n" -maxdepth 1 -type f -name '*.qcow2*' -printf '%f\n' | sort)
    check_eq "$n: the store holds exactly the catalogued images" "$want" "$have"
    left=$(find "$SF_TMP/w-$n/work" -mindepth 1 -maxdepth 1 -type d -name 'J*' -printf '%f ' || true)
    check_eq "$n: no scratch directory left" "" "$left"
done
want=$(jq -r '.images[] | select(.store == "rbd") | .id' <<<"$images" | sort)
have=$(ceph_rbd ls rbd | grep snapfleet | sed 's|^|rbd/|' | sort || true)
check_eq "the pool holds exactly the catalogued clones" "$want" "$have"
parents=$(for c in $want; do
    ceph_rbd info "$c" | sed -n 's/^\s*parent: \(.*\)$/\1/p'
done | sed 's|.*@||' | sort -u)
snaps=$(ceph_rbd snap ls rbd/r1 --format json | jq -r '.[].name' | grep snapfleet | sort || true)
check_eq "r1 keeps exactly the snapshots its catalogued clones need" "$parents" "$snaps"
sf_done
