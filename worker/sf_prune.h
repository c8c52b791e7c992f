/*  =========================================================================
    sf_prune - delete one stored image (retention), as a zactor so that the
    agent's event loop never blocks on the image store or Ceph

    Only an image snapfleet made for the request's job of its catalogue
    goes (ImageDelete.catalog_id, job_id; sf_naming): anything else is
    answered SF_EINVAL "image 'X' is not one snapfleet made for job J; not
    deleted" and nothing is touched.
    The worker's image store ("dir"): sf_imgstore_remove by id, if the
    image's metadata names the job and catalogue.
    Store "rbd": the id is the clone "pool/image" (or "pool/ns/image");
    sf_stor_clone_prune removes the clone (if its name is the job's and it
    is a clone of the job's snapshot), then its parent snapshot once no
    other clone needs it (unprotecting it first), every Ceph call under the
    stor driver's deadline. Any other store: SF_EINVAL. An image that is
    already gone counts as deleted.

    The actor talks to its owner on the pipe:
      from the actor: "RESULT" + frame   encoded Envelope{ImageDeleted}
                                         (request_id, the image as given
                                         (store, id, path), error set only
                                         on failure); sent once
      to the actor:   "$TERM"            after the result: end the actor
    =========================================================================
*/
#ifndef SF_PRUNE_H_INCLUDED
#define SF_PRUNE_H_INCLUDED

//  What a deletion needs; every string is copied before sf_prune_new
//  returns
typedef struct {
    const char *request_id;         //  ImageDelete.request_id
    const char *store;              //  Image.store: "dir" or "rbd"
    const char *id;                 //  Image.id
    const char *path;               //  Image.path (echoed back; NULL = "")
    sf_imgstore_t *images;          //  the worker's image store (borrowed)
    sf_stor_t *stor;                //  RBD storage (borrowed), NULL = no Ceph
    const char *catalog_id;         //  ImageDelete.catalog_id
    const char *job_id;             //  ImageDelete.job_id: the job that made it
} sf_prune_args_t;

//  Start the deletion in a new actor. Returns the actor (caller destroys
//  it after the RESULT message; destroying it earlier waits for the
//  deletion's current step, at most one Ceph deadline).
zactor_t *
    sf_prune_new (const sf_prune_args_t *args);

//  Self test of this class
void
    sf_prune_test (bool verbose);

#endif
