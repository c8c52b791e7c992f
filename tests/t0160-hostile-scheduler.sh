#!/usr/bin/env bash
#  t0160-hostile-scheduler: a fake scheduler (sf-peer, speaking the
#  protocol through sf_wire and CURVE) takes the address a real worker n1
#  connects to, while the real scheduler is stopped. Before, the test
#  takes a listing of the image store (with g1's image from a real
#  snapshot, and a file 'precious' that snapfleet did not make), the
#  worker's workdir and a file outside the store.
#  (1) With a key the worker does not pin: the worker's CURVE handshake
#  fails, so the fake receives nothing (no hello, no heartbeat) and the
#  worker gets nothing: no welcome, no job, no deletion; no file changes.
#  (2) With the key the worker pins (the real scheduler's, as if it were
#  stolen), the fake is welcomed and asks for deletions the worker must
#  refuse: 'precious' (in the store, not snapfleet's), g1's image under a
#  job that did not make it, a file outside the store, and an RBD image
#  that is not a snapfleet clone. Each is answered with an error, and no
#  file changes. (3) The real scheduler comes back on the same address
#  and database: n1 is up again and a snapshot of g1 is done.
#  Without the fixes of issue 10 (a worker deletes only what snapfleet
#  made for the job named) step 2 fails: the worker deletes any id in its
#  store.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0160-hostile-scheduler
sf_need_libvirt
sf_need jq
[ -x "$SF_PEER" ] || sf_die "sf-peer is not built ($SF_PEER)"

sf_start_fleet n1 g1
store=$SF_TMP/images
work=$SF_TMP/w-n1/work
sf_snapshot_done "first" g1 n1
j1=$(jq -r .job_id "$SF_TMP/last-snapshot.json")
i1_id=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
i1_path=$(jq -r .image.path "$SF_TMP/last-snapshot.json")
[ -f "$i1_path" ] || sf_die "g1's image $i1_path is not there"

#  What snapfleet did not make: a complete-looking image in the store and
#  a file outside it
head -c 1048576 /dev/urandom >"$store/precious.qcow2"
printf '{"owner": "someone else"}\n' >"$store/precious.json"
mkdir -p "$SF_TMP/outside"
head -c 1048576 /dev/urandom >"$SF_TMP/outside/victim.qcow2"
printf '{"job_id": "%s"}\n' "$j1" >"$SF_TMP/outside/victim.json"
sf_tree_snapshot "$store" >"$SF_TMP/store.before"
sf_tree_snapshot "$SF_TMP/outside" >"$SF_TMP/outside.before"
sf_tree_snapshot "$work" >"$SF_TMP/work.before"
untouched ()
{
    sf_tree_snapshot "$store" >"$SF_TMP/store.now"
    sf_tree_snapshot "$SF_TMP/outside" >"$SF_TMP/outside.now"
    sf_tree_snapshot "$work" >"$SF_TMP/work.now"
    check "$1: the image store did not change" diff -u "$SF_TMP/store.before" "$SF_TMP/store.now"
    check "$1: the file outside it did not change" diff -u "$SF_TMP/outside.before" "$SF_TMP/outside.now"
    check "$1: the worker's workdir did not change" diff -u "$SF_TMP/work.before" "$SF_TMP/work.now"
}
#  worker_since LINE: the worker's log after line LINE
worker_since () { tail -n "+$(($1 + 1))" "$SF_TMP/worker-n1.log"; }

sf_stop_pid "$SF_TMP/scheduler.pid" || sf_die "the real scheduler did not stop cleanly"

#  -- (1) a fake scheduler with a key the worker does not pin ----------------------
mark=$(wc -l <"$SF_TMP/worker-n1.log")
sf_peer_start fake scheduler "$SF_SCHED_BIND" --cert "$(sf_keygen fake-scheduler)"
#  The worker retries its connection all along (every heartbeat is queued
#  for it); give it time to try many times
sleep 8
check "the fake scheduler received nothing from the worker" \
    bash -c "! grep -Ev '^(READY|DONE|UNSENT) ' '$SF_TMP/fake.log'"
since=$(worker_since "$mark")
check "the worker was not welcomed" bash -c '! grep -q "welcomed" <<<"$1"' _ "$since"
check "the worker received no job and no deletion" \
    bash -c '! grep -Eq "deleting image|job started|assign" <<<"$1"' _ "$since"
check "the worker is alive" _sf_alive worker-n1
untouched "unpinned fake scheduler"
sf_peer_stop fake

#  -- (2) a fake scheduler with the pinned key asks for deletions -----------------------
mark=$(wc -l <"$SF_TMP/worker-n1.log")
sf_peer_start stolen scheduler "$SF_SCHED_BIND" --cert "$SF_TMP/keys/scheduler"
wait_for 30 grep -q '^HELLO node=n1 ' "$SF_TMP/stolen.log" ||
    sf_die "n1 never said hello to the scheduler with the pinned key"
catalog=0123456789abcdef
sf_peer stolen delete R1 dir precious "$store/precious.qcow2" "$catalog" "$j1"
sf_peer stolen delete R2 dir "$i1_id" "$i1_path" "$catalog" J999
sf_peer stolen delete R3 dir 0b5e55ed-0000-4000-8000-000000000001 "$SF_TMP/outside/victim.qcow2" "$catalog" "$j1"
sf_peer stolen delete R4 rbd rbd/g1 rbd:rbd/g1 "$catalog" "$j1"
answered () { [ "$(grep -c '^DELETED ' "$SF_TMP/stolen.log" || true)" -ge 4 ]; }
wait_for 60 answered || true
sf_note "answers: $(grep '^DELETED ' "$SF_TMP/stolen.log" | tr '\n' ';')"
#  answer R: the code of the answer to R ("" if none)
answer () { sed -n "s/^DELETED request=$1 code=\([A-Z]*\) .*/\1/p" "$SF_TMP/stolen.log"; }
for r in R1 R2 R4; do
    code=$(answer "$r")
    check "deletion $r is refused with an error (got '${code:-no answer}')" \
        test -n "$code" -a "$code" != OK
done
check "deletion R3 is answered" test -n "$(answer R3)"
untouched "deletions a scheduler with the pinned key asked for"
check "g1's image is still there" test -f "$i1_path"
check "the worker is alive" _sf_alive worker-n1
sf_peer_stop stolen

#  -- (3) the real scheduler comes back ----------------------------------------------
sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" --config "$SF_TMP/scheduler/scheduler.conf"
_sf_wait_up scheduler 30 _sf_sched_ready || sf_die "the real scheduler did not come back"
_sf_wait_up worker-n1 60 _sf_worker_up n1 || sf_die "n1 did not come back"
sf_snapshot_done "with the real scheduler back" g1 n1
check "its image is in the store" test -f "$(jq -r .image.path "$SF_TMP/last-snapshot.json")"
check_eq "the store holds the images of both snapshots and precious" 3 \
    "$(find "$store" -name '*.qcow2' | wc -l)"
sf_done
