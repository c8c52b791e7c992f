# shellcheck shell=bash
#  tests/lib/libvirt.sh: the real libvirt + QEMU parts of the test harness.
#
#  Sourced (by tests/lib.sh or directly). Every function is prefixed lv_,
#  private helpers _lv_. Nothing here needs systemd, KVM or /etc changes:
#
#    lv_build_guest DIR
#        Kernel copy + busybox initramfs whose /init writes sequence records
#        (notes/libvirt.md sections 2 and 4). Cached: rebuilt only when an
#        input (kernel, modules, busybox, the /init text) changed. Exports
#        LV_GUEST_DIR=DIR for lv_create_guest. Also holds the random raw
#        bases (base-<bytes>.raw) and the libvirt capability cache seed.
#    lv_start_node DIR
#        One unprivileged qemu:///session libvirtd with HOME/XDG dirs under
#        DIR, run as the system user snapfleet-test (created if missing).
#        Prints the URI on stdout and exports LV_URI (only when not run in a
#        $(...) subshell). Pids are recorded under DIR/pids.
#    lv_create_guest URI NAME DIR [--size 64M] [--shutoff] [--second-disk] [--agent]
#        Persistent TCG domain NAME with a qcow2 overlay DIR/NAME/disk.qcow2
#        (DIR/NAME/disk2.qcow2 = vdb with --second-disk) on a random raw
#        base, serial console in DIR/NAME/console.log. Returns once the
#        guest printed its first "GUEST seq=" line (bounded, LV_BOOT_TIMEOUT).
#        --agent: the guest also runs the QEMU guest agent (qemu-ga of the
#        host's qemu-guest-agent package, copied into an extra initramfs
#        layered over the cached one) on a virtio channel
#        org.qemu.guest_agent.0 bound at DIR/NAME/qga.sock. The records are
#        written to the raw disks, so an fsfreeze freezes no filesystem.
#    lv_start_guest URI NAME DIR
#        Start (or restart) a guest made by lv_create_guest; returns once
#        this boot wrote its first records.
#    lv_guest_seq LOG
#        Last complete "GUEST seq=N" on a console log (0 if none).
#    lv_wait_seq LOG N [TIMEOUT_S]
#        Wait until lv_guest_seq LOG >= N (bounded, default 30 s).
#    lv_stop_node DIR
#        Destroy + undefine every domain, stop libvirtd and virtlogd by
#        recorded pid, then any QEMU whose pid file is under DIR.
#    lv_node_pids DIR
#        Recorded pids of the node (libvirtd, virtlogd, QEMU) still alive.
#
#  Guest records (what tests check with tests/tools/sf-records): record n
#  (n = 1, 2, ...) is 512 bytes "VMREC <bootid> <n:010> <n:010> END\n" plus
#  zero padding at sector 2048+n of /dev/vda, written with O_DIRECT + fsync;
#  record n+1 is issued only after record n completed. With a second disk
#  the guest writes record n to vda, then to vdb, then moves on (lock-step:
#  K(vdb) is K(vda) or K(vda)-1 at any instant). Every 10 records the guest
#  prints "GUEST seq=N up=SECONDS" on the serial console. The boot id is
#  16 random hex digits, new at every boot ("GUEST boot bootid=... disks=..."
#  on the console).
#
#  Tunables (environment): LV_USER (snapfleet-test), LV_GUEST_MEM_MIB (128),
#  LV_GUEST_PACE_MS (unset: records back to back; N: the guest sleeps N ms
#  after each record, "sfpace=" on its kernel command line, so many guests
#  on one small machine leave CPU for the rest; read at guest creation),
#  LV_BOOT_TIMEOUT (60), LV_READY_TIMEOUT (60: daemon readiness; a cold
#  capability probe takes ~5 s), LV_STOP_TIMEOUT (10: TERM before KILL).
#
#  Safe under `set -euo pipefail`. Processes are only ever stopped by pid
#  read from a pid file we own, after checking /proc/PID/exe.

LV_USER=${LV_USER:-snapfleet-test}
LV_GUEST_MEM_MIB=${LV_GUEST_MEM_MIB:-128}
LV_BOOT_TIMEOUT=${LV_BOOT_TIMEOUT:-60}
LV_READY_TIMEOUT=${LV_READY_TIMEOUT:-60}
LV_STOP_TIMEOUT=${LV_STOP_TIMEOUT:-10}
#  Modules of the guest kernel, in load order (the cloud kernel has them =m)
LV_GUEST_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
#  Bump when the initramfs layout changes in a way the stamp cannot see
LV_GUEST_RECIPE=2
#  The same for the extra archive of lv_create_guest --agent
LV_AGENT_RECIPE=2

