#!/usr/bin/env bash
#  t0300-fleet-limits: fleet-wide limits hold, with real parts. Three nodes,
#  each its own unprivileged libvirtd (own connection, own guests) and its
#  own worker with its own dir image store; a single-node Ceph shared by
#  the RBD guests. Guests (all agent-less, so every capture is a libvirt
#  pause that shows as SUSPENDED/RESUMED; an RBD guest with an agent would
#  be frozen instead):
#      n1: f1 f2      file-cold (forced: the default, file-live, never pauses)
#      n2: f3 r1      file-cold, rbd (export mode: the image is uploaded)
#      n3: r2 f4      rbd (export), file-cold
#  each with SF_T0300_SIZE (32M) of random data, so every upload copies
#  that much into a store and takes a measurable time. The scheduler runs
#  with [limits] max_paused = 1, max_uploads = 1.
#  Two bulks at once, `snapfleet snapshot --instance f1 ... --strategy
#  file-cold --wait --format json` and the same for r1 r2 (the limits are
#  fleet-wide, across bulks), counted as one. While they
#  runs, sf-lifewatch --all on every node logs each domain's SUSPENDED and
#  RESUMED with wall-clock ms, and a sampler lists the stores' temporary
#  files (<id>.qcow2.tmp: an upload in progress, worker/sf_imgstore_dir.c)
#  every 10 ms. Asserted: merging every node's pause intervals, at most one
#  guest is paused at any instant; at most one upload is in progress in any
#  sample (and the uploads' intervals never overlap); every upload was seen;
#  the bulk ends done with total = number of guests, failed = skipped = 0
#  (also in `snapfleet bulk show`); every image passes qemu-img check and
#  holds a clean prefix of its guest's records; every guest is running and
#  writing at the end; each guest was paused exactly once. Figures (max
#  concurrency, pause and upload durations, makespan, sampling gaps) are
#  printed as notes.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/ceph.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/ceph.sh"
# shellcheck source=lib/fleet.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib/fleet.sh"

sf_init t0300-fleet-limits
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq
[ -x "$SF_RECORDS" ] || skip "sf-records not built ($SF_RECORDS)"
[ -x "$SF_LIFEWATCH" ] || skip "sf-lifewatch not built ($SF_LIFEWATCH)"
formats=$(qemu-img --help 2>/dev/null || true)
grep -qw rbd <<<"$formats" || skip "qemu-img has no rbd driver (install qemu-block-extra)"

SIZE=${SF_T0300_SIZE:-32M}
SAMPLE_MS=10
NODES="n1 n2 n3"
#  node:guest:kind
GUESTS="n1:f1:file n1:f2:file n2:f3:file n2:r1:rbd n3:r2:rbd n3:f4:file"
NGUESTS=$(wc -w <<<"$GUESTS")

#  Many TCG guests on a small machine: records paced (20 ms sleep after
#  each), more time to boot
export LV_GUEST_PACE_MS=${LV_GUEST_PACE_MS:-20} LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-180}

records () { "$SF_RECORDS" --min "$2" --max "$3" "$1" 2>&1 || true; }

#  -- the parts -------------------------------------------------------------
cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
t=$(_sf_now_ms)
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
sf_note "Ceph up in $(($(_sf_now_ms) - t)) ms"
sf_start_scheduler limits.max_paused=1 limits.max_uploads=1

t=$(_sf_now_ms)
for n in $NODES; do
    sf_start_node "$n"
done
sf_note "3 libvirtd up in $(($(_sf_now_ms) - t)) ms"
head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom >"$SF_TMP/src.raw"
for n in n2 n3; do
    ceph_lv_secret "$(sf_node_uri "$n")" admin >/dev/null || sf_die "cannot define the ceph secret on $n"
