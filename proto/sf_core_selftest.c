/*  =========================================================================
    sf_core_selftest - runs the self tests of the shared library classes
    Usage: sf_core_selftest [--test NAME] [-v]
    =========================================================================
*/
#include "sf_core.h"

static const sf_selftest_t s_tests [] = {
    { "sf_err", sf_err_test },
    { "sf_log", sf_log_test },
    { "sf_util", sf_util_test },
    { "sf_cfg", sf_cfg_test },
    { "sf_wire", sf_wire_test },
    { "sf_strategies", sf_strategies_test },
    { "sf_heap", sf_heap_test },
    { "sf_cert", sf_cert_test },
    { "sf_auth", sf_auth_test },
    { "sf_naming", sf_naming_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    return sf_selftest_run (s_tests, argc, argv);
}
