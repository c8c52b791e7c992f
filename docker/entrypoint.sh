#!/bin/bash
#  snapfleet container entrypoint: ROLE [ARGS...]
#
#    scheduler            write scheduler.conf from the environment, exec the scheduler
#    worker               start libvirtd (privileged container), create the demo
#                         guests named in SNAPFLEET_DEMO_GUESTS, exec the worker
#    cli ARGS...          exec the snapfleet CLI (SNAPFLEET_ADMIN picks the scheduler)
#    demo-guests NAME...  create guests in this container's libvirtd (NAME:shutoff
#                         defines one without starting it), e.g. through
#                         `docker compose exec worker1 snapfleet-entrypoint demo-guests x`
#    anything else        exec'd as a command (e.g. bash)
#
#  SNAPFLEET_CONFIG=FILE uses that file as is instead of writing one.
#
#  CURVE keys live in SNAPFLEET_KEYS (default /etc/snapfleet). The
#  scheduler makes its key pair and an admin's there if missing (the
#  admin's public key enrolled in admins/); a worker makes its own and, for
#  the demo, enrols itself by copying its public key into workers/ (the
#  compose file shares the directory between the containers; a real
#  deployment enrols by hand, see README "Security").
set -euo pipefail

role=${1:-scheduler}
[ $# -gt 0 ] && shift
state=/var/lib/snapfleet

log () { printf 'snapfleet-entrypoint: %s\n' "$*" >&2; }

keys=${SNAPFLEET_KEYS:-/etc/snapfleet}
node=${NODE_NAME:-$(hostname -s)}

#  keygen NAME [DIR]: the key pair $keys/NAME unless it exists; with DIR,
#  its public key is copied into $keys/DIR (enrolled)
keygen ()
{
    mkdir -p "$keys/workers" "$keys/admins"
    [ -e "$keys/$1" ] || snapfleet keygen "$1" "$keys" >/dev/null
    if [ -n "${2:-}" ]; then
        cp "$keys/$1" "$keys/$2/$1"
    fi
}

scheduler_conf ()
{
    cat <<EOF
[scheduler]
bind         = ${SNAPFLEET_BIND:-tcp://0.0.0.0:7600}
admin_bind   = ${SNAPFLEET_ADMIN_BIND:-tcp://0.0.0.0:7601}
database     = ${SNAPFLEET_DATABASE:-$state/db/scheduler.db}
heartbeat    = ${SNAPFLEET_HEARTBEAT:-1s}
node_timeout = ${SNAPFLEET_NODE_TIMEOUT:-5s}
[log]
level  = ${SNAPFLEET_LOG_LEVEL:-info}
format = ${SNAPFLEET_LOG_FORMAT:-text}
[security]
cert    = $keys/scheduler
workers = $keys/workers
admins  = $keys/admins
EOF
}

worker_conf ()
{
    cat <<EOF
[worker]
name      = $node
scheduler = ${SNAPFLEET_SCHEDULER:-tcp://scheduler:7600}
max_jobs  = ${SNAPFLEET_MAX_JOBS:-2}
workdir   = ${SNAPFLEET_WORKDIR:-$state/work}
heartbeat = ${SNAPFLEET_HEARTBEAT:-1s}
inventory_interval = ${SNAPFLEET_INVENTORY_INTERVAL:-5s}
[hypervisor]
uri = ${SNAPFLEET_HV_URI:-qemu:///system}
[imagestore]
driver = dir
path   = ${SNAPFLEET_IMAGES:-$state/images}
[pause]
max_pause = ${SNAPFLEET_MAX_PAUSE:-10m}
[log]
level  = ${SNAPFLEET_LOG_LEVEL:-info}
format = ${SNAPFLEET_LOG_FORMAT:-text}
[security]
cert          = $keys/$node
scheduler_key = $keys/scheduler
EOF
}

#  The config file for ROLE: SNAPFLEET_CONFIG, or one written from the environment
config ()
{
    if [ -n "${SNAPFLEET_CONFIG:-}" ]; then
        printf '%s\n' "$SNAPFLEET_CONFIG"
        return
    fi
    mkdir -p /run/snapfleet
    "$1_conf" >"/run/snapfleet/$1.conf"
    printf '%s\n' "/run/snapfleet/$1.conf"
}

#  A system libvirtd (and its log daemon) private to this container
start_libvirtd ()
{
    local i
    virsh -c qemu:///system version >/dev/null 2>&1 && return 0
    virtlogd --daemon
    LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd --daemon
    for i in $(seq 100); do
        virsh -c qemu:///system version >/dev/null 2>&1 && return 0
        sleep 0.3
    done
    log "libvirtd did not answer within 30 s; /var/log/libvirt/libvirtd.log says:"
    grep ' error : ' /var/log/libvirt/libvirtd.log | tail -n 5 >&2
    return 1
}

#  demo_guests NAME[:shutoff]...: the test suite's busybox guest (TCG,
#  64 MiB disk), made with tests/lib/libvirt.sh. Existing guests are
#  started again if they should run.
demo_guests ()
{
    local spec name dom
    export LV_USER=root LV_GUEST_DIR=$state/guest
    # shellcheck source=../tests/lib/libvirt.sh
    . /usr/lib/snapfleet/libvirt.sh
    for spec in "$@"; do
        name=${spec%:shutoff}
        if dom=$(virsh -q -c qemu:///system domstate "$name" 2>/dev/null); then
            if [ "$spec" = "$name" ] && [ "$dom" = "shut off" ]; then
                lv_start_guest qemu:///system "$name" "$state/guests"
            fi
        elif [ "$spec" = "$name" ]; then
            lv_create_guest qemu:///system "$name" "$state/guests"
        else
            lv_create_guest qemu:///system "$name" "$state/guests" --shutoff
        fi
    done
}

case $role in
    scheduler)
        keygen scheduler
        keygen admin admins
        conf=$(config scheduler)
        exec snapfleet-scheduler --config "$conf"
        ;;
    worker)
        keygen "$node" workers
        for _ in $(seq 100); do
            [ -e "$keys/scheduler" ] && break
            sleep 0.3
        done
        [ -e "$keys/scheduler" ] || log "no scheduler key in $keys yet: the worker will not start"
        conf=$(config worker)
        start_libvirtd
        # shellcheck disable=SC2086
        demo_guests ${SNAPFLEET_DEMO_GUESTS:-} || log "demo guests: some failed (see above)"
        exec snapfleet-worker --config "$conf"
        ;;
    cli)
        exec snapfleet "$@"
        ;;
    demo-guests)
        start_libvirtd
        demo_guests "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
