#!/usr/bin/env bash
#  t0190-gc: the reconciler and 'snapfleet gc' (issue 11, item 5), with real
#  parts: a node n1 with a file guest g1 and an RBD guest g2 on a single-node
#  Ceph. A file-cold job of g1 is done (its image catalogued); the next job
#  of g1 fails for real (its scratch directory is taken by a file that is
#  not snapfleet's). Then what crashes leave is planted, named for that
#  failed job (a store temp file with its pending sidecar, a store entry,
#  an RBD snapshot and its clone) or for no job the catalogue knows (a
#  scratch directory), next to what must stay: a foreign file, a temp file
#  without a sidecar, an entry and RBD look-alikes of another catalogue, a
#  temp file younger than the grace, the failed job's own scratch with the
#  foreign file in it. 'gc --dry-run' lists exactly the orphans with their
#  reasons and changes nothing (the store, the workdir and the pool are
#  listed before and after); 'gc' removes exactly them; the catalogued
#  image and everything else stay. Deleting the catalogued image's file by
#  hand makes it 'missing' in 'snapfleet images' (the row stays). With
#  [gc] interval on, n1's hello to a restarted scheduler starts a run that
#  removes an hour-old orphan, and the scheduler logs it.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0190-gc
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq python3

grace_s=10
head -c $((64 << 20)) /dev/urandom >"$SF_TMP/g2.raw"
#  No periodic or hello runs: only the ones this test asks for
sf_start_scheduler gc.interval=0 gc.grace=${grace_s}s gc.timeout=60s
sf_start_node n1
uri=$SF_NODE_URI
sf_guest n1 g1
cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
ceph_import "$SF_TMP/g2.raw" rbd/g2 || sf_die "rbd import of rbd/g2 failed"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g2 "$SF_TMP/n1/vm" rbd/g2 || sf_die "RBD guest g2 did not boot"
ceph_sf_worker n1 "$uri"
listed () { sf_cli instances --format json | jq -e --arg g "$1" '.instances[] | select(.name == $g)'; }
wait_for 30 listed g1 >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
wait_for 30 listed g2 >/dev/null || sf_die "g2 never appeared in 'snapfleet instances'"
store=$SF_TMP/images
work=$SF_TMP/w-n1/work
cat=$(sf_catalog_id)
other=fedcba9876543210
[ "$cat" != "$other" ] || other=0123456789abcdef

