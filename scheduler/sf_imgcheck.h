/*  =========================================================================
    sf_imgcheck - is an image a worker reports in a JobResult one that
    job made?

    Retention deletes what the images table lists, so an image row is
    written only for an image that matches its job exactly:
    - its disk_target is one of the instance's disks (as its node's
      inventory reports them), and at most one image per disk;
    - store "rbd" (a clone; strategies rbd and mixed, of an RBD disk): the
      id is pool/name (or pool/namespace/name) where name is the job's
      clone name (sf_naming_is_clone with this database's catalogue id and
      the job id) whose parent is the disk's source image, path is
      "rbd:<id>", format raw, sha256 empty or 64 hex digits;
    - store "dir" (the node's image store; a Hello.store "<kind>@..."
      must name the same kind): the id is a lowercase uuid, the path is
      absolute, has no "..", and ends in "/<id>.qcow2", format qcow2,
      size above 0, sha256 64 hex digits;
    - any other store is refused, and so is a size above INT64_MAX.
    =========================================================================
*/
#ifndef SF_IMGCHECK_H_INCLUDED
#define SF_IMGCHECK_H_INCLUDED

//  What the images of one job must match
typedef struct {
    const char *catalog_id;     //  This database's catalogue id
    const char *job_id;
    const char *strategy;       //  The job's strategy
    const char *node_store;     //  The node's Hello.store, NULL or "" if unknown
    const sf_instance_rec_t *instance;  //  The job's instance as its node
                                //  reports it; NULL if it reports none
} sf_imgcheck_job_t;

//  Check the n images of a result of job. Returns 0 if every one is the
//  job's, or -1 with err set: SF_EPROTO "worker reported image 'X' that
//  is not job J's: <why>".
int
    sf_imgcheck_images (const sf_imgcheck_job_t *job, sf_image_t **images, size_t n,
                        sf_err_t *err);

//  Self test of this class
void
    sf_imgcheck_test (bool verbose);

#endif
