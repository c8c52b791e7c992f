#!/usr/bin/env bash
#  t0100-snapshot-file-cold: the vertical slice, end to end, with real parts.
#  An operator asks the scheduler for a file-cold snapshot (--strategy
#  file-cold: the default for running file guests is file-live, t0230) of
#  a running file-backed guest; the worker on its node pauses it through libvirt, converts its
#  disk (qcow2 overlay + raw backing file) to one standalone qcow2, resumes
#  it and stores the image. Checked as a user would: the job is done, the
#  image passes qemu-img check and its sha256 matches, it holds a clean
#  prefix of the guest's records taken while it was paused, the guest runs
#  on and keeps writing, and the reported pause_ms agrees within 50 ms with
#  the suspended interval libvirt's own lifecycle events show.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0100-snapshot-file-cold
sf_need_libvirt
sf_need jq

sf_start_scheduler
sf_start_node n1
sf_guest n1 g1
g1=$(sf_guest_dir n1 g1)
sf_start_worker n1 "$SF_NODE_URI"

#  -- inventory ----------------------------------------------------------
inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 30 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
j=$(inst)
sf_note "inventory: $(jq -c . <<<"$j")"
check_eq "g1 is on node n1" n1 "$(jq -r .node <<<"$j")"
check_eq "g1 is running" running "$(jq -r .state <<<"$j")"
check_eq "g1's storage class is file" file "$(jq -r .storage_class <<<"$j")"
check_eq "g1 will get file-live by default" file-live "$(jq -r .strategy <<<"$j")"
check_eq "vda is a qcow2 file disk" "vda file qcow2" \
    "$(jq -r '.disks[0] | "\(.target) \(.type) \(.format)"' <<<"$j")"
check_eq "vda's backing chain is the raw base" 1 "$(jq -r '.disks[0].backing_chain | length' <<<"$j")"
check_eq "vda's virtual size is 64 MiB" $((64 << 20)) "$(jq -r '.disks[0].virtual_size' <<<"$j")"
uuid=$(jq -r .uuid <<<"$j")
check "instances --node n1 lists g1" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' instances --node n1 --format json | jq -e '.instances | length == 1'"

#  -- snapshot -----------------------------------------------------------
sf_lifewatch n1 g1
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
rc=0
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || rc=$?
b=$(lv_guest_seq "$g1/console.log")
sf_note "snapshot: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "snapshot --wait exits 0" 0 "$rc"
check_eq "job is done" "done" "$(jq -r .state <<<"$out")"
for key in job_id instance node state strategy consistency pause_ms convert_ms upload_ms bytes image; do
    check "job JSON has '$key'" jq -e --arg k "$key" 'has($k)' <<<"$out"
done
for key in store id path size sha256; do
    check "image JSON has '$key'" jq -e --arg k "$key" '.image | has($k)' <<<"$out"
done
check_eq "instance/node/strategy/consistency" "g1 n1 file-cold paused" \
    "$(jq -r '"\(.instance) \(.node) \(.strategy) \(.consistency)"' <<<"$out")"
job=$(jq -r .job_id <<<"$out")
pause_ms=$(jq -r .pause_ms <<<"$out")
check_range "pause_ms is reported" 1 "$pause_ms" 60000
check_range "convert_ms is reported" 0 "$(jq -r .convert_ms <<<"$out")" 60000
check_range "upload_ms is reported" 0 "$(jq -r .upload_ms <<<"$out")" 60000

#  -- the image ------------------------------------------------------------
img=$(jq -r .image.path <<<"$out")
check "image file exists" test -f "$img"
check "qemu-img check passes" qemu-img check -q "$img"
check_eq "image is qcow2" qcow2 "$(qemu-img info --output=json "$img" | jq -r .format)"
check_eq "image is standalone (no backing file)" none \
    "$(qemu-img info --output=json "$img" | jq -r '."backing-filename" // "none"')"
