# shellcheck shell=bash
# tests/lib/ceph.sh - a throwaway single-node Ceph cluster for integration tests
#
# Sourced (bash). Starts one mon, one OSD on memstore and (by default) one mgr
# with the minimal module set, all inside one directory and bound to 127.0.0.1,
# with no systemd and nothing in /etc/ceph or /var/lib/ceph. Stops exactly the
# daemons it started, by recorded pid, after checking that /proc/PID/cmdline
# still names DIR/ceph.conf. Every Ceph client call runs under `timeout -k`,
# because Ceph clients block forever when the cluster is gone or full.
# Measured facts behind every setting: shared/notes/ceph.md.
#
#   ceph_start DIR               start a cluster in DIR (created if missing), wait until
#                                `rbd create` works, export CEPH_CONF=DIR/ceph.conf and
#                                print `export CEPH_CONF=...` as the last stdout line
#   ceph_stop DIR [--purge]      TERM the recorded pids (mgr, osd, mon), KILL after
#                                CEPH_STOP_TIMEOUT s; --purge also removes DIR
#   ceph_alive_pids DIR          print the recorded pids that are still running (not zombies)
#   ceph_cli ARGS...             timeout -k 5 60 ceph -c $CEPH_CONF ARGS
#   ceph_rbd ARGS...             timeout -k 5 60 rbd -c $CEPH_CONF ARGS
#   ceph_rados ARGS...           timeout -k 5 60 rados -c $CEPH_CONF ARGS
#   ceph_mon_port DIR [v1|v2]    the mon's msgr1 (default) or msgr2 port
#   ceph_key [NAME]              the secret key of client NAME (default admin), base64
#   ceph_client_create NAME [POOL]  create client.NAME with `profile rbd` caps on POOL
#                                (default rbd) and print its key
#   ceph_import FILE POOL/IMG    rbd import of a local raw file
#   ceph_snap_create POOL/IMG@SNAP
#   ceph_export_raw SPEC OUT     qemu-img convert -f raw rbd:SPEC:conf=... -O raw OUT
#                                (SPEC is POOL/IMG or POOL/IMG@SNAP)
#   ceph_rbd_uri SPEC            prints rbd:SPEC:conf=$CEPH_CONF (for qemu-img)
#   ceph_logs DIR [N]            last N (default 40) lines of every daemon log, on stderr
#   ceph_wait_mgr DIR            wait (bounded) for an active mgr; librbd does not need one
#   ceph_paxos DIR               the monitor's batching the cluster runs with, as the
#                                mon reports it: "paxos_propose_interval=0.01 paxos_min_wait=0.001"
#
# libvirt glue (needs tests/lib/libvirt.sh; QEMU runs as the unprivileged session user):
#   ceph_lv_secret URI [CLIENT]  define a ceph-type secret holding client.CLIENT's key
#                                (default admin) in that libvirtd; prints its usage name
#   ceph_lv_secret_usage [CLIENT]  that usage name ("snapfleet-ceph client.CLIENT")
#   ceph_lv_disk_xml POOL/IMG DEV [CLIENT] [v1|v2]
#                                the <disk type='network'> element of an RBD disk
#   ceph_lv_guest URI NAME DIR POOL/IMG [--client C] [--port v1|v2] [--second-disk] [--agent]
#                [--rbd-disk DEV=POOL/IMG]...
#                                a records-writing test guest (lv_create_guest) whose vda
#                                is the RBD image; vdb a local qcow2 with --second-disk;
#                                --agent: it runs the QEMU guest agent (lv_create_guest --agent);
#                                --rbd-disk: one more RBD disk DEV (vdb: the guest writes its
#                                records there too, in lock-step with vda)
#
# snapfleet glue (needs tests/lib.sh; described at the end of this file):
#   ceph_sf_worker, ceph_rbd_snaps, ceph_rbd_images, ceph_sf_job_left, ceph_freeze, ceph_thaw
#
# QEMU needs no ceph.conf and no keyring: the mon address comes from <host>
# and the key from the libvirt secret. The disk XML still points <config
# file=.../> at DIR/qemu-client.conf (world-readable, no secrets) only to cut
# librados' 300 s mount timeout to 15 s, so a wrong port or key fails fast.
#
# Knobs (environment): CEPH_MGR=1|0, CEPH_STORE=memstore|bluestore, CEPH_MEMSTORE_BYTES
# (4 GiB), CEPH_BLUESTORE_BYTES (10 GiB, a sparse file), CEPH_PG_NUM (8),
# CEPH_PAXOS=tuned|default (tuned: a 10-ms monitor batch, the suite's speed;
# default: Ceph as shipped, ~1 s per snapshot create/remove and pool init),
# CEPH_START_TIMEOUT (120 s per wait step), CEPH_STOP_TIMEOUT (20 s),
# CEPH_CLIENT_TIMEOUT (60 s, for ceph_cli/ceph_rbd/ceph_rados),
# CEPH_EXPORT_TIMEOUT (300 s, for ceph_export_raw and ceph_import).
# Timings of each start step go to DIR/timings ("step seconds" lines).