#  -- jobs done, a job failed ------------------------------------------------
sf_snapshot_done "file-cold" g1 n1
j1=$(jq -r .job_id "$SF_TMP/last-snapshot.json")
kept_id=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
kept_path=$(jq -r .image.path "$SF_TMP/last-snapshot.json")
#  An RBD clone of g2, catalogued, and the snapshot it hangs on
sf_snapshot_done "rbd clone" g2 n1
jr=$(jq -r .job_id "$SF_TMP/last-snapshot.json")
kept_clone=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
check_eq "the clone is named for the job" "rbd/g2-snapfleet-$cat-$jr" "$kept_clone"
#  The next job's scratch directory holds a file that is not snapfleet's:
#  the job fails before it pauses anything (and the file stays)
jf=J$(( ${jr#J} + 1 ))
mkdir -p "$work/$jf"
echo "not snapfleet's" >"$work/$jf/notes.txt"
out=$(sf_cli snapshot --instance g1 --wait --format json) || true
sf_note "second job: $(jq -c '{job_id, state, error}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "job $jf failed" "$jf failed" "$(jq -r '"\(.job_id) \(.state)"' <<<"$out" 2>/dev/null)"
check "its error names the scratch directory" grep -q "scratch directory" \
    <<<"$(jq -r .error.text <<<"$out" 2>/dev/null)"

#  -- what crashes leave, and what must stay -----------------------------------
sidecar ()      #  FILE ID CATALOG JOB
{
    printf '{"id": "%s", "catalog_id": "%s", "job_id": "%s"}\n' "$2" "$3" "$4" >"$1"
}
a=$(uuidgen | tr 'A-F' 'a-f')   #  temp of the failed job (a worker killed mid-upload)
b=$(uuidgen | tr 'A-F' 'a-f')   #  complete entry of the failed job
c=$(uuidgen | tr 'A-F' 'a-f')   #  temp without a sidecar: not provably ours
d=$(uuidgen | tr 'A-F' 'a-f')   #  entry of another catalogue
y=$(uuidgen | tr 'A-F' 'a-f')   #  temp of the failed job, younger than the grace
head -c $((1 << 20)) /dev/urandom >"$store/$a.qcow2.tmp"
sidecar "$store/$a.pending" "$a" "$cat" "$jf"
head -c $((2 << 20)) /dev/urandom >"$store/$b.qcow2"
sidecar "$store/$b.json" "$b" "$cat" "$jf"
head -c 4096 /dev/urandom >"$store/$c.qcow2.tmp"
head -c 4096 /dev/urandom >"$store/$d.qcow2"
sidecar "$store/$d.json" "$d" "$other" "$jf"
echo "someone's notes" >"$store/notes.txt"
mkdir -p "$work/J999"
head -c 8192 /dev/urandom >"$work/J999/vda.qcow2.tmp"
#  All of it an hour old (as a crash long ago left it); the young one below
touch -d '-1 hour' "$store/$a.qcow2.tmp" "$store/$a.pending" "$store/$b.qcow2" "$store/$b.json" \
    "$store/$c.qcow2.tmp" "$store/$d.qcow2" "$store/$d.json" "$store/notes.txt" \
    "$work/J999/vda.qcow2.tmp" "$work/J999" "$work/$jf/notes.txt" "$work/$jf"
head -c 4096 /dev/urandom >"$store/$y.qcow2.tmp"
sidecar "$store/$y.pending" "$y" "$cat" "$jf"
#  RBD: the failed job's snapshot of g2's disk and its clone; look-alikes
#  of another catalogue; someone's own protected snapshot
snap=snapfleet-$cat-$jf
clone=g2-snapfleet-$cat-$jf
ceph_rbd snap create "rbd/g2@$snap" >/dev/null
ceph_rbd snap protect "rbd/g2@$snap" >/dev/null
ceph_rbd clone "rbd/g2@$snap" "rbd/$clone" >/dev/null
for s in "snapfleet-$other-$jf" keep; do
    ceph_rbd snap create "rbd/g2@$s" >/dev/null
    ceph_rbd snap protect "rbd/g2@$s" >/dev/null
done
ceph_rbd clone "rbd/g2@snapfleet-$other-$jf" "rbd/g2-snapfleet-$other-$jf" >/dev/null

pool_listing ()
{
    local img
    for img in $(ceph_rbd_images rbd | LC_ALL=C sort); do
        printf '%s\n' "$img"
        ceph_rbd_snaps "rbd/$img" | LC_ALL=C sort | sed 's/^/  @/'
    done
}
listings ()     #  OUT: the store, the workdir (but the pause journal) and the pool
{
    { sf_tree_snapshot "$store"; sf_tree_snapshot "$work" | grep -v '/paused'; pool_listing; } >"$1"
}

#  gc_run ARGS...: run 'snapfleet gc ARGS --format json', the run in $SF_TMP/gc.json
gc_run ()
{
    local rc=0
    sf_cli gc "$@" --format json >"$SF_TMP/gc.json" || rc=$?
    sf_note "gc $*: exit $rc: $(jq -c '.nodes[] | {node, state, note, orphans: [.orphans[] | "\(.kind) \(.name): \(.reason)"], removed: [.removed[].name], failed: [.failed[] | "\(.name): \(.error)"], missing: [.missing[].id]}' "$SF_TMP/gc.json" 2>/dev/null)"
    return $rc
}
#  orphans / kept KIND NAME...: the run's orphans (kept holdings), "kind name" sorted
orphans () { jq -r '.nodes[0].orphans[] | "\(.kind) \(.name)"' "$SF_TMP/gc.json" | LC_ALL=C sort; }
kept () { jq -r '.nodes[0].kept[] | "\(.kind) \(.name)"' "$SF_TMP/gc.json" | LC_ALL=C sort; }
reason () { jq -r --arg n "$1" '.nodes[0] | (.orphans + .kept)[] | select(.name == $n) | .reason' "$SF_TMP/gc.json"; }

expect_orphans=$(LC_ALL=C sort <<EOF
clone rbd/$clone
image $b
scratch J999
snapshot rbd/g2@$snap
temp $a
EOF
)

#  -- dry runs -------------------------------------------------------------
listings "$SF_TMP/before"
check "gc --dry-run exits 0" gc_run --dry-run
check_eq "first dry run: the RBD objects are kept, younger than the grace (first listed now)" \
    "younger than the grace of $grace_s s|younger than the grace of $grace_s s" \
    "$(reason "rbd/g2@$snap")|$(reason "rbd/$clone")"
sleep $((grace_s + 1))
touch "$store/$y.qcow2.tmp" "$store/$y.pending"
check "gc --dry-run exits 0 again" gc_run --dry-run
check_eq "dry run: the run is a dry run, n1 answered" "true done" \
    "$(jq -r '"\(.dry_run) \(.nodes[0].state)"' "$SF_TMP/gc.json")"
check_eq "dry run lists exactly the orphans" "$expect_orphans" "$(orphans)"
check_eq "reason of the failed job's temp file" "temp file of job $jf, which failed" "$(reason "$a")"
check_eq "reason of the failed job's store entry" "job $jf failed" "$(reason "$b")"
check_eq "reason of the scratch of an unknown job" "job J999 unknown to this catalogue" "$(reason J999)"
check_eq "reason of the failed job's snapshot and clone" "job $jf failed|job $jf failed" \
    "$(reason "rbd/g2@$snap")|$(reason "rbd/$clone")"
check_eq "the catalogued image is kept as such" "catalogued image" "$(reason "$kept_id")"
check_eq "the catalogued clone is kept as such" "catalogued image" "$(reason "$kept_clone")"
check_eq "and the snapshot it hangs on" "parent of a catalogued clone of job $jr" \
    "$(reason "rbd/g2@snapfleet-$cat-$jr")"
check_eq "the young temp file is kept" "younger than the grace of $grace_s s" "$(reason "$y")"
check "nothing of another catalogue or not snapfleet's is even listed" bash -c \
    "! jq -r '.nodes[0] | (.orphans + .kept)[] | .name' '$SF_TMP/gc.json' | grep -E -- '$c|$d|notes|$other|keep|^$jf\$'"
check_eq "dry run: nothing removed, no image missing" "0 0" \
    "$(jq -r '.nodes[0] | "\(.removed | length) \(.missing | length)"' "$SF_TMP/gc.json")"
sleep 1.1     #  an mtime that changed would show
listings "$SF_TMP/after-dry"
#  (but the young temp file, which this test touches to keep it young)
check "dry runs change nothing (store, workdir and pool listings equal)" \
    diff -u <(grep -v -F "$y." "$SF_TMP/before") <(grep -v -F "$y." "$SF_TMP/after-dry")
check "the table output lists the orphans with their reasons" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' gc --dry-run | grep -F 'temp file of job $jf, which failed' | grep -q 'would remove'"

#  -- gc -------------------------------------------------------------------
has_kept_clone () { ceph_rbd_images rbd | grep -qx -- "${kept_clone#rbd/}"; }
touch "$store/$y.qcow2.tmp" "$store/$y.pending"
check "gc exits 0" gc_run
check_eq "gc removed exactly the orphans" "$expect_orphans" \
    "$(jq -r '.nodes[0].removed[] | "\(.kind) \(.name)"' "$SF_TMP/gc.json" | LC_ALL=C sort)"
check_eq "and failed none" 0 "$(jq -r '.nodes[0].failed | length' "$SF_TMP/gc.json")"
for f in "$a.qcow2.tmp" "$a.pending" "$b.qcow2" "$b.json"; do
    check "store: $f is gone" test ! -e "$store/$f"
done
check "workdir: J999's scratch is gone" test ! -e "$work/J999"
no_clone () { ! ceph_rbd_images rbd | grep -qx -- "$clone"; }
no_snap () { ! ceph_rbd_snaps rbd/g2 | grep -q -- "^$snap "; }
check "rbd: the failed job's clone is gone" no_clone
check "rbd: the failed job's snapshot is gone" no_snap
for f in "$kept_id.qcow2" "$kept_id.json" "$c.qcow2.tmp" "$d.qcow2" "$d.json" notes.txt \
         "$y.qcow2.tmp" "$y.pending"; do
    check "store: $f stays" test -f "$store/$f"
done
check "workdir: the failed job's directory with the foreign file stays" test -f "$work/$jf/notes.txt"
check "rbd: the catalogued clone stays" has_kept_clone
check "the catalogued image still passes qemu-img check" qemu-img check -q "$kept_path"
listings "$SF_TMP/after"
grep -v -F -e "$a." -e "$b." -e "/J999" -e "$clone" -e "@$snap " "$SF_TMP/before" |
    grep -v -F "$y." >"$SF_TMP/before-kept"
grep -v -F "$y." "$SF_TMP/after" >"$SF_TMP/after-kept"
check "everything else is as before (store, workdir, pool)" \
    diff -u "$SF_TMP/before-kept" "$SF_TMP/after-kept"
check "the worker logged what it removed" grep -q "gc removed temp '$a' of job $jf" \
    "$SF_TMP/worker-n1.log"
check "gc again: no orphans left" gc_run
check_eq "gc again lists none" "" "$(orphans)"
check_eq "g1 and g2 are running" "running running" "$(sf_virsh n1 domstate g1) $(sf_virsh n1 domstate g2)"

#  -- a catalogued image deleted by hand -----------------------------------
missing () { sf_cli images --format json | jq -r --arg i "$kept_id" '.images[] | select(.id == $i) | .missing'; }
check_eq "before: the image is not missing" null "$(missing)"
rm -f "$kept_path"
check "gc --dry-run exits 0" gc_run --dry-run
check_eq "the run reports the catalogued image missing" "$kept_id $j1" \
    "$(jq -r '.nodes[0].missing[] | "\(.id) \(.job_id)"' "$SF_TMP/gc.json")"
check "'images' shows it missing, with a time" bash -c "[ '$(missing)' != null ]"
check "its row stays in the catalogue" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images --format json | jq -e --arg i '$kept_id' '.images[] | select(.id == \$i)'"
check "its metadata is not removed (a catalogued entry is never an orphan)" test -f "$store/$kept_id.json"
check "the table of 'images' has the MISSING column" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images | head -1 | grep -q MISSING"

#  -- a run read again; one node only -----------------------------------------
id=$(jq -r .id "$SF_TMP/gc.json")
check_eq "gc --show reads the run again" "$id done $kept_id" \
    "$(sf_cli gc --show "$id" --format json | jq -r '"\(.id) \(.state) \(.nodes[0].missing[0].id)"')"
check "gc --node n1 --dry-run exits 0" gc_run --node n1 --dry-run
check_eq "and asks n1 only" n1 "$(jq -r '[.nodes[].node] | join(" ")' "$SF_TMP/gc.json")"

#  -- the reconciler on its own: n1's hello to a restarted scheduler ---------
#  (with [gc] interval on and remove on, its default, a node that connects
#  gets a run that removes; the young temp file is gone from the test now)
rm -f "$store/$y.qcow2.tmp" "$store/$y.pending"
e=$(uuidgen | tr 'A-F' 'a-f')
head -c 4096 /dev/urandom >"$store/$e.qcow2.tmp"
sidecar "$store/$e.pending" "$e" "$cat" "$jf"
touch -d '-1 hour' "$store/$e.qcow2.tmp" "$store/$e.pending"
sf_stop_pid "$SF_TMP/scheduler.pid" || sf_die "the scheduler did not stop cleanly"
sed -i 's/^interval = 0$/interval = 1m/' "$SF_TMP/scheduler/scheduler.conf"
check "the restarted scheduler reconciles every minute" grep -qx "interval = 1m" \
    "$SF_TMP/scheduler/scheduler.conf"
sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" --config "$SF_TMP/scheduler/scheduler.conf"
_sf_wait_up scheduler 30 _sf_sched_ready || sf_die "the scheduler did not come back"
gone_e () { [ ! -e "$store/$e.qcow2.tmp" ]; }
check "once n1 says hello, an hour-old temp file of the failed job is removed" wait_for 60 gone_e
check "with its sidecar" test ! -e "$store/$e.pending"
check "the scheduler logged what the run removed and why" grep -qF \
    "removed temp '$e' (temp file of job $jf, which failed)" "$SF_TMP/scheduler.log"
for f in "$kept_id.json" "$c.qcow2.tmp" "$d.qcow2" "$d.json" notes.txt; do
    check "store: $f still stays" test -f "$store/$f"
done
check "rbd: the catalogued clone still stays" has_kept_clone

#  -- bad input --------------------------------------------------------------
rc=0
sf_cli gc --node ../n1 >/dev/null 2>&1 || rc=$?
check_eq "gc --node with a bad name is a usage error" 2 "$rc"
rc=0
sf_cli gc --node n9 >/dev/null 2>"$SF_TMP/gc.err" || rc=$?
check_eq "gc --node of an unknown node fails" 1 "$rc"
check "and says so" grep -q "not connected" "$SF_TMP/gc.err"
sf_done
