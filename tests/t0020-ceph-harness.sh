#!/usr/bin/env bash
#  t0020-ceph-harness: proves the Ceph part of the test harness with the real
#  parts and no snapfleet code. A single-node Ceph (tests/lib/ceph.sh), a
#  private unprivileged libvirtd, and TCG guests whose vda is an RBD image
#  reached through a libvirt ceph secret. Then by hand what the worker's RBD
#  path will do: an RBD snapshot with the guest paused around it (the pause
#  window is measured), the snapshot read back as raw with qemu-img and
#  checked for a clean record prefix bounded by the console, protect + clone
#  of that snapshot, a mixed guest (vda on RBD with a dedicated client, vdb a
#  local qcow2) snapshotted under one pause, and a misconfigured RBD disk
#  failing fast. Finally everything is stopped by recorded pid and no pid of
#  ours may survive.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0020-ceph-harness
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq cmp ss
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

#  Everything runs under timeout -k; these are the records-area geometry
SECTOR=512
FIRST_SLOT=2049

#  records IMAGE MIN MAX: sf-records verdict line (never fails the script)
records ()
{
    "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true
}

#  k_of LINE: the K= of an sf-records line
k_of () { sed -n 's/.*K=\([0-9]*\).*/\1/p' <<<"$1"; }

#  listeners_local: every TCP listener of our Ceph pids is on 127.0.0.1
# shellcheck disable=SC2317  # called through check
listeners_local ()
{
    local pids pid out bad=0 n=0
    pids=$(ceph_alive_pids "$cdir")
    out=$(ss -ltnpH)
    for pid in $pids; do
        while read -r addr; do
            n=$((n + 1))
            case $addr in 127.0.0.1:*) ;; *) echo "pid $pid listens on $addr"; bad=1 ;; esac
        done < <(awk -v p="pid=$pid," 'index($0, p) { print $4 }' <<<"$out")
    done
    [ "$n" -gt 0 ] && [ "$bad" = 0 ]
}

#  ---------------------------------------------------------------------
#  Ceph

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
t=$(_sf_now_ms)
if ! ceph_start "$cdir" >/dev/null; then
    sf_die "single-node Ceph did not start (logs in $cdir/log)"
fi
ceph_ms=$(($(_sf_now_ms) - t))
ok "Ceph started; rbd create works after $ceph_ms ms"
sf_note "ceph start steps (s): $(tr '\n' ' ' <"$cdir/timings")"
check_eq "CEPH_CONF is exported" "$cdir/ceph.conf" "${CEPH_CONF:-}"
check_eq "mon, mgr and osd run from recorded pids" 3 "$(ceph_alive_pids "$cdir" | wc -l)"
check "every Ceph listener is on 127.0.0.1" listeners_local
check "snapshots are fast: paxos propose interval is tuned" \
    grep -qx 'paxos propose interval = 0.01' "$cdir/ceph.conf"
check "the keyring is private (mode 600)" test "$(stat -c %a "$cdir/keyring")" = 600

#  ---------------------------------------------------------------------
#  A node and an RBD-backed guest

sf_build_guest
sf_start_node n1
uri=$SF_NODE_URI
vmdir=$SF_TMP/n1/vm

src=$SF_TMP/src.raw
head -c 64M /dev/urandom >"$src"
t=$(_sf_now_ms)
check "rbd import of a 64 MiB raw file" ceph_import "$src" rbd/g1
sf_note "rbd import 64 MiB: $(($(_sf_now_ms) - t)) ms"
features=$(ceph_rbd info --format json rbd/g1 | jq -r '.features | join(",")')
sf_note "rbd/g1 features: $features"

usage=$(ceph_lv_secret "$uri" admin) || sf_die "cannot define the ceph secret in $uri"
check "the session libvirtd holds a ceph secret '$usage'" \
    bash -c "timeout 30 virsh -q -c '$uri' secret-list | grep -qF 'ceph $usage'"