# ---------------------------------------------------------------------------
# small internals

_ceph_now () { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }

_ceph_elapsed () {   # START -> seconds since START, 3 decimals
    awk -v a="$1" -v b="$(_ceph_now)" 'BEGIN { printf "%.3f", b - a }'
}

_ceph_err () { echo "ceph.sh: $*" >&2; }

_ceph_absdir () {    # DIR -> absolute path (DIR must exist)
    (cd "$1" 2>/dev/null && pwd -P)
}

_ceph_python () {
    if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else echo python3; fi
}

# Two free TCP ports on 127.0.0.1, picked by the kernel (bind to port 0).
_ceph_free_ports () {
    "$(_ceph_python)" - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Run a ceph client against DIR's config with a short bound (used while starting).
_ceph_c () {   # DIR SECS ARGS...
    local dir=$1 secs=$2
    shift 2
    timeout -k 2 "$secs" ceph -c "$dir/ceph.conf" --connect-timeout "$secs" "$@"
}

# Poll CMD... every 0.2 s until it succeeds or CEPH_START_TIMEOUT passes.
_ceph_wait () {   # WHAT CMD...
    local what=$1
    shift
    local limit=${CEPH_START_TIMEOUT:-120}
    local t0
    t0=$(_ceph_now)
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if awk -v e="$(_ceph_elapsed "$t0")" -v l="$limit" 'BEGIN { exit !(e >= l) }'; then
            _ceph_err "timed out after ${limit}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

_ceph_mark () {   # DIR STEP T0 -> append "STEP seconds" to DIR/timings
    echo "$2 $(_ceph_elapsed "$3")" >>"$1/timings"
}

# Is PID a live (non-zombie) process whose command line names CONF?
_ceph_pid_is_ours () {   # PID CONF
    local pid=$1 conf=$2 state
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    local -a args=()
    { mapfile -d '' -t args <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
    local a
    for a in "${args[@]}"; do
        [ "$a" = "$conf" ] && return 0
    done
    return 1
}

# Start daemon NAME (e.g. mon.a) with ARGS in the background; record its pid.
_ceph_spawn () {   # DIR NAME PROGRAM ARGS...
    local dir=$1 name=$2
    shift 2
    "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/pids/$name.pid"
}

_ceph_write_conf () {   # DIR FSID P2 P1 AUTH
    local dir=$1 fsid=$2 p2=$3 p1=$4 auth=$5
    local bytes=${CEPH_MEMSTORE_BYTES:-4294967296} pg=${CEPH_PG_NUM:-8}
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$p2,v1:127.0.0.1:$p1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = $auth
auth service required = $auth
auth client required = $auth
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.daemon.pid
log file = $dir/log/\$name.log
crash dir = $dir/crash
log to stderr = false
err to stderr = true
mon cluster log file = $dir/log/cluster.log
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = $pg
osd pool default pgp num = $pg
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
$(_ceph_paxos_conf)
mon osd full ratio = .99
mon osd nearfull ratio = .99
mon osd backfillfull ratio = .99
osd failsafe full ratio = .99
mgr disabled modules = alerts,influx,insights,iostat,localpool,mirroring,nfs,osd_perf_query,osd_support,prometheus,restful,selftest,snap_schedule,stats,telegraf,test_orchestrator,zabbix
mgr initial modules = status

[client]
admin socket = $dir/run/\$name.\$pid.asok
client mount timeout = 30
rados mon op timeout = 60

[mon]
mon data = $dir/mon/\$cluster-\$id

[mgr]
mgr data = $dir/mgr/\$cluster-\$id

[osd]
osd data = $dir/osd/\$cluster-\$id
osd crush initial weight = 1
osd snap trim sleep hdd = 0
osd snap trim sleep hybrid = 0
osd delete sleep hdd = 0
osd delete sleep hybrid = 0
osd recovery sleep hdd = 0
$(_ceph_store_conf "$bytes")
EOF
}

# The monitor's paxos batching: tuned (default) commits every 10 ms, so a
# self-managed snapshot takes 10-25 ms; CEPH_PAXOS=default keeps Ceph's
# shipped 1 s batch (paxos propose interval = 1, paxos min wait = 0.05),
# what a real cluster has: each snapshot create/remove then waits ~1 s.
_ceph_paxos_conf () {
    case ${CEPH_PAXOS:-tuned} in
        tuned) printf 'paxos propose interval = 0.01\npaxos min wait = 0.001\n' ;;
        default) printf '# paxos propose interval and paxos min wait: Ceph defaults\n' ;;
        *) _ceph_err "CEPH_PAXOS must be tuned or default, not '$CEPH_PAXOS'"; return 1 ;;
    esac
}

