/*  =========================================================================
    sf_restore - the restore command: turn a stored image back into a disk
    file on a node, as a job (issue 13, first slice: dir-store images to a
    file)

    A restore is a job like a snapshot: it has events, a lease, a cancel,
    retries and acknowledged results, with strategy "restore" (which is
    not a snapshot strategy). It runs on the node whose job made the image
    (a dir store is local to its node) or the one named. It pauses nothing
    and reserves no scratch; after its worker checks the target it waits
    for an upload slot and a bandwidth share, as an upload does, and then
    checks the image's SHA-256 and converts it beside the target, which it
    never overwrites.

    Refused with a clear error, and no job made: an unknown image (or an
    id that names images in two stores), an image outside a dir store, a
    missing one (the reconciler found it gone), one without a recorded
    SHA-256; with as_domain, a name sf_naming_domain_valid refuses, an
    image whose job kept no domain XML or made several images (restoring
    a guest of several disks is not done yet); a target that is not an absolute path (or has '.', '..' or
    empty components), one that another unfinished restore on the node
    writes, an unknown node or format. A target that exists is refused by
    the worker (the job fails, the file is left as it was).
    =========================================================================
*/
#ifndef SF_RESTORE_H_INCLUDED
#define SF_RESTORE_H_INCLUDED

#include <jansson.h>

//  What to restore
typedef struct {
    const char *image_id;       //  as 'snapfleet images' lists it
    const char *target;         //  the file to make (absolute path)
    const char *node;           //  NULL: the node of the job that made it
    const char *format;         //  "qcow2" (NULL means this) or "raw"
    const char *as_domain;      //  NULL, or a domain to define from the
                                //  guest's XML kept with the image; then
                                //  target may be NULL (the worker puts the
                                //  file beside the original's disk)
} sf_restore_req_t;

//  Make and queue the restore job of req on store, jobs and dispatch
//  (borrowed). Returns the job as job show has it (caller owns it), or
//  NULL with err set (nothing made): SF_ENOENT (no such image or node),
//  SF_EINVAL (target or format), SF_ENOTSUP (not a dir-store image),
//  SF_ESTATE (missing, no hash), SF_EBUSY (target taken), SF_EDB.
json_t *
    sf_restore_start (sf_store_t *store, sf_jobs_t *jobs, sf_dispatch_t *dispatch,
                      const sf_restore_req_t *req, sf_err_t *err);

//  Self test of this class
void
    sf_restore_test (bool verbose);

#endif
