#!/usr/bin/env bash
#  t0260-glance: [imagestore] driver = glance against a real Keystone and a
#  real Glance whose pipeline is keystonemiddleware (tests/lib/keystone.sh,
#  glance.sh); the worker authenticates with an application credential and
#  finds Glance in Keystone's catalogue. The scheduler caps the fleet at
#  [limits] bandwidth = 4 MiB/s, so an upload of the 32 MiB guest takes
#  seconds.
#  (1) A running records guest, snapshotted file-cold into Glance: the job
#  is done; the image is active in Glance with the reported id, its size
#  and sha512 those of the bytes downloaded with curl, its properties
#  (instance_uuid, image_type, snapfleet_job_id, ...) set; the download
#  passes qemu-img check, its sha256 is the reported one and it holds a
#  clean prefix of the records.
#  (2) Glance killed (SIGKILL) while it receives an upload (its file store's
#  new file has 4 MiB of the 32) and started again
#  on the same data: the job ends (retried by the scheduler, or failed) and
#  no image is left queued or saving in Glance; a done job's image is active.
#  (3) Retention (a schedule with --keep-last 1) deletes the Glance image of
#  its first run and only that one: an image made by hand, and the images
#  of (1), stay.
#  (4) A bad credential (the worker restarted with a wrong secret): the job
#  fails with a clear error naming Keystone's refusal, and nothing is paused.
#  (5) The worker restarted with password auth (user, project,
#  password_file): a snapshot is done and its image active.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/keystone.sh
. "$(dirname "$0")/lib/keystone.sh"
# shellcheck source=lib/glance.sh
. "$(dirname "$0")/lib/glance.sh"

sf_init t0260-glance
sf_need_libvirt
sf_need jq curl qemu-img sha512sum glance-api keystone-manage uwsgi

#  -- Keystone and Glance -------------------------------------------------------
ks=$SF_TMP/keystone
gl=$SF_TMP/glance
GL_PORT=$(gl_free_port)
export GL_PORT
sf_cleanup_push ks_stop "$ks"
ks_start "$ks" "http://127.0.0.1:$GL_PORT" || sf_die "keystone did not start"
ks_add_user "$ks" snapfleet sf pw-sf member reader >/dev/null || sf_die "no user sf"
sf_cleanup_push gl_stop "$gl"
gl_start "$gl" "$ks" || sf_die "glance did not start"
# shellcheck source=/dev/null
. "$gl/env"
# shellcheck source=/dev/null
. "$ks/env"
read -r ac_id ac_secret < <(ks_app_cred "$ks" sf pw-sf snapfleet t0260)
[ -n "$ac_secret" ] || sf_die "no application credential"
(umask 077 && printf '%s\n' "$ac_secret" >"$SF_TMP/glance.secret")

#  Glance as the user sees it (a token of sf, valid an hour: the test's)
token=$(ks_token "$ks" sf pw-sf snapfleet)
[ -n "$token" ] || sf_die "no token for sf"
g_get () { curl -fsS -m 60 -H "X-Auth-Token: $token" "$GL_URL$1"; }
#  Images snapfleet made in a status (queued, saving, active)
g_ours () { g_get "/v2/images?snapfleet_made_by=snapfleet&status=$1" | jq -r '[.images[].id] | join(" ")'; }

#  An image made by hand, which retention must leave alone
head -c 1048576 /dev/urandom >"$SF_TMP/hand.raw"
hand=$(curl -fsS -m 60 -H "X-Auth-Token: $token" -X POST -H 'Content-Type: application/json' -d \
    '{"name":"by-hand","disk_format":"raw","container_format":"bare","visibility":"private"}' \
    "$GL_URL/v2/images" | jq -r .id)
curl -fsS -m 60 -H "X-Auth-Token: $token" -X PUT -H 'Content-Type: application/octet-stream' \
    -T "$SF_TMP/hand.raw" "$GL_URL/v2/images/$hand/file" || sf_die "cannot upload the hand-made image"

#  -- snapfleet ------------------------------------------------------------------
sf_start_scheduler limits.bandwidth=4M
sf_start_node n1
sf_guest n1 g1 --size 32M
g1=$(sf_guest_dir n1 g1)
glance_keys=(imagestore.driver=glance imagestore.auth=keystone "imagestore.auth_url=$KS_URL"
             "imagestore.app_cred_id=$ac_id" "imagestore.secret_file=$SF_TMP/glance.secret")
sf_start_worker n1 "$SF_NODE_URI" "${glance_keys[@]}"
inst () { sf_cli instances --format json | jq -e '.instances[] | select(.name == "g1")'; }
wait_for 60 inst >/dev/null || sf_die "g1 never appeared in 'snapfleet instances'"
uuid=$(inst | jq -r .uuid)