_lv_msg () { printf '%s\n' "$*" >&2; }
_lv_err () { printf '%s: error: %s\n' "${FUNCNAME[1]:-libvirt.sh}" "$*" >&2; }
_lv_now_ms () { local t; t=$(date +%s%N); printf '%s\n' $((t / 1000000)); }

#  Run a command as the unprivileged test user, with a clean environment
_lv_as_user ()
{
    setpriv --reuid="$LV_USER" --regid="$LV_USER" --clear-groups -- "$@"
}

#  ---------------------------------------------------------------------
#  The /init of the guest. Busybox ash; the first line must name busybox
#  (with #!/bin/sh the kernel panics: no /bin/sh before --install).
_lv_guest_init ()
{
    cat <<'EOF'
#!/bin/busybox sh
#  snapfleet test guest (tests/lib/libvirt.sh): writes sequence records
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
halt_here () {
    while :; do sleep 3600; done
}
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko" || echo "GUEST error insmod $m"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ ! -b /dev/vda ]; then
    echo "GUEST error no /dev/vda"
    poweroff -f
fi
disks=/dev/vda
if [ -e /sys/block/vdb ]; then
    i=0
    while [ ! -b /dev/vdb ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    disks="/dev/vda /dev/vdb"
fi
bootid=$(tr -d '-' </proc/sys/kernel/random/uuid | cut -c1-16)
pace=""
for a in $(cat /proc/cmdline); do
    case $a in sfpace=*) pace=${a#sfpace=} ;; esac
done
echo "GUEST boot bootid=$bootid disks=$disks"
n=1
while :; do
    for d in $disks; do
        if ! printf 'VMREC %s %010d %010d END\n' "$bootid" "$n" "$n" |
            dd of="$d" bs=512 count=1 seek=$((2048 + n)) \
                conv=sync,notrunc,fsync oflag=direct 2>/dev/null; then
            echo "GUEST error write n=$n dev=$d"
            halt_here
        fi
    done
    if [ $((n % 10)) -eq 0 ]; then
        read -r up _ </proc/uptime
        echo "GUEST seq=$n up=$up"
    fi
    n=$((n + 1))
    [ -n "$pace" ] && usleep "$pace"
done
EOF
}

#  Newest installed cloud kernel: /boot/vmlinuz-VERSION-cloud-amd64
_lv_kernel ()
{
    local k
    k=$(printf '%s\n' /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n 1)
    if [ ! -f "$k" ]; then
        _lv_err "no /boot/vmlinuz-*-cloud-amd64 (install linux-image-cloud-amd64)"
        return 1
    fi
    printf '%s\n' "$k"
}

#  Module file for NAME in the kernel VER's tree (.ko, .ko.xz, .ko.zst,
#  .ko.gz); empty output if NAME is built in
_lv_module_file ()
{
    local ver=$1 name=$2 moddir=/lib/modules/$1 f=""
    if [ -r "$moddir/modules.dep" ]; then
        f=$(grep -E -o "^([^:]*/)?$name\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" |
            head -n 1 || true)
        f=${f%:}
        [ -n "$f" ] && f=$moddir/$f
    fi
    if [ -z "$f" ] || [ ! -f "$f" ]; then
        f=$(find "$moddir/kernel" -name "$name.ko" -o -name "$name.ko.xz" \
                 -o -name "$name.ko.zst" -o -name "$name.ko.gz" | head -n 1)
    fi
    if [ -n "$f" ]; then
        printf '%s\n' "$f"
    elif grep -q "/$name\.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
        :
    else
        _lv_err "module $name of kernel $ver not found under $moddir"
        return 1
    fi
}

#  Copy a module uncompressed (busybox insmod takes plain .ko only)
_lv_module_copy ()
{
    local src=$1 dst=$2
    case $src in
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.zst) zstd -q -dc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
        *) cp "$src" "$dst" ;;
    esac
}

