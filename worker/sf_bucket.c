/*  =========================================================================
    sf_bucket - token bucket for upload bandwidth (stub, being written)
    =========================================================================
*/
#include "sf_worker_classes.h"

void
sf_bucket_test (bool verbose)
{
    (void) verbose;
}
