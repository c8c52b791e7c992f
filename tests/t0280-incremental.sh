#!/usr/bin/env bash
#  t0280-incremental: incremental file-live backups and their chains (issue
#  13, item 3), with real parts. A running 256 MiB records guest g1:
#  (1) a file-live run is a full copy and makes checkpoint
#      snapfleet-<catalogue>-<job>
#      (virsh checkpoint-list); the guest writes records on; with g1
#      suspended (virsh), the next file-live run is an increment: its image
#      has the first as parent, stores far fewer bytes than the full one
#      (own bytes < 10%), its qcow2 backing file is the parent's store name,
#      and a file-cold copy of the same paused instant is identical to the
#      restore of the increment (`qemu-img compare`), which holds a clean
#      prefix of records; only the newest snapfleet checkpoints stay;
#  (2) `snapshot --full` after a file-live point is a full copy; that
#      base's file deleted from the store: the next run is full and job
#      show says why;
#  (3) g1 destroyed and started again: whatever the next run is (measured:
#      incremental if the bitmaps survived, else full with the reason), its
#      restore equals a file-cold copy of the same (suspended) instant;
#  (4) a schedule every 15 s with --keep-last 2 over five runs (scheduler
#      [retention] max_chain = 2: a full copy after two increments): the
#      two newest points restore, equal to their stored chains; every
#      point left is one of them or the base of one left (the scheduler
#      logs "kept: base of"); every image left has its parent and its
#      parent's file; at most keep-last + max_chain points stay, and the
#      others' files are gone from the store.
set -euo pipefail
# shellcheck disable=SC2317  # functions called through wait_for / check
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0280-incremental
sf_need_libvirt
sf_need jq

sf_start_scheduler retention.max_chain=2
sf_start_node n1
sf_guest n1 g1 --size 256M
g1=$(sf_guest_dir n1 g1)
sf_start_worker n1 "$SF_NODE_URI"
out=$SF_TMP/restored
mkdir -p "$out"
listed () { sf_cli instances --format json | jq -e '[.instances[].name] | index("g1")'; }
wait_for 30 listed >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"