#  ---------------------------------------------------------------------
#  lv_build_guest DIR
lv_build_guest ()
{
    local dir=${1:?usage: lv_build_guest DIR}
    local kernel ver busybox m f stamp_new stamp_old="" lockfd stage
    local modfiles=() t0
    t0=$(_lv_now_ms)
    kernel=$(_lv_kernel) || return 1
    ver=${kernel#/boot/vmlinuz-}
    #  busybox-static installs /bin/busybox (the guest has no libc)
    busybox=/bin/busybox
    if [ ! -x "$busybox" ]; then
        _lv_err "no $busybox (install busybox-static)"
        return 1
    fi
    for m in $LV_GUEST_MODULES; do
        f=$(_lv_module_file "$ver" "$m") || return 1
        [ -n "$f" ] && modfiles+=("$f")
    done
    mkdir -p "$dir"
    chmod 755 "$dir"
    exec {lockfd}>"$dir/.lock"
    if ! flock -w 300 "$lockfd"; then
        _lv_err "timed out waiting for the build lock $dir/.lock"
        exec {lockfd}>&-
        return 1
    fi
    stamp_new=$({
        echo "recipe $LV_GUEST_RECIPE modules $LV_GUEST_MODULES"
        stat -L -c '%n %s %Y' "$kernel" "$busybox" "${modfiles[@]}"
        _lv_guest_init
    } | sha256sum | cut -d' ' -f1)
    [ -f "$dir/stamp" ] && stamp_old=$(cat "$dir/stamp")
    if [ "$stamp_new" = "$stamp_old" ] && [ -f "$dir/vmlinuz" ] &&
        [ -f "$dir/initramfs.cpio.gz" ]; then
        export LV_GUEST_DIR=$dir
        exec {lockfd}>&-
        return 0
    fi
    _lv_msg "lv_build_guest: building the test guest in $dir (kernel $ver)"
    rm -f "$dir/stamp"
    stage=$(mktemp -d "$dir/stage.XXXXXX")
    mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/lib/modules"
    cp "$busybox" "$stage/bin/busybox"
    : >"$stage/lib/modules/order"
    for f in "${modfiles[@]}"; do
        m=${f##*/}
        m=${m%%.ko*}
        _lv_module_copy "$f" "$stage/lib/modules/$m.ko"
        echo "$m" >>"$stage/lib/modules/order"
    done
    _lv_guest_init >"$stage/init"
    chmod 755 "$stage/init" "$stage/bin/busybox"
    #  The kernel opens /dev/console before /init runs; without the node
    #  the first lines go nowhere (the /init reopens it after devtmpfs)
    mknod "$stage/dev/console" c 5 1 2>/dev/null || true
    if ! (cd "$stage" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc -R 0:0 --quiet) | gzip -9n >"$dir/initramfs.cpio.gz.tmp"; then
        _lv_err "cpio/gzip of the initramfs failed"
        rm -rf "$stage"
        exec {lockfd}>&-
        return 1
    fi
    rm -rf "$stage"
    #  /boot is root-only on many hosts and QEMU runs unprivileged: copy
    cp "$kernel" "$dir/vmlinuz.tmp"
    chmod 644 "$dir/vmlinuz.tmp" "$dir/initramfs.cpio.gz.tmp"
    mv -f "$dir/vmlinuz.tmp" "$dir/vmlinuz"
    mv -f "$dir/initramfs.cpio.gz.tmp" "$dir/initramfs.cpio.gz"
    echo "$stamp_new" >"$dir/stamp"
    exec {lockfd}>&-
    export LV_GUEST_DIR=$dir
    _lv_msg "lv_build_guest: built in $(($(_lv_now_ms) - t0)) ms"
}

#  Raw base of SIZE bytes of random data, shared by every guest of that
#  size (read-only backing file). Prints its path.
_lv_base ()
{
    local bytes=$1 base lockfd
    base=$LV_GUEST_DIR/base-$bytes.raw
    exec {lockfd}>"$LV_GUEST_DIR/.lock"
    flock -w 300 "$lockfd" || {
        exec {lockfd}>&-
        _lv_err "timed out waiting for $LV_GUEST_DIR/.lock"
        return 1
    }
    if [ ! -f "$base" ]; then
        if ! head -c "$bytes" /dev/urandom >"$base.tmp"; then
            exec {lockfd}>&-
            _lv_err "cannot write $base.tmp"
            return 1
        fi
        chmod 644 "$base.tmp"
        mv -f "$base.tmp" "$base"
    fi
    exec {lockfd}>&-
    printf '%s\n' "$base"
}

#  ---------------------------------------------------------------------
#  Create the test user once (a system account, no home, no shell)
_lv_ensure_user ()
{
    id -u "$LV_USER" >/dev/null 2>&1 && return 0
    _lv_msg "lv_start_node: creating the unprivileged system user '$LV_USER' (runs libvirtd and QEMU for the tests)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$LV_USER" 2>/dev/null || true
    id -u "$LV_USER" >/dev/null 2>&1 || {
        _lv_err "useradd $LV_USER failed (are we root?)"
        return 1
    }
}

#  _lv_pid_if FILE GLOB [NODE_DIR]: the pid in FILE if that process is
#  alive, its executable's base name matches GLOB and, with NODE_DIR, it
#  belongs to that node (HOME=NODE_DIR in its environment: libvirtd sets it,
#  virtlogd and QEMU inherit it). Empty output otherwise (stale file, pid
#  reused by something else, e.g. another node's or another user's QEMU).
_lv_pid_if ()
{
    local file=$1 glob=$2 node=${3:-} pid exe
    [ -r "$file" ] || return 0
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] || return 0
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
    exe=${exe% (deleted)}
    # shellcheck disable=SC2254
    case ${exe##*/} in
        $glob) ;;
        *) return 0 ;;
    esac
    if [ -n "$node" ] && ! grep -qzxF "HOME=$node" "/proc/$pid/environ" 2>/dev/null; then
        return 0
    fi
    printf '%s\n' "$pid"
}

