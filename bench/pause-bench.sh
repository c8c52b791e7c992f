#!/usr/bin/env bash
#  bench/pause-bench.sh: how long does a snapshot keep a guest paused, rbd
#  versus file-cold, and how does that change with the disk size?
#
#  Real parts only, driven the way an operator would: a single-node Ceph
#  (tests/lib/ceph.sh), one private libvirtd with TCG test guests
#  (tests/lib/libvirt.sh), the scheduler, one worker with [storage.rbd]
#  (mode clone) and `snapfleet snapshot --wait`. For every disk size it boots
#  two guests of that size: one file-backed (a qcow2 overlay on a raw base
#  of random data, so file-cold's convert does real work) and one whose vda
#  is a thin RBD image of the same virtual size (an RBD snapshot does not
#  read the data). Each guest is snapshotted RUNS times, alternating, and
#  the job's pause_ms is collected. Prints a plain-text table on stdout:
#  median (min-max) pause_ms per strategy and size, and file-cold/rbd.
#
#  Usage: bench/pause-bench.sh [-n RUNS] [-s "SIZE..."] [-b SIZE]
#    -n RUNS    snapshots per guest and size (default 5; env RUNS)
#    -s SIZES   disk sizes, IEC (default "256M 1G 4G"; env SIZES)
#    -b SIZE    the size of the detailed rbd-vs-file-cold table (default
#               1G; env BASE); measured too if it is not in SIZES
#  Environment: SF_BUILD (build dir with scheduler/ and worker/, default
#  ./build), CEPH_STORE (memstore|bluestore, see bench/README.md),
#  RBD_MODE (clone|export, default clone), STRATEGIES (default "file-cold
#  rbd"; add file-live for its rows; e.g. "rbd" alone for a quick look), SF_KEEP=1 (keep the scratch dir).
#  Needs root and the packages of tests/setup.sh, like the integration
#  tests. Notes and progress go to stderr.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
#  The whole run is bounded too (the watchdog of tests/lib.sh), but a 4 GiB
#  file-cold snapshot takes minutes on a loaded 2-core machine
export SF_TEST_TIMEOUT=${SF_TEST_TIMEOUT:-5400}
export SF_CLI_TIMEOUT=${SF_CLI_TIMEOUT:-1800}
# shellcheck source=../tests/lib.sh
. "$bench_dir/../tests/lib.sh"
# shellcheck source=../tests/lib/ceph.sh
. "$bench_dir/../tests/lib/ceph.sh"

RUNS=${RUNS:-5}
SIZES=${SIZES:-256M 1G 4G}
BASE=${BASE:-1G}
RBD_MODE=${RBD_MODE:-clone}
STRATEGIES=${STRATEGIES:-file-cold rbd}
usage () { sed -n '/^#  Usage:/,/^#  tests\. Notes/p' "$0" | sed 's/^#  \{0,1\}//'; }
while getopts 'n:s:b:h' opt; do
    case $opt in
        n) RUNS=$OPTARG ;;
        s) SIZES=$OPTARG ;;
        b) BASE=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "pause-bench: -n wants a positive integer" >&2; exit 2; }
#  The sizes to measure: SIZES, plus BASE if missing; bytes for sorting
declare -A bytes_of=()
for s in $SIZES $BASE; do
    b=$(numfmt --from=iec "$s" 2>/dev/null) || { echo "pause-bench: bad size '$s'" >&2; exit 2; }
    [ "$b" -ge $((16 << 20)) ] || { echo "pause-bench: size $s is below 16 MiB" >&2; exit 2; }
    bytes_of[$s]=$b
done
mapfile -t sizes < <(for s in "${!bytes_of[@]}"; do echo "${bytes_of[$s]} $s"; done |
    sort -n -k1,1 -u | awk '{print $2}')

sf_init pause-bench
sf_need_libvirt
sf_need ceph ceph-mon ceph-osd ceph-mgr ceph-authtool monmaptool rbd uuidgen jq
t_start=$(_sf_now_ms)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

cdir=$SF_TMP/ceph
sf_cleanup_push ceph_stop "$cdir"
ceph_start "$cdir" >/dev/null || sf_die "single-node Ceph did not start (logs in $cdir/log)"
sf_start_scheduler
sf_start_node n1
uri=$SF_NODE_URI
ceph_lv_secret "$uri" admin >/dev/null || sf_die "cannot define the ceph secret in $uri"
ceph_sf_worker n1 "$uri" "storage.rbd.mode=$RBD_MODE" pause.max_pause=30m

