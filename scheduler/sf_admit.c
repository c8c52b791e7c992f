/*  =========================================================================
    sf_admit - admission engine (stub, being written)
    =========================================================================
*/
#include "sf_sched_classes.h"

void
sf_admit_test (bool verbose)
{
    (void) verbose;
}
