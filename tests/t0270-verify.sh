#!/usr/bin/env bash
#  t0270-verify: `snapfleet verify [--boot]` and `restore --as-domain`
#  (issue 13), with real parts. A running records guest g1 is snapshotted
#  (file-cold). `verify` passes (hash and qemu-img check) and `images`
#  shows it; `verify --boot` starts a transient copy of g1
#  (snapfleet-verify-JOB) on a scratch copy, sees its console print a
#  record line ([verify] life_pattern), reports the time to life, and
#  leaves no domain, no scratch and g1's own console untouched. `restore
#  --as-domain g1back` defines a new shut-off domain with a new uuid whose
#  disk is the restored file beside g1's; a second one of that name, or
#  one named g1, fails with EEXIST and makes no file. g1back started (g1
#  stopped: they share the console file) boots and writes records past
#  the snapshot's (sf-records: a clean prefix of one boot, longer than
#  the stored one). Finally one byte of the stored image is flipped:
#  `verify` fails with the hash named, and `images` shows it FAILED.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

sf_init t0270-verify
sf_need_libvirt
sf_need jq

sf_start_scheduler
sf_start_node n1
sf_guest n1 g1
g1=$(sf_guest_dir n1 g1)
sf_start_worker n1 "$SF_NODE_URI" "verify.life_pattern=GUEST seq" verify.boot_timeout=3m
work=$SF_TMP/w-n1/work
listed () { sf_cli instances --format json | jq -e '[.instances[].name] | index("g1")'; }
wait_for 30 listed >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
image_verify () { sf_cli images --format json | jq -c --arg id "$1" '.images[] | select(.id == $id) | .verify'; }
verify_domains () { sf_virsh n1 list --all --name | grep -c '^snapfleet-verify-' || true; }
k_of () { sed -n 's/^K=\([0-9]*\) .*/\1/p' <<<"$1"; }

#  -- the image ------------------------------------------------------------
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
snap=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || true
b=$(lv_guest_seq "$g1/console.log")
check_eq "snapshot of g1 is done" "done" "$(jq -r .state <<<"$snap")"
img=$(jq -r .image.id <<<"$snap")
img_path=$(jq -r .image.path <<<"$snap")
stored=$(sf_records --min "$a" --max $((b + 10)) "$img_path" 2>&1) || true
sf_note "stored image $img: $stored"
check_eq "the stored image holds a clean prefix" CLEAN_PREFIX "${stored##*verdict=}"
k0=$(k_of "$stored")
check_eq "images shows no verification yet" null "$(image_verify "$img")"

#  -- verify ---------------------------------------------------------------
rc=0
r=$(sf_cli verify "$img" --wait --format json) || rc=$?
sf_note "verify: $(jq -c '{job_id, state, node, strategy, verify, error}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
check_eq "verify --wait exits 0, job done on n1" "0 done n1 verify" \
    "$rc $(jq -r '"\(.state) \(.node) \(.strategy)"' <<<"$r")"
check_eq "hash and check passed, no boot asked" "true true true false false" \
    "$(jq -r '.verify | "\(.ok) \(.hash_ok) \(.check_ok) \(.boot) \(.booted)"' <<<"$r")"
check "it says what it checked" grep -q "SHA-256 matches; qemu-img check: no errors" \
    <<<"$(jq -r .verify.text <<<"$r")"
check_eq "it made no image" 0 "$(jq -r '.images | length' <<<"$r")"
v=$(image_verify "$img")
check_eq "images shows it with the image" "$(jq -r .job_id <<<"$r") true" \
    "$(jq -r '"\(.job_id) \(.ok)"' <<<"$v")"