check_eq "reported size is the file's size" "$(stat -c %s "$img")" "$(jq -r .image.size <<<"$out")"
check_eq "reported sha256 is the file's" "$(sha256sum "$img" | cut -d' ' -f1)" \
    "$(jq -r .image.sha256 <<<"$out")"
meta=${img%.qcow2}.json
check "metadata JSON sits beside the image" test -f "$meta"
check_eq "image and metadata are 0640 (explicit modes; the worker's umask is 077)" \
    "640 640" "$(stat -c %a "$img" "$meta" | tr '\n' ' ' | sed 's/ $//')"
check_eq "metadata names the job, instance and sha256" "$job $uuid g1 $(jq -r .image.sha256 <<<"$out")" \
    "$(jq -r '"\(.job_id) \(.instance_uuid) \(.instance_name) \(.sha256)"' "$meta" 2>/dev/null)"
rec=$(sf_records --min "$a" --max $((b + 10)) "$img" 2>&1) || true
sf_note "sf-records: $rec"
check_eq "image holds a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"
check_eq "no temp files left in the store" "" \
    "$(find "$SF_TMP/images" -name '*.tmp*' | tr '\n' ' ')"
check_eq "no scratch left in the worker's workdir" "" \
    "$(find "$SF_TMP/w-n1/work" -type f | tr '\n' ' ')"

#  -- the guest afterwards -------------------------------------------------
check_eq "g1 is running after the snapshot" running "$(sf_virsh n1 domstate g1)"
check "g1 keeps writing (seq past $((b + 20)))" lv_wait_seq "$g1/console.log" $((b + 20)) 30

#  -- what libvirt saw -----------------------------------------------------
sf_stop_pid "$SF_TMP/lifewatch-g1.pid" || true
events=$SF_TMP/lifewatch-g1.events
sf_note "lifewatch: $(tr '\n' ';' <"$events")"
check_eq "libvirt saw exactly one SUSPENDED then RESUMED" "SUSPENDED RESUMED" \
    "$(awk '{print $2}' "$events" | tr '\n' ' ' | sed 's/ $//')"
ts_s=$(awk '$2 == "SUSPENDED" {print $1; exit}' "$events")
ts_r=$(awk '$2 == "RESUMED" {print $1; exit}' "$events")
seen=$(( ${ts_r:-0} - ${ts_s:-0} ))
sf_note "pause_ms reported $pause_ms, libvirt saw $seen ms suspended"
check_range "pause_ms agrees with libvirt's suspended interval within 50 ms" \
    $((seen - 50)) "$pause_ms" $((seen + 50))

#  -- the CLI's other views ------------------------------------------------
show=$(sf_cli job show "$job" --format json)
check_eq "job show: same job, done" "$job done" "$(jq -r '"\(.job_id) \(.state)"' <<<"$show")"
check_eq "job show: phases in order" "queued paused resumed converted upload_wait uploaded" \
    "$(jq -r '[.events[].phase | select(. != "done")] | join(" ")' <<<"$show")"
check "jobs lists the job" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' jobs --format json | jq -e --arg j '$job' '.jobs[] | select(.job_id == \$j and .state == \"done\")'"
check "images lists the image" bash -c \
    "'$SF_BUILD/scheduler/snapfleet' --admin '$SF_ADMIN' images --format json | jq -e --arg i '$(jq -r .image.id <<<"$out")' '.images[] | select(.id == \$i)'"
for cmd in nodes instances jobs images "job show $job"; do
    # shellcheck disable=SC2086
    check "table output of '$cmd'" sf_cli $cmd
done

#  A second snapshot of the same guest works too and makes a new image
out2=$(sf_cli snapshot --instance "$uuid" --strategy file-cold --wait --format json) || true
check_eq "second snapshot (by uuid) is done" "done" "$(jq -r .state <<<"$out2" 2>/dev/null)"
check "second snapshot made a different image" test "$(jq -r .image.id <<<"$out2")" != "$(jq -r .image.id <<<"$out")"

sf_done
