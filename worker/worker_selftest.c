/*  =========================================================================
    worker_selftest - runs the self tests of the worker classes
    Usage: worker_selftest [--test NAME] [-v]
           worker_selftest --guard ...    (the pause guard, for sf_guard's
                                           and sf_task's tests)
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_imgstore_driver.h"

#include <libvirt/libvirt.h>
#include <libxml/parser.h>

static const sf_selftest_t s_tests [] = {
    { "sf_text", sf_text_test },
    { "sf_jobmsg", sf_jobmsg_test },
    { "sf_proc", sf_proc_test },
    { "sf_bucket", sf_bucket_test },
    { "sf_hv", sf_hv_test },
    { "sf_conv", sf_conv_test },
    { "sf_readback", sf_readback_test },
    { "sf_imgstore", sf_imgstore_test },
    { "sf_imgstore_glance", sf_imgstore_glance_test },
    { "sf_stor", sf_stor_test },
    { "sf_leftover", sf_leftover_test },
    { "sf_prune", sf_prune_test },
    { "sf_pruneq", sf_pruneq_test },
    { "sf_reconcile", sf_reconcile_test },
    { "sf_guard", sf_guard_test },
    { "sf_scan", sf_scan_test },
    { "sf_joblog", sf_joblog_test },
    { "sf_task", sf_task_test },
    { "sf_hv_domxml", sf_hv_domxml_test },
    { "sf_restore", sf_restore_test },
    { "sf_verify", sf_verify_test },
    { "sf_jobtab", sf_jobtab_test },
    { "sf_unacked", sf_unacked_test },
    { "sf_agent_cfg", sf_agent_cfg_test },
    { "sf_agent", sf_agent_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    if (argc > 1 && streq (argv [1], "--guard"))
        return sf_guard_main (argc, argv);
    xmlInitParser ();
    virInitialize ();
    int rc = sf_selftest_run (s_tests, argc, argv);
    zsys_shutdown ();
    return rc;
}
