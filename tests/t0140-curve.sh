#!/usr/bin/env bash
#  t0140-curve: only enrolled peers speak. Every socket is CURVE by default
#  (tests/lib.sh makes a key per peer in the test's dir and enrols it).
#  insecure = true works on loopback with a warning, and is a config error
#  (exit 2) on any other address. A worker whose key is not enrolled gets
#  nothing: no node appears, and the refusal is logged and counted. A
#  worker whose enrolled key is another node's (its secret file claims n1,
#  the scheduler's allow-list says 'impostor') has its hello as n1 refused
#  and logged, and the real n1 stays. The CLI without an enrolled admin
#  key, or pinning the wrong scheduler key, exits 69 with a message that
#  says what to check, and creates no job. 'status' counts the refusals,
#  and the real enrolled worker keeps working: a file-cold snapshot is done.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0140-curve
sf_need_libvirt
sf_need jq
sched=$SF_BUILD/scheduler/snapfleet-scheduler
cli=$SF_BUILD/scheduler/snapfleet

#  -- insecure: loopback only, with a warning --------------------------------
mkdir -p "$SF_TMP/insecure"
printf '[scheduler]\nbind = tcp://0.0.0.0:%s\nadmin_bind = tcp://127.0.0.1:%s\n[security]\ninsecure = true\n' \
    "$(sf_free_port)" "$(sf_free_port)" >"$SF_TMP/insecure/open.conf"
rc=0
err=$("$sched" --config "$SF_TMP/insecure/open.conf" 2>&1) || rc=$?
check_eq "insecure on a non-loopback bind is a config error (exit 2)" 2 "$rc"
check "naming the file, line and key ($err)" grep -q "open.conf:5: 'security.insecure'" <<<"$err"

export SNAPFLEET_INSECURE=1         #  a plaintext scheduler needs a plaintext CLI
sf_start_scheduler security.insecure=true
check "insecure on loopback starts with a warning" grep -q "PLAINTEXT" "$SF_TMP/scheduler.log"
check_eq "status says curve is off" false "$(sf_cli status --format json | jq -r .curve)"
sf_stop_pid "$SF_TMP/scheduler.pid" || sf_die "the insecure scheduler did not stop cleanly"
rm -f "$SF_TMP/scheduler/scheduler.db"*
unset SNAPFLEET_INSECURE

#  -- the real fleet, over CURVE ------------------------------------------------
sf_start_scheduler
check_eq "status says curve is on" true "$(sf_cli status --format json | jq -r .curve)"
sf_start_node n1
sf_guest n1 g1
sf_start_worker n1 "$SF_NODE_URI"
inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
nodes () { sf_cli nodes --format json | jq -r '[.nodes[].name] | sort | join(",")'; }
check_eq "only n1 is a node" n1 "$(nodes)"

#  rogue_worker TAG NAME KEY: a worker process (log worker-TAG.log) with
#  that node name and key, started without waiting for it to come up (it
#  must not)
rogue_worker ()
{
    local name=$2 key=$3 dir=$SF_TMP/w-$1
    mkdir -p "$dir/work" "$dir/images"
    _sf_write_conf "$dir/worker.conf" \
        "worker.name=$name" \
        "worker.scheduler=$SF_SCHED_BIND" \
        "worker.workdir=$dir/work" \
        worker.heartbeat=1s \
        worker.inventory_interval=1s \
        "hypervisor.uri=$SF_NODE_URI" \
        imagestore.driver=dir \
        "imagestore.path=$dir/images" \
        log.level=debug \
        "security.cert=$key" \
        "security.scheduler_key=$SNAPFLEET_SERVER_KEY"
    sf_spawn "worker-$1" "$SF_BUILD/worker/snapfleet-worker" --config "$dir/worker.conf"
}

#  -- an unenrolled worker key gets nothing ---------------------------------------
rogue_worker n2 n2 "$(sf_keygen n2)"
refused () { grep -q "refused worker connection .*key not enrolled" "$SF_TMP/scheduler.log"; }
wait_for 20 refused || true
check "the unenrolled key's connection is refused and logged" refused
sleep 2
check_eq "no node n2 appears" n1 "$(nodes)"
check "the worker with the unenrolled key is still trying (it got no welcome)" \
    bash -c "! grep -q 'welcomed' '$SF_TMP/worker-n2.log'"

