# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR
#  tests/lib.sh: sourced by every tests/tNNNN-*.sh (git t/ style).
#
#  A test looks like:
#      #!/usr/bin/env bash
#      set -euo pipefail
#      . "$(dirname "$0")/lib.sh"
#      sf_init t0100-hello
#      sf_start_scheduler
#      sf_start_node n1                      # libvirtd; SF_NODE_URI
#      sf_start_worker n1 "$SF_NODE_URI"
#      check "node is listed" sf_cli nodes --format json
#      sf_done
#
#  Output is TAP-ish on stdout ("ok N - what", "not ok N - what", "1..N" at
#  the end); diagnostics go to stderr prefixed "# ". Exit 0 = all passed,
#  1 = something failed, 77 = skipped (a part is missing; never in CI).
#
#  Everything started here is stopped by the EXIT trap, in reverse order, by
#  recorded pid; the test fails if a cleanup fails (a daemon that exits
#  non-zero on SIGTERM, e.g. a sanitizer report) or if one of our pids
#  survives. The scratch dir is removed on success and kept on failure.
#
#  IMPORTANT: call sf_start_* and sf_spawn in the test's own shell, never in
#  $(...): they register cleanups and set variables.
#
#  Environment: SF_BUILD (build dir, set by ctest), SF_SRC (source dir),
#  SF_TEST_TMP (scratch root, /var/tmp), SF_GUEST_CACHE (guest build cache,
#  $SF_TEST_TMP/snapfleet-guest), SF_KEEP=1 (keep the scratch dir even on
#  success), SF_TEST_TIMEOUT (540 s: the watchdog stops the test, with
#  cleanup, before ctest's 600 s kill), SF_CLI_TIMEOUT (300 s per CLI call).

_sf_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SF_SRC=${SF_SRC:-$(cd "$_sf_lib_dir/.." && pwd)}
SF_BUILD=${SF_BUILD:-$SF_SRC/build}
SF_RECORDS=$SF_BUILD/tests/sf-records
SF_LIFEWATCH=$SF_BUILD/tests/sf-lifewatch
SF_POKE=$SF_BUILD/tests/sf-poke
SF_PEER=$SF_BUILD/tests/sf-peer
SF_GUEST_DIR=${SF_GUEST_CACHE:-${SF_TEST_TMP:-/var/tmp}/snapfleet-guest}
export SF_SRC SF_BUILD SF_RECORDS SF_LIFEWATCH SF_POKE SF_PEER

# shellcheck source=lib/libvirt.sh
. "$_sf_lib_dir/lib/libvirt.sh"

SF_N=0
SF_FAILED=0
SF_CLEANUPS=()
SF_TMP=""
SF_NODES=()
#  sf_peer_start NAME -> the fd its commands are written to
declare -A SF_PEER_FD=()
#  Exit status of the process the last sf_stop_pid stopped
export SF_LAST_STATUS=0

_sf_now_ms () { local t; t=$(date +%s%N); printf '%s\n' $((t / 1000000)); }
#  sf_mono_ms: now on the monotonic clock, ms (the clock of fleet_pauses and
#  of sf-lifewatch's mono_us): for comparing the test's own actions with
#  libvirt's events where a step of the wall clock must not count
sf_mono_ms () { "$SF_LIFEWATCH" --now; }
sf_note () { printf '# %s\n' "$*" >&2; }

#  ---------------------------------------------------------------------
#  TAP-ish results

#  ok WHAT
ok ()
{
    SF_N=$((SF_N + 1))
    printf 'ok %d - %s\n' "$SF_N" "$*"
}

#  fail WHAT [DETAIL...]: a failed check; the test goes on, sf_done exits 1
fail ()
{
    local what=${1:-?} line
    shift || true
    SF_N=$((SF_N + 1))
    SF_FAILED=$((SF_FAILED + 1))
    printf 'not ok %d - %s\n' "$SF_N" "$what"
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
}

#  skip REASON: skip the whole test (exit 77), e.g. a part is not installed
skip ()
{
    printf '1..0 # SKIP %s\n' "$*"
    sf_note "$SF_TEST_NAME: skipped: $*"
    exit 77
}

