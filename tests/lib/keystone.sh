# shellcheck shell=bash
#  tests/lib/keystone.sh: a real OpenStack Keystone for the tests (Debian's
#  keystone package, Zed), nothing of the system's: sqlite, fernet tokens,
#  every file in one temp dir, served by uwsgi (python3 plugin, one process,
#  no threads) on 127.0.0.1 and a free port. Never /etc/keystone, never the
#  package's service.
#
#    ks_start DIR [IMAGE_URL]
#        Write DIR/keystone.conf, keystone-manage fernet_setup,
#        credential_setup, db_sync and bootstrap (admin in project admin,
#        region RegionOne), the catalogue (identity, and image at IMAGE_URL
#        if given) as a template file (keystone's templated catalog driver:
#        creating a service in the sql catalog on sqlite fails with
#        "database is locked" every time here), start uwsgi (pid in
#        DIR/keystone.pid, log DIR/keystone.log) and wait until GET /v3
#        answers (KS_READY_TIMEOUT, 120 s: 45 s seen at load 20). Writes DIR/env: KS_URL (.../v3),
#        KS_PID, KS_ADMIN_PASSWORD.
#    ks_stop DIR
#        SIGINT the recorded pid after checking /proc/PID/cmdline (uwsgi
#        with DIR's ini), SIGKILL after KS_STOP_TIMEOUT (10 s). Never by name.
#    ks_token DIR USER PASSWORD PROJECT
#        A project-scoped token (domain Default) on stdout.
#    ks_admin DIR METHOD PATH [JSON]
#        An admin API call (the admin token is kept in DIR), the body on stdout;
#        fails on a status >= 400.
#    ks_add_user DIR PROJECT USER PASSWORD ROLE...
#        Project (made if missing) and user in domain Default, the roles
#        (made if missing) on the project. Prints the user's id.
#    ks_app_cred DIR USER PASSWORD PROJECT NAME
#        An application credential of the user (scoped to PROJECT), prints
#        "ID SECRET".
#
#  Safe under `set -euo pipefail`; needs curl and jq.

KS_READY_TIMEOUT=${KS_READY_TIMEOUT:-120}
KS_STOP_TIMEOUT=${KS_STOP_TIMEOUT:-10}

# shellcheck source=svcpid.sh
. "$(dirname "${BASH_SOURCE[0]}")/svcpid.sh"

_ks_err () { printf '%s: error: %s\n' "${FUNCNAME[1]:-keystone.sh}" "$*" >&2; }

#  A free TCP port on 127.0.0.1 (not listened on now)
_ks_free_port () { svc_free_port; }

_ks_manage ()
{
    local dir=$1
    shift
    timeout -k 5 120 keystone-manage --config-file "$dir/keystone.conf" "$@" \
        >>"$dir/manage.log" 2>&1 || { _ks_err "keystone-manage $1 failed (see $dir/manage.log)"; return 1; }
}

