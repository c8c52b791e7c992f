#!/usr/bin/env bash
#  t0120-bad-input: bad input gets a clear error and changes nothing.
#  Unknown instance: exit 1, one line on stderr, no job row. A bad config
#  file: the daemon names file and line and exits 2. Garbage (random frames,
#  wrong frame counts, a future protocol version, oversized frames, invalid
#  JSON, raw non-ZMTP bytes) at both the worker and the admin endpoint: both
#  daemons keep serving, and a real snapshot still works afterwards.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0120-bad-input
sf_need_libvirt
sf_need jq
poke=$SF_BUILD/tests/sf-poke
[ -x "$poke" ] || sf_die "sf-poke is not built ($poke)"

#  -- bad configs ----------------------------------------------------------
printf '[scheduler]\nbind = tcp://127.0.0.1:1\nbogus_key = 1\n' >"$SF_TMP/bad.conf"
rc=0
err=$("$SF_BUILD/scheduler/snapfleet-scheduler" --config "$SF_TMP/bad.conf" 2>&1) || rc=$?
check_eq "scheduler with an unknown key exits 2" 2 "$rc"
check "scheduler names the file, line and key ($err)" grep -q "bad.conf:3: .*bogus_key" <<<"$err"
printf '[worker]\nheartbeat = soon\n' >"$SF_TMP/badw.conf"
rc=0
err=$("$SF_BUILD/worker/snapfleet-worker" --config "$SF_TMP/badw.conf" 2>&1) || rc=$?
check_eq "worker with a bad duration exits 2" 2 "$rc"
check "worker names the file, line and key ($err)" grep -q "badw.conf:2: .*heartbeat" <<<"$err"
rc=0
"$SF_BUILD/scheduler/snapfleet" --bogus >/dev/null 2>&1 || rc=$?
check_eq "CLI with an unknown option exits 2" 2 "$rc"
rc=0
err=$("$SF_BUILD/scheduler/snapfleet" --admin tcp://127.0.0.1:1 --timeout 1 \
    --cert "$(sf_keygen admin admins)" --server-key "$(sf_keygen scheduler)" nodes 2>&1) || rc=$?
check_eq "CLI against no scheduler exits 69" 69 "$rc"
check "and says it cannot reach it ($err)" grep -q "cannot reach scheduler" <<<"$err"

#  -- unknown instance -------------------------------------------------------
sf_start_scheduler
sf_start_node n1
sf_guest n1 g1
sf_start_worker n1 "$SF_NODE_URI"
wait_for 30 bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' instances --format json | jq -e '.instances[] | select(.name == \"g1\")'" \
    || sf_die "g1 never appeared"
rc=0
err=$(sf_cli snapshot --instance no-such-vm --wait --format json 2>&1 >/dev/null) || rc=$?
check_eq "snapshot of an unknown instance exits 1" 1 "$rc"
check_eq "with exactly one line on stderr" 1 "$(printf '%s\n' "$err" | wc -l)"
check "naming the instance ($err)" grep -q "no-such-vm" <<<"$err"
check_eq "and no job was created" 0 "$(sf_cli jobs --format json | jq '.jobs | length')"
rc=0
sf_cli job show J999 --format json >/dev/null 2>&1 || rc=$?
check_eq "job show of an unknown job exits 1" 1 "$rc"
rc=0
sf_cli snapshot >/dev/null 2>&1 || rc=$?
check_eq "snapshot without --instance is a usage error (2)" 2 "$rc"

#  -- garbage at both endpoints -----------------------------------------------
#  (with enrolled keys, so that it gets past the CURVE handshake)
export SF_POKE_SERVER_KEY=$SNAPFLEET_SERVER_KEY
SF_POKE_CERT=$(sf_keygen poker workers) \
    check "garbage sent to the worker endpoint" "$poke" "$SF_SCHED_BIND" 300
SF_POKE_CERT=$SNAPFLEET_CERT \
    check "garbage sent to the admin endpoint" "$poke" "$SF_ADMIN" 300
check "scheduler still answers 'nodes'" sf_cli nodes --format json
check "scheduler process is alive" _sf_alive scheduler
check "worker process is alive" _sf_alive worker-n1
check "node n1 is still up" bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' nodes --format json | jq -e '.nodes[] | select(.name == \"n1\" and .state == \"up\")'"
check_eq "still no job" 0 "$(sf_cli jobs --format json | jq '.jobs | length')"
out=$(sf_cli snapshot --instance g1 --wait --format json) || true
check_eq "a real snapshot still works after the garbage" "done" "$(jq -r .state <<<"$out" 2>/dev/null)"
check "scheduler logged the dropped garbage" grep -qi "drop" "$SF_TMP/scheduler.log"
sf_done
