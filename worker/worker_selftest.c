/*  =========================================================================
    worker_selftest - runs the self tests of the worker classes
    Usage: worker_selftest [--test NAME] [-v]
           worker_selftest --guard ...    (the pause guard, for sf_guard's
                                           and sf_task's tests)
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <libvirt/libvirt.h>
#include <libxml/parser.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} test_item_t;

static const test_item_t s_tests [] = {
    { "sf_text", sf_text_test },
    { "sf_proc", sf_proc_test },
    { "sf_hv", sf_hv_test },
    { "sf_conv", sf_conv_test },
    { "sf_imgstore", sf_imgstore_test },
    { "sf_stor", sf_stor_test },
    { "sf_leftover", sf_leftover_test },
    { "sf_guard", sf_guard_test },
    { "sf_scan", sf_scan_test },
    { "sf_task", sf_task_test },
    { "sf_jobtab", sf_jobtab_test },
    { "sf_agent_cfg", sf_agent_cfg_test },
    { "sf_agent", sf_agent_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    if (argc > 1 && streq (argv [1], "--guard"))
        return sf_guard_main (argc, argv);
    const char *only = NULL;
    bool verbose = false;
    for (int argn = 1; argn < argc; argn++) {
        if (streq (argv [argn], "--test") && argn + 1 < argc)
            only = argv [++argn];
        else
        if (streq (argv [argn], "-v"))
            verbose = true;
        else {
            fprintf (stderr, "usage: %s [--test NAME] [-v]\n", argv [0]);
            return 2;
        }
    }
    sf_log_setup (verbose ? SF_LOG_DEBUG : SF_LOG_ERR, SF_LOG_TEXT);
    xmlInitParser ();
    virInitialize ();
    int ran = 0;
    for (const test_item_t *item = s_tests; item->name; item++)
        if (!only || streq (only, item->name)) {
            item->test (verbose);
            ran++;
        }
    if (!ran) {
        fprintf (stderr, "worker_selftest: no test named '%s'\n", only);
        return 1;
    }
    zsys_shutdown ();
    return 0;
}
