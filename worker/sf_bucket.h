/*  =========================================================================
    sf_bucket - token bucket for upload bandwidth (stub, being written)
    =========================================================================
*/
#ifndef SF_BUCKET_H_INCLUDED
#define SF_BUCKET_H_INCLUDED

//  Self test of this class
void
    sf_bucket_test (bool verbose);

#endif
