/*  =========================================================================
    sf_schedules - schedules: calendar, window, catch-up (stub, being written)
    =========================================================================
*/
#include "sf_sched_classes.h"

void
sf_schedules_test (bool verbose)
{
    (void) verbose;
}