_lv_alive () { [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

#  Stop PID (already checked by _lv_pid_if): TERM, bounded wait, KILL
_lv_stop_pid ()
{
    local pid=$1 what=$2 i=0 limit=$((LV_STOP_TIMEOUT * 20))
    kill -TERM "$pid" 2>/dev/null || return 0
    while _lv_alive "$pid" && [ $i -lt "$limit" ]; do
        sleep 0.05
        i=$((i + 1))
    done
    if _lv_alive "$pid"; then
        _lv_msg "lv_stop_node: $what pid $pid ignored TERM for ${LV_STOP_TIMEOUT}s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        i=0
        while _lv_alive "$pid" && [ $i -lt 100 ]; do
            sleep 0.05
            i=$((i + 1))
        done
    fi
    if _lv_alive "$pid"; then
        _lv_err "$what pid $pid survived KILL"
        return 1
    fi
}

#  Copy the pid files libvirt manages (they vanish when a domain or the
#  log daemon stops) into DIR/pids, so lv_stop_node can still find them
_lv_record_pids ()
{
    local dir=$1 f name
    mkdir -p "$dir/pids"
    [ -r "$dir/run/libvirt/virtlogd.pid" ] &&
        cp "$dir/run/libvirt/virtlogd.pid" "$dir/pids/virtlogd.pid"
    for f in "$dir"/run/libvirt/qemu/run/*.pid; do
        [ -r "$f" ] || continue
        name=${f##*/}
        [ "$name" = driver.pid ] && continue
        cp "$f" "$dir/pids/qemu-$name"
    done
    return 0
}

_lv_uri_node_dir ()
{
    local uri=$1 sock
    case $uri in
        *socket=*/run/libvirt/libvirt-sock*) ;;
        *) return 0 ;;
    esac
    sock=${uri#*socket=}
    sock=${sock%%&*}
    printf '%s\n' "${sock%/run/libvirt/libvirt-sock}"
}

