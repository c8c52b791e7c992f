/*  =========================================================================
    sf_retention - retention: keep-* rules and pruning (stub, being written)
    =========================================================================
*/
#ifndef SF_RETENTION_H_INCLUDED
#define SF_RETENTION_H_INCLUDED

//  Self test of this class
void
    sf_retention_test (bool verbose);

#endif
