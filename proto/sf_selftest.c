/*  =========================================================================
    sf_selftest - the main() of the three self-test programs
    =========================================================================
*/
#include "sf_core.h"

int
sf_selftest_run (const sf_selftest_t *tests, int argc, char *argv [])
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
    sf_log_setup (verbose? SF_LOG_DEBUG: SF_LOG_ERR, SF_LOG_TEXT);
    int ran = 0;
    for (const sf_selftest_t *item = tests; item->name; item++)
        if (!only || streq (only, item->name)) {
            item->test (verbose);
            ran++;
        }
    if (!ran) {
        fprintf (stderr, "%s: no test named '%s'\n", argv [0], only);
        return 1;
    }
    return 0;
}