#  -- (1) a snapshot into Glance ------------------------------------------------------
lv_wait_seq "$g1/console.log" 20 30
a=$(lv_guest_seq "$g1/console.log")
rc=0
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || rc=$?
b=$(lv_guest_seq "$g1/console.log")
sf_note "snapshot: $(jq -c . <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "(1) snapshot --wait exits 0, the job is done" "0 done" "$rc $(jq -r .state <<<"$out")"
job1=$(jq -r .job_id <<<"$out")
id1=$(jq -r .image.id <<<"$out")
check_eq "(1) the image is in the glance store" glance "$(jq -r .image.store <<<"$out")"
img=$(g_get "/v2/images/$id1" || true)
sf_note "glance image: $(jq -c . <<<"$img" 2>/dev/null)"
check_eq "(1) Glance: active qcow2, private, size as reported" \
    "active qcow2 bare private $(jq -r .image.size <<<"$out")" \
    "$(jq -r '"\(.status) \(.disk_format) \(.container_format) \(.visibility) \(.size)"' <<<"$img")"
check_eq "(1) Glance: properties of the snapshot" \
    "$uuid snapshot $job1 file-cold paused vda snapfleet" \
    "$(jq -r '"\(.instance_uuid) \(.image_type) \(.snapfleet_job_id) \(.snapfleet_strategy) \(.snapfleet_consistency) \(.snapfleet_disk) \(.snapfleet_made_by)"' <<<"$img")"
check "(1) Glance: snapfleet_catalog_id set" jq -e '.snapfleet_catalog_id | test("^[0-9a-f]{16}$")' <<<"$img"
check "(1) Glance: a virtual_size (read as qcow2)" jq -e '.virtual_size == 33554432' <<<"$img"
g_get "/v2/images/$id1/file" >"$SF_TMP/down.qcow2" || true
check_eq "(1) downloaded: Glance's size" "$(jq -r .size <<<"$img")" "$(stat -c %s "$SF_TMP/down.qcow2")"
check_eq "(1) downloaded: Glance's sha512 (os_hash_algo sha512)" \
    "sha512 $(sha512sum <"$SF_TMP/down.qcow2" | cut -d' ' -f1)" \
    "$(jq -r '"\(.os_hash_algo) \(.os_hash_value)"' <<<"$img")"
check_eq "(1) downloaded: the reported sha256" "$(jq -r .image.sha256 <<<"$out")" \
    "$(sha256sum <"$SF_TMP/down.qcow2" | cut -d' ' -f1)"
check "(1) downloaded: qemu-img check passes" qemu-img check -q "$SF_TMP/down.qcow2"
rec=$(sf_records --min "$a" --max $((b + 10)) "$SF_TMP/down.qcow2" 2>&1) || true
sf_note "sf-records: $rec"
check_eq "(1) downloaded: a clean prefix with $a <= K <= $((b + 10))" CLEAN_PREFIX "${rec##*verdict=}"
check_eq "(1) no scratch left in the worker's workdir" "" \
    "$(find "$SF_TMP/w-n1/work" -type f | tr '\n' ' ')"

#  -- (2) Glance killed mid-upload ------------------------------------------------------
#  The witness: the file Glance's file store writes as the bytes come (its
#  API answers no list while it takes an upload on a loaded machine: one
#  process, busy hashing)
ls "$gl/images" >"$SF_TMP/images-before"
receiving () {
    local f
    for f in "$gl"/images/*; do
        grep -qxF "${f##*/}" "$SF_TMP/images-before" && continue
        [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -ge $((4 << 20)) ] && return 0
    done
    return 1
}
sf_cli snapshot --instance g1 --strategy file-cold --format json >"$SF_TMP/job2.json" ||
    sf_die "snapshot 2 not accepted"
job2=$(jq -r .job_id "$SF_TMP/job2.json")
if SF_POLL=0.1 wait_for 120 receiving; then
    ok "(2) Glance is receiving the upload (a new image file of 4 MiB or more)"
else
    fail "(2) Glance is receiving the upload (a new image file of 4 MiB or more)"
fi
gl_kill "$gl"
sf_note "glance killed at $(date +%T)"
sleep 3
gl_start "$gl" "$ks" || sf_die "glance did not start again"
sf_note "glance up again at $(date +%T)"
ended () { sf_cli job show "$job2" --format json | jq -e '.state == "done" or .state == "failed"'; }
SF_POLL=1 wait_for 400 ended >/dev/null || true
j2=$(sf_cli job show "$job2" --format json)
sf_note "job 2: $(jq -c '{state, error, attempt, events: [.events[] | .phase]}' <<<"$j2")"
state2=$(jq -r .state <<<"$j2")
check "(2) the job ended (done after a retry, or failed): $state2" \
    grep -qxE 'done|failed' <<<"$state2"
