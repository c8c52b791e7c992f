#!/usr/bin/env bash
#  t0210-snapshot-mixed: the mixed strategy, end to end, with real parts. A
#  TCG guest whose vda is an RBD image and whose vdb is a local qcow2 (the
#  guest writes record n to vda, then to vdb, in lock-step). The inventory
#  says storage class mixed, strategy mixed; one snapshot makes two images
#  (vda: an RBD clone; vdb: a qcow2 in the dir store) under ONE pause that
#  covers the RBD snapshot and the start of vdb's push backup (the copy then
#  runs with the guest up; the CONVERTED event says "backup API"):
#  libvirt's lifecycle events show exactly one SUSPENDED/RESUMED pair, and
#  both images hold clean record prefixes from one instant,
#  K(vdb) <= K(vda) <= K(vdb) + 1, bounded by the console. The guest runs on.
#  Then the same for a mixed guest with the QEMU guest agent: consistency
#  frozen, and still one SUSPENDED/RESUMED pair around the snapshot and the
#  backup's start (a freeze does not stop writers to raw devices, so mixed
#  also suspends).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0210-snapshot-mixed
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

records () { "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true; }
k_of () { sed -n 's/.*K=\([0-9]*\).*/\1/p' <<<"$1"; }

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"

sf_start_scheduler
catalog=$(sf_catalog_id)     #  sf_naming: every RBD object a job makes carries it
sf_start_node n1
uri=$SF_NODE_URI
head -c 64M /dev/urandom >"$SF_TMP/src.raw"
ceph_import "$SF_TMP/src.raw" rbd/g2 || sf_die "rbd import of rbd/g2 failed"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g2 "$SF_TMP/n1/vm" rbd/g2 --second-disk || sf_die "mixed guest g2 did not boot"
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone

#  mixed_snapshot NAME CONSISTENCY PAUSED_TEXT: snapshot the running mixed
#  guest NAME (vda rbd/NAME, vdb local) and check the job and both images
mixed_snapshot ()
{
    local name=$1 want=$2 paused_text=$3 log j a b t rc=0 out job pause_ms vda_id vdb
    local rec_a rec_b ka kb why events ts_s ts_r seen conv
    log=$(sf_guest_dir n1 "$name")/console.log
    inst () { sf_cli instances --format json | jq -e --arg n "$name" '.instances[] | select(.name == $n)'; }
    wait_for 30 inst >/dev/null || sf_die "$name never appeared in 'snapfleet instances'"
    j=$(inst)
    sf_note "inventory: $(jq -c . <<<"$j")"
    check_eq "$name is running" running "$(jq -r .state <<<"$j")"
    check_eq "$name's storage class is mixed" mixed "$(jq -r .storage_class <<<"$j")"
    check_eq "$name will get the mixed strategy" mixed "$(jq -r .strategy <<<"$j")"
    check_eq "$name has two disks: vda and vdb" "vda vdb" "$(jq -r '[.disks[].target] | sort | join(" ")' <<<"$j")"

    sf_lifewatch n1 "$name"
    lv_wait_seq "$log" 20 60
    a=$(lv_guest_seq "$log")
    t=$(_sf_now_ms)
    out=$(sf_cli snapshot --instance "$name" --wait --format json) || rc=$?
    b=$(lv_guest_seq "$log")
    sf_note "snapshot of $name in $(($(_sf_now_ms) - t)) ms: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
    check_eq "snapshot of $name: --wait exits 0" 0 "$rc"
    check_eq "$name's job is done, strategy mixed, consistency $want" "done mixed $want" \
        "$(jq -r '"\(.state) \(.strategy) \(.consistency)"' <<<"$out")"
    job=$(jq -r .job_id <<<"$out")
    pause_ms=$(jq -r .pause_ms <<<"$out")
    sf_note "mixed pause_ms of $name (RBD snapshot + vdb copy in one window, $want): $pause_ms"
    check_range "$name: pause_ms is reported" 1 "$pause_ms" 60000
    if jq -e 'any(.events[]?; has("text"))' <<<"$out" >/dev/null; then
        why=$(jq -r '[.events[] | select(.phase == "paused") | .text // empty] | join(" ")' <<<"$out")
    else
        why=$(grep -a "job=$job .*phase paused" "$SF_TMP/worker-n1.log" || true)
    fi
    sf_note "PAUSED event of $name: $why"
    check "$name: the PAUSED event says '$paused_text'" grep -qF "$paused_text" <<<"$why"
    conv=$(sf_cli job show "$job" --format json | jq -r '[.events[] | select(.phase == "converted") | .text // ""] | join("")')
    sf_note "CONVERTED event of $name: $conv"
    check_eq "$name: vdb was copied live with the backup API" "backup API" "$conv"
    check_eq "$name: two images, vda an RBD clone, vdb a qcow2 in the dir store" "vda rbd raw|vdb dir qcow2|" \
        "$(jq -r '[.images[] | "\(.disk_target) \(.store) \(.format)|"] | sort | join("")' <<<"$out")"

    vda_id=$(jq -r '.images[] | select(.disk_target == "vda") | .id' <<<"$out")
    vdb=$(jq -r '.images[] | select(.disk_target == "vdb") | .path' <<<"$out")
    check_eq "$name: vda's image is the clone rbd/$name-snapfleet-$catalog-$job" "rbd/$name-snapfleet-$catalog-$job" "$vda_id"
    check_eq "rbd/$name has the protected snapshot snapfleet-$catalog-$job" "snapfleet-$catalog-$job true" \
        "$(ceph_rbd_snaps "rbd/$name" | grep "^snapfleet-$catalog-$job " || true)"
    check "$name: the vdb image passes qemu-img check" qemu-img check -q "$vdb"
    check_eq "$name: the vdb image's sha256 is the file's" "$(sha256sum "$vdb" 2>/dev/null | cut -d' ' -f1)" \
        "$(jq -r '.images[] | select(.disk_target == "vdb") | .sha256' <<<"$out")"

    ceph_export_raw "$vda_id" "$SF_TMP/vda.raw" || fail "export of $vda_id"
    rec_a=$(records "$SF_TMP/vda.raw" "$a" $((b + 10)))
    rec_b=$(records "$vdb" $((a > 0 ? a - 1 : 0)) $((b + 10)))
    rm -f "$SF_TMP/vda.raw"
    sf_note "sf-records $name vda (clone): $rec_a; vdb (qcow2): $rec_b; console seq $a before, $b after"
    check_eq "$name: vda's image is a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec_a##*verdict=}"
    check_eq "$name: vdb's image is a clean prefix" CLEAN_PREFIX "${rec_b##*verdict=}"
    ka=$(k_of "$rec_a")
    kb=$(k_of "$rec_b")
    check_range "$name: both disks are from one instant: K(vdb) <= K(vda) <= K(vdb)+1 (K(vda)=${ka:-?})" \
        "${kb:-0}" "${ka:-x}" $((${kb:-0} + 1))

    check_eq "$name is running after the snapshot" running "$(sf_virsh n1 domstate "$name")"
    check "$name keeps writing (seq past $((b + 20)))" lv_wait_seq "$log" $((b + 20)) 60
    sf_stop_pid "$SF_TMP/lifewatch-$name.pid" || true
    events=$SF_TMP/lifewatch-$name.events
    sf_note "lifewatch $name: $(tr '\n' ';' <"$events")"
    check_eq "libvirt saw exactly one SUSPENDED/RESUMED pair for $name" "SUSPENDED RESUMED" \
        "$(awk '{print $2}' "$events" | tr '\n' ' ' | sed 's/ $//')"
    ts_s=$(awk '$2 == "SUSPENDED" {print $1; exit}' "$events")
    ts_r=$(awk '$2 == "RESUMED" {print $1; exit}' "$events")
    seen=$((${ts_r:-0} - ${ts_s:-0}))
    sf_note "pause_ms of $name reported $pause_ms, libvirt saw $seen ms suspended"
    #  pause_ms runs from the freeze/suspend call's start to the
    #  resume/thaw call's return, so it covers what libvirt saw (50 ms for
    #  event delivery); how much more depends on the machine's load
    check_range "$name: pause_ms covers libvirt's suspended interval" $((seen - 50)) "$pause_ms" 60000
    check_eq "no scratch left in the worker's workdir" "" "$(find "$SF_TMP/w-n1/work" -type f | tr '\n' ' ')"
}

#  -- (1) no guest agent: paused -----------------------------------------------
mixed_snapshot g2 paused "freeze unavailable"

#  -- (2) with the QEMU guest agent: frozen, and paused around the copies ------
if ! command -v qemu-ga >/dev/null 2>&1 && [ ! -x /usr/sbin/qemu-ga ]; then
    skip_check "a mixed guest with an agent is frozen and paused once" "needs qemu-ga (qemu-guest-agent)"
    sf_done
fi
sf_virsh n1 destroy g2 >/dev/null || true
ceph_import "$SF_TMP/src.raw" rbd/g4 || sf_die "rbd import of rbd/g4 failed"
ceph_lv_guest "$uri" g4 "$SF_TMP/n1/vm" rbd/g4 --second-disk --agent ||
    sf_die "mixed guest g4 (with agent) did not boot"
agent_up () { sf_virsh n1 qemu-agent-command g4 '{"execute":"guest-ping"}'; }
wait_for 60 agent_up >/dev/null || sf_die "g4's guest agent never answered"
mixed_snapshot g4 frozen frozen
check "g4's agent still answers (thawed)" agent_up
sf_done