# The [osd] object store lines: memstore (default; data in RAM at 2-3x its
# size) or, with CEPH_STORE=bluestore, bluestore on a sparse file
# DIR/osd/ceph-0/block of CEPH_BLUESTORE_BYTES (10 GiB), for big images.
_ceph_store_conf () {   # MEMSTORE_BYTES
    if [ "${CEPH_STORE:-memstore}" = bluestore ]; then
        cat <<EOF
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${CEPH_BLUESTORE_BYTES:-10737418240}
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mount = false
bluestore fsck on mkfs = false
osd memory target = 1073741824
EOF
    else
        printf 'osd objectstore = memstore\nmemstore device bytes = %s\n' "$1"
    fi
}

# What QEMU gets through <config file=.../> in the RBD disk XML: no keys, no
# paths it cannot write as the unprivileged session user, and a mount timeout
# so that a wrong port or key fails the domain start in ~15 s instead of
# librados' default 300 s (`error connecting: Connection timed out`).
_ceph_write_qemu_conf () {   # DIR
    cat >"$1/qemu-client.conf" <<EOF
[global]
client mount timeout = 15
rados mon op timeout = 60
log to stderr = false
err to stderr = true
EOF
    chmod 644 "$1/qemu-client.conf"
}

# ---------------------------------------------------------------------------
# public

ceph_start () {   # DIR
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        _ceph_err "usage: ceph_start DIR"
        return 2
    fi
    mkdir -p "$1" || return 1
    local dir
    dir=$(_ceph_absdir "$1") || return 1
    if [ -e "$dir/ceph.conf" ]; then
        _ceph_err "'$dir' already holds a cluster; use a fresh directory"
        return 1
    fi
    local t0 fsid osd_uuid ports p1 p2 auth=cephx mgr=${CEPH_MGR:-1}
    t0=$(_ceph_now)
    mkdir -p "$dir"/{pids,log,run,crash,mon,mgr/ceph-x,osd/ceph-0} || return 1
    : >"$dir/timings"
    fsid=$(uuidgen) && osd_uuid=$(uuidgen) || return 1
    ports=$(_ceph_free_ports) || { _ceph_err "cannot pick free ports"; return 1; }
    read -r p2 p1 <<<"$ports"
    echo "v2 $p2" >"$dir/ports"
    echo "v1 $p1" >>"$dir/ports"
    _ceph_paxos_conf >/dev/null || return 2
    _ceph_write_conf "$dir" "$fsid" "$p2" "$p1" "$auth"
    _ceph_write_qemu_conf "$dir"
    # QEMU (as the unprivileged libvirt session user) reads qemu-client.conf;
    # the keyring stays mode 600
    chmod 755 "$dir"

    local kr=$dir/keyring
    {
        ceph-authtool --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *' &&
        ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' \
            --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' &&
        ceph-authtool "$kr" --gen-key -n mgr.x --cap mon 'allow profile mgr' \
            --cap osd 'allow *' --cap mds 'allow *' &&
        ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' \
            --cap mgr 'allow profile osd' --cap osd 'allow *' &&
        chmod 600 "$kr" &&
        monmaptool --create --fsid "$fsid" \
            --addv a "[v2:127.0.0.1:$p2,v1:127.0.0.1:$p1]" "$dir/monmap" &&
        ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$kr"
    } >>"$dir/log/mkfs.out" 2>&1 || {
        _ceph_err "mon mkfs failed (see $dir/log/mkfs.out)"
        tail -20 "$dir/log/mkfs.out" >&2
        return 1
    }
    _ceph_mark "$dir" mon_mkfs "$t0"

    _ceph_spawn "$dir" mon.a ceph-mon -c "$dir/ceph.conf" -f -i a
    if ! _ceph_wait "the mon" _ceph_c "$dir" 5 mon stat; then
        _ceph_start_failed "$dir"
        return 1
    fi
    _ceph_mark "$dir" mon_up "$t0"

    if [ "$mgr" = 1 ]; then
        _ceph_spawn "$dir" mgr.x ceph-mgr -c "$dir/ceph.conf" -f -i x
    fi

    if ! { _ceph_c "$dir" 30 osd new "$osd_uuid" 0 &&
           timeout -k 5 120 ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid"
         } >>"$dir/log/mkfs.out" 2>&1; then
        _ceph_err "osd mkfs failed (see $dir/log/mkfs.out)"
        _ceph_start_failed "$dir"
        return 1
    fi
    _ceph_mark "$dir" osd_mkfs "$t0"
    _ceph_spawn "$dir" osd.0 ceph-osd -c "$dir/ceph.conf" -f -i 0
    if ! _ceph_wait "osd.0 to be up" _ceph_osd_up "$dir"; then
        _ceph_start_failed "$dir"
        return 1
    fi
    _ceph_mark "$dir" osd_up "$t0"

    if ! { _ceph_c "$dir" 60 osd pool create rbd "${CEPH_PG_NUM:-8}" "${CEPH_PG_NUM:-8}" replicated &&
           timeout -k 5 60 rbd -c "$dir/ceph.conf" pool init rbd
         } >>"$dir/log/mkfs.out" 2>&1; then
        _ceph_err "cannot create pool 'rbd' (see $dir/log/mkfs.out)"
        _ceph_start_failed "$dir"
        return 1
    fi
    _ceph_mark "$dir" pool_init "$t0"
    if ! _ceph_wait "the first 'rbd create'" _ceph_rbd_probe "$dir"; then
        _ceph_start_failed "$dir"
        return 1
    fi
    _ceph_mark "$dir" rbd_ready "$t0"
    export CEPH_CONF=$dir/ceph.conf
    echo "export CEPH_CONF=$dir/ceph.conf"
}