#  Keep the capability cache seed in step with what a node's libvirtd
#  (re)probed: a QEMU or libvirt upgrade invalidates the old files, and a
#  stale seed would make every node start cold again
_lv_caps_save ()
{
    local from=$1 seed=$2 f same=1 lockfd
    compgen -G "$from/*.xml" >/dev/null || return 0
    if [ -d "$seed" ]; then
        for f in "$from"/*.xml; do
            cmp -s "$f" "$seed/${f##*/}" || same=0
        done
        [ "$same" = 1 ] && return 0
    fi
    exec {lockfd}>"$seed.lock"
    if flock -w 30 "$lockfd"; then
        rm -rf "$seed.tmp"
        mkdir -p "$seed.tmp"
        cp "$from"/*.xml "$seed.tmp/"
        rm -rf "$seed"
        mv -T "$seed.tmp" "$seed"
    fi
    exec {lockfd}>&-
    return 0
}

#  lv_start_node DIR
lv_start_node ()
{
    local dir=${1:?usage: lv_start_node DIR}
    local uri sock t0 deadline pid probe caps
    _lv_ensure_user || return 1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    sock=$dir/run/libvirt/libvirt-sock
    #  sun_path is 108 bytes; QEMU's monitor socket is the longest path
    #  libvirt makes: config/libvirt/qemu/lib/domain-NNN-<20 chars>/monitor.sock
    probe=$dir/config/libvirt/qemu/lib/domain-999-xxxxxxxxxxxxxxxxxxxx/monitor.sock
    if [ ${#probe} -gt 107 ]; then
        _lv_err "node dir $dir is too long for unix sockets (keep it under ~45 characters)"
        return 1
    fi
    if [ -e "$dir/pids/libvirtd.pid" ] &&
        [ -n "$(_lv_pid_if "$dir/pids/libvirtd.pid" libvirtd "$dir")" ]; then
        _lv_err "a libvirtd already runs for $dir"
        return 1
    fi
    mkdir -p "$dir/run" "$dir/config" "$dir/cache" "$dir/data" "$dir/pids"
    #  Seed the capability cache: a cold probe of both QEMU binaries takes
    #  ~5 s, a warm start ~0.2 s (libvirt revalidates the files itself)
    caps=${LV_GUEST_DIR:+$LV_GUEST_DIR/libvirt-caps}
    if [ -n "$caps" ] && compgen -G "$caps/*.xml" >/dev/null; then
        mkdir -p "$dir/cache/libvirt/qemu/cache/capabilities"
        cp "$caps"/*.xml "$dir/cache/libvirt/qemu/cache/capabilities/"
    fi
    chown -R "$LV_USER:" "$dir"
    chmod 700 "$dir/run"
    chmod 755 "$dir"
    if ! _lv_as_user test -w "$dir"; then
        _lv_err "user $LV_USER cannot write $dir (a parent directory is not traversable: chmod o+x it)"
        return 1
    fi
    t0=$(_lv_now_ms)
    if ! (cd "$dir" && _lv_as_user env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$dir" XDG_RUNTIME_DIR="$dir/run" XDG_CONFIG_HOME="$dir/config" \
        XDG_CACHE_HOME="$dir/cache" XDG_DATA_HOME="$dir/data" \
        LIBVIRT_LOG_OUTPUTS="3:file:$dir/libvirtd.log" \
        libvirtd --daemon --pid-file "$dir/run/libvirtd.pid" \
        </dev/null >>"$dir/libvirtd.out" 2>&1); then
        _lv_err "libvirtd --daemon failed: $(tail -n 5 "$dir/libvirtd.out" 2>/dev/null)"
        return 1
    fi
    uri="qemu:///session?socket=$sock"
    echo "$uri" >"$dir/uri"
    deadline=$((t0 + LV_READY_TIMEOUT * 1000))
    pid=""
    while :; do
        [ -z "$pid" ] && pid=$(_lv_pid_if "$dir/run/libvirtd.pid" libvirtd "$dir")
        [ -n "$pid" ] && [ ! -e "$dir/pids/libvirtd.pid" ] &&
            echo "$pid" >"$dir/pids/libvirtd.pid"
        if [ -S "$sock" ] && timeout 10 virsh -q -c "$uri" version >/dev/null 2>&1; then
            break
        fi
        if [ "$(_lv_now_ms)" -gt "$deadline" ]; then
            _lv_err "libvirtd for $dir not ready after ${LV_READY_TIMEOUT}s; log tail:"
            tail -n 20 "$dir/libvirtd.log" >&2 2>/dev/null || true
            return 1
        fi
        if [ -n "$pid" ] && ! _lv_alive "$pid"; then
            _lv_err "libvirtd for $dir died during startup; log tail:"
            tail -n 20 "$dir/libvirtd.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
    [ -z "$pid" ] && pid=$(_lv_pid_if "$dir/run/libvirtd.pid" libvirtd "$dir")
    [ -n "$pid" ] && echo "$pid" >"$dir/pids/libvirtd.pid"
    [ -n "$caps" ] && _lv_caps_save "$dir/cache/libvirt/qemu/cache/capabilities" "$caps"
    _lv_msg "lv_start_node: $dir ready in $(($(_lv_now_ms) - t0)) ms (libvirtd pid ${pid:-?})"
    export LV_URI=$uri
    printf '%s\n' "$uri"
}

#  ---------------------------------------------------------------------
_lv_domain_xml ()
{
    local name=$1 gdir=$2 second=$3
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$LV_GUEST_MEM_MIB</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$LV_GUEST_DIR/vmlinuz</kernel>
    <initrd>$LV_GUEST_DIR/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 no_timer_check quiet${LV_GUEST_PACE_MS:+ sfpace=$((LV_GUEST_PACE_MS * 1000))}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$gdir/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
EOF
    if [ "$second" = 1 ]; then
        cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$gdir/disk2.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
EOF
    fi
    cat <<EOF
    <serial type='file'>
      <source path='$gdir/console.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='$gdir/console.log' append='on'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

#  lv_guest_seq LOG: the last complete "GUEST seq=N up=" line (a line cut
#  by a pause could read "seq=12" for 120, so the " up=" must follow)
lv_guest_seq ()
{
    local log=${1:?usage: lv_guest_seq LOG} n
    if [ ! -r "$log" ]; then
        echo 0
        return 0
    fi
    n=$(tail -c 65536 "$log" | grep -a -o 'GUEST seq=[0-9]* up=' | tail -n 1 |
        sed 's/GUEST seq=\([0-9]*\) up=/\1/' || true)
    printf '%s\n' "${n:-0}"
}

#  lv_wait_seq LOG N [TIMEOUT_S]
lv_wait_seq ()
{
    local log=${1:?usage: lv_wait_seq LOG N [TIMEOUT_S]} want=${2:?} t=${3:-30}
    local deadline
    deadline=$(($(_lv_now_ms) + t * 1000))
    while [ "$(lv_guest_seq "$log")" -lt "$want" ]; do
        if [ "$(_lv_now_ms)" -gt "$deadline" ]; then
            _lv_err "$log: seq $(lv_guest_seq "$log") < $want after ${t}s"
            return 1
        fi
        sleep 0.1
    done
}

#  lv_create_guest URI NAME DIR [--size 64M] [--shutoff] [--second-disk]
lv_create_guest ()
{
    local uri=${1:?usage: lv_create_guest URI NAME DIR [--size 64M] [--shutoff] [--second-disk] [--agent]}
    local name=${2:?} dir=${3:?} size=64M shutoff=0 second=0 agent=0
    local bytes base gdir out
    shift 3
    while [ $# -gt 0 ]; do
        case $1 in
            --size) size=${2:?--size needs a value}; shift 2 ;;
            --size=*) size=${1#--size=}; shift ;;
            --shutoff) shutoff=1; shift ;;
            --second-disk) second=1; shift ;;
            --agent) agent=1; shift ;;
            *) _lv_err "unknown option $1"; return 2 ;;
        esac
    done
    case $name in
        '' | *[!A-Za-z0-9_.-]*) _lv_err "bad domain name '$name'"; return 2 ;;
    esac
    if [ -z "${LV_GUEST_DIR:-}" ] || [ ! -f "$LV_GUEST_DIR/vmlinuz" ]; then
        _lv_err "no guest built: call lv_build_guest DIR first"
        return 1
    fi
    bytes=$(numfmt --from=iec "$size" 2>/dev/null) || {
        _lv_err "bad size '$size'"
        return 2
    }
    if [ "$bytes" -lt $((2 * 1024 * 1024)) ]; then
        _lv_err "size $size is below the 2 MiB the record area needs"
        return 2
    fi
    base=$(_lv_base "$bytes") || return 1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    gdir=$dir/$name
    mkdir -p "$gdir"
    rm -f "$gdir/disk.qcow2" "$gdir/disk2.qcow2" "$gdir/console.log"
    qemu-img create -q -f qcow2 -F raw -b "$base" "$gdir/disk.qcow2" || return 1
    if [ "$second" = 1 ]; then
        qemu-img create -q -f qcow2 -F raw -b "$base" "$gdir/disk2.qcow2" || return 1
    fi
    _lv_domain_xml "$name" "$gdir" "$second" >"$gdir/domain.xml"
    if [ "$agent" = 1 ]; then
        _lv_build_agent_initrd || return 1
        _lv_agent_xml "$gdir" <"$gdir/domain.xml" >"$gdir/domain.xml.tmp" &&
            mv -f "$gdir/domain.xml.tmp" "$gdir/domain.xml" || return 1
    fi
    chmod 755 "$dir"
    chown -R "$LV_USER:" "$gdir"
    if ! out=$(timeout 60 virsh -q -c "$uri" define "$gdir/domain.xml" 2>&1); then
        _lv_err "virsh define $name failed: $out"
        return 1
    fi
    if [ "$shutoff" = 1 ]; then
        _lv_msg "lv_create_guest: $name defined (shut off)"
        return 0
    fi
    lv_start_guest "$uri" "$name" "$dir"
}

#  ---------------------------------------------------------------------
#  The guest agent (lv_create_guest --agent)

#  /init-agent (rdinit=): starts qemu-ga in the background once /init has
#  mounted /sys and /dev and loaded virtio_console, then becomes /init
_lv_agent_init ()
{
    cat <<'EOF'
#!/bin/busybox sh
#  snapfleet test guest with the QEMU guest agent (tests/lib/libvirt.sh)
(
    i=0
    while [ $i -lt 600 ]; do
        for f in /sys/class/virtio-ports/*/name; do
            [ -r "$f" ] || continue
            if [ "$(/bin/busybox cat "$f")" = org.qemu.guest_agent.0 ]; then
                d=${f%/name}
                d=/dev/${d##*/}
                if [ -c "$d" ]; then
                    /bin/busybox mkdir -p /run/qga
                    echo "GUEST agent on $d"
                    exec /usr/sbin/qemu-ga -m virtio-serial -p "$d" -t /run/qga -l /run/qga/log
                fi
            fi
        done
        /bin/busybox sleep 0.1
        i=$((i + 1))
    done
    echo "GUEST agent: no org.qemu.guest_agent.0 port"
) </dev/console >/dev/console 2>&1 &
exec /init
EOF
}

