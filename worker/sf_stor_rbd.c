/*  =========================================================================
    sf_stor_rbd - the librbd storage driver

    The connection handle is a rados_t. Each call opens what it needs (an
    I/O context for the pool and namespace, the image) and closes it again,
    so an abandoned call holds nothing a later call could trip over; only
    the rados_t is shared, and sf_stor drops it after a timeout.

    Bounds librados offers are set too, so that a hung call's thread ends
    on its own eventually: client_mount_timeout and rados_mon_op_timeout
    get op_timeout. rados_osd_op_timeout stays unset (librbd's locking and
    watch misbehave with it, notes/ceph.md); sf_stor's deadline covers OSD
    operations.

    A snapshot of an image whose exclusive lock a running QEMU holds is
    forwarded by librbd to the lock owner, which works with the guest
    running or paused. RBD_SNAP_CREATE_SKIP_QUIESCE: the worker freezes or
    pauses the guest itself, and QEMU registers no quiesce handler.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_driver.h"

#include <rados/librados.h>
#include <rbd/librbd.h>

SF_LOG_MODULE ("worker.rbd");

//  --------------------------------------------------------------------------
//  Connection

static int
s_connect (const sf_stor_cfg_t *cfg, void *arg, void **conn, sf_err_t *err)
{
    (void) arg;
    char name [160];
    snprintf (name, sizeof (name), "client.%s", cfg->client_id);
    rados_t cluster = NULL;
    int r = rados_create2 (&cluster, "ceph", name, 0);
    if (r < 0)
        return sf_stor_fail (err, r, "create a cluster handle for '%s'", name);
    char timeout [32];
    snprintf (timeout, sizeof (timeout), "%" PRId64, (cfg->op_timeout_ms + 999) / 1000);
    const char *what = "read the configuration";
    if ((r = rados_conf_read_file (cluster, *cfg->ceph_conf ? cfg->ceph_conf : NULL)) < 0)
        goto failed;
    what = "set the keyring";
    if (*cfg->keyring && (r = rados_conf_set (cluster, "keyring", cfg->keyring)) < 0)
        goto failed;
    what = "set the timeouts";
    if ((r = rados_conf_set (cluster, "client_mount_timeout", timeout)) < 0
    ||  (r = rados_conf_set (cluster, "rados_mon_op_timeout", timeout)) < 0)
        goto failed;
    what = "connect";
    if ((r = rados_connect (cluster)) < 0)
        goto failed;
    *conn = cluster;
    return 0;
 failed:
    rados_shutdown (cluster);
    return sf_stor_fail (err, r, "%s as '%s' with '%s'", what, name, cfg->ceph_conf);
}

static void
s_disconnect (void *conn)
{
    rados_shutdown ((rados_t) conn);
}

//  I/O context for the spec's pool and namespace. Returns 0 or -errno.

static int
s_ioctx (void *conn, const sf_stor_spec_t *spec, rados_ioctx_t *io)
{
    int r = rados_ioctx_create ((rados_t) conn, spec->pool, io);
    if (r < 0)
        return r;
    rados_ioctx_set_namespace (*io, spec->nspace);
    return 0;
}

//  Open the image (read-only unless write). Returns 0 or -errno; on
//  failure nothing stays open.

static int
s_open (void *conn, const sf_stor_spec_t *spec, const char *snap, bool write,
        rados_ioctx_t *io, rbd_image_t *image)
{
    int r = s_ioctx (conn, spec, io);
    if (r < 0)
        return r;
    r = write ? rbd_open (*io, spec->image, image, snap)
              : rbd_open_read_only (*io, spec->image, image, snap);
    if (r < 0)
        rados_ioctx_destroy (*io);
    return r;
}

static void
s_close (rados_ioctx_t io, rbd_image_t image)
{
    rbd_close (image);
    rados_ioctx_destroy (io);
}

//  --------------------------------------------------------------------------
//  Operations

static int
s_size (void *conn, const sf_stor_spec_t *spec, uint64_t *size, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, NULL, false, &io, &image);
    if (r < 0)
        return sf_stor_fail (err, r, "open '%s'", name);
    r = rbd_get_size (image, size);
    s_close (io, image);
    return r < 0 ? sf_stor_fail (err, r, "get the size of '%s'", name) : 0;
}

static int
s_snap_create (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int64_t start = sf_time_mono_us ();
    int r = s_open (conn, spec, NULL, true, &io, &image);
    if (r < 0)
        return sf_stor_fail (err, r, "snapshot '%s' (open)", name);
    int64_t opened = sf_time_mono_us ();
    r = rbd_snap_create2 (image, snap, RBD_SNAP_CREATE_SKIP_QUIESCE, NULL, NULL);
    int64_t created = sf_time_mono_us ();
    s_close (io, image);
    SF_DEBUG (NULL, "snapshot '%s@%s': open %.1f ms, create %.1f ms, close %.1f ms", name,
              snap, (opened - start) / 1000.0, (created - opened) / 1000.0,
              (sf_time_mono_us () - created) / 1000.0);
    return r < 0 ? sf_stor_fail (err, r, "snapshot '%s' as '%s'", name, snap) : 0;
}

static int
s_snap_protect (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, NULL, true, &io, &image);
    if (r == 0) {
        r = rbd_snap_protect (image, snap);
        s_close (io, image);
    }
    return r < 0 ? sf_stor_fail (err, r, "protect snapshot '%s@%s'", name, snap) : 0;
}

static int
s_snap_remove (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, NULL, true, &io, &image);
    if (r == -ENOENT)
        return 0;               //  no pool or no image: no snapshot either
    if (r < 0)
        return sf_stor_fail (err, r, "remove snapshot '%s@%s' (open)", name, snap);
    int is_protected = 0;
    const char *what = "check snapshot";
    r = rbd_snap_is_protected (image, snap, &is_protected);
    if (r == 0 && is_protected) {
        what = "unprotect snapshot";
        r = rbd_snap_unprotect (image, snap);
    }
    if (r == 0) {
        what = "remove snapshot";
        r = rbd_snap_remove (image, snap);
    }
    s_close (io, image);
    if (r == -ENOENT)
        return 0;
    if (r == -EBUSY && is_protected)
        return sf_err_set (err, SF_ECEPH, "ceph: cannot unprotect snapshot '%s@%s': it "
                           "still has clones", name, snap);
    return r < 0 ? sf_stor_fail (err, r, "%s '%s@%s'", what, name, snap) : 0;
}

static int
s_clone (void *conn, const sf_stor_spec_t *spec, const char *snap,
         const sf_stor_spec_t *clone, sf_err_t *err)
{
    char name [520], clone_name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    sf_stor_spec_str (clone, clone_name, sizeof (clone_name));
    rados_ioctx_t parent_io, clone_io;
    int r = s_ioctx (conn, spec, &parent_io);
    if (r < 0)
        return sf_stor_fail (err, r, "clone '%s@%s' (open pool '%s')", name, snap,
                             spec->pool);
    r = s_ioctx (conn, clone, &clone_io);
    if (r < 0) {
        rados_ioctx_destroy (parent_io);
        return sf_stor_fail (err, r, "clone '%s@%s' into pool '%s'", name, snap,
                             clone->pool);
    }
    rbd_image_options_t opts;
    rbd_image_options_create (&opts);
    r = rbd_clone3 (parent_io, spec->image, snap, clone_io, clone->image, opts);
    rbd_image_options_destroy (opts);
    rados_ioctx_destroy (clone_io);
    rados_ioctx_destroy (parent_io);
    return r < 0 ? sf_stor_fail (err, r, "clone '%s@%s' as '%s'", name, snap, clone_name)
                 : 0;
}

static int
s_clone_remove (void *conn, const sf_stor_spec_t *clone, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (clone, name, sizeof (name));
    rados_ioctx_t io;
    int r = s_ioctx (conn, clone, &io);
    if (r == 0) {
        r = rbd_remove (io, clone->image);
        rados_ioctx_destroy (io);
    }
    if (r == -ENOENT)
        return 0;
    return r < 0 ? sf_stor_fail (err, r, "remove clone '%s'", name) : 0;
}

static int
s_rename (void *conn, const sf_stor_spec_t *spec, const char *to, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    int r = s_ioctx (conn, spec, &io);
    if (r == 0) {
        r = rbd_rename (io, spec->image, to);
        rados_ioctx_destroy (io);
    }
    return r < 0 ? sf_stor_fail (err, r, "rename '%s' to '%s'", name, to) : 0;
}

//  Append the clones of snapshot snap of spec (not those in the trash)

static int
s_list_children (void *conn, const sf_stor_spec_t *spec, const char *snap, zlistx_t *objs,
                 sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, snap, false, &io, &image);
    if (r < 0)
        return sf_stor_fail (err, r, "open '%s@%s'", name, snap);
    size_t max = 8;
    rbd_linked_image_spec_t *children = NULL;
    while (true) {
        children = (rbd_linked_image_spec_t *) zmalloc (max * sizeof (*children));
        r = rbd_list_children3 (image, children, &max);
        if (r != -ERANGE)
            break;
        free (children);
    }
    for (size_t i = 0; r >= 0 && i < max; i++) {
        if (children [i].trash)
            continue;
        sf_stor_obj_t *obj = (sf_stor_obj_t *) zmalloc (sizeof (sf_stor_obj_t));
        obj->kind = SF_STOR_CLONE;
        snprintf (obj->spec.pool, sizeof (obj->spec.pool), "%s", children [i].pool_name);
        snprintf (obj->spec.nspace, sizeof (obj->spec.nspace), "%s",
                  children [i].pool_namespace ? children [i].pool_namespace : "");
        snprintf (obj->spec.image, sizeof (obj->spec.image), "%s", children [i].image_name);
        zlistx_add_end (objs, obj);
    }
    if (r >= 0)
        rbd_linked_image_spec_list_cleanup (children, max);
    free (children);
    s_close (io, image);
    return r < 0 ? sf_stor_fail (err, r, "list the clones of '%s@%s'", name, snap) : 0;
}

static int
s_list (void *conn, const sf_stor_spec_t *spec, const char *prefix, zlistx_t *objs,
        sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, NULL, false, &io, &image);
    if (r < 0)
        return sf_stor_fail (err, r, "list the snapshots of '%s'", name);
    int max = 16;
    rbd_snap_info_t *snaps = NULL;
    while (true) {
        snaps = (rbd_snap_info_t *) zmalloc ((size_t) max * sizeof (*snaps));
        r = rbd_snap_list (image, snaps, &max);
        if (r != -ERANGE)
            break;
        free (snaps);
    }
    s_close (io, image);
    if (r < 0) {
        free (snaps);
        return sf_stor_fail (err, r, "list the snapshots of '%s'", name);
    }
    int count = r, rc = 0;
    for (int i = 0; rc == 0 && i < count; i++) {
        if (strncmp (snaps [i].name, prefix, strlen (prefix)))
            continue;
        rc = s_list_children (conn, spec, snaps [i].name, objs, err);
        sf_stor_obj_t *obj = (sf_stor_obj_t *) zmalloc (sizeof (sf_stor_obj_t));
        obj->kind = SF_STOR_SNAP;
        obj->spec = *spec;
        snprintf (obj->snap, sizeof (obj->snap), "%s", snaps [i].name);
        zlistx_add_end (objs, obj);
    }
    rbd_snap_list_end (snaps);
    free (snaps);
    return rc;
}

//  --------------------------------------------------------------------------
//  An image kept open: a snapshot is then one request to the cluster (the
//  open alone is several, and the slower half under load)

typedef struct {
    rados_ioctx_t io;
    rbd_image_t image;
} open_image_t;

static int
s_image_open (void *conn, const sf_stor_spec_t *spec, void **image, uint64_t *size,
              sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    open_image_t *self = (open_image_t *) zmalloc (sizeof (open_image_t));
    int r = s_open (conn, spec, NULL, true, &self->io, &self->image);
    if (r < 0) {
        free (self);
        return sf_stor_fail (err, r, "open '%s'", name);
    }
    r = rbd_get_size (self->image, size);
    if (r < 0) {
        s_close (self->io, self->image);
        free (self);
        return sf_stor_fail (err, r, "get the size of '%s'", name);
    }
    *image = self;
    return 0;
}

static int
s_image_snap_create (void *conn, void *image, const sf_stor_spec_t *spec, const char *snap,
                     sf_err_t *err)
{
    (void) conn;
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    int64_t start = sf_time_mono_us ();
    int r = rbd_snap_create2 (((open_image_t *) image)->image, snap,
                              RBD_SNAP_CREATE_SKIP_QUIESCE, NULL, NULL);
    SF_DEBUG (NULL, "snapshot '%s@%s' of the open image: %.1f ms", name, snap,
              (sf_time_mono_us () - start) / 1000.0);
    return r < 0 ? sf_stor_fail (err, r, "snapshot '%s' as '%s'", name, snap) : 0;
}

static void
s_image_close (void *conn, void *image)
{
    (void) conn;
    open_image_t *self = (open_image_t *) image;
    s_close (self->io, self->image);
    free (self);
}

//  --------------------------------------------------------------------------
//  Cluster identity and retention

static int
s_cluster_id (void *conn, char *buf, size_t size, sf_err_t *err)
{
    int r = rados_cluster_fsid ((rados_t) conn, buf, size);
    return r < 0 ? sf_stor_fail (err, r, "get the cluster fsid") : 0;
}

static int
s_parent (void *conn, const sf_stor_spec_t *clone, bool *exists, bool *is_clone,
          sf_stor_obj_t *parent, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (clone, name, sizeof (name));
    memset (parent, 0, sizeof (*parent));
    *exists = false;
    *is_clone = false;
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, clone, NULL, false, &io, &image);
    if (r == -ENOENT)
        return 0;               //  no pool or no image: gone
    if (r < 0)
        return sf_stor_fail (err, r, "open '%s'", name);
    *exists = true;
    rbd_linked_image_spec_t image_spec;
    rbd_snap_spec_t snap_spec;
    r = rbd_get_parent (image, &image_spec, &snap_spec);
    s_close (io, image);
    if (r == -ENOENT)
        return 0;               //  not a clone (any more)
    if (r < 0)
        return sf_stor_fail (err, r, "get the parent of '%s'", name);
    *is_clone = true;
    //  A parent image or snapshot already in the trash goes with its last
    //  clone (clone v2): nothing to remove by name
    if (!image_spec.trash && snap_spec.namespace_type == RBD_SNAP_NAMESPACE_TYPE_USER) {
        parent->kind = SF_STOR_SNAP;
        snprintf (parent->spec.pool, sizeof (parent->spec.pool), "%s", image_spec.pool_name);
        snprintf (parent->spec.nspace, sizeof (parent->spec.nspace), "%s",
                  image_spec.pool_namespace ? image_spec.pool_namespace : "");
        snprintf (parent->spec.image, sizeof (parent->spec.image), "%s",
                  image_spec.image_name);
        snprintf (parent->snap, sizeof (parent->snap), "%s", snap_spec.name);
    }
    rbd_linked_image_spec_cleanup (&image_spec);
    rbd_snap_spec_cleanup (&snap_spec);
    return 0;
}

static int
s_children (void *conn, const sf_stor_spec_t *spec, const char *snap, size_t *count,
            sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (spec, name, sizeof (name));
    *count = 0;
    rados_ioctx_t io;
    rbd_image_t image;
    int r = s_open (conn, spec, snap, false, &io, &image);
    if (r == -ENOENT)
        return 0;               //  no image or no snapshot: no clones
    if (r < 0)
        return sf_stor_fail (err, r, "open '%s@%s'", name, snap);
    size_t max = 8;
    rbd_linked_image_spec_t *children = NULL;
    while (true) {
        children = (rbd_linked_image_spec_t *) zmalloc (max * sizeof (*children));
        r = rbd_list_children3 (image, children, &max);
        if (r != -ERANGE)
            break;
        free (children);
    }
    if (r >= 0) {
        *count = max;
        rbd_linked_image_spec_list_cleanup (children, max);
    }
    free (children);
    s_close (io, image);
    return r < 0 ? sf_stor_fail (err, r, "list the clones of '%s@%s'", name, snap) : 0;
}

const sf_stor_driver_t sf_stor_rbd_driver = {
    .name              = "rbd",
    .connect           = s_connect,
    .disconnect        = s_disconnect,
    .size              = s_size,
    .snap_create       = s_snap_create,
    .snap_protect      = s_snap_protect,
    .snap_remove       = s_snap_remove,
    .clone             = s_clone,
    .clone_remove      = s_clone_remove,
    .list              = s_list,
    .image_open        = s_image_open,
    .image_snap_create = s_image_snap_create,
    .image_close       = s_image_close,
    .cluster_id        = s_cluster_id,
    .parent            = s_parent,
    .children          = s_children,
    .rename            = s_rename,
};