_ceph_osd_up () {   # DIR (no pipe into grep -q: with pipefail, SIGPIPE could fail it)
    local out
    out=$(_ceph_c "$1" 10 osd dump 2>/dev/null) || return 1
    [[ $out == *$'\n'"osd.0 up "* ]]
}

_ceph_rbd_probe () {   # DIR: create and remove a tiny image
    local conf=$1/ceph.conf
    timeout -k 2 10 rbd -c "$conf" create --size 4M rbd/__sf_probe__ &&
        timeout -k 2 30 rbd -c "$conf" rm --no-progress rbd/__sf_probe__
}

_ceph_start_failed () {   # DIR
    ceph_logs "$1" 30
    if [ "${CEPH_KEEP_ON_FAIL:-0}" != 1 ]; then
        ceph_stop "$1" >/dev/null || true
    fi
    _ceph_err "start failed; logs kept in $1/log"
}

# Wait (bounded) until the mgr is active. Optional: librbd does not need it.
# What the running mon says about its paxos batching (its admin socket), so
# that a figure can say which monitor it was measured on
ceph_paxos () {   # DIR
    local dir key out line=""
    dir=$(_ceph_absdir "${1:?usage: ceph_paxos DIR}") || return 1
    for key in paxos_propose_interval paxos_min_wait; do
        out=$(timeout -k 2 10 ceph --admin-daemon "$dir/run/mon.a.asok" config get "$key" \
              2>/dev/null) || { _ceph_err "cannot ask mon.a for $key"; return 1; }
        out=$(jq -r --arg k "$key" '.[$k]' <<<"$out") || return 1
        line+="${line:+ }$key=$out"
    done
    printf '%s\n' "$line"
}

ceph_wait_mgr () {   # DIR
    local dir
    dir=$(_ceph_absdir "$1") || return 1
    _ceph_wait "an active mgr" _ceph_mgr_available "$dir"
}

_ceph_mgr_available () {
    local out
    out=$(_ceph_c "$1" 10 mgr stat 2>/dev/null) || return 1
    [[ $out == *'"available": true'* ]]
}

ceph_alive_pids () {   # DIR
    local dir f pid
    dir=$(_ceph_absdir "$1") || return 0
    for f in "$dir"/pids/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if _ceph_pid_is_ours "$pid" "$dir/ceph.conf"; then
            echo "$pid"
        fi
    done
}

