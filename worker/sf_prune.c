/*  =========================================================================
    sf_prune - delete stored images: dir files, RBD clones and snapshots (stub, being written)
    =========================================================================
*/
#include "sf_worker_classes.h"

void
sf_prune_test (bool verbose)
{
    (void) verbose;
}
