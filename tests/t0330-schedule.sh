#!/usr/bin/env bash
#  t0330-schedule: schedules fire, prune by keep-last and catch up once,
#  with real parts. A node with a file guest g1 (file-live, full copies:
#  retention.max_chain = 0) and, when Ceph
#  is installed, an RBD guest g2 (rbd strategy, clone mode) under a worker
#  with [storage.rbd]. `snapfleet schedule add s1 --calendar '*:*:0/20'
#  --node n1 --keep-last 1 --window 5m`:
#  (1) the schedule is listed with its normalized calendar and a next run
#  on a 20 s boundary;
#  (2) two runs: each is a bulk of schedule s1 whose jobs are all done,
#  its window_end is its elapse + 5 min;
#  (3) after the second run, retention leaves only the newest image of each
#  guest: g1's first image file (and its metadata) is gone from the dir
#  store and from `snapfleet images`; g2's first clone is removed and its
#  snapshot unprotected and removed, the newest clone and its protected
#  snapshot stay;
#  (4) the scheduler is stopped (SIGTERM) for more than two elapses and
#  started again on the same database: exactly one catch-up bulk is made
#  before the next elapse, its window starting at the restart (not at a
#  missed elapse), the log says so once, its jobs are done, and retention
#  again leaves one image per guest.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0330-schedule
sf_need_libvirt
sf_need jq

P=20                    #  the calendar's period, seconds
PMS=$((P * 1000))
WINDOW_MS=300000        #  --window 5m

#  RBD guest only when the Ceph parts are there (t0200 covers them alone)
rbd=1
for cmd in ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen; do
    command -v "$cmd" >/dev/null 2>&1 || { rbd=0; why="$cmd not installed"; }
done
if [ "$rbd" = 1 ] && ! qemu-img --help 2>/dev/null | grep -qw rbd; then
    rbd=0
    why="qemu-img has no rbd driver"
fi

if [ "$rbd" = 1 ]; then
    cdir=$SF_TMP/ceph
    sf_cleanup_push ceph_stop "$cdir"
    ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
fi
#  Full copies only: keep-last 1 then leaves one image per guest. (With
#  incremental file-live runs, the default, retention keeps the base a kept
#  increment needs, up to [retention] max_chain of them: t0280 checks that.)
sf_start_scheduler retention.max_chain=0
catalog=$(sf_catalog_id)     #  sf_naming: every RBD object a job makes carries it
sf_start_node n1
uri=$SF_NODE_URI
sf_guest n1 g1
guests="g1"
if [ "$rbd" = 1 ]; then
    head -c $((64 << 20)) /dev/urandom >"$SF_TMP/src.raw"
    ceph_import "$SF_TMP/src.raw" rbd/g2 || sf_die "rbd import of rbd/g2 failed"
    rm -f "$SF_TMP/src.raw"
    ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
    ceph_lv_guest "$uri" g2 "$SF_TMP/n1/vm" rbd/g2 || sf_die "RBD guest g2 did not boot"
    ceph_sf_worker n1 "$uri" storage.rbd.mode=clone
    guests="g1 g2"
else
    sf_note "no RBD guest: $why"
    sf_start_worker n1 "$uri"
fi

listed () {
    local g
    for g in $guests; do
        sf_cli instances --format json | jq -e --arg g "$g" '.instances[] | select(.name == $g)' || return 1
    done
}
wait_for 60 listed >/dev/null || sf_die "the guests never appeared in 'snapfleet instances'"