t=$(_sf_now_ms)
ceph_lv_guest "$uri" g1 "$vmdir" rbd/g1 --port v1 || sf_die "RBD guest g1 did not boot"
sf_note "g1 (vda on RBD, v1 mon port) wrote records $(($(_sf_now_ms) - t)) ms after define"
log=$vmdir/g1/console.log
check_eq "g1's vda is the RBD image" "network disk vda rbd/g1" \
    "$(sf_virsh n1 domblklist g1 --details | awk '$3 == "vda" { print $1, $2, $3, $4 }')"
qpid=$(tr -dc '0-9' <"$SF_TMP/n1/run/libvirt/qemu/run/g1.pid")
check_eq "QEMU runs as the unprivileged $LV_USER" "$LV_USER" "$(stat -c %U "/proc/$qpid")"
check "QEMU holds the exclusive lock of rbd/g1" \
    bash -c "timeout -k 5 60 rbd -c '$CEPH_CONF' lock ls --format json rbd/g1 | jq -e 'length == 1'"
s=$(lv_guest_seq "$log")
check "g1 records advance (seq $s -> $((s + 20)))" lv_wait_seq "$log" $((s + 20)) 60

#  -- a snapshot with the guest running (crash-consistent, no pause) ------
a=$(lv_guest_seq "$log")
check "rbd snap create while g1 writes" ceph_snap_create rbd/g1@live
b=$(lv_guest_seq "$log")
ceph_export_raw rbd/g1@live "$SF_TMP/g1-live.raw"
out=$(records "$SF_TMP/g1-live.raw" "$a" $((b + 10)))
sf_note "sf-records g1@live: $out (console seq $a before, $b after)"
check_eq "g1@live is a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${out##*verdict=}"

#  -- a snapshot with the guest paused around it -------------------------
a=$(lv_guest_seq "$log")
t0=$(_sf_now_ms)
sf_virsh n1 suspend g1 >/dev/null
t1=$(_sf_now_ms)
state=$(sf_virsh n1 domstate g1)
b=$(lv_guest_seq "$log")
snap_rc=0
ceph_snap_create rbd/g1@paused || snap_rc=$?
t2=$(_sf_now_ms)
sf_virsh n1 resume g1 >/dev/null
t3=$(_sf_now_ms)
sf_note "paused snapshot: suspend call $((t1 - t0)) ms, rbd snap create $((t2 - t1)) ms, resume call $((t3 - t2)) ms: window $((t3 - t0)) ms"
check_eq "g1 was paused while the snapshot was taken" paused "$state"
check_eq "rbd snap create succeeds under the pause" 0 "$snap_rc"
check_range "the pause window (ms) is bounded" 1 $((t3 - t0)) 30000
check "g1 writes on after resume" lv_wait_seq "$log" $((b + 20)) 60

t=$(_sf_now_ms)
check "qemu-img reads the snapshot back as raw" ceph_export_raw rbd/g1@paused "$SF_TMP/g1-paused.raw"
sf_note "export of a 64 MiB snapshot with qemu-img: $(($(_sf_now_ms) - t)) ms"
out=$(records "$SF_TMP/g1-paused.raw" "$b" $((b + 10)))
sf_note "sf-records g1@paused: $out (console seq $a before, $b while paused)"
check_eq "g1@paused is a clean prefix with $b <= K <= $((b + 10))" CLEAN_PREFIX "${out##*verdict=}"
check "g1@paused holds the imported data before the record area" \
    cmp -n $((FIRST_SLOT * SECTOR)) "$src" "$SF_TMP/g1-paused.raw"
k=$(k_of "$out")
skip_bytes=$(((FIRST_SLOT + ${k:-0} + 1) * SECTOR))
check "g1@paused holds the imported data after the records" \
    cmp -i "$skip_bytes" "$src" "$SF_TMP/g1-paused.raw"
check "qemu-img info reads the snapshot by rbd: URI" \
    timeout -k 5 60 qemu-img info "$(ceph_rbd_uri rbd/g1@paused)"
