#!/usr/bin/env bash
#  t0170-scheduler-restart: no job is lost when the scheduler or a worker
#  dies (issue 11, items 1 and 2), with real parts: a real scheduler on a
#  SQLite file, two nodes n1 and n2 (each its own libvirtd and worker, one
#  dir image store), four running file-backed guests g1 g2 (n1) g3 g4 (n2).
#
#  Case 1, the operator's report: `snapfleet snapshot --all` (one bulk of
#  four jobs), the scheduler SIGKILLed about 2 s in and started again on
#  the same database and endpoints once every job has stored its image
#  (their results were sent to nobody). The workers go on, keep what they send
#  until it is acknowledged, say hello to the new scheduler and replay it.
#  Asserted: the bulk ends done with four done jobs; `snapfleet images`
#  lists four images, one per guest, each file present and passing
#  qemu-img check; the store holds no *.tmp and no file the catalogue does
#  not list; every guest is running and was paused exactly once (libvirt's
#  lifecycle events, sf-lifewatch --all on both nodes).
#
#  Case 2: a worker that dies after its job finished while the scheduler
#  cannot hear it: the scheduler (limits.bandwidth = 32M, so that an upload
#  lasts seconds) is SIGSTOPped once the job uploads, the job
#  finishes (its result is in the worker's journal, <workdir>/jobs/), the
#  worker is SIGKILLed and started again, then the scheduler SIGCONTed.
#  Asserted: the job ends done, its image catalogued (the result came from
#  the restarted worker's journal) and passing qemu-img check, the journal
#  empty afterwards, the guest paused once more and running.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/fleet.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/fleet.sh"

sf_init t0170-scheduler-restart
sf_need_libvirt
sf_need jq qemu-img
[ -x "$SF_LIFEWATCH" ] || skip "sf-lifewatch not built ($SF_LIFEWATCH)"

export LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-180}
GUESTS="n1:g1 n1:g2 n2:g3 n2:g4"
STORE=$SF_TMP/images

#  The scheduler again, on its database, config and endpoints (the
#  workers keep their connection address)
restart_scheduler ()
{
    sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" \
        --config "$SF_TMP/scheduler/scheduler.conf"
    _sf_wait_up scheduler 30 _sf_sched_ready ||
        sf_die "the scheduler did not come back (log: $SF_TMP/scheduler.log)"
}

bulk_ended ()
{
    sf_cli bulk show "$1" --format json | jq -e '(.bulk // .) | .state != "running"' >/dev/null
}

job_state () { sf_cli job show "$1" --format json | jq -r .state; }
job_ended () { case $(job_state "$1") in done|failed|skipped) return 0 ;; esac; return 1; }

#  -- the parts ---------------------------------------------------------------
#  A long node_timeout: the SIGSTOP of case 2 must not look like dead nodes.
#  A bandwidth limit, so that an upload lasts seconds whatever the disk
#  (a 64 MiB image alone: 2 s; unpaced, the store links it in well under
#  a poll of the CLI): case 2 stops the scheduler while one runs
sf_start_scheduler scheduler.node_timeout=60s limits.bandwidth=32M
for n in n1 n2; do
    sf_start_node "$n"
done
declare -A boot_pid=()
for spec in $GUESTS; do
    IFS=: read -r n g <<<"$spec"
    sf_guest "$n" "$g" >"$SF_TMP/boot-$g.log" 2>&1 &
    boot_pid[$g]=$!
done
for g in "${!boot_pid[@]}"; do
    wait "${boot_pid[$g]}" || sf_die "guest $g did not boot: $(tail -n 5 "$SF_TMP/boot-$g.log")"
done
for n in n1 n2; do
    sf_start_worker "$n" "$(sf_node_uri "$n")"
done
inv_ready ()
{
    sf_cli instances --format json |
        jq -e '[.instances[] | select(.state == "running")] | length == 4' >/dev/null
}
wait_for 60 inv_ready || sf_die "not all four guests in 'snapfleet instances'"
for n in n1 n2; do
    sf_lifewatch_node "$n"
done

#  -- case 1: the scheduler SIGKILLed 2 s into a bulk ----------------------------
out=$(sf_cli snapshot --all --strategy file-cold --format json) || sf_die "snapshot --all failed: $out"
bulk_id=$(jq -r '(.bulk // .) | .bulk_id // empty' <<<"$out" 2>/dev/null | head -n 1)
[ -n "$bulk_id" ] || sf_die "no bulk id from snapshot --all: $out"
sleep 2
before=$(sf_cli bulk show "$bulk_id" --format json | jq -c '[(.bulk // .).jobs[] | "\(.job_id)=\(.state)/\(.phase)"]')
sf_note "at the SIGKILL: $before"
sf_kill_pid "$SF_TMP/scheduler.pid" KILL
t0=$(_sf_now_ms)
#  The scheduler stays down until every job has stored its image (four
#  image files, no temporary one): their results are sent while nobody
#  listens, as in the operator's report
stored ()
{
    [ "$(find "$STORE" -name '*.qcow2' | wc -l)" = 4 ] &&
        [ -z "$(find "$STORE" -name '*.tmp')" ]
}
wait_for 180 stored || sf_die "the workers did not store four images while the scheduler was down"
sleep 2
restart_scheduler
sf_note "scheduler back after $(($(_sf_now_ms) - t0)) ms down"
wait_for 300 bulk_ended "$bulk_id" || sf_die "bulk $bulk_id still running after 300 s"
show=$(sf_cli bulk show "$bulk_id" --format json | jq -c '.bulk // .')
sf_note "bulk: $(jq -c '[.jobs[] | {job_id, state, error}]' <<<"$show")"
check_eq "the bulk is done: total 4, done 4, failed 0, skipped 0" "done 4 4 0 0" \
    "$(jq -r '"\(.state) \(.total) \(.done) \(.failed) \(.skipped)"' <<<"$show")"