#  The abort's delete is asked until Glance answers: give it its time
none_left () { [ -z "$(g_ours queued)$(g_ours saving)" ]; }
if SF_POLL=2 wait_for 90 none_left; then
    ok "(2) no image of snapfleet left queued or saving in Glance"
else
    fail "(2) no image of snapfleet left queued or saving in Glance" \
        "queued: $(g_ours queued)" "saving: $(g_ours saving)"
fi
if [ "$state2" = "done" ]; then
    id2=$(jq -r '.images[0].id // .image.id' <<<"$j2")
    check_eq "(2) the retried job's image is active" active \
        "$(g_get "/v2/images/$id2" | jq -r .status)"
fi

#  -- (3) retention ----------------------------------------------------------------------
sf_cli schedule add s1 --calendar '*:*:0/20' --node n1 --keep-last 1 --window 5m \
    --format json >/dev/null || sf_die "schedule add failed"
s1_done () { sf_cli bulks --format json | jq -c '[(.bulks // .)[] | select(.schedule == "s1" and .state == "done")] | sort_by(.created)'; }
done_at_least () { [ "$(s1_done | jq length)" -ge "$1" ]; }
job_of () { sf_cli bulk show "$1" --format json | jq -r '(.bulk // .).jobs[] | select(.instance == "g1") | .job_id'; }
SF_POLL=1 wait_for 200 done_at_least 1 || sf_die "s1 did not complete a run"
r1=$(job_of "$(s1_done | jq -r '.[0].bulk_id')")
rid1=$(sf_cli job show "$r1" --format json | jq -r '.images[0].id // .image.id')
sf_note "run 1: job $r1, image $rid1"
check_eq "(3) run 1's image is active in Glance" active "$(g_get "/v2/images/$rid1" | jq -r .status)"
SF_POLL=1 wait_for 200 done_at_least 2 || sf_die "s1 did not complete two runs"
sf_cli schedule rm s1 >/dev/null || true
gone () { ! g_get "/v2/images/$rid1" >/dev/null 2>&1; }
if SF_POLL=2 wait_for 90 gone; then
    ok "(3) retention deleted run 1's image from Glance"
else
    fail "(3) retention deleted run 1's image from Glance" "$(g_get "/v2/images/$rid1")"
fi
check_eq "(3) the image made by hand stays" active "$(g_get "/v2/images/$hand" | jq -r .status)"
check_eq "(3) the image of (1) stays" active "$(g_get "/v2/images/$id1" | jq -r .status)"

#  -- (4) a bad credential ------------------------------------------------------------------
none_running () { sf_cli jobs --format json | jq -e '[(.jobs // .)[] | select(.state != "done" and .state != "failed" and .state != "cancelled" and .state != "skipped")] | length == 0'; }
SF_POLL=1 wait_for 200 none_running >/dev/null || true
sf_stop_pid "$SF_TMP/worker-n1.pid" || true
(umask 077 && printf 'not-the-secret\n' >"$SF_TMP/glance.secret")
sf_start_worker n1 "$SF_NODE_URI" "${glance_keys[@]}"
rc=0
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || rc=$?
sf_note "bad credential: $(jq -c '{state, error, pause_ms}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "(4) the job failed" failed "$(jq -r .state <<<"$out")"
check "(4) its error names Keystone's refusal of the credential" \
    jq -e '.error.text | test("Keystone at .* refused the application credential: 401")' <<<"$out"
check_eq "(4) nothing was paused" 0 "$(jq -r '.pause_ms // 0' <<<"$out")"

#  -- (5) password auth -------------------------------------------------------------------
sf_stop_pid "$SF_TMP/worker-n1.pid" || true
(umask 077 && printf 'pw-sf\n' >"$SF_TMP/glance.password")
sf_start_worker n1 "$SF_NODE_URI" imagestore.driver=glance imagestore.auth=keystone \
    "imagestore.auth_url=$KS_URL" imagestore.username=sf imagestore.project=snapfleet \
    "imagestore.password_file=$SF_TMP/glance.password"
rc=0
out=$(sf_cli snapshot --instance g1 --strategy file-cold --wait --format json) || rc=$?
sf_note "password auth: $(jq -c '{state, error, image}' <<<"$out" 2>/dev/null || printf '%s' "$out")"
check_eq "(5) with user sf's password: the job is done" "0 done" "$rc $(jq -r .state <<<"$out")"
check_eq "(5) its image is active in Glance" active \
    "$(g_get "/v2/images/$(jq -r .image.id <<<"$out")" | jq -r .status)"
sf_done
