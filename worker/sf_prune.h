/*  =========================================================================
    sf_prune - delete stored images: dir files, RBD clones and snapshots (stub, being written)
    =========================================================================
*/
#ifndef SF_PRUNE_H_INCLUDED
#define SF_PRUNE_H_INCLUDED

//  Self test of this class
void
    sf_prune_test (bool verbose);

#endif
