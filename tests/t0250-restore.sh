#!/usr/bin/env bash
#  t0250-restore: `snapfleet restore` of a dir-store image to a file (issue
#  13, first slice), with real parts. A running records guest g1 is
#  snapshotted (file-cold) and its image restored as qcow2 and as raw:
#  both jobs done on g1's node, each file passes `qemu-img check`, equals
#  the stored image (`qemu-img compare`) and holds the same clean prefix of
#  records (sf-records: the same K); nothing else is left beside them or in
#  the worker's workdir, and `images` is unchanged. A restore to a file
#  that exists fails and leaves it byte for byte; bad requests (unknown
#  image or node, a relative or '..' target, a bad format, `snapshot
#  --strategy restore`) are refused with clear errors and make no job. A
#  stored image with one byte flipped fails its restore with the hash
#  error and leaves no file. A restore of a 512 MiB image, converting under
#  [conversion] rate_limit, cancelled mid-conversion ends `cancelled` and
#  leaves nothing. One whose worker is SIGKILLed mid-conversion: its
#  qemu-img dies with the worker, the restarted worker sweeps its temp
#  directory, and the job's second attempt restores the file whole.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0250-restore
sf_need_libvirt
sf_need jq

sf_start_scheduler limits.retry_backoff=5s limits.max_attempts=2
sf_start_node n1
sf_guest n1 g1
sf_guest n1 big --size 512M
g1=$(sf_guest_dir n1 g1)
#  Conversions read at 64 MiB/s: big's restore takes 8 s, long enough to
#  be cancelled while it converts
sf_start_worker n1 "$SF_NODE_URI" conversion.rate_limit=64MiB
work=$SF_TMP/w-n1/work
out=$SF_TMP/restored
mkdir -p "$out"
listed () { sf_cli instances --format json | jq -e '[.instances[].name] | contains(["g1", "big"])'; }
wait_for 30 listed >/dev/null || sf_die "g1 and big never appeared in 'snapfleet instances'"

job_field () { sf_cli job show "$1" --format json | jq -r "$2"; }
job_is () { [ "$(job_field "$1" "$2")" = "$3" ]; }
jobs_count () { sf_cli jobs --format json | jq -r '.jobs | length'; }
images_ids () { sf_cli images --format json | jq -r '[.images[].id] | sort | join(" ")'; }
k_of () { sed -n 's/^K=\([0-9]*\) .*/\1/p' <<<"$1"; }
#  Files beside the restored ones, and the worker's restore records
leftovers () {
    find "$out" -name '.sf-restore-*' | tr '\n' ' '
    find "$work" -path '*restores/*' | tr '\n' ' '
}

#  -- the image to restore ------------------------------------------------
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
snap=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || true
b=$(lv_guest_seq "$g1/console.log")
check_eq "snapshot of g1 is done" "done" "$(jq -r .state <<<"$snap")"
img=$(jq -r .image.id <<<"$snap")
img_path=$(jq -r .image.path <<<"$snap")
stored=$(sf_records --min "$a" --max $((b + 10)) "$img_path" 2>&1) || true
sf_note "stored image $img: $stored"
check_eq "the stored image holds a clean prefix" CLEAN_PREFIX "${stored##*verdict=}"
images_before=$(images_ids)

#  -- restore to qcow2 ------------------------------------------------------
rc=0
r1=$(sf_cli restore "$img" --to "$out/g1.qcow2" --wait --format json) || rc=$?
sf_note "restore (qcow2): $(jq -c '{job_id, state, node, strategy, restore, error}' <<<"$r1" 2>/dev/null || printf '%s' "$r1")"
check_eq "restore --wait exits 0" 0 "$rc"
check_eq "the restore job is done on g1's node" "done n1 restore" \
    "$(jq -r '"\(.state) \(.node) \(.strategy)"' <<<"$r1")"
check_eq "it says what it restored where" "$img dir $out/g1.qcow2 qcow2" \
    "$(jq -r '.restore | "\(.image_id) \(.image_store) \(.target) \(.format)"' <<<"$r1")"
check_eq "its phases: queued, upload_wait, converted, uploaded" \
    "queued upload_wait converted uploaded" \
    "$(jq -r '[.events[].phase | select(. != "done")] | join(" ")' <<<"$r1")"
check_eq "it made no image" 0 "$(jq -r '.images | length' <<<"$r1")"
check "the file exists" test -f "$out/g1.qcow2"
check_eq "it is qcow2" qcow2 "$(qemu-img info --output=json "$out/g1.qcow2" | jq -r .format)"
check "qemu-img check passes" qemu-img check -q "$out/g1.qcow2"
check "it equals the stored image (qemu-img compare)" \
    qemu-img compare -q -f qcow2 -F qcow2 "$img_path" "$out/g1.qcow2"
