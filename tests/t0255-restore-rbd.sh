#!/usr/bin/env bash
#  t0255-restore-rbd: `snapfleet restore` from and to RBD (issue 13, item
#  1), with real parts: a single-node Ceph, an RBD guest g1 (records on
#  rbd/g1) and a file guest f1, the scheduler, a worker in clone mode and
#  the CLI.
#  (1) g1 is snapshotted in clone mode; its clone is restored to a raw file:
#  the job is done, method "restore", its note says an RBD clone has no
#  stored hash; the file equals the clone (qemu-img compare) and holds the
#  clean prefix the clone holds (sf-records: the same K).
#  (2) The clone restored to RBD as a new clone (the default) and as a
#  flattened copy (--flatten): `rbd ls` shows exactly the new image added
#  each time; the first's parent is the clone's parent snapshot, the second
#  has none; both equal the clone.
#  (3) A restore onto an existing name (the first restored image, and g1's
#  own running disk) fails with EEXIST and a clear text, changes nothing
#  (the image's bytes, `rbd ls`); g1 keeps running and writing.
#  (4) f1's dir image (file-cold) restored to RBD: a new raw image equal to
#  the stored qcow2, with the same clean prefix.
#  (5) A flattened copy (reading at [conversion] rate_limit = 8 MiB/s)
#  cancelled while it copies ends cancelled and leaves the pool as it was;
#  one whose worker is SIGKILLed while it copies leaves its temp image,
#  which the job's second attempt removes (once Ceph lets go of the dead
#  qemu-img's watch) before it copies the image whole: only the target is
#  added.
#  (6) Bad requests are refused with clear errors and make no job; nothing
#  of the restores' temp names (.sf-restore-*) is left in the pool, no
#  restore record in the worker's workdir.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"

sf_init t0255-restore-rbd
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

