#!/usr/bin/env bash
#  t0180-node-loss: a node that falls silent fails nothing at once, its jobs
#  are governed by leases, and max_paused holds across the loss (issue 11,
#  items 2 to 4). Two nodes, each its own libvirtd and worker; guests
#      n1: big (2 GiB disk: a long pause), s1      n2: g2
#  The scheduler runs with max_paused = 1, one job at a time per node,
#  node_timeout 3 s and short leases (6 s, floor rate 1 GiB/s). n1's worker
#  has max_pause = 25 s.
#  J1 snapshots big; once big is paused, J2 (s1, queued for n1 behind J1)
#  and J3 (g2 on n2, waiting for the pause slot) are created, and n1's
#  worker is stopped with SIGSTOP (by its recorded pid; its guard process
#  runs on). Asserted: n1 goes down but J1 keeps running until its lease and
#  grace run out, then fails with "no news from node 'n1' for N s in phase
#  converting; cancelled"; J2 stays queued (phase waiting) while n1 is
#  stopped; J3's guest is not paused before big's pause began + n1's
#  max_pause (libvirt's events: never two guests suspended at once, and the
#  guard's resume of big comes first); after SIGCONT n1 is up again and J2
#  runs and ends done; J3 ends done; every guest runs at the end.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/fleet.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/fleet.sh"

sf_init t0180-node-loss
sf_need_libvirt
sf_need jq
[ -x "$SF_LIFEWATCH" ] || skip "sf-lifewatch not built ($SF_LIFEWATCH)"

MAX_PAUSE_S=25
export LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-180}

sf_start_scheduler scheduler.node_timeout=3s limits.max_paused=1 \
    limits.max_jobs_per_node=1 limits.lease=6s limits.lease_rate=1G
sf_start_node n1
sf_start_node n2
t=$(_sf_now_ms)
sf_guest n1 big --size 2G >"$SF_TMP/boot-big.log" 2>&1 &
b1=$!
sf_guest n1 s1 >"$SF_TMP/boot-s1.log" 2>&1 &
b2=$!
sf_guest n2 g2 >"$SF_TMP/boot-g2.log" 2>&1 &
b3=$!
wait "$b1" || sf_die "big did not boot: $(tail -n 5 "$SF_TMP/boot-big.log")"
wait "$b2" || sf_die "s1 did not boot: $(tail -n 5 "$SF_TMP/boot-s1.log")"
wait "$b3" || sf_die "g2 did not boot: $(tail -n 5 "$SF_TMP/boot-g2.log")"
sf_note "3 guests running in $(($(_sf_now_ms) - t)) ms"
sf_start_worker n1 "$(sf_node_uri n1)" pause.max_pause=${MAX_PAUSE_S}s
sf_start_worker n2 "$(sf_node_uri n2)"
inv_ready ()
{
    sf_cli instances --format json |
        jq -e '[.instances[] | select(.state == "running")] | length == 3'
}
wait_for 60 inv_ready >/dev/null || sf_die "not all 3 guests in 'snapfleet instances'"
sf_lifewatch_node n1
sf_lifewatch_node n2

