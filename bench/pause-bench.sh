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
#  Usage: bench/pause-bench.sh [-n RUNS] [-s "SIZE..."] [-b SIZE] [-r]
#    -n RUNS    snapshots per guest and size (default 5; env RUNS)
#    -s SIZES   disk sizes, IEC (default "256M 1G 4G"; env SIZES)
#    -b SIZE    the size of the detailed rbd-vs-file-cold table (default
#               1G; env BASE); measured too if it is not in SIZES
#    -r         the RBD rows too (env RBD_ROWS=1)
#  With RBD_ROWS=1 (or -r) it also measures the RBD rows (rbd_rows_*
#  below): the rbd pause on a second pair of clusters, the monitor tuned
#  (paxos propose interval 0.01 s, as the tests run) and as shipped (1 s,
#  what a real cluster runs), with 1 and 4 RBD disks per guest, one guest
#  alone and eight at once (one bulk); RBD_ROWS_SIZE (default 64M) per disk.
#  STRATEGIES=none with RBD_ROWS=1 measures only those rows. With the
#  monitor as shipped it also measures the backup path for RBD disks
#  ([storage.rbd] snapshot = backup: libvirt's push backup into the image
#  store, as file-live): pause_ms and the job's total time of one guest
#  alone, beside the snapshot path's, for 1 and 4 disks. RBD_ROWS_MONS
#  (default "tuned default") picks the monitors; RBD_ROWS_ALONE=1 boots one
#  guest per row and skips the eight-at-once bulks; RBD_ROWS_FILL=1 fills
#  every RBD disk with random data (rbd import) instead of a thin image, so
#  the backup path has the bytes to copy.
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
RBD_ROWS=${RBD_ROWS:-0}
RBD_ROWS_SIZE=${RBD_ROWS_SIZE:-64M}
RBD_ROWS_MONS=${RBD_ROWS_MONS:-tuned default}
RBD_ROWS_ALONE=${RBD_ROWS_ALONE:-0}
RBD_ROWS_FILL=${RBD_ROWS_FILL:-0}
while getopts 'n:s:b:rh' opt; do
    case $opt in
        r) RBD_ROWS=1 ;;
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
#  RBD rows (RBD_ROWS=1): the rbd pause with the monitor tuned and as
#  shipped, 1 and 4 disks, one guest alone and eight at once. Each monitor
#  setting gets its own cluster, libvirtd (node rt or rd) and worker
#  (max_jobs 8), so nothing of the rows above is shared.

rbd_rows_results=$SF_TMP/rbd-rows    #  "MON DISKS alone|eight PAUSE_MS"
: >"$rbd_rows_results"
rbd_path_results=$SF_TMP/rbd-paths   #  "DISKS snapshot|backup PAUSE_MS TOTAL_MS" (as shipped)
: >"$rbd_path_results"
declare -A rbd_rows_settings=()      #  MON -> what the mon reported

#  The guests of a row: 1..8, or 1 alone with RBD_ROWS_ALONE=1
rbd_rows_ids () { if [ "$RBD_ROWS_ALONE" = 1 ]; then echo 1; else echo 1 2 3 4 5 6 7 8; fi; }

#  rbd_rows_alone PATH MON PREFIX DISKS: RUNS snapshots of PREFIX1 alone;
#  pause_ms into the rows, and with the monitor as shipped pause_ms and the
#  job's wall time (snapshot --wait) into the path rows
rbd_rows_alone ()
{
    local path=$1 mon=$2 prefix=$3 disks=$4 i out rc t total
    for ((i = 1; i <= RUNS; i++)); do
        rc=0
        t=$(_sf_now_ms)
        out=$(sf_cli snapshot --instance "${prefix}1" --wait --format json) || rc=$?
        total=$(($(_sf_now_ms) - t))
        if [ "$rc" != 0 ] || [ "$(jq -r .state <<<"$out")" != "done" ]; then
            sf_note "rbd row run FAILED ($path): ${prefix}1: $(jq -c '{state, error}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
            failures=$((failures + 1))
            continue
        fi
        [ "$path" = backup ] || echo "$mon $disks alone $(jq -r .pause_ms <<<"$out")" >>"$rbd_rows_results"
        [ "$mon" != default ] ||
            echo "$disks $path $(jq -r .pause_ms <<<"$out") $total" >>"$rbd_path_results"
        sf_note "$mon $disks disk(s) alone, $path path: pause_ms $(jq -r .pause_ms <<<"$out"), $total ms in all, method $(jq -r .method <<<"$out") ($(jq -r '.note // "no note"' <<<"$out"))"
    done
}

