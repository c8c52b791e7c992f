/*  =========================================================================
    sf_imgstore_driver - the table an image store fills (libvirt's
    driver-*.h): what sf_imgstore.c dispatches to. The streaming (read,
    hash, pace, cancel) is not the driver's: sf_imgstore_put hands it the
    bytes of one image between open and commit or abort.

    A driver includes this header after sf_worker_classes.h, defines one
    const sf_imgstore_driver_t and is listed in s_drivers[] of
    sf_imgstore.c. Its functions may run on several threads at once (one
    store serves every task and prune): the store's state is read-only
    after new, and everything of one image lives in its upload.
    =========================================================================
*/
#ifndef SF_IMGSTORE_DRIVER_H_INCLUDED
#define SF_IMGSTORE_DRIVER_H_INCLUDED

struct _sf_imgstore_driver_t {
    const char *name;
    //  The store's state from cfg (*priv, owned); no I/O yet. Returns 0
    //  or -1 with err.
    int (*new) (const sf_imgstore_cfg_t *cfg, void **priv, sf_err_t *err);
    //  Free *priv; sets it to NULL
    void (*destroy) (void **priv);
    //  Optional (NULL = always ready): can the store take images now?
    int (*check) (void *priv, sf_err_t *err);
    //  Start storing an image of meta: fill rec->id and rec->path, return
    //  the upload's state in *upload. Returns 0 or -1 with err (nothing
    //  left behind).
    int (*open) (void *priv, const sf_image_meta_t *meta, sf_image_rec_t *rec,
                 void **upload, sf_err_t *err);
    //  Optional (NULL: always copied): take the regular file open at fd,
    //  on this host, as the image without copying it (dir: a hard link on
    //  the same file system). Like open, but the upload already holds all
    //  the bytes: no write follows, only commit or abort (which leaves the
    //  caller's file alone). SF_ENOTSUP, with nothing left behind, where it
    //  cannot: the caller copies instead.
    int (*adopt) (void *priv, const sf_image_meta_t *meta, int fd, sf_image_rec_t *rec,
                  void **upload, sf_err_t *err);
    //  The next size bytes of the image
    int (*write) (void *upload, const char *data, size_t size, sf_err_t *err);
    //  Optional, for an adopted image: the caller has read (to hash) its
    //  next size bytes (dir: their writeback starts, as after a write)
    void (*advance) (void *upload, size_t size);
    //  Publish the image (rec complete: size, sha256, format) with meta.
    //  On success frees the upload; on failure leaves it for abort.
    int (*commit) (void *upload, const sf_image_meta_t *meta, const sf_image_rec_t *rec,
                   sf_err_t *err);
    //  Remove all the upload wrote, and free it
    void (*abort) (void *upload);
    //  Remove image id if the store made it for job_id of catalog_id (else
    //  SF_EINVAL, see sf_imgstore_remove); absent is done. Optional (NULL:
    //  SF_ENOTSUP).
    int (*delete) (void *priv, const char *id, const char *catalog_id, const char *job_id,
                   sf_err_t *err);
    //  Append (char *, heap) the ids of its complete images to ids.
    int (*list) (void *priv, zlistx_t *ids, sf_err_t *err);
};

//  The drivers
extern const sf_imgstore_driver_t sf_imgstore_dir_driver;
extern const sf_imgstore_driver_t sf_imgstore_glance_driver;

//  Self test of the glance driver (an in-process fake Glance)
void
    sf_imgstore_glance_test (bool verbose);

#endif