#  -- helpers ----------------------------------------------------------------
now_ms () { _sf_now_ms; }
#  The bulks of s1, oldest first, without their jobs
s1_bulks () { sf_cli bulks --format json | jq -c '[(.bulks // .)[] | select(.schedule == "s1")] | sort_by(.created)'; }
#  The done ones (every job ended)
s1_done () { s1_bulks | jq -c '[.[] | select(.state == "done")]'; }
bulk_show () { sf_cli bulk show "$1" --format json | jq -c '.bulk // .'; }
n_done () { s1_done | jq length; }
#  Bulks with a job still queued or running
n_running () { s1_bulks | jq '[.[] | select(.queued + .running > 0)] | length'; }
done_at_least () { [ "$(n_done)" -ge "$1" ]; }
none_running () { [ "$(n_running)" = 0 ]; }
#  images_of GUEST: its images in `snapfleet images`
images_of () { sf_cli images --format json | jq -c --arg g "$1" '[(.images // .)[] | select(.instance == $g)]'; }
#  job_of BULK GUEST: the guest's job in the bulk
job_of () { bulk_show "$1" | jq -r --arg g "$2" '.jobs[] | select(.instance == $g) | .job_id'; }
#  image_of JOB GUEST: "store id path" of the job's image
image_of () { images_of "$2" | jq -r --arg j "$1" '.[] | select(.job_id == $j) | "\(.store) \(.id) \(.path)"'; }
#  newest_file GUEST: the file of the guest's newest listed image exists
newest_file () { local p; p=$(images_of "$1" | jq -r '.[-1].path'); [ -f "$p" ]; }
#  newest_job GUEST: the guest's job in the newest done run
newest_job () { job_of "$(s1_done | jq -r '.[-1].bulk_id')" "$1"; }
#  only_newest GUEST: the guest has exactly one image, made by its job in
#  the newest done run (a run may have ended since the one waited for)
only_newest () { images_of "$1" | jq -e --arg j "$(newest_job "$1")" 'length == 1 and .[0].job_id == $j'; }

#  check_bulk WHAT BULK: every job of the bulk done, one per guest
check_bulk ()
{
    local b
    b=$(bulk_show "$2")
    sf_note "$1: $(jq -c '{bulk_id, state, total, done, failed, skipped, window_end, created, jobs: [.jobs[] | {job_id, instance, state, error}]}' <<<"$b")"
    check_eq "$1: bulk $2 is done, one job per guest, all done" \
        "done $(wc -w <<<"$guests") $(wc -w <<<"$guests")" \
        "$(jq -r '"\(.state) \(.total) \(.done)"' <<<"$b")"
}

#  check_pruned GUEST OLDJOB "STORE ID PATH": retention removed OLDJOB's
#  image and kept the newest run's
check_pruned ()
{
    local g=$1 old=$2 new store id path
    read -r store id path <<<"$3"
    if SF_POLL=1 wait_for 90 only_newest "$g" >/dev/null; then
        ok "$g: only the newest run's image is left in 'snapfleet images'"
    else
        fail "$g: only the newest run's image is left in 'snapfleet images'" \
            "images: $(images_of "$g")" "newest run's job: $(newest_job "$g")"
    fi
    new=$(images_of "$g" | jq -r '.[-1].job_id')
    if [ "$store" = rbd ]; then
        local pool=${id%%/*} clone=${id#*/} image
        image=${clone%-snapfleet-"$catalog-$old"}
        check_eq "$g: $old's clone $pool/$clone is removed" "" \
            "$(ceph_rbd_images "$pool" | grep -x "$clone" || true)"
        check_eq "$g: $old's snapshot $pool/$image@snapfleet-$catalog-$old is removed" "" \
            "$(ceph_rbd_snaps "$pool/$image" | grep "^snapfleet-$catalog-$old " || true)"
        check_eq "$g: $new's clone stays" "$image-snapfleet-$catalog-$new" \
            "$(ceph_rbd_images "$pool" | grep -x "$image-snapfleet-$catalog-$new" || true)"
        check_eq "$g: $new's snapshot stays, protected" "snapfleet-$catalog-$new true" \
            "$(ceph_rbd_snaps "$pool/$image" | grep "^snapfleet-$catalog-$new " || true)"
    else
        check "$g: $old's image file is gone from the store" test ! -e "$path"
        check "$g: $old's metadata is gone from the store" test ! -e "${path%.qcow2}.json"
        #  (retried: a run that ends meanwhile replaces the newest image)
        if wait_for 30 newest_file "$g" >/dev/null; then
            ok "$g: the newest image's file stays in the store"
        else
            fail "$g: the newest image's file stays in the store" "$(images_of "$g")"
        fi
    fi
}