check "rbd export of the snapshot equals the qemu-img read" \
    bash -c "timeout -k 5 300 rbd -c '$CEPH_CONF' export --no-progress rbd/g1@paused '$SF_TMP/g1-paused.rbd-export' >/dev/null 2>&1 && cmp '$SF_TMP/g1-paused.raw' '$SF_TMP/g1-paused.rbd-export'"

#  -- what the worker's driver will do next: protect + clone -------------
check "rbd snap protect" ceph_rbd snap protect rbd/g1@paused
check "rbd clone of the protected snapshot" ceph_rbd clone rbd/g1@paused rbd/g1-clone
ceph_export_raw rbd/g1-clone "$SF_TMP/g1-clone.raw"
check "the clone reads the same as the snapshot" cmp "$SF_TMP/g1-paused.raw" "$SF_TMP/g1-clone.raw"
if ceph_rbd snap unprotect rbd/g1@paused 2>/dev/null; then
    fail "unprotect is refused while a clone exists"
else
    ok "unprotect is refused while a clone exists"
fi
check "rbd rm of the clone" ceph_rbd rm --no-progress rbd/g1-clone
check "unprotect after the clone is gone" ceph_rbd snap unprotect rbd/g1@paused
check_eq "rbd/g1 has the two snapshots" "live paused" \
    "$(ceph_rbd snap ls --format json rbd/g1 | jq -r '[.[].name] | join(" ")')"

sf_virsh n1 destroy g1 >/dev/null
check "after destroy, QEMU's exclusive lock on rbd/g1 is gone (bounded 40 s)" \
    wait_for 40 bash -c "timeout -k 5 30 rbd -c '$CEPH_CONF' lock ls --format json rbd/g1 | jq -e 'length == 0'"

#  ---------------------------------------------------------------------
#  Mixed guest: vda on RBD (dedicated client, v2 mon port), vdb local qcow2

key=$(ceph_client_create snapfleet-vm rbd) || sf_die "cannot create client.snapfleet-vm"
check "client.snapfleet-vm has rbd profile caps" \
    bash -c "timeout -k 5 60 ceph -c '$CEPH_CONF' auth get client.snapfleet-vm 2>/dev/null | grep -q 'profile rbd pool=rbd'"
[ -n "$key" ] || fail "client.snapfleet-vm has a key"
ceph_lv_secret "$uri" snapfleet-vm >/dev/null || sf_die "cannot define the snapfleet-vm secret"
ceph_import "$src" rbd/g2 || sf_die "rbd import rbd/g2 failed"
t=$(_sf_now_ms)
ceph_lv_guest "$uri" g2 "$vmdir" rbd/g2 --client snapfleet-vm --port v2 --second-disk ||
    sf_die "mixed guest g2 did not boot"
sf_note "g2 (vda on RBD as client.snapfleet-vm, v2 mon port; vdb qcow2) wrote records $(($(_sf_now_ms) - t)) ms after define"
log2=$vmdir/g2/console.log
check_eq "g2 is mixed: vda network rbd/g2, vdb a local file" \
    "network vda rbd/g2|file vdb $vmdir/g2/disk2.qcow2|" \
    "$(sf_virsh n1 domblklist g2 --details | awk '{ printf "%s %s %s|", $1, $3, $4 }')"
check "g2 records advance" lv_wait_seq "$log2" $(($(lv_guest_seq "$log2") + 20)) 60

t0=$(_sf_now_ms)
sf_virsh n1 suspend g2 >/dev/null
t1=$(_sf_now_ms)
b=$(lv_guest_seq "$log2")
snap_rc=0
ceph_snap_create rbd/g2@m1 || snap_rc=$?
t2=$(_sf_now_ms)
conv_rc=0
timeout -k 5 120 qemu-img convert -U -f qcow2 -O qcow2 "$vmdir/g2/disk2.qcow2" \
    "$SF_TMP/g2-vdb.qcow2" || conv_rc=$?