#  -- verify --boot --------------------------------------------------------
boots_before=$(grep -ac 'GUEST boot' "$g1/console.log" || true)
rc=0
t0=$(date +%s%N)
r=$(sf_cli verify "$img" --boot --wait --timeout 400 --format json) || rc=$?
t1=$(date +%s%N)
sf_note "verify --boot ($(((t1 - t0) / 1000000)) ms): $(jq -c '{job_id, state, verify, error, events: [.events[] | {phase, ms, text}]}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
check_eq "verify --boot exits 0, job done" "0 done" "$rc $(jq -r .state <<<"$r")"
check_eq "the copy booted" "true true true" \
    "$(jq -r '.verify | "\(.ok) \(.boot) \(.booted)"' <<<"$r")"
ttl=$(jq -r .verify.time_to_life_ms <<<"$r")
sf_note "time to life of the copy: $ttl ms"
check "the time to life is reported (0 < $ttl ms < 180 s)" test "$ttl" -gt 0 -a "$ttl" -lt 180000
check "a console line was the sign of life" grep -q "a console line matched 'GUEST seq'" \
    <<<"$(jq -r .verify.text <<<"$r")"
check_eq "no snapfleet-verify domain is left" 0 "$(verify_domains)"
check_eq "no scratch is left" "" "$(find "$work/verify" -mindepth 1 2>/dev/null | tr '\n' ' ')"
check_eq "g1's console saw no second boot (the copy had its own)" "$boots_before" \
    "$(grep -ac 'GUEST boot' "$g1/console.log" || true)"
check_eq "g1 is still running" running "$(sf_virsh n1 domstate g1)"
check_eq "images shows the booted verification" "$(jq -r .job_id <<<"$r") true true" \
    "$(image_verify "$img" | jq -r '"\(.job_id) \(.ok) \(.booted)"')"
check "the images table says 'ok boot'" grep -q "ok boot" <<<"$(sf_cli images)"
human=$(sf_cli job show "$(jq -r .job_id <<<"$r")")
check "'job show' says the verification passed with a boot" \
    grep -q "^verify .*$img (dir) with a boot: passed" <<<"$human"

#  -- restore --as-domain ----------------------------------------------------
g1_uuid=$(sf_virsh n1 domuuid g1)
rc=0
r=$(sf_cli restore "$img" --as-domain g1back --wait --format json) || rc=$?
sf_note "restore --as-domain: $(jq -c '{job_id, state, restore, note, error}' <<<"$r" 2>/dev/null || printf '%s' "$r")"
check_eq "restore --as-domain exits 0, job done" "0 done" "$rc $(jq -r .state <<<"$r")"
check "its note names the domain" grep -q "^defined domain g1back (uuid " <<<"$(jq -r .note <<<"$r")"
check "the file is beside g1's disk" test -f "$g1/g1back.qcow2"
check_eq "g1back is defined, shut off" "shut off" "$(sf_virsh n1 domstate g1back)"
check "g1back is persistent" grep -Eq '^Persistent: +yes' <<<"$(sf_virsh n1 dominfo g1back)"
back_uuid=$(sf_virsh n1 domuuid g1back)
check "g1back has a new uuid ($back_uuid, g1: $g1_uuid)" test -n "$back_uuid" -a "$back_uuid" != "$g1_uuid"
check_eq "its vda is the restored file" "$g1/g1back.qcow2" \
    "$(sf_virsh n1 domblklist g1back | awk '$1 == "vda" { print $2 }')"
check "the restored file equals the stored image" \
    qemu-img compare -q -f qcow2 -F qcow2 "$img_path" "$g1/g1back.qcow2"
check_eq "it belongs to g1's disk's owner" "$(stat -c %U "$g1/disk.qcow2")" \
    "$(stat -c %U "$g1/g1back.qcow2")"
#  A name that exists: the job fails, nothing is made
for name in g1back g1; do
    rc=0
    r=$(sf_cli restore "$img" --as-domain "$name" --to "$SF_TMP/again-$name.qcow2" --wait \
        --format json 2>/dev/null) || rc=$?
    check_eq "--as-domain $name (exists) fails with EEXIST" "1 failed 3" \
        "$rc $(jq -r '"\(.state) \(.error.code)"' <<<"$r")"
    check "it says why" grep -q "a domain named '$name' exists; nothing restored" \
        <<<"$(jq -r .error.text <<<"$r")"
    check "it made no file" test ! -e "$SF_TMP/again-$name.qcow2"
