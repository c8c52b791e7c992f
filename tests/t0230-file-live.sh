#!/usr/bin/env bash
#  t0230-file-live: the file-live strategy, end to end, with real parts. A
#  running file-backed TCG guest (qcow2 overlay on a raw base) writes
#  fsync'ed records while the worker copies its disk with libvirt's push
#  backup API; the guest is held only while the backup begins. Checked as a
#  user would:
#  (1) no agent: never paused (the backup's start is one QEMU transaction
#      over every disk, which fixes the instant; a pause around the call
#      would last its 40-275 ms): libvirt's lifecycle events show no
#      SUSPENDED at all, consistency "crash"; the guest's record count grows
#      while the job runs; the image passes qemu-img check and holds a clean
#      prefix whose end K lies in the capture window (K >= the console's seq
#      before the job, K <= the seq seen once the job said RESUMED, + 10);
#      the events say "backup API";
#  (2) with the QEMU guest agent: frozen around the backup's start, no
#      SUSPENDED event either;
#  (3) the fallback, on a worker with [hypervisor] backup_api = false (we
#      found no domain that libvirt 9.0 + QEMU 7.2 refuse the backup API yet
#      accept external snapshots and block commit for; the refusals we know,
#      e.g. transient disks, refuse every block job):
#      external snapshot + convert + commit, never paused either; the guest
#      ends on its own disk file (live and persistent XML) and no
#      overlay is left;
#  (4) cancelled during the copy: the backup job is aborted (no job left
#      on the domain), the guest runs, no scratch left.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0230-file-live
sf_need_libvirt
sf_need jq qemu-img

#  The longest hold libvirt may show (the issue's target)
MAX_HOLD_MS=100

sf_start_scheduler
sf_start_node n1
sf_guest n1 g1 --size 256M
sf_start_worker n1 "$SF_NODE_URI"

#  inst NAME: the instance's inventory entry (fails until it is listed)
# shellcheck disable=SC2317  # called through wait_for / check
inst () { sf_cli instances --format json | jq -e --arg n "$1" '.instances[] | select(.name == $n)'; }

#  phase_seen JOB PHASE: the job's events include PHASE
# shellcheck disable=SC2317  # called through wait_for / check
phase_seen () { sf_cli job show "$1" --format json | jq -e --arg p "$2" 'any(.events[]; .phase == $p)' >/dev/null; }

