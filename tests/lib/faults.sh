# shellcheck shell=bash
#  tests/lib/faults.sh: the fault-injection suite's parts (tests/faults/),
#  sourced after lib.sh and lib/fleet.sh.
#
#    faults_netns NAME
#        A network namespace NAME-ns and a veth pair between it and this
#        host (FAULT_HOST_IP on this side, FAULT_NS_IP inside), made by
#        this test and removed at exit. A worker started with
#        SF_WORKER_NETNS=$FAULT_NS reaches the scheduler only over it.
#    faults_link up|down
#        Cut or restore that link (the namespace's end of the pair).
#    faults_rand LO HI
#        A number in LO..HI from bash's RANDOM (seeded by the test).
#    faults_pause_report EVENTS... 
#        From sf-lifewatch --all files: "LONGEST_MS OPEN COUNT" of every
#        SUSPENDED..RESUMED interval (OPEN: intervals never closed).
#    faults_pauses_of DOMAIN@NODE EVENTS...
#        The number of pause intervals of one domain.
#    faults_mark KIND NODE
#        Note a fault in $SF_TMP/faults.events ("MS KIND NODE"), once it
#        has happened: KILL (its worker SIGKILLed and gone).
#    faults_uploads SAMPLES
#        Like fleet_uploads (one "START END NAME" per temporary file seen
#        in a sf_storewatch samples file), but an upload whose worker was
#        killed ends at that kill: its temp file stays (for gc to remove)
#        but nothing writes it any more. The
#        node is the store-NODE directory in the file's path.
#    faults_wait_bulk ID TIMEOUT_S
#        Wait until bulk ID is over (its state is not "running"), asking
#        the scheduler once a second and riding out its restarts; prints
#        the final `bulk show ID --jobs` JSON. Returns 1 on timeout.

faults_rand ()
{
    local lo=${1:?usage: faults_rand LO HI} hi=${2:?}
    printf '%s\n' $((lo + RANDOM % (hi - lo + 1)))
}

faults_netns ()
{
    local name=${1:?usage: faults_netns NAME} net
    sf_need ip
    FAULT_NS=$name-ns
    FAULT_VETH_HOST=${name}h
    FAULT_VETH_NS=${name}n
    #  A /30 in 10.213.0.0/16 chosen by our pid, so tests side by side differ
    net=$$
    FAULT_HOST_IP=10.213.$((net / 64 % 256)).$((net % 64 * 4 + 1))
    FAULT_NS_IP=10.213.$((net / 64 % 256)).$((net % 64 * 4 + 2))
    sf_cleanup_push _faults_netns_del "$FAULT_NS" "$FAULT_VETH_HOST"
    ip netns add "$FAULT_NS" || sf_die "cannot create network namespace $FAULT_NS"
    ip link add "$FAULT_VETH_HOST" type veth peer name "$FAULT_VETH_NS" ||
        sf_die "cannot create veth pair $FAULT_VETH_HOST"
    ip link set "$FAULT_VETH_NS" netns "$FAULT_NS"
    ip addr add "$FAULT_HOST_IP/30" dev "$FAULT_VETH_HOST"
    ip link set "$FAULT_VETH_HOST" up
    ip -n "$FAULT_NS" addr add "$FAULT_NS_IP/30" dev "$FAULT_VETH_NS"
    ip -n "$FAULT_NS" link set "$FAULT_VETH_NS" up
    ip -n "$FAULT_NS" link set lo up
    export FAULT_NS FAULT_HOST_IP FAULT_NS_IP
}

_faults_netns_del ()
{
    ip link del "$2" 2>/dev/null || true
    ip netns del "$1" 2>/dev/null || true
    return 0
}

faults_link ()
{
    ip -n "${FAULT_NS:?no namespace}" link set "$FAULT_VETH_NS" "${1:?usage: faults_link up|down}"
}

faults_pause_report ()
{
    fleet_pauses "$@" | awk '
        $2 == "open" { open++; n++; next }
        { d = $2 - $1; if (d > max) max = d; n++ }
        END { printf "%d %d %d\n", max + 0, open + 0, n + 0 }'
}

faults_pauses_of ()
{
    local who=${1:?usage: faults_pauses_of DOMAIN@NODE EVENTS...}
    shift
    fleet_pauses "$@" | awk -v who="$who" '$3 == who { n++ } END { print n + 0 }'
}

faults_mark ()
{
    printf '%s %s %s\n' "$(_sf_now_ms)" "${1:?usage: faults_mark KIND NODE}" "${2:?}" \
        >>"$SF_TMP/faults.events"
}

faults_uploads ()
{
    local samples=${1:?usage: faults_uploads SAMPLES}
    touch "$SF_TMP/faults.events"
    awk '
        FNR == NR { if ($2 == "KILL") { nf++; ft[nf] = $1; fn[nf] = $3 }; next }
        $2 == "END" { next }
        {
            delete now
            for (i = 3; i <= NF; i++) {
                now[$i] = 1
                if (!($i in start)) { start[$i] = $1; order[++count] = $i }
            }
            for (p in seen) if (!(p in now) && !(p in stop)) stop[p] = $1
            delete seen
            for (p in now) seen[p] = 1
        }
        END {
            for (i = 1; i <= count; i++) {
                p = order[i]
                node = p; sub(/.*\/store-/, "", node); sub(/\/.*/, "", node)
                end = (p in stop) ? stop[p] : "open"
                for (k = 1; k <= nf; k++)
                    if (fn[k] == node && ft[k] >= start[p] && (end == "open" || ft[k] < end))
                        end = ft[k]
                name = p; sub(/.*\//, "", name)
                print start[p], end, name
            }
        }' "$SF_TMP/faults.events" "$samples" | sort -n -k1,1
}

faults_wait_bulk ()
{
    local id=${1:?usage: faults_wait_bulk ID TIMEOUT_S} t=${2:-300} deadline out
    deadline=$(($(_sf_now_ms) + t * 1000))
    while [ "$(_sf_now_ms)" -lt "$deadline" ]; do
        out=$(sf_cli --timeout 5 bulk show "$id" --jobs --format json 2>/dev/null || true)
        if [ -n "$out" ] && jq -e '.state != "running"' >/dev/null 2>&1 <<<"$out"; then
            printf '%s\n' "$out"
            return 0
        fi
        sleep 1
    done
    sf_cli --timeout 5 bulk show "$id" --jobs --format json 2>/dev/null || true
    return 1
}
