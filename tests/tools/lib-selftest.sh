#!/usr/bin/env bash
#  tests/tools/lib-selftest.sh: checks the mechanics of tests/lib.sh that
#  every integration test relies on, without guests or daemons: TAP output
#  and exit codes, cleanups in reverse order, scratch dir kept only on
#  failure, sf_stop_pid's TERM/KILL handling and statuses, the watchdog,
#  the ERR report, wait_for's bound, config writing, free ports.
#  Each scenario runs in its own bash (sf_init installs traps).
#  The scenarios and assertions are code run later: single quotes on purpose
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d "${TMPDIR:-/var/tmp}/sf-libtest.XXXXXX")
trap 'rm -rf "$root"' EXIT
n=0
failed=0

#  scenario NAME SCRIPT: run SCRIPT after sourcing lib.sh; sets $rc, $out
#  (stdout) and $err (stderr)
scenario ()
{
    rc=0
    SF_TEST_TMP=$root SF_BUILD=$root/nobuild bash -c "set -euo pipefail
        . '$here/lib.sh'
        sf_init $1
        $2" >"$root/out" 2>"$root/err" || rc=$?
    out=$(cat "$root/out")
    err=$(cat "$root/err")
}

t ()
{
    n=$((n + 1))
    if eval "$2"; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        printf '#   rc=%s\n#   stdout: %s\n#   stderr: %s\n' "$rc" "$out" "$err" | head -n 30
        failed=$((failed + 1))
    fi
}

scratch () { sed -n 's/^# .*: scratch dir //p' <<<"$err" | head -n 1; }

scenario pass 'ok first; check_eq second a a; check_range third 1 2 3; sf_done'
t "passing test exits 0" '[ "$rc" = 0 ]'
t "TAP lines and plan" '[ "$out" = "$(printf "ok 1 - first\nok 2 - second\nok 3 - third (1 <= 2 <= 3)\n1..3")" ]'
t "scratch dir removed on success" 'd=$(scratch); [ -n "$d" ] && [ ! -e "$d" ]'

scenario failing 'echo hello >"$SF_TMP/thing.log"; fail broken "some detail"; ok after; sf_done'
t "failed check exits 1" '[ "$rc" = 1 ]'
t "not ok line with detail" 'grep -qx "not ok 1 - broken" <<<"$out" && grep -qx "#   some detail" <<<"$out"'
t "checks go on after a failure" 'grep -qx "ok 2 - after" <<<"$out"'
t "scratch dir kept on failure, logs shown" 'd=$(scratch); [ -d "$d" ] && grep -q "thing.log" <<<"$err" && grep -q "hello" <<<"$err"'

scenario skipping 'skip "no frobnicator"; ok never'
t "skip exits 77 with a reason" '[ "$rc" = 77 ] && grep -q "^1..0 # SKIP no frobnicator" <<<"$out"'

scenario order 'sf_cleanup_push sh -c "echo one >>\"$SF_TMP/../order\""
    sf_cleanup_push sh -c "echo two >>\"$SF_TMP/../order\""
    sf_done'
t "cleanups run last-pushed first" '[ "$(tr "\n" " " <"$root/order")" = "two one " ]'

scenario check 'check "true passes" true; check "false fails" sh -c "echo why; exit 3"; sf_done'
t "check reports the command's status and output" 'grep -qx "not ok 2 - false fails" <<<"$out" && grep -q "exit 3" <<<"$out" && grep -q "why" <<<"$out"'

scenario spawn 'sf_spawn sleeper sleep 1000
    p=$(sf_pid sleeper)
    sf_spawn clean bash -c "trap \"exit 0\" TERM; while :; do sleep 0.1; done"
    sleep 0.3
    sf_stop_pid "$SF_TMP/clean.pid"; ok "clean status $SF_LAST_STATUS"
    sf_spawn stubborn bash -c "trap \"\" TERM; while :; do sleep 0.1; done"
    sleep 0.3
    s=0; sf_stop_pid "$SF_TMP/stubborn.pid" 1 || s=$?; ok "stubborn status $s"
    sf_spawn crashed bash -c "exit 5"
    sleep 0.3
    s=0; sf_stop_pid "$SF_TMP/crashed.pid" || s=$?; ok "crashed status $s"
    echo "$p" >"$SF_TMP/../sleeper.pid"
    sf_done'