done
#  boot_guest NODE NAME KIND: one guest, output in $SF_TMP/boot-NAME.log
boot_guest ()
{
    local n=$1 g=$2 kind=$3 uri
    uri=$(sf_node_uri "$n")
    if [ "$kind" = rbd ]; then
        ceph_import "$SF_TMP/src.raw" "rbd/$g" && ceph_lv_guest "$uri" "$g" "$SF_TMP/$n/vm" "rbd/$g"
    else
        sf_guest "$n" "$g" --size "$SIZE"
    fi
}
#  The guests boot in parallel (TCG: ~20 s each on a loaded 2-core machine)
t=$(_sf_now_ms)
declare -A boot_pid=()
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    boot_guest "$n" "$g" "$kind" >"$SF_TMP/boot-$g.log" 2>&1 &
    boot_pid[$g]=$!
done
for g in "${!boot_pid[@]}"; do
    wait "${boot_pid[$g]}" || sf_die "guest $g did not boot: $(tail -n 5 "$SF_TMP/boot-$g.log")"
done
sf_note "$NGUESTS guests running in $(($(_sf_now_ms) - t)) ms"
for n in $NODES; do
    ceph_sf_worker "$n" "$(sf_node_uri "$n")" storage.rbd.mode=export \
        "imagestore.path=$SF_TMP/store-$n"
done

#  -- inventory: every guest, with the strategy that pauses it ----------------
inv_ready ()
{
    sf_cli instances --format json |
        jq -e --argjson n "$NGUESTS" '[.instances[] | select(.state == "running")] | length == $n'
}
wait_for 60 inv_ready >/dev/null || sf_die "not all $NGUESTS guests in 'snapfleet instances'"
inv=$(sf_cli instances --format json)
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    want="file-live"
    [ "$kind" = rbd ] && want=rbd
    check_eq "$g is on $n with default strategy $want" "$n $want" \
        "$(jq -r --arg g "$g" '.instances[] | select(.name == $g) | "\(.node) \(.strategy)"' <<<"$inv")"
done
check_eq "three nodes are up" "n1 n2 n3" \
    "$(sf_cli nodes --format json | jq -r '[.nodes[] | select(.state == "up") | .name] | sort | join(" ")')"

#  -- the witnesses ---------------------------------------------------------
for n in $NODES; do
    sf_lifewatch_node "$n"
done
sf_storewatch stores "$SAMPLE_MS" "$SF_TMP/store-n1/*.qcow2.tmp" \
    "$SF_TMP/store-n2/*.qcow2.tmp" "$SF_TMP/store-n3/*.qcow2.tmp"

declare -A seq_a=() seq_b=()
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    lv_wait_seq "$(sf_guest_dir "$n" "$g")/console.log" 20 60 || sf_die "$g writes no records"
    seq_a[$g]=$(lv_guest_seq "$(sf_guest_dir "$n" "$g")/console.log")
done

#  -- the bulk --------------------------------------------------------------
t0=$(_sf_now_ms)
rc=0
file_args=() rbd_args=()
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    if [ "$kind" = rbd ]; then rbd_args+=(--instance "$g"); else file_args+=(--instance "$g"); fi
done
sf_cli snapshot "${file_args[@]}" --strategy file-cold --wait --format json \
    >"$SF_TMP/bulk-file.jsonl" 2>"$SF_TMP/bulk-file.err" &
file_pid=$!
sf_cli snapshot "${rbd_args[@]}" --wait --format json >"$SF_TMP/bulk-rbd.jsonl" \
    2>"$SF_TMP/bulk-rbd.err" || rc=$?
wait "$file_pid" || rc=$?
cat "$SF_TMP/bulk-file.jsonl" "$SF_TMP/bulk-rbd.jsonl" >"$SF_TMP/bulk.jsonl"
cat "$SF_TMP/bulk-file.err" "$SF_TMP/bulk-rbd.err" >"$SF_TMP/bulk.err"
t1=$(_sf_now_ms)
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    seq_b[$g]=$(lv_guest_seq "$(sf_guest_dir "$n" "$g")/console.log")
done
sf_note "the two snapshot --wait: exit $rc after $((t1 - t0)) ms; $(wc -l <"$SF_TMP/bulk.jsonl") lines; stderr: $(head -c 300 "$SF_TMP/bulk.err")"
sleep 0.3
sf_stop_pid "$SF_TMP/stores.pid" || true
for n in $NODES; do
    sf_stop_pid "$SF_TMP/lifewatch-node-$n.pid" || true
