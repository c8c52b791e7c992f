#!/usr/bin/env bash
#  t0175-cancel-retry: `snapfleet cancel` and retries with backoff (issue 11
#  item 3), with real parts. max_paused = 1, so while a 2 GiB guest (big)
#  is paused and converted (under a rate limit: 16 s) the other jobs wait.
#  (1) A queued job is cancelled at once and its guest never paused. (2)
#  `cancel --bulk` ends a bulk whose two jobs wait: both cancelled, the
#  bulk over, no guest paused.
#  (3) big's job is cancelled mid-conversion: the worker stops qemu-img and
#  resumes big (paused exactly once, per libvirt's events), no scratch or
#  store file of the job remains, the job ends 'cancelled'. (4) Cancelling
#  an ended or unknown job is a clear error that changes nothing. (5) The
#  image store cannot be written for the first attempt of g2's snapshot (a
#  file where its directory should be): that attempt fails before any
#  pause and is retryable, attempt 2 runs after the backoff once the store
#  is back, and the job is done with both attempts listed, the first with
#  its error; g2 was paused once, by attempt 2.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0175-cancel-retry
sf_need_libvirt
sf_need jq

sf_start_scheduler limits.max_paused=1 limits.retry_backoff=5s limits.max_attempts=3
sf_start_node n1
sf_guest n1 big --size 2G
sf_guest n1 g2
sf_guest n1 g3
#  big's conversion reads at 128 MiB/s ([conversion] rate_limit): 16 s for
#  its 2 GiB, so that it is surely still converting when (3) cancels it
sf_start_worker n1 "$SF_NODE_URI" conversion.rate_limit=128MiB
work=$SF_TMP/w-n1/work
store=$SF_TMP/images
listed () { sf_cli instances --format json | jq -e '[.instances[].name] | contains(["big", "g2", "g3"])'; }
wait_for 30 listed || sf_die "big, g2 and g3 never appeared in 'snapfleet instances'"
for g in big g2 g3; do sf_lifewatch n1 "$g"; done

job_field () { sf_cli job show "$1" --format json | jq -r "$2"; }
job_is () { [ "$(job_field "$1" "$2")" = "$3" ]; }
state () { sf_virsh n1 domstate "$1"; }
events () { awk '{print $2}' "$SF_TMP/lifewatch-$1.events" | tr '\n' ' ' | sed 's/ $//'; }

#  -- big's job holds the one pause slot, converting 2 GiB ----------------
j1=$(sf_cli snapshot --instance big --strategy file-cold --format json | jq -r .job_id)
wait_for 60 job_is "$j1" .phase paused || sf_die "job $j1 never paused big"
check_eq "big is paused by $j1" paused "$(state big)"

#  -- (1) a queued job is cancelled at once --------------------------------
j2=$(sf_cli snapshot --instance g2 --strategy file-cold --format json | jq -r .job_id)
check_eq "$j2 waits for the pause slot (queued, never sent)" "queued waiting" \
    "$(job_field "$j2" '"\(.state) \(.phase)"')"
rc=0
out=$(sf_cli cancel "$j2" --format json) || rc=$?
sf_note "cancel $j2: $out"
check_eq "cancel of a queued job exits 0" 0 "$rc"
check_eq "it was cancelled now" cancelled "$(jq -r '.cancel[0].outcome' <<<"$out")"
check_eq "$j2 is cancelled" cancelled "$(job_field "$j2" .state)"
check_eq "its error says it was never sent" "ECANCELED never sent" \
    "$(job_field "$j2" 'if (.error.code == 14 and (.error.text | test("before it was sent"))) then "ECANCELED never sent" else .error end')"

#  -- (2) cancel --bulk of a bulk whose jobs wait ---------------------------
bulk=$(sf_cli snapshot --instance g2 --instance g3 --strategy file-cold --format json | jq -r .bulk_id)
check_eq "bulk $bulk: two jobs, both queued" "2 2" \
    "$(sf_cli bulk show "$bulk" --format json | jq -r '"\(.total) \(.queued)"')"
rc=0
out=$(sf_cli cancel --bulk "$bulk" --format json) || rc=$?
sf_note "cancel --bulk $bulk: $out"
check_eq "cancel --bulk exits 0" 0 "$rc"
check_eq "both jobs cancelled now" "cancelled cancelled" \
    "$(jq -r '[.cancel[].outcome] | join(" ")' <<<"$out")"
bulk_over () { sf_cli bulk show "$bulk" --format json | jq -e '.state == "done"'; }
check "the bulk is over" wait_for 10 bulk_over
check_eq "bulk counts: 2 cancelled, none queued, running, done or failed" "2 0 0 0 0" \
    "$(sf_cli bulk show "$bulk" --format json | jq -r '"\(.cancelled) \(.queued) \(.running) \(.done) \(.failed)"')"
rc=0
out=$(sf_cli cancel --bulk "$bulk" --format json) || rc=$?
check_eq "cancel --bulk again: nothing left, exit 0" "0 0" "$rc $(jq -r '.cancel | length' <<<"$out")"