#  live_snapshot NODE NAME WANT_CONSISTENCY WANT_METHOD: snapshot NAME with
#  --strategy file-live, watching libvirt's events and the console; checks
#  the job, the image and the hold. Sets JOB, OUT, K.
live_snapshot ()
{
    local node=$1 name=$2 want=$3 method=$4 dir log a m b rc=0 rec t0 events conv
    local holds
    dir=$(sf_guest_dir "$node" "$name")
    log=$dir/console.log
    wait_for 30 inst "$name" >/dev/null || sf_die "$name never appeared in 'snapfleet instances'"
    check "$name may get file-live" bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' \
        instances --format json | jq -e --arg n '$name' '.instances[] | select(.name == \$n and .storage_class == \"file\")'"
    sf_lifewatch "$node" "$name"
    lv_wait_seq "$log" 20 60
    #  The guest's own write rate, idle, to compare with the one during the copy
    local s0 s1 ti tm tb
    s0=$(lv_guest_seq "$log")
    ti=$(_sf_now_ms)
    sleep 3
    s1=$(lv_guest_seq "$log")
    ti=$(($(_sf_now_ms) - ti))
    a=$(lv_guest_seq "$log")
    t0=$(_sf_now_ms)
    OUT=$(sf_cli snapshot --instance "$name" --strategy file-live --format json) || rc=$?
    check_eq "snapshot of $name is accepted" 0 "$rc"
    JOB=$(jq -r '.job_id // empty' <<<"$OUT" 2>/dev/null || true)
    [ -n "$JOB" ] || sf_die "no job id from 'snapshot': $OUT"
    #  The instant lies between the job's start and its RESUMED event
    wait_for 120 phase_seen "$JOB" resumed || fail "$name: job $JOB never said RESUMED"
    m=$(lv_guest_seq "$log")
    tm=$(_sf_now_ms)
    wait_for 300 bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' job show '$JOB' \
        --format json | jq -e '.state == \"done\" or .state == \"failed\" or .state == \"cancelled\"'" >/dev/null ||
        fail "$name: job $JOB did not end"
    b=$(lv_guest_seq "$log")
    tb=$(_sf_now_ms)
    OUT=$(sf_cli job show "$JOB" --format json)
    sf_note "$name: guest writes $(( (s1 - s0) * 1000 / (ti > 0 ? ti : 1) )) records/s idle, $(( (b - m) * 1000 / (tb - tm > 0 ? tb - tm : 1) )) records/s while the job copied and stored (console seq, 10-record steps)"
    sf_note "file-live job of $name in $(($(_sf_now_ms) - t0)) ms: $(jq -c . <<<"$OUT")"
    check_eq "$name: job done, strategy file-live, consistency $want" "done file-live $want" \
        "$(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$OUT")"
    check_eq "$name: phases in order" "queued paused resumed converted upload_wait uploaded" \
        "$(jq -r '[.events[].phase | select(. != "done")] | join(" ")' <<<"$OUT")"
    conv=$(jq -r '[.events[] | select(.phase == "converted") | .text // ""] | join("")' <<<"$OUT")
    sf_note "$name: CONVERTED says: $conv"
    check "$name: the CONVERTED event says '$method'" grep -qF -- "$method" <<<"$conv"
    if [ "$want" = crash ]; then
        check_eq "$name: pause_ms is 0 (never paused)" 0 "$(jq -r .pause_ms <<<"$OUT")"
    else
        sf_note "$name: filesystems frozen for $(jq -r .pause_ms <<<"$OUT") ms (vCPUs never stopped)"
    fi

    local img
    img=$(jq -r '.images[0].path' <<<"$OUT")
    check "$name: the image passes qemu-img check" qemu-img check -q "$img"
    check_eq "$name: the image is a standalone qcow2" "qcow2 none" \
        "$(qemu-img info --output=json "$img" | jq -r '"\(.format) \(."backing-filename" // "none")"')"
    check_eq "$name: the image's sha256 is the file's" "$(sha256sum "$img" | cut -d' ' -f1)" \
        "$(jq -r '.images[0].sha256' <<<"$OUT")"
    rec=$(sf_records --min "$a" --max $((m + 10)) "$img" 2>&1) || true
    K=$(sed -n 's/.*K=\([0-9]*\).*/\1/p' <<<"$rec")
    sf_note "$name: sf-records: $rec (console: $a before the job, $m at RESUMED, $b at the end)"
    check_eq "$name: the image holds a clean prefix with $a <= K <= $((m + 10))" CLEAN_PREFIX "${rec##*verdict=}"
    check_range "$name: the guest wrote on while the job ran (seq at the end >= K + 10)" \
        $((${K:-0} + 10)) "$b" 100000000

    sf_stop_pid "$SF_TMP/lifewatch-$name.pid" || true
    events=$SF_TMP/lifewatch-$name.events
    sf_note "lifewatch $name: $(tr '\n' ';' <"$events")"
    #  Every SUSPENDED..RESUMED interval libvirt saw, in ms
    holds=$(awk '$2 == "SUSPENDED" {s = $1} $2 == "RESUMED" && s {print $1 - s; s = 0}' "$events" | tr '\n' ' ')
    sf_note "$name: libvirt saw holds of [${holds}] ms"
    #  The issue's bound is 100 ms; file-live holds no vCPU at all
    check_eq "$name: libvirt saw no SUSPENDED event (no pause, let alone one over $MAX_HOLD_MS ms)" "" \
        "$(awk '$2 == "SUSPENDED"' "$events")"
    check_eq "$name is running after the snapshot" running "$(sf_virsh "$node" domstate "$name")"
    check "$name keeps writing (seq past $((b + 20)))" lv_wait_seq "$log" $((b + 20)) 60
    check_eq "$name: no job left on the domain" None \
        "$(sf_virsh "$node" domjobinfo "$name" | awk '/^Job type:/ {print $3}')"
    check_eq "no scratch left in the worker's workdir" "" \
        "$(find "$SF_TMP/w-$node/work" -type f | tr '\n' ' ')"
}

#  -- (1) no agent: paused for milliseconds, backup API -----------------------
live_snapshot n1 g1 crash "backup API"
check_eq "g1's disk is its own file" "$(sf_guest_dir n1 g1)/disk.qcow2" \
    "$(sf_virsh n1 domblklist g1 | awk '$1 == "vda" {print $2}')"

#  -- (2) the QEMU guest agent: frozen, never suspended -----------------------
if ! command -v qemu-ga >/dev/null 2>&1 && [ ! -x /usr/sbin/qemu-ga ]; then
    skip_check "a guest with an agent is frozen, not suspended" "needs qemu-ga (qemu-guest-agent)"
else
    sf_virsh n1 destroy g1 >/dev/null || true
    sf_guest n1 g3 --size 256M --agent
    # shellcheck disable=SC2317  # called through wait_for / check
    agent_up () { sf_virsh n1 qemu-agent-command g3 '{"execute":"guest-ping"}'; }
    wait_for 60 agent_up >/dev/null || sf_die "g3's guest agent never answered"
    live_snapshot n1 g3 frozen "backup API"
    check "g3's agent still answers (thawed)" agent_up
    sf_virsh n1 destroy g3 >/dev/null || true
fi

#  -- (3) the fallback: external snapshot + convert + commit ------------------
sf_start_node n2
sf_guest n2 g2 --size 256M
sf_start_worker n2 "$(sf_node_uri n2)" hypervisor.backup_api=false
live_snapshot n2 g2 crash "backup API off ([hypervisor] backup_api = false): external snapshot + convert + commit"
g2disk=$(sf_guest_dir n2 g2)/disk.qcow2
check_eq "g2 runs on its own disk file again (live XML)" "$g2disk" \
    "$(sf_virsh n2 domblklist g2 | awk '$1 == "vda" {print $2}')"
check_eq "g2's persistent XML names its own disk file" "$g2disk" \
    "$(sf_virsh n2 dumpxml --inactive g2 | sed -n "s/.*<source file='\([^']*\)'.*/\1/p" | head -1)"