#  skip_check WHAT REASON: one check not run
skip_check ()
{
    SF_N=$((SF_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$SF_N" "$1" "${2:-}"
}

#  sf_die MSG: abort the test now (cleanups still run)
sf_die ()
{
    printf 'Bail out! %s\n' "$*"
    SF_FAILED=$((SF_FAILED + 1))
    exit 1
}

#  check WHAT CMD...: ok if CMD succeeds, else fail with its output
check ()
{
    local what=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then
        ok "$what"
    else
        fail "$what" "command failed (exit $rc): $*" "$(printf '%s\n' "$out" | tail -n 20)"
    fi
    return 0
}

#  check_eq WHAT EXPECTED ACTUAL
check_eq ()
{
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        fail "$1" "expected: $2" "actual:   $3"
    fi
}

#  check_range WHAT LOW VALUE HIGH: integers, LOW <= VALUE <= HIGH
check_range ()
{
    local what=$1 lo=$2 v=$3 hi=$4
    if [[ $v =~ ^-?[0-9]+$ ]] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then
        ok "$what ($lo <= $v <= $hi)"
    else
        fail "$what" "expected $lo <= value <= $hi, got '$v'"
    fi
}

#  sf_done: print the plan and exit 0 if every check passed, else 1
sf_done ()
{
    printf '1..%d\n' "$SF_N"
    if [ "$SF_FAILED" -gt 0 ]; then
        sf_note "$SF_TEST_NAME: $SF_FAILED of $SF_N checks failed"
        exit 1
    fi
    exit 0
}

#  ---------------------------------------------------------------------
#  Setup, cleanup, watchdog

#  sf_cleanup_push CMD [ARGS...]: run at exit, last pushed first
sf_cleanup_push ()
{
    SF_CLEANUPS+=("$(printf '%q ' "$@")")
}

#  Leaks inside libvirt's client (glib allocations) are libvirt's, not ours:
#  see tests/lsan.supp (also when a test runs without run-tests.sh)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan.supp}

#  sf_init NAME
sf_init ()
{
    SF_TEST_NAME=${1:?usage: sf_init NAME}
    local root=${SF_TEST_TMP:-/var/tmp}
    mkdir -p "$root"
    #  Short: libvirt's unix socket paths live under it (108-byte limit)
    SF_TMP=$(mktemp -d "$root/sf-${SF_TEST_NAME:0:16}.XXXXXX")
    #  QEMU and libvirtd run as an unprivileged user and must traverse it
    chmod 755 "$SF_TMP"
    : >"$SF_TMP/ports"
    SF_T0=$(_sf_now_ms)
    set -E
    trap '_sf_on_err $? $LINENO "$BASH_COMMAND"' ERR
    trap '_sf_on_exit' EXIT
    trap '_sf_on_signal TERM 143' TERM
    trap '_sf_on_signal INT 130' INT
    _sf_watchdog_start
    sf_note "$SF_TEST_NAME: scratch dir $SF_TMP"
}

_sf_on_err ()
{
    #  Only reported: set -e then ends the test and the EXIT trap cleans up
    printf '# error: exit %s at %s line %s: %s\n' "$1" "${BASH_SOURCE[1]:-?}" "$2" "$3" >&2
}

_sf_on_signal ()
{
    sf_note "$SF_TEST_NAME: got SIG$1, cleaning up"
    SF_FAILED=$((SF_FAILED + 1))
    exit "$2"
}

#  Stops the test (SIGTERM, so the EXIT trap still cleans up) before
#  ctest's timeout would SIGKILL it and leak daemons. Polls once a second
#  and quits as soon as the test is gone.
_sf_watchdog_start ()
{
    local limit=${SF_TEST_TIMEOUT:-540} main=$$
    (
        exec </dev/null >/dev/null 2>&1
        i=0
        while [ "$i" -lt "$limit" ]; do
            kill -0 "$main" 2>/dev/null || exit 0
            sleep 1
            i=$((i + 1))
        done
        kill -TERM "$main" 2>/dev/null
    ) &
    SF_WATCHDOG_PID=$!
}

_sf_dump_logs ()
{
    local f
    for f in "$SF_TMP"/*.log "$SF_TMP"/*/*.log "$SF_TMP"/*/vm/*/console.log; do
        [ -f "$f" ] || continue
        case $f in */libvirtd.log) continue ;; esac
        printf '# ---- %s (last 25 lines)\n' "$f" >&2
        tail -n 25 "$f" 2>/dev/null | sed 's/^/#   /' >&2 || true
    done
}

#  Every pid we recorded that is still alive (our spawns and the nodes')
_sf_our_pids ()
{
    local f pid node
    for f in "$SF_TMP"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(tr -dc '0-9' <"$f")
        [ -n "$pid" ] && _lv_alive "$pid" && printf '%s\n' "$pid"
    done
    for node in "${SF_NODES[@]}"; do
        lv_node_pids "$node"
    done
    return 0
}

_sf_on_exit ()
{
    local rc=$? i cmd leftover pid
    trap - ERR
    set +e
    for ((i = ${#SF_CLEANUPS[@]} - 1; i >= 0; i--)); do
        cmd=${SF_CLEANUPS[i]}
        if ! eval "$cmd"; then
            SF_N=$((SF_N + 1))
            SF_FAILED=$((SF_FAILED + 1))
            printf 'not ok %d - cleanup: %s\n' "$SF_N" "$cmd"
        fi
    done
    if [ -n "${SF_WATCHDOG_PID:-}" ]; then
        kill "$SF_WATCHDOG_PID" 2>/dev/null
        wait "$SF_WATCHDOG_PID" 2>/dev/null
    fi
    if [ -n "$SF_TMP" ]; then
        leftover=$(_sf_our_pids | sort -u | tr '\n' ' ')
        if [ -n "$leftover" ]; then
            SF_N=$((SF_N + 1))
            SF_FAILED=$((SF_FAILED + 1))
            printf 'not ok %d - no process of ours survives (left: %s)\n' "$SF_N" "$leftover"
            for pid in $leftover; do
                kill -KILL "$pid" 2>/dev/null
            done
        fi
    fi
    [ "$rc" = 0 ] && [ "$SF_FAILED" -gt 0 ] && rc=1
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        [ -n "$SF_TMP" ] && _sf_dump_logs
        sf_note "$SF_TEST_NAME: FAILED (exit $rc) after $(($(_sf_now_ms) - ${SF_T0:-0})) ms; logs kept in $SF_TMP"
    else
        sf_note "$SF_TEST_NAME: exit $rc after $(($(_sf_now_ms) - ${SF_T0:-0})) ms"
        if [ -n "$SF_TMP" ] && [ "${SF_KEEP:-0}" != 1 ]; then
            rm -rf "$SF_TMP"
        elif [ -n "$SF_TMP" ]; then
            sf_note "kept $SF_TMP (SF_KEEP=1)"
        fi
    fi
    exit "$rc"
}

#  ---------------------------------------------------------------------
#  Requirements

#  sf_need CMD...: skip the test when a command is missing
sf_need ()
{
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "needs $c (not installed)"
    done
}

sf_need_root ()
{
    [ "$(id -u)" = 0 ] || skip "needs root (creates a test user, runs libvirtd as it)"
}

#  sf_need_built PATH...: skip when a binary of the build is missing
#  (paths relative to SF_BUILD, e.g. scheduler/snapfleet-scheduler)
sf_need_built ()
{
    local p
    for p in "$@"; do
        [ -x "$SF_BUILD/$p" ] || skip "$SF_BUILD/$p is not built"
    done
}

#  sf_need_libvirt: every real part the guests need
sf_need_libvirt ()
{
    sf_need_root
    sf_need libvirtd virsh qemu-img qemu-system-x86_64 cpio setpriv flock numfmt
    [ -x /bin/busybox ] || skip "needs busybox-static (/bin/busybox)"
    compgen -G '/boot/vmlinuz-*-cloud-amd64' >/dev/null ||
        skip "needs linux-image-cloud-amd64 (/boot/vmlinuz-*-cloud-amd64)"
}

#  ---------------------------------------------------------------------
#  Polling, ports, processes

#  wait_for TIMEOUT_S CMD...: poll CMD every 0.1 s until it succeeds; on
#  timeout, show CMD's output once and return 1
wait_for ()
{
    local t=${1:?usage: wait_for TIMEOUT_S CMD...} deadline
    shift
    deadline=$(($(_sf_now_ms) + t * 1000))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ "$(_sf_now_ms)" -gt "$deadline" ]; then
            sf_note "wait_for: timed out after ${t}s: $*"
            "$@" 2>&1 | tail -n 10 | sed 's/^/#   /' >&2 || true
            return 1
        fi
        sleep "${SF_POLL:-0.1}"
    done
}

#  sf_free_port: a TCP port nobody uses (not in /proc/net/tcp*), below the
#  ephemeral range, never handed out twice in one test
sf_free_port ()
{
    local port i hex
    for ((i = 0; i < 500; i++)); do
        port=$((20000 + RANDOM % 12000))
        grep -qx "$port" "$SF_TMP/ports" 2>/dev/null && continue
        hex=$(printf ':%04X ' "$port")
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -qi -- "$hex"; then
            echo "$port" >>"$SF_TMP/ports"
            printf '%s\n' "$port"
            return 0
        fi
    done
    sf_note "sf_free_port: no free port found"
    return 1
}

#  sf_spawn NAME CMD...: run CMD in the background, output to
#  $SF_TMP/NAME.log, pid in $SF_TMP/NAME.pid, stopped at exit
sf_spawn ()
{
    local name=${1:?usage: sf_spawn NAME CMD...}
    shift
    sf_cleanup_push sf_stop_pid "$SF_TMP/$name.pid"
    "$@" </dev/null >>"$SF_TMP/$name.log" 2>&1 &
    echo $! >"$SF_TMP/$name.pid"
}

#  sf_pid NAME: pid of a sf_spawn'ed process
sf_pid () { tr -dc '0-9' <"$SF_TMP/${1:?}.pid"; }

#  sf_stop_pid PIDFILE [TIMEOUT_S]: SIGTERM, bounded wait (10 s), SIGKILL.
#  Returns 0 when the process exited 0 or died of our SIGTERM (no handler);
#  non-zero if it had to be SIGKILLed (137), had died on its own with an
#  error, or exited non-zero (e.g. a sanitizer report). The exact status is
#  left in SF_LAST_STATUS. Removes the pid file; a no-op when it is gone.
sf_stop_pid ()
{
    local f=${1:?usage: sf_stop_pid PIDFILE [TIMEOUT_S]} t=${2:-10} pid i=0 rc=0
    local name
    SF_LAST_STATUS=0
    [ -f "$f" ] || return 0
    pid=$(tr -dc '0-9' <"$f")
    name=$(basename "$f" .pid)
    rm -f "$f"
    [ -n "$pid" ] || return 0
    if ! _lv_alive "$pid"; then
        wait "$pid" 2>/dev/null || rc=$?
        [ "$rc" = 127 ] && rc=0     #  not our child: status unknown
        SF_LAST_STATUS=$rc
        [ "$rc" != 0 ] && sf_note "$name (pid $pid) had already exited with status $rc"
        return "$rc"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    while _lv_alive "$pid" && [ "$i" -lt $((t * 20)) ]; do
        sleep 0.05
        i=$((i + 1))
    done
    if _lv_alive "$pid"; then
        sf_note "$name (pid $pid) ignored SIGTERM for ${t}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        SF_LAST_STATUS=137
        return 137
    fi
    wait "$pid" 2>/dev/null || rc=$?
    [ "$rc" = 127 ] && rc=0
    SF_LAST_STATUS=$rc
    case $rc in
        0) ;;
        143) rc=0 ;;
        *) sf_note "$name (pid $pid) exited with status $rc on SIGTERM (log: $SF_TMP/$name.log)" ;;
    esac
    return "$rc"
}