#  LV_GUEST_DIR/initramfs-agent.cpio.gz: the cached initramfs with a second
#  archive appended (the kernel unpacks both, the later one wins): qemu-ga
#  and the libraries ldd names, virtio_console.ko added to the module
#  order, and /init-agent. Rebuilt when an input changed.
_lv_build_agent_initrd ()
{
    local dir=${LV_GUEST_DIR:?no guest built} qga kernel ver f lib stage stamp_new stamp_old=""
    local lockfd
    qga=$(command -v qemu-ga || true)
    [ -n "$qga" ] || qga=/usr/sbin/qemu-ga
    if [ ! -x "$qga" ]; then
        _lv_err "no qemu-ga (install qemu-guest-agent)"
        return 1
    fi
    kernel=$(_lv_kernel) || return 1
    ver=${kernel#/boot/vmlinuz-}
    f=$(_lv_module_file "$ver" virtio_console) || return 1
    exec {lockfd}>"$dir/.lock"
    if ! flock -w 300 "$lockfd"; then
        exec {lockfd}>&-
        _lv_err "timed out waiting for $dir/.lock"
        return 1
    fi
    stamp_new=$({
        echo "agent recipe $LV_AGENT_RECIPE"
        cat "$dir/stamp" 2>/dev/null
        stat -L -c '%n %s %Y' "$qga" ${f:+"$f"}
        _lv_agent_init
    } | sha256sum | cut -d' ' -f1)
    [ -f "$dir/stamp-agent" ] && stamp_old=$(cat "$dir/stamp-agent")
    if [ "$stamp_new" = "$stamp_old" ] && [ -f "$dir/initramfs-agent.cpio.gz" ]; then
        exec {lockfd}>&-
        return 0
    fi
    stage=$(mktemp -d "$dir/stage-agent.XXXXXX")
    mkdir -p "$stage/usr/sbin" "$stage/lib/modules" "$stage/run" "$stage/dev"
    #  ash gives a background job stdin from /dev/null, before devtmpfs
    mknod "$stage/dev/null" c 1 3 2>/dev/null || true
    cp "$qga" "$stage/usr/sbin/qemu-ga"
    for lib in $(ldd "$qga" | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }'); do
        [ -f "$lib" ] || continue
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
    gzip -dc "$dir/initramfs.cpio.gz" | (cd "$stage" && cpio -i --quiet lib/modules/order)
    if [ -n "$f" ]; then
        _lv_module_copy "$f" "$stage/lib/modules/virtio_console.ko"
        echo virtio_console >>"$stage/lib/modules/order"
    fi
    _lv_agent_init >"$stage/init-agent"
    chmod 755 "$stage/init-agent"
    if ! { cat "$dir/initramfs.cpio.gz" &&
        (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
            cpio --null -o -H newc -R 0:0 --quiet) | gzip -9n; } >"$dir/initramfs-agent.cpio.gz.tmp"; then
        _lv_err "cpio/gzip of the agent initramfs failed"
        rm -rf "$stage"
        exec {lockfd}>&-
        return 1
    fi
    rm -rf "$stage"
    chmod 644 "$dir/initramfs-agent.cpio.gz.tmp"
    mv -f "$dir/initramfs-agent.cpio.gz.tmp" "$dir/initramfs-agent.cpio.gz"
    echo "$stamp_new" >"$dir/stamp-agent"
    exec {lockfd}>&-
    _lv_msg "lv_build_guest: built the guest-agent initramfs"
}

#  Domain XML on stdin -> stdout with the agent initramfs, rdinit=/init-agent
#  and the org.qemu.guest_agent.0 channel (socket GDIR/qga.sock)
_lv_agent_xml ()
{
    local gdir=$1
    sed -e "s|<initrd>.*</initrd>|<initrd>$LV_GUEST_DIR/initramfs-agent.cpio.gz</initrd>|" \
        -e "s|<cmdline>\(.*\)</cmdline>|<cmdline>\1 rdinit=/init-agent</cmdline>|" \
        -e "s|^\(  *\)<memballoon|\1<channel type='unix'>\n\1  <source mode='bind' path='$gdir/qga.sock'/>\n\1  <target type='virtio' name='org.qemu.guest_agent.0'/>\n\1</channel>\n\1<memballoon|"
}

#  Last complete "GUEST seq=N up=" after byte OFFSET of LOG (0 if none)
_lv_seq_after ()
{
    local n
    n=$(tail -c +$(($2 + 1)) "$1" 2>/dev/null | grep -a -o 'GUEST seq=[0-9]* up=' |
        tail -n 1 | sed 's/GUEST seq=\([0-9]*\) up=/\1/' || true)
    printf '%s\n' "${n:-0}"
}

#  lv_start_guest URI NAME DIR: start the defined domain NAME (made by
#  lv_create_guest, files in DIR/NAME) and return once this boot printed
#  its first "GUEST seq=" line (bounded by LV_BOOT_TIMEOUT). Also for a
#  restart: the console log is appended to, only the new part counts, and
#  the new boot has a new boot id and counts from record 1 again.
lv_start_guest ()
{
    local uri=${1:?usage: lv_start_guest URI NAME DIR} name=${2:?} dir=${3:?}
    local gdir log off=0 ndir t0 deadline state i=0 out
    gdir=$(cd "$dir" && pwd -P)/$name
    log=$gdir/console.log
    [ -f "$log" ] && off=$(stat -c %s "$log")
    t0=$(_lv_now_ms)
    if ! out=$(timeout 60 virsh -q -c "$uri" start "$name" 2>&1); then
        _lv_err "virsh start $name failed: $out"
        return 1
    fi
    ndir=$(_lv_uri_node_dir "$uri")
    [ -n "$ndir" ] && _lv_record_pids "$ndir"
    deadline=$((t0 + LV_BOOT_TIMEOUT * 1000))
    while [ "$(_lv_seq_after "$log" "$off")" -lt 10 ]; do
        if tail -c +$((off + 1)) "$log" 2>/dev/null | grep -a -q 'GUEST error'; then
            _lv_err "guest $name failed: $(tail -c +$((off + 1)) "$log" | grep -a 'GUEST error' | head -n 3)"
            return 1
        fi
        i=$((i + 1))
        if [ $((i % 10)) -eq 0 ]; then
            state=$(timeout 10 virsh -q -c "$uri" domstate "$name" 2>/dev/null || true)
            case $state in
                running*) ;;
                *)
                    _lv_err "guest $name is '$state' before writing records; console and QEMU log tails:"
                    tail -n 20 "$log" >&2 2>/dev/null || true
                    if [ -n "$ndir" ]; then
                        tail -n 20 "$ndir/cache/libvirt/qemu/log/$name.log" >&2 2>/dev/null || true
                    fi
                    return 1
                    ;;
            esac
        fi
        if [ "$(_lv_now_ms)" -gt "$deadline" ]; then
            _lv_err "guest $name wrote no records within ${LV_BOOT_TIMEOUT}s; console tail:"
            tail -n 20 "$log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.1
    done
    [ -n "$ndir" ] && _lv_record_pids "$ndir"
    _lv_msg "lv_start_guest: $name running, first records after $(($(_lv_now_ms) - t0)) ms"
}