checkpoints () { sf_virsh n1 checkpoint-list g1 --name | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'; }
#  snap STRATEGY: a snapshot of g1 (--wait), its job as JSON
snap () { sf_cli snapshot --instance g1 --strategy "$1" --wait --format json || true; }
#  restore_check WHAT IMAGE MIN MAX: restore IMAGE to a file ($RESTORED),
#  check it and its records (a clean prefix with MIN <= K <= MAX; MIN "-":
#  not the records, the guest has booted twice)
restore_check ()
{
    local what=$1 img=$2 min=$3 max=$4 r rec rc=0
    local to="$out/$img.qcow2"
    r=$(sf_cli restore "$img" --to "$to" --wait --format json) || rc=$?
    check_eq "$what: restore of $img exits 0, done" "0 done" "$rc $(jq -r .state <<<"$r")"
    check "$what: qemu-img check passes" qemu-img check -q "$to"
    check_eq "$what: the restored file has no backing file" null \
        "$(qemu-img info --output=json "$to" | jq -r '."backing-filename" // null')"
    RESTORED=$to
    [ "$min" = - ] && return 0
    rec=$(sf_records --min "$min" --max "$max" "$to" 2>&1) || true
    sf_note "$what: restored $img: $rec"
    check_eq "$what: it holds a clean prefix of the records" CLEAN_PREFIX "${rec##*verdict=}"
}

#  -- (1) full, then an increment --------------------------------------------
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
j1=$(snap file-live)
b=$(lv_guest_seq "$g1/console.log")
sf_note "run 1: $(jq -c '{job_id, state, bytes, full_reason, note, images: [.images[] | {id, size, own_bytes, parent, checkpoint}]}' <<<"$j1")"
id1=$(jq -r .job_id <<<"$j1")
img1=$(jq -r '.images[0].id' <<<"$j1")
full1=$(jq -r '.images[0].own_bytes' <<<"$j1")
check_eq "run 1 is done, a full copy (no parent)" "done null" \
    "$(jq -r '"\(.state) \(.images[0].parent)"' <<<"$j1")"
cp1=$(jq -r '.images[0].checkpoint' <<<"$j1")
check "its checkpoint is named for the catalogue and the job: $cp1" \
    grep -Eq "^snapfleet-[0-9a-f]{16}-$id1\$" <<<"$cp1"
check_eq "the domain has the checkpoint" "$cp1" "$(checkpoints)"
check_range "run 1 stored most of the 256 MiB disk (own bytes)" $((200 << 20)) "$full1" $((300 << 20))
restore_check "run 1" "$img1" "$a" $((b + 10))

lv_wait_seq "$g1/console.log" $(( $(lv_guest_seq "$g1/console.log") + 300 )) 60
sf_virsh n1 suspend g1 >/dev/null
c=$(lv_guest_seq "$g1/console.log")
t0=$(date +%s%N)
j2=$(snap file-live)
t_incr=$(( ($(date +%s%N) - t0) / 1000000 ))
j3=$(snap file-cold)
sf_virsh n1 resume g1 >/dev/null
sf_note "run 2 (${t_incr} ms): $(jq -c '{job_id, state, bytes, full_reason, note, images: [.images[] | {id, size, own_bytes, parent, checkpoint}]}' <<<"$j2")"
id2=$(jq -r .job_id <<<"$j2")
img2=$(jq -r '.images[0].id' <<<"$j2")
own2=$(jq -r '.images[0].own_bytes' <<<"$j2")
path2=$(jq -r '.images[0].path' <<<"$j2")
cp2=${cp1%-"$id1"}-$id2
check_eq "run 2 is done, an increment on run 1's image, checkpoint $cp2" \
    "done $img1 $cp2 null" \
    "$(jq -r '"\(.state) \(.images[0].parent) \(.images[0].checkpoint) \(.full_reason)"' <<<"$j2")"
check "run 2 stores less than 10% of run 1 ($own2 of $full1 bytes)" test $((own2 * 10)) -lt "$full1"
check_eq "its qcow2 backing file is run 1's image, by its name in the store" \
    "$img1.qcow2 qcow2" \
    "$(qemu-img info --output=json "$path2" | jq -r '"\(."backing-filename") \(."backing-filename-format")"')"
check_eq "the checkpoints left: runs 1 and 2" "$cp1 $cp2" "$(checkpoints)"
check_eq "images shows run 2's parent and own bytes" "$img1 $own2" \
    "$(sf_cli images --format json | jq -r --arg i "$img2" '.images[] | select(.id == $i) | "\(.parent) \(.own_bytes)"')"
check_eq "the file-cold copy of the same paused instant is done" "done" "$(jq -r .state <<<"$j3")"
restore_check "run 2" "$img2" "$c" $((c + 10))
check "the restored increment equals the file-cold copy of that instant (qemu-img compare)" \
    qemu-img compare -q -f qcow2 -F qcow2 "$RESTORED" "$(jq -r '.images[0].path' <<<"$j3")"
sf_note "run 1 (full): $full1 bytes; run 2 (incremental, $((c - b)) records later): $own2 bytes in ${t_incr} ms"

#  -- (2) a deleted base --------------------------------------------------------
#  Run 3's newest point is run 3's file-cold copy (no checkpoint): a full
#  copy without being offered a base; run 4 is offered run 4's point
j4=$(snap file-live)
check_eq "after a file-cold point, file-live is full (nothing offered, no reason)" \
    "done null null" "$(jq -r '"\(.state) \(.images[0].parent) \(.full_reason)"' <<<"$j4")"
#  --full: a full copy although run 4's point could be built on
jf=$(sf_cli snapshot --instance g1 --strategy file-live --full --wait --format json || true)
check_eq "snapshot --full after a file-live point is a full copy (no parent, no reason)" \
    "done null null" "$(jq -r '"\(.state) \(.images[0].parent) \(.full_reason)"' <<<"$jf")"
img4=$(jq -r '.images[0].id' <<<"$jf")
rm -f "$(jq -r '.images[0].path' <<<"$jf")"
j5=$(snap file-live)
sf_note "run 5 (base deleted): $(jq -c '{job_id, state, full_reason, note, images: [.images[] | {id, own_bytes, parent}]}' <<<"$j5")"
check_eq "with its base's file deleted, the next run is full" "done null" \
    "$(jq -r '"\(.state) \(.images[0].parent)"' <<<"$j5")"
check "and says why: the previous point is gone from the store" \
    grep -q "previous point of disk 'vda' (image $img4) is gone from the store" <<<"$(jq -r .full_reason <<<"$j5")"
human=$(sf_cli job show "$(jq -r .job_id <<<"$j5")")
check "'job show' says why it was full" grep -q "^full copy .*is gone from the store" <<<"$human"
img5=$(jq -r '.images[0].id' <<<"$j5")

#  -- (3) the guest restarted ---------------------------------------------------
#  Whatever survives (measured), the point must be the guest's disk: run 6
#  of the suspended guest against a file-cold copy of the same instant
sf_virsh n1 destroy g1 >/dev/null
sf_virsh n1 start g1 >/dev/null
sleep 8
sf_note "checkpoints after destroy + start: $(checkpoints)"
sf_virsh n1 suspend g1 >/dev/null
j6=$(snap file-live)
j7=$(snap file-cold)
sf_virsh n1 resume g1 >/dev/null
sf_note "run 6 (after destroy + start): $(jq -c '{job_id, state, full_reason, images: [.images[] | {id, own_bytes, parent}]}' <<<"$j6")"
check_eq "after a restart the run is done, and its file-cold twin" "done done" \
    "$(jq -r .state <<<"$j6") $(jq -r .state <<<"$j7")"
if [ "$(jq -r '.images[0].parent' <<<"$j6")" = "$img5" ]; then
    sf_note "MEASURED: the checkpoint's bitmap survived destroy + start: run 6 is incremental ($(jq -r '.images[0].own_bytes' <<<"$j6") bytes)"
    ok "run 6 is an increment on run 5 (the persistent bitmap survived)"
else
    sf_note "MEASURED: after destroy + start run 6 was full: $(jq -r .full_reason <<<"$j6")"
    check "run 6 is full and says why" test "$(jq -r .full_reason <<<"$j6")" != null
fi
restore_check "run 6" "$(jq -r '.images[0].id' <<<"$j6")" - -
check "the restored run 6 equals the file-cold copy of that instant (qemu-img compare)" \
    qemu-img compare -q -f qcow2 -F qcow2 "$RESTORED" "$(jq -r '.images[0].path' <<<"$j7")"

#  -- (4) retention keeps chains whole ---------------------------------------
#  A file-live point first, so that the schedule's runs chain from it
snap file-live >/dev/null
rc=0
sf_cli schedule add s2 --calendar '*:*:0/15' --instance g1 --strategy file-live \
    --keep-last 2 --window 5m --format json >/dev/null || rc=$?
check_eq "schedule add exits 0" 0 "$rc"
s2_done () {
    sf_cli bulks --format json | jq -c '[(.bulks // .)[] | select(.schedule == "s2" and .state == "done")]'
}
done_at_least () { [ "$(s2_done | jq length)" -ge "$1" ]; }
SF_POLL=1 wait_for 300 done_at_least 5 || sf_die "s2 did not complete five runs"
sf_cli schedule rm s2 --format json >/dev/null
none_running () { sf_cli jobs --format json | jq -e '[.jobs[] | select(.state == "running" or .state == "queued")] | length == 0'; }
SF_POLL=1 wait_for 120 none_running >/dev/null || sf_die "a job of s2 never ended"
bulks=$(s2_done | jq -r '.[].bulk_id')
jobs_of_s2=$(for bk in $bulks; do
    sf_cli bulk show "$bk" --format json | jq -r '(.bulk // .) | .jobs[] | select(.state == "done") | .job_id'
done)
newest2=$(tail -n 2 <<<"$jobs_of_s2" | tr '\n' ' ')
sf_note "s2 jobs: $(tr '\n' ' ' <<<"$jobs_of_s2"); the last two: $newest2"
#  points_left: the s2 jobs that still have an image
points_left () {
    local images j
    images=$(sf_cli images --format json)
    for j in $jobs_of_s2; do
        jq -e --arg j "$j" '.images[] | select(.job_id == $j)' <<<"$images" >/dev/null && printf '%s ' "$j"
    done
}
#  settled: every point left beyond the last two is some image's parent
#  (retention's deletions have been answered)
settled () {
    local images j i
    images=$(sf_cli images --format json)
    for j in $(points_left); do
        grep -qw "$j" <<<"$newest2" && continue
        i=$(jq -r --arg j "$j" '.images[] | select(.job_id == $j) | .id' <<<"$images")
        jq -e --arg i "$i" '[.images[] | select(.parent == $i)] | length > 0' <<<"$images" >/dev/null || return 1
    done
}
if SF_POLL=1 wait_for 90 settled >/dev/null; then
    ok "every s2 point left is one of the last two or the base of a point left"
else
    fail "every s2 point left is one of the last two or the base of a point left" \
        "left: $(points_left)" "$(sf_cli images)"
fi
left=$(points_left)
images=$(sf_cli images --format json)
sf_note "points of s2 left: $left"
for j in $newest2; do
    check "point $j (one of the last two) is still catalogued" grep -qw "$j" <<<"$left"
    i=$(jq -r --arg j "$j" '.images[] | select(.job_id == $j) | .id' <<<"$images")
    p=$(jq -r --arg j "$j" '.images[] | select(.job_id == $j) | .path' <<<"$images")
    if [ -n "$i" ]; then
        restore_check "kept point $j" "$i" - -
        check "kept point $j: the restore equals the stored chain (qemu-img compare)" \
            qemu-img compare -q -f qcow2 -F qcow2 "$p" "$RESTORED"
    fi
done
orphans=$(jq -r '[.images[] | .id] as $ids | .images[] | select(.parent != null and (.parent as $p | $ids | index($p) | not)) | .id' <<<"$images")
check_eq "every image left has its parent in the catalogue" "" "$orphans"
for i in $(jq -r '.images[] | select(.parent != null) | .parent' <<<"$images"); do
    check "parent $i's file is in the store" test -f "$SF_TMP/images/$i.qcow2"
done
dropped=0
for j in $jobs_of_s2; do grep -qw "$j" <<<"$left" || dropped=$((dropped + 1)); done
sf_note "s2: $(wc -w <<<"$jobs_of_s2") points made, $(wc -w <<<"$left") left, $dropped deleted"
check_range "at most keep-last + max_chain points of s2 stay" 2 "$(wc -w <<<"$left")" 4
check "retention deleted at least one point of s2" test "$dropped" -ge 1
if [ "$(wc -w <<<"$left")" -gt 2 ]; then
    check "the scheduler logged why it kept a base" grep -q "is kept: base of" "$SF_TMP/scheduler.log"
fi
last=$(tail -n 1 <<<"$jobs_of_s2")
check "the newest point $last has its metadata file in the store (the check below can see one)" \
    test -n "$(find "$SF_TMP/images" -name '*.json' -exec grep -l "\"job_id\": *\"$last\"" {} + 2>/dev/null)"
for j in $jobs_of_s2; do
    grep -qw "$j" <<<"$left" && continue
    check_eq "dropped point $j has no file left in the store" "" \
        "$(find "$SF_TMP/images" -name '*.json' -exec grep -l "\"job_id\": *\"$j\"" {} + 2>/dev/null)"
done
sf_done
