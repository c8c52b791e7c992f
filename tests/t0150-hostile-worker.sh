#!/usr/bin/env bash
#  t0150-hostile-worker: peers that speak the protocol correctly (sf-peer,
#  through sf_wire and CURVE) but lie, against the real scheduler, a real
#  worker n1 and its guest g1. Each step takes the scheduler's listings
#  (jobs, images, instances, nodes: sf_state_snapshot) and the image store
#  before, and checks that nothing changed that the peer had no right to
#  change, and that the real fleet keeps working.
#  (1) An unenrolled key (its handshake refused, counted in 'status') that
#  says hello as n1, claims g1 and reports for n1's job: nothing changes.
#  An enrolled key whose hello names n1 is refused; what it sends after
#  (an empty inventory for n1, a failed result for n1's job) changes
#  nothing. (t0140 checks the logging of both with real workers.)
#  (2) An enrolled worker 'evil' (its own name and key) gets a job for its
#  own instance and reports images it did not make: a path outside the
#  image store, another job's image id, another job's file under a new id,
#  an RBD clone name without the catalogue id. Each job fails, no image
#  row is written, g1's image row and file stay. (3) It reports events and
#  results for n1's jobs (a running one and a done one): they change
#  nothing; n1's job is done with n1's image. (4) An ImageDeleted for a
#  request it was never sent is ignored: g1's image stays listed.
#  Without the fixes of issue 10 (the scheduler checks a result's images
#  against the job) step 2 fails: the scheduler writes whatever image rows
#  a worker reports, and another job's id replaces that job's row.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0150-hostile-worker
sf_need_libvirt
sf_need jq
[ -x "$SF_PEER" ] || sf_die "sf-peer is not built ($SF_PEER)"

sf_start_fleet n1 g1
g1_uuid=$SF_GUEST_UUID

#  job_state JOB; ended JOB: its state; whether it is over
job_state () { sf_cli job show "$1" --format json | jq -r .state; }
ended () { case $(job_state "$1") in done | failed | skipped | cancelled | expired) return 0 ;; esac; return 1; }
#  images_of JOB: how many image rows name JOB
images_of () { sf_cli images --format json | jq --arg j "$1" '[.images[] | select(.job_id == $j)] | length'; }
#  same WHAT BEFORE: check that the listings (but for node evil's own rows)
#  and the image store are as in BEFORE (sf_state_snapshot, sf_tree_snapshot)
same ()
{
    sf_state_snapshot "$SF_TMP/now.json" evil
    sf_tree_snapshot "$SF_TMP/images" >"$SF_TMP/now.tree"
    check "$1: the scheduler's listings did not change" diff -u "$2.json" "$SF_TMP/now.json"
    check "$1: the image store did not change" diff -u "$2.tree" "$SF_TMP/now.tree"
}
before () { sf_state_snapshot "$SF_TMP/$1.json" evil; sf_tree_snapshot "$SF_TMP/images" >"$SF_TMP/$1.tree"; }
sf_snapshot_done "first" g1 n1
j1=$(jq -r .job_id "$SF_TMP/last-snapshot.json")
i1_id=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
i1_path=$(jq -r .image.path "$SF_TMP/last-snapshot.json")
[ -f "$i1_path" ] || sf_die "g1's image $i1_path is not there"
sf_note "g1: uuid $g1_uuid, job $j1, image $i1_id at $i1_path"

#  -- (1) an unenrolled key, and an enrolled key naming n1 ---------------------------
refused0=$(sf_cli status --format json | jq .unenrolled)
misnamed0=$(sf_cli status --format json | jq .worker_misnamed)
before s1
stranger=$(sf_keygen stranger)
sf_peer_start stranger worker "$SF_SCHED_BIND" --cert "$stranger" \
    --server-key "$SNAPFLEET_SERVER_KEY" --node n1
sf_peer stranger hello
sf_peer stranger inventory "$g1_uuid:g1"
sf_peer stranger event "$j1" 1 failed
sf_peer stranger result "$j1" 1 fail
sf_peer stranger deleted R1 dir "$i1_id"
counted () { [ "$(sf_cli status --format json | jq .unenrolled)" -gt "$refused0" ]; }
wait_for 20 counted || true
check "status counts the unenrolled key's refused handshakes" counted
sleep 2
check "the unenrolled peer got no message at all" \
    bash -c "! grep -Ev '^(READY|DONE|UNSENT) ' '$SF_TMP/stranger.log'"
sf_peer_stop stranger
same "unenrolled key" "$SF_TMP/s1"

imp=$(sf_keygen impostor workers)
sf_peer_start impostor worker "$SF_SCHED_BIND" --cert "$imp" \
    --server-key "$SNAPFLEET_SERVER_KEY" --node n1