#  ---------------------------------------------------------------------
#  lv_stop_node DIR
lv_stop_node ()
{
    local dir=${1:?usage: lv_stop_node DIR}
    local uri="" name pid f rc=0 dom_list jobs
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    [ -r "$dir/uri" ] && uri=$(cat "$dir/uri")
    _lv_record_pids "$dir"
    pid=$(_lv_pid_if "$dir/pids/libvirtd.pid" libvirtd "$dir")
    [ -z "$pid" ] && pid=$(_lv_pid_if "$dir/run/libvirtd.pid" libvirtd "$dir")
    if [ -n "$uri" ] && [ -n "$pid" ]; then
        #  Destroy in parallel (each takes a TCG QEMU a second or two to
        #  exit), waiting only for those jobs: the caller has its own
        dom_list=$(timeout 20 virsh -q -c "$uri" list --name 2>/dev/null || true)
        jobs=()
        for name in $dom_list; do
            timeout 30 virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 &
            jobs+=($!)
        done
        [ ${#jobs[@]} -gt 0 ] && wait "${jobs[@]}" 2>/dev/null
        dom_list=$(timeout 20 virsh -q -c "$uri" list --all --name 2>/dev/null || true)
        for name in $dom_list; do
            timeout 20 virsh -q -c "$uri" undefine --snapshots-metadata \
                --checkpoints-metadata "$name" >/dev/null 2>&1 ||
                _lv_msg "lv_stop_node: undefine $name failed"
        done
        _lv_stop_pid "$pid" libvirtd || rc=1
    fi
    for f in "$dir/pids/virtlogd.pid" "$dir/run/libvirt/virtlogd.pid"; do
        pid=$(_lv_pid_if "$f" virtlogd "$dir")
        [ -n "$pid" ] && { _lv_stop_pid "$pid" virtlogd || rc=1; }
    done
    #  QEMU outlives libvirtd: anything left with a pid file under DIR
    while IFS= read -r -d '' f; do
        pid=$(_lv_pid_if "$f" 'qemu-system-*' "$dir")
        if [ -n "$pid" ]; then
            _lv_msg "lv_stop_node: stopping leftover QEMU pid $pid ($f)"
            _lv_stop_pid "$pid" qemu || rc=1
        fi
    done < <(find "$dir" -name '*.pid' -type f -print0 2>/dev/null)
    return $rc
}

#  lv_node_pids DIR: every recorded pid of the node that is still alive
#  (libvirtd, virtlogd, QEMU); empty when the node is fully stopped
lv_node_pids ()
{
    local dir=${1:?usage: lv_node_pids DIR} f pid glob
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    while IFS= read -r -d '' f; do
        for glob in libvirtd virtlogd 'qemu-system-*'; do
            pid=$(_lv_pid_if "$f" "$glob" "$dir")
            if [ -n "$pid" ]; then
                printf '%s\n' "$pid"
            fi
        done
    done < <(find "$dir" -name '*.pid' -type f -print0 2>/dev/null) | sort -u
}
