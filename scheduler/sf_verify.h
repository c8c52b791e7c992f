/*  =========================================================================
    sf_verify - the verify command: check a stored image on the node that
    holds it, as a job (issue 13)

    A verification is a job like a restore (strategy "verify", not a
    snapshot strategy): events, a lease, a cancel, retries, acknowledged
    results. It runs on the node whose job made the image (a dir store is
    local to its node) or the one named, pauses nothing, and waits for an
    upload slot and a bandwidth share as a restore does. Its worker checks
    the image's SHA-256 and runs qemu-img check; with boot it also starts a
    transient copy of the guest (from the XML kept with the image) on a
    scratch copy and waits for a sign of life (sf_verify in the worker).
    What it found is kept with the image (sf_verifies): job show and the
    images listing show it.

    Refused with a clear error, and no job made: an unknown image (or an id
    that names images in two stores), an image outside a dir store, a
    missing one, one without a recorded SHA-256; with boot, one whose job
    kept no domain XML or made several images (a guest of several disks is
    not booted yet); an unknown node.
    =========================================================================
*/
#ifndef SF_VERIFY_H_INCLUDED
#define SF_VERIFY_H_INCLUDED

#include <jansson.h>

//  What to verify
typedef struct {
    const char *image_id;       //  as 'snapfleet images' lists it
    const char *node;           //  NULL: the node of the job that made it
    bool boot;                  //  also boot a copy of the guest
} sf_verify_req_t;

//  Make and queue the verify job of req on store, jobs and dispatch
//  (borrowed). Returns the job as job show has it (caller owns it), or
//  NULL with err set (nothing made).
json_t *
    sf_verify_start (sf_store_t *store, sf_jobs_t *jobs, sf_dispatch_t *dispatch,
                     const sf_verify_req_t *req, sf_err_t *err);

//  Self test of this class
void
    sf_verify_test (bool verbose);

#endif
