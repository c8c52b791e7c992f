/*  =========================================================================
    cli_selftest - runs the self tests of the CLI's classes

    Usage: cli_selftest [--test NAME] [-v]
    One ctest per class (cli.<class>) runs it with --test <class>.
    =========================================================================
*/
#include "sf_core.h"
#include "sf_cli.h"
#include "sf_table.h"

static const sf_selftest_t s_tests [] = {
    { "sf_table", sf_table_test },
    { "sf_cli", sf_cli_test },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    return sf_selftest_run (s_tests, argc, argv);
}