check_eq "g2 has no snapshot metadata" "" "$(sf_virsh n2 snapshot-list --name g2 | tr -d '\n')"
check_eq "no overlay anywhere under the worker's workdir" "" \
    "$(find "$SF_TMP/w-n2/work" -name '*.overlay.qcow2' | tr '\n' ' ')"
sf_virsh n2 destroy g2 >/dev/null || true
check "g2's disk passes qemu-img check after the commit" qemu-img check -q "$g2disk"
check_eq "g2's disk still has its raw base below it" 1 \
    "$(qemu-img info --output=json --backing-chain "$g2disk" | jq 'length - 1')"

#  -- (4) cancelled during the copy ------------------------------------------
sf_guest n1 g4 --size 1G
wait_for 30 inst g4 >/dev/null || sf_die "g4 never appeared in 'snapfleet instances'"
lv_wait_seq "$(sf_guest_dir n1 g4)/console.log" 20 60
out=$(sf_cli snapshot --instance g4 --strategy file-live --format json)
job=$(jq -r .job_id <<<"$out")
wait_for 120 phase_seen "$job" resumed || fail "g4: job $job never said RESUMED"
check "cancel of g4's job during its copy is accepted" sf_cli cancel "$job"
# shellcheck disable=SC2317  # called through wait_for / check
ended () { sf_cli job show "$job" --format json | jq -e '.state == "cancelled" or .state == "failed" or .state == "done"' >/dev/null; }
wait_for 120 ended || fail "g4's job did not end after cancel"
show=$(sf_cli job show "$job" --format json)
sf_note "cancelled job: $(jq -c . <<<"$show")"
check_eq "g4's job is cancelled, nothing stored" "cancelled 0" \
    "$(jq -r '"\(.state) \(.images | length)"' <<<"$show")"
check_eq "g4 is running" running "$(sf_virsh n1 domstate g4)"
# shellcheck disable=SC2317  # called through check
nojob () { [ "$(sf_virsh n1 domjobinfo g4 | awk '/^Job type:/ {print $3}')" = None ]; }
check "g4 has no backup job left (aborted)" wait_for 30 nojob
# shellcheck disable=SC2317  # called through check
noscratch () { [ -z "$(find "$SF_TMP/w-n1/work" -type f)" ]; }
check "no scratch left in n1's workdir" wait_for 30 noscratch
check "g4 keeps writing" lv_wait_seq "$(sf_guest_dir n1 g4)/console.log" \
    $(($(lv_guest_seq "$(sf_guest_dir n1 g4)/console.log") + 20)) 60

sf_done
