/*  =========================================================================
    snapfleet-scheduler - the central daemon: arguments, configuration,
    logging, then the sf_sched event loop until SIGINT or SIGTERM

    snapfleet-scheduler --config FILE    run in the foreground, log on stderr
    snapfleet-scheduler --help | --version

    Exit status: 0 after a clean shutdown, 1 if it cannot start (database,
    bind), 2 for a usage or configuration error.
    =========================================================================
*/
#include "sf_sched_classes.h"

#include <getopt.h>

SF_LOG_MODULE ("sched.main");

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: snapfleet-scheduler --config FILE\n"
        "       snapfleet-scheduler --help | --version\n"
        "\n"
        "The snapfleet scheduler: accepts workers on one ZeroMQ endpoint and the\n"
        "snapfleet CLI on another, keeps nodes, instances, jobs and images in SQLite\n"
        "and sends snapshot jobs to the workers. Runs in the foreground and logs on\n"
        "stderr; SIGINT or SIGTERM stop it cleanly.\n"
        "\n"
        "  -c, --config FILE  configuration file (see scheduler.conf.example)\n"
        "  -h, --help         show this help\n"
        "      --version      show the version\n"
        "\n"
        "Configuration keys:\n");
    for (const sf_cfg_opt_t *opt = sf_schedcfg_schema; opt->key; opt++) {
        char key [64];
        snprintf (key, sizeof (key), "[%s] %s", opt->section, opt->key);
        fprintf (out, "  %-24s %s (default %s)\n", key, opt->help,
                 opt->dflt? opt->dflt: "none");
    }
}

//  Parse arguments. Returns -1 to go on with *config set, else an exit status

static int
s_parse_args (int argc, char *argv [], const char **config)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, ":c:h", options, NULL)) != -1) {
        if (opt == 'c')
            *config = optarg;
        else
        if (opt == 'h') {
            s_usage (stdout);
            return 0;
        }
        else
        if (opt == 'V') {
            printf ("snapfleet-scheduler %s\n", SF_VERSION);
            return 0;
        }
        else {
            fprintf (stderr, "snapfleet-scheduler: %s '%s'\n", opt == ':'
                     ? "missing value for option": "unknown option", argv [optind - 1]);
            s_usage (stderr);
            return 2;
        }
    }
    if (optind < argc || !*config) {
        fprintf (stderr, "snapfleet-scheduler: %s\n", optind < argc
                 ? "unexpected argument": "--config FILE is required");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    const char *config = NULL;
    int rc = s_parse_args (argc, argv, &config);
    if (rc >= 0)
        return rc;
    //  Every file the scheduler makes (database, logs) is its own only
    umask (077);
    sf_err_t err = SF_ERR_INIT;
    sf_schedcfg_t cfg;
    sf_schedcfg_init (&cfg);
    if (sf_schedcfg_load (&cfg, config, &err)) {
        fprintf (stderr, "snapfleet-scheduler: %s\n", err.text);
        sf_schedcfg_release (&cfg);
        return 2;
    }
    sf_log_setup ((sf_log_level_t) sf_log_level_parse (cfg.log_level),
                  (sf_log_format_t) sf_log_format_parse (cfg.log_format));
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM; zloop stops
    zsys_catch_interrupts ();
    SF_NOTICE (NULL, "snapfleet-scheduler %s starting with '%s'", SF_VERSION, config);
    sf_sched_t *sched = sf_store_secure_files (cfg.database, &err)? NULL
                      : sf_sched_new (&cfg, &err);
    sf_schedcfg_release (&cfg);
    if (!sched) {
        SF_ERROR (NULL, "cannot start: %s", err.text);
        fprintf (stderr, "snapfleet-scheduler: %s\n", err.text);
        return 1;
    }
    sf_sched_run (sched, NULL);
    sf_sched_destroy (&sched);
    SF_NOTICE (NULL, "snapfleet-scheduler stopped");
    return 0;
}