results=$SF_TMP/results        #  "SIZE STRATEGY PAUSE_MS CONVERT_MS UPLOAD_MS"
: >"$results"
failures=0

human ()   # BYTES -> "256 MiB", "4 GiB", "1.5 GiB"
{
    if [ $(($1 % (1 << 30))) = 0 ]; then
        echo "$(($1 >> 30)) GiB"
    elif [ $(($1 % (1 << 20))) = 0 ] && [ "$1" -lt $((1 << 30)) ]; then
        echo "$(($1 >> 20)) MiB"
    else
        numfmt --to=iec-i --suffix=B "$1" | sed 's/\([0-9]\)\([KMGT]\)/\1 \2/'
    fi
}

strategy_is ()   # NAME STRATEGY: the inventory shows NAME with STRATEGY
{
    sf_cli instances --format json |
        jq -e --arg n "$1" --arg s "$2" '.instances[] | select(.name == $n and .strategy == $s)'
}

#  snap NAME STRATEGY SIZE: one snapshot; appends to $results
snap ()
{
    local name=$1 strategy=$2 size=$3 out rc=0 path t
    #  Start every run with no dirty pages left by the one before (a
    #  file-cold run writes GiBs; the store fsyncs them, so this is short)
    t=$(_sf_now_ms)
    timeout 600 sync || sf_note "sync did not finish in 600 s"
    sf_note "sync before $name: $(($(_sf_now_ms) - t)) ms"
    t=$(_sf_now_ms)
    out=$(sf_cli snapshot --instance "$name" --strategy "$strategy" --wait --format json) || rc=$?
    if [ "$rc" != 0 ] || [ "$(jq -r '"\(.state) \(.strategy)"' <<<"$out" 2>/dev/null)" != "done $strategy" ]; then
        sf_note "run FAILED: $name (exit $rc): $(jq -c '{state, strategy, error}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
        failures=$((failures + 1))
        return 0
    fi
    jq -r --arg z "$size" '"\($z) \(.strategy) \(.pause_ms) \(.convert_ms) \(.upload_ms)"' <<<"$out" >>"$results"
    sf_note "$name $strategy: pause_ms $(jq -r .pause_ms <<<"$out") (job $(($(_sf_now_ms) - t)) ms)"
    #  Keep the scratch disk small: a 4 GiB file-cold image is 4 GiB
    for path in $(jq -r '.images[] | select(.store == "dir") | .path' <<<"$out"); do
        rm -f "$path" "${path%.qcow2}.json"
    done
}

for size in "${sizes[@]}"; do
    tag=${size,,}
    f=f-$tag
    r=r-$tag
    do_f=0
    do_r=0
    [[ " $STRATEGIES " != *" file-cold "* ]] || do_f=1
    do_l=0
    [[ " $STRATEGIES " != *" file-live "* ]] || do_l=1
    [[ " $STRATEGIES " != *" rbd "* ]] || do_r=1
    sf_note "== $size: booting $f (file, random base) and $r (thin RBD image) [$STRATEGIES]"
    if [ "$do_f" = 1 ] || [ "$do_l" = 1 ]; then
        sf_guest n1 "$f" --size "$size" || sf_die "guest $f did not boot"
    fi
    if [ "$do_r" = 1 ]; then
        ceph_rbd create --size "$((bytes_of[$size] >> 20))M" "rbd/$r" || sf_die "rbd create rbd/$r failed"
        ceph_lv_guest "$uri" "$r" "$SF_TMP/n1/vm" "rbd/$r" || sf_die "RBD guest $r did not boot"
    fi
    if [ "$do_f" = 1 ] || [ "$do_l" = 1 ]; then
        #  file-live is the default for it; file-cold is forced (snap)
        wait_for 60 strategy_is "$f" file-live >/dev/null || sf_die "$f never showed up with strategy file-live"
    fi
    if [ "$do_r" = 1 ]; then
        wait_for 60 strategy_is "$r" rbd >/dev/null || sf_die "$r never showed up with strategy rbd"
    fi
    for ((i = 1; i <= RUNS; i++)); do
        [ "$do_f" = 0 ] || snap "$f" file-cold "$size"
        [ "$do_l" = 0 ] || snap "$f" file-live "$size"
        [ "$do_r" = 0 ] || snap "$r" rbd "$size"
    done
    #  Two fewer TCG guests for the next size
    sf_virsh n1 destroy "$f" >/dev/null || true
    sf_virsh n1 destroy "$r" >/dev/null || true
done

#  ---------------------------------------------------------------------
#  The tables