rec=$(sf_records --min "$a" --max $((b + 10)) "$out/g1.qcow2" 2>&1) || true
sf_note "restored qcow2: $rec"
check_eq "it holds a clean prefix" CLEAN_PREFIX "${rec##*verdict=}"
check_eq "the same one as the stored image" "$(k_of "$stored")" "$(k_of "$rec")"
check_eq "reported bytes are the file's size" "$(stat -c %s "$out/g1.qcow2")" \
    "$(jq -r .bytes <<<"$r1")"
check_eq "it has the mode of the store's images, 0640" 640 \
    "$(stat -c %a "$out/g1.qcow2")"

#  -- restore to raw ----------------------------------------------------------
rc=0
r2=$(sf_cli restore "$img" --to "$out/g1.raw" --format raw --wait --format json) || rc=$?
check_eq "restore --format raw exits 0, done" "0 done" "$rc $(jq -r .state <<<"$r2")"
check_eq "it is raw" raw "$(qemu-img info --output=json "$out/g1.raw" | jq -r .format)"
#  (qemu-img check has nothing to check in a raw file: its size is the disk's)
check_eq "its size is the disk's virtual size" \
    "$(qemu-img info --output=json "$img_path" | jq -r '."virtual-size"')" "$(stat -c %s "$out/g1.raw")"
check "it equals the stored image" qemu-img compare -q -f qcow2 -F raw "$img_path" "$out/g1.raw"
rec=$(sf_records --min "$a" --max $((b + 10)) --format raw "$out/g1.raw" 2>&1) || true
sf_note "restored raw: $rec"
check_eq "it holds the same clean prefix" "CLEAN_PREFIX $(k_of "$stored")" \
    "${rec##*verdict=} $(k_of "$rec")"
check_eq "nothing else beside them, no restore record left" "" "$(leftovers)"
check_eq "restored files only: g1.qcow2 g1.raw" "g1.qcow2 g1.raw" \
    "$(find "$out" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "images is unchanged" "$images_before" "$(images_ids)"
human=$(sf_cli job show "$(jq -r .job_id <<<"$r2")")
check "'job show' says what it restored" grep -q "^restore .*$img (dir) to $out/g1.raw as raw" <<<"$human"

#  -- never overwrites ---------------------------------------------------------
printf 'precious\n' >"$out/exists"
sum_qcow2=$(sha256sum "$out/g1.qcow2")
for target in "$out/exists" "$out/g1.qcow2"; do
    rc=0
    r=$(sf_cli restore "$img" --to "$target" --wait --format json 2>/dev/null) || rc=$?
    sf_note "restore to $target: $(jq -c '{state, error}' <<<"$r")"
    check_eq "restore to existing $(basename "$target") exits 1, job failed" "1 failed" \
        "$rc $(jq -r .state <<<"$r")"
    check_eq "with EEXIST and a clear text" "3 target '$target' exists; not overwritten" \
        "$(jq -r '"\(.error.code) \(.error.text)"' <<<"$r")"
done
check_eq "exists is unchanged" precious "$(cat "$out/exists")"
check_eq "g1.qcow2 is unchanged" "$sum_qcow2" "$(sha256sum "$out/g1.qcow2")"
rm -f "$out/exists"

#  -- refused, no job made ------------------------------------------------------
n=$(jobs_count)
refused () {
    local what=$1 want=$2 rc=0 err
    shift 2
    err=$(sf_cli "$@" 2>&1 >/dev/null) || rc=$?
    sf_note "$what: rc $rc: $err"
    check_eq "$what is refused (exit 1)" 1 "$rc"
    check "$what: the error says '$want'" grep -qF -- "$want" <<<"$err"
}
refused "an unknown image" "no image 'nope'" restore nope --to "$out/x"
refused "a relative target" "target 'restored/x' is not an absolute path" \
    restore "$img" --to restored/x
refused "a '..' target" "'..' component" restore "$img" --to "$out/../x"
refused "an unknown node" "unknown node 'n9'" restore "$img" --to "$out/x" --node n9
refused "snapshot --strategy restore" "unknown strategy 'restore'" \
    snapshot --instance g1 --strategy restore
rc=0
sf_cli restore "$img" --to "$out/x" --format vmdk >/dev/null 2>&1 || rc=$?
check_eq "a bad --format is a usage error" 2 "$rc"
rc=0
sf_cli restore "$img" >/dev/null 2>&1 || rc=$?
check_eq "no --to is a usage error" 2 "$rc"
check_eq "no job was made" "$n" "$(jobs_count)"
check_eq "no file was made" "g1.qcow2 g1.raw" \
    "$(find "$out" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"

