#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#  bench/scale-bench.sh: the scheduler at fleet scale, against a SIMULATED
#  hypervisor backend (bench/sf_simfleet: one process, N simulated worker
#  nodes, each with its own ZeroMQ connection; sizes and durations scaled
#  by 1/SCALE (default 1/256), see bench/README.md).
#
#  Starts the real snapfleet-scheduler (config and database in a scratch
#  dir, endpoints on free loopback ports) and sf_simfleet, waits for every
#  node and inventory, then runs two scenarios, each with a fresh scheduler
#  and database:
#    a) no limit binding: `snapfleet snapshot --all`; dispatch throughput
#       (JobAssigns received by the simulator per second, first to last)
#       and completion throughput;
#    b) limits binding (LIMITS_B): makespan against its lower bound, the
#       highest concurrency seen per limit (from the simulator's side), and
#       the scheduler's peak RSS (VmHWM).
#  Prints a figures table on stdout and writes OUT/timeline.png (gnuplot):
#  paused guests and active uploads over time in scenario b, the limits
#  drawn as lines.
#
#  Usage: bench/scale-bench.sh [--nodes N] [--instances-per-node M]
#             [--scenario a|b|ab] [--out DIR] [--perf] [--seed S] [--scale S]
#    --nodes N                 simulated nodes (default 1000)
#    --instances-per-node M    instances per node (default 100)
#    --scenario a|b|ab         which scenarios (default ab)
#    --out DIR                 CSVs, summaries, PNG (default bench/out)
#    --perf                    perf record the scheduler during each scenario
#    --seed S                  seed of the simulated fleet (default 1)
#    --scale S                 sizes and durations of the model divided by S
#                              (default 256: 1 s here is ~4 min modelled; 1024
#                              runs 4x faster but the scheduler's ms of
#                              latency weigh 4x more against each job)
#  Smoke test in about a minute: --nodes 50 --instances-per-node 20
#  Environment: SF_BUILD (build dir, default ./build, Release recommended:
#  no sanitizers), LIMITS_B (scenario b's [limits], "key=value ..."),
#  MAX_JOBS_B (Hello.max_jobs in b, default 4), SF_KEEP=1 (keep the
#  scratch dir), BENCH_TIMEOUT (seconds without progress before giving up,
#  default 120). Notes go to stderr, the table to stdout.
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
export SF_TEST_TIMEOUT=${SF_TEST_TIMEOUT:-3600}
export SF_CLI_TIMEOUT=${SF_CLI_TIMEOUT:-1800}
# shellcheck source=../tests/lib.sh
. "$bench_dir/../tests/lib.sh"

NODES=1000
PER_NODE=100
SCENARIOS=ab
OUT=$bench_dir/out
PERF=0
SEED=1
SCALE=256
LIMITS_B=${LIMITS_B:-max_paused=50 max_paused_per_node=2 max_snap_ops=4 max_uploads=100 max_uploads_per_node=2 bandwidth=24G bandwidth_per_node=400M bandwidth_per_store=3G}
MAX_JOBS_B=${MAX_JOBS_B:-4}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
usage () { sed -n '/^#  Usage:/,/^#  default 120)/p' "$0" | sed 's/^#  \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) NODES=${2:?}; shift 2 ;;
        --instances-per-node) PER_NODE=${2:?}; shift 2 ;;
        --scenario) SCENARIOS=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --perf) PERF=1; shift ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --scale) SCALE=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
for v in "$NODES" "$PER_NODE" "$SEED" "$SCALE"; do
    if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
        echo "scale-bench: '$v' is not a positive integer" >&2
        exit 2
    fi
done
[[ $SCENARIOS =~ ^(a|b|ab)$ ]] || { echo "scale-bench: --scenario a, b or ab" >&2; exit 2; }
TOTAL=$((NODES * PER_NODE))

sf_init scale-bench
sf_need jq
sf_need_built bench/sf_simfleet scheduler/snapfleet-scheduler scheduler/snapfleet
if ! command -v gnuplot >/dev/null 2>&1; then
    sf_note "gnuplot is missing: installing gnuplot-nox"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >&2 ||
        sf_note "cannot install gnuplot-nox: no timeline.png"
fi
[ "$PERF" = 0 ] || sf_need perf
mkdir -p "$OUT"
#  A socket per simulated node, in the simulator and in the scheduler
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((NODES * 2 + 256)) ] ||
    sf_note "only $(ulimit -n) file descriptors for $NODES nodes: raise the hard limit"
sf_note "$NODES simulated nodes x $PER_NODE instances = $TOTAL; load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A fig=()