t "spawned processes are stopped at exit (sleep: SIGTERM is fine)" '[ "$rc" = 0 ] && p=$(cat "$root/sleeper.pid") && ! kill -0 "$p" 2>/dev/null'
t "sf_stop_pid: 0 for a clean exit" 'grep -qx "ok 1 - clean status 0" <<<"$out"'
t "sf_stop_pid: SIGKILL after the timeout gives 137" 'grep -qx "ok 2 - stubborn status 137" <<<"$out"'
t "sf_stop_pid: a process that died with 5 gives 5" 'grep -qx "ok 3 - crashed status 5" <<<"$out"'

scenario leak 'sf_spawn bad bash -c "exit 7"; sleep 0.3; ok fine; sf_done'
t "a spawned process that died with an error fails the test at cleanup" '[ "$rc" = 1 ] && grep -q "^not ok 2 - cleanup: sf_stop_pid" <<<"$out"'

scenario errexit 'ok before; false; ok never'
t "set -e abort: reported with its line, exit non-zero, cleanup ran" '[ "$rc" != 0 ] && grep -q "# error: exit 1 at .* line 4: false" <<<"$err" && ! grep -q never <<<"$out"'

start=$(date +%s)
SF_TEST_TIMEOUT=2 scenario watchdog 'sf_cleanup_push sh -c "echo cleaned >\"$SF_TMP/../wd\""
    while :; do sleep 0.2; done'
took=$(($(date +%s) - start))
t "watchdog stops a hung test with cleanup (exit 143, ${took}s)" '[ "$rc" = 143 ] && [ "$took" -le 6 ] && [ "$(cat "$root/wd")" = cleaned ]'

scenario waitfor 's=$(date +%s%N); r=0; wait_for 1 false || r=$?; e=$(date +%s%N)
    ok "wait_for $r $(( (e - s) / 1000000 ))"
    wait_for 5 test -e "$SF_TMP/x" & sleep 0.3; touch "$SF_TMP/x"; wait $!; ok "wait_for saw it"
    sf_done'
t "wait_for gives up after its bound" 'ms=$(sed -n "s/^ok 1 - wait_for 1 //p" <<<"$out"); [ -n "$ms" ] && [ "$ms" -ge 1000 ] && [ "$ms" -lt 3000 ]'
t "wait_for returns once the command succeeds" 'grep -qx "ok 2 - wait_for saw it" <<<"$out"'

scenario conf '_sf_write_conf "$SF_TMP/../c.conf" a.x=1 b.y=2 a.z=3 a.x=4 b.y a.w="spaced value"; sf_done'
t "_sf_write_conf: sections, override, removal" '[ "$(grep -v "^;" "$root/c.conf")" = "$(printf "[a]\nx = 4\nz = 3\nw = spaced value\n[b]")" ]'

scenario dotconf '_sf_write_conf "$SF_TMP/../d.conf" storage.rbd.mode=clone worker.name=n1 storage.rbd.op_timeout=5s storage.rbd.mode=export "storage.rbd.ceph_conf=/x/ceph.conf"; sf_done'
t "_sf_write_conf: a dotted section splits at the last dot" '[ "$(grep -v "^;" "$root/d.conf")" = "$(printf "[storage.rbd]\nmode = export\nop_timeout = 5s\nceph_conf = /x/ceph.conf\n[worker]\nname = n1")" ]'

scenario ports 'for i in $(seq 20); do sf_free_port; done >"$SF_TMP/../ports"; sf_done'
t "sf_free_port: 20 distinct ports in 20000..31999" '[ "$(sort -u "$root/ports" | wc -l)" = 20 ] && awk "\$1 < 20000 || \$1 > 31999 { exit 1 }" "$root/ports"'

echo "1..$n"
[ "$failed" = 0 ]
