/*  =========================================================================
    fuzz_cfg - libFuzzer target: the config parser (sf_cfg through both
    daemons' config modules)

    Each input is one config file. The scheduler reads it from memory
    (sf_schedcfg_load_string) and the worker from a file, as it does at
    start (sf_agent_cfg_load on a scratch file rewritten per input; the
    file holds the input's bytes exactly, NULs included). A file that
    loads must have values the checks promise; one that does not gets a
    one-line error.
    =========================================================================
*/
#include "sf_core.h"
//  The two config modules and what their types need (not the class
//  umbrellas: the scheduler's and the worker's each have an sf_image_rec_t)
#include "sf_admit.h"
#include "sf_schedcfg.h"
#include "sf_bucket.h"
#include "sf_imgstore.h"
#include "sf_agent_cfg.h"

static char s_dir [] = "/tmp/fuzz_cfg.XXXXXX";
static char *s_path;              //  The worker's config file

static void
s_teardown (void)
{
    unlink (s_path);
    rmdir (s_dir);
    zstr_free (&s_path);
}

static void
s_setup (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    char *dir = mkdtemp (s_dir);
    assert (dir);
    s_path = zsys_sprintf ("%s/worker.conf", dir);
    atexit (s_teardown);
}

static void
s_error_ok (const sf_err_t *err)
{
    assert (err->code != 0);
    assert (*err->text);
    assert (!strchr (err->text, '\n'));
}

static void
s_scheduler (const uint8_t *data, size_t size)
{
    char *text = (char *) malloc (size + 1);
    assert (text);
    memcpy (text, data, size);
    text [size] = 0;
    sf_err_t err = SF_ERR_INIT;
    sf_schedcfg_t cfg;
    sf_schedcfg_init (&cfg);
    if (sf_schedcfg_load_string (&cfg, text, "scheduler.conf", &err) == 0) {
        assert (cfg.bind && cfg.admin_bind && cfg.database && *cfg.database);
        assert (cfg.heartbeat_ms > 0 && cfg.node_timeout_ms > cfg.heartbeat_ms);
        assert (sf_log_level_parse (cfg.log_level) >= 0);
        assert (cfg.insecure || (*cfg.cert && *cfg.workers && *cfg.admins));
    }
    else
        s_error_ok (&err);
    sf_schedcfg_release (&cfg);
    free (text);
}

static void
s_worker (const uint8_t *data, size_t size)
{
    FILE *file = fopen (s_path, "w");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    fclose (file);
    sf_err_t err = SF_ERR_INIT;
    sf_agent_cfg_t cfg;
    if (sf_agent_cfg_load (&cfg, s_path, &err) == 0) {
        assert (sf_name_is_safe (cfg.name));
        assert (cfg.max_jobs >= 1 && cfg.max_jobs <= 64);
        assert (*cfg.workdir == '/' && *cfg.store.path == '/');
        assert (cfg.heartbeat > 0 && cfg.inventory_interval > 0 && cfg.max_pause > 0);
        assert (cfg.insecure || (*cfg.cert && *cfg.scheduler_key));
        sf_agent_cfg_t copy;
        sf_agent_cfg_copy (&copy, &cfg);
        sf_agent_cfg_release (&copy);
    }
    else
        s_error_ok (&err);
    sf_agent_cfg_release (&cfg);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_path)
        s_setup ();
    s_scheduler (data, size);
    s_worker (data, size);
    return 0;
}
