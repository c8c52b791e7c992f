/*  =========================================================================
    sf_schedcfg - the scheduler's configuration (scheduler.conf)

    sf_cfg checks syntax, keys and types and names the line. The checks
    here run after parsing and name the line through sf_cfg_fail, which
    looks the key up in the file's text again.
    =========================================================================
*/
#include "sf_sched_classes.h"

#define OPT(section, key, type, field, dflt, help) \
    { section, key, type, offsetof (sf_schedcfg_t, field), dflt, help }

const sf_cfg_opt_t sf_schedcfg_schema [] = {
    OPT ("scheduler", "bind", SF_CFG_STR, bind, "tcp://127.0.0.1:7600",
         "ROUTER endpoint the workers connect to"),
    OPT ("scheduler", "admin_bind", SF_CFG_STR, admin_bind, "tcp://127.0.0.1:7601",
         "ROUTER endpoint the snapfleet CLI connects to"),
    OPT ("scheduler", "database", SF_CFG_STR, database, "/var/lib/snapfleet/scheduler.db",
         "SQLite database file (created if missing)"),
    OPT ("scheduler", "heartbeat", SF_CFG_DURATION, heartbeat_ms, "1s",
         "heartbeat interval told to workers in Welcome"),
    OPT ("scheduler", "node_timeout", SF_CFG_DURATION, node_timeout_ms, "5s",
         "a node silent for this long is down: it gets no new jobs"),
    OPT ("limits", "max_paused", SF_CFG_INT, limits.max_paused, "0",
         "guests paused at once, fleet-wide (0 = no limit)"),
    OPT ("limits", "max_paused_per_node", SF_CFG_INT, limits.max_paused_per_node, "0",
         "guests paused at once on one node"),
    OPT ("limits", "max_snap_ops", SF_CFG_INT, limits.max_snap_ops, "0",
         "RBD snapshot captures at once per Ceph cluster"),
    OPT ("limits", "max_uploads", SF_CFG_INT, limits.max_uploads, "0",
         "uploads to image stores at once, fleet-wide"),
    OPT ("limits", "max_uploads_per_node", SF_CFG_INT, limits.max_uploads_per_node, "0",
         "uploads at once from one node"),
    OPT ("limits", "max_uploads_per_store", SF_CFG_INT, limits.max_uploads_per_store, "0",
         "uploads at once into one image store"),
    OPT ("limits", "bandwidth", SF_CFG_SIZE, limits.bandwidth, "0",
         "upload bytes per second, fleet-wide"),
    OPT ("limits", "bandwidth_per_node", SF_CFG_SIZE, limits.bandwidth_per_node, "0",
         "upload bytes per second from one node"),
    OPT ("limits", "bandwidth_per_store", SF_CFG_SIZE, limits.bandwidth_per_store, "0",
         "upload bytes per second into one image store"),
    OPT ("limits", "lease", SF_CFG_DURATION, limits.lease_ms, "60s",
         "a handed job with no news for this (plus its bytes at lease_rate) is "
         "asked about, and failed if no answer comes within as long again (1s..1d)"),
    OPT ("limits", "lease_rate", SF_CFG_SIZE, limits.lease_rate, "1M",
         "the slow floor rate (bytes/s) a job's lease allows for its bytes "
         "(1 byte/s..1T)"),
    OPT ("limits", "max_jobs_per_node", SF_CFG_INT, max_jobs_per_node, "64",
         "jobs at once on one node, whatever its worker asks (1..65535)"),
    OPT ("limits", "max_peers", SF_CFG_INT, max_peers, "1024",
         "worker nodes the scheduler accepts; a hello from one more is refused"),
    OPT ("limits", "max_attempts", SF_CFG_INT, max_attempts, "3",
         "attempts of a job that fails for a cause that may pass (1 = no retry; 1..100)"),
    OPT ("limits", "retry_backoff", SF_CFG_DURATION, retry_backoff_ms, "30s",
         "delay before the first retry, doubled for each next one up to 10m "
         "(0..10m)"),
    OPT ("retention", "history_days", SF_CFG_INT, history_days, "30",
         "finished jobs, their events and bulks older than this are pruned "
         "(1..36500; jobs whose images are kept stay)"),
    OPT ("retention", "max_chain", SF_CFG_INT, max_chain, "7",
         "increments a file-live run may build on one full copy; the next run is "
         "full again, so that retention can drop the old chain (0 = always full; "
         "0..1000)"),
    OPT ("gc", "interval", SF_CFG_DURATION, gc_interval_ms, "10m",
         "how often every node is reconciled with the catalogue (also once when a "
         "node connects); 0 = never (0, or 1m..30d)"),
    OPT ("gc", "remove", SF_CFG_BOOL, gc_remove, "true",
         "the periodic runs remove orphans (false: they only list them and mark "
         "missing images)"),
    OPT ("gc", "grace", SF_CFG_DURATION, gc_grace_ms, "10m",
         "objects younger than this are never removed (1s..30d)"),
    OPT ("gc", "timeout", SF_CFG_DURATION, gc_timeout_ms, "30s",
         "a node that has not answered a gc step within this is listed as not "
         "answering (1s..1h)"),
    OPT ("log", "level", SF_CFG_STR, log_level, "info",
         "err|warning|notice|info|debug"),
    OPT ("log", "format", SF_CFG_STR, log_format, "text", "text|json"),
    OPT ("security", "cert", SF_CFG_STR, cert, "/etc/snapfleet/scheduler_secret",
         "the scheduler's key pair (snapfleet keygen): its secret file"),
    OPT ("security", "workers", SF_CFG_STR, workers, "/etc/snapfleet/workers",
         "directory of the enrolled workers' public keys"),
    OPT ("security", "admins", SF_CFG_STR, admins, "/etc/snapfleet/admins",
         "directory of the enrolled admins' (CLI users') public keys"),
    OPT ("security", "insecure", SF_CFG_BOOL, insecure, "false",
         "plaintext, no authentication: loopback and ipc:// endpoints only"),
    { NULL }
};

