/*  =========================================================================
    sf_imgstore - image-store interface (driver vtable + dispatch)

    Stores one converted disk image with its metadata and returns the
    record the scheduler keeps. A store never shows a half image: drivers
    write to a temporary name and publish atomically, and remove what they
    wrote when anything fails. "dir" is the embedded store; Glance and RBD
    drivers plug in beside it.
    =========================================================================
*/
#ifndef SF_IMGSTORE_H_INCLUDED
#define SF_IMGSTORE_H_INCLUDED

typedef struct _sf_imgstore_t sf_imgstore_t;

//  Bytes a driver moves at a time (the bucket's chunk)
#define SF_IMGSTORE_CHUNK (1024 * 1024)

//  What the store records about an image (all borrowed)
typedef struct {
    const char *instance_uuid;
    const char *instance_name;
    const char *job_id;
    uint32_t attempt;
    const char *strategy;
    const char *consistency;
    const char *disk_target;
} sf_image_meta_t;

//  A stored image, as sent in JobResult.images
typedef struct {
    char store [16];            //  driver name, "dir" ("rbd" for a clone)
    char id [600];              //  dir: fresh lowercase UUID; rbd: pool/image
    char *path;                 //  Owned, location inside the store
    uint64_t size;              //  bytes
    char sha256 [65];           //  lowercase hex
    char *disk_target;          //  Owned
    char format [16];           //  "qcow2" ("raw" for a clone)
} sf_image_rec_t;

//  Store configuration ([imagestore] section)
typedef struct {
    const char *driver;         //  "dir"
    const char *path;           //  dir: directory of the images
} sf_imgstore_cfg_t;

typedef struct {
    const char *name;
    int (*open) (sf_imgstore_t *self, const sf_imgstore_cfg_t *cfg, sf_err_t *err);
    void (*close) (sf_imgstore_t *self);
    int (*put) (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
                zsock_t *cancel, sf_image_rec_t *rec, sf_err_t *err);
    int (*remove) (sf_imgstore_t *self, const char *id, sf_err_t *err);
} sf_imgstore_driver_t;

//  Open the store named by cfg->driver. Returns NULL with err (SF_EINVAL
//  for an unknown driver, SF_ESTORE if it cannot be used). Caller owns it.
sf_imgstore_t *
    sf_imgstore_new (const sf_imgstore_cfg_t *cfg, sf_err_t *err);

//  Close and free. Nullifies *self_p.
void
    sf_imgstore_destroy (sf_imgstore_t **self_p);

//  Driver-private state, for drivers only.
void *
    sf_imgstore_priv (sf_imgstore_t *self);
void
    sf_imgstore_set_priv (sf_imgstore_t *self, void *priv);
const char *
    sf_imgstore_name (sf_imgstore_t *self);

//  Limit the bandwidth of puts with bucket (borrowed; NULL = no limit, as
//  when none is set).
void
    sf_imgstore_set_bucket (sf_imgstore_t *self, sf_bucket_t *bucket);
sf_bucket_t *
    sf_imgstore_bucket (sf_imgstore_t *self);

//  Store the qcow2 file src (left in place) with meta. A message on cancel
//  (may be NULL) stops it with SF_ECANCELED. With a bucket set, the put
//  reads and dispatches those messages (sf_bucket_recv): "RATE" and
//  "GRANT" change the bucket's rate and the copy goes on, anything else
//  cancels; without one, the message is left on cancel. On success fills
//  rec (release it with sf_image_rec_release) and returns 0; else returns
//  -1 with err and the store holds nothing of this image.
int
    sf_imgstore_put (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
                     zsock_t *cancel, sf_image_rec_t *rec, sf_err_t *err);

//  Remove a stored image (a failed job rolls back what it stored).
//  Returns 0 (also if it is already gone) or -1 with err.
int
    sf_imgstore_remove (sf_imgstore_t *self, const char *id, sf_err_t *err);

//  Free the strings of a record and zero it.
void
    sf_image_rec_release (sf_image_rec_t *rec);

//  The drivers
extern const sf_imgstore_driver_t sf_imgstore_dir_driver;

//  Self test of this class
void
    sf_imgstore_test (bool verbose);

#endif
