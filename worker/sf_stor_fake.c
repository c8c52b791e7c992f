/*  =========================================================================
    sf_stor_fake - an in-memory Ceph cluster for unit tests only

    Images (by "pool/image" or "pool/ns/image"), their snapshots with a
    protected flag, and clones that name their parent snapshot. It follows
    librbd's rules where the worker depends on them: a clone needs a
    protected snapshot, a snapshot with clones cannot be unprotected, and
    removing what is absent is not an error for the worker's cleanup.
    Tests make calls fail (fail), block until released (hang: connects
    too, like a cluster that is gone) or take a while (delay).
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_driver.h"
#include "sf_stor_fake.h"

#include <pthread.h>

typedef struct {
    bool protected_;
} snap_t;

typedef struct {
    uint64_t size;
    char *parent;               //  "pool/image@snap" for a clone, else NULL
    zhashx_t *snaps;            //  name -> snap_t (owned)
} image_t;

//  Structure of our class

struct _sf_stor_fake_t {
    pthread_mutex_t lock;
    pthread_cond_t released;    //  signalled when hang is cleared
    zhashx_t *images;           //  spec -> image_t (owned)
    bool hang;
    char fail_op [32];          //  next call of this op fails
    char hang_op [32];          //  next call of this op starts a hang
    int fail_errno;
    int64_t delay_ms;           //  snap_create takes this long
    size_t active;              //  calls running + connections open
    size_t connects;
};

SF_LOG_MODULE ("worker.stor");

static void
s_image_destroy (image_t **image_p)
{
    if (*image_p) {
        zhashx_destroy (&(*image_p)->snaps);
        free ((*image_p)->parent);
        free (*image_p);
        *image_p = NULL;
    }
}

static image_t *
s_image_new (uint64_t size, const char *parent)
{
    image_t *image = (image_t *) zmalloc (sizeof (image_t));
    image->size = size;
    image->parent = parent ? strdup (parent) : NULL;
    image->snaps = zhashx_new ();
    zhashx_set_destructor (image->snaps, (zhashx_destructor_fn *) zstr_free);
    return image;
}

//  --------------------------------------------------------------------------
//  Test controls

sf_stor_fake_t *
sf_stor_fake_new (void)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) zmalloc (sizeof (sf_stor_fake_t));
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->released, NULL);
    self->images = zhashx_new ();
    zhashx_set_destructor (self->images, (zhashx_destructor_fn *) s_image_destroy);
    return self;
}

void
sf_stor_fake_destroy (sf_stor_fake_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_stor_fake_t *self = *self_p;
        assert (self->active == 0 && !self->hang);
        zhashx_destroy (&self->images);
        pthread_cond_destroy (&self->released);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *self_p = NULL;
    }
}

void
sf_stor_fake_add (sf_stor_fake_t *self, const char *spec, uint64_t size)
{
    assert (self && spec);
    pthread_mutex_lock (&self->lock);
    zhashx_update (self->images, spec, s_image_new (size, NULL));
    pthread_mutex_unlock (&self->lock);
}

void
sf_stor_fake_hang (sf_stor_fake_t *self, bool hang)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    self->hang = hang;
    if (!hang) {
        *self->hang_op = 0;
        pthread_cond_broadcast (&self->released);
    }
    pthread_mutex_unlock (&self->lock);
}

void
sf_stor_fake_hang_at (sf_stor_fake_t *self, const char *op)
{
    assert (self && op);
    pthread_mutex_lock (&self->lock);
    snprintf (self->hang_op, sizeof (self->hang_op), "%s", op);
    pthread_mutex_unlock (&self->lock);
}

void
sf_stor_fake_fail (sf_stor_fake_t *self, const char *op, int errno_value)
{
    assert (self && op);
    pthread_mutex_lock (&self->lock);
    snprintf (self->fail_op, sizeof (self->fail_op), "%s", op);
    self->fail_errno = errno_value;
    pthread_mutex_unlock (&self->lock);
}

void
sf_stor_fake_delay (sf_stor_fake_t *self, int64_t ms)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    self->delay_ms = ms;
    pthread_mutex_unlock (&self->lock);
}

bool
sf_stor_fake_has (sf_stor_fake_t *self, const char *what)
{
    assert (self && what);
    char name [600];
    snprintf (name, sizeof (name), "%s", what);
    bool want_protected = name [strlen (name) - 1] == '!';
    if (want_protected)
        name [strlen (name) - 1] = 0;
    char *snap = strchr (name, '@');
    if (snap)
        *snap++ = 0;
    pthread_mutex_lock (&self->lock);
    image_t *image = (image_t *) zhashx_lookup (self->images, name);
    snap_t *entry = image && snap ? (snap_t *) zhashx_lookup (image->snaps, snap) : NULL;
    bool has = snap ? entry && (!want_protected || entry->protected_) : image != NULL;
    pthread_mutex_unlock (&self->lock);
    return has;
}

size_t
sf_stor_fake_objects (sf_stor_fake_t *self)
{
    assert (self);
    size_t count = 0;
    pthread_mutex_lock (&self->lock);
    image_t *image = (image_t *) zhashx_first (self->images);
    for (; image; image = (image_t *) zhashx_next (self->images))
        count += zhashx_size (image->snaps) + (image->parent ? 1 : 0);
    pthread_mutex_unlock (&self->lock);
    return count;
}

size_t
sf_stor_fake_active (sf_stor_fake_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t active = self->active;
    pthread_mutex_unlock (&self->lock);
    return active;
}

size_t
sf_stor_fake_connects (sf_stor_fake_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t connects = self->connects;
    pthread_mutex_unlock (&self->lock);
    return connects;
}

//  --------------------------------------------------------------------------
//  The driver. Every call: lock, count, wait out a hang, take an injected
//  failure; then the work; then uncount and unlock.

static int
s_enter (sf_stor_fake_t *self, const char *op)
{
    pthread_mutex_lock (&self->lock);
    self->active++;
    if (streq (self->hang_op, op)) {
        *self->hang_op = 0;
        self->hang = true;
    }
    while (self->hang)
        pthread_cond_wait (&self->released, &self->lock);
    int fail = 0;
    if (streq (self->fail_op, op)) {
        fail = self->fail_errno;
        *self->fail_op = 0;
    }
    return fail;
}

static int
s_leave (sf_stor_fake_t *self, int rc)
{
    self->active--;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

static image_t *
s_image (sf_stor_fake_t *self, const sf_stor_spec_t *spec, char *name, size_t size)
{
    sf_stor_spec_str (spec, name, size);
    return (image_t *) zhashx_lookup (self->images, name);
}

static int
s_connect (const sf_stor_cfg_t *cfg, void *arg, void **conn, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) arg;
    assert (self);              //  sf_stor_new_with (cfg, &sf_stor_fake_driver, fake, ..)
    int fail = s_enter (self, "connect");
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "connect as 'client.%s' with "
                                            "'%s'", cfg->client_id, cfg->ceph_conf));
    self->connects++;
    self->active++;             //  the open connection counts until disconnect
    *conn = self;
    return s_leave (self, 0);
}

static void
s_disconnect (void *conn)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    pthread_mutex_lock (&self->lock);
    self->active--;
    pthread_mutex_unlock (&self->lock);
}

static int
s_size (void *conn, const sf_stor_spec_t *spec, uint64_t *size, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "size");
    image_t *image = s_image (self, spec, name, sizeof (name));
    if (fail || !image)
        return s_leave (self, sf_stor_fail (err, fail ? fail : ENOENT, "open '%s'", name));
    *size = image->size;
    return s_leave (self, 0);
}

static int
s_snap_create (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "snap_create");     //  an open image's snapshot too
    if (self->delay_ms) {
        pthread_mutex_unlock (&self->lock);
        zclock_sleep ((int) self->delay_ms);
        pthread_mutex_lock (&self->lock);
    }
    image_t *image = s_image (self, spec, name, sizeof (name));
    if (!fail && !image)
        fail = ENOENT;
    if (!fail && zhashx_lookup (image->snaps, snap))
        fail = EEXIST;
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "snapshot '%s' as '%s'", name, snap));
    zhashx_insert (image->snaps, snap, zmalloc (sizeof (snap_t)));
    return s_leave (self, 0);
}

static int
s_snap_protect (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "snap_protect");
    image_t *image = s_image (self, spec, name, sizeof (name));
    snap_t *entry = image ? (snap_t *) zhashx_lookup (image->snaps, snap) : NULL;
    if (!fail && !entry)
        fail = ENOENT;
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "protect snapshot '%s@%s'", name,
                                            snap));
    entry->protected_ = true;
    return s_leave (self, 0);
}

//  Number of clones whose parent is name@snap

static size_t
s_children (sf_stor_fake_t *self, const char *name, const char *snap, zlistx_t *objs)
{
    char *parent = zsys_sprintf ("%s@%s", name, snap);
    size_t count = 0;
    image_t *image = (image_t *) zhashx_first (self->images);
    for (; image; image = (image_t *) zhashx_next (self->images)) {
        if (!image->parent || !streq (image->parent, parent))
            continue;
        count++;
        if (objs) {
            sf_stor_obj_t *obj = (sf_stor_obj_t *) zmalloc (sizeof (sf_stor_obj_t));
            obj->kind = SF_STOR_CLONE;
            int rc = sf_stor_spec_parse ((const char *) zhashx_cursor (self->images),
                                         &obj->spec, NULL);
            assert (rc == 0);
            zlistx_add_end (objs, obj);
        }
    }
    zstr_free (&parent);
    return count;
}

static int
s_snap_remove (void *conn, const sf_stor_spec_t *spec, const char *snap, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "snap_remove");
    image_t *image = s_image (self, spec, name, sizeof (name));
    snap_t *entry = image ? (snap_t *) zhashx_lookup (image->snaps, snap) : NULL;
    if (!fail && entry && entry->protected_ && s_children (self, name, snap, NULL))
        fail = EBUSY;
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "remove snapshot '%s@%s'", name,
                                            snap));
    if (entry)
        zhashx_delete (image->snaps, snap);
    return s_leave (self, 0);
}

static int
s_clone (void *conn, const sf_stor_spec_t *spec, const char *snap,
         const sf_stor_spec_t *clone, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520], clone_name [520];
    int fail = s_enter (self, "clone");
    image_t *image = s_image (self, spec, name, sizeof (name));
    snap_t *entry = image ? (snap_t *) zhashx_lookup (image->snaps, snap) : NULL;
    if (!fail && !entry)
        fail = ENOENT;
    if (!fail && !entry->protected_)
        fail = EINVAL;
    if (!fail && s_image (self, clone, clone_name, sizeof (clone_name)))
        fail = EEXIST;
    sf_stor_spec_str (clone, clone_name, sizeof (clone_name));
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "clone '%s@%s' as '%s'", name, snap,
                                            clone_name));
    char *parent = zsys_sprintf ("%s@%s", name, snap);
    zhashx_insert (self->images, clone_name, s_image_new (image->size, parent));
    zstr_free (&parent);
    return s_leave (self, 0);
}

static int
s_clone_remove (void *conn, const sf_stor_spec_t *clone, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "clone_remove");
    image_t *image = s_image (self, clone, name, sizeof (name));
    if (!fail && image && zhashx_size (image->snaps))
        fail = ENOTEMPTY;
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "remove clone '%s'", name));
    if (image)
        zhashx_delete (self->images, name);
    return s_leave (self, 0);
}

static int
s_rename (void *conn, const sf_stor_spec_t *spec, const char *to, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520], to_name [520];
    int fail = s_enter (self, "rename");
    sf_stor_spec_t target = *spec;
    snprintf (target.image, sizeof (target.image), "%s", to);
    image_t *image = s_image (self, spec, name, sizeof (name));
    if (!fail && !image)
        fail = ENOENT;
    if (!fail && s_image (self, &target, to_name, sizeof (to_name)))
        fail = EEXIST;
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "rename '%s' to '%s'", name, to));
    //  Move its content to a new entry; the old one goes empty
    image_t *moved = (image_t *) zmalloc (sizeof (image_t));
    *moved = *image;
    image->snaps = NULL, image->parent = NULL;
    zhashx_delete (self->images, name);
    zhashx_insert (self->images, to_name, moved);
    return s_leave (self, 0);
}

static int
s_list (void *conn, const sf_stor_spec_t *spec, const char *prefix, zlistx_t *objs,
        sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "list");
    image_t *image = s_image (self, spec, name, sizeof (name));
    if (fail || !image)
        return s_leave (self, sf_stor_fail (err, fail ? fail : ENOENT, "list the "
                                            "snapshots of '%s'", name));
    zlistx_t *names = zhashx_keys (image->snaps);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (names);
    for (char *snap = (char *) zlistx_first (names); snap;
         snap = (char *) zlistx_next (names)) {
        if (strncmp (snap, prefix, strlen (prefix)))
            continue;
        s_children (self, name, snap, objs);
        sf_stor_obj_t *obj = (sf_stor_obj_t *) zmalloc (sizeof (sf_stor_obj_t));
        obj->kind = SF_STOR_SNAP;
        obj->spec = *spec;
        snprintf (obj->snap, sizeof (obj->snap), "%s", snap);
        zlistx_add_end (objs, obj);
    }
    zlistx_destroy (&names);
    return s_leave (self, 0);
}

//  An open image is its name; it counts as active until closed

static int
s_image_open (void *conn, const sf_stor_spec_t *spec, void **image, uint64_t *size,
              sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "open");
    image_t *entry = s_image (self, spec, name, sizeof (name));
    if (fail || !entry)
        return s_leave (self, sf_stor_fail (err, fail ? fail : ENOENT, "open '%s'", name));
    *size = entry->size;
    *image = strdup (name);
    self->active++;
    return s_leave (self, 0);
}

static int
s_image_snap_create (void *conn, void *image, const sf_stor_spec_t *spec, const char *snap,
                     sf_err_t *err)
{
    (void) image;
    return s_snap_create (conn, spec, snap, err);
}

static void
s_image_close (void *conn, void *image)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    s_enter (self, "close");
    self->active--;
    free (image);
    s_leave (self, 0);
}

static int
s_cluster_id (void *conn, char *buf, size_t size, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    int fail = s_enter (self, "cluster_id");
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "get the cluster fsid"));
    snprintf (buf, size, "%s", SF_STOR_FAKE_FSID);
    return s_leave (self, 0);
}

static int
s_parent (void *conn, const sf_stor_spec_t *clone, bool *exists, bool *is_clone,
          sf_stor_obj_t *parent, sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "parent");
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "get the parent of '%s'",
                                            sf_stor_spec_str (clone, name, sizeof (name))));
    image_t *image = s_image (self, clone, name, sizeof (name));
    memset (parent, 0, sizeof (*parent));
    *exists = image != NULL;
    *is_clone = image && image->parent;
    if (image && image->parent) {
        char text [600];
        snprintf (text, sizeof (text), "%s", image->parent);
        char *snap = strchr (text, '@');
        assert (snap);
        *snap++ = 0;
        parent->kind = SF_STOR_SNAP;
        int rc = sf_stor_spec_parse (text, &parent->spec, NULL);
        assert (rc == 0);
        snprintf (parent->snap, sizeof (parent->snap), "%s", snap);
    }
    return s_leave (self, 0);
}

static int
s_children_count (void *conn, const sf_stor_spec_t *spec, const char *snap, size_t *count,
                  sf_err_t *err)
{
    sf_stor_fake_t *self = (sf_stor_fake_t *) conn;
    char name [520];
    int fail = s_enter (self, "children");
    sf_stor_spec_str (spec, name, sizeof (name));
    if (fail)
        return s_leave (self, sf_stor_fail (err, fail, "list the clones of '%s@%s'", name,
                                            snap));
    *count = s_children (self, name, snap, NULL);
    return s_leave (self, 0);
}

const sf_stor_driver_t sf_stor_fake_driver = {
    .name              = "fake",
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
    .children          = s_children_count,
    .rename            = s_rename,
};