check_eq "every job of the bulk is done" "done done done done" \
    "$(jq -r '[.jobs[].state] | join(" ")' <<<"$show")"

images=$(sf_cli images --format json | jq -c '.images // .')
check_eq "four images catalogued, one per guest" "g1 g2 g3 g4" \
    "$(jq -r '[.[].instance] | sort | join(" ")' <<<"$images")"
for path in $(jq -r '.[].path' <<<"$images"); do
    check "$(basename "$path") exists and passes qemu-img check" qemu-img check -q "$path"
done
check_eq "no temporary file in the store" "" "$(find "$STORE" -name '*.tmp' | tr '\n' ' ')"
check_eq "every image file in the store is catalogued" \
    "$(jq -r '.[].path | split("/") | last' <<<"$images" | sort | tr '\n' ' ')" \
    "$(find "$STORE" -type f -name '*.qcow2' -printf '%f\n' | sort | tr '\n' ' ')"

#  -- case 2: a worker dies with a finished, unacknowledged result -------------
journal_finished () { grep -qs '^state finished' "$SF_TMP/w-n1/work/jobs/$1"; }
out=$(sf_cli snapshot --instance g1 --strategy file-cold --format json) || sf_die "snapshot g1 failed: $out"
job=$(jq -r '(.job // .) | .job_id // empty' <<<"$out")
[ -n "$job" ] || sf_die "no job id from snapshot g1: $out"
#  Stopped once the job uploads (it needs the scheduler's upload grant
#  before that); the upload of the guest's disk takes seconds
job_uploading ()
{
    sf_cli job show "$1" --format json | jq -e '.phase == "uploading"' >/dev/null
}
wait_for 60 job_uploading "$job" ||
    sf_die "job $job never uploaded: $(sf_cli job show "$job" --format json)"
kill -STOP "$(sf_pid scheduler)"
sf_note "scheduler stopped with $job uploading"
if ! wait_for 120 journal_finished "$job"; then
    kill -CONT "$(sf_pid scheduler)"
    sf_die "job $job never finished in n1's journal"
fi
sf_kill_pid "$SF_TMP/worker-n1.pid" KILL
check "the killed worker's journal keeps $job's result" journal_finished "$job"
sf_spawn worker-n1 "$SF_BUILD/worker/snapfleet-worker" --config "$SF_TMP/w-n1/worker.conf"
sleep 1
kill -CONT "$(sf_pid scheduler)"
sf_note "worker n1 restarted, scheduler continued"
wait_for 120 job_ended "$job" || sf_die "job $job did not end within 120 s"
js=$(sf_cli job show "$job" --format json)
sf_note "$job: $(jq -c '{state, phase, error, images: [.images[].id]}' <<<"$js")"
check_eq "$job is done" "done" "$(jq -r .state <<<"$js")"
check_eq "$job has one image" 1 "$(jq -r '.images | length' <<<"$js")"
img=$(jq -r '.images[0].path // empty' <<<"$js")
check "$job's image passes qemu-img check" qemu-img check -q "${img:-/nonexistent}"
check_eq "$job's image is catalogued" 1 \
    "$(sf_cli images --format json | jq --arg p "$img" '[(.images // .)[] | select(.path == $p)] | length')"
wait_for 30 test ! -e "$SF_TMP/w-n1/work/jobs/$job" || true
check "the acknowledged result left n1's journal" test ! -e "$SF_TMP/w-n1/work/jobs/$job"
check_eq "no temporary file in the store" "" "$(find "$STORE" -name '*.tmp' | tr '\n' ' ')"

#  -- the guests: running, each pause resumed; g1 paused twice (two jobs) ------
sleep 1
for n in n1 n2; do
    sf_stop_pid "$SF_TMP/lifewatch-node-$n.pid" || true
done
fleet_pauses "$SF_TMP"/lifewatch-node-*.events >"$SF_TMP/pauses"
sf_note "pauses (start end guest@node): $(tr '\n' ';' <"$SF_TMP/pauses")"
check_eq "no pause left open" 0 "$(grep -c ' open ' "$SF_TMP/pauses" || true)"
check_eq "each guest paused once per job (g1 twice)" "g1@n1 g1@n1 g2@n1 g3@n2 g4@n2" \
    "$(awk '{print $3}' "$SF_TMP/pauses" | sort | tr '\n' ' ' | sed 's/ $//')"
for spec in $GUESTS; do
    IFS=: read -r n g <<<"$spec"
    check_eq "$g is running on $n" running "$(sf_virsh "$n" domstate "$g")"
done
sf_done