done

check_eq "both snapshot --wait exit 0" 0 "$rc"
shows=()
for part in file rbd; do
    final=$(fleet_json_last "done" "$SF_TMP/bulk-$part.jsonl")
    check "$part bulk: the last event is {\"event\":\"done\",\"bulk\":...}" jq -e '.bulk.bulk_id' <<<"${final:-null}"
    bulk_id=$(jq -r '.bulk.bulk_id // empty' <<<"${final:-null}")
    [ -n "$bulk_id" ] || sf_die "no bulk id in the event stream: $(tail -n 3 "$SF_TMP/bulk-$part.jsonl")"
    one=$(sf_cli bulk show "$bulk_id" --format json) || sf_die "snapfleet bulk show $bulk_id failed"
    shows+=("$(jq -c '.bulk // .' <<<"$one")")
done
njobev=$(jq -R -c 'fromjson? | select(.event == "job")' "$SF_TMP/bulk.jsonl" | wc -l)
nprog=$(jq -R -c 'fromjson? | select(.event == "progress")' "$SF_TMP/bulk.jsonl" | wc -l)
sf_note "event stream: $nprog progress, $njobev job events"
check_eq "one job event per guest" "$NGUESTS" "$njobev"
#  The two bulks as one
show=$(printf '%s\n' "${shows[@]}" | jq -s -c '{state: (if all(.[]; .state == "done") then "done"
    else (map(.state) | join(",")) end), total: (map(.total) | add), done: (map(.done) | add),
    failed: (map(.failed) | add), skipped: (map(.skipped) | add),
    failures: (map(.failures) | add), jobs: (map(.jobs) | add)}')
sf_note "bulk show: $(jq -c 'del(.jobs)' <<<"$show")"
check_eq "bulk show: state done, total $NGUESTS, done $NGUESTS, failed 0, skipped 0" \
    "done $NGUESTS $NGUESTS 0 0" \
    "$(jq -r '"\(.state) \(.total) \(.done) \(.failed) \(.skipped)"' <<<"$show")"
check_eq "bulk show: no failures listed" 0 "$(jq -r '.failures | length' <<<"$show")"
check_eq "bulk show: every job done" "$NGUESTS" \
    "$(jq -r '[.jobs[] | select(.state == "done")] | length' <<<"$show")"
check_eq "bulk show: one job per guest" "$(tr ' ' '\n' <<<"$GUESTS" | cut -d: -f2 | sort | tr '\n' ' ')" \
    "$(jq -r '.jobs[].instance' <<<"$show" | sort | tr '\n' ' ')"

#  -- every image -----------------------------------------------------------
declare -A upload_ids=()
for job in $(jq -r '.jobs[].job_id' <<<"$show"); do
    js=$(sf_cli job show "$job" --format json) || { fail "job show $job"; continue; }
    g=$(jq -r .instance <<<"$js")
    sf_note "$job $g: $(jq -r '"\(.strategy) \(.consistency) pause_ms=\(.pause_ms) convert_ms=\(.convert_ms) upload_ms=\(.upload_ms) bytes=\(.bytes)"' <<<"$js")"
    check_eq "$job ($g) is done, consistency paused" "done paused" \
        "$(jq -r '"\(.state) \(.consistency)"' <<<"$js")"
    nimg=$(jq -r '.images | length' <<<"$js")
    check_eq "$job ($g): one image, qcow2 in a dir store" "1 dir qcow2" \
        "$nimg $(jq -r '.images[0] | "\(.store) \(.format)"' <<<"$js")"
    img=$(jq -r '.images[0].path' <<<"$js")
    upload_ids[$(basename "$img").tmp]=$g
    check "$g's image passes qemu-img check" qemu-img check -q "$img"
    rec=$(records "$img" "${seq_a[$g]:-0}" $((${seq_b[$g]:-0} + 10)))
    sf_note "sf-records $g: $rec (console seq ${seq_a[$g]:-?} before the bulk, ${seq_b[$g]:-?} after)"
    check_eq "$g's image holds a clean prefix with ${seq_a[$g]:-?} <= K <= $((${seq_b[$g]:-0} + 10))" \
        CLEAN_PREFIX "${rec##*verdict=}"
