#!/bin/bash
#  gen-calendar-cases.sh - golden cases for sf_calendar from systemd itself
#
#  Runs `systemd-analyze calendar` (TZ=UTC, --iterations=5, one fixed base
#  time for every case) on a list of OnCalendar expressions and prints
#  tests/data/calendar-cases.txt on stdout. The file is committed, so the
#  self-test (sf_calendar_test) needs no systemd.
#
#  Usage: tests/tools/gen-calendar-cases.sh [BASE_EPOCH] > tests/data/calendar-cases.txt
#  BASE_EPOCH (for the main list) defaults to now; the cases around DST
#  changes have fixed bases of their own.
set -euo pipefail

base=${1:-$(date +%s)}
analyze=${SYSTEMD_ANALYZE:-systemd-analyze}

#  One expression per line. Valid ones first, then ones systemd refuses.
#  No '|' in expressions (it separates the fields of the output).
cases=(
    'minutely'
    'hourly'
    'daily'
    'weekly'
    'monthly'
    'yearly'
    'annually'
    'quarterly'
    'semiannually'
    'DAILY'
    'Mon..Fri 09:00'
    'Sat,Sun 10:00/15'
    'Mon,Fri..Sat'
    'Mon-Wed 12:00'
    'monday,wednesday,friday 18:30'
    'Mon..Sun 08:00'
    'Tue,Wed,Thu'
    'Sun,Sat,Sun 07:07'
    '*-*-* 00:00:00'
    '*-*-01 02:00'
    '*-*-1/10 06:30'
    '*-*~01'
    '*-02~01 23:00'
    '*-*~07/1'
    '*-*~1..3'
    '*-*~03/2 01:00'
    '*-*~3,20'
    '*-02-29 12:00'
    '*-02-30'
    '*-*-31'
    '2026..2028-06-01'
    '2030-01-01 00:00'
    '2020-01-01'
    '30-12-25'
    '03-15'
    '*-1,4,7,10-1'
    '*-12,1,12,6-5,5,1'
    '*-*-* *:00/5'
    '*:0/5'
    '*:*:30'
    '*:0/15:0'
    '0/2:00'
    '8..18/2:00'
    '9..17:00'
    '9..16/3,20:30'
    '12:00:00.5'
    '*:*:1.5'
    '*:*:0/20'
    '*:*:10,40'
    '*-*-* *:*:*'
    '1,3,5:00'
    '23:59:59'
    'Sun *-*-1..7 03:00'
    'Fri *-*-13'
    'Mon 2027-*-*'
    'Wed *-1/2-1..10 4:5:6'
    '@2000000000'
    'Tue @2000000000'
    '@+2000000000'
    'Mon..Fri 06:00 UTC'
    'hourly utc'
    '12:00 Europe/Berlin'
    '*-*-* 20:15 America/New_York'
    '12:00 GMT'
    'Mon   12:00'
    '2027-1..3/2-1,15 00:00:00'
    'bogus'
    '*-*-* 25:00'
    'Wed..Mon'
    '*-13-01'
    '*-*-32'
    '12:60'
    'Mon..'
    '1969-01-01'
    '2200-01-01'
    '*-*-* 12:00:00:00'
    '*-*~1/1'
    '*-*~6,27'
    '*-*~28,1,05'
    'UTC'
    '12:00 Mars/Olympus'
    '*/2:00'
    '5..3:00'
    'daily '
    '*'
    'Fri 13'
    '@-5'
)

#  Named zones across DST changes (Europe/Berlin 2027-03-28 and 2027-10-31,
#  America/New_York 2027-11-07): times that do not exist, times repeated
dst_cases=(
    '*:0/20 Europe/Berlin'
    '02:30 Europe/Berlin'
    '*:30 Europe/Berlin'
    'hourly Europe/Berlin'
    'Sun 2,3:15 Europe/Berlin'
    '*:*:0/30 Europe/Berlin'
)
ny_cases=(
    '*:0/20 America/New_York'
    '01:30 America/New_York'
    'hourly America/New_York'
)

#  "Wed 2026-11-25 09:00:00 UTC" -> epoch seconds
to_epoch () {
    date -u -d "${1#* }" +%s
}

#  One case: EXPR|NORMALIZED|ELAPSES, computed from $base
run_case () {
    local expr=$1 out normalized stamp
    local -a elapses=()
    if ! out=$(TZ=UTC "$analyze" calendar --base-time="@$base" --iterations=5 "$expr" 2>/dev/null); then
        echo "$expr|invalid|"
        return
    fi
    normalized=$(sed -n 's/^ *Normalized form: //p' <<< "$out")
    while IFS= read -r stamp; do
        if [ "$stamp" = never ]; then
            elapses=(never)
            break
        fi
        elapses+=("$(to_epoch "$stamp")")
    done < <(sed -n -e 's/^ *Next elapse: //p' -e 's/^ *Iter\. #[0-9]*: //p' <<< "$out")
    echo "$expr|$normalized|${elapses[*]}"
}

echo "# Golden cases for scheduler/sf_calendar.c, from tests/tools/gen-calendar-cases.sh"
echo "# $("$analyze" --version | head -n 1), TZ=UTC, --iterations=5"
echo "# Format: 'base EPOCH' lines (the time the cases after it were computed"
echo "# from, --base-time), and one case a line: EXPR|NORMALIZED|ELAPSES"
echo "# NORMALIZED is 'invalid' when systemd refuses EXPR (ELAPSES then empty);"
echo "# ELAPSES is 'never' or up to 5 epoch seconds, space separated: the next"
echo "# elapse after base, then each following iteration."
echo "base $base"
for expr in "${cases[@]}"; do
    run_case "$expr"
done
for when in "2027-03-28 00:20" "2027-10-31 00:20" "2027-10-31 01:20"; do
    base=$(date -u -d "$when UTC" +%s)
    echo "base $base"
    for expr in "${dst_cases[@]}"; do
        run_case "$expr"
    done
done
base=$(date -u -d "2027-11-07 05:20 UTC" +%s)
echo "base $base"
for expr in "${ny_cases[@]}"; do
    run_case "$expr"
done
