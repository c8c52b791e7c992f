/*  =========================================================================
    sf_retention - retention: keep-* rules and pruning (stub, being written)
    =========================================================================
*/
#include "sf_sched_classes.h"

void
sf_retention_test (bool verbose)
{
    (void) verbose;
}