done

#  -- at most one guest paused at any instant (libvirt's own events) ----------
fleet_pauses "$SF_TMP"/lifewatch-node-*.events >"$SF_TMP/pauses"
sf_note "pause intervals (start end guest@node, ms): $(awk '{printf "%s+%s %s; ", $1, ($2 == "open" ? "open" : $2 - $1), $3}' "$SF_TMP/pauses")"
check_eq "libvirt saw one SUSPENDED..RESUMED per guest, none left open" \
    "$NGUESTS 0" "$(wc -l <"$SF_TMP/pauses") $(grep -c ' open ' "$SF_TMP/pauses" || true)"
check_eq "every guest was paused exactly once" "$(tr ' ' '\n' <<<"$GUESTS" | awk -F: '{print $2 "@" $1}' | sort | tr '\n' ' ')" \
    "$(awk '{print $3}' "$SF_TMP/pauses" | sort | tr '\n' ' ')"
read -r pmax pat plabels < <(fleet_max_overlap <"$SF_TMP/pauses")
sf_note "max guests paused at once (merged over 3 nodes): $pmax (first at $pat: $plabels)"
check_range "at most one guest paused at any instant (max_paused=1)" 1 "$pmax" 1
gaps=$(awk 'NR > 1 && $2 != "open" { g = $1 - prev_end; printf "%d ", g } $2 != "open" { prev_end = $2 }' "$SF_TMP/pauses")
sf_note "gaps between consecutive pauses (ms): $gaps"

#  -- at most one upload at any instant (the stores' temporary files) ---------
smp=$SF_TMP/stores.samples
fleet_uploads "$smp" >"$SF_TMP/uploads"
sf_note "sampling: $(fleet_samples_end "$smp")"
sf_note "uploads seen (start +duration name, ms): $(awk '{printf "%s+%s %s; ", $1, ($2 == "open" ? "open" : $2 - $1), $3}' "$SF_TMP/uploads")"
umax=$(fleet_samples_max "$smp")
read -r uomax uat ulabels < <(fleet_max_overlap <"$SF_TMP/uploads")
sf_note "max uploads in one sample: $umax; max overlapping upload intervals: $uomax (at $uat: $ulabels)"
check_range "at most one upload in progress in any sample (max_uploads=1)" 1 "$umax" 1
check_range "upload intervals never overlap" 1 "$uomax" 1
missed=""
for name in "${!upload_ids[@]}"; do
    grep -q " $name\$" "$SF_TMP/uploads" || missed+="${upload_ids[$name]} "
done
check_eq "the sampler saw every upload ($NGUESTS)" "" "$missed"
check_eq "no temporary file left in any store" "" \
    "$(find "$SF_TMP"/store-n? -name '*.tmp' | tr '\n' ' ')"

#  The scheduler's own view of the same (job events): informative
sched_up=$(for job in $(jq -r '.jobs[].job_id' <<<"$show"); do
    sf_cli job show "$job" --format json |
        jq -r '.events[] | select(.phase == "uploaded") | "\(.at) \(.ms)"'
done | while read -r at ms; do
    e=$(date -d "$at" +%s%3N)
    echo "$((e - ms)) $e"
done | fleet_max_overlap)
sf_note "uploads overlapping per the job events (uploaded.at - ms .. at): ${sched_up%% *}"

#  -- the guests afterwards -------------------------------------------------
for spec in $GUESTS; do
    IFS=: read -r n g kind <<<"$spec"
    check_eq "$g is running on $n" running "$(sf_virsh "$n" domstate "$g")"
    check "$g keeps writing (seq past $((${seq_b[$g]} + 10)))" \
        lv_wait_seq "$(sf_guest_dir "$n" "$g")/console.log" $((${seq_b[$g]} + 10)) 60
done
sf_note "bulk of $NGUESTS guests on 3 nodes: $((t1 - t0)) ms; paused at most $pmax, uploading at most $umax"
sf_done