#  "k=v k=v" -> scheduler.conf items (limits.k=v) / sf_simfleet --limits k=v,k=v
conf_items () { local kv; for kv in $1; do printf 'limits.%s\n' "$kv"; done; }
limit_of () { local kv; for kv in $1; do [ "${kv%%=*}" = "$2" ] && { printf '%s\n' "${kv#*=}"; return; }; done; printf '0\n'; }
status_of () { jq -r "$2" "$SF_TMP/status-$1.json" 2>/dev/null || echo 0; }
now_ms () { _sf_now_ms; }
# shellcheck disable=SC2317  # called through wait_for
all_inventories () { [ "$(status_of "$1" .inventories)" -ge "$NODES" ]; }
vm_hwm () { awk '/^VmHWM:/ {print $2 * 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

#  The instances the scheduler has from up nodes; 0 while it is too busy
#  storing inventories to answer
sched_instances ()
{
    local json
    if json=$(sf_cli --timeout 30 nodes --format json 2>/dev/null); then
        jq '[.nodes[] | select(.state == "up") | .instances] | add // 0' <<<"$json"
    else
        echo 0
    fi
}

#  run_scenario NAME MAX_JOBS "LIMITS" [SF_SIMFLEET_ARGS...]
run_scenario ()
{
    local name=$1 max_jobs=$2 limits=$3 t0 t1=0 pid last progress stalled results
    shift 3
    local -a items
    mapfile -t items < <(conf_items "$limits")
    sf_note "scenario $name: limits '${limits:-none}', max_jobs $max_jobs"
    mkdir -p "$SF_TMP/db-$name"
    #  sf_simfleet speaks plaintext: the scheduler runs with insecure = true
    #  (loopback only), so these figures do not include CURVE's cost
    sf_start_scheduler "scheduler.database=$SF_TMP/db-$name/scheduler.db" \
        scheduler.heartbeat=1s scheduler.node_timeout=60s log.level=warning \
        security.insecure=true "${items[@]}"
    pid=$(sf_pid scheduler)
    sf_spawn "simfleet-$name" "$SF_BUILD/bench/sf_simfleet" --endpoint "$SF_SCHED_BIND" \
        --nodes "$NODES" --instances "$PER_NODE" --seed "$SEED" --scale "$SCALE" --max-jobs "$max_jobs" \
        --limits "$(tr ' ' , <<<"$limits")" --timeline "$OUT/timeline-$name.csv" \
        --summary "$OUT/summary-$name.json" --status "$SF_TMP/status-$name.json" "$@"
    t0=$(now_ms)
    wait_for 300 all_inventories "$name" ||
        sf_die "the simulated nodes did not all say hello (log $SF_TMP/simfleet-$name.log)"
    #  Inventories are stored one transaction each: wait until all are in
    last=-1
    while :; do
        progress=$(sched_instances)
        [ "$progress" -ge "$TOTAL" ] && break
        [ "$progress" = "$last" ] && [ $(($(now_ms) - t1)) -gt 60000 ] &&
            sf_die "the scheduler has $progress of $TOTAL instances after 60 s without progress"
        [ "$progress" != "$last" ] && { last=$progress; t1=$(now_ms); }
        sleep 1
    done
    fig[${name}_connect_s]=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN {printf "%.1f", ms / 1000}')
    sf_note "scenario $name: $NODES nodes and $TOTAL instances in the scheduler after ${fig[${name}_connect_s]} s"
    if [ "$PERF" = 1 ]; then
        sf_spawn "perf-$name" perf record -g -o "$OUT/perf-$name.data" -p "$pid"
    fi
    t1=$(now_ms)
    #  One request creates every job: give the scheduler time to answer
    sf_cli --timeout 900 snapshot --all --format json >"$SF_TMP/bulk-$name.json" \
        2>"$SF_TMP/bulk-$name.err" ||
        sf_die "snapshot --all failed: $(head -c 400 "$SF_TMP/bulk-$name.err")"
    fig[${name}_create_s]=$(awk -v ms=$(($(now_ms) - t1)) 'BEGIN {printf "%.2f", ms / 1000}')
    sf_note "scenario $name: bulk $(jq -r '.bulk_id // .bulk.bulk_id // "?"' "$SF_TMP/bulk-$name.json") created in ${fig[${name}_create_s]} s"
    #  Until every job has a result at the simulator (the truth)
    last=-1
    stalled=$(now_ms)
    while :; do
        results=$(( $(status_of "$name" .results_ok) + $(status_of "$name" .results_failed) ))
        [ "$results" -ge "$TOTAL" ] && break
        if [ "$results" != "$last" ]; then
            last=$results
            stalled=$(now_ms)
        elif [ $(($(now_ms) - stalled)) -gt $((BENCH_TIMEOUT * 1000)) ]; then
            sf_note "scenario $name: no result for ${BENCH_TIMEOUT}s at $results of $TOTAL"
            sf_cli bulks --format json 2>/dev/null | head -c 2000 >&2 || true
            break
        fi
        sleep 0.5
    done
    fig[${name}_wall_s]=$(awk -v ms=$(($(now_ms) - t1)) 'BEGIN {printf "%.1f", ms / 1000}')
    fig[${name}_rss]=$(vm_hwm "$pid")
    [ "$PERF" = 1 ] && sf_stop_pid "$SF_TMP/perf-$name.pid" 30
    sf_stop_pid "$SF_TMP/simfleet-$name.pid" 30 ||
        sf_note "sf_simfleet exited with $SF_LAST_STATUS (log $SF_TMP/simfleet-$name.log)"
    sf_stop_pid "$SF_TMP/scheduler.pid" 60 ||
        sf_note "the scheduler exited with $SF_LAST_STATUS (log $SF_TMP/scheduler.log)"
    cp "$SF_TMP/scheduler.log" "$OUT/scheduler-$name.log" 2>/dev/null || true
    [ -s "$OUT/summary-$name.json" ] || sf_die "no summary from sf_simfleet (log $SF_TMP/simfleet-$name.log)"
}

#  jq on a scenario's summary
sum () { jq -r "$2" "$OUT/summary-$1.json"; }
#  seconds, 2 decimals, from a summary's ms field
secs () { sum "$1" "$2" | awk '{printf "%.2f\n", $1 / 1000}'; }
mib_of () { printf "%s\n" $(( $1 / 1048576 )); }
mib () { awk -v b="$1" 'BEGIN {printf "%.0f MiB/s", b / 1048576}'; }

if [[ $SCENARIOS == *a* ]]; then
    #  Scratch for every job at once: nothing may bind
    run_scenario a "$PER_NODE" "" --scratch 1T
fi
if [[ $SCENARIOS == *b* ]]; then
    run_scenario b "$MAX_JOBS_B" "$LIMITS_B"
fi

#  ----------------------------------------------------------------------
#  Figures
{
    printf 'snapfleet scale benchmark: %d SIMULATED nodes x %d instances = %d jobs per scenario, scale 1/%d\n' \
        "$NODES" "$PER_NODE" "$TOTAL" "$SCALE"
    printf 'machine: %s cores, load %s; build %s\n\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$SF_BUILD"
    printf '%-46s %24s %-28s %s\n' figure measured target verdict
    row () { printf '%-46s %24s %-28s %s\n' "$1" "$2" "$3" "$4"; }
    verdict () { if awk "BEGIN {exit !($1)}"; then echo ok; else echo MISSED; fi; }
    if [[ $SCENARIOS == *a* ]]; then
        d=$(sum a .dispatch_jobs_per_s)
        row "a: dispatch (JobAssigns/s, first..last)" "$d" ">= 20000" "$(verdict "$d >= 20000")"
        row "a: completion (results/s)" "$(sum a .completion_jobs_per_s)" "" ""
        row "a: jobs ok / failed / assigned" "$(sum a '"\(.results_ok)/\(.results_failed)/\(.assigns)"')" "$TOTAL" \
            "$(verdict "$(sum a .results_ok) == $TOTAL")"
        row "a: snapshot --all answered in (s)" "${fig[a_create_s]}" "" ""
        row "a: makespan (s, first assign..last result)" "$(secs a .makespan_ms)" "" ""
        row "a: scheduler RSS (VmHWM, MiB)" "$(mib_of "${fig[a_rss]}")" "< 1024" "$(verdict "${fig[a_rss]} < 1073741824")"
    fi
    if [[ $SCENARIOS == *b* ]]; then
        r=$(sum b .makespan_over_bound)
        row "b: makespan (s)" "$(secs b .makespan_ms)" "" ""
        row "b: lower bound (s), bound by" "$(secs b .lower_bound_ms)" "" "$(sum b .bound_by)"
        row "b: makespan / lower bound" "$r" "<= 1.05" "$(verdict "$r > 0 && $r <= 1.05")"
        row "b: jobs ok / failed / assigned" "$(sum b '"\(.results_ok)/\(.results_failed)/\(.assigns)"')" "$TOTAL" \
            "$(verdict "$(sum b .results_ok) == $TOTAL")"
        for pair in max_paused:paused max_paused_per_node:paused_per_node \
                    max_snap_ops:snap_ops_per_cluster max_uploads:uploads \
                    max_uploads_per_node:uploads_per_node max_uploads_per_store:uploads_per_store; do
            key=${pair%%:*}
            lim=$(limit_of "$LIMITS_B" "$key")
            seen=$(sum b ".max.${pair#*:}")
            if [ "$lim" = 0 ]; then
                row "b: highest ${pair#*:} (no $key)" "$seen" "-" ""
            else
                v=MISSED
                [ "$seen" -eq "$lim" ] && v=ok
                [ "$seen" -lt "$lim" ] && v="not reached"
                [ "$seen" -gt "$lim" ] && v="EXCEEDED"
                row "b: highest ${pair#*:}" "$seen" "= $key $lim" "$v"
            fi
        done
        for key in bandwidth bandwidth_per_node bandwidth_per_store; do
            lim=$(limit_of "$LIMITS_B" "$key")
            seen=$(sum b ".max.$key")
            granted=$(sum b ".max.granted${key#bandwidth}")
            lb=$(numfmt --from=iec "$lim")
            v="-"
            [ "$lb" -gt 0 ] && v=$(verdict "$granted <= $lb * 1.0001")
            row "b: highest $key used (granted)" "$(mib "$seen") ($(mib "$granted"))" "<= $lim/s" "$v"
        done
        row "b: highest jobs on one node" "$(sum b .max.jobs_per_node)" "<= $MAX_JOBS_B" \
            "$(verdict "$(sum b .max.jobs_per_node) <= $MAX_JOBS_B")"
        row "b: scratch overcommit (bytes)" "$(sum b .max.scratch_overcommit)" "0" \
            "$(verdict "$(sum b .max.scratch_overcommit) == 0")"
        row "b: scheduler RSS (VmHWM, MiB)" "$(mib_of "${fig[b_rss]}")" "< 1024" "$(verdict "${fig[b_rss]} < 1073741824")"
    fi
    printf '\nsummaries, timelines: %s\n' "$OUT"
    printf 'reproduce: SF_BUILD=%s %s --nodes %d --instances-per-node %d --scenario %s --seed %d --scale %d\n' \
        "$SF_BUILD" "$0" "$NODES" "$PER_NODE" "$SCENARIOS" "$SEED" "$SCALE"
} | tee "$OUT/figures.txt"

#  ----------------------------------------------------------------------
#  Timeline picture (scenario b, or a if b was not run)
plot=b
[[ $SCENARIOS == *b* ]] || plot=a
if command -v gnuplot >/dev/null 2>&1 && [ -s "$OUT/timeline-$plot.csv" ]; then
    limits=$LIMITS_B
    [ "$plot" = b ] || limits=""
    mp=$(limit_of "$limits" max_paused)
    mu=$(limit_of "$limits" max_uploads)
    bw=$(numfmt --from=iec "$(limit_of "$limits" bandwidth)")
    gnuplot <<EOF || sf_note "gnuplot failed: no timeline.png"
set terminal pngcairo size 1200,900 font ",10" noenhanced
set offsets 0, 0, graph 0.12, 0
set output "$OUT/timeline.png"
set datafile separator ","
set key top right
set grid
set multiplot layout 3,1 title "snapfleet scale benchmark, scenario $plot: $TOTAL jobs on $NODES SIMULATED nodes (sf_simfleet's view)"
set xlabel "time since the first JobAssign (s; scaled 1/$SCALE: 1 s here is $(awk -v s="$SCALE" 'BEGIN { printf "%.1f", s / 60 }') min of the modelled fleet)"
set ylabel "paused guests"
plot "$OUT/timeline-$plot.csv" using (\$1/1000):2 every ::1 with steps lw 1 lc rgb "#1f77b4" title "paused", \
     ($mp > 0 ? $mp : 1/0) with lines lw 2 dt 2 lc rgb "#d62728" title "max_paused $mp"
set ylabel "active uploads"
plot "$OUT/timeline-$plot.csv" using (\$1/1000):3 every ::1 with steps lw 1 lc rgb "#2ca02c" title "uploads", \
     ($mu > 0 ? $mu : 1/0) with lines lw 2 dt 2 lc rgb "#d62728" title "max_uploads $mu"
set ylabel "bandwidth (GiB/s)"
plot "$OUT/timeline-$plot.csv" using (\$1/1000):(\$4/1073741824) every ::1 with steps lw 1 lc rgb "#9467bd" title "bytes moving", \
     "$OUT/timeline-$plot.csv" using (\$1/1000):(\$5/1073741824) every ::1 with steps lw 1 lc rgb "#ff7f0e" title "granted", \
     ($bw > 0 ? $bw/1073741824. : 1/0) with lines lw 2 dt 2 lc rgb "#d62728" title "bandwidth"
unset multiplot
EOF
    [ -s "$OUT/timeline.png" ] && sf_note "wrote $OUT/timeline.png"
fi
if [ "$PERF" = 1 ]; then
    for s in a b; do
        [ -s "$OUT/perf-$s.data" ] || continue
        perf report -i "$OUT/perf-$s.data" --no-children --percent-limit 1.5 --stdio \
            2>/dev/null | grep -v '^$' | head -60 >"$OUT/perf-$s.txt" || true
        sf_note "scheduler profile of scenario $s: $OUT/perf-$s.txt"
    done
fi
exit 0