#  rbd_rows_guests NODE URI PREFIX DISKS: boot PREFIX1..8, each with DISKS
#  thin RBD disks of RBD_ROWS_SIZE on $CEPH_CONF's cluster
rbd_rows_guests ()
{
    local node=$1 uri=$2 prefix=$3 disks=$4 i k name mib
    local -a more devs=(vda vdb vdc vdd vde vdf vdg vdh)
    mib=$(($(numfmt --from=iec "$RBD_ROWS_SIZE") >> 20))
    [ "$RBD_ROWS_FILL" != 1 ] || [ -s "$SF_TMP/fill.raw" ] ||
        head -c "$((mib << 20))" /dev/urandom >"$SF_TMP/fill.raw"
    for i in $(rbd_rows_ids); do
        name=$prefix$i
        more=()
        for k in $(seq 0 $((disks - 1))); do
            if [ "$RBD_ROWS_FILL" = 1 ]; then
                ceph_import "$SF_TMP/fill.raw" "rbd/$name-$k" || sf_die "rbd import rbd/$name-$k failed"
            else
                ceph_rbd create --size "${mib}M" "rbd/$name-$k" || sf_die "rbd create rbd/$name-$k failed"
            fi
            [ "$k" = 0 ] || more+=(--rbd-disk "${devs[$k]}=rbd/$name-$k")
        done
        #  Paced guests leave the 2 cores to the next boots; 8 TCG boots at
        #  load 20+ take up to a minute or two each
        LV_GUEST_PACE_MS=${LV_GUEST_PACE_MS:-100} LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-300} \
            ceph_lv_guest "$uri" "$name" "$SF_TMP/$node/vm" "rbd/$name-0" "${more[@]}" ||
            sf_die "RBD guest $name did not boot"
    done
    for i in $(rbd_rows_ids); do
        wait_for 60 strategy_is "$prefix$i" rbd >/dev/null ||
            sf_die "$prefix$i never showed up with strategy rbd"
    done
}

#  rbd_rows_measure MON NODE PREFIX DISKS: RUNS snapshots of PREFIX1
#  alone, then RUNS bulks of all eight at once; pause_ms of every job
rbd_rows_measure ()
{
    local mon=$1 node=$2 prefix=$3 disks=$4 i out rc id t bulk
    local -a names=()
    for i in 1 2 3 4 5 6 7 8; do names+=(--instance "$prefix$i"); done
    rbd_rows_alone snapshot "$mon" "$prefix" "$disks"
    [ "$RBD_ROWS_ALONE" = 1 ] && return 0
    for ((i = 1; i <= RUNS; i++)); do
        rc=0
        t=$(_sf_now_ms)
        #  JSON lines as it goes, the last one {"event":"done","bulk":...}
        out=$(sf_cli snapshot "${names[@]}" --wait --format json | tail -n 1) || rc=$?
        bulk=$(jq -r '.bulk.bulk_id // empty' <<<"$out" 2>/dev/null || true)
        sf_note "$mon $disks disk(s), eight at once: bulk ${bulk:-?} in $(($(_sf_now_ms) - t)) ms (exit $rc)"
        if [ -z "$bulk" ] || ! out=$(sf_cli bulk show "$bulk" --jobs --format json); then
            sf_note "rbd row bulk FAILED: $out"
            failures=$((failures + 1))
            continue
        fi
        for id in $(jq -r '.jobs[]? | .job_id' <<<"$out"); do
            out=$(sf_cli job show "$id" --format json) || true
            if [ "$(jq -r .state <<<"$out" 2>/dev/null)" != "done" ]; then
                sf_note "rbd row job FAILED: $id: $(jq -c '{state, error}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
                failures=$((failures + 1))
                continue
            fi
            echo "$mon $disks eight $(jq -r .pause_ms <<<"$out")" >>"$rbd_rows_results"
        done
    done
}

#  rbd_rows MON: one cluster with CEPH_PAXOS=MON, its node and worker, the
#  1-disk then the 4-disk guests; stops the cluster when done
rbd_rows ()
{
    local mon=$1 disks ruri
    local dir=$SF_TMP/c-$mon node=r${mon:0:1}
    sf_note "== RBD rows, monitor $mon: starting its cluster"
    sf_cleanup_push ceph_stop "$dir"
    CEPH_PAXOS=$mon ceph_start "$dir" >/dev/null || sf_die "Ceph ($mon monitor) did not start"
    rbd_rows_settings[$mon]=$(ceph_paxos "$dir") || sf_die "cannot ask the $mon mon for paxos"
    sf_start_node "$node"
    ruri=$SF_NODE_URI
    ceph_lv_secret "$ruri" admin >/dev/null || sf_die "cannot define the ceph secret in $ruri"
    ceph_sf_worker "$node" "$ruri" storage.rbd.mode=clone worker.max_jobs=8 pause.max_pause=30m
    for disks in 1 4; do
        rbd_rows_guests "$node" "$ruri" "m$disks$mon-" "$disks"
        rbd_rows_measure "$mon" "$node" "m$disks$mon-" "$disks"
        if [ "$mon" = default ]; then
            #  The backup path on the same guest: a worker with snapshot = backup
            sf_stop_pid "$SF_TMP/worker-$node.pid" || true
            ceph_sf_worker "$node" "$ruri" storage.rbd.mode=clone worker.max_jobs=8 \
                pause.max_pause=30m storage.rbd.snapshot=backup
            rbd_rows_alone backup "$mon" "m$disks$mon-" "$disks"
            sf_stop_pid "$SF_TMP/worker-$node.pid" || true
            ceph_sf_worker "$node" "$ruri" storage.rbd.mode=clone worker.max_jobs=8 \
                pause.max_pause=30m
        fi
        for i in $(rbd_rows_ids); do sf_virsh "$node" destroy "m$disks$mon-$i" >/dev/null || true; done
    done
    sf_stop_pid "$SF_TMP/worker-$node.pid" || true
    ceph_stop "$dir" || true
}