#  -- (1) the schedule ---------------------------------------------------------
rc=0
t_add=$(now_ms)
out=$(sf_cli schedule add s1 --calendar '*:*:0/20' --node n1 --keep-last 1 --window 5m \
      --format json 2>&1) || rc=$?
sf_note "schedule add: exit $rc: $out"
check_eq "schedule add exits 0" 0 "$rc"
s=$(jq -c '.schedule // .' <<<"$out" 2>/dev/null || true)
check_eq "schedule s1: calendar, normalized, keep-last 1, window 5 min" \
    "s1 *:*:0/20 *-*-* *:*:00/20 1 0 $WINDOW_MS" \
    "$(jq -r '"\(.name) \(.calendar) \(.normalized) \(.keep.last) \(.keep.daily) \(.window_ms)"' <<<"$s" 2>/dev/null)"
next=$(jq -r .next_run <<<"$s" 2>/dev/null)
#  After the add began (the add may end past the boundary it computed)
check_range "next run is within one period" "$t_add" "$next" $(($(now_ms) + PMS))
check_eq "next run is on a $P s boundary" 0 $((next % PMS))
check "schedule list shows s1" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' schedule list --format json | jq -e '(.schedules // .) | any(.name == \"s1\")'"
rc=0
err=$(sf_cli schedule add s1 --calendar daily --all 2>&1 >/dev/null) || rc=$?
check_eq "a second schedule named s1 is refused" 1 "$rc"
check "the error says it exists" grep -qi "exists" <<<"$err"
rc=0
err=$(sf_cli schedule add bad --calendar 'Mon..Frx 25:00' --all 2>&1 >/dev/null) || rc=$?
check_eq "a bad calendar is refused" 1 "$rc"
sf_note "bad calendar: $err"

#  -- (2) two runs ---------------------------------------------------------------
#  A run may take longer than the period on a loaded machine: the elapses
#  that come during it are skipped (logged), so runs are the done bulks
#  (polls once a second: each poll is two CLI calls, on a 2-core machine)
SF_POLL=1 wait_for $((P + 120)) done_at_least 1 || sf_die "s1 did not complete a run"
b1=$(s1_done | jq -r '.[0].bulk_id')
check_bulk "run 1" "$b1"
#  Run 1's images as the store has them now (the rows go once deleted)
declare -A img1=()
for g in $guests; do
    img1[$g]=$(image_of "$(job_of "$b1" "$g")" "$g")
    sf_note "$g: run 1 image '${img1[$g]}'"
done
SF_POLL=1 wait_for $((P + 120)) done_at_least 2 || sf_die "s1 did not complete two runs"
b2=$(s1_done | jq -r '.[1].bulk_id')
check_bulk "run 2" "$b2"
for b in "$b1" "$b2"; do
    we=$(bulk_show "$b" | jq -r .window_end)
    check_eq "bulk $b: window_end is an elapse + 5 min" 0 $(((we - WINDOW_MS) % PMS))
done

#  -- (3) retention ----------------------------------------------------------------
for g in $guests; do
    j1=$(job_of "$b1" "$g")
    j2=$(job_of "$b2" "$g")
    sf_note "$g: run 1 job $j1, run 2 job $j2"
    if [ -z "$j1" ] || [ -z "$j2" ] || [ -z "${img1[$g]}" ]; then
        fail "$g has a job and an image in both runs"
        continue
    fi
    check_pruned "$g" "$j1" "${img1[$g]}"
done

#  -- (4) down for two elapses, one catch-up -----------------------------------------
#  Stop between runs: nothing running and the next elapse at least 8 s away
for _ in 1 2 3; do
    SF_POLL=1 wait_for 120 none_running || sf_die "a run of s1 never ended"
    t=$(now_ms)
    [ $((PMS - t % PMS)) -ge 8000 ] && break
    sleep $(((PMS - t % PMS) / 1000 + 2))
done
before=$(s1_bulks | jq length)
stop=$(now_ms)
rc=0
sf_stop_pid "$SF_TMP/scheduler.pid" || rc=$?
check_eq "the scheduler exits 0 on SIGTERM" 0 "$rc"
#  Start again 3 s after an elapse, with at least two elapses missed
t=$((stop + 2 * PMS + 1000))
restart=$(((t / PMS + 1) * PMS + 3000))
sleep "$(awk -v ms=$((restart - $(now_ms))) 'BEGIN { printf "%.3f", ms / 1000 }')"
missed=$(((restart / PMS) - (stop / PMS)))
sf_note "scheduler down from $stop to $restart: $missed elapses missed"
r0=$(now_ms)
sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" --config "$SF_TMP/scheduler/scheduler.conf"
_sf_wait_up scheduler 30 _sf_sched_ready || sf_die "the scheduler did not come back"
r1=$(now_ms)
next_elapse=$(((r0 / PMS + 1) * PMS))
sf_note "scheduler back in $((r1 - r0)) ms; next regular elapse at $next_elapse"
wait_for 60 bash -c "[ \"\$('$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' bulks --format json | jq '[(.bulks // .)[] | select(.schedule == \"s1\")] | length')\" -gt $before ]" ||
    sf_die "no catch-up bulk after the restart"
#  Count what was made before the next regular elapse
t=$(now_ms)
[ "$t" -lt $((next_elapse - 500)) ] && sleep "$(awk -v ms=$((next_elapse - 500 - t)) 'BEGIN { printf "%.3f", ms / 1000 }')"
bulks=$(s1_bulks)
new=$(jq -c --argjson s "$stop" --argjson e "$next_elapse" '[.[] | select(.created > $s and .created < $e)]' <<<"$bulks")
sf_note "bulks of s1 since the stop: $(jq -c '[.[] | {bulk_id, created, window_end}]' <<<"$new")"
check_eq "exactly one catch-up run for $missed missed elapses" 1 "$(jq length <<<"$new")"
bc=$(jq -r '.[0].bulk_id' <<<"$new")
we=$(jq -r '.[0].window_end' <<<"$new")
check_range "the catch-up's window starts at the restart" $((r0 + WINDOW_MS)) "$we" $((r1 + 10000 + WINDOW_MS))
check_eq "the scheduler logged one catch-up of s1" 1 \
    "$(grep -c "schedule 's1': run(s) missed while the scheduler was down" "$SF_TMP/scheduler.log" || true)"
wait_for 120 bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' bulk show '$bc' --format json | jq -e '(.bulk // .) | .queued + .running == 0'" ||
    fail "the catch-up bulk $bc ended"
check_bulk "catch-up" "$bc"
for g in $guests; do
    jc=$(job_of "$bc" "$g")
    #  A regular run may have come since; the newest done run's image stays
    if SF_POLL=1 wait_for 90 only_newest "$g" >/dev/null; then
        ok "$g: one image left after the catch-up, the newest run's"
    else
        fail "$g: one image left after the catch-up, the newest run's" "$(images_of "$g")"
    fi
    sf_note "$g: catch-up job $jc, images now $(images_of "$g" | jq -c '[.[] | .job_id]')"
done
l=$(sf_cli schedule list --format json | jq -c '(.schedules // .)[] | select(.name == "s1")')
sf_note "schedule list: $l"
check "schedule list: s1's last run is a bulk of s1, next run in the future" \
    jq -e --argjson now "$(now_ms)" '.last_bulk != null and .next_run > $now and .last_run != null' <<<"$l"
rc=0
sf_cli schedule rm s1 --format json >/dev/null || rc=$?
check_eq "schedule rm s1 exits 0" 0 "$rc"
check "schedule list no longer shows s1" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' schedule list --format json | jq -e '(.schedules // .) | all(.name != \"s1\")'"
sf_done
