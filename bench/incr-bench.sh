#!/usr/bin/env bash
#  bench/incr-bench.sh: what does an incremental file-live run cost against
#  a full one, after 1% and 10% of the disk changed?
#
#  Real parts only: one private libvirtd with a TCG records guest
#  (tests/lib/libvirt.sh) whose disk is a qcow2 overlay on a raw base of
#  random data, the scheduler, one worker and `snapfleet snapshot --wait`.
#  For every size: a full file-live run (the first has nothing to build
#  on); then, for each percentage P, the guest writes P% of the disk
#  (random bytes, `dd ... conv=fsync` run in the guest through its agent's
#  guest-exec, from 64 MiB on, past the record area) and a file-live run
#  follows: an increment on the previous point. The guest has an agent, so
#  file-live freezes it (0 filesystems here) around the backup's start. Each row: the job's stored bytes (own
#  bytes of its image), the job's convert_ms (backup until QEMU let go of
#  the copy) + upload_ms, and the wall time of `snapshot --wait`. Prints a
#  plain-text table on stdout.
#
#  Usage: bench/incr-bench.sh [-s "SIZE..."] [-p "PCT..."]
#    -s SIZES   disk sizes, IEC (default "1G"; env SIZES)
#    -p PCTS    percentages of the disk written before an incremental run
#               (default "1 10"; env PCTS)
#  Environment: SF_BUILD (build dir, default ./build), SF_KEEP=1 (keep the
#  scratch dir). Needs root and the packages of tests/setup.sh, like the
#  integration tests. Notes go to stderr.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
export SF_TEST_TIMEOUT=${SF_TEST_TIMEOUT:-3600}
export SF_CLI_TIMEOUT=${SF_CLI_TIMEOUT:-1800}
# shellcheck source=../tests/lib.sh
. "$bench_dir/../tests/lib.sh"

SIZES=${SIZES:-1G}
PCTS=${PCTS:-1 10}
usage () { sed -n '/^#  Usage:/,/^#  integration tests/p' "$0" | sed 's/^#  \{0,1\}//'; }
while getopts 's:p:h' opt; do
    case $opt in
        s) SIZES=$OPTARG ;;
        p) PCTS=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

sf_init incr-bench
sf_need_libvirt
sf_need jq numfmt
sf_start_scheduler
sf_start_node n1
sf_start_worker n1 "$SF_NODE_URI"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rows=$SF_TMP/rows
: >"$rows"

ms () { local t=${EPOCHREALTIME/./}; printf '%s' $((10#$t / 1000)); }

#  run NAME LABEL: a file-live run of NAME, one row
run ()
{
    local name=$1 label=$2 t0 t1 job
    t0=$(ms)
    job=$(sf_cli snapshot --instance "$name" --strategy file-live --wait --format json) ||
        sf_die "$label: the snapshot failed: $job"
    t1=$(ms)
    [ "$(jq -r .state <<<"$job")" = "done" ] || sf_die "$label: job not done: $job"
    sf_note "$label: $(jq -c '{job_id, bytes, convert_ms, upload_ms, full_reason, images: [.images[] | {own_bytes, parent}]}' <<<"$job")"
    printf '%s %s %s %s %s %s %s\n' "$SIZE_LABEL" "$label" \
        "$(jq -r '.images[0].own_bytes' <<<"$job")" "$(jq -r .convert_ms <<<"$job")" \
        "$(jq -r .upload_ms <<<"$job")" $((t1 - t0)) \
        "$(jq -r 'if .images[0].parent == null then "full" else "incremental" end' <<<"$job")" \
        >>"$rows"
}

n=0
for SIZE_LABEL in $SIZES; do
    n=$((n + 1))
    name=b$n
    bytes=$(numfmt --from=iec "$SIZE_LABEL")
    sf_guest n1 "$name" --size "$SIZE_LABEL" --agent
    listed () { sf_cli instances --format json | jq -e --arg n "$1" '[.instances[].name] | index($n)'; }
    wait_for 60 listed "$name" >/dev/null || sf_die "$name never appeared"
    lv_wait_seq "$(sf_guest_dir n1 "$name")/console.log" 20 60
    run "$name" full
    round=0
    for pct in $PCTS; do
        round=$((round + 1))
        count=$((bytes * pct / 100))
        #  Whole MiB, from 64 MiB on (the record area is below)
        count=$(( (count >> 20) << 20 ))
        [ $((count + (64 << 20))) -le "$bytes" ] || count=$((bytes - (64 << 20)))
        mib=$((count >> 20))
        args=$(jq -cn --argjson n "$mib" '["dd", "if=/dev/urandom", "of=/dev/vda", "bs=1M",
                                            "seek=64", "count=\($n)", "conv=fsync"]')
        out=$(sf_virsh n1 qemu-agent-command "$name" --timeout 30 \
              "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/busybox\",\"arg\":$args}}") ||
            sf_die "guest-exec failed: $out"
        pid=$(jq -r .return.pid <<<"$out")
        exited () {
            st=$(sf_virsh n1 qemu-agent-command "$name" --timeout 30 \
                 "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}")
            jq -e .return.exited <<<"$st" >/dev/null
        }
        wait_for 600 exited >/dev/null || sf_die "the guest's dd did not end"
        [ "$(jq -r '.return.exitcode' <<<"$st")" = 0 ] || sf_die "the guest's dd failed: $st"
        out="dd of $mib MiB from 64 MiB on, exit 0"
        sf_note "$SIZE_LABEL: wrote $count bytes ($pct%): $out"
        run "$name" "after-$pct%"
    done
    sf_virsh n1 destroy "$name" >/dev/null || true
done

printf '# incr-bench %s; load %s at start, %s at end; file-live, TCG guest\n' \
    "$(date -u +%FT%TZ)" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-11s %-11s %14s %11s %10s %9s\n' SIZE RUN KIND OWN_BYTES CONVERT_MS UPLOAD_MS WALL_MS
while read -r size label own conv up wall kind; do
    printf '%-6s %-11s %-11s %14s %11s %10s %9s\n' "$size" "$label" "$kind" "$own" "$conv" "$up" "$wall"
done <"$rows"
sf_done