sf_peer impostor hello
sf_peer impostor inventory
sf_peer impostor result "$j1" 1 fail
sf_peer impostor deleted R1 dir "$i1_id"
misnamed () { [ "$(sf_cli status --format json | jq .worker_misnamed)" -gt "$misnamed0" ]; }
wait_for 20 misnamed || true
check "status counts the hello as n1 from impostor's key" misnamed
sleep 2
check "the impostor was not welcomed" bash -c "! grep -q '^WELCOME' '$SF_TMP/impostor.log'"
sf_peer_stop impostor
same "hello as n1 from another node's key" "$SF_TMP/s1"
check "n1 is still up" bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' nodes --format json | jq -e '.nodes[] | select(.name == \"n1\" and .state == \"up\")'"
sf_snapshot_done "after the refused peers" g1 n1

#  -- (2) an enrolled worker reports images it did not make ---------------------
sf_peer_worker evil
evm_uuid=5e7a1c00-0000-4000-8000-00000000e71a
sf_peer evil inventory "$evm_uuid:evm1"
evm () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "evm1" and .node == "evil")'; }
wait_for 20 evm >/dev/null || sf_die "evm1 never appeared"
before s2

#  lie WHAT STORE ID PATH: a job of evm1, whose result reports that image
lie ()
{
    local what=$1 job out
    shift
    out=$(sf_cli snapshot --instance evm1 --format json) || sf_die "no job for evm1: $out"
    job=$(jq -r .job_id <<<"$out")
    wait_for 30 grep -q "^ASSIGN job=$job " "$SF_TMP/evil.log" ||
        sf_die "job $job of evm1 never reached evil"
    sf_peer evil result "$job" 1 ok "$@"
    wait_for 30 ended "$job" || true
    check_eq "$what: job $job failed" failed "$(job_state "$job")"
    check "$what: and says why" bash -c "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' job show '$job' --format json | jq -e '.error.text | length > 0'"
    check_eq "$what: no image row names job $job" 0 "$(images_of "$job")"
}
lie "a path outside the image store" dir 0b5e55ed-0000-4000-8000-000000000001 /etc/passwd
lie "another job's image id" dir "$i1_id" "$i1_path"
lie "another job's file under a new id" dir 0b5e55ed-0000-4000-8000-000000000002 "$i1_path"
lie "an RBD clone name without the catalogue id" rbd "rbd/g1-snapfleet-$j1" "rbd:rbd/g1-snapfleet-$j1"
check_eq "g1's image row still names job $j1 and its path" "$j1 $i1_path" \
    "$(sf_cli images --format json | jq -r --arg i "$i1_id" '.images[] | select(.id == $i) | "\(.job_id) \(.path)"')"
same "images evil did not make" "$SF_TMP/s2"

#  -- (3) reports for jobs evil was not given ------------------------------------
before s3
out=$(sf_cli snapshot --instance g1 --format json) || sf_die "no job for g1: $out"
jr=$(jq -r .job_id <<<"$out")
sf_peer evil event "$jr" 1 failed
sf_peer evil result "$jr" 1 fail
sf_peer evil result "$jr" 1 ok dir 0b5e55ed-0000-4000-8000-000000000003 /etc/passwd
sf_peer evil result "$j1" 1 fail
sf_peer evil event "$j1" 1 failed
wait_for 120 ended "$jr" || true
show=$(sf_cli job show "$jr" --format json)
check_eq "n1's job $jr is done by n1 despite evil's reports" "done n1" \
    "$(jq -r '"\(.state) \(.node)"' <<<"$show")"
check "with n1's image in the store" test -f "$(jq -r .image.path <<<"$show")"
check_eq "job $jr has one image row" 1 "$(images_of "$jr")"
check_eq "no image row for the image evil reported for it" 0 \
    "$(sf_cli images --format json | jq '[.images[] | select(.id == "0b5e55ed-0000-4000-8000-000000000003")] | length')"
check_eq "job $j1 is still done" "done" "$(job_state "$j1")"
check "evil never got job $jr" bash -c "! grep -q 'job=$jr ' '$SF_TMP/evil.log'"
#  Only jr and its image are new
sf_state_snapshot "$SF_TMP/s3b.json" evil
check "the jobs before are unchanged" bash -c \
    "diff <(jq -s '.[0]' '$SF_TMP/s3.json') <(jq -s --arg j '$jr' '.[0] | map(select(.job_id != \$j))' '$SF_TMP/s3b.json')"
check "the images before are unchanged" bash -c \
    "diff <(jq -s '.[1]' '$SF_TMP/s3.json') <(jq -s --arg j '$jr' '.[1] | map(select(.job_id != \$j))' '$SF_TMP/s3b.json')"

#  -- (4) an answer to a deletion never asked --------------------------------------
before s4
sf_peer evil deleted R1 dir "$i1_id"
sf_peer evil deleted "$j1" dir "$i1_id"
sf_peer evil deleted D1 dir "$i1_id"
sleep 2
same "an ImageDeleted for a request never sent" "$SF_TMP/s4"
check "g1's first image is still listed" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images --format json | jq -e --arg i '$i1_id' '.images[] | select(.id == \$i)'"

check_eq "evil's instance is evil's" evil "$(evm | jq -r .node)"
sf_snapshot_done "at the end" g1 n1
check "n1's worker is alive" _sf_alive worker-n1
sf_done