//  --------------------------------------------------------------------------
//  Validation

bool
sf_schedcfg_is_loopback (const char *endpoint)
{
    return sf_cert_is_local (endpoint);
}

//  True if directory a is b or inside it (as written)

static bool
s_inside (const char *a, const char *b)
{
    size_t length = strlen (b);
    while (length > 1 && b [length - 1] == '/')
        length--;
    return strncmp (a, b, length) == 0 && (a [length] == '\0' || a [length] == '/');
}

static bool
s_endpoint_ok (const char *endpoint)
{
    const char *schemes [] = { "tcp://", "ipc://", "inproc://", NULL };
    for (int i = 0; schemes [i]; i++) {
        size_t length = strlen (schemes [i]);
        if (strncmp (endpoint, schemes [i], length) == 0 && endpoint [length])
            return true;
    }
    return false;
}

//  True for tcp://HOST:* and tcp://HOST:0, which bind a free port each time

static bool
s_ephemeral (const char *endpoint)
{
    size_t length = strlen (endpoint);
    return length > 2 && (streq (endpoint + length - 2, ":*")
                      ||  streq (endpoint + length - 2, ":0"));
}

static int
s_validate (sf_schedcfg_t *cfg, const char *name, const char *text, sf_err_t *err)
{
    if (!s_endpoint_ok (cfg->bind))
        return sf_cfg_fail (err, name, text, "scheduler", "bind",
                           "'scheduler.bind' must be a ZeroMQ endpoint such as "
                           "tcp://127.0.0.1:7600, not '%s'", cfg->bind);
    if (!s_endpoint_ok (cfg->admin_bind))
        return sf_cfg_fail (err, name, text, "scheduler", "admin_bind",
                           "'scheduler.admin_bind' must be a ZeroMQ endpoint such as "
                           "tcp://127.0.0.1:7601, not '%s'", cfg->admin_bind);
    if (streq (cfg->bind, cfg->admin_bind) && !s_ephemeral (cfg->bind))
        return sf_cfg_fail (err, name, text, "scheduler", "admin_bind",
                           "'scheduler.admin_bind' must differ from 'scheduler.bind'");
    if (!*cfg->database)
        return sf_cfg_fail (err, name, text, "scheduler", "database",
                           "'scheduler.database' must name a file");
    if (cfg->heartbeat_ms <= 0 || cfg->heartbeat_ms > 3600000)
        return sf_cfg_fail (err, name, text, "scheduler", "heartbeat",
                           "'scheduler.heartbeat' must be between 1ms and 1h");
    //  Blame whichever of the two the file sets (node_timeout if both)
    if (cfg->node_timeout_ms <= cfg->heartbeat_ms)
        return sf_cfg_fail (err, name, text, "scheduler",
                           sf_cfg_key_line (text, "scheduler", "node_timeout")
                           ? "node_timeout": "heartbeat",
                           "'scheduler.node_timeout' (%" PRId64 "ms) must be longer than "
                           "'scheduler.heartbeat' (%" PRId64 "ms)",
                           cfg->node_timeout_ms, cfg->heartbeat_ms);
    const struct { const char *key; int64_t value; } counts [] = {
        { "max_paused", cfg->limits.max_paused },
        { "max_paused_per_node", cfg->limits.max_paused_per_node },
        { "max_snap_ops", cfg->limits.max_snap_ops },
        { "max_uploads", cfg->limits.max_uploads },
        { "max_uploads_per_node", cfg->limits.max_uploads_per_node },
        { "max_uploads_per_store", cfg->limits.max_uploads_per_store },
        { "bandwidth", cfg->limits.bandwidth },
        { "bandwidth_per_node", cfg->limits.bandwidth_per_node },
        { "bandwidth_per_store", cfg->limits.bandwidth_per_store },
    };
    for (size_t i = 0; i < sizeof (counts) / sizeof (counts [0]); i++)
        if (counts [i].value < 0 || counts [i].value > 1000000000000000LL)
            return sf_cfg_fail (err, name, text, "limits", counts [i].key,
                               "'limits.%s' must be 0 (no limit) or a positive number",
                               counts [i].key);
    if (cfg->limits.lease_ms < 1000 || cfg->limits.lease_ms > 86400000)
        return sf_cfg_fail (err, name, text, "limits", "lease",
                           "'limits.lease' must be between 1s and 1d");
    if (cfg->limits.lease_rate < 1 || cfg->limits.lease_rate > (1LL << 40))
        return sf_cfg_fail (err, name, text, "limits", "lease_rate",
                           "'limits.lease_rate' must be between 1 and 1T (bytes/s)");
    if (cfg->max_jobs_per_node < 1 || cfg->max_jobs_per_node > SF_WIRE_MAX_JOBS)
        return sf_cfg_fail (err, name, text, "limits", "max_jobs_per_node",
                           "'limits.max_jobs_per_node' must be between 1 and %d",
                           SF_WIRE_MAX_JOBS);
    if (cfg->max_peers < 1 || cfg->max_peers > 1000000)
        return sf_cfg_fail (err, name, text, "limits", "max_peers",
                           "'limits.max_peers' must be between 1 and 1000000");
    if (cfg->max_attempts < 1 || cfg->max_attempts > 100)
        return sf_cfg_fail (err, name, text, "limits", "max_attempts",
                           "'limits.max_attempts' must be between 1 and 100");
    if (cfg->retry_backoff_ms < 0 || cfg->retry_backoff_ms > SF_JOBS_BACKOFF_MAX)
        return sf_cfg_fail (err, name, text, "limits", "retry_backoff",
                           "'limits.retry_backoff' must be between 0 and 10m");
    if (cfg->history_days < 1 || cfg->history_days > 36500)
        return sf_cfg_fail (err, name, text, "retention", "history_days",
                           "'retention.history_days' must be between 1 and 36500");
    if (cfg->max_chain < 0 || cfg->max_chain > 1000)
        return sf_cfg_fail (err, name, text, "retention", "max_chain",
                           "'retention.max_chain' must be between 0 and 1000");
    if (cfg->gc_interval_ms != 0
    &&  (cfg->gc_interval_ms < 60000 || cfg->gc_interval_ms > 30LL * 86400000))
        return sf_cfg_fail (err, name, text, "gc", "interval",
                           "'gc.interval' must be 0 (off) or between 1m and 30d");
    if (cfg->gc_grace_ms < 1000 || cfg->gc_grace_ms > 30LL * 86400000)
        return sf_cfg_fail (err, name, text, "gc", "grace",
                           "'gc.grace' must be between 1s and 30d");
    if (cfg->gc_timeout_ms < 1000 || cfg->gc_timeout_ms > 3600000)
        return sf_cfg_fail (err, name, text, "gc", "timeout",
                           "'gc.timeout' must be between 1s and 1h");
    if (cfg->insecure && (!sf_cert_is_local (cfg->bind) || !sf_cert_is_local (cfg->admin_bind)))
        return sf_cfg_fail (err, name, text, "security", "insecure",
                           "'security.insecure' (plaintext) is allowed only on loopback or "
                           "ipc:// endpoints, not on '%s'",
                           sf_cert_is_local (cfg->bind)? cfg->admin_bind: cfg->bind);
    if (!cfg->insecure && (!*cfg->cert || !*cfg->workers || !*cfg->admins))
        return sf_cfg_fail (err, name, text, "security", !*cfg->cert? "cert":
                           !*cfg->workers? "workers": "admins",
                           "'security.cert', 'security.workers' and 'security.admins' must be "
                           "set (or 'security.insecure' on loopback)");
    if (!cfg->insecure && (s_inside (cfg->workers, cfg->admins)
                       ||  s_inside (cfg->admins, cfg->workers)))
        return sf_cfg_fail (err, name, text, "security", "admins",
                           "'security.admins' and 'security.workers' must be separate "
                           "directories (a key in either one's subdirectories counts)");
    if (sf_log_level_parse (cfg->log_level) < 0)
        return sf_cfg_fail (err, name, text, "log", "level",
                           "'log.level' must be err, warning, notice, info or debug, "
                           "not '%s'", cfg->log_level);
    if (sf_log_format_parse (cfg->log_format) < 0)
        return sf_cfg_fail (err, name, text, "log", "format",
                           "'log.format' must be text or json, not '%s'", cfg->log_format);
    return 0;
}

