#!/usr/bin/env bash
#  t0165-hostile-scheduler-rbd: a scheduler whose key the worker pins (as
#  if it were stolen: sf-peer with the real scheduler's key pair, on the
#  real scheduler's address while that is stopped) asks a real worker n1
#  with Ceph storage to delete RBD objects snapfleet did not make, on a
#  real single-node Ceph (tests/lib/ceph.sh). The pool holds the guest's
#  own disk rbd/g1, the clone and snapshot of a real snapshot of g1, and
#  objects of someone else: an image rbd/foreign with a protected
#  snapshot, a clone of it named like snapfleet's old scheme (no catalogue
#  id), a clone and snapshot named like another scheduler's catalogue, and
#  a plain image rbd/plain. Each deletion (the plain images, g1's own
#  disk, the look-alike clones, the real clone under a job that did not
#  make it) is answered with an error, and 'rbd ls' and every image's
#  'rbd snap ls' are as before.
#  Then the real scheduler comes back and a snapshot of g1 is done.
#  Without the fixes of issue 10 (a worker deletes or unprotects only
#  objects named for the catalogue and job it was told, and never an
#  image that is not such a clone) the worker removes rbd/plain, the
#  look-alike clones, the real clone and the snapshots they hang on
#  (unprotecting them), someone else's 'keep' too.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0165-hostile-scheduler-rbd
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq
[ -x "$SF_PEER" ] || sf_die "sf-peer is not built ($SF_PEER)"

#  The guest's disk and someone else's images
head -c $((64 << 20)) /dev/urandom >"$SF_TMP/src.raw"
head -c $((4 << 20)) /dev/urandom >"$SF_TMP/foreign.raw"
sf_start_scheduler
sf_start_node n1
uri=$SF_NODE_URI
cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
ceph_import "$SF_TMP/src.raw" rbd/g1 || sf_die "rbd import of rbd/g1 failed"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g1 "$SF_TMP/n1/vm" rbd/g1 || sf_die "RBD guest g1 did not boot"
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone
inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1" and .strategy == "rbd")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"

sf_snapshot_done "first" g1 n1
j1=$(jq -r .job_id "$SF_TMP/last-snapshot.json")
clone=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
sf_note "job $j1 made the clone $clone"
#  The catalogue id in the clone's name (none in the scheme before issue 10)
rest=${clone#rbd/g1-snapfleet-}
real_catalog=${rest%-"$j1"}
[ "$real_catalog" = "$rest" ] && real_catalog=0123456789abcdef

#  Someone else's objects in the same pool
other=fedcba9876543210
ceph_import "$SF_TMP/foreign.raw" rbd/foreign || sf_die "rbd import of rbd/foreign failed"
ceph_import "$SF_TMP/foreign.raw" rbd/plain || sf_die "rbd import of rbd/plain failed"
for snap in keep "snapfleet-$other-$j1"; do
    ceph_rbd snap create "rbd/foreign@$snap" >/dev/null
    ceph_rbd snap protect "rbd/foreign@$snap" >/dev/null
done
ceph_rbd clone rbd/foreign@keep "rbd/foreign-snapfleet-$j1" >/dev/null
ceph_rbd clone "rbd/foreign@snapfleet-$other-$j1" "rbd/foreign-snapfleet-$other-$j1" >/dev/null

#  pool_listing: every image of rbd and its snapshots (name, protected)
pool_listing ()
{
    local img
    for img in $(ceph_rbd_images rbd | LC_ALL=C sort); do
        printf '%s\n' "$img"
        ceph_rbd_snaps "rbd/$img" | LC_ALL=C sort | sed 's/^/  @/'
    done
}
pool_listing >"$SF_TMP/pool.before" || sf_die "cannot list the pool"
sf_note "pool: $(tr '\n' ';' <"$SF_TMP/pool.before")"

sf_stop_pid "$SF_TMP/scheduler.pid" || sf_die "the real scheduler did not stop cleanly"
sf_peer_start stolen scheduler "$SF_SCHED_BIND" --cert "$SF_TMP/keys/scheduler"
wait_for 30 grep -q '^HELLO node=n1 ' "$SF_TMP/stolen.log" ||
    sf_die "n1 never said hello to the scheduler with the pinned key"
cat=0123456789abcdef
sf_peer stolen delete D1 rbd rbd/foreign rbd:rbd/foreign "$cat" "$j1"
sf_peer stolen delete D2 rbd rbd/g1 rbd:rbd/g1 "$cat" "$j1"
sf_peer stolen delete D3 rbd "rbd/foreign-snapfleet-$j1" "rbd:rbd/foreign-snapfleet-$j1" "$cat" "$j1"
sf_peer stolen delete D4 rbd "rbd/foreign-snapfleet-$other-$j1" \
    "rbd:rbd/foreign-snapfleet-$other-$j1" "$cat" "$j1"
sf_peer stolen delete D5 rbd "$clone" "rbd:$clone" "$real_catalog" J999
sf_peer stolen delete D6 rbd rbd/plain rbd:rbd/plain "$cat" "$j1"
answered () { [ "$(grep -c '^DELETED ' "$SF_TMP/stolen.log" || true)" -ge 6 ]; }
wait_for 120 answered || true
sf_note "answers: $(grep '^DELETED ' "$SF_TMP/stolen.log" | tr '\n' ';')"
answer () { sed -n "s/^DELETED request=$1 code=\([A-Z]*\) .*/\1/p" "$SF_TMP/stolen.log"; }
for r in "D1 a plain image" "D2 the guest's own disk" "D3 a clone without a catalogue id" \
         "D4 another catalogue's clone" "D5 the real clone under another job" \
         "D6 a plain image without snapshots"; do
    code=$(answer "${r%% *}")
    check "deletion ${r#* } is refused with an error (got '${code:-no answer}')" \
        test -n "$code" -a "$code" != OK
done
pool_listing >"$SF_TMP/pool.now" || sf_die "cannot list the pool"
check "no RBD image or snapshot changed" diff -u "$SF_TMP/pool.before" "$SF_TMP/pool.now"
check "the worker is alive" _sf_alive worker-n1
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"
sf_peer_stop stolen

#  The database still says n1 is up until n1 says hello to the next run
#  (until then a snapshot waits for it): count hellos
n1_hellos () { grep -c 'node=n1: node connected' "$SF_TMP/scheduler.log"; }
hellos=$(n1_hellos)
sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" --config "$SF_TMP/scheduler/scheduler.conf"
_sf_wait_up scheduler 30 _sf_sched_ready || sf_die "the real scheduler did not come back"
hello_again () { [ "$(n1_hellos)" -gt "$hellos" ]; }
wait_for 60 hello_again || sf_die "n1 did not say hello to the restarted scheduler"
_sf_wait_up worker-n1 60 _sf_worker_up n1 || sf_die "n1 did not come back"
sf_snapshot_done "with the real scheduler back" g1 n1
clone2=$(jq -r .image.id "$SF_TMP/last-snapshot.json")
name2=${clone2#rbd/}
snap2=${name2#g1-}
check "its clone $name2 exists" grep -qx -- "$name2" <(ceph_rbd_images rbd)
pool_listing | grep -vx -- "$name2" | grep -v -- "^  @$snap2 " >"$SF_TMP/pool.after" ||
    sf_die "cannot list the pool"
check "but for it and its snapshot $snap2, the pool is as before" \
    diff -u "$SF_TMP/pool.before" "$SF_TMP/pool.after"
sf_done
