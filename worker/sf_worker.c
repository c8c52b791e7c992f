/*  =========================================================================
    snapfleet-worker - the per-node agent: main()

    Usage: snapfleet-worker --config FILE
           snapfleet-worker --guard --uri URI --domain UUID --deadline-ms MS
                            [--journal PATH] [--thaw] (started by the worker)
           snapfleet-worker --help | --version

    SIGINT and SIGTERM are blocked in every thread and read from a
    signalfd by the event loop, so a signal never interrupts a libvirt call
    or a task halfway: the loop cancels running jobs (qemu-img killed,
    guests resumed, scratch removed), sends their results and exits 0.
    Exit codes: 0 stopped cleanly, 1 could not start, 2 usage or config.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <libvirt/libvirt.h>
#include <libxml/parser.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.main");

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: snapfleet-worker --config FILE\n"
        "       snapfleet-worker --help | --version\n"
        "\n"
        "The snapfleet worker: snapshots this node's libvirt domains for the\n"
        "scheduler. Runs in the foreground and logs on stderr.\n"
        "\n"
        "Configuration keys (INI sections; defaults in brackets):\n");
    for (const sf_cfg_opt_t *opt = sf_agent_cfg_schema; opt->key; opt++) {
        char name [64];
        snprintf (name, sizeof (name), "[%s] %s", opt->section, opt->key);
        fprintf (out, "  %-30s %s%s%s%s\n", name, opt->help, opt->dflt ? " [" : "",
                 opt->dflt ? opt->dflt : "", opt->dflt ? "]" : "");
    }
}

//  Block the stop signals before any thread exists; return a signalfd

static int
s_signals (void)
{
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    signal (SIGPIPE, SIG_IGN);
    return signalfd (-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int
s_run (const char *config)
{
    sf_err_t err = SF_ERR_INIT;
    sf_agent_cfg_t cfg;
    if (sf_agent_cfg_load (&cfg, config, &err)) {
        fprintf (stderr, "snapfleet-worker: %s\n", err.text);
        sf_agent_cfg_release (&cfg);
        return 2;
    }
    sf_log_setup ((sf_log_level_t) sf_log_level_parse (cfg.log_level),
                  (sf_log_format_t) sf_log_format_parse (cfg.log_format));
    int stop_fd = s_signals ();
    zsys_handler_set (NULL);            //  czmq must not take SIGINT/SIGTERM
    xmlInitParser ();
    virInitialize ();
    sf_agent_t *agent = sf_agent_new (&cfg, &err);
    sf_agent_cfg_release (&cfg);
    if (!agent) {
        fprintf (stderr, "snapfleet-worker: %s\n", err.text);
        close (stop_fd);
        return 1;
    }
    sf_agent_run (agent, stop_fd, NULL);
    sf_agent_destroy (&agent);
    sf_hv_shutdown ();                  //  no libvirt thread runs at exit
    close (stop_fd);
    return 0;
}

int
main (int argc, char *argv [])
{
    //  Nothing is made readable to others by default: the files whose
    //  modes matter (images 0640, their directories 0750) get them
    //  explicitly, scratch and journals stay private
    umask (077);
    if (argc > 1 && streq (argv [1], "--guard"))
        return sf_guard_main (argc, argv);
    const char *config = NULL;
    for (int argn = 1; argn < argc; argn++) {
        if (streq (argv [argn], "--help") || streq (argv [argn], "-h")) {
            s_usage (stdout);
            return 0;
        }
        if (streq (argv [argn], "--version")) {
            printf ("snapfleet-worker %s\n", SF_VERSION);
            return 0;
        }
        if (streq (argv [argn], "--config") && argn + 1 < argc)
            config = argv [++argn];
        else {
            fprintf (stderr, "snapfleet-worker: unknown argument '%s'\n", argv [argn]);
            s_usage (stderr);
            return 2;
        }
    }
    if (!config) {
        fprintf (stderr, "snapfleet-worker: --config FILE is required\n");
        s_usage (stderr);
        return 2;
    }
    return s_run (config);
}