#  sf_kill_pid PIDFILE [SIGNAL]: deliberately kill (default KILL) and reap a
#  process, e.g. to test crash recovery; its cleanup then does nothing
sf_kill_pid ()
{
    local f=${1:?usage: sf_kill_pid PIDFILE [SIGNAL]} sig=${2:-KILL} pid i=0
    [ -f "$f" ] || return 0
    pid=$(tr -dc '0-9' <"$f")
    rm -f "$f"
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    while _lv_alive "$pid" && [ "$i" -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    wait "$pid" 2>/dev/null || true
}

#  ---------------------------------------------------------------------
#  Config files

#  _sf_write_conf FILE section.key=value... : INI, sections in order of
#  first use; a later item overrides an earlier one; "section.key" without
#  "=" removes the key. The key is what follows the LAST dot, so dotted
#  sections work: "storage.rbd.mode=clone" is mode in [storage.rbd] (keys
#  themselves have no dots)
_sf_write_conf ()
{
    local file=$1 item sk s
    local -a order=() sections=()
    local -A val=() gone=()
    shift
    for item in "$@"; do
        sk=${item%%=*}
        if [[ $sk != ?*.?* ]]; then
            sf_note "_sf_write_conf: bad item '$item' (want section.key=value)"
            return 2
        fi
        [[ -v "val[$sk]" || -v "gone[$sk]" ]] || order+=("$sk")
        if [[ $item == *=* ]]; then
            val[$sk]=${item#*=}
            unset "gone[$sk]"
        else
            unset "val[$sk]"
            gone[$sk]=1
        fi
    done
    for sk in "${order[@]}"; do
        s=${sk%.*}
        [[ " ${sections[*]} " == *" $s "* ]] || sections+=("$s")
    done
    {
        printf '; written by tests/lib.sh for %s\n' "$SF_TEST_NAME"
        for s in "${sections[@]}"; do
            printf '[%s]\n' "$s"
            for sk in "${order[@]}"; do
                if [[ ${sk%.*} == "$s" && -v "val[$sk]" ]]; then
                    printf '%s = %s\n' "${sk##*.}" "${val[$sk]}"
                fi
            done
        done
    } >"$file"
}

#  ---------------------------------------------------------------------
#  snapfleet parts

#  sf_keygen NAME [enrol DIR]: the key pair $SF_TMP/keys/NAME (and
#  NAME_secret), made once per test with 'snapfleet keygen'; with a second
#  argument, its public file is also copied into $SF_TMP/keys/DIR (workers
#  or admins: the scheduler's allow-lists). Prints the path.
sf_keygen ()
{
    local name=${1:?usage: sf_keygen NAME [workers|admins]} keys=$SF_TMP/keys
    mkdir -p "$keys/workers" "$keys/admins"
    if [ ! -e "$keys/$name" ]; then
        "$SF_BUILD/scheduler/snapfleet" keygen "$name" "$keys" >/dev/null ||
            sf_die "cannot make key $name"
    fi
    if [ -n "${2:-}" ]; then
        cp "$keys/$name" "$keys/$2/$name"
    fi
    echo "$keys/$name"
}

#  sf_cli ARGS...: the CLI against this test's scheduler
sf_cli ()
{
    timeout "${SF_CLI_TIMEOUT:-300}" "$SF_BUILD/scheduler/snapfleet" \
        --admin "${SF_ADMIN:?no scheduler started}" "$@"
}

_sf_alive ()
{
    local pid
    pid=$(sf_pid "$1" 2>/dev/null || true)
    [ -n "$pid" ] && _lv_alive "$pid"
}

#  _sf_wait_up NAME TIMEOUT_S CMD...: like wait_for, but gives up at once
#  (showing the log tail) when the sf_spawn'ed process NAME died
_sf_wait_up ()
{
    local name=$1 t=$2 deadline
    shift 2
    deadline=$(($(_sf_now_ms) + t * 1000))
    while :; do
        if ! _sf_alive "$name"; then
            sf_note "$name died during startup; log tail:"
            tail -n 30 "$SF_TMP/$name.log" 2>/dev/null | sed 's/^/#   /' >&2 || true
            return 1
        fi
        "$@" >/dev/null 2>&1 && return 0
        if [ "$(_sf_now_ms)" -gt "$deadline" ]; then
            sf_note "$name: not up after ${t}s ($*); log tail:"
            tail -n 30 "$SF_TMP/$name.log" 2>/dev/null | sed 's/^/#   /' >&2 || true
            return 1
        fi
        sleep "${SF_POLL:-0.1}"
    done
}

_sf_sched_ready ()
{
    sf_cli --timeout 2 nodes --format json | jq -e '.nodes | type == "array"' >/dev/null
}

#  sf_start_scheduler [section.key=value...]: config in
#  $SF_TMP/scheduler/scheduler.conf (free ports; overrides appended),
#  log $SF_TMP/scheduler.log. Sets and exports SF_ADMIN, SNAPFLEET_ADMIN,
#  SF_SCHED_BIND. CURVE: the scheduler's key and an enrolled admin key
#  (sf_keygen), exported for the CLI as SNAPFLEET_CERT and
#  SNAPFLEET_SERVER_KEY. Returns once `snapfleet nodes` answers (bounded
#  30 s). A test of plaintext mode exports SNAPFLEET_INSECURE=1 itself.
# shellcheck disable=SC2120  # overrides are optional
sf_start_scheduler ()
{
    local dir=$SF_TMP/scheduler p1 p2 t0
    sf_need_built scheduler/snapfleet-scheduler scheduler/snapfleet
    sf_need jq
    mkdir -p "$dir"
    p1=$(sf_free_port)
    p2=$(sf_free_port)
    SF_SCHED_BIND=tcp://${SF_SCHED_HOST:-127.0.0.1}:$p1
    SF_ADMIN=tcp://127.0.0.1:$p2
    export SF_ADMIN SF_SCHED_BIND SNAPFLEET_ADMIN=$SF_ADMIN
    SNAPFLEET_SERVER_KEY=$(sf_keygen scheduler)
    SNAPFLEET_CERT=$(sf_keygen admin admins)
    export SNAPFLEET_SERVER_KEY SNAPFLEET_CERT
    _sf_write_conf "$dir/scheduler.conf" \
        "scheduler.bind=$SF_SCHED_BIND" \
        "scheduler.admin_bind=$SF_ADMIN" \
        "scheduler.database=$dir/scheduler.db" \
        scheduler.heartbeat=1s \
        scheduler.node_timeout=5s \
        log.level=debug \
        log.format=text \
        "security.cert=$SNAPFLEET_SERVER_KEY" \
        "security.workers=$SF_TMP/keys/workers" \
        "security.admins=$SF_TMP/keys/admins" \
        "$@"
    t0=$(_sf_now_ms)
    sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" --config "$dir/scheduler.conf"
    if ! _sf_wait_up scheduler 30 _sf_sched_ready; then
        sf_die "scheduler did not answer 'snapfleet nodes' within 30 s (log: $SF_TMP/scheduler.log)"
    fi
    sf_note "scheduler up in $(($(_sf_now_ms) - t0)) ms (workers $SF_SCHED_BIND, admin $SF_ADMIN)"
}

#  sf_restart_scheduler: start the scheduler again on the configuration and
#  database sf_start_scheduler made (after a sf_kill_pid of it, say);
#  returns once `snapfleet nodes` answers (bounded 30 s)
sf_restart_scheduler ()
{
    local t0
    [ -f "$SF_TMP/scheduler/scheduler.conf" ] || sf_die "sf_restart_scheduler: never started"
    t0=$(_sf_now_ms)
    sf_spawn scheduler "$SF_BUILD/scheduler/snapfleet-scheduler" \
        --config "$SF_TMP/scheduler/scheduler.conf"
    _sf_wait_up scheduler 30 _sf_sched_ready ||
        sf_die "restarted scheduler did not answer within 30 s (log: $SF_TMP/scheduler.log)"
    sf_note "scheduler restarted in $(($(_sf_now_ms) - t0)) ms"
}

#  sf_catalog_id: the running scheduler's catalogue id (its database's
#  table catalog): every RBD object a job makes is named from it and the
#  job id (proto/sf_naming.h), snapfleet-CATALOG-JOB and IMAGE-snapfleet-CATALOG-JOB
sf_catalog_id ()
{
    python3 - "$SF_TMP/scheduler/scheduler.db" <<'PY'
import sqlite3, sys
print (sqlite3.connect (sys.argv [1]).execute ("SELECT id FROM catalog").fetchone () [0])
PY
}

_sf_worker_up ()
{
    sf_cli --timeout 2 nodes --format json |
        jq -e --arg n "$1" '.nodes[] | select(.name == $n and .state == "up")' >/dev/null
}

#  sf_start_worker NAME URI [section.key=value...]: config in
#  $SF_TMP/w-NAME/worker.conf (workdir $SF_TMP/w-NAME/work, image store
#  $SF_TMP/images unless overridden), log $SF_TMP/worker-NAME.log, pid
#  $SF_TMP/worker-NAME.pid. CURVE: its key NAME is made and enrolled
#  (sf_keygen NAME workers) and it pins the scheduler's key. Returns once
#  `snapfleet nodes` shows NAME up (bounded 30 s).
sf_start_worker ()
{
    local name=${1:?usage: sf_start_worker NAME URI [section.key=value...]}
    local uri=${2:?usage: sf_start_worker NAME URI [section.key=value...]}
    local dir=$SF_TMP/w-$name t0
    shift 2
    sf_need_built worker/snapfleet-worker scheduler/snapfleet
    [ -n "${SF_SCHED_BIND:-}" ] || sf_die "sf_start_worker: start the scheduler first"
    mkdir -p "$dir/work" "$SF_TMP/images"
    sf_keygen "$name" workers >/dev/null
    _sf_write_conf "$dir/worker.conf" \
        "worker.name=$name" \
        "worker.scheduler=$SF_SCHED_BIND" \
        worker.max_jobs=2 \
        "worker.workdir=$dir/work" \
        worker.heartbeat=1s \
        worker.inventory_interval=1s \
        "hypervisor.uri=$uri" \
        imagestore.driver=dir \
        "imagestore.path=$SF_TMP/images" \
        pause.max_pause=2m \
        log.level=debug \
        log.format=text \
        "security.cert=$SF_TMP/keys/$name" \
        "security.scheduler_key=${SNAPFLEET_SERVER_KEY:?}" \
        "$@"
    t0=$(_sf_now_ms)
    #  SF_WORKER_NETNS: run it in that network namespace (ip netns exec
    #  execs it: the recorded pid is the worker's)
    local -a wrap=()
    [ -n "${SF_WORKER_NETNS:-}" ] && wrap=(ip netns exec "$SF_WORKER_NETNS")
    sf_spawn "worker-$name" "${wrap[@]}" "$SF_BUILD/worker/snapfleet-worker" \
        --config "$dir/worker.conf"
    if ! _sf_wait_up "worker-$name" 30 _sf_worker_up "$name"; then
        sf_die "worker $name not up in 'snapfleet nodes' within 30 s (log: $SF_TMP/worker-$name.log)"
    fi
    sf_note "worker $name up in $(($(_sf_now_ms) - t0)) ms"
}

#  ---------------------------------------------------------------------
#  Hypervisor nodes and guests (wrappers over lib/libvirt.sh)

#  sf_build_guest: build (or reuse) the cached test guest in SF_GUEST_DIR
sf_build_guest ()
{
    lv_build_guest "$SF_GUEST_DIR"
}

#  sf_start_node NAME: a private libvirtd in $SF_TMP/NAME, stopped at exit.
#  Sets SF_NODE_URI (also in $SF_TMP/NAME/uri, see sf_node_uri).
sf_start_node ()
{
    local name=${1:?usage: sf_start_node NAME} dir
    dir=$SF_TMP/$name
    [ -n "${LV_GUEST_DIR:-}" ] || sf_build_guest
    SF_NODES+=("$dir")
    sf_cleanup_push lv_stop_node "$dir"
    SF_NODE_URI=$(lv_start_node "$dir") || sf_die "cannot start libvirtd for node $name"
    export SF_NODE_URI
}

#  sf_node_uri NAME
sf_node_uri () { cat "$SF_TMP/${1:?usage: sf_node_uri NAME}/uri"; }

#  sf_guest NODE NAME [--size 64M] [--shutoff] [--second-disk]: a guest on
#  node NODE, files in $SF_TMP/NODE/vm/NAME/
sf_guest ()
{
    local node=${1:?usage: sf_guest NODE NAME [options]} name=${2:?}
    shift 2
    lv_create_guest "$(sf_node_uri "$node")" "$name" "$SF_TMP/$node/vm" "$@"
}

#  sf_guest_dir NODE NAME: where its disk.qcow2 and console.log are
sf_guest_dir () { printf '%s\n' "$SF_TMP/${1:?}/vm/${2:?}"; }

#  sf_virsh NODE ARGS...: virsh against a node (bounded)
sf_virsh ()
{
    local node=${1:?usage: sf_virsh NODE ARGS...}
    shift
    timeout 60 virsh -q -c "$(sf_node_uri "$node")" "$@"
}

#  sf_records IMAGE [sf-records options]: run the record checker
sf_records ()
{
    [ -x "$SF_RECORDS" ] || sf_die "sf-records is not built ($SF_RECORDS)"
    "$SF_RECORDS" "$@"
}

#  sf_lifewatch NODE DOMAIN: start sf-lifewatch in the background, events in
#  $SF_TMP/lifewatch-DOMAIN.events; returns once it printed READY
sf_lifewatch ()
{
    local node=${1:?usage: sf_lifewatch NODE DOMAIN} dom=${2:?}
    [ -x "$SF_LIFEWATCH" ] || sf_die "sf-lifewatch is not built ($SF_LIFEWATCH)"
    : >"$SF_TMP/lifewatch-$dom.events"
    sf_spawn "lifewatch-$dom" "$SF_LIFEWATCH" "$(sf_node_uri "$node")" "$dom" \
        "$SF_TMP/lifewatch-$dom.events"
    wait_for 20 grep -q '^READY' "$SF_TMP/lifewatch-$dom.log" ||
        sf_die "sf-lifewatch for $dom did not get ready: $(cat "$SF_TMP/lifewatch-$dom.log")"
}

#  sf_lifewatch_node NODE: sf-lifewatch --all on NODE's libvirtd (every
#  domain, also ones defined later); events in
#  $SF_TMP/lifewatch-node-NODE.events, each line ending " dom=NAME";
#  returns once it printed READY
sf_lifewatch_node ()
{
    local node=${1:?usage: sf_lifewatch_node NODE} name
    name=lifewatch-node-$node
    [ -x "$SF_LIFEWATCH" ] || sf_die "sf-lifewatch is not built ($SF_LIFEWATCH)"
    : >"$SF_TMP/$name.events"
    sf_spawn "$name" "$SF_LIFEWATCH" "$(sf_node_uri "$node")" --all "$SF_TMP/$name.events"
    wait_for 20 grep -q '^READY' "$SF_TMP/$name.log" ||
        sf_die "sf-lifewatch --all on $node did not get ready: $(cat "$SF_TMP/$name.log")"
}

#  sf_storewatch NAME INTERVAL_MS GLOB...: sample, every INTERVAL_MS
#  (< 1000), which files match the GLOBs (e.g. "$SF_TMP/images/*.qcow2.tmp";
#  paths without blanks) and append "<realtime_ms> <count> <file>..." to
#  $SF_TMP/NAME.samples each time that set changes (first sample included).
#  Builtins only in the loop (no fork per sample). Stopping it (sf_stop_pid,
#  or at exit) appends "<ms> END samples=<n> max_gap_ms=<g>": g is the
#  longest time between two samples, what the sampling could have missed.
#  Returns once the first sample is written.
sf_storewatch ()
{
    local name=${1:?usage: sf_storewatch NAME INTERVAL_MS GLOB...} ms=${2:?}
    shift 2
    [ "$#" -gt 0 ] || sf_die "sf_storewatch: no GLOB"
    : >"$SF_TMP/$name.samples"
    sf_spawn "$name" _sf_storewatch_loop "$SF_TMP/$name.samples" "$ms" "$@"
    wait_for 10 test -s "$SF_TMP/$name.samples" ||
        sf_die "sf_storewatch $name wrote no sample: $(cat "$SF_TMP/$name.log")"
}

_sf_epoch_ms () { local t=${EPOCHREALTIME/./}; printf '%s' $((10#$t / 1000)); }

_sf_storewatch_loop ()
{
    local out=$1 ms=$2 fd g t last=0 gap max_gap=0 n=0 key prev=$'\x01' secs
    local -a files
    shift 2
    printf -v secs '0.%03d' "$ms"
    set +e
    trap - ERR
    mkfifo "$out.fifo" || exit 1
    exec {fd}<>"$out.fifo"
    rm -f "$out.fifo"
    trap 'printf "%s END samples=%d max_gap_ms=%d\n" "$(_sf_epoch_ms)" "$n" "$max_gap" >>"$out"; exit 0' TERM INT
    shopt -s nullglob
    while :; do
        files=()
        for g in "$@"; do
            # shellcheck disable=SC2206  # the glob is meant to expand
            files+=($g)
        done
        t=${EPOCHREALTIME/./}
        t=$((10#$t / 1000))
        n=$((n + 1))
        if [ "$last" -gt 0 ]; then
            gap=$((t - last))
            [ "$gap" -gt "$max_gap" ] && max_gap=$gap
        fi
        last=$t
        key="${files[*]}"
        if [ "$key" != "$prev" ]; then
            printf '%s %d%s\n' "$t" "${#files[@]}" "${key:+ $key}" >>"$out"
            prev=$key
        fi
        read -r -t "$secs" -u "$fd" _
    done
}

#  ---------------------------------------------------------------------
#  Hostile peers (tests/tools/sf-peer.c)

#  sf_start_fleet NODE GUEST: the scheduler, node NODE (libvirtd), a guest
#  GUEST on it and NODE's worker; returns once GUEST is listed in
#  'snapfleet instances' (bounded 30 s). Sets SF_GUEST_UUID.
sf_start_fleet ()
{
    local node=${1:?usage: sf_start_fleet NODE GUEST} guest=${2:?usage: sf_start_fleet NODE GUEST}
    sf_start_scheduler
    sf_start_node "$node"
    sf_guest "$node" "$guest"
    sf_start_worker "$node" "$SF_NODE_URI"
    wait_for 30 _sf_listed "$guest" "$node" ||
        sf_die "$guest never appeared in 'snapfleet instances'"
    SF_GUEST_UUID=$(_sf_listed "$guest" "$node" | jq -r .uuid)
    export SF_GUEST_UUID
}

_sf_listed ()
{
    sf_cli instances --format json |
        jq -e --arg g "$1" --arg n "$2" '.instances[] | select(.name == $g and .node == $n)'
}

#  sf_snapshot_done WHAT INSTANCE NODE: check that a snapshot of INSTANCE
#  (--wait) is done by NODE; the job's JSON is left in
#  $SF_TMP/last-snapshot.json
sf_snapshot_done ()
{
    local what=${1:?usage: sf_snapshot_done WHAT INSTANCE NODE} out
    out=$(sf_cli snapshot --instance "${2:?}" --wait --format json) || true
    printf '%s\n' "$out" >"$SF_TMP/last-snapshot.json"
    check_eq "$what: a snapshot of $2 is done by $3" "done ${3:?}" \
        "$(jq -r '"\(.state) \(.node)"' <<<"$out" 2>/dev/null)"
}

#  sf_peer_start NAME worker|scheduler ENDPOINT [sf-peer options]: start
#  sf-peer (log $SF_TMP/NAME.log: what it received, one line each; pid
#  $SF_TMP/NAME.pid, stopped at exit), its commands read from the FIFO
#  $SF_TMP/NAME.in that this shell holds open. Returns once it is READY.
sf_peer_start ()
{
    local name=${1:?usage: sf_peer_start NAME worker|scheduler ENDPOINT [options]} fd
    shift
    [ -x "$SF_PEER" ] || sf_die "sf-peer is not built ($SF_PEER)"
    rm -f "$SF_TMP/$name.in"
    mkfifo "$SF_TMP/$name.in"
    sf_cleanup_push sf_stop_pid "$SF_TMP/$name.pid"
    "$SF_PEER" "$@" <"$SF_TMP/$name.in" >>"$SF_TMP/$name.log" 2>&1 &
    echo $! >"$SF_TMP/$name.pid"
    exec {fd}>"$SF_TMP/$name.in"
    SF_PEER_FD[$name]=$fd
    wait_for 10 grep -q '^READY' "$SF_TMP/$name.log" ||
        sf_die "sf-peer $name did not get ready: $(cat "$SF_TMP/$name.log")"
}

#  sf_peer_worker NAME: an enrolled fake worker: key NAME made and
#  enrolled, sf-peer NAME started as node NAME against this test's
#  scheduler, its hello sent and welcomed (bounded 20 s)
sf_peer_worker ()
{
    local name=${1:?usage: sf_peer_worker NAME} key
    key=$(sf_keygen "$name" workers)
    sf_peer_start "$name" worker "${SF_SCHED_BIND:?start the scheduler first}" --cert "$key" \
        --server-key "$SNAPFLEET_SERVER_KEY" --node "$name"
    sf_peer "$name" hello
    wait_for 20 grep -q '^WELCOME' "$SF_TMP/$name.log" || sf_die "sf-peer $name was not welcomed"
}

#  sf_peer NAME COMMAND...: send one command line to sf-peer NAME and wait
#  (bounded 120 s) until it says it ran it
sf_peer ()
{
    local name=${1:?usage: sf_peer NAME COMMAND...} n
    shift
    n=$(grep -c '^DONE ' "$SF_TMP/$name.log" || true)
    printf '%s\n' "$*" >&"${SF_PEER_FD[$name]:?sf-peer $name not started}"
    wait_for 120 _sf_peer_sent "$name" "$n" ||
        sf_die "sf-peer $name did not run '$*': $(tail -n 5 "$SF_TMP/$name.log")"
}

_sf_peer_sent () { [ "$(grep -c '^DONE ' "$SF_TMP/$1.log" || true)" -gt "$2" ]; }

#  sf_peer_stop NAME: stop sf-peer NAME and close its FIFO
sf_peer_stop ()
{
    local name=${1:?usage: sf_peer_stop NAME} fd=${SF_PEER_FD[$1]:-}
    sf_stop_pid "$SF_TMP/$name.pid" || return 1
    if [ -n "$fd" ]; then
        exec {fd}>&-
        unset "SF_PEER_FD[$name]"
    fi
}

#  sf_state_snapshot FILE [NODE]: what a hostile peer must not change,
#  as JSON in FILE: the jobs (id, instance, node, state, attempt, error),
#  images, instances (uuid, name, node, state, storage class, disks but
#  their allocation, which a running guest changes) and
#  nodes (name, state) the scheduler lists, without the rows of NODE (the
#  hostile peer's own node, whose own rows it may change)
sf_state_snapshot ()
{
    local f=${1:?usage: sf_state_snapshot FILE [NODE]} n=${2:-}
    {
        sf_cli jobs --format json | jq -S --arg n "$n" \
            '[.jobs[] | select(.node != $n) | {job_id, instance, node, state, attempt, error}] | sort_by(.job_id)'
        sf_cli images --format json | jq -S '.images | sort_by(.store, .id)'
        sf_cli instances --format json | jq -S --arg n "$n" \
            '[.instances[] | select(.node != $n) | {uuid, name, node, state, storage_class,
              disks: [.disks[] | del(.allocated_size)]}] | sort_by(.node, .uuid)'
        sf_cli nodes --format json | jq -S --arg n "$n" \
            '[.nodes[] | select(.name != $n) | {name, state}] | sort_by(.name)'
    } >"$f"
}

#  sf_tree_snapshot DIR: one line per file under DIR (sorted): path, size,
#  mode, inode and modification time in ns, so that a later listing shows
#  a file removed, replaced or written to (cheap: images are not hashed)
sf_tree_snapshot ()
{
    local d=${1:?usage: sf_tree_snapshot DIR}
    (cd "$d" && find . -type f -printf '%p %s %m %i %T@\n' | LC_ALL=C sort)
}