job_field () { sf_cli job show "$1" --format json | jq -r "$2"; }
job_state () { job_field "$1" '"\(.state) \(.phase)"'; }
node_state () { sf_cli nodes --format json | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .state'; }
is_paused () { [ "$(sf_virsh "$1" domstate "$2")" = paused ]; }
ended () { job_state "$1" | grep -Eq '^(done|failed|skipped|cancelled) '; }

#  -- J1 pauses big; J2 and J3 wait; n1's worker stops --------------------
j1=$(sf_cli snapshot --instance big --strategy file-cold --format json | jq -r .job_id)
wait_for 60 is_paused n1 big || sf_die "big was never paused by job $j1"
j2=$(sf_cli snapshot --instance s1 --strategy file-cold --format json | jq -r .job_id)
j3=$(sf_cli snapshot --instance g2 --strategy file-cold --format json | jq -r .job_id)
w1=$(sf_pid worker-n1)
kill -STOP "$w1"
t_stop=$(_sf_now_ms)
sf_cleanup_push kill -CONT "$w1"
ok "n1's worker (pid $w1) stopped with SIGSTOP while big is paused by $j1"
check_eq "$j2 (s1 on n1) waits behind $j1" "queued waiting" "$(job_state "$j2")"
check_eq "$j3 (g2 on n2) waits for the pause slot" "queued waiting" "$(job_state "$j3")"

#  -- n1 down: nothing fails at once; J1's lease runs out -------------------
node_down () { [ "$(node_state n1)" = down ]; }
wait_for 20 node_down || fail "n1 never went down"
t_down=$(_sf_now_ms)
sf_note "n1 down $((t_down - t_stop)) ms after the stop"
check_eq "$j1 keeps running when n1 goes down" running "$(job_field "$j1" .state)"
wait_for 60 ended "$j1" || true
t_j1=$(_sf_now_ms)
j=$(sf_cli job show "$j1" --format json)
sf_note "$j1 after the stop: $(jq -c '{state, phase, error}' <<<"$j") at +$((t_j1 - t_stop)) ms"
check_eq "$j1 failed (no result could come)" failed "$(jq -r .state <<<"$j")"
check "$j1's reason: no news from n1 in phase converting, cancelled" \
    grep -Eq "^no news from node 'n1' for [0-9]+ s in phase converting; cancelled\$" \
    <<<"$(jq -r .error.text <<<"$j")"
check_eq "$j2 still queued for the stopped node" "queued waiting" "$(job_state "$j2")"
check_eq "$j3 still waits: the pause slot of the silent node is kept" "queued waiting" \
    "$(job_state "$j3")"

#  -- J3 runs once n1's max_pause has passed since big's pause began --------
wait_for 120 ended "$j3" || true
check_eq "$j3 (g2 on n2) done" "done" "$(job_field "$j3" .state)"
check_eq "$j2 still queued while n1 is stopped" "queued waiting" "$(job_state "$j2")"
check_eq "n1 is still down" down "$(node_state n1)"

#  -- n1 comes back: its queued job runs -------------------------------------
kill -CONT "$w1"
t_cont=$(_sf_now_ms)
m_cont=$(sf_mono_ms)
ok "n1's worker continued (SIGCONT) $((t_cont - t_stop)) ms after the stop"
node_up () { [ "$(node_state n1)" = up ]; }
check "n1 is up again" wait_for 30 node_up
wait_for 180 ended "$j2" || true
check_eq "$j2 (s1 on n1) ran after SIGCONT and is done" "done" "$(job_field "$j2" .state)"
check_eq "$j1 stays failed (its late messages are fenced)" failed "$(job_field "$j1" .state)"
sleep 1
sf_stop_pid "$SF_TMP/lifewatch-node-n1.pid" || true
sf_stop_pid "$SF_TMP/lifewatch-node-n2.pid" || true

#  -- the witnesses: libvirt's events ----------------------------------------
fleet_pauses "$SF_TMP"/lifewatch-node-*.events >"$SF_TMP/pauses"
sf_note "pause intervals (start end guest@node): $(tr '\n' ';' <"$SF_TMP/pauses")"
check_eq "one pause each of big, g2, s1, none left open" "big@n1 g2@n2 s1@n1 0" \
    "$(awk '{print $3}' "$SF_TMP/pauses" | sort | tr '\n' ' ')$(grep -c ' open ' "$SF_TMP/pauses" || true)"
read -r pmax pat plabels < <(fleet_max_overlap <"$SF_TMP/pauses")
sf_note "most guests paused at once: $pmax (first at $pat: $plabels)"
check_range "never two guests suspended at once (max_paused = 1)" 1 "$pmax" 1
read -r big_s big_e _ < <(grep ' big@n1$' "$SF_TMP/pauses")
read -r g2_s _ _ < <(grep ' g2@n2$' "$SF_TMP/pauses")
read -r s1_s _ _ < <(grep ' s1@n1$' "$SF_TMP/pauses")
sf_note "big paused $big_s..$big_e ($((big_e - big_s)) ms, resumed by n1's guard); g2 paused at +$((g2_s - big_s)) ms; s1 at +$((s1_s - big_s)) ms"
#  How long, by libvirt's monotonic stamps (a step of the wall clock must
#  not count)
mono_of () { awk -v e="$1" '$2 == e && / dom=big$/ { sub(/mono_us=/, "", $4); print int($4 / 1000); exit }' "$SF_TMP/lifewatch-node-n1.events"; }
big_ms=$(( $(mono_of RESUMED) - $(mono_of SUSPENDED) ))
check_range "the guard resumed big at about max_pause (${MAX_PAUSE_S} s)" \
    $(( (MAX_PAUSE_S - 2) * 1000 )) "$big_ms" $(( (MAX_PAUSE_S + 6) * 1000 ))
check_range "g2's pause began no earlier than big's pause + n1's max_pause" \
    $((MAX_PAUSE_S * 1000)) $((g2_s - big_s)) 600000
check_range "s1's pause came after SIGCONT (monotonic ms)" "$m_cont" "$s1_s" 99999999999999
for g in n1:big n1:s1 n2:g2; do
    check_eq "${g#*:} is running" running "$(sf_virsh "${g%%:*}" domstate "${g#*:}")"
done
sf_done
