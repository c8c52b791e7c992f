/*  =========================================================================
    sched_selftest - runs the self tests of the scheduler's and the CLI's
    classes

    Usage: sched_selftest [--test NAME] [-v]
    One ctest per class (sched.<class>) runs it with --test <class>.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_cli.h"
#include "sf_table.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} test_item_t;

static const test_item_t s_tests [] = {
    { "sf_strategy", sf_strategy_test },
    { "sf_store", sf_store_test },
    { "sf_jobs", sf_jobs_test },
    { "sf_peers", sf_peers_test },
    { "sf_liveness", sf_liveness_test },
    { "sf_schedcfg", sf_schedcfg_test },
    { "sf_harness", sf_harness_test },
    { "sf_sched", sf_sched_test },
    { "sf_admin", sf_admin_test },
    { "sf_table", sf_table_test },
    { "sf_cli", sf_cli_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
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
    //  The scheduler logs at notice and above while tests run; -v shows all
    sf_log_setup (verbose? SF_LOG_DEBUG: SF_LOG_ERR, SF_LOG_TEXT);
    int ran = 0;
    for (const test_item_t *item = s_tests; item->name; item++)
        if (!only || streq (only, item->name)) {
            item->test (verbose);
            ran++;
        }
    if (!ran) {
        fprintf (stderr, "sched_selftest: no test named '%s'\n", only);
        return 1;
    }
    return 0;
}
