/*  =========================================================================
    sf_restores - the restores table: what a job of strategy "restore"
    restores (an image, by store and id) to where, in which format

    Plain functions on the store (no object): sf_restore makes the rows
    with their jobs, sf_dispatch reads one to build a JobAssign, sf_bulk to
    put a restore back into admission after a restart, sf_jobs to show it.
    =========================================================================
*/
#ifndef SF_RESTORES_H_INCLUDED
#define SF_RESTORES_H_INCLUDED

#include <jansson.h>

//  A target that is an RBD image is kept as SF_RESTORES_RBD "POOL/NAME"
//  (a file is an absolute path)
#define SF_RESTORES_RBD "rbd:"

//  Record the restore of image (store, id) by job_id to target in format
//  (flatten: an RBD clone as a flattened copy). One statement: it joins
//  the caller's transaction. Returns 0 or -1 with err set.
int
    sf_restores_add (sf_store_t *store, const char *job_id, const char *image_store,
                     const char *image_id, const char *target, const char *format,
                     bool flatten, sf_err_t *err);

//  The wire Restore of job_id, with its image as the images table has it
//  now. Returns 1 and sets *restore_p (free it with sf_restores_free), 0
//  if job_id has no restore or its image is gone (*restore_p NULL), -1
//  with err set.
int
    sf_restores_load (sf_store_t *store, const char *job_id, sf_restore_t **restore_p,
                      sf_err_t *err);

//  Free a Restore from sf_restores_load. Nullifies *restore_p.
void
    sf_restores_free (sf_restore_t **restore_p);

//  What admission needs of a restore of an image of size bytes: it pauses
//  nothing, snapshots nothing, reserves no scratch, and waits for an
//  upload slot and a bandwidth share for size bytes. Fills job's
//  estimates (id, node and ordering are the caller's).
void
    sf_restores_admit (uint64_t size, sf_admit_job_t *job);

//  The same for job_id, from its row (an image that is gone counts 0
//  bytes: the worker fails it).
void
    sf_restores_admit_job (sf_store_t *store, const char *job_id, sf_admit_job_t *job);

//  The restore of job_id as job show has it: {"image_store","image_id",
//  "target","format","flatten"}; an empty object if it has none. NULL
//  with err set.
json_t *
    sf_restores_json (sf_store_t *store, const char *job_id, sf_err_t *err);

//  True if an unfinished restore on node writes target (an RBD target: on
//  any node). -1 with err.
int
    sf_restores_target_busy (sf_store_t *store, const char *node, const char *target,
                             sf_err_t *err);

#endif