t3=$(_sf_now_ms)
sf_virsh n1 resume g2 >/dev/null
t4=$(_sf_now_ms)
sf_note "mixed pause: suspend $((t1 - t0)) ms, rbd snap create $((t2 - t1)) ms, vdb convert $((t3 - t2)) ms, resume $((t4 - t3)) ms: window $((t4 - t0)) ms"
check_eq "rbd snap create of g2's vda under the pause" 0 "$snap_rc"
check_eq "qemu-img convert -U of g2's vdb under the same pause" 0 "$conv_rc"
check "g2 writes on after resume" lv_wait_seq "$log2" $((b + 20)) 60
ceph_export_raw rbd/g2@m1 "$SF_TMP/g2-vda.raw"
out_a=$(records "$SF_TMP/g2-vda.raw" "$b" $((b + 10)))
out_b=$(records "$SF_TMP/g2-vdb.qcow2" $((b > 0 ? b - 1 : 0)) $((b + 10)))
sf_note "sf-records g2 vda@m1: $out_a; vdb copy: $out_b (console seq $b while paused)"
check_eq "g2's RBD snapshot is a clean prefix" CLEAN_PREFIX "${out_a##*verdict=}"
check_eq "g2's vdb copy is a clean prefix" CLEAN_PREFIX "${out_b##*verdict=}"
ka=$(k_of "$out_a")
kb=$(k_of "$out_b")
check_range "both disks are from one instant: K(vdb) in K(vda)-1..K(vda)" \
    $((${ka:-0} - 1)) "${kb:-x}" "${ka:-0}"
sf_virsh n1 destroy g2 >/dev/null

#  ---------------------------------------------------------------------
#  A wrong mon port fails the start fast (qemu-client.conf's mount timeout)

sed -e "s|<name>g1</name>|<name>g3</name>|" -e '/<uuid>/d' \
    -e "s|<host name='127.0.0.1' port='[0-9]*'/>|<host name='127.0.0.1' port='1'/>|" \
    -e "s|$vmdir/g1/|$vmdir/g3/|g" "$vmdir/g1/domain-rbd.xml" >"$SF_TMP/g3.xml"
mkdir -p "$vmdir/g3"
chown "$LV_USER:" "$vmdir/g3"
sf_virsh n1 define "$SF_TMP/g3.xml" >/dev/null
t=$(_sf_now_ms)
if out=$(sf_virsh n1 start g3 2>&1); then
    fail "a domain with a wrong mon port does not start"
else
    ok "a domain with a wrong mon port does not start"
fi
g3_ms=$(($(_sf_now_ms) - t))
sf_note "wrong mon port: start failed after $g3_ms ms: $(grep -o 'error connecting[^"]*' <<<"$out" | head -n 1)"
check_range "it fails within 45 s, not librados' 300 s" 0 "$g3_ms" 45000

#  ---------------------------------------------------------------------
#  Stop everything, by recorded pid

lv_stop_node "$SF_TMP/n1" || fail "lv_stop_node n1"
check_eq "no libvirtd, virtlogd or QEMU of node n1 survives" "" "$(lv_node_pids "$SF_TMP/n1" | tr '\n' ' ')"
t=$(_sf_now_ms)
if ceph_stop "$cdir"; then
    ok "ceph_stop stops the cluster in $(($(_sf_now_ms) - t)) ms"
else
    fail "ceph_stop stops the cluster"
fi
check_eq "no recorded Ceph pid survives" "" "$(ceph_alive_pids "$cdir" | tr '\n' ' ')"
survivors=""
for f in "$cdir"/pids/*.pid; do
    pid=$(tr -dc '0-9' <"$f")
    if [ -n "$pid" ] && _lv_alive "$pid"; then survivors="$survivors $pid"; fi
done
check_eq "no process with a recorded Ceph pid is alive at all" "" "$survivors"

sf_done