ceph_stop () {   # DIR [--purge]
    local dir purge=0
    if [ "${2:-}" = --purge ]; then purge=1; fi
    if ! dir=$(_ceph_absdir "$1"); then
        return 0
    fi
    local conf=$dir/ceph.conf limit=${CEPH_STOP_TIMEOUT:-20}
    local name pid pids="" t0
    # mgr and osd first, the mon last, so nobody logs about a lost mon
    for name in mgr.x osd.0 mon.a; do
        [ -f "$dir/pids/$name.pid" ] || continue
        pid=$(cat "$dir/pids/$name.pid")
        if _ceph_pid_is_ours "$pid" "$conf"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids="$pids $pid"
        fi
    done
    t0=$(_ceph_now)
    local left=$pids
    while [ -n "${left// /}" ]; do
        local still=""
        for pid in $left; do
            if _ceph_pid_is_ours "$pid" "$conf"; then still="$still $pid"; fi
        done
        left=$still
        [ -n "${left// /}" ] || break
        if awk -v e="$(_ceph_elapsed "$t0")" -v l="$limit" 'BEGIN { exit !(e >= l) }'; then
            for pid in $left; do
                if _ceph_pid_is_ours "$pid" "$conf"; then
                    _ceph_err "pid $pid ignored SIGTERM for ${limit}s; sending SIGKILL"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            done
            sleep 0.5
            break
        fi
        sleep 0.05
    done
    # reap our own children, if they are ours, so they do not linger as zombies
    for pid in $pids; do
        { wait "$pid"; } 2>/dev/null || true
    done
    echo "stop $(_ceph_elapsed "$t0")" >>"$dir/timings"
    if [ -n "$(ceph_alive_pids "$dir")" ]; then
        _ceph_err "still running after stop: $(ceph_alive_pids "$dir" | tr '\n' ' ')"
        return 1
    fi
    if [ $purge = 1 ]; then
        rm -rf -- "$dir"
    fi
    return 0
}

ceph_cli () {
    timeout -k 5 "${CEPH_CLIENT_TIMEOUT:-60}" ceph -c "${CEPH_CONF:?CEPH_CONF is not set}" "$@"
}

ceph_rbd () {
    timeout -k 5 "${CEPH_CLIENT_TIMEOUT:-60}" rbd -c "${CEPH_CONF:?CEPH_CONF is not set}" "$@"
}

ceph_rados () {
    timeout -k 5 "${CEPH_CLIENT_TIMEOUT:-60}" rados -c "${CEPH_CONF:?CEPH_CONF is not set}" "$@"
}

ceph_mon_port () {   # DIR [v1|v2]
    local dir
    dir=$(_ceph_absdir "$1") || return 1
    awk -v k="${2:-v1}" '$1 == k { print $2 }' "$dir/ports"
}

ceph_key () {   # [NAME]: read from the cluster (works for clients made later too)
    ceph_cli auth get-key "client.${1:-admin}"
}

ceph_client_create () {   # NAME [POOL] -> prints the key
    local pool=${2:-rbd}
    ceph_cli auth get-or-create "client.$1" mon 'profile rbd' \
        osd "profile rbd pool=$pool" mgr "profile rbd pool=$pool" >/dev/null &&
        ceph_key "$1"
}

ceph_import () {   # FILE POOL/IMG
    CEPH_CLIENT_TIMEOUT=${CEPH_EXPORT_TIMEOUT:-300} ceph_rbd import --no-progress "$1" "$2"
}

ceph_snap_create () {   # POOL/IMG@SNAP
    ceph_rbd snap create --no-progress "$1"
}

ceph_rbd_uri () {   # POOL/IMG[@SNAP]
    printf 'rbd:%s:conf=%s\n' "$1" "${CEPH_CONF:?CEPH_CONF is not set}"
}

ceph_export_raw () {   # POOL/IMG[@SNAP] OUT
    timeout -k 5 "${CEPH_EXPORT_TIMEOUT:-300}" \
        qemu-img convert -f raw "$(ceph_rbd_uri "$1")" -O raw "$2"
}

