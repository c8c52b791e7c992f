#!/usr/bin/env bash
#  tests/tools/sf-records-selftest.sh SF_RECORDS: checks sf-records on
#  synthetic images (clean, hole, torn, two boot ids, bounds, qcow2 chain),
#  so the checker the integration tests trust is itself tested. No guest.
set -euo pipefail

rec=${1:?usage: sf-records-selftest.sh PATH_TO_SF_RECORDS}
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/sf-records-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

#  put IMG N BOOTID [NUMBER]: record N (or a record claiming NUMBER) in slot N
put ()
{
    local num=${4:-$2}
    printf 'VMREC %s %010d %010d END\n' "$3" "$num" "$num" |
        dd of="$1" bs=512 seek=$((2048 + $2)) count=1 conv=sync,notrunc status=none
}

#  image IMG: 4 MiB of random data (like the guests' base)
image () { head -c 4194304 /dev/urandom >"$1"; }

#  expect WHAT EXIT_STATUS REGEX ARGS...: run sf-records ARGS
expect ()
{
    local what=$1 want_rc=$2 re=$3 out rc=0
    shift 3
    n=$((n + 1))
    out=$("$rec" "$@" 2>/dev/null) || rc=$?
    if [ "$rc" = "$want_rc" ] && [[ $out =~ $re ]]; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what (exit $rc, want $want_rc; output '$out', want /$re/)"
        failed=$((failed + 1))
    fi
}

clean=$tmp/clean.raw
image "$clean"
for i in $(seq 1 50); do put "$clean" "$i" 0123abcd0123abcd; done
expect "clean prefix" 0 '^K=50 valid=50 holes=0 torn=0 bootids=1 verdict=CLEAN_PREFIX$' "$clean"
expect "within bounds" 0 'verdict=CLEAN_PREFIX' --min 50 --max 50 "$clean"
expect "below min" 1 'K=50 .*verdict=BELOW_MIN' --min 51 "$clean"
expect "above max" 1 'K=50 .*verdict=ABOVE_MAX' --max 49 "$clean"
expect "--slots limits the scan" 0 '^K=30 valid=30 .*CLEAN_PREFIX' --slots 30 "$clean"
expect "--offset-sector shifts slots" 1 'verdict=TORN' --offset-sector 2050 "$clean"
expect "json" 0 '"K":50,.*"bootid_list":\["0123abcd0123abcd"\].*"verdict":"CLEAN_PREFIX"' --json "$clean"

qcow=$tmp/clean.qcow2
qemu-img convert -q -f raw -O qcow2 "$clean" "$qcow"
expect "qcow2 is read through qemu-img" 0 '^K=50 .*CLEAN_PREFIX' "$qcow"
overlay=$tmp/overlay.qcow2
qemu-img create -q -f qcow2 -F raw -b "$clean" "$overlay"
expect "qcow2 overlay reads its backing chain" 0 '^K=50 .*CLEAN_PREFIX' "$overlay"

empty=$tmp/empty.raw
image "$empty"
expect "no records is an empty prefix" 0 '^K=0 valid=0 holes=0 torn=0 bootids=0 verdict=CLEAN_PREFIX$' "$empty"
expect "no records below min" 1 'BELOW_MIN' --min 1 "$empty"

hole=$tmp/hole.raw
cp "$clean" "$hole"
put "$hole" 52 0123abcd0123abcd
expect "hole" 1 '^K=50 valid=51 holes=1 torn=0 .*verdict=HOLES$' "$hole"

torn=$tmp/torn.raw
cp "$clean" "$torn"
put "$torn" 51 0123abcd0123abcd 61
expect "record in the wrong slot is torn" 1 '^K=50 valid=50 holes=0 torn=1 .*verdict=TORN$' "$torn"

half=$tmp/half.raw
cp "$clean" "$half"
printf 'VMREC 0123abcd0123abcd 00000000' |
    dd of="$half" bs=512 seek=$((2048 + 51)) count=1 conv=sync,notrunc status=none
expect "half-written record is torn" 1 'torn=1 .*verdict=TORN$' "$half"

pad=$tmp/pad.raw
cp "$clean" "$pad"
printf 'x' | dd of="$pad" bs=1 seek=$(((2048 + 10) * 512 + 500)) count=1 conv=notrunc status=none
expect "garbage after END is torn" 1 '^K=9 .*torn=1 .*verdict=TORN$' "$pad"

boots=$tmp/boots.raw
cp "$clean" "$boots"
for i in $(seq 51 60); do put "$boots" "$i" ffffeeeeddddcccc; done
expect "two boot ids" 1 '^K=60 valid=60 holes=0 torn=0 bootids=2 verdict=MULTIPLE_BOOTIDS$' "$boots"

expect "usage error" 2 '^$'
expect "missing image" 2 '^$' "$tmp/nope.raw"
expect "bad bound" 2 '^$' --min x "$clean"

echo "1..$n"
[ "$failed" = 0 ]
