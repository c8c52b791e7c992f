/*  =========================================================================
    sf_plan - planner: estimates and the dry-run simulation (stub, being written)
    =========================================================================
*/
#include "sf_sched_classes.h"

void
sf_plan_test (bool verbose)
{
    (void) verbose;
}