ks_start ()
{
    local dir=${1:?usage: ks_start DIR [IMAGE_URL]} image_url=${2:-} port i
    port=$(_ks_free_port)
    mkdir -p "$dir/fernet-keys" "$dir/credential-keys" "$dir/lock"
    rm -f "$dir/admin.token"
    dir=$(cd "$dir" && pwd)
    chmod 700 "$dir/fernet-keys" "$dir/credential-keys"
    cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone-app.log
use_stderr = false
[database]
connection = sqlite:///$dir/keystone.sqlite
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[oslo_concurrency]
lock_path = $dir/lock
[oslo_policy]
policy_file = $dir/policy.yaml
[cache]
enabled = false
[catalog]
driver = templated
template_file = $dir/catalog.templates
[identity]
# bcrypt's fewest rounds: a token costs ~0.1 s of CPU, not seconds (test only)
password_hash_rounds = 4
EOF
    cat >"$dir/catalog.templates" <<EOF
catalog.RegionOne.identity.publicURL = http://127.0.0.1:$port/v3
catalog.RegionOne.identity.internalURL = http://127.0.0.1:$port/v3
catalog.RegionOne.identity.adminURL = http://127.0.0.1:$port/v3
catalog.RegionOne.identity.name = Identity Service
EOF
    if [ -n "$image_url" ]; then
        cat >>"$dir/catalog.templates" <<EOF
catalog.RegionOne.image.publicURL = $image_url
catalog.RegionOne.image.internalURL = $image_url
catalog.RegionOne.image.adminURL = $image_url
catalog.RegionOne.image.name = Image Service
EOF
    fi
    : >"$dir/manage.log"
    local me
    me=$(id -un)
    _ks_manage "$dir" fernet_setup --keystone-user "$me" --keystone-group "$(id -gn)" || return 1
    _ks_manage "$dir" credential_setup --keystone-user "$me" --keystone-group "$(id -gn)" || return 1
    _ks_manage "$dir" db_sync || return 1
    #  WAL: a reader's open cursor no longer blocks a writer's commit (in
    #  the default rollback journal, one request in five or so failed with
    #  "database is locked" after 5 s). Persistent in the file.
    python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal")' \
        "$dir/keystone.sqlite" || { _ks_err "cannot set WAL on $dir/keystone.sqlite"; return 1; }
    local pw
    pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    #  No catalogue here: the templated driver has none to write
    _ks_manage "$dir" bootstrap --bootstrap-password "$pw" || return 1
    cat >"$dir/uwsgi.ini" <<EOF
[uwsgi]
plugins-dir = /usr/lib/uwsgi/plugins
plugin = python3
http-socket = 127.0.0.1:$port
wsgi-file = /usr/bin/keystone-wsgi-public
master = false
processes = 1
threads = 1
env = OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf
chdir = $dir
buffer-size = 65535
# uwsgi's http-socket may close a connection after an answer without saying
# so: keystonemiddleware in Glance, reusing one, met "Remote end closed
# connection without response" and Glance answered 503 (seen in CI). With
# the header every client opens a new connection per request.
add-header = Connection: close
die-on-term = true
# no Python teardown at exit: a library's C++ part aborts in it ("Accessing
# state after destruction"), which bash reports as the stop's failure
skip-atexit-teardown = true
EOF
    uwsgi --ini "$dir/uwsgi.ini" </dev/null >>"$dir/keystone.log" 2>&1 &
    echo $! >"$dir/keystone.pid"
    for ((i = 0; i < KS_READY_TIMEOUT * 5; i++)); do
        if curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$port/v3" 2>/dev/null; then
            printf 'KS_URL=%q\nKS_PID=%q\nKS_ADMIN_PASSWORD=%q\n' \
                "http://127.0.0.1:$port/v3" "$!" "$pw" >"$dir/env"
            return 0
        fi
        #  Not by its command line here: right after the fork it is still
        #  the shell's, until the exec
        if ! svc_exists "$(cat "$dir/keystone.pid")"; then
            _ks_err "keystone exited at start (see $dir/keystone.log)"
            return 1
        fi
        sleep 0.2
    done
    _ks_err "keystone not ready after ${KS_READY_TIMEOUT}s (see $dir/keystone.log)"
    return 1
}

#  Is DIR's uwsgi (its recorded pid, running DIR's ini) alive?
_ks_alive () { svc_alive "$1/keystone.pid" "$1/uwsgi.ini"; }

#  Stop DIR's uwsgi (its recorded pid, running DIR's ini) with INT:
#  uwsgi's immediate stop (its TERM ends in abort() here)
ks_stop ()
{
    local dir=${1:?usage: ks_stop DIR}
    [ -f "$dir/keystone.pid" ] || return 0
    dir=$(cd "$dir" && pwd)
    svc_signal "$dir/keystone.pid" "$dir/uwsgi.ini" INT "$KS_STOP_TIMEOUT" keystone
}

#  KS_URL of DIR
_ks_url () { ( . "$1/env" && printf '%s\n' "$KS_URL" ); }

