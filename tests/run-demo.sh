#!/usr/bin/env bash
#  tests/run-demo.sh: install what is needed, build, and show snapfleet
#  working on this machine with real parts, all on 127.0.0.1:
#  a private unprivileged libvirtd, two small busybox guests under QEMU,
#  the scheduler and one worker. It snapshots both guests (one running,
#  one shut off), prints a table per instance, then stops everything it
#  started (by recorded pid). Set SF_KEEP=1 to keep the scratch directory.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tests/setup.sh" "$top/build"
export SF_BUILD=$top/build SF_SRC=$top
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$top/tests/lib.sh"

sf_init demo
echo "== starting a private libvirtd, two guests, the scheduler and a worker (logs in $SF_TMP)"
sf_start_scheduler
echo "   every socket is CURVE: keys made and enrolled in $SF_TMP/keys (snapfleet keygen)"
sf_start_node node1
sf_guest node1 demo1
sf_guest node1 demo2
lv_wait_seq "$(sf_guest_dir node1 demo2)/console.log" 20 60
sf_virsh node1 destroy demo2 >/dev/null      #  demo2 is shut off: no pause needed
sf_start_worker node1 "$SF_NODE_URI"
seen () { sf_cli instances --format json | jq -e '[.instances[] | select(.name | startswith("demo"))] | length == 2'; }
wait_for 30 seen >/dev/null || sf_die "the worker's inventory never showed both guests"

echo
echo "== snapfleet nodes"
sf_cli nodes
echo
echo "== snapfleet instances"
sf_cli instances
echo
results=()
for vm in demo1 demo2; do
    echo "== snapfleet snapshot --instance $vm --wait --format json"
    out=$(sf_cli snapshot --instance "$vm" --wait --format json) || true
    jq . <<<"$out"
    results+=("$out")
done

echo
echo "== result per instance"
{
    printf 'INSTANCE\tSTATE\tSTRATEGY\tPAUSE\tCONVERT\tUPLOAD\tSIZE\tIMAGE\n'
    for out in "${results[@]}"; do
        jq -r '[.instance, .state, .strategy, "\(.pause_ms) ms", "\(.convert_ms) ms",
                "\(.upload_ms) ms", "\((.image.size // 0) / 1048576 * 10 | floor / 10) MiB",
                (.image.id // "-")] | @tsv' <<<"$out"
    done
} | column -t -s $'\t'
echo
for out in "${results[@]}"; do
    img=$(jq -r '.image.path // empty' <<<"$out")
    [ -n "$img" ] && printf 'qemu-img check %s: %s\n' "$(jq -r .instance <<<"$out")" \
        "$(qemu-img check "$img" 2>&1 | head -n 1)"
done
echo
echo "== stopping everything"
