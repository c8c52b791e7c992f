/*  =========================================================================
    sf_agent_cfg - worker.conf: schema, defaults, loading, semantic checks
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <regex.h>
#include <sys/stat.h>

#include <unistd.h>

//  --------------------------------------------------------------------------
//  Configuration

#define S_OPT(section, key, type, field, dflt, help) \
    { section, key, type, offsetof (sf_agent_cfg_t, field), dflt, help }

const sf_cfg_opt_t sf_agent_cfg_schema [] = {
    S_OPT ("worker", "name", SF_CFG_STR, name, NULL,
           "node name (safe identifier); default: the short host name"),
    S_OPT ("worker", "scheduler", SF_CFG_STR, scheduler, "tcp://127.0.0.1:7600",
           "scheduler endpoint (its ROUTER 'bind')"),
    S_OPT ("worker", "max_jobs", SF_CFG_INT, max_jobs, "2", "jobs run at once (1..64)"),
    S_OPT ("worker", "workdir", SF_CFG_STR, workdir, "/var/lib/snapfleet/work",
           "scratch for conversions + the pause journal"),
    S_OPT ("worker", "heartbeat", SF_CFG_DURATION, heartbeat, "1s",
           "heartbeat period (the scheduler's Welcome overrides it)"),
    S_OPT ("worker", "inventory_interval", SF_CFG_DURATION, inventory_interval, "5s",
           "re-read the hypervisor this often; send Inventory when it changed"),
    S_OPT ("hypervisor", "uri", SF_CFG_STR, uri, "qemu:///system", "libvirt URI"),
    S_OPT ("hypervisor", "answer_timeout", SF_CFG_DURATION, hv_answer_timeout, "30s",
           "a libvirt call fails once libvirtd has not answered this long (2s..10m)"),
    S_OPT ("hypervisor", "backup_api", SF_CFG_BOOL, hv_backup_api, "true",
           "file-live copies with libvirt's backup API; false: external snapshot + commit"),
    //  The image store's options (sf_imgstore_cfg_t): each driver's keys
    S_OPT ("imagestore", "driver", SF_CFG_STR, store.driver, "dir", "image store: dir | glance"),
    S_OPT ("imagestore", "path", SF_CFG_STR, store.path, "/var/lib/snapfleet/images",
           "dir store: directory of the images"),
    S_OPT ("imagestore", "name", SF_CFG_STR, store.name, NULL,
           "store name for the scheduler's per-store limits; default: <driver>@<node>"),
    S_OPT ("imagestore", "glance_url", SF_CFG_STR, store.glance_url, NULL,
           "glance: Glance's URL; default: the image endpoint of Keystone's catalogue"),
    S_OPT ("imagestore", "auth", SF_CFG_STR, store.auth, "none", "glance: none | keystone"),
    S_OPT ("imagestore", "auth_url", SF_CFG_STR, store.auth_url, NULL,
           "glance: Keystone's URL (http(s)://host:port/v3)"),
    S_OPT ("imagestore", "username", SF_CFG_STR, store.username, NULL,
           "glance: Keystone user (password auth)"),
    S_OPT ("imagestore", "password_file", SF_CFG_STR, store.password_file, NULL,
           "glance: file holding the user's password (mode 0600 or 0400)"),
    S_OPT ("imagestore", "project", SF_CFG_STR, store.project, NULL,
           "glance: the user's project the images belong to"),
    S_OPT ("imagestore", "user_domain", SF_CFG_STR, store.user_domain, "Default",
           "glance: the user's domain"),
    S_OPT ("imagestore", "project_domain", SF_CFG_STR, store.project_domain, NULL,
           "glance: the project's domain; default: user_domain"),
    S_OPT ("imagestore", "app_cred_id", SF_CFG_STR, store.app_cred_id, NULL,
           "glance: application credential id (instead of a password)"),
    S_OPT ("imagestore", "secret_file", SF_CFG_STR, store.secret_file, NULL,
           "glance: file holding the application credential's secret (mode 0600 or 0400)"),
    S_OPT ("imagestore", "ca_file", SF_CFG_STR, store.ca_file, NULL,
           "glance: CA bundle for https to Glance and Keystone; default: the system's"),
    S_OPT ("pause", "max_pause", SF_CFG_DURATION, max_pause, "10m",
           "the pause guard resumes a guest at this deadline no matter what"),
    S_OPT ("conversion", "stall_timeout", SF_CFG_DURATION, stall_timeout, "2m",
           "qemu-img is stopped after this long without progress (5s..24h)"),
    S_OPT ("conversion", "rate_limit", SF_CFG_SIZE, conv_rate_limit, "0",
           "bytes per second a conversion reads at most (qemu-img -r); 0 = no limit"),
    S_OPT ("verify", "life_pattern", SF_CFG_STR, verify_life_pattern, "login:",
           "verify --boot: a console line matching this (POSIX extended regex) is a sign "
           "of life; empty = only the guest agent's answer"),
    S_OPT ("verify", "boot_timeout", SF_CFG_DURATION, verify_boot_timeout, "5m",
           "verify --boot: a guest with no sign of life this long after its start "
           "fails the verification (5s..1h)"),
    S_OPT ("storage.rbd", "ceph_conf", SF_CFG_STR, rbd_ceph_conf, "",
           "ceph.conf of the cluster of RBD disks; empty = RBD support off"),
    S_OPT ("storage.rbd", "client_id", SF_CFG_STR, rbd_client_id, "snapfleet",
           "cephx client id, without 'client.' (not admin: README gives the caps)"),
    S_OPT ("storage.rbd", "keyring", SF_CFG_STR, rbd_keyring, "",
           "keyring path; empty = the one ceph_conf names"),
    S_OPT ("storage.rbd", "mode", SF_CFG_STR, rbd_mode, "clone",
           "clone (protect + clone, no bytes copied) | export (into the image store)"),
    S_OPT ("storage.rbd", "snapshot", SF_CFG_STR, rbd_snapshot, "rbd",
           "how strategy rbd (and mixed) copies RBD disks: rbd (a snapshot in the "
           "pause) | backup (libvirt's push backup into the image store, as file-live)"),
    S_OPT ("storage.rbd", "clone_pool", SF_CFG_STR, rbd_clone_pool, "",
           "clone mode: pool for the clones; empty = the source image's pool"),
    S_OPT ("storage.rbd", "op_timeout", SF_CFG_DURATION, rbd_op_timeout, "30s",
           "deadline of each blocking librbd/librados call"),
    S_OPT ("log", "level", SF_CFG_STR, log_level, "info", "err|warning|notice|info|debug"),
    S_OPT ("log", "format", SF_CFG_STR, log_format, "text", "text|json"),
    S_OPT ("security", "cert", SF_CFG_STR, cert, NULL,
           "this worker's key pair (snapfleet keygen NAME); default /etc/snapfleet/NAME"),
    S_OPT ("security", "scheduler_key", SF_CFG_STR, scheduler_key, "/etc/snapfleet/scheduler",
           "the scheduler's public key: the worker talks to no other"),
    S_OPT ("security", "insecure", SF_CFG_BOOL, insecure, "false",
           "plaintext, no authentication: a loopback or ipc:// scheduler only"),
    { NULL }
};

//  A semantic check failed: "FILE:LINE: 'section.key' message" (the line
//  of the key in text, the file's content), or "FILE: ..." without it

static int
s_cfg_error (const char *path, const char *text, const char *section, const char *key,
             sf_err_t *err, const char *format, ...) __attribute__ ((format (printf, 6, 7)));

static int
s_cfg_error (const char *path, const char *text, const char *section, const char *key,
             sf_err_t *err, const char *format, ...)
{
    char message [200];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    return sf_cfg_fail (err, path ? path : "(defaults)", text, section, key, "'%s.%s' %s",
                        section, key, message);
}

//  Directories of disk images the work directory must keep out of: the
//  scratch cleanup of a job or of a restart then never meets a guest's disk
static const char *s_image_dirs [] = {
    "/var/lib/libvirt/images",
    NULL
};

//  path (absolute) as the kernel will resolve it, though it may not exist
//  yet: the real path of its nearest existing ancestor, then the rest,
//  with "." and ".." applied (nothing below the ancestor exists to be a
//  symlink). Caller frees.

static char *
s_resolve (const char *path)
{
    char *head = strdup (path);
    char *real = NULL;
    size_t cut = strlen (head);
    while (!(real = realpath (head, NULL))) {
        char *slash = strrchr (head, '/');
        if (!slash || slash == head) {
            free (head);
            head = strdup ("/");
            real = strdup ("/");
            cut = 0;
            break;
        }
        *slash = 0;
        cut = (size_t) (slash - head);
    }
    free (head);
    //  real + what was cut off, component by component
    char *out = (char *) zmalloc (strlen (real) + strlen (path) + 2);
    strcpy (out, streq (real, "/") ? "" : real);
    free (real);
    char *rest = strdup (path + cut), *save = NULL;
    for (char *part = strtok_r (rest, "/", &save); part; part = strtok_r (NULL, "/", &save)) {
        if (streq (part, "."))
            continue;
        if (streq (part, "..")) {
            char *slash = strrchr (out, '/');
            if (slash)
                *slash = 0;
            continue;
        }
        strcat (out, "/");
        strcat (out, part);
    }
    free (rest);
    if (!*out)
        strcpy (out, "/");
    return out;
}

//  True if real paths a and b are the same, or one holds the other

static bool
s_overlap (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    if (streq (a, "/") || streq (b, "/") || streq (a, b))
        return true;
    return (la < lb && strncmp (a, b, la) == 0 && b [la] == '/')
        || (lb < la && strncmp (a, b, lb) == 0 && a [lb] == '/');
}

//  Is value an http(s) URL (or unset)?
static bool
s_http_url (const char *value)
{
    return !value || !*value || strncmp (value, "http://", 7) == 0
        || strncmp (value, "https://", 8) == 0;
}

//  A secret's file: there, regular, readable by its owner only
static int
s_check_secret (const char *file, const char *key, const char *path, const char *text,
                sf_err_t *err)
{
    struct stat st;
    if (lstat (file, &st))
        return s_cfg_error (path, text, "imagestore", key, err, "cannot read '%s': %s", file,
                            strerror (errno));
    if (!S_ISREG (st.st_mode) || (st.st_mode & 077))
        return s_cfg_error (path, text, "imagestore", key, err, "'%s' must be a regular file "
                            "that group and others cannot read (mode %04o; chmod 600)", file,
                            (unsigned) (st.st_mode & 07777));
    return 0;
}

//  The glance store's keys: a way to Glance and one complete credential

static int
s_check_glance (const sf_imgstore_cfg_t *store, const char *path, const char *text,
                sf_err_t *err)
{
    #define S_SET(field) ((field) && *(field))
    if (!S_SET (store->auth) || (!streq (store->auth, "none") && !streq (store->auth, "keystone")))
        return s_cfg_error (path, text, "imagestore", "auth", err,
                            "must be none or keystone, not '%s'", store->auth ? store->auth : "");
    if (!s_http_url (store->glance_url))
        return s_cfg_error (path, text, "imagestore", "glance_url", err,
                            "must be an http:// or https:// URL, not '%s'", store->glance_url);
    if (streq (store->auth, "none")) {
        if (!S_SET (store->glance_url))
            return s_cfg_error (path, text, "imagestore", "glance_url", err,
                                "must be set with auth = none");
        return 0;
    }
    if (!S_SET (store->auth_url) || !s_http_url (store->auth_url))
        return s_cfg_error (path, text, "imagestore", "auth_url", err,
                            "must be Keystone's http:// or https:// URL with auth = keystone");
    if (S_SET (store->app_cred_id)) {
        if (!S_SET (store->secret_file))
            return s_cfg_error (path, text, "imagestore", "secret_file", err,
                                "must be set with app_cred_id");
        return s_check_secret (store->secret_file, "secret_file", path, text, err);
    }
    if (!S_SET (store->username) || !S_SET (store->project) || !S_SET (store->password_file))
        return s_cfg_error (path, text, "imagestore", !S_SET (store->username) ? "username"
                            : !S_SET (store->project) ? "project" : "password_file", err,
                            "must be set with auth = keystone (or app_cred_id and secret_file)");
    return s_check_secret (store->password_file, "password_file", path, text, err);
    #undef S_SET
}

//  The work directory must not be, hold or be inside the image store's
//  directory or a libvirt image directory

static int
s_check_workdir (const sf_agent_cfg_t *cfg, const char *path, const char *text,
                 sf_err_t *err)
{
    char *work = s_resolve (cfg->workdir);
    char *store = s_resolve (cfg->store.path);
    int rc = 0;
    if (s_overlap (work, store))
        rc = s_cfg_error (path, text, "worker", "workdir", err, "'%s' must not be, contain "
                          "or be inside the image store's directory '%s' (real paths '%s', "
                          "'%s')", cfg->workdir, cfg->store.path, work, store);
    for (const char **dir = s_image_dirs; rc == 0 && *dir; dir++) {
        char *images = s_resolve (*dir);
        if (s_overlap (work, images))
            rc = s_cfg_error (path, text, "worker", "workdir", err, "'%s' must not be, "
                              "contain or be inside the libvirt image directory '%s' (real "
                              "path '%s')", cfg->workdir, images, work);
        free (images);
    }
    free (work);
    free (store);
    return rc;
}

static int
s_cfg_validate (sf_agent_cfg_t *cfg, const char *path, const char *text, sf_err_t *err)
{
    if (!cfg->name) {
        char host [256] = "";
        gethostname (host, sizeof (host) - 1);
        host [strcspn (host, ".")] = 0;
        cfg->name = strdup (host);
    }
    if (!sf_name_is_safe (cfg->name))
        return s_cfg_error (path, text, "worker", "name", err,
                            "must be a safe identifier ([A-Za-z0-9._:-]), not '%s'", cfg->name);
    if (!strstr (cfg->scheduler, "://"))
        return s_cfg_error (path, text, "worker", "scheduler", err,
                            "must be an endpoint such as tcp://host:7600, not '%s'",
                            cfg->scheduler);
    if (cfg->max_jobs < 1 || cfg->max_jobs > 64)
        return s_cfg_error (path, text, "worker", "max_jobs", err, "must be 1..64");
    if (!*cfg->workdir || *cfg->workdir != '/')
        return s_cfg_error (path, text, "worker", "workdir", err,
                            "must be an absolute path, not '%s'", cfg->workdir);
    if (cfg->heartbeat <= 0 || cfg->inventory_interval <= 0)
        return s_cfg_error (path, text, "worker", cfg->heartbeat <= 0 ? "heartbeat"
                            : "inventory_interval", err, "must be positive");
    char drivers [128];
    if (!sf_imgstore_driver_known (cfg->store.driver))
        return s_cfg_error (path, text, "imagestore", "driver", err, "must be %s, not '%s'",
                            sf_imgstore_driver_names (drivers, sizeof (drivers)),
                            cfg->store.driver);
    if (!cfg->store.name)
        cfg->store.name = zsys_sprintf ("%s@%s", cfg->store.driver, cfg->name);
    size_t name_len = strlen (cfg->store.name);
    bool printable = name_len > 0 && name_len <= 128;
    for (const char *c = cfg->store.name; printable && *c; c++)
        printable = *c > ' ' && *c < 0x7f;
    if (!printable)
        return s_cfg_error (path, text, "imagestore", "name", err,
                            "must be 1..128 printable characters without spaces, not '%s'",
                            cfg->store.name);
    if (streq (cfg->store.driver, "glance") && s_check_glance (&cfg->store, path, text, err))
        return -1;
    if (*cfg->store.path != '/')
        return s_cfg_error (path, text, "imagestore", "path", err,
                            "must be an absolute path, not '%s'", cfg->store.path);
    if (s_check_workdir (cfg, path, text, err))
        return -1;
    if (cfg->max_pause <= 0)
        return s_cfg_error (path, text, "pause", "max_pause", err, "must be positive");
    if (cfg->hv_answer_timeout < SF_AGENT_ANSWER_MIN
    ||  cfg->hv_answer_timeout > SF_AGENT_ANSWER_MAX)
        return s_cfg_error (path, text, "hypervisor", "answer_timeout", err,
                            "must be 2s..10m");
    if (cfg->stall_timeout < SF_AGENT_STALL_MIN || cfg->stall_timeout > SF_AGENT_STALL_MAX)
        return s_cfg_error (path, text, "conversion", "stall_timeout", err,
                            "must be 5s..24h");
    if (cfg->conv_rate_limit > 0 && cfg->conv_rate_limit < SF_AGENT_CONV_RATE_MIN)
        return s_cfg_error (path, text, "conversion", "rate_limit", err,
                            "must be 0 (no limit) or at least 1MiB");
    if (cfg->verify_boot_timeout < SF_AGENT_BOOT_MIN
    ||  cfg->verify_boot_timeout > SF_AGENT_BOOT_MAX)
        return s_cfg_error (path, text, "verify", "boot_timeout", err, "must be 5s..1h");
    regex_t regex;
    if (strlen (cfg->verify_life_pattern) > 256
    ||  !sf_utf8_valid (cfg->verify_life_pattern)
    ||  regcomp (&regex, cfg->verify_life_pattern, REG_EXTENDED | REG_NOSUB))
        return s_cfg_error (path, text, "verify", "life_pattern", err,
                            "must be a POSIX extended regular expression of at most 256 "
                            "bytes, not '%.64s'", cfg->verify_life_pattern);
    regfree (&regex);
    if (*cfg->rbd_ceph_conf && (*cfg->rbd_ceph_conf != '/'
                            ||  access (cfg->rbd_ceph_conf, R_OK)))
        return s_cfg_error (path, text, "storage.rbd", "ceph_conf", err,
                            "must be empty or name a readable file by its absolute path, "
                            "not '%s'", cfg->rbd_ceph_conf);
    if (strncmp (cfg->rbd_client_id, "client.", 7) == 0)
        return s_cfg_error (path, text, "storage.rbd", "client_id", err,
                            "is the id without 'client.' (e.g. '%s'), not '%s'",
                            cfg->rbd_client_id + 7, cfg->rbd_client_id);
    if (!sf_name_is_safe (cfg->rbd_client_id))
        return s_cfg_error (path, text, "storage.rbd", "client_id", err,
                            "must be a safe identifier, not '%s'", cfg->rbd_client_id);
    if (*cfg->rbd_keyring && *cfg->rbd_keyring != '/')
        return s_cfg_error (path, text, "storage.rbd", "keyring", err,
                            "must be empty or an absolute path, not '%s'", cfg->rbd_keyring);
    if (!streq (cfg->rbd_mode, "clone") && !streq (cfg->rbd_mode, "export"))
        return s_cfg_error (path, text, "storage.rbd", "mode", err,
                            "must be clone|export, not '%s'", cfg->rbd_mode);
    if (!streq (cfg->rbd_snapshot, "rbd") && !streq (cfg->rbd_snapshot, "backup"))
        return s_cfg_error (path, text, "storage.rbd", "snapshot", err,
                            "must be rbd|backup, not '%s'", cfg->rbd_snapshot);
    if (*cfg->rbd_clone_pool && !sf_name_is_safe (cfg->rbd_clone_pool))
        return s_cfg_error (path, text, "storage.rbd", "clone_pool", err,
                            "must be empty or a pool name, not '%s'", cfg->rbd_clone_pool);
    if (cfg->rbd_op_timeout <= 0)
        return s_cfg_error (path, text, "storage.rbd", "op_timeout", err, "must be positive");
    if (cfg->insecure && !sf_cert_is_local (cfg->scheduler))
        return s_cfg_error (path, text, "security", "insecure", err,
                            "(plaintext) is allowed only with a loopback or ipc:// "
                            "scheduler, not '%s'", cfg->scheduler);
    if (!cfg->cert || !*cfg->cert) {
        free (cfg->cert);
        cfg->cert = zsys_sprintf ("/etc/snapfleet/%s", cfg->name);
    }
    if (!cfg->insecure && (!*cfg->cert || !*cfg->scheduler_key))
        return s_cfg_error (path, text, "security", *cfg->cert? "scheduler_key": "cert",
                            err, "must be set (or 'security.insecure' on loopback)");
    if (sf_log_level_parse (cfg->log_level) == -1)
        return s_cfg_error (path, text, "log", "level", err,
                            "must be err|warning|notice|info|debug, not '%s'", cfg->log_level);
    if (sf_log_format_parse (cfg->log_format) == -1)
        return s_cfg_error (path, text, "log", "format", err,
                            "must be text|json, not '%s'", cfg->log_format);
    return 0;
}

int
sf_agent_cfg_load (sf_agent_cfg_t *cfg, const char *path, sf_err_t *err)
{
    assert (cfg);
    memset (cfg, 0, sizeof (*cfg));
    if (sf_cfg_defaults (sf_agent_cfg_schema, cfg, err))
        return -1;
    if (path && sf_cfg_load (sf_agent_cfg_schema, cfg, path, err))
        return -1;
    char *text = path ? sf_cfg_read_text (path) : NULL;
    int rc = s_cfg_validate (cfg, path, text, err);
    free (text);
    return rc;
}

void
sf_agent_cfg_release (sf_agent_cfg_t *cfg)
{
    assert (cfg);
    sf_cfg_release (sf_agent_cfg_schema, cfg);
}

void
sf_agent_cfg_copy (sf_agent_cfg_t *dst, const sf_agent_cfg_t *src)
{
    *dst = *src;
    for (const sf_cfg_opt_t *opt = sf_agent_cfg_schema; opt->key; opt++)
        if (opt->type == SF_CFG_STR) {
            char **field = (char **) ((char *) dst + opt->offset);
            *field = *field ? strdup (*field) : NULL;
        }
}


//  --------------------------------------------------------------------------
//  Self test

static int
s_test_load (const char *dir, const char *text, sf_agent_cfg_t *cfg, sf_err_t *err)
{
    char *path = zsys_sprintf ("%s/worker.conf", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    int rc = sf_agent_cfg_load (cfg, path, err);
    zstr_free (&path);
    return rc;
}

//  A workdir that is, holds or is inside the image store or a libvirt
//  image directory is refused, by real path (symlinks, "..", paths that do
//  not exist yet)

static void
s_test_workdir (const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    sf_agent_cfg_t cfg;
    char *cmd = zsys_sprintf ("mkdir -p %s/data/images && ln -sfn %s/data %s/alias", dir,
                              dir, dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    const char *bad [] = {
        "%s/data/images",                   //  the same
        "%s/data",                          //  holds it
        "%s/data/images/work",              //  inside it
        "%s/alias/images/new/work",         //  inside, through a symlink, not there yet
        "%s/nothere/../data/images/w",      //  inside, after ".."
        "/var/lib/libvirt/images/work",
        "/var/lib",
        "/",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        char *workdir = zsys_sprintf (bad [i], dir);
        char *text = zsys_sprintf ("[worker]\nworkdir = %s\n[imagestore]\n"
                                   "path = %s/data/images\n", workdir, dir);
        assert (s_test_load (dir, text, &cfg, &err) == -1);
        assert (strstr (err.text, ":2: 'worker.workdir' '"));
        assert (strstr (err.text, i < 5 ? "must not be, contain or be inside the image "
                                          "store's directory" : "must not be, contain or "
                                          "be inside the"));
        sf_agent_cfg_release (&cfg);
        zstr_free (&text);
        zstr_free (&workdir);
    }
    char *text = zsys_sprintf ("[worker]\nworkdir = %s/alias/work\n[imagestore]\n"
                               "path = %s/data/images\n", dir, dir);
    assert (s_test_load (dir, text, &cfg, &err) == 0);      //  a sibling is fine
    sf_agent_cfg_release (&cfg);
    zstr_free (&text);
    assert (s_test_load (dir, "[worker]\nworkdir = /var/lib/libvirt/qemu-snapfleet\n", &cfg,
                         &err) == 0);
    sf_agent_cfg_release (&cfg);
}

//  The glance store's keys

static void
s_test_glance (const char *dir)
{
    sf_agent_cfg_t cfg;
    sf_err_t err = SF_ERR_INIT;
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\n", &cfg, &err) == -1);
    assert (strstr (err.text, "'imagestore.glance_url' must be set with auth = none"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\nglance_url = ftp://g\n", &cfg,
                         &err) == -1);
    assert (strstr (err.text, ":3: 'imagestore.glance_url' must be an http://"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\nglance_url = http://g:9292\n",
                         &cfg, &err) == 0);
    assert (streq (cfg.store.glance_url, "http://g:9292") && streq (cfg.store.auth, "none"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\nauth = ldap\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":3: 'imagestore.auth' must be none or keystone"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\nauth = keystone\n", &cfg,
                         &err) == -1);
    assert (strstr (err.text, "'imagestore.auth_url' must be Keystone's"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = glance\nauth = keystone\n"
                         "auth_url = http://k/v3\nusername = sf\nproject = p\n", &cfg, &err) == -1);
    assert (strstr (err.text, "'imagestore.password_file' must be set"));
    sf_agent_cfg_release (&cfg);
    //  Secrets only in files only their owner reads
    char *secret = zsys_sprintf ("%s/pw", dir);
    char *cmd = zsys_sprintf ("echo pw > %s && chmod 644 %s", secret, secret);
    assert (system (cmd) == 0);
    char *text = zsys_sprintf ("[imagestore]\ndriver = glance\nauth = keystone\n"
                               "auth_url = http://k/v3\nusername = sf\nproject = p\n"
                               "password_file = %s\n", secret);
    assert (s_test_load (dir, text, &cfg, &err) == -1);
    assert (strstr (err.text, ":7: 'imagestore.password_file'"));
    assert (strstr (err.text, "must be a regular file that group and others cannot read "
                    "(mode 0644"));
    sf_agent_cfg_release (&cfg);
    assert (chmod (secret, 0600) == 0);
    assert (s_test_load (dir, text, &cfg, &err) == 0);
    assert (streq (cfg.store.user_domain, "Default") && !cfg.store.project_domain);
    sf_agent_cfg_release (&cfg);
    zstr_free (&text);
    text = zsys_sprintf ("[imagestore]\ndriver = glance\nauth = keystone\n"
                         "auth_url = https://k/v3\napp_cred_id = abc\n");
    assert (s_test_load (dir, text, &cfg, &err) == -1);
    assert (strstr (err.text, "'imagestore.secret_file' must be set with app_cred_id"));
    sf_agent_cfg_release (&cfg);
    zstr_free (&text);
    text = zsys_sprintf ("[imagestore]\ndriver = glance\nauth = keystone\n"
                         "auth_url = https://k/v3\napp_cred_id = abc\nsecret_file = %s\n",
                         secret);
    assert (s_test_load (dir, text, &cfg, &err) == 0);
    sf_agent_cfg_release (&cfg);
    unlink (secret);
    zstr_free (&text);
    zstr_free (&cmd);
    zstr_free (&secret);
}

void
sf_agent_cfg_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_agent_cfg: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf-agent-cfg-test-XXXXXX";
    assert (mkdtemp (dir));
    sf_agent_cfg_t cfg;
    //  Defaults, as in the contract
    assert (sf_agent_cfg_load (&cfg, NULL, &err) == 0);
    assert (streq (cfg.scheduler, "tcp://127.0.0.1:7600") && cfg.max_jobs == 2);
    assert (streq (cfg.workdir, "/var/lib/snapfleet/work") && cfg.heartbeat == 1000);
    assert (cfg.inventory_interval == 5000 && streq (cfg.uri, "qemu:///system"));
    assert (streq (cfg.store.driver, "dir") && cfg.max_pause == 600000);
    assert (streq (cfg.store.path, "/var/lib/snapfleet/images"));
    assert (cfg.name && sf_name_is_safe (cfg.name));        //  the host name
    char *store_name = zsys_sprintf ("dir@%s", cfg.name);
    assert (streq (cfg.store.name, store_name));
    zstr_free (&store_name);
    sf_agent_cfg_t copy;
    sf_agent_cfg_copy (&copy, &cfg);
    assert (copy.uri != cfg.uri && streq (copy.uri, cfg.uri));
    sf_agent_cfg_release (&copy);
    sf_agent_cfg_release (&cfg);
    //  Every key of the contract is accepted
    assert (s_test_load (dir, "[worker]\nname = node1\nscheduler = tcp://10.0.0.1:7600\n"
        "max_jobs = 4\nworkdir = /w\nheartbeat = 250ms\ninventory_interval = 1m\n"
        "[hypervisor]\nuri = test:///default\n[imagestore]\ndriver = dir\npath = /i\n"
        "[pause]\nmax_pause = 90s\n[log]\nlevel = debug\nformat = json\n", &cfg, &err) == 0);
    assert (streq (cfg.name, "node1") && cfg.max_jobs == 4 && cfg.heartbeat == 250);
    assert (cfg.inventory_interval == 60000 && cfg.max_pause == 90000);
    assert (streq (cfg.store.name, "dir@node1"));
    sf_agent_cfg_release (&cfg);
    //  [security]: CURVE by default, plaintext only on loopback
    assert (s_test_load (dir, "[worker]\nname = hv7\n", &cfg, &err) == 0);
    assert (streq (cfg.cert, "/etc/snapfleet/hv7") && !cfg.insecure);
    assert (streq (cfg.scheduler_key, "/etc/snapfleet/scheduler"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[security]\ninsecure = yes\n", &cfg, &err) == 0);
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[worker]\nscheduler = tcp://10.0.0.1:7600\n"
                         "[security]\ninsecure = yes\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":4: 'security.insecure' (plaintext) is allowed only with"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\nname = nas-2\n", &cfg, &err) == 0);
    assert (streq (cfg.store.name, "nas-2"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\nname = nas 2\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'imagestore.name' must be 1..128 printable"));
    sf_agent_cfg_release (&cfg);
    //  [storage.rbd]: off by default; every key
    assert (sf_agent_cfg_load (&cfg, NULL, &err) == 0);
    assert (streq (cfg.rbd_ceph_conf, "") && streq (cfg.rbd_client_id, "snapfleet"));
    assert (streq (cfg.rbd_keyring, "") && streq (cfg.rbd_mode, "clone"));
    assert (streq (cfg.rbd_clone_pool, "") && cfg.rbd_op_timeout == 30000);
    assert (streq (cfg.rbd_snapshot, "rbd"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[storage.rbd]\nsnapshot = backup\n", &cfg, &err) == 0);
    assert (streq (cfg.rbd_snapshot, "backup"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[storage.rbd]\nsnapshot = Backup\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'storage.rbd.snapshot' must be rbd|backup"));
    sf_agent_cfg_release (&cfg);
    char *text = zsys_sprintf ("[storage.rbd]\nceph_conf = %s/worker.conf\nclient_id = backup\n"
                               "keyring = /k\nmode = export\nclone_pool = snaps\n"
                               "op_timeout = 5s\n", dir);
    assert (s_test_load (dir, text, &cfg, &err) == 0);
    zstr_free (&text);
    assert (strstr (cfg.rbd_ceph_conf, "worker.conf") && streq (cfg.rbd_client_id, "backup"));
    assert (streq (cfg.rbd_mode, "export") && streq (cfg.rbd_clone_pool, "snaps"));
    assert (cfg.rbd_op_timeout == 5000 && streq (cfg.rbd_keyring, "/k"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[storage.rbd]\nmode = copy\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'storage.rbd.mode' must be clone|export"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[storage.rbd]\nclient_id = client.admin\n", &cfg, &err) == -1);
    assert (strstr (err.text, "is the id without 'client.' (e.g. 'admin')"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[storage.rbd]\nceph_conf = /nonexistent/ceph.conf\n", &cfg,
                         &err) == -1);
    assert (strstr (err.text, ":2: 'storage.rbd.ceph_conf' must be empty or name a readable"));
    sf_agent_cfg_release (&cfg);
    //  [hypervisor] answer_timeout and [conversion] stall_timeout, in range
    assert (sf_agent_cfg_load (&cfg, NULL, &err) == 0);
    assert (cfg.hv_answer_timeout == 30000 && cfg.stall_timeout == 120000);
    assert (cfg.conv_rate_limit == 0);
    assert (cfg.hv_backup_api);
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[hypervisor]\nbackup_api = false\n", &cfg, &err) == 0);
    assert (!cfg.hv_backup_api);
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[hypervisor]\nbackup_api = maybe\n", &cfg, &err) == -1);
    assert (strstr (err.text, "backup_api"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[hypervisor]\nanswer_timeout = 2s\n[conversion]\n"
                         "stall_timeout = 24h\n", &cfg, &err) == 0);
    assert (cfg.hv_answer_timeout == 2000 && cfg.stall_timeout == 86400000);
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[hypervisor]\nanswer_timeout = 10m\n[conversion]\n"
                         "stall_timeout = 5s\nrate_limit = 200MiB\n", &cfg, &err) == 0);
    assert (cfg.conv_rate_limit == 200u << 20);
    sf_agent_cfg_release (&cfg);
    //  [verify]: the defaults, and a pattern and timeout of one's own
    assert (sf_agent_cfg_load (&cfg, NULL, &err) == 0);
    assert (streq (cfg.verify_life_pattern, "login:") && cfg.verify_boot_timeout == 300000);
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[verify]\nlife_pattern = ^GUEST seq=[0-9]+\n"
                         "boot_timeout = 90s\n", &cfg, &err) == 0);
    assert (streq (cfg.verify_life_pattern, "^GUEST seq=[0-9]+"));
    assert (cfg.verify_boot_timeout == 90000);
    sf_agent_cfg_release (&cfg);
    const char *out_of_range [] = {
        "[hypervisor]\nanswer_timeout = 1999ms\n",
        ":2: 'hypervisor.answer_timeout' must be 2s..10m",
        "[hypervisor]\nanswer_timeout = 11m\n",
        ":2: 'hypervisor.answer_timeout' must be 2s..10m",
        "[conversion]\n\nstall_timeout = 4s\n",
        ":3: 'conversion.stall_timeout' must be 5s..24h",
        "[conversion]\nstall_timeout = 25h\n",
        ":2: 'conversion.stall_timeout' must be 5s..24h",
        "[verify]\nboot_timeout = 4s\n",
        ":2: 'verify.boot_timeout' must be 5s..1h",
        "[verify]\nboot_timeout = 61m\n",
        ":2: 'verify.boot_timeout' must be 5s..1h",
        "[verify]\nlife_pattern = GUEST (seq\n",
        ":2: 'verify.life_pattern' must be a POSIX extended regular expression",
        "[conversion]\nstall_timeout = 0s\n",
        ":2: 'conversion.stall_timeout' must be 5s..24h",
        "[conversion]\nstall_timeout = slow\n",
        ":2: 'conversion.stall_timeout' must be a duration",
        "[conversion]\nrate_limit = 64KiB\n",
        ":2: 'conversion.rate_limit' must be 0 (no limit) or at least 1MiB",
    };
    for (size_t i = 0; i < sizeof (out_of_range) / sizeof (out_of_range [0]); i += 2) {
        assert (s_test_load (dir, out_of_range [i], &cfg, &err) == -1);
        assert (strstr (err.text, out_of_range [i + 1]));
        sf_agent_cfg_release (&cfg);
    }
    assert (s_test_load (dir, "[storage.rbd]\nop_timeout = 0s\n", &cfg, &err) == -1);
    assert (strstr (err.text, "'storage.rbd.op_timeout' must be positive"));
    sf_agent_cfg_release (&cfg);
    //  Errors name file and line
    char *prefix = zsys_sprintf ("%s/worker.conf:", dir);
    assert (s_test_load (dir, "[worker]\nname = node 1\n", &cfg, &err) == -1);
    assert (strstr (err.text, prefix) && strstr (err.text, ":2: 'worker.name' must be a safe"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[pause]\n\nmax_pause = 0s\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":3: 'pause.max_pause' must be positive"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[imagestore]\ndriver = nfs\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'imagestore.driver' must be 'dir' or 'glance'"));
    sf_agent_cfg_release (&cfg);
    s_test_glance (dir);
    assert (s_test_load (dir, "[worker]\nmax_jobs = 0\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'worker.max_jobs' must be 1..64"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[worker]\nscheduler = sched1\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'worker.scheduler' must be an endpoint"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[log]\nlevel = loud\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'log.level'"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[worker]\nmax_job = 3\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: unknown key 'max_job' in section '[worker]'"));
    sf_agent_cfg_release (&cfg);
    assert (s_test_load (dir, "[worker]\nheartbeat = soon\n", &cfg, &err) == -1);
    assert (strstr (err.text, ":2: 'worker.heartbeat' must be a duration"));
    sf_agent_cfg_release (&cfg);
    s_test_workdir (dir);
    zstr_free (&prefix);
    char *cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    //  @end
    printf ("OK\n");
}
