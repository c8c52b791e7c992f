# shellcheck shell=bash
#  tests/lib/glance.sh: a real OpenStack Glance (Debian's glance-api 25,
#  Zed) for the tests (notes/glance.md): sqlite, the file store, one
#  process (workers = 0) on 127.0.0.1 and a free port, every file in one
#  temp dir. Never /etc/glance, never the package's service.
#
#    gl_start DIR [KSDIR]
#        Write DIR/glance-api.conf and its paste pipeline, glance-manage
#        db_sync, start glance-api (pid in DIR/glance.pid, log
#        DIR/glance.log) and wait until GET /v2/images answers
#        (GL_READY_TIMEOUT, 120 s: 50 s seen at load 20). Without KSDIR: no auth (the upstream
#        default pipeline). With KSDIR (a Keystone of tests/lib/keystone.sh):
#        the "keystone" flavor, keystonemiddleware.auth_token against it, a
#        service user glance (admin in project service) and the image
#        image endpoint in its catalogue must be this Glance's URL: pass
#        the port in GL_PORT (pick it first with gl_free_port, give
#        ks_start http://127.0.0.1:PORT). Writes DIR/env: GL_URL,
#        GL_PID, GL_PORT. Extra settings: DIR/conf.d/*.conf before the start.
#    gl_stop DIR
#        SIGTERM the recorded pid after checking /proc/PID/cmdline (glance-api
#        with DIR's config), SIGKILL after GL_STOP_TIMEOUT (10 s). Never by
#        name. The data stays (gl_start DIR again restarts on it).
#    gl_kill DIR
#        SIGKILL the recorded pid (a crash), same checks.
#    gl_free_port
#        A TCP port nobody listens on now.
#    gl_alive DIR
#        Is DIR's glance-api running?
#
#  Safe under `set -euo pipefail`; needs curl.

GL_READY_TIMEOUT=${GL_READY_TIMEOUT:-120}
GL_STOP_TIMEOUT=${GL_STOP_TIMEOUT:-10}

# shellcheck source=svcpid.sh
. "$(dirname "${BASH_SOURCE[0]}")/svcpid.sh"

_gl_err () { printf '%s: error: %s\n' "${FUNCNAME[1]:-glance.sh}" "$*" >&2; }

gl_free_port () { svc_free_port; }

gl_alive ()
{
    local dir=${1:?usage: gl_alive DIR}
    svc_alive "$dir/glance.pid" "$dir/glance-api.conf"
}

_gl_write_conf ()
{
    local dir=$1 port=$2 ksdir=$3 flavor="" ks_url="" gpw=""
    mkdir -p "$dir/conf.d" "$dir/images" "$dir/staging" "$dir/tasks" "$dir/lock" \
        "$dir/work" "$dir/cache" "$dir/policy.d"
    cp /usr/share/glance-common/schema-image.json "$dir/schema-image.json"
    if [ -n "$ksdir" ]; then
        flavor=keystone
        ks_url=$( . "$ksdir/env" && printf '%s\n' "$KS_URL")
        gpw=$(cat "$dir/glance.password")
    fi
    cat >"$dir/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 0
debug = false
log_file = $dir/glance-api.log
image_cache_dir = $dir/cache
enabled_backends = fs:file
[database]
connection = sqlite:///$dir/glance.sqlite
[paste_deploy]
flavor = $flavor
config_file = $dir/glance-api-paste.ini
[oslo_concurrency]
lock_path = $dir/lock
[oslo_policy]
policy_file = $dir/policy.yaml
policy_dirs = $dir/policy.d
[task]
work_dir = $dir/work
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $dir/images
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
EOF
    if [ -n "$ksdir" ]; then
        cat >>"$dir/glance-api.conf" <<EOF
[keystone_authtoken]
www_authenticate_uri = ${ks_url%/v3}
auth_url = ${ks_url%/v3}
auth_type = password
username = glance
password = $gpw
project_name = service
user_domain_name = Default
project_domain_name = Default
service_token_roles_required = false
EOF
    fi
    cat >"$dir/glance-api-paste.ini" <<EOF
[pipeline:glance-api]
pipeline = healthcheck versionnegotiation unauthenticated-context rootapp
[pipeline:glance-api-keystone]
pipeline = healthcheck versionnegotiation authtoken context rootapp
[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app
[app:apiversions]
paste.app_factory = glance.api.versions:create_resource
[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory
[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory
backends = disable_by_file
disable_by_file_path = $dir/healthcheck_disable
[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
[filter:unauthenticated-context]
paste.filter_factory = glance.api.middleware.context:UnauthenticatedContextMiddleware.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = false
EOF
}

gl_start ()
{
    local dir=${1:?usage: gl_start DIR [KSDIR]} ksdir=${2:-} port i fresh=0
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/env" ]; then
        port=$( . "$dir/env" && printf '%s\n' "$GL_PORT")
    else
        fresh=1
        port=${GL_PORT:-$(gl_free_port)}
    fi
    if [ -n "$ksdir" ] && [ "$fresh" = 1 ]; then
        ksdir=$(cd "$ksdir" && pwd)
        (umask 077 && head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/glance.password")
        ks_add_user "$ksdir" service glance "$(cat "$dir/glance.password")" admin >/dev/null ||
            return 1
    fi
    if [ "$fresh" = 1 ]; then
        _gl_write_conf "$dir" "$port" "$ksdir"
        timeout -k 5 120 glance-manage --config-file "$dir/glance-api.conf" db_sync \
            >"$dir/manage.log" 2>&1 || { _gl_err "db_sync failed (see $dir/manage.log)"; return 1; }
    fi
    (cd "$dir" && exec glance-api --config-file "$dir/glance-api.conf" \
        --config-dir "$dir/conf.d") </dev/null >>"$dir/glance.log" 2>&1 &
    echo $! >"$dir/glance.pid"
    for ((i = 0; i < GL_READY_TIMEOUT * 5; i++)); do
        #  401 with keystone: the API answers
        local code
        code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$port/v2/images" 2>/dev/null || true)
        if [ "$code" = 200 ] || [ "$code" = 401 ]; then
            printf 'GL_URL=%q\nGL_PID=%q\nGL_PORT=%q\n' \
                "http://127.0.0.1:$port" "$(cat "$dir/glance.pid")" "$port" >"$dir/env"
            return 0
        fi
        #  Not by its command line here: right after the fork it is still
        #  the shell's, until the exec
        if ! svc_exists "$(cat "$dir/glance.pid")"; then
            _gl_err "glance-api exited at start (see $dir/glance.log, $dir/glance-api.log)"
            return 1
        fi
        sleep 0.2
    done
    _gl_err "glance-api not ready after ${GL_READY_TIMEOUT}s (see $dir/glance-api.log)"
    return 1
}

_gl_signal ()
{
    local dir=$1
    [ -f "$dir/glance.pid" ] || return 0
    dir=$(cd "$dir" && pwd)
    svc_signal "$dir/glance.pid" "$dir/glance-api.conf" "$2" "$GL_STOP_TIMEOUT" glance-api
}

gl_stop () { _gl_signal "${1:?usage: gl_stop DIR}" TERM; }
gl_kill () { _gl_signal "${1:?usage: gl_kill DIR}" KILL; }