#  rbd_rows_table: the table of the RBD rows
rbd_rows_table ()
{
    local mon disks how cell
    echo "RBD pause by monitor, disks per guest and guests at once: median (min-max) pause_ms"
    echo "(alone: $RUNS snapshots of one guest; 8 at once: $RUNS bulks of 8 guests, every job;"
    echo " $([ "$RBD_ROWS_FILL" = 1 ] && echo filled || echo thin) $RBD_ROWS_SIZE RBD disks, mode clone, no guest agent: the guest is paused)"
    printf '%-8s %-6s %-24s %-24s\n' monitor disks alone "8 at once"
    for mon in $RBD_ROWS_MONS; do
        for disks in 1 4; do
            printf '%-8s %-6s' "$mon" "$disks"
            for how in alone eight; do
                cell=$(awk -v m="$mon" -v d="$disks" -v h="$how" \
                       '$1 == m && $2 == d && $3 == h { print $4 }' "$rbd_rows_results" | sort -n |
                       awk '{ v[NR] = $1 } END {
                                if (NR == 0) { print "-"; exit }
                                m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
                                printf "%d (%d-%d) n=%d\n", m, v[1], v[NR], NR }')
                printf ' %-24s' "$cell"
            done
            printf '\n'
        done
    done
    for mon in $RBD_ROWS_MONS; do
        echo "monitor $mon: ${rbd_rows_settings[$mon]:-not measured}"
    done
    echo "(a real cluster runs the default monitor: a snapshot waits for its next batch, up to 1 s)"
    [ -s "$rbd_path_results" ] || return 0
    local path field
    echo
    echo "RBD disks, monitor as shipped, one guest alone, no agent: snapshot path ([storage.rbd]"
    echo "snapshot = rbd: clone, nothing copied) versus backup path (snapshot = backup: push"
    echo "backup into the image store); median (min-max) of $RUNS runs"
    printf '%-6s %-9s %-22s %-22s\n' disks path pause_ms total_ms
    for disks in 1 4; do
        for path in snapshot backup; do
            printf '%-6s %-9s' "$disks" "$path"
            for field in 3 4; do
                cell=$(awk -v d="$disks" -v p="$path" -v f="$field" \
                       '$1 == d && $2 == p { print $f }' "$rbd_path_results" | sort -n |
                       awk '{ v[NR] = $1 } END {
                                if (NR == 0) { print "-"; exit }
                                m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
                                printf "%d (%d-%d)\n", m, v[1], v[NR] }')
                printf ' %-22s' "$cell"
            done
            printf '\n'
        done
    done
}

if [ "$RBD_ROWS" = 1 ]; then
    #  The rows above are done: their guests would only slow these down
    for name in $(sf_virsh n1 list --name 2>/dev/null); do
        sf_virsh n1 destroy "$name" >/dev/null || true
    done
    for mon in $RBD_ROWS_MONS; do
        rbd_rows "$mon"
    done
fi

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
if [ "$RBD_ROWS" = 1 ]; then
    echo
    rbd_rows_table
fi
[ "$failures" = 0 ] || echo "$failures run(s) failed and are not counted (see the notes on stderr)"
echo "total $(( ($(_sf_now_ms) - t_start) / 1000 )) s"
[ "$STRATEGIES" = "file-cold rbd" ] || strat="STRATEGIES=\"$STRATEGIES\" "
[ "$RBD_ROWS" != 1 ] || rows=" -r"
[ "$RBD_ROWS" != 1 ] || rbd_env="RBD_ROWS_SIZE=$RBD_ROWS_SIZE RBD_ROWS_MONS=\"$RBD_ROWS_MONS\" RBD_ROWS_ALONE=$RBD_ROWS_ALONE RBD_ROWS_FILL=$RBD_ROWS_FILL "
echo "reproduce: SF_BUILD=$SF_BUILD ${CEPH_STORE:+CEPH_STORE=$CEPH_STORE }${strat:-}${rbd_env:-}RBD_MODE=$RBD_MODE bench/pause-bench.sh -n $RUNS -s \"$SIZES\" -b $BASE${rows:-}"
#  lib.sh's EXIT trap stops everything by recorded pid and removes $SF_TMP
exit 0