#  -- an enrolled key that says hello as another node -------------------------------
#  The key is enrolled as 'impostor'; its secret file is edited to claim n1
#  (so that the worker, which checks its own key's name, starts as n1)
imp=$(sf_keygen impostor workers)
sed -i 's/name = "impostor"/name = "n1"/' "${imp}_secret"
rogue_worker impostor n1 "$imp"
misnamed () { grep -q "refusing hello as node 'n1' from the key of node 'impostor'" "$SF_TMP/scheduler.log"; }
wait_for 20 misnamed || true
check "the hello as n1 from impostor's key is refused and logged" misnamed
check_eq "still only n1" n1 "$(nodes)"
check "n1 is still up" bash -c "'$cli' nodes --format json | jq -e '.nodes[] | select(.name == \"n1\" and .state == \"up\")'"

#  A worker given another node's key does not start, and says why
mkdir -p "$SF_TMP/w-wrongkey/work"
_sf_write_conf "$SF_TMP/w-wrongkey/worker.conf" worker.name=n7 \
    "worker.scheduler=$SF_SCHED_BIND" "worker.workdir=$SF_TMP/w-wrongkey/work" \
    "hypervisor.uri=$SF_NODE_URI" "imagestore.path=$SF_TMP/w-wrongkey/images" \
    "security.cert=$SF_TMP/keys/n2" "security.scheduler_key=$SNAPFLEET_SERVER_KEY"
rc=0
err=$(timeout 30 "$SF_BUILD/worker/snapfleet-worker" --config "$SF_TMP/w-wrongkey/worker.conf" 2>&1) || rc=$?
check "a worker with another node's key exits at start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "saying whose key it is" grep -q "is the key of node 'n2', not of 'n7'" <<<"$err"

#  -- the CLI needs an enrolled admin key and the right scheduler key ---------------
stranger=$(sf_keygen stranger)
rc=0
err=$("$cli" --timeout 1 --cert "$stranger" snapshot --instance g1 2>&1) || rc=$?
check_eq "CLI with an unenrolled key exits 69" 69 "$rc"
check "and says what to check ($err)" grep -q "refused our key" <<<"$err"
rc=0
err=$("$cli" --timeout 1 --cert "$SF_TMP/keys/n1" snapshot --instance g1 2>&1) || rc=$?
check_eq "CLI with a worker's key exits 69" 69 "$rc"
rc=0
err=$("$cli" --timeout 1 --server-key "$(sf_keygen fake-scheduler)" snapshot --instance g1 2>&1) || rc=$?
check_eq "CLI pinning another scheduler's key exits 69" 69 "$rc"
rc=0
err=$("$cli" --timeout 1 --cert "$SF_TMP/keys/nothing-here" nodes 2>&1) || rc=$?
check_eq "CLI without a key file is a usage error (2)" 2 "$rc"
check "naming the file ($err)" grep -q "nothing-here" <<<"$err"
rc=0
err=$("$cli" --timeout 1 --insecure nodes 2>&1) || rc=$?
check_eq "a plaintext CLI gets nothing (69)" 69 "$rc"
check_eq "none of them made a job" 0 "$(sf_cli jobs --format json | jq '.jobs | length')"

#  -- counted ---------------------------------------------------------------------
st=$(sf_cli status --format json)
sf_note "status: $(jq -c . <<<"$st")"
check "status counts the refused peers (>= 5: n2, stranger, n1 as admin, the CLI pinning a fake key, the plaintext CLI)" \
    jq -e '.unenrolled >= 5' <<<"$st"
check "status counts the misnamed hello" jq -e '.worker_misnamed >= 1' <<<"$st"
check "and the impostor's connection gets no answers that it could loop on" \
    jq -e '.worker_misnamed < 500 and .worker_unknown < 500' <<<"$st"
check "'snapfleet status' prints a table too" bash -c "'$cli' status | grep -q unenrolled"

#  -- the real enrolled worker keeps working ------------------------------------------
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || true
check_eq "a file-cold snapshot of g1 is done" "done" "$(jq -r .state <<<"$out" 2>/dev/null)"
check_eq "by n1" n1 "$(jq -r .node <<<"$out" 2>/dev/null)"
check_eq "with file-cold" file-cold "$(jq -r .strategy <<<"$out" 2>/dev/null)"
check_eq "still only n1" n1 "$(nodes)"
sf_done