ceph_logs () {   # DIR [N]
    local dir f
    dir=$(_ceph_absdir "$1") || return 0
    for f in "$dir"/log/*.log "$dir"/log/*.out; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -n "${2:-40}" "$f" >&2
    done
}

# ---------------------------------------------------------------------------
# libvirt glue (needs tests/lib/libvirt.sh: lv_create_guest, lv_start_guest)

# Usage name of the libvirt secret that holds client NAME's key.
ceph_lv_secret_usage () {   # [CLIENT]
    printf 'snapfleet-ceph client.%s\n' "${1:-admin}"
}

# UUID of the ceph secret with usage name USAGE in the daemon at URI (or empty)
_ceph_lv_secret_uuid () {   # URI USAGE
    local out
    out=$(timeout 30 virsh -q -c "$1" secret-list 2>/dev/null) || return 0
    printf '%s\n' "$out" |
        awk -v u="ceph $2" '{ id = $1; $1 = ""; sub(/^ +/, ""); if ($0 == u) print id }'
}

# Define (once) a ceph-type secret in the libvirt daemon at URI holding the
# key of client CLIENT (default admin); prints its usage name. The key goes
# through a mode-600 file, never on a command line.
ceph_lv_secret () {   # URI [CLIENT]
    local uri=${1:?usage: ceph_lv_secret URI [CLIENT]} client=${2:-admin}
    local usage uuid keyfile out dir xml
    usage=$(ceph_lv_secret_usage "$client")
    dir=$(dirname "${CEPH_CONF:?CEPH_CONF is not set}")
    uuid=$(_ceph_lv_secret_uuid "$uri" "$usage")
    if [ -z "$uuid" ]; then
        xml=$dir/run/secret-$client.xml
        printf "<secret ephemeral='no' private='yes'><usage type='ceph'><name>%s</name></usage></secret>\n" \
            "$usage" >"$xml"
        if ! out=$(timeout 30 virsh -q -c "$uri" secret-define "$xml" 2>&1); then
            _ceph_err "virsh secret-define failed: $out"
            return 1
        fi
        uuid=$(_ceph_lv_secret_uuid "$uri" "$usage")
        if [ -z "$uuid" ]; then
            _ceph_err "secret '$usage' is not listed after secret-define"
            return 1
        fi
    fi
    keyfile=$(mktemp "$dir/run/key.XXXXXX") || return 1
    chmod 600 "$keyfile"
    if ! ceph_key "$client" >"$keyfile"; then
        rm -f "$keyfile"
        _ceph_err "cannot read the key of client.$client"
        return 1
    fi
    if ! out=$(timeout 30 virsh -q -c "$uri" secret-set-value "$uuid" --file "$keyfile" 2>&1); then
        rm -f "$keyfile"
        _ceph_err "virsh secret-set-value failed: $out"
        return 1
    fi
    rm -f "$keyfile"
    printf '%s\n' "$usage"
}

# The <disk> element of an RBD-backed disk. The mon port in <host> is the
# msgr1 (v1, default) or msgr2 (v2) one; both work, librados learns the
# other address from the monmap.
ceph_lv_disk_xml () {   # POOL/IMG DEV [CLIENT] [v1|v2]
    local spec=${1:?usage: ceph_lv_disk_xml POOL/IMG DEV [CLIENT] [v1|v2]} dev=${2:?}
    local client=${3:-admin} kind=${4:-v1} dir port
    dir=$(dirname "${CEPH_CONF:?CEPH_CONF is not set}")
    port=$(ceph_mon_port "$dir" "$kind") || return 1
    [ -n "$port" ] || { _ceph_err "no $kind mon port in $dir/ports"; return 1; }
    cat <<EOF
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='$spec'>
        <host name='127.0.0.1' port='$port'/>
        <config file='$dir/qemu-client.conf'/>
      </source>
      <auth username='$client'>
        <secret type='ceph' usage='$(ceph_lv_secret_usage "$client")'/>
      </auth>
      <target dev='$dev' bus='virtio'/>
    </disk>
EOF
}

# Domain XML on stdin -> stdout with the <disk> whose target is DEV replaced
# by DISKXML; fails (3) when there is no such disk.
_ceph_swap_disk () {   # DEV DISKXML
    awk -v dev="$1" -v repl="$2" '
        /<disk[ >]/ { inblk = 1; blk = "" }
        inblk {
            blk = blk $0 "\n"
            if ($0 ~ /<\/disk>/) {
                inblk = 0
                if (blk ~ ("<target dev=.(" dev ")."))  { print repl; swapped = 1 }
                else                                    { printf "%s", blk }
            }
            next
        }
        { print }
        END { if (!swapped) exit 3 }'
}

# A persistent TCG test guest whose vda is the RBD image POOL/IMG (it must
# exist and be >= 2 MiB) and, with --second-disk, whose vdb is a local qcow2
# overlay ("mixed"). Made by lv_create_guest --shutoff; then vda is swapped
# for the RBD disk, the domain redefined and started with lv_start_guest,
# which returns once the console shows records (bounded). Needs the
# secret of CLIENT in that daemon (ceph_lv_secret). Files are in DIR/NAME/.
ceph_lv_guest () {   # URI NAME DIR POOL/IMG [--client C] [--port v1|v2] [--second-disk] [--agent] [--rbd-disk DEV=POOL/IMG]...
    local uri=${1:?usage: ceph_lv_guest URI NAME DIR POOL/IMG [--client C] [--port v1|v2] [--second-disk] [--agent] [--rbd-disk DEV=POOL/IMG]...}
    local name=${2:?} dir=${3:?} spec=${4:?} client=admin kind=v1
    local -a lvopts=(--shutoff) extra=()
    shift 4
    while [ $# -gt 0 ]; do
        case $1 in
            --client) client=${2:?}; shift 2 ;;
            --port) kind=${2:?}; shift 2 ;;
            --second-disk) lvopts+=(--second-disk); shift ;;
            --agent) lvopts+=(--agent); shift ;;
            --rbd-disk)
                [[ ${2:-} =~ ^vd[b-z]=[^=/]+/[^=]+$ ]] ||
                    { _ceph_err "ceph_lv_guest: --rbd-disk wants DEV=POOL/IMG, not '${2:-}'"; return 2; }
                extra+=("$2"); shift 2 ;;
            *) _ceph_err "ceph_lv_guest: unknown option $1"; return 2 ;;
        esac
    done
    local gdir xml disk out t0
    lv_create_guest "$uri" "$name" "$dir" "${lvopts[@]}" || return 1
    gdir=$(cd "$dir" && pwd -P)/$name
    rm -f "$gdir/disk.qcow2"        # lv_create_guest's vda overlay: unused
    disk=$(ceph_lv_disk_xml "$spec" vda "$client" "$kind") || return 1
    xml=$(timeout 30 virsh -q -c "$uri" dumpxml --inactive "$name") || return 1
    if ! printf '%s\n' "$xml" | _ceph_swap_disk vda "$disk" >"$gdir/domain-rbd.xml"; then
        _ceph_err "ceph_lv_guest: no vda disk in the XML of $name"
        return 1
    fi
    local e more=""
    for e in "${extra[@]}"; do
        more+=$(ceph_lv_disk_xml "${e#*=}" "${e%%=*}" "$client" "$kind")$'\n' || return 1
    done
    if [ -n "$more" ]; then
        xml=$(MORE=$more awk '/<\/devices>/ && !done { printf "%s", ENVIRON["MORE"]; done = 1 }
                              { print }' "$gdir/domain-rbd.xml") || return 1
        printf '%s\n' "$xml" >"$gdir/domain-rbd.xml"
    fi
    if ! out=$(timeout 30 virsh -q -c "$uri" define "$gdir/domain-rbd.xml" 2>&1); then
        _ceph_err "ceph_lv_guest: virsh define failed: $out"
        return 1
    fi
    t0=$(_ceph_now)
    lv_start_guest "$uri" "$name" "$dir" || return 1
    echo "ceph_lv_guest: $name running on rbd:$spec, first records after $(_ceph_elapsed "$t0") s" >&2
}

# ---------------------------------------------------------------------------
# snapfleet glue (needs tests/lib.sh): the worker's [storage.rbd] section,
# what a job left in a pool, and freezing the cluster by recorded pid.
#
#   ceph_sf_worker NAME URI [section.key=value...]
#       sf_start_worker plus a [storage.rbd] section: ceph_conf = $CEPH_CONF,
#       client_id = snapfleet with the keyring of ceph_sf_keyring (never
#       admin), mode = clone, op_timeout = 30s; items
#       storage.rbd.KEY=VALUE override those ("storage.rbd.KEY" drops one),
#       like any other section.key=value of sf_start_worker. Call it in the
#       test's own shell (it spawns the worker and registers its stop).
#   ceph_rbd_snaps POOL/IMG      "NAME PROTECTED" per snapshot (PROTECTED true|false)
#   ceph_rbd_images POOL         the image names of POOL, one a line
#   ceph_sf_job_left POOL JOB    what job JOB left in POOL, one a line: IMG@snapfleet-CAT-JOB
#                                for its snapshots, IMG for its clones (*-snapfleet-CAT-JOB;
#                                CAT the running scheduler's sf_catalog_id);
#                                empty output = nothing; fails when Ceph does not answer
#   ceph_freeze DIR [NAME...]    SIGSTOP the recorded daemons NAME (mon.a, osd.0, mgr.x;
#                                default all of them) of the cluster in DIR
#   ceph_thaw DIR [NAME...]      SIGCONT them (default all; harmless when not stopped)

# sf_start_worker with a [storage.rbd] section in front of the caller's
# items (lib.sh's config writer splits "section.key" at the last dot, and a
# later item overrides an earlier one, "storage.rbd.KEY" alone drops it).
ceph_sf_worker () {   # NAME URI [section.key=value...]
    local name=${1:?usage: ceph_sf_worker NAME URI [section.key=value...]}
    local uri=${2:?usage: ceph_sf_worker NAME URI [section.key=value...]}
    shift 2
    local keyring
    keyring=$(ceph_sf_keyring rbd) || return 1
    sf_start_worker "$name" "$uri" \
        "storage.rbd.ceph_conf=${CEPH_CONF:?CEPH_CONF is not set}" \
        storage.rbd.client_id=snapfleet \
        "storage.rbd.keyring=$keyring" \
        storage.rbd.mode=clone \
        storage.rbd.op_timeout=30s \
        "$@"
}

# The worker's own cephx client, client.snapfleet, with the caps README's
# Security section gives (rbd profiles on POOL..., default rbd), made once;
# its keyring (mode 600) next to $CEPH_CONF. Prints the keyring's path.
ceph_sf_keyring () {   # [POOL...]
    local conf=${CEPH_CONF:?CEPH_CONF is not set} pool osd="" mgr="" keyring
    keyring=$(cd "$(dirname "$conf")" && pwd -P)/snapfleet.keyring
    for pool in "${@:-rbd}"; do
        osd+="${osd:+, }profile rbd pool=$pool"
        mgr+="${mgr:+, }profile rbd pool=$pool"
    done
    if ! (umask 077 && ceph_cli auth get-or-create client.snapfleet mon 'profile rbd' \
              osd "$osd" mgr "$mgr" -o "$keyring" >/dev/null); then
        _ceph_err "ceph_sf_keyring: cannot create client.snapfleet"
        return 1
    fi
    printf '%s\n' "$keyring"
}

#  A read-only rbd listing, again if the client crashed (Ceph 16's rbd can
#  abort at exit, "terminate called after throwing std::system_error" in its
#  io_context_pool thread: seen once in CI under load): up to three tries
#  on SIGABRT or SIGSEGV (134, 139); a timeout or a plain error is not
#  retried
_ceph_rbd_read () {
    local try rc out
    for try in 1 2 3; do
        rc=0
        out=$(ceph_rbd "$@") || rc=$?
        if [ "$rc" = 0 ]; then
            printf '%s\n' "$out"
            return 0
        fi
        [ "$rc" = 134 ] || [ "$rc" = 139 ] || return "$rc"
        echo "ceph.sh: rbd $* crashed (exit $rc), try $try of 3" >&2
    done
    return "$rc"
}

ceph_rbd_snaps () {   # POOL/IMG
    local out
    out=$(_ceph_rbd_read snap ls --format json "${1:?usage: ceph_rbd_snaps POOL/IMG}") || return 1
    jq -r '.[] | "\(.name) \(.protected // "false")"' <<<"$out"
}

ceph_rbd_images () {   # POOL
    local out
    out=$(_ceph_rbd_read ls --format json "${1:?usage: ceph_rbd_images POOL}") || return 1
    jq -r '.[]' <<<"$out"
}

ceph_sf_job_left () {   # POOL JOB
    local pool=${1:?usage: ceph_sf_job_left POOL JOB} job=${2:?usage: ceph_sf_job_left POOL JOB}
    local images img snaps name _ tag
    tag=snapfleet-$(sf_catalog_id)-$job || return 1
    images=$(ceph_rbd_images "$pool") || return 1
    for img in $images; do
        if [ "$img" != "${img%-"$tag"}" ]; then
            printf '%s\n' "$img"
        fi
        snaps=$(ceph_rbd_snaps "$pool/$img") || return 1
        while read -r name _; do
            [ "$name" = "$tag" ] && printf '%s@%s\n' "$img" "$name"
        done <<<"$snaps"
    done
    return 0
}

_ceph_signal () {   # SIG DIR [NAME...]
    local sig=$1 dir f name pid
    dir=$(_ceph_absdir "${2:?usage: ceph_freeze|ceph_thaw DIR [NAME...]}") || return 1
    shift 2
    local -a names=("$@")
    if [ ${#names[@]} = 0 ]; then
        for f in "$dir"/pids/*.pid; do
            [ -e "$f" ] || continue
            name=${f##*/}
            names+=("${name%.pid}")
        done
    fi
    for name in "${names[@]}"; do
        [ -f "$dir/pids/$name.pid" ] || { _ceph_err "no recorded pid for $name in $dir"; return 1; }
        pid=$(cat "$dir/pids/$name.pid")
        if _ceph_pid_is_ours "$pid" "$dir/ceph.conf"; then
            kill "-$sig" "$pid" || return 1
        elif [ "$sig" = STOP ]; then
            _ceph_err "$name (pid $pid) is not running"
            return 1
        fi
    done
}

ceph_freeze () { _ceph_signal STOP "$@"; }

ceph_thaw () { _ceph_signal CONT "$@"; }
