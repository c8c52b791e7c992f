# shellcheck shell=bash
#  tests/lib/svcpid.sh: a service of a test harness (lib/glance.sh,
#  lib/keystone.sh) run in the background, its pid recorded in a file, and
#  stopped by that pid after checking its command line: never by name.
#
#    svc_free_port
#        A TCP port nobody listens on now (error: "CALLER: error: no free
#        port").
#    svc_exists PID
#        Is process PID there, not a zombie?
#    svc_alive PIDFILE MARK
#        Does the pid recorded in PIDFILE run with MARK in its command line?
#    svc_signal PIDFILE MARK SIG TIMEOUT NAME
#        If it does, send it SIG and wait TIMEOUT s for it to end, then
#        SIGKILL it ("CALLER: error: NAME (pid P) ignored SIGSIG: SIGKILL");
#        reap it, remove PIDFILE.
#
#  Safe under `set -euo pipefail`.

svc_exists ()
{
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ]
}

svc_free_port ()
{
    local port i hex
    for ((i = 0; i < 500; i++)); do
        port=$((32000 + RANDOM % 20000))
        hex=$(printf ':%04X ' "$port")
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -qi -- "$hex"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    printf '%s: error: %s\n' "${FUNCNAME[1]:-svcpid.sh}" "no free port" >&2
    return 1
}

svc_alive ()
{
    local pidfile=$1 mark=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$mark"
}

svc_signal ()
{
    local pidfile=$1 mark=$2 sig=$3 timeout=$4 name=$5 pid i
    [ -f "$pidfile" ] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    if svc_alive "$pidfile" "$mark"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 20; i++)); do
            svc_alive "$pidfile" "$mark" || break
            sleep 0.05
        done
        if svc_alive "$pidfile" "$mark"; then
            printf '%s: error: %s\n' "${FUNCNAME[1]:-svcpid.sh}" \
                "$name (pid $pid) ignored SIG$sig: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}
