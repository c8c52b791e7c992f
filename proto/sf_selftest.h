/*  =========================================================================
    sf_selftest - the main() of the three self-test programs

    Each program lists its classes in a static table and hands it here:
    usage `PROGRAM [--test NAME] [-v]`; one ctest per class runs
    `PROGRAM --test CLASS`. Logging is at err while tests run (-v: debug).
    =========================================================================
*/
#ifndef SF_SELFTEST_H_INCLUDED
#define SF_SELFTEST_H_INCLUDED

#include <stdbool.h>

typedef struct {
    const char *name;               //  class name, e.g. "sf_wire"
    void (*test) (bool verbose);
} sf_selftest_t;

//  Run the tests of the NULL-terminated table that argv selects. Returns
//  the process exit status: 0 ran, 1 no such test, 2 usage error.
int
    sf_selftest_run (const sf_selftest_t *tests, int argc, char *argv []);

#endif