#  stats SIZE STRATEGY COLUMN: "n median min max" of COLUMN (3 = pause_ms)
stats ()
{
    awk -v z="$1" -v s="$2" -v c="$3" '$1 == z && $2 == s { print $c }' "$results" | sort -n |
        awk '{ v[NR] = $1 }
             END {
                 if (NR == 0) { print "0 - - -"; exit }
                 m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
                 print NR, m, v[1], v[NR]
             }'
}

ratio ()
{
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-") print "-"
        else if (b == 0) print "inf"
        else printf "%.1fx\n", a / b }'
}

date_s=$(date '+%Y-%m-%d %H:%M')
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "snapfleet pause benchmark, $date_s, $(nproc) cores, load $load0 -> $load1"
echo "strategy rbd: [storage.rbd] mode $RBD_MODE, Ceph ${CEPH_STORE:-memstore}, thin RBD images;"
echo "strategy file-cold: qcow2 overlay on a raw base of random data; TCG guests writing records"
echo "pause_ms = the job's pause_ms (suspend call start -> resume call return), as the CLI reports it"
echo
read -r fn fm fmin fmax <<<"$(stats "$BASE" file-cold 3)"
read -r rn rm rmin rmax <<<"$(stats "$BASE" rbd 3)"
echo "Pause per snapshot, $(human "${bytes_of[$BASE]}") disk, median of $RUNS runs"
printf '%-10s %5s %10s %8s %8s\n' strategy runs median_ms min_ms max_ms
printf '%-10s %5s %10s %8s %8s\n' file-cold "$fn" "$fm" "$fmin" "$fmax"
printf '%-10s %5s %10s %8s %8s\n' rbd "$rn" "$rm" "$rmin" "$rmax"
echo "ratio file-cold/rbd (medians): $(ratio "$fm" "$rm")"
echo
echo "Pause by disk size, median (min-max) pause_ms of $RUNS runs each"
printf '%-9s %-24s %-18s %8s %14s\n' size file-cold rbd ratio file-cold_conv
for size in "${sizes[@]}"; do
    read -r fn fm fmin fmax <<<"$(stats "$size" file-cold 3)"
    read -r rn rm rmin rmax <<<"$(stats "$size" rbd 3)"
    read -r _ cm _ _ <<<"$(stats "$size" file-cold 4)"
    fcell="$fm ($fmin-$fmax)"
    rcell="$rm ($rmin-$rmax)"
    [ "$fn" != 0 ] || fcell=-
    [ "$rn" != 0 ] || rcell=-
    printf '%-9s %-24s %-18s %8s %14s\n' "$(human "${bytes_of[$size]}")" \
        "$fcell" "$rcell" "$(ratio "$fm" "$rm")" "$cm"
done
echo
echo "(file-cold_conv: median convert_ms of file-cold; its pause includes the convert.)"
if [[ " $STRATEGIES " == *" file-live "* ]]; then
    echo
    echo "file-live by disk size, median (min-max) of $RUNS runs: pause_ms (0 = never paused;"
    echo "a freeze where an agent answers), copy_ms (backup, guest running), upload_ms"
    printf '%-9s %-18s %-20s %10s %10s\n' size file-live_pause file-cold/file-live copy_ms upload_ms
    for size in "${sizes[@]}"; do
        read -r ln lm lmin lmax <<<"$(stats "$size" file-live 3)"
        read -r _ fm _ _ <<<"$(stats "$size" file-cold 3)"
        read -r _ lc _ _ <<<"$(stats "$size" file-live 4)"
        read -r _ lu _ _ <<<"$(stats "$size" file-live 5)"
        lcell="$lm ($lmin-$lmax)"
        [ "$ln" != 0 ] || lcell=-
        printf '%-9s %-18s %-20s %10s %10s\n' "$(human "${bytes_of[$size]}")" "$lcell" \
            "$(ratio "$fm" "$lm")" "$lc" "$lu"
    done
fi
[ "$failures" = 0 ] || echo "$failures run(s) failed and are not counted (see the notes on stderr)"
echo "total $(( ($(_sf_now_ms) - t_start) / 1000 )) s"
[ "$STRATEGIES" = "file-cold rbd" ] || strat="STRATEGIES=\"$STRATEGIES\" "
echo "reproduce: SF_BUILD=$SF_BUILD ${CEPH_STORE:+CEPH_STORE=$CEPH_STORE }${strat:-}RBD_MODE=$RBD_MODE bench/pause-bench.sh -n $RUNS -s \"$SIZES\" -b $BASE"
#  lib.sh's EXIT trap stops everything by recorded pid and removes $SF_TMP
exit 0