//  --------------------------------------------------------------------------
//  Loading

int
sf_schedcfg_init (sf_schedcfg_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof (*cfg));
    int rc = sf_cfg_defaults (sf_schedcfg_schema, cfg, NULL);
    assert (rc == 0);
    return rc;
}

int
sf_schedcfg_load (sf_schedcfg_t *cfg, const char *path, sf_err_t *err)
{
    assert (cfg && path);
    sf_schedcfg_release (cfg);
    sf_schedcfg_init (cfg);
    if (sf_cfg_load (sf_schedcfg_schema, cfg, path, err))
        return -1;
    char *text = sf_cfg_read_text (path);
    int rc = s_validate (cfg, path, text, err);
    free (text);
    return rc;
}

int
sf_schedcfg_load_string (sf_schedcfg_t *cfg, const char *text, const char *name,
                         sf_err_t *err)
{
    assert (cfg && text && name);
    sf_schedcfg_release (cfg);
    sf_schedcfg_init (cfg);
    if (sf_cfg_load_string (sf_schedcfg_schema, cfg, text, name, err))
        return -1;
    return s_validate (cfg, name, text, err);
}

void
sf_schedcfg_release (sf_schedcfg_t *cfg)
{
    assert (cfg);
    sf_cfg_release (sf_schedcfg_schema, cfg);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_example (void)
{
#ifdef SF_SCHED_EXAMPLE_CONF
    //  The example parses, and documents every key of the schema
    sf_err_t err = SF_ERR_INIT;
    sf_schedcfg_t cfg;
    sf_schedcfg_init (&cfg);
    int rc = sf_schedcfg_load (&cfg, SF_SCHED_EXAMPLE_CONF, &err);
    if (rc)
        fprintf (stderr, "%s\n", err.text);
    assert (rc == 0);
    char *text = sf_cfg_read_text (SF_SCHED_EXAMPLE_CONF);
    assert (text);
    for (const sf_cfg_opt_t *opt = sf_schedcfg_schema; opt->key; opt++)
        assert (sf_cfg_key_line (text, opt->section, opt->key) > 0);
    free (text);
    sf_schedcfg_release (&cfg);
#endif
}

void
sf_schedcfg_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_schedcfg: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    sf_schedcfg_t cfg;
    sf_schedcfg_init (&cfg);
    assert (streq (cfg.bind, "tcp://127.0.0.1:7600"));
    assert (cfg.heartbeat_ms == 1000 && cfg.node_timeout_ms == 5000);

    const char *good = "[scheduler]\nbind = tcp://0.0.0.0:7700\n\n"
                       "database = /tmp/x.db ; comment\nnode_timeout = 3s\n"
                       "[log]\nlevel = debug\n";
    assert (sf_schedcfg_load_string (&cfg, good, "s.conf", &err) == 0);
    assert (streq (cfg.bind, "tcp://0.0.0.0:7700"));
    assert (streq (cfg.database, "/tmp/x.db"));
    assert (cfg.node_timeout_ms == 3000);

    assert (sf_schedcfg_load_string (&cfg, "[log]\n\n\nlevel = loud\n",
                                     "s.conf", &err) == -1);
    assert (streq (err.text, "s.conf:4: 'log.level' must be err, warning, notice, "
                             "info or debug, not 'loud'"));
    assert (sf_schedcfg_load_string (&cfg, "[scheduler]\nheartbeat = 5s\n",
                                     "s.conf", &err) == -1);
    assert (strstr (err.text, "s.conf:2: 'scheduler.node_timeout' (5000ms)"));
    assert (sf_schedcfg_load_string (&cfg, "[scheduler]\nbind = 127.0.0.1:7600\n",
                                     "s.conf", &err) == -1);
    assert (strstr (err.text, "s.conf:2: 'scheduler.bind' must be a ZeroMQ endpoint"));
    assert (sf_schedcfg_load_string (&cfg, "[scheduler]\nadmin_bind = tcp://127.0.0.1:7600\n",
                                     "s.conf", &err) == -1);
    assert (strstr (err.text, "s.conf:2: 'scheduler.admin_bind' must differ"));
    assert (sf_schedcfg_load_string (&cfg, "[scheduler]\nbogus = 1\n",
                                     "s.conf", &err) == -1);
    assert (streq (err.text, "s.conf:2: unknown key 'bogus' in section '[scheduler]'"));
    assert (sf_schedcfg_load (&cfg, "/nonexistent/s.conf", &err) == -1);
    assert (err.code == SF_ENOENT);

    assert (sf_schedcfg_is_loopback ("tcp://127.0.0.1:7600"));
    assert (sf_schedcfg_is_loopback ("tcp://localhost:7600"));
    assert (sf_schedcfg_is_loopback ("tcp://[::1]:7600"));
    assert (sf_schedcfg_is_loopback ("ipc:///run/sf.sock"));
    assert (!sf_schedcfg_is_loopback ("tcp://0.0.0.0:7600"));
    assert (!sf_schedcfg_is_loopback ("tcp://*:7600"));
    assert (!sf_schedcfg_is_loopback ("tcp://10.0.0.1:7600"));

    //  Plaintext only on loopback, and CURVE needs its keys
    assert (cfg.insecure == false);
    assert (streq (cfg.workers, "/etc/snapfleet/workers"));
    assert (sf_schedcfg_load_string (&cfg, "[security]\ninsecure = true\n",
                                     "s.conf", &err) == 0);
    assert (cfg.insecure);
    assert (sf_schedcfg_load_string (&cfg, "[scheduler]\nbind = tcp://0.0.0.0:7600\n"
                                     "[security]\ninsecure = true\n", "s.conf", &err) == -1);
    assert (streq (err.text, "s.conf:4: 'security.insecure' (plaintext) is allowed only "
                             "on loopback or ipc:// endpoints, not on 'tcp://0.0.0.0:7600'"));
    assert (sf_schedcfg_load_string (&cfg, "[security]\nworkers = /k/\nadmins = /k/a\n",
                                     "s.conf", &err) == -1);
    assert (strstr (err.text, "s.conf:3: 'security.admins' and 'security.workers' must"));
    assert (sf_schedcfg_load_string (&cfg, "[security]\nworkers = /k/w\nadmins = /k/wa\n",
                                     "s.conf", &err) == 0);
    assert (sf_schedcfg_load_string (&cfg, "[security]\nadmins =\n", "s.conf", &err) == -1);
    assert (strstr (err.text, "s.conf:2: 'security.cert', 'security.workers'"));

    //  The caps and the history: defaults, and ranges with their line
    sf_schedcfg_release (&cfg);
    sf_schedcfg_init (&cfg);
    assert (cfg.max_jobs_per_node == 64 && cfg.max_peers == 1024 && cfg.history_days == 30);
    assert (cfg.max_chain == 7);
    assert (cfg.limits.lease_ms == 60000 && cfg.limits.lease_rate == 1048576);
    assert (cfg.gc_interval_ms == 600000 && cfg.gc_remove && cfg.gc_grace_ms == 600000
            && cfg.gc_timeout_ms == 30000);
    const struct { const char *text; const char *error; } bounds [] = {
        { "[limits]\nmax_jobs_per_node = 0\n", "s.conf:2: 'limits.max_jobs_per_node'" },
        { "[limits]\nmax_jobs_per_node = 65536\n", "s.conf:2: 'limits.max_jobs_per_node'" },
        { "[limits]\nmax_jobs_per_node = 65535\n", NULL },
        { "[limits]\nmax_peers = 0\n", "s.conf:2: 'limits.max_peers' must be between" },
        { "[limits]\nmax_peers = -5\n", "s.conf:2: 'limits.max_peers'" },
        { "[limits]\nmax_peers = 1\n", NULL },
        { "[limits]\nmax_attempts = 0\n", "s.conf:2: 'limits.max_attempts' must be between 1" },
        { "[limits]\nmax_attempts = 101\n", "s.conf:2: 'limits.max_attempts'" },
        { "[limits]\nmax_attempts = 100\n", NULL },
        { "[limits]\nretry_backoff = 11m\n", "s.conf:2: 'limits.retry_backoff' must be" },
        { "[limits]\nretry_backoff = -1s\n", "s.conf:2:" },
        { "[limits]\nretry_backoff = 0\n", NULL },
        { "[limits]\nretry_backoff = 10m\n", NULL },
        { "[retention]\nhistory_days = 0\n", "s.conf:2: 'retention.history_days'" },
        { "[retention]\nhistory_days = 36501\n", "s.conf:2: 'retention.history_days'" },
        { "[retention]\nhistory_days = 36500\n", NULL },
        { "[retention]\nmax_chain = -1\n", "s.conf:2: 'retention.max_chain' must be" },
        { "[retention]\nmax_chain = 1001\n", "s.conf:2: 'retention.max_chain'" },
        { "[retention]\nmax_chain = 0\n", NULL },
        { "[retention]\nmax_chain = 1000\n", NULL },
        { "[limits]\nlease = 999ms\n", "s.conf:2: 'limits.lease' must be between" },
        { "[limits]\nlease = 2d\n", "s.conf:2: 'limits.lease'" },
        { "[limits]\nlease = 5s\n", NULL },
        { "[limits]\nlease_rate = 0\n", "s.conf:2: 'limits.lease_rate' must be" },
        { "[limits]\nlease_rate = 2T\n", "s.conf:2: 'limits.lease_rate'" },
        { "[limits]\nlease_rate = 1G\n", NULL },
        { "[gc]\ninterval = 30s\n", "s.conf:2: 'gc.interval' must be 0 (off) or" },
        { "[gc]\ninterval = 31d\n", "s.conf:2: 'gc.interval'" },
        { "[gc]\ninterval = 0\n", NULL },
        { "[gc]\ninterval = 1m\n", NULL },
        { "[gc]\ngrace = 500ms\n", "s.conf:2: 'gc.grace' must be between 1s and 30d" },
        { "[gc]\ngrace = 1s\n", NULL },
        { "[gc]\ntimeout = 2h\n", "s.conf:2: 'gc.timeout'" },
        { "[gc]\nremove = maybe\n", "s.conf:2:" },
        { "[gc]\nremove = off\n", NULL },
    };
    for (size_t i = 0; i < sizeof (bounds) / sizeof (bounds [0]); i++) {
        int rc = sf_schedcfg_load_string (&cfg, bounds [i].text, "s.conf", &err);
        assert (rc == (bounds [i].error? -1: 0));
        assert (!bounds [i].error || strstr (err.text, bounds [i].error) == err.text);
    }
    sf_schedcfg_release (&cfg);
    s_test_example ();
    //  @end
    printf ("OK\n");
}
