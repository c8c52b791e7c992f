/*  =========================================================================
    sf_chain - incremental chains (issue 13): which previous point a
    file-live job may build on, whether a result's parent is a real one,
    and which points retention must keep because a kept point needs them

    A chain is a full image and the increments on it, each a qcow2 overlay
    whose backing file is its parent (images.parent_id, same store, same
    instance, same disk, same node). Plain functions on the store (no
    object): sf_dispatch asks for the offer of a job it assigns, sf_jobs
    checks a result's parents, sf_retention asks before it deletes.
    =========================================================================
*/
#ifndef SF_CHAIN_H_INCLUDED
#define SF_CHAIN_H_INCLUDED

//  Increments on one full copy by default ([retention] max_chain)
#define SF_CHAIN_MAX    7

//  The Incremental to offer job_id (strategy file-live, not asked to be
//  full: jobs.full, snapshot --full): the images of its
//  instance's newest point on its node, if that point is a done file-live
//  job whose every image is in a dir store, present, not queued for
//  deletion and made with a checkpoint, and at most max_chain - 1
//  increments above a full image. Returns 1 and sets *incr_p (free it with
//  sf_chain_offer_free), 0 if there is nothing to build on (*incr_p NULL),
//  -1 with err set.
int
    sf_chain_offer (sf_store_t *store, const char *job_id, int64_t max_chain,
                    sf_incremental_t **incr_p, sf_err_t *err);

//  How many increments image (store, id) is above its full image (0 for a
//  full one). -1 with err set.
int64_t
    sf_chain_depth (sf_store_t *store, const char *image_store, const char *image_id,
                    sf_err_t *err);

//  Free an offer. Nullifies *incr_p.
void
    sf_chain_offer_free (sf_incremental_t **incr_p);

//  A result's image names a parent: it must be an image of the same
//  store, instance, disk and node, made before this job, still in the
//  catalogue. Returns 0 if it does (or names none), 1 with refusal set if
//  not, -1 with err set.
int
    sf_chain_check_parent (sf_store_t *store, const char *job_id, const sf_image_t *image,
                           sf_err_t *refusal, sf_err_t *err);

//  Why image (store, id) must stay, into why: an image that is not queued
//  for deletion has it as its parent ("base of <id> (job <job>)"), or an
//  unfinished file-live job of its instance may build on it ("base of the
//  running job <job>"). Returns 1 (must stay), 0, or -1 with err set.
int
    sf_chain_needed (sf_store_t *store, const char *image_store, const char *image_id,
                     char *why, size_t size, sf_err_t *err);

//  Self test of this unit
void
    sf_chain_test (bool verbose);

#endif