SIZE=$((64 << 20))
records () { "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true; }
k_of () { sed -n 's/^K=\([0-9]*\) .*/\1/p' <<<"$1"; }
#  qemu-img on RBD, with a deadline (a client can block when Ceph is gone)
qimg () { timeout -k 5 300 qemu-img "$@"; }
images_sorted () { ceph_rbd_images rbd | sort | tr '\n' ' ' | sed 's/ $//'; }
job_field () { sf_cli job show "$1" --format json | jq -r "$2"; }
#  What rbd ls added and removed since BEFORE: "ADDED|REMOVED"
changed () {
    local after added removed
    after=$(images_sorted)
    added=$(comm -13 <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$after") | tr '\n' ' ' | sed 's/ $//')
    removed=$(comm -23 <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$after") | tr '\n' ' ' | sed 's/ $//')
    printf '%s|%s\n' "$added" "$removed"
}
jobs_count () { sf_cli jobs --format json | jq -r '.jobs | length'; }

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"

sf_start_scheduler limits.retry_backoff=5s limits.max_attempts=2
catalog=$(sf_catalog_id)
sf_start_node n1
uri=$SF_NODE_URI
head -c "$SIZE" /dev/urandom >"$SF_TMP/src.raw"
ceph_import "$SF_TMP/src.raw" rbd/g1 || sf_die "rbd import of rbd/g1 failed"
rm -f "$SF_TMP/src.raw"
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_lv_guest "$uri" g1 "$SF_TMP/n1/vm" rbd/g1 || sf_die "RBD guest g1 did not boot"
log=$(sf_guest_dir n1 g1)/console.log
sf_guest n1 f1
flog=$(sf_guest_dir n1 f1)/console.log
#  Conversions read at 8 MiB/s: a 64 MiB copy takes 8 s, long enough to be
#  cancelled or killed while it runs
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone conversion.rate_limit=8MiB
work=$SF_TMP/w-n1/work
out=$SF_TMP/restored
mkdir -p "$out"
listed () { sf_cli instances --format json | jq -e '[.instances[].name] | contains(["g1", "f1"])'; }
wait_for 30 listed >/dev/null || sf_die "g1 and f1 never appeared in 'snapfleet instances'"

#  -- (1) the clone to a file -------------------------------------------------
lv_wait_seq "$log" 20 60
a=$(lv_guest_seq "$log")
snap=$(sf_cli snapshot --instance g1 --wait --format json) || true
b=$(lv_guest_seq "$log")
check_eq "snapshot of g1 is done, strategy rbd, method rbd-snapshot" "done rbd rbd-snapshot" \
    "$(jq -r '"\(.state) \(.strategy) \(.method)"' <<<"$snap")"
job=$(jq -r .job_id <<<"$snap")
clone=g1-snapfleet-$catalog-$job
check_eq "its image is the clone rbd/$clone" "rbd rbd/$clone" \
    "$(jq -r '.image | "\(.store) \(.id)"' <<<"$snap")"
ceph_export_raw "rbd/$clone" "$SF_TMP/clone.raw" || sf_die "cannot export the clone"
in_clone=$(records "$SF_TMP/clone.raw" "$a" $((b + 10)))
sf_note "clone: $in_clone"
check_eq "the clone holds a clean prefix" CLEAN_PREFIX "${in_clone##*verdict=}"
rm -f "$SF_TMP/clone.raw"

rc=0
r=$(sf_cli restore "rbd/$clone" --to "$out/g1.raw" --format raw --wait --format json) || rc=$?
sf_note "restore to a file: $(jq -c '{job_id, state, node, method, note, restore, error}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
check_eq "restore --wait exits 0, done on n1, method restore" "0 done n1 restore" \
    "$rc $(jq -r '"\(.state) \(.node) \(.method)"' <<<"$r")"
check_eq "it says what it restored where" "rbd/$clone rbd $out/g1.raw raw" \
    "$(jq -r '.restore | "\(.image_id) \(.image_store) \(.target) \(.format)"' <<<"$r")"
check "its note says an RBD clone has no stored hash" \
    grep -qF "an RBD clone has no stored hash" <<<"$(jq -r .note <<<"$r")"
check_eq "the file is raw, the disk's size" "raw $SIZE" \
    "$(qemu-img info --output=json "$out/g1.raw" | jq -r '"\(.format) \(."virtual-size")"')"
check "it equals the clone (qemu-img compare)" \
    qimg compare -q -f raw -F raw "$(ceph_rbd_uri "rbd/$clone")" "$out/g1.raw"
rec=$(records "$out/g1.raw" "$a" $((b + 10)))
sf_note "restored file: $rec"
check_eq "it holds the clone's clean prefix" "CLEAN_PREFIX $(k_of "$in_clone")" \
    "${rec##*verdict=} $(k_of "$rec")"
human=$(sf_cli job show "$(jq -r .job_id <<<"$r")")
check "'job show' names the method" grep -qE '^method +restore$' <<<"$human"
human=$(sf_cli job show "$job")
check "'job show' of the snapshot names its method" grep -qE '^method +rbd-snapshot$' <<<"$human"

#  -- (2) the clone to RBD: a new clone, a flattened copy ----------------------
for kind in clone flat; do
    before=$(images_sorted)
    args=(restore "rbd/$clone" --rbd "rbd/g1-$kind" --wait --format json)
    [ "$kind" = flat ] && args+=(--flatten)
    rc=0
    r=$(sf_cli "${args[@]}") || rc=$?
    sf_note "restore to rbd/g1-$kind: $(jq -c '{job_id, state, node, bytes, note, restore, error}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
    check_eq "restore --rbd rbd/g1-$kind exits 0, done" "0 done" "$rc $(jq -r .state <<<"$r")"
    check_eq "it says the target rbd:rbd/g1-$kind" "rbd:rbd/g1-$kind" "$(jq -r .restore.target <<<"$r")"
    check_eq "rbd ls: g1-$kind added, nothing else added or removed" "g1-$kind|" \
        "$(changed "$before")"
    parent=$(ceph_rbd info --format json "rbd/g1-$kind" | jq -r 'if .parent then "\(.parent.pool)/\(.parent.image)@\(.parent.snapshot)" else "none" end') || true
    if [ "$kind" = clone ]; then
        check_eq "g1-clone's parent is the clone's, rbd/g1@snapfleet-$catalog-$job" \
            "rbd/g1@snapfleet-$catalog-$job" "$parent"
        check_eq "no bytes were copied" 0 "$(jq -r .bytes <<<"$r")"
    else
        check_eq "g1-flat has no parent" none "$parent"
        check_eq "its bytes are the disk's" "$SIZE" "$(jq -r .bytes <<<"$r")"
    fi
    check "rbd/g1-$kind equals the clone" \
        qimg compare -q -f raw -F raw "$(ceph_rbd_uri "rbd/$clone")" "$(ceph_rbd_uri "rbd/g1-$kind")"
done

#  -- (3) never overwrites ---------------------------------------------------------
ceph_export_raw rbd/g1-clone "$SF_TMP/x.raw" || sf_die "cannot export rbd/g1-clone"
sum_before=$(sha256sum <"$SF_TMP/x.raw")
before=$(images_sorted)
for target in g1-clone g1; do
    rc=0
    r=$(sf_cli restore "rbd/$clone" --rbd "rbd/$target" --wait --format json 2>/dev/null) || rc=$?
    sf_note "restore onto rbd/$target: $(jq -c '{state, error}' <<<"$r")"
    check_eq "restore onto existing rbd/$target exits 1, job failed" "1 failed" \
        "$rc $(jq -r .state <<<"$r")"
    check_eq "with EEXIST and a clear text" "3 RBD image 'rbd/$target' exists; not overwritten" \
        "$(jq -r '"\(.error.code) \(.error.text)"' <<<"$r")"
done
ceph_export_raw rbd/g1-clone "$SF_TMP/x.raw" || sf_die "cannot export rbd/g1-clone"
check_eq "rbd/g1-clone is unchanged" "$sum_before" "$(sha256sum <"$SF_TMP/x.raw")"
rm -f "$SF_TMP/x.raw"
check_eq "rbd ls is unchanged" "$before" "$(images_sorted)"
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"
c=$(lv_guest_seq "$log")
check "g1 keeps writing (seq past $((c + 10)))" lv_wait_seq "$log" $((c + 10)) 60

#  -- (4) a dir image to RBD ------------------------------------------------------
lv_wait_seq "$flog" 20 60
a=$(lv_guest_seq "$flog")
snap=$(sf_cli snapshot --instance f1 --strategy file-cold --wait --format json) || true
b=$(lv_guest_seq "$flog")
check_eq "snapshot of f1 is done, method convert" "done convert" \
    "$(jq -r '"\(.state) \(.method)"' <<<"$snap")"
img=$(jq -r .image.id <<<"$snap")
img_path=$(jq -r .image.path <<<"$snap")
before=$(images_sorted)
rc=0
r=$(sf_cli restore "$img" --rbd rbd/f1-back --wait --format json) || rc=$?
sf_note "restore of $img to rbd/f1-back: $(jq -c '{state, node, bytes, note, restore, error}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
check_eq "it exits 0, done on n1" "0 done n1" "$rc $(jq -r '"\(.state) \(.node)"' <<<"$r")"
check_eq "rbd ls: f1-back added, nothing else added or removed" "f1-back|" \
    "$(changed "$before")"
check "rbd/f1-back equals the stored image" \
    qimg compare -q -f qcow2 -F raw "$img_path" "$(ceph_rbd_uri rbd/f1-back)"
ceph_export_raw rbd/f1-back "$SF_TMP/f1.raw" || sf_die "cannot export rbd/f1-back"
stored=$(records "$img_path" "$a" $((b + 10)))
rec=$(records "$SF_TMP/f1.raw" "$a" $((b + 10)))
sf_note "stored: $stored; on RBD: $rec"
check_eq "it holds the stored image's clean prefix" "CLEAN_PREFIX $(k_of "$stored")" \
    "${rec##*verdict=} $(k_of "$rec")"
rm -f "$SF_TMP/f1.raw"

#  -- (5) cancelled, and killed, while it copies ------------------------------------
# shellcheck disable=SC2317  # called through wait_for
copying () { ceph_rbd_images rbd | grep -qxF ".sf-restore-$catalog-$1"; }
# shellcheck disable=SC2317  # called through wait_for
job_is () { [ "$(job_field "$1" .state)" = "$2" ]; }
before=$(images_sorted)
j=$(sf_cli restore "rbd/$clone" --rbd rbd/g1-cancel --flatten --format json | jq -r .job_id)
wait_for 60 copying "$j" || sf_die "restore $j never made its temp image"
check_eq "$j copies (its temp image exists), nothing published yet" "running |" \
    "$(job_field "$j" .state) $(ceph_rbd_images rbd | grep -x g1-cancel || true)|"
rc=0
sf_cli cancel "$j" >/dev/null || rc=$?
check_eq "cancel exits 0" 0 "$rc"
wait_for 90 job_is "$j" cancelled || true
check_eq "$j is cancelled with ECANCELED" "cancelled 14" \
    "$(sf_cli job show "$j" --format json | jq -r '"\(.state) \(.error.code)"')"
check_eq "rbd ls: nothing added or removed" "|" "$(changed "$before")"

j=$(sf_cli restore "rbd/$clone" --rbd rbd/g1-killed --flatten --format json | jq -r .job_id)
wait_for 60 copying "$j" || sf_die "restore $j never made its temp image"
sf_kill_pid "$SF_TMP/worker-n1.pid" KILL
check "the killed worker left its temp image" copying "$j"
ceph_sf_worker n1 "$uri" storage.rbd.mode=clone conversion.rate_limit=8MiB
wait_for 180 job_is "$j" "done" || true
r=$(sf_cli job show "$j" --format json)
sf_note "job $j: $(jq -c '{state, attempt, attempts}' <<<"$r")"
sf_note "the worker on the temp image: $(grep -a "sf-restore-$catalog-$j" "$SF_TMP/worker-n1.log" | tr '\n' ';' | cut -c1-600)"
check_eq "$j is done by attempt 2" "done 2" "$(jq -r '"\(.state) \(.attempt)"' <<<"$r")"
check_eq "rbd ls: g1-killed added, nothing else" "g1-killed|" "$(changed "$before")"
check "rbd/g1-killed equals the clone" \
    qimg compare -q -f raw -F raw "$(ceph_rbd_uri "rbd/$clone")" "$(ceph_rbd_uri rbd/g1-killed)"

#  -- (6) refused, and nothing left -----------------------------------------------
n=$(jobs_count)
refused () {
    local what=$1 want=$2 code=$3 rc=0 err
    shift 3
    err=$(sf_cli "$@" 2>&1 >/dev/null) || rc=$?
    sf_note "$what: rc $rc: $err"
    check_eq "$what is refused (exit $code)" "$code" "$rc"
    check "$what: the error says '$want'" grep -qF -- "$want" <<<"$err"
}
refused "--flatten of a dir image" "--flatten applies to an RBD clone" 1 \
    restore "$img" --rbd rbd/x --flatten
refused "--flatten to a file" "--flatten applies to --rbd" 2 \
    restore "rbd/$clone" --to "$out/x" --flatten
refused "an RBD target that is not POOL/NAME" "is not POOL/NAME" 1 \
    restore "rbd/$clone" --rbd x
refused "an RBD target with '@'" "'@'" 1 restore "rbd/$clone" --rbd rbd/x@s
refused "--format qcow2 to RBD" "an RBD image is raw" 1 \
    restore "rbd/$clone" --rbd rbd/x --format qcow2
refused "both --to and --rbd" "takes one of --to FILE" 2 \
    restore "rbd/$clone" --rbd rbd/x --to "$out/x"
check_eq "no job was made" "$n" "$(jobs_count)"
check_eq "no temp image left in the pool" "" "$(ceph_rbd_images rbd | grep -F .sf-restore- || true)"
check_eq "no restore record left" "" "$(find "$work" -path '*restores/*' | tr '\n' ' ')"
check_eq "restored files only: g1.raw" "g1.raw" \
    "$(find "$out" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"
sf_done