ks_token ()
{
    local dir=${1:?usage: ks_token DIR USER PASSWORD PROJECT} user=$2 pw=$3 project=$4 body
    body=$(jq -n --arg u "$user" --arg p "$pw" --arg pr "$project" '{auth: {identity: {
        methods: ["password"], password: {user: {name: $u, domain: {name: "Default"},
        password: $p}}}, scope: {project: {name: $pr, domain: {name: "Default"}}}}}')
    curl -fsS -m 30 -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "$body" "$(_ks_url "$dir")/auth/tokens" |
        tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}

ks_admin ()
{
    local dir=${1:?usage: ks_admin DIR METHOD PATH [JSON]} method=$2 path=$3 json=${4:-} token
    local pw
    pw=$( . "$dir/env" && printf '%s\n' "$KS_ADMIN_PASSWORD")
    #  One admin token per start (valid an hour), kept in DIR
    token=$(cat "$dir/admin.token" 2>/dev/null || true)
    if [ -z "$token" ]; then
        token=$(ks_token "$dir" admin "$pw" admin)
        [ -n "$token" ] || { _ks_err "no admin token"; return 1; }
        (umask 077 && printf '%s\n' "$token" >"$dir/admin.token")
    fi
    local args=(-fsS -m 30 -X "$method" -H "X-Auth-Token: $token" -H 'Accept: application/json')
    [ -z "$json" ] || args+=(-H 'Content-Type: application/json' -d "$json")
    #  Keystone on sqlite answers 500 "database is locked" now and then (a
    #  commit meets the lock of a connection the last request left in its
    #  pool): the failed call changed nothing, so it is made again (3 tries)
    local try out
    for try in 1 2 3; do
        if out=$(curl "${args[@]}" "$(_ks_url "$dir")$path"); then
            printf '%s\n' "$out"
            return 0
        fi
        [ "$try" = 3 ] || sleep 1
    done
    _ks_err "$method $path failed 3 times (see $dir/keystone-app.log)"
    return 1
}

ks_add_user ()
{
    local dir=${1:?usage: ks_add_user DIR PROJECT USER PASSWORD ROLE...} project=$2 user=$3 pw=$4
    shift 4
    local pid uid rid role
    pid=$(ks_admin "$dir" GET "/projects?name=$project" | jq -r '.projects[0].id // empty')
    [ -n "$pid" ] || pid=$(ks_admin "$dir" POST /projects "$(jq -n --arg n "$project" \
        '{project: {name: $n, domain_id: "default", enabled: true}}')" | jq -r .project.id)
    uid=$(ks_admin "$dir" POST /users "$(jq -n --arg n "$user" --arg p "$pw" \
        '{user: {name: $n, domain_id: "default", password: $p, enabled: true}}')" | jq -r .user.id)
    for role in "$@"; do
        rid=$(ks_admin "$dir" GET "/roles?name=$role" | jq -r '.roles[0].id // empty')
        [ -n "$rid" ] || rid=$(ks_admin "$dir" POST /roles "$(jq -n --arg n "$role" \
            '{role: {name: $n}}')" | jq -r .role.id)
        ks_admin "$dir" PUT "/projects/$pid/users/$uid/roles/$rid" >/dev/null
    done
    printf '%s\n' "$uid"
}

ks_app_cred ()
{
    local dir=${1:?usage: ks_app_cred DIR USER PASSWORD PROJECT NAME} user=$2 pw=$3 project=$4
    local name=$5 token uid
    token=$(ks_token "$dir" "$user" "$pw" "$project")
    [ -n "$token" ] || { _ks_err "no token for $user"; return 1; }
    uid=$(curl -fsS -m 30 -H "X-Auth-Token: $token" -H "X-Subject-Token: $token" \
        "$(_ks_url "$dir")/auth/tokens" | jq -r .token.user.id)
    curl -fsS -m 30 -X POST -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
        -d "$(jq -n --arg n "$name" '{application_credential: {name: $n}}')" \
        "$(_ks_url "$dir")/users/$uid/application_credentials" |
        jq -r '.application_credential | "\(.id) \(.secret)"'
}
