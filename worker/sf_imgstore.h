/*  =========================================================================
    sf_imgstore - image-store interface: the streaming loop and dispatch

    Stores one converted disk image with its metadata and returns the
    record the scheduler keeps. A store never shows a half image: drivers
    write to a temporary name and publish atomically on commit, and remove
    what they wrote on abort.

    sf_imgstore_put does the streaming once for every driver: it reads the
    source into large aligned buffers and writes them a chunk at a time,
    paced by the token bucket (sf_bucket) and stopped at a cancel, while a
    thread of its own hashes the same buffers (SHA-256, libcrypto's EVP); a driver only opens, writes,
    commits, aborts, deletes and lists (sf_imgstore_driver.h). One
    sf_imgstore_t serves the whole worker: every task and prune borrows it,
    from any thread (it holds nothing a call changes).

    Adding an image store (the Glance store, say):
      1. one new file, worker/sf_imgstore_glance.c, defining
         sf_imgstore_glance_driver (an sf_imgstore_driver_t);
      2. one line in s_drivers[] of sf_imgstore.c (and its extern in
         sf_imgstore_driver.h);
      3. its option table: its keys as fields of sf_imgstore_cfg_t and as
         [imagestore] rows of sf_agent_cfg_schema (worker/sf_agent_cfg.c);
      4. one line in worker/CMakeLists.txt.
    Nothing else names a driver: tasks, prunes and the agent work on the
    sf_imgstore_t, and worker.conf accepts any driver in s_drivers[].
    =========================================================================
*/
#ifndef SF_IMGSTORE_H_INCLUDED
#define SF_IMGSTORE_H_INCLUDED

typedef struct _sf_imgstore_t sf_imgstore_t;
typedef struct _sf_imgstore_driver_t sf_imgstore_driver_t;     //  sf_imgstore_driver.h

//  Bytes the store writes at a time (the bucket's chunk: the cancel socket
//  and the bucket are looked at after each)
#define SF_IMGSTORE_CHUNK (1024 * 1024)
//  Bytes the store reads (and hashes, in a thread of its own) at a time
#define SF_IMGSTORE_READ  (8 * SF_IMGSTORE_CHUNK)

//  What the store records about an image (all borrowed)
typedef struct {
    const char *instance_uuid;
    const char *instance_name;
    const char *job_id;
    uint32_t attempt;
    const char *strategy;
    const char *consistency;
    const char *disk_target;
    const char *catalog_id;         //  the scheduler's (JobAssign.catalog_id)
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

//  The store's whole configuration: the [imagestore] section of
//  worker.conf (strings copied by sf_imgstore_new)
typedef struct {
    char *driver;               //  [imagestore] driver: "dir" or "glance"
    char *name;                 //  [imagestore] name, for the scheduler's
                                //  per-store limits; NULL = <driver>
    char *path;                 //  [imagestore] path; dir: directory of the images
    //  glance (sf_imgstore_glance.c): NULL or "" = unset
    char *glance_url;           //  Glance's URL; unset: the catalogue's
    char *auth;                 //  none | keystone
    char *auth_url;             //  Keystone's URL (.../v3)
    char *username;             //  password auth: user, project, domains
    char *password_file;        //  the password, in a file only its owner reads
    char *project;
    char *user_domain;          //  unset: Default
    char *project_domain;       //  unset: the user's
    char *app_cred_id;          //  application credential auth: id
    char *secret_file;          //  and its secret, in a file only its owner reads
    char *ca_file;              //  CA bundle for https; unset: the system's
} sf_imgstore_cfg_t;

//  Create the store cfg->driver names. Returns NULL with err (SF_EINVAL
//  for an unknown driver, SF_ESTORE if its settings cannot work). Does
//  not touch the store yet: sf_imgstore_check does. Caller owns it.
sf_imgstore_t *
    sf_imgstore_new (const sf_imgstore_cfg_t *cfg, sf_err_t *err);

//  Close and free. Nullifies *self_p.
void
    sf_imgstore_destroy (sf_imgstore_t **self_p);

//  Name of the driver ("dir"), as in sf_image_rec_t.store.
const char *
    sf_imgstore_driver (sf_imgstore_t *self);

//  The store's name for the scheduler (cfg->name, else the driver's).
const char *
    sf_imgstore_name (sf_imgstore_t *self);

//  True if driver names a known image store driver.
bool
    sf_imgstore_driver_known (const char *driver);

//  The known drivers for a message, "'dir'" or "'dir' or 'glance'", into
//  buf; returns buf.
const char *
    sf_imgstore_driver_names (char *buf, size_t size);

//  Can the store take images now (dir: its directory exists, or is made,
//  and is writable)? A job asks before it pauses anything. Returns 0 or
//  -1 with err (SF_ESTORE).
int
    sf_imgstore_check (sf_imgstore_t *self, sf_err_t *err);

//  Store the qcow2 file src (left in place, not to be changed any more)
//  with meta, hashing it as it streams. Where the driver can take src as
//  it is (dir: src on the store's file system) and no rate is set, it
//  does, and only hashes it: no copy. A message on cancel (may be NULL) stops it with SF_ECANCELED.
//  With a bucket (borrowed, may be NULL = no limit) the copy keeps to its
//  rate, and reads and dispatches those messages (sf_bucket_recv): "RATE"
//  and "GRANT" change the bucket's rate and the copy goes on, anything
//  else cancels; without one, the message is left on cancel. On success
//  fills rec (release it with sf_image_rec_release) and returns 0; else
//  returns -1 with err and the store holds nothing of this image.
int
    sf_imgstore_put (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
                     zsock_t *cancel, sf_bucket_t *bucket, sf_image_rec_t *rec,
                     sf_err_t *err);

//  Remove a stored image (retention, or a failed job rolling back what it
//  stored) if the store made it for job_id of catalog_id (its metadata
//  says so); never anything outside the store. Returns 0 (also if it is
//  already gone) or -1 with err: SF_EINVAL "image 'X' is not one
//  snapfleet made for job J; not deleted (why)", nothing touched.
int
    sf_imgstore_remove (sf_imgstore_t *self, const char *id, const char *catalog_id,
                        const char *job_id, sf_err_t *err);

//  The ids of the complete images in the store, as a new list of strings
//  (caller destroys it). NULL with err.
zlistx_t *
    sf_imgstore_list (sf_imgstore_t *self, sf_err_t *err);

//  Free the strings of a record and zero it.
void
    sf_image_rec_release (sf_image_rec_t *rec);

//  Self test of this class
void
    sf_imgstore_test (bool verbose);

#endif