#  -- (3) big's job, cancelled mid-conversion --------------------------------
scratch=$(find "$work" -type f -path "*$j1*" | tr '\n' ' ')
sf_note "scratch of $j1 before the cancel: $scratch"
check "the conversion is under way (scratch of $j1 exists)" test -n "$scratch"
check_eq "big is still paused" paused "$(state big)"
rc=0
out=$(sf_cli cancel "$j1") || rc=$?
sf_note "cancel $j1: $out"
check_eq "cancel of a running job exits 0" 0 "$rc"
check "the answer says the cancel was sent" grep -q "cancel sent" <<<"$out"
wait_for 60 job_is "$j1" .state cancelled || true
j=$(sf_cli job show "$j1" --format json)
sf_note "job $j1: $(jq -c '{state, phase, error, attempts}' <<<"$j")"
check_eq "$j1 is cancelled (not failed)" cancelled "$(jq -r .state <<<"$j")"
check_eq "with the worker's ECANCELED" 14 "$(jq -r .error.code <<<"$j")"
check_eq "and made no image" 0 "$(jq -r '.images | length' <<<"$j")"
check_eq "big is running" running "$(state big)"
check "no scratch of $j1 remains" wait_for 10 bash -c "[ -z \"\$(find '$work' -type f -path '*$j1*')\" ]"
check_eq "no file in the store (nothing was stored yet)" "" "$(find "$store" -type f | tr '\n' ' ')"
log=$(sf_guest_dir n1 big)/console.log
s=$(lv_guest_seq "$log")
check "big writes again" lv_wait_seq "$log" $((s + 10)) 30

#  -- (4) errors change nothing ---------------------------------------------
rc=0
err=$(sf_cli cancel "$j1" 2>&1 >/dev/null) || rc=$?
check_eq "cancel of an ended job exits 1" 1 "$rc"
check_eq "and names its state" "snapfleet: cannot cancel job '$j1': job '$j1' has already ended: cancelled" "$err"
rc=0
err=$(sf_cli cancel J999 2>&1 >/dev/null) || rc=$?
check_eq "cancel of an unknown job exits 1" 1 "$rc"
check_eq "with a clear error" "snapfleet: cannot cancel job 'J999': no job 'J999'" "$err"
rc=0
sf_cli cancel >/dev/null 2>&1 || rc=$?
check_eq "cancel with nothing to cancel is a usage error" 2 "$rc"
check_eq "$j1 unchanged" cancelled "$(job_field "$j1" .state)"

#  -- (5) a retry: the store is away for attempt 1 --------------------------
mv "$store" "$store.aside"
: >"$store"
j3=$(sf_cli snapshot --instance g2 --strategy file-cold --format json | jq -r .job_id)
wait_for 30 job_is "$j3" .attempt 2 || true
j=$(sf_cli job show "$j3" --format json)
sf_note "job $j3 after attempt 1: $(jq -c '{state, phase, attempt, attempts}' <<<"$j")"
check_eq "attempt 1 failed and attempt 2 waits its backoff" "queued waiting 2" \
    "$(jq -r '"\(.state) \(.phase) \(.attempt)"' <<<"$j")"
check_eq "attempt 1's error is kept (ESTORE)" ESTORE "$(jq -r '.attempts[0].error.name' <<<"$j")"
check "it names the image directory" grep -q "image directory" <<<"$(jq -r '.attempts[0].error.text' <<<"$j")"
check_eq "g2 was not paused by attempt 1" running "$(state g2)"
rm -f "$store"
mv "$store.aside" "$store"
wait_for 90 job_is "$j3" .state "done" || true
j=$(sf_cli job show "$j3" --format json)
sf_note "job $j3: $(jq -c '{state, attempt, error, attempts}' <<<"$j")"
check_eq "attempt 2 is done" "done 2" "$(jq -r '"\(.state) \(.attempt)"' <<<"$j")"
check_eq "both attempts listed: ESTORE, then none" "1:ESTORE 2:none" \
    "$(jq -r '[.attempts[] | "\(.attempt):\(.error.name // "none")"] | join(" ")' <<<"$j")"
check "the retry waited its backoff (>= 5 s between attempt 1's end and 2's start)" \
    jq -e '((.attempts[1].started | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.attempts[0].ended | sub("\\.[0-9]+Z$"; "Z") | fromdate)) >= 4' <<<"$j"
check "its image passes qemu-img check" qemu-img check -q "$(jq -r .image.path <<<"$j")"
human=$(sf_cli job show "$j3")
check "'job show' lists the attempts" grep -q "^ATTEMPT" <<<"$human"

#  -- what libvirt saw ------------------------------------------------------
for g in big g2 g3; do sf_stop_pid "$SF_TMP/lifewatch-$g.pid" || true; done
sf_note "big: $(events big); g2: $(events g2); g3: $(events g3)"
check_eq "big was paused once and resumed" "SUSPENDED RESUMED" "$(events big)"
check_eq "g2 was paused once, by attempt 2 of $j3" "SUSPENDED RESUMED" "$(events g2)"
check_eq "g3 was never paused" "" "$(events g3)"
sf_done
