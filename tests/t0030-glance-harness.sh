#!/usr/bin/env bash
#  t0030-glance-harness: proves tests/lib/keystone.sh and tests/lib/glance.sh
#  with the real parts and no snapfleet code. A real Keystone (sqlite,
#  fernet, uwsgi) and a real Glance whose pipeline is keystonemiddleware
#  against it: a token from Keystone (password and application credential),
#  the image endpoint in its catalogue, create/upload/get/delete with curl,
#  401 without a token or with a bad one, another project does not see the
#  image; both stopped by recorded pid.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib/keystone.sh
. "$(dirname "$0")/lib/keystone.sh"
# shellcheck source=lib/glance.sh
. "$(dirname "$0")/lib/glance.sh"

sf_init t0030-glance-harness
sf_need glance-api glance-manage keystone-manage uwsgi curl jq sha512sum

ks=$SF_TMP/keystone
gl=$SF_TMP/glance
GL_PORT=$(gl_free_port)
export GL_PORT
t=$(_sf_now_ms)
sf_cleanup_push ks_stop "$ks"
ks_start "$ks" "http://127.0.0.1:$GL_PORT" || sf_die "keystone did not start"
sf_note "keystone start: $(($(_sf_now_ms) - t)) ms"
ks_add_user "$ks" snapfleet sf pw-sf member reader >/dev/null || sf_die "no user sf"
ks_add_user "$ks" other ot pw-ot member reader >/dev/null || sf_die "no user ot"
t=$(_sf_now_ms)
sf_cleanup_push gl_stop "$gl"
gl_start "$gl" "$ks" || sf_die "glance did not start"
sf_note "glance start: $(($(_sf_now_ms) - t)) ms"
# shellcheck source=/dev/null
. "$gl/env"
# shellcheck source=/dev/null
. "$ks/env"

check_eq "the pipeline has keystonemiddleware" "healthcheck versionnegotiation authtoken context rootapp" \
    "$(sed -n 's/^pipeline = //p' "$gl/glance-api-paste.ini" | sed -n 2p)"
check_eq "no token: 401" 401 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' "$GL_URL/v2/images")"
check_eq "a made-up token: 401" 401 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -H 'X-Auth-Token: gAAAAAnotatoken' "$GL_URL/v2/images")"
check_eq "a bad password: no token (401)" 401 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d \
       '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"sf","domain":{"name":"Default"},"password":"wrong"}}}}}' \
       "$KS_URL/auth/tokens")"

token=$(ks_token "$ks" sf pw-sf snapfleet)
check "a project token for sf" test -n "$token"
#  The catalogue names this Glance
catalog=$(curl -fsS -m 30 -H "X-Auth-Token: $token" -H "X-Subject-Token: $token" "$KS_URL/auth/tokens")
check_eq "the image endpoint in the catalogue is this Glance" "$GL_URL" \
    "$(jq -r '.token.catalog[] | select(.type=="image") | .endpoints[] | select(.interface=="public") | .url' <<<"$catalog")"

#  An application credential gives a token too
read -r ac_id ac_secret < <(ks_app_cred "$ks" sf pw-sf snapfleet t0030)
ac_token=$(curl -fsS -m 30 -D - -o /dev/null -H 'Content-Type: application/json' -d "$(jq -n \
    --arg i "$ac_id" --arg s "$ac_secret" '{auth: {identity: {methods: ["application_credential"],
    application_credential: {id: $i, secret: $s}}}}')" "$KS_URL/auth/tokens" |
    tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
check_eq "the application credential's token lists images" 200 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $ac_token" "$GL_URL/v2/images")"

#  create / upload / get / delete
head -c 3000007 /dev/urandom >"$SF_TMP/img.raw"
h=(-H "X-Auth-Token: $token" -H 'Accept: application/json')
id=$(curl -fsS -m 60 "${h[@]}" -X POST -H 'Content-Type: application/json' -d \
    '{"name":"t0030","disk_format":"raw","container_format":"bare","visibility":"private","snapfleet_job_id":"J1"}' \
    "$GL_URL/v2/images" | jq -r .id)
check "create: an image id ($id)" test -n "$id"
check_eq "upload without Content-Type: 415" 415 \
    "$(curl -sS -m 60 -o /dev/null -w '%{http_code}' "${h[@]}" -X PUT -H 'Content-Type:' \
       --data-binary @"$SF_TMP/img.raw" "$GL_URL/v2/images/$id/file")"
check_eq "upload (chunked): 204" 204 \
    "$(curl -sS -m 120 -o /dev/null -w '%{http_code}' "${h[@]}" -X PUT \
       -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' -T - \
       "$GL_URL/v2/images/$id/file" <"$SF_TMP/img.raw")"
img=$(curl -fsS -m 60 "${h[@]}" "$GL_URL/v2/images/$id")
check_eq "image active, size, sha512, property" \
    "active 3000007 sha512 $(sha512sum <"$SF_TMP/img.raw" | cut -d' ' -f1) J1" \
    "$(jq -r '"\(.status) \(.size) \(.os_hash_algo) \(.os_hash_value) \(.snapfleet_job_id)"' <<<"$img")"
check "download equals the upload" bash -c "curl -fsS -m 60 -H 'X-Auth-Token: $token' \
    '$GL_URL/v2/images/$id/file' | cmp - '$SF_TMP/img.raw'"
other=$(ks_token "$ks" ot pw-ot other)
check_eq "another project: 404" 404 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $other" "$GL_URL/v2/images/$id")"
check_eq "filter by the property" "$id" \
    "$(curl -fsS -m 30 "${h[@]}" "$GL_URL/v2/images?snapfleet_job_id=J1" | jq -r '.images[].id')"
check_eq "delete: 204" 204 \
    "$(curl -sS -m 60 -o /dev/null -w '%{http_code}' "${h[@]}" -X DELETE "$GL_URL/v2/images/$id")"
check_eq "then get: 404" 404 \
    "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' "${h[@]}" "$GL_URL/v2/images/$id")"

#  Stopped by recorded pid
_not () { ! "$@"; }
gpid=$GL_PID
kpid=$(cat "$ks/keystone.pid")
gl_stop "$gl"
check "glance-api (pid $gpid) is gone" _not gl_alive "$gl"
check_eq "glance's port is closed" 000 \
    "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$GL_URL/v2/images" 2>/dev/null || true)"
ks_stop "$ks"
check "keystone's uwsgi (pid $kpid) is gone" _not _ks_alive "$ks"
sf_done
