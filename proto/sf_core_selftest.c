/*  =========================================================================
    sf_core_selftest - runs the self tests of the shared library classes
    Usage: sf_core_selftest [--test NAME] [-v]
    =========================================================================
*/
#include "sf_core.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} test_item_t;

static const test_item_t s_tests [] = {
    { "sf_err", sf_err_test },
    { "sf_log", sf_log_test },
    { "sf_util", sf_util_test },
    { "sf_cfg", sf_cfg_test },
    { "sf_wire", sf_wire_test },
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
    int ran = 0;
    for (const test_item_t *item = s_tests; item->name; item++)
        if (!only || streq (only, item->name)) {
            item->test (verbose);
            ran++;
        }
    if (!ran) {
        fprintf (stderr, "sf_core_selftest: no test named '%s'\n", only);
        return 1;
    }
    return 0;
}
