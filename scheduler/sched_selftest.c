/*  =========================================================================
    sched_selftest - runs the self tests of the scheduler's classes

    Usage: sched_selftest [--test NAME] [-v]
    One ctest per class (sched.<class>) runs it with --test <class>.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

static const sf_selftest_t s_tests [] = {
    { "sf_strategy", sf_strategy_test },
    { "sf_store", sf_store_test },
    { "sf_jobs", sf_jobs_test },
    { "sf_peers", sf_peers_test },
    { "sf_liveness", sf_liveness_test },
    { "sf_history", sf_history_test },
    { "sf_gc", sf_gc_test },
    { "sf_schedcfg", sf_schedcfg_test },
    { "sf_harness", sf_harness_test },
    { "sf_sched", sf_sched_test },
    { "sf_admin", sf_admin_test },
    { "sf_admit", sf_admit_test },
    { "sf_plan", sf_plan_test },
    { "sf_calendar", sf_calendar_test },
    { "sf_schedules", sf_schedules_test },
    { "sf_retention", sf_retention_test },
    { "sf_lease", sf_lease_test },
    { "sf_dispatch", sf_dispatch_test },
    { "sf_outbox", sf_outbox_test },
    { "sf_stats", sf_stats_test },
    { "sf_bulk", sf_bulk_test },
    { "sf_imgcheck", sf_imgcheck_test },
    { "sf_imgrec", sf_imgrec_test },
    { "sf_restore", sf_restore_test },
    { "sf_verify", sf_verify_test },
    { "sf_chain", sf_chain_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    return sf_selftest_run (s_tests, argc, argv);
}