#  -- a corrupted stored image ------------------------------------------------
#  One byte flipped in the middle of the stored file
size=$(stat -c %s "$img_path")
offset=$((size / 2))
byte=$(od -An -tu1 -j "$offset" -N1 "$img_path" | tr -d ' ')
printf '%b' "\\0$(printf '%03o' $(((byte + 1) % 256)))" |
    dd of="$img_path" bs=1 seek="$offset" count=1 conv=notrunc status=none
rc=0
r=$(sf_cli restore "$img" --to "$out/bad.qcow2" --wait --format json 2>/dev/null) || rc=$?
sf_note "restore of the corrupted image: $(jq -c '{state, error}' <<<"$r")"
check_eq "it fails (exit 1)" "1 failed" "$rc $(jq -r .state <<<"$r")"
check_eq "with the hash error" "image $img does not match its recorded SHA-256; not restored" \
    "$(jq -r .error.text <<<"$r")"
check "no target was made" test ! -e "$out/bad.qcow2"
check_eq "nothing left beside it" "" "$(leftovers)"

#  -- cancel mid-conversion ---------------------------------------------------
snap=$(sf_cli snapshot --instance big --strategy file-cold --wait --format json) || true
check_eq "snapshot of big is done" "done" "$(jq -r .state <<<"$snap")"
big=$(jq -r .image.id <<<"$snap")
j=$(sf_cli restore "$big" --to "$out/big.raw" --format raw --format json | jq -r .job_id)
converting () { [ -n "$(find "$out" -path '*/.sf-restore-*/image' -size +1M)" ]; }
wait_for 60 converting || sf_die "restore $j never started converting"
check_eq "$j converts (its temp file grows), nothing published yet" "running absent" \
    "$(job_field "$j" .state) $([ -e "$out/big.raw" ] && echo present || echo absent)"
rc=0
c=$(sf_cli cancel "$j") || rc=$?
sf_note "cancel $j: $c"
check_eq "cancel exits 0" 0 "$rc"
wait_for 60 job_is "$j" .state cancelled || true
r=$(sf_cli job show "$j" --format json)
sf_note "job $j: $(jq -c '{state, phase, error}' <<<"$r")"
check_eq "$j is cancelled with ECANCELED" "cancelled 14" "$(jq -r '"\(.state) \(.error.code)"' <<<"$r")"
check "no target was made" test ! -e "$out/big.raw"
check_eq "nothing left beside it, no restore record" "" "$(leftovers)"
check_eq "restored files only: g1.qcow2 g1.raw" "g1.qcow2 g1.raw" \
    "$(find "$out" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"

#  -- the worker killed mid-conversion ------------------------------------------
j=$(sf_cli restore "$big" --to "$out/big2.raw" --format raw --format json | jq -r .job_id)
wait_for 60 converting || sf_die "restore $j never started converting"
check "$j's qemu-img runs" test -n "$(grep -las -- "sf-restore-[0-9a-f]*-$j\.d" /proc/[0-9]*/cmdline || true)"
sf_kill_pid "$SF_TMP/worker-n1.pid" KILL
#  Processes whose command line names the job's temp directory (the pattern
#  does not match its own text, so grep does not find itself)
converters () { grep -las -- "sf-restore-[0-9a-f]*-$j\.d" /proc/[0-9]*/cmdline || true; }
no_converters () { [ -z "$(converters)" ]; }
check "its qemu-img died with it" wait_for 10 no_converters
sf_note "left by the killed worker: $(leftovers)"
check "it left its temp directory and record" test -n "$(leftovers)"
sf_start_worker n1 "$SF_NODE_URI" conversion.rate_limit=64MiB
no_leftovers () { [ -z "$(leftovers)" ]; }
check "the restarted worker swept them" wait_for 30 no_leftovers
#  Attempt 1 failed with the worker (retryable: nothing paused); attempt 2
#  runs after the backoff and restores the file whole
wait_for 120 job_is "$j" .state "done" || true
r=$(sf_cli job show "$j" --format json)
sf_note "job $j: $(jq -c '{state, attempt, attempts}' <<<"$r")"
check_eq "$j is done by attempt 2" "done 2" "$(jq -r '"\(.state) \(.attempt)"' <<<"$r")"
check_eq "attempt 1 failed as its worker was restarted (ENODE)" "1:ENODE 2:none" \
    "$(jq -r '[.attempts[] | "\(.attempt):\(.error.name // "none")"] | join(" ")' <<<"$r")"
check "big2.raw equals big's stored image" \
    qemu-img compare -q -f qcow2 -F raw "$(jq -r .image.path <<<"$snap")" "$out/big2.raw"
check_eq "restored files only: big2.raw g1.qcow2 g1.raw" "big2.raw g1.qcow2 g1.raw" \
    "$(find "$out" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "no restore record left" "" "$(leftovers)"
check_eq "no qemu-img of a restore runs" "" "$(converters)"
check_eq "g1 is running" running "$(sf_virsh n1 domstate g1)"
sf_done