done
check_eq "g1back's uuid is unchanged" "$back_uuid" "$(sf_virsh n1 domuuid g1back)"
rc=0
err=$(sf_cli restore "$img" --as-domain snapfleet-x 2>&1 >/dev/null) || rc=$?
check_eq "a snapfleet- name is refused (exit 1)" 1 "$rc"
check "with a clear error" grep -q "not one snapfleet defines" <<<"$err"

#  g1back boots and writes records. g1 stops first: the two share the
#  console file (g1back's XML is g1's), and g1back's lines must be its own
sf_virsh n1 destroy g1 >/dev/null
mark=$(wc -l <"$g1/console.log")
sf_virsh n1 start g1back >/dev/null
back_seq () {
    tail -n +"$((mark + 1))" "$g1/console.log" | grep -a -o 'GUEST seq=[0-9]* up=' |
        tail -n 1 | sed 's/GUEST seq=\([0-9]*\) up=/\1/'
}
past_k0 () { [ "$(back_seq)" -gt $((k0 + 20)) ] 2>/dev/null; }
check "g1back boots and writes records past the snapshot's ($k0)" wait_for 120 past_k0
sf_note "g1back's console: $(tail -n +"$((mark + 1))" "$g1/console.log" | grep -a 'GUEST boot' | head -n 1)"
sf_virsh n1 destroy g1back >/dev/null
rec=$(sf_records --min $((k0 + 20)) "$g1/g1back.qcow2" 2>&1) || true
sf_note "g1back's disk: $rec"
check_eq "g1back's disk: a clean prefix of one boot, past the stored one" "CLEAN_PREFIX 1" \
    "${rec##*verdict=} $(sed -n 's/.*bootids=\([0-9]*\).*/\1/p' <<<"$rec")"
sf_virsh n1 undefine g1back >/dev/null
rm -f "$g1/g1back.qcow2"
check "g1back is gone" bash -c "! timeout 60 virsh -q -c '$SF_NODE_URI' domstate g1back 2>/dev/null"

#  -- a corrupted image --------------------------------------------------------
size=$(stat -c %s "$img_path")
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$img_path" | tr -d ' ')
printf '%b' "\\0$(printf '%o' $(((byte + 1) % 256)))" |
    dd of="$img_path" bs=1 seek=$((size / 2)) conv=notrunc status=none
rc=0
r=$(sf_cli verify "$img" --wait --format json 2>/dev/null) || rc=$?
sf_note "verify of the flipped image: $(jq -c '{state, verify, error}' <<<"$r")"
check_eq "verify of a flipped image exits 1, job failed" "1 failed" \
    "$rc $(jq -r .state <<<"$r")"
check_eq "the hash failed" "false false" "$(jq -r '.verify | "\(.ok) \(.hash_ok)"' <<<"$r")"
check "it says so" grep -q "SHA-256 does NOT match" <<<"$(jq -r .verify.text <<<"$r")"
check_eq "images shows it failed" "$(jq -r .job_id <<<"$r") false" \
    "$(image_verify "$img" | jq -r '"\(.job_id) \(.ok)"')"
check "the images table says FAILED" grep -q "FAILED" <<<"$(sf_cli images)"
rc=0
r=$(sf_cli verify "$img" --boot --wait --format json 2>/dev/null) || rc=$?
check_eq "verify --boot of it fails before any boot" "1 failed false" \
    "$rc $(jq -r '"\(.state) \(.verify.booted)"' <<<"$r")"
check_eq "no snapfleet-verify domain was left" 0 "$(verify_domains)"
sf_done
