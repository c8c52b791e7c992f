/*  =========================================================================
    sf_stor - block-storage interface: dispatch, the deadline on every
    driver call, image specs and object lines

    Three reference-counted pieces, all guarded by core->lock:
      core  the driver and the configuration; held by the sf_stor_t and by
            every call thread, so a thread that outlives sf_stor_destroy
            still has what it needs
      conn  one cluster connection; held by the core while it is current
            and by every call thread using it. A timeout or a failed
            connect makes it not current; the last holder disconnects it.
      call  one driver call; owned by the caller until the deadline, by
            its thread after that (an abandoned call frees itself)
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_driver.h"
#include "sf_stor_fake.h"               //  the self-test's cluster

#include <pthread.h>
#include <time.h>

#define S_MAX_HUNG      8           //  abandoned calls still running, at most
#define S_ROUNDS        8           //  snapshot rounds sf_stor_snap_round_ms looks at

typedef enum {
    S_OP_SIZE,
    S_OP_SNAP_CREATE,
    S_OP_SNAP_PROTECT,
    S_OP_SNAP_REMOVE,
    S_OP_CLONE,
    S_OP_CLONE_REMOVE,
    S_OP_LIST,
    S_OP_IMAGE_OPEN,
    S_OP_IMAGE_SNAP,
    S_OP_IMAGE_CLOSE,
    S_OP_CLUSTER_ID,
    S_OP_PARENT,
    S_OP_CHILDREN,
    S_OP_RENAME,
    S_OP_LAST,
} op_t;

typedef struct {
    pthread_mutex_t lock;           //  guards everything below and conns, calls
    size_t refs;                    //  the sf_stor_t + running call threads
    const sf_stor_driver_t *driver;
    void *arg;                      //  the driver's, for connect (borrowed)
    sf_stor_cfg_t cfg;              //  strings owned
    struct _conn_t *conn;           //  current connection, NULL = open anew
    size_t hung;                    //  abandoned calls not returned yet
    int64_t rounds [S_ROUNDS];      //  the last sf_stor_images_snap_create's, ring
    size_t next_round;              //  where the next one goes
} core_t;

typedef struct _conn_t {
    size_t refs;                    //  core (while current) + call threads
    pthread_mutex_t open_lock;      //  one connect at a time
    void *handle;                   //  the driver's, NULL until connected
    bool failed;                    //  connect failed: never used again
    sf_err_t open_err;              //  why
} conn_t;

//  An image kept open; its flags are guarded by core->lock
struct _sf_stor_image_t {
    sf_stor_spec_t spec;
    struct _conn_t *conn;           //  a reference: the image lives on it
    void *handle;                   //  the driver's, NULL until open
    uint64_t size;
    bool busy;                      //  a call on it is running
    bool close_pending;             //  that call's thread closes it
};

typedef struct {
    op_t op;
    sf_stor_image_t *image;         //  image ops; IMAGE_OPEN: owned until done
    sf_stor_spec_t spec;
    sf_stor_spec_t clone;
    char snap [256];
    char prefix [256];
    uint64_t size;                  //  out: S_OP_SIZE
    zlistx_t *objs;                 //  out: S_OP_LIST (owned)
    char text [64];                 //  out: S_OP_CLUSTER_ID
    bool exists;                    //  out: S_OP_PARENT
    bool is_clone;                  //  out: S_OP_PARENT
    sf_stor_obj_t parent;           //  out: S_OP_PARENT
    size_t count;                   //  out: S_OP_CHILDREN
    int rc;
    sf_err_t err;
    bool done;                      //  the thread has finished
    bool abandoned;                 //  the caller has given up
    pthread_cond_t cond;
    core_t *core;                   //  a reference
    conn_t *conn;                   //  a reference
} call_t;

//  Structure of our class

struct _sf_stor_t {
    core_t *core;                   //  a reference
};

SF_LOG_MODULE ("worker.stor");

//  The production drivers, by name (a test hands its own to sf_stor_new_with)
static const sf_stor_driver_t *s_drivers [] = {
#ifdef SF_WITH_RBD
    &sf_stor_rbd_driver,
#endif
    NULL
};

//  --------------------------------------------------------------------------
//  Reference counting (callers hold core->lock for the counts; the frees
//  happen after it is released)

static void
s_conn_free (core_t *core, conn_t *conn)
{
    if (conn->handle)
        core->driver->disconnect (conn->handle);
    pthread_mutex_destroy (&conn->open_lock);
    free (conn);
}

static void
s_core_free (core_t *core)
{
    assert (!core->conn && core->refs == 0);
    pthread_mutex_destroy (&core->lock);
    free ((char *) core->cfg.driver);
    free ((char *) core->cfg.ceph_conf);
    free ((char *) core->cfg.client_id);
    free ((char *) core->cfg.keyring);
    free (core);
}

//  Free an image whose handle is closed (or was never opened); drops its
//  connection reference. The caller holds a core reference.

static void
s_image_free (core_t *core, sf_stor_image_t *image)
{
    if (image->handle)
        core->driver->image_close (image->conn->handle, image->handle);
    pthread_mutex_lock (&core->lock);
    bool last_conn = --image->conn->refs == 0;
    pthread_mutex_unlock (&core->lock);
    if (last_conn)
        s_conn_free (core, image->conn);
    free (image);
}

static void
s_obj_destroy (sf_stor_obj_t **obj_p)
{
    free (*obj_p);
    *obj_p = NULL;
}

static void
s_call_free (call_t *call)
{
    zlistx_destroy (&call->objs);
    pthread_cond_destroy (&call->cond);
    free (call);
}

//  --------------------------------------------------------------------------
//  Constructor

sf_stor_t *
sf_stor_new (const sf_stor_cfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    const char *name = cfg->driver ? cfg->driver : "rbd";
    for (const sf_stor_driver_t **entry = s_drivers; *entry; entry++)
        if (streq ((*entry)->name, name))
            return sf_stor_new_with (cfg, *entry, NULL, err);
    sf_err_set (err, SF_EINVAL, "unknown storage driver '%s'%s", name,
                streq (name, "rbd") ? " (built without librbd)" : "");
    return NULL;
}

sf_stor_t *
sf_stor_new_with (const sf_stor_cfg_t *cfg, const sf_stor_driver_t *driver, void *arg,
                  sf_err_t *err)
{
    assert (cfg && driver);
    if (cfg->op_timeout_ms <= 0) {
        sf_err_set (err, SF_EINVAL, "storage op_timeout must be positive");
        return NULL;
    }
    core_t *core = (core_t *) zmalloc (sizeof (core_t));
    pthread_mutex_init (&core->lock, NULL);
    core->refs = 1;
    core->driver = driver;
    core->arg = arg;
    core->cfg.driver = strdup (driver->name);
    core->cfg.ceph_conf = strdup (cfg->ceph_conf ? cfg->ceph_conf : "");
    core->cfg.client_id = strdup (cfg->client_id && *cfg->client_id ? cfg->client_id
                                                                    : "admin");
    core->cfg.keyring = strdup (cfg->keyring ? cfg->keyring : "");
    core->cfg.op_timeout_ms = cfg->op_timeout_ms;
    sf_stor_t *self = (sf_stor_t *) zmalloc (sizeof (sf_stor_t));
    self->core = core;
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_stor_destroy (sf_stor_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_stor_t *self = *self_p;
        core_t *core = self->core;
        pthread_mutex_lock (&core->lock);
        conn_t *conn = core->conn;
        core->conn = NULL;
        bool last_conn = conn && --conn->refs == 0;
        bool last_core = --core->refs == 0;
        pthread_mutex_unlock (&core->lock);
        if (last_conn)
            s_conn_free (core, conn);
        if (last_core)
            s_core_free (core);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  The call thread

//  Connect conn if nobody has yet. Returns 0 or -1 with err.

static int
s_conn_ready (core_t *core, conn_t *conn, sf_err_t *err)
{
    pthread_mutex_lock (&conn->open_lock);
    if (!conn->handle && !conn->failed) {
        int64_t start = sf_time_mono_ms ();
        if (core->driver->connect (&core->cfg, core->arg, &conn->handle,
                                   &conn->open_err)) {
            conn->failed = true;
            conn->handle = NULL;
        }
        else
            SF_DEBUG (NULL, "connected to ceph as 'client.%s' in %" PRId64 " ms",
                      core->cfg.client_id, sf_time_mono_ms () - start);
    }
    int rc = conn->handle ? 0 : -1;
    if (rc)
        *err = conn->open_err;
    pthread_mutex_unlock (&conn->open_lock);
    return rc;
}

static int
s_call_op (const sf_stor_driver_t *driver, void *handle, call_t *call, sf_err_t *err)
{
    switch (call->op) {
        case S_OP_SIZE:
            return driver->size (handle, &call->spec, &call->size, err);
        case S_OP_SNAP_CREATE:
            return driver->snap_create (handle, &call->spec, call->snap, err);
        case S_OP_SNAP_PROTECT:
            return driver->snap_protect (handle, &call->spec, call->snap, err);
        case S_OP_SNAP_REMOVE:
            return driver->snap_remove (handle, &call->spec, call->snap, err);
        case S_OP_CLONE:
            return driver->clone (handle, &call->spec, call->snap, &call->clone, err);
        case S_OP_CLONE_REMOVE:
            return driver->clone_remove (handle, &call->clone, err);
        case S_OP_LIST:
            return driver->list (handle, &call->spec, call->prefix, call->objs, err);
        case S_OP_IMAGE_OPEN:
            return driver->image_open (handle, &call->spec, &call->image->handle,
                                       &call->image->size, err);
        case S_OP_IMAGE_SNAP:
            return driver->image_snap_create (handle, call->image->handle, &call->spec,
                                              call->snap, err);
        case S_OP_IMAGE_CLOSE:
            driver->image_close (handle, call->image->handle);
            call->image->handle = NULL;
            return 0;
        case S_OP_CLUSTER_ID:
            return driver->cluster_id (handle, call->text, sizeof (call->text), err);
        case S_OP_PARENT:
            return driver->parent (handle, &call->clone, &call->exists, &call->is_clone,
                                   &call->parent, err);
        case S_OP_CHILDREN:
            return driver->children (handle, &call->spec, call->snap, &call->count, err);
        case S_OP_RENAME:
            return driver->rename ? driver->rename (handle, &call->spec, call->clone.image, err)
                 : sf_err_set (err, SF_ENOTSUP, "storage driver '%s' cannot rename",
                               driver->name);
        default:
            return sf_err_set (err, SF_EINVAL, "bad storage operation %d", (int) call->op);
    }
}

static void *
s_call_thread (void *arg)
{
    call_t *call = (call_t *) arg;
    core_t *core = call->core;
    conn_t *conn = call->conn;
    sf_err_t err = SF_ERR_INIT;
    int rc = s_conn_ready (core, conn, &err);
    if (rc == 0)
        rc = s_call_op (core->driver, conn->handle, call, &err);

    pthread_mutex_lock (&core->lock);
    if (conn->failed && core->conn == conn) {
        core->conn = NULL;          //  the next call connects anew
        conn->refs--;               //  never the last: we hold one
    }
    call->rc = rc;
    call->err = err;
    call->done = true;
    bool abandoned = call->abandoned;
    if (abandoned)
        core->hung--;
    else
        pthread_cond_signal (&call->cond);
    //  What becomes of the image: an open nobody waits for any more is
    //  undone; a close, or a call whose image was closed meanwhile, frees it
    sf_stor_image_t *image = call->image;
    bool free_image = false;
    if (image && call->op == S_OP_IMAGE_OPEN)
        free_image = abandoned;
    else
    if (image && call->op == S_OP_IMAGE_CLOSE)
        free_image = true;
    else
    if (image) {
        image->busy = false;
        free_image = image->close_pending;
    }
    bool last_conn = --conn->refs == 0;
    bool last_core = !free_image && --core->refs == 0;     //  else after the free
    pthread_mutex_unlock (&core->lock);

    if (abandoned) {
        SF_NOTICE (NULL, "an abandoned ceph call returned after its deadline (%s)",
                   rc ? err.text : "ok");
        s_call_free (call);
    }
    if (free_image) {
        s_image_free (core, image);
        pthread_mutex_lock (&core->lock);
        last_core = --core->refs == 0;
        pthread_mutex_unlock (&core->lock);
    }
    if (last_conn)
        s_conn_free (core, conn);
    if (last_core)
        s_core_free (core);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The caller's side: start the thread, wait until done or the deadline

static const char *
s_duration (int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 "ms", ms);
    return buf;
}

//  What a call does, for the timeout message: "snapshot of 'rbd/vm1'"

static void
s_call_subject (const call_t *call, char *buf, size_t size)
{
    char spec [520], clone [520];
    sf_stor_spec_str (&call->spec, spec, sizeof (spec));
    sf_stor_spec_str (&call->clone, clone, sizeof (clone));
    switch (call->op) {
        case S_OP_SIZE:
            snprintf (buf, size, "size query of '%s'", spec);
            break;
        case S_OP_SNAP_CREATE:
            snprintf (buf, size, "snapshot of '%s'", spec);
            break;
        case S_OP_SNAP_PROTECT:
            snprintf (buf, size, "protection of snapshot '%s@%s'", spec, call->snap);
            break;
        case S_OP_SNAP_REMOVE:
            snprintf (buf, size, "removal of snapshot '%s@%s'", spec, call->snap);
            break;
        case S_OP_CLONE:
            snprintf (buf, size, "clone of '%s@%s'", spec, call->snap);
            break;
        case S_OP_CLONE_REMOVE:
            snprintf (buf, size, "removal of clone '%s'", clone);
            break;
        case S_OP_IMAGE_OPEN:
            snprintf (buf, size, "opening of '%s'", spec);
            break;
        case S_OP_IMAGE_SNAP:
            snprintf (buf, size, "snapshot of '%s'", spec);
            break;
        case S_OP_IMAGE_CLOSE:
            snprintf (buf, size, "closing of '%s'", spec);
            break;
        case S_OP_CLUSTER_ID:
            snprintf (buf, size, "cluster id query");
            break;
        case S_OP_PARENT:
            snprintf (buf, size, "parent query of '%s'", clone);
            break;
        case S_OP_CHILDREN:
            snprintf (buf, size, "clone listing of '%s@%s'", spec, call->snap);
            break;
        case S_OP_RENAME:
            snprintf (buf, size, "renaming of '%s'", spec);
            break;
        default:
            snprintf (buf, size, "listing of '%s'", spec);
            break;
    }
}

static call_t *
s_call_new (op_t op, const sf_stor_spec_t *spec, const char *snap)
{
    call_t *call = (call_t *) zmalloc (sizeof (call_t));
    call->op = op;
    if (spec)
        call->spec = *spec;
    if (snap)
        snprintf (call->snap, sizeof (call->snap), "%s", snap);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&call->cond, &attr);
    pthread_condattr_destroy (&attr);
    return call;
}

//  The deadline of a call started now: op_timeout from now (monotonic)

static void
s_deadline (core_t *core, struct timespec *deadline)
{
    clock_gettime (CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += core->cfg.op_timeout_ms / 1000;
    deadline->tv_nsec += (core->cfg.op_timeout_ms % 1000) * 1000000;
    if (deadline->tv_nsec >= 1000000000) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000;
    }
}

//  Start call on its own thread. Returns 0 (it runs: wait for it with
//  s_call_wait), or -1 with err: it never started and is still the
//  caller's (call->done false).

static int
s_call_start (sf_stor_t *self, call_t *call, sf_err_t *err)
{
    core_t *core = self->core;
    char subject [1200];
    s_call_subject (call, subject, sizeof (subject));

    pthread_mutex_lock (&core->lock);
    if (core->hung >= S_MAX_HUNG) {
        size_t hung = core->hung;
        pthread_mutex_unlock (&core->lock);
        return sf_err_set (err, SF_ETIMEDOUT, "ceph: %s not tried: %zu earlier calls "
                           "have not returned (cluster unreachable?)", subject, hung);
    }
    bool on_image = call->image && call->op != S_OP_IMAGE_OPEN;
    if (on_image && call->image->busy) {
        pthread_mutex_unlock (&core->lock);
        return sf_err_set (err, SF_ETIMEDOUT, "ceph: %s not tried: an earlier call on the "
                           "image has not returned (cluster unreachable?)", subject);
    }
    if (!on_image && !core->conn) {
        core->conn = (conn_t *) zmalloc (sizeof (conn_t));
        core->conn->refs = 1;
        pthread_mutex_init (&core->conn->open_lock, NULL);
    }
    call->core = core;
    call->conn = on_image ? call->image->conn : core->conn;
    call->conn->refs++;
    if (call->image && call->op == S_OP_IMAGE_OPEN) {
        call->image->conn = call->conn;     //  the image's own reference
        call->conn->refs++;
    }
    if (on_image)
        call->image->busy = true;
    core->refs++;
    pthread_mutex_unlock (&core->lock);

    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create (&thread, &attr, s_call_thread, call);
    pthread_attr_destroy (&attr);
    if (rc) {
        pthread_mutex_lock (&core->lock);
        call->conn->refs--;         //  not the last: core, self or the image hold it
        core->refs--;
        if (on_image)
            call->image->busy = false;
        pthread_mutex_unlock (&core->lock);
        return sf_err_set (err, SF_ECEPH, "ceph: cannot start the %s: %s", subject,
                           strerror (rc));
    }
    return 0;
}

//  Wait for a started call until deadline. On return the call is finished
//  and still the caller's (returns 0/-1 with call->rc, call->err), or it
//  was abandoned (returns -1 with err, and *call_p is NULL).

static int
s_call_wait (sf_stor_t *self, call_t **call_p, const struct timespec *deadline,
             sf_err_t *err)
{
    call_t *call = *call_p;
    core_t *core = self->core;
    char subject [1200], timeout [32];
    s_call_subject (call, subject, sizeof (subject));   //  an abandoned call is not ours
    pthread_mutex_lock (&core->lock);
    while (!call->done)
        if (pthread_cond_timedwait (&call->cond, &core->lock, deadline) == ETIMEDOUT)
            break;
    if (call->done) {
        pthread_mutex_unlock (&core->lock);
        if (call->rc)
            *err = call->err;
        return call->rc;
    }
    //  Abandon it: the thread frees the call; its connection is not reused
    call->abandoned = true;
    core->hung++;
    if (core->conn == call->conn) {
        core->conn = NULL;
        call->conn->refs--;         //  not the last: the thread holds one
    }
    pthread_mutex_unlock (&core->lock);
    *call_p = NULL;
    SF_NOTICE (NULL, "ceph: %s timed out; dropping the cluster connection", subject);
    return sf_err_set (err, SF_ETIMEDOUT, "ceph: %s timed out after %s (cluster "
                       "unreachable?)", subject,
                       s_duration (core->cfg.op_timeout_ms, timeout, sizeof (timeout)));
}

//  Run call with the deadline: s_call_start, then s_call_wait

static int
s_call (sf_stor_t *self, call_t **call_p, sf_err_t *err)
{
    if (s_call_start (self, *call_p, err))
        return -1;
    struct timespec deadline;
    s_deadline (self->core, &deadline);
    return s_call_wait (self, call_p, &deadline, err);
}

//  Run a call that returns nothing but its status, and free it

static int
s_call_simple (sf_stor_t *self, call_t *call, sf_err_t *err)
{
    int rc = s_call (self, &call, err);
    if (call)
        s_call_free (call);
    return rc;
}

//  --------------------------------------------------------------------------
//  Operations

int
sf_stor_size (sf_stor_t *self, const sf_stor_spec_t *spec, uint64_t *size, sf_err_t *err)
{
    assert (self && spec && size);
    call_t *call = s_call_new (S_OP_SIZE, spec, NULL);
    int rc = s_call (self, &call, err);
    if (call) {
        *size = call->size;
        s_call_free (call);
    }
    return rc;
}

int
sf_stor_snap_create (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                     sf_err_t *err)
{
    assert (self && spec && snap);
    return s_call_simple (self, s_call_new (S_OP_SNAP_CREATE, spec, snap), err);
}

int
sf_stor_snap_protect (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                      sf_err_t *err)
{
    assert (self && spec && snap);
    return s_call_simple (self, s_call_new (S_OP_SNAP_PROTECT, spec, snap), err);
}

int
sf_stor_snap_remove (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                     sf_err_t *err)
{
    assert (self && spec && snap);
    return s_call_simple (self, s_call_new (S_OP_SNAP_REMOVE, spec, snap), err);
}

int
sf_stor_clone (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
               const sf_stor_spec_t *clone, sf_err_t *err)
{
    assert (self && spec && snap && clone);
    call_t *call = s_call_new (S_OP_CLONE, spec, snap);
    call->clone = *clone;
    return s_call_simple (self, call, err);
}

int
sf_stor_clone_remove (sf_stor_t *self, const sf_stor_spec_t *clone, sf_err_t *err)
{
    assert (self && clone);
    call_t *call = s_call_new (S_OP_CLONE_REMOVE, NULL, NULL);
    call->clone = *clone;
    return s_call_simple (self, call, err);
}

int
sf_stor_rename (sf_stor_t *self, const sf_stor_spec_t *spec, const char *name,
                sf_err_t *err)
{
    assert (self && spec && name);
    call_t *call = s_call_new (S_OP_RENAME, spec, NULL);
    snprintf (call->clone.image, sizeof (call->clone.image), "%s", name);
    return s_call_simple (self, call, err);
}

int
sf_stor_parent (sf_stor_t *self, const sf_stor_spec_t *clone, bool *exists, bool *is_clone,
                sf_stor_obj_t *parent, sf_err_t *err)
{
    assert (self && clone && exists && is_clone);
    *exists = *is_clone = false;
    if (parent)
        memset (parent, 0, sizeof (*parent));
    call_t *call = s_call_new (S_OP_PARENT, NULL, NULL);
    call->clone = *clone;
    int rc = s_call (self, &call, err);
    if (call) {
        *exists = rc == 0 && call->exists;
        *is_clone = rc == 0 && call->is_clone;
        if (parent && rc == 0)
            *parent = call->parent;
        s_call_free (call);
    }
    return rc;
}

int
sf_stor_clone_prune (sf_stor_t *self, const sf_stor_spec_t *clone, const char *catalog_id,
                     const char *job_id, sf_stor_obj_t *parent, sf_err_t *err)
{
    assert (self && clone);
    sf_stor_obj_t obj = { .kind = SF_STOR_CLONE, .spec = *clone };
    sf_stor_obj_t snap;
    bool exists;
    if (parent)
        memset (parent, 0, sizeof (*parent));
    //  Ours? Which snapshot it hangs on; an absent clone is done
    if (sf_stor_clone_check (self, &obj, catalog_id, job_id, &exists, &snap, err))
        return -1;
    if (!exists)
        return SF_STOR_PRUNE_GONE;
    if (parent)
        *parent = snap;
    if (sf_stor_clone_remove (self, clone, err))
        return -1;
    if (snap.kind != SF_STOR_SNAP)
        return SF_STOR_PRUNE_CLONE;
    //  The snapshot goes once no other clone needs it
    char name [600];
    sf_stor_obj_str (&snap, name, sizeof (name));
    call_t *call = s_call_new (S_OP_CHILDREN, &snap.spec, snap.snap);
    int rc = s_call (self, &call, err);
    size_t count = call ? call->count : 0;
    if (call)
        s_call_free (call);
    if (rc == 0 && count > 0) {
        SF_DEBUG (NULL, "ceph: %s stays: %zu other clone(s)", name, count);
        return SF_STOR_PRUNE_CLONE;
    }
    if (rc == 0)
        rc = sf_stor_snap_remove (self, &snap.spec, snap.snap, err);
    if (rc) {
        char clone_name [520];
        sf_stor_spec_str (clone, clone_name, sizeof (clone_name));
        return sf_err_prefix (err, "clone '%s' removed, not its snapshot '%s@%s'",
                              clone_name, sf_stor_spec_str (&snap.spec, name, sizeof (name)),
                              snap.snap);
    }
    return SF_STOR_PRUNE_SNAP;
}

int
sf_stor_cluster_id (sf_stor_t *self, char *buf, size_t size, sf_err_t *err)
{
    assert (self && buf && size);
    *buf = 0;
    call_t *call = s_call_new (S_OP_CLUSTER_ID, NULL, NULL);
    int rc = s_call (self, &call, err);
    if (call) {
        if (rc == 0)
            snprintf (buf, size, "%s", call->text);
        s_call_free (call);
    }
    return rc;
}

sf_stor_image_t *
sf_stor_image_open (sf_stor_t *self, const sf_stor_spec_t *spec, sf_err_t *err)
{
    assert (self && spec);
    call_t *call = s_call_new (S_OP_IMAGE_OPEN, spec, NULL);
    sf_stor_image_t *image = (sf_stor_image_t *) zmalloc (sizeof (sf_stor_image_t));
    image->spec = *spec;
    call->image = image;
    int rc = s_call (self, &call, err);
    if (!call)
        return NULL;            //  abandoned: its thread undoes the open
    s_call_free (call);
    if (rc == 0)
        return image;
    if (image->conn)
        s_image_free (self->core, image);
    else
        free (image);           //  the call never started
    return NULL;
}

uint64_t
sf_stor_image_size (sf_stor_image_t *image)
{
    assert (image);
    return image->size;
}

int
sf_stor_image_snap_create (sf_stor_t *self, sf_stor_image_t *image, const char *snap,
                           sf_err_t *err)
{
    assert (self && image && snap);
    call_t *call = s_call_new (S_OP_IMAGE_SNAP, &image->spec, snap);
    call->image = image;
    return s_call_simple (self, call, err);
}

//  librbd 16.2 (Debian 12) has no aio snapshot create in its C API
//  (rbd_aio_snap_create came later; librados' aio selfmanaged snapshot
//  would allocate an id without librbd's header update), so each image's
//  rbd_snap_create2 runs on its own call thread, all started before any
//  is waited for, under one deadline. The monitor batches the snapshot
//  ids the calls ask for into one osdmap commit: the round costs one
//  monitor interval whatever the number of images.

int
sf_stor_images_snap_create (sf_stor_t *self, sf_stor_image_t **images, size_t count,
                            const char *snap, sf_err_t *errs, sf_err_t *err)
{
    assert (self && images && snap && errs && err);
    core_t *core = self->core;
    call_t **calls = (call_t **) zmalloc ((count ? count : 1) * sizeof (call_t *));
    int64_t start = sf_time_mono_ms ();
    struct timespec deadline;
    s_deadline (core, &deadline);
    for (size_t i = 0; i < count; i++) {
        errs [i] = (sf_err_t) SF_ERR_INIT;
        calls [i] = s_call_new (S_OP_IMAGE_SNAP, &images [i]->spec, snap);
        calls [i]->image = images [i];
        if (s_call_start (self, calls [i], &errs [i])) {
            s_call_free (calls [i]);
            calls [i] = NULL;
        }
    }
    for (size_t i = 0; i < count; i++)
        if (calls [i]) {
            s_call_wait (self, &calls [i], &deadline, &errs [i]);
            if (calls [i])
                s_call_free (calls [i]);
        }
    free (calls);
    int64_t took = sf_time_mono_ms () - start;
    size_t failed = 0, first = count;
    for (size_t i = 0; i < count; i++)
        if (errs [i].code != SF_OK && failed++ == 0)
            first = i;
    if (failed == 0) {
        pthread_mutex_lock (&core->lock);
        core->rounds [core->next_round++ % S_ROUNDS] = took > 0 ? took : 1;
        pthread_mutex_unlock (&core->lock);
        return 0;
    }
    *err = errs [first];
    if (failed > 1) {
        size_t len = strlen (err->text);
        snprintf (err->text + len, sizeof (err->text) - len, " (and %zu more of %zu "
                  "snapshots failed)", failed - 1, count);
    }
    return -1;
}

int64_t
sf_stor_snap_round_ms (sf_stor_t *self)
{
    assert (self);
    int64_t ms = 0;
    pthread_mutex_lock (&self->core->lock);
    for (size_t i = 0; i < S_ROUNDS; i++)
        ms = self->core->rounds [i] > ms ? self->core->rounds [i] : ms;
    pthread_mutex_unlock (&self->core->lock);
    return ms;
}

void
sf_stor_image_close (sf_stor_t *self, sf_stor_image_t **image_p)
{
    assert (self && image_p);
    sf_stor_image_t *image = *image_p;
    if (!image)
        return;
    *image_p = NULL;
    core_t *core = self->core;
    pthread_mutex_lock (&core->lock);
    bool hung = image->busy;
    if (hung)
        image->close_pending = true;
    pthread_mutex_unlock (&core->lock);
    if (hung)
        return;                 //  the hung call's thread closes it
    call_t *call = s_call_new (S_OP_IMAGE_CLOSE, &image->spec, NULL);
    call->image = image;
    sf_err_t err = SF_ERR_INIT;
    int rc = s_call (self, &call, &err);
    if (call && !call->done) {
        //  Never started (too many calls hang): closing could hang too, so
        //  the image stays open; only its memory and connection are lost
        SF_WARN (NULL, "ceph: image '%s' left open: %s", image->spec.image, err.text);
        rc = 0;
    }
    if (call)
        s_call_free (call);     //  a finished or abandoned close frees the image
    if (rc)
        SF_WARN (NULL, "%s", err.text);
}

zlistx_t *
sf_stor_list (sf_stor_t *self, const sf_stor_spec_t *spec, const char *prefix,
              sf_err_t *err)
{
    assert (self && spec && prefix);
    call_t *call = s_call_new (S_OP_LIST, spec, NULL);
    snprintf (call->prefix, sizeof (call->prefix), "%s", prefix);
    call->objs = zlistx_new ();
    zlistx_set_destructor (call->objs, (zlistx_destructor_fn *) s_obj_destroy);
    zlistx_t *objs = NULL;
    if (s_call (self, &call, err) == 0) {
        objs = call->objs;
        call->objs = NULL;
    }
    if (call)
        s_call_free (call);
    return objs;
}

const sf_stor_cfg_t *
sf_stor_cfg (sf_stor_t *self)
{
    assert (self);
    return &self->core->cfg;
}

size_t
sf_stor_hung (sf_stor_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->core->lock);
    size_t hung = self->core->hung;
    pthread_mutex_unlock (&self->core->lock);
    return hung;
}

const char *
sf_stor_name (sf_stor_t *self)
{
    assert (self);
    return self->core->driver->name;
}

//  --------------------------------------------------------------------------
//  Self test (fake driver)

#define S_TEST_CAT      "0123456789abcdef"          //  a catalogue id
#define S_TEST_SNAP     "snapfleet-" S_TEST_CAT "-J1"

static sf_stor_spec_t
s_test_spec (const char *text)
{
    sf_stor_spec_t spec;
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_stor_spec_parse (text, &spec, &err);
    assert (rc == 0);
    return spec;
}

static void
s_test_names (void)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t spec;
    char buf [600];
    assert (sf_stor_spec_parse ("rbd/vm1", &spec, &err) == 0);
    assert (streq (spec.pool, "rbd") && streq (spec.image, "vm1") && !*spec.nspace);
    assert (sf_stor_spec_parse ("rbd/ns/vm1", &spec, &err) == 0);
    assert (streq (spec.nspace, "ns") && streq (sf_stor_spec_str (&spec, buf, sizeof (buf)),
                                                "rbd/ns/vm1"));
    const char *bad [] = { "vm1", "rbd/", "/vm1", "rbd//vm1", "rbd/vm1@s", "a/b/c/d",
                           "rbd/v m", "rbd/a\\b", "" };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        assert (sf_stor_spec_parse (bad [i], &spec, &err) == -1);
        assert (err.code == SF_EINVAL);
    }
    sf_stor_obj_t obj;
    assert (sf_stor_obj_parse ("snap rbd/vm1@snapfleet-J1\n", &obj, &err) == 0);
    assert (obj.kind == SF_STOR_SNAP && streq (obj.snap, "snapfleet-J1"));
    assert (streq (sf_stor_obj_str (&obj, buf, sizeof (buf)), "snap rbd/vm1@snapfleet-J1"));
    assert (sf_stor_obj_parse ("clone rbd/ns/vm1-snapfleet-J1", &obj, &err) == 0);
    assert (obj.kind == SF_STOR_CLONE && streq (obj.spec.nspace, "ns"));
    assert (streq (sf_stor_obj_str (&obj, buf, sizeof (buf)), "clone rbd/ns/vm1-snapfleet-J1"));
    assert (sf_stor_obj_parse ("snap rbd/vm1", &obj, &err) == -1);
    assert (sf_stor_obj_parse ("volume rbd/vm1", &obj, &err) == -1);
    assert (sf_stor_obj_parse ("clone rbd/vm1@x", &obj, &err) == -1);
}

static void
s_test_ops (sf_stor_t *stor, sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    sf_stor_spec_t clone = s_test_spec ("backup/vm1-snapfleet-" S_TEST_CAT "-J1");
    uint64_t size = 0;
    assert (sf_stor_size (stor, &vm1, &size, &err) == 0 && size == 1 << 20);
    sf_stor_spec_t nope = s_test_spec ("rbd/nope");
    assert (sf_stor_size (stor, &nope, &size, &err) == -1);
    assert (err.code == SF_ECEPH && strstr (err.text, "ceph: cannot open 'rbd/nope'"));

    assert (sf_stor_snap_create (stor, &vm1, S_TEST_SNAP, &err) == 0);
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_TEST_SNAP));
    assert (sf_stor_snap_create (stor, &vm1, S_TEST_SNAP, &err) == -1);
    assert (err.code == SF_EEXIST && strstr (err.text, "ceph: cannot snapshot 'rbd/vm1'"));
    assert (strstr (err.text, "exists"));
    assert (sf_stor_snap_create (stor, &vm1, "other", &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_TEST_SNAP, &err) == 0);
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_TEST_SNAP "!"));
    assert (sf_stor_clone (stor, &vm1, S_TEST_SNAP, &clone, &err) == 0);
    assert (sf_stor_fake_has (fake, "backup/vm1-snapfleet-" S_TEST_CAT "-J1"));
    assert (sf_stor_size (stor, &clone, &size, &err) == 0 && size == 1 << 20);
    //  Listing: only snapfleet-*, each snapshot after its clones
    zlistx_t *objs = sf_stor_list (stor, &vm1, "snapfleet-", &err);
    assert (objs && zlistx_size (objs) == 2);
    char line [600];
    sf_stor_obj_t *obj = (sf_stor_obj_t *) zlistx_first (objs);
    assert (streq (sf_stor_obj_str (obj, line, sizeof (line)),
                   "clone backup/vm1-snapfleet-" S_TEST_CAT "-J1"));
    obj = (sf_stor_obj_t *) zlistx_next (objs);
    assert (streq (sf_stor_obj_str (obj, line, sizeof (line)), "snap rbd/vm1@" S_TEST_SNAP));
    //  Existence, as a job checks its names before it creates them
    bool exists = false;
    assert (sf_stor_obj_exists (stor, obj, &exists, &err) == 0 && exists);
    sf_stor_obj_t absent = *obj;
    snprintf (absent.snap, sizeof (absent.snap), "snapfleet-" S_TEST_CAT "-J");
    assert (sf_stor_obj_exists (stor, &absent, &exists, &err) == 0 && !exists);
    absent = *(sf_stor_obj_t *) zlistx_first (objs);
    assert (sf_stor_obj_exists (stor, &absent, &exists, &err) == 0 && exists);
    snprintf (absent.spec.image, sizeof (absent.spec.image), "vm1-snapfleet-" S_TEST_CAT "-J");
    assert (sf_stor_obj_exists (stor, &absent, &exists, &err) == 0 && !exists);
    //  Only the job's own objects go: another job's, another catalogue's
    //  are refused and stay
    for (obj = (sf_stor_obj_t *) zlistx_first (objs); obj;
         obj = (sf_stor_obj_t *) zlistx_next (objs)) {
        assert (sf_stor_obj_remove (stor, obj, S_TEST_CAT, "J2", &err) == -1);
        assert (err.code == SF_EINVAL && strstr (err.text, "snapfleet made for job J2; "
                                                 "not deleted"));
        assert (sf_stor_obj_remove (stor, obj, "fedcba9876543210", "J1", &err) == -1);
        assert (err.code == SF_EINVAL);
    }
    assert (sf_stor_fake_objects (fake) == 3);
    //  A snapshot with a clone cannot go; in list order everything can
    assert (sf_stor_snap_remove (stor, &vm1, S_TEST_SNAP, &err) == -1);
    assert (err.code == SF_ECEPH && strstr (err.text, "'rbd/vm1@" S_TEST_SNAP "'"));
    for (obj = (sf_stor_obj_t *) zlistx_first (objs); obj;
         obj = (sf_stor_obj_t *) zlistx_next (objs))
        assert (sf_stor_obj_remove (stor, obj, S_TEST_CAT, "J1", &err) == 0);
    zlistx_destroy (&objs);
    assert (!sf_stor_fake_has (fake, "rbd/vm1@" S_TEST_SNAP));
    assert (!sf_stor_fake_has (fake, "backup/vm1-snapfleet-" S_TEST_CAT "-J1"));
    //  Removing what is gone is fine (cleanup is idempotent)
    assert (sf_stor_snap_remove (stor, &vm1, S_TEST_SNAP, &err) == 0);
    assert (sf_stor_snap_remove (stor, &nope, S_TEST_SNAP, &err) == 0);
    assert (sf_stor_clone_remove (stor, &clone, &err) == 0);
    assert (sf_stor_snap_remove (stor, &vm1, "other", &err) == 0);
    assert (sf_stor_fake_objects (fake) == 0);
    //  Injected failures keep Ceph's words
    sf_stor_fake_fail (fake, "snap_create", EIO);
    assert (sf_stor_snap_create (stor, &vm1, "s2", &err) == -1);
    assert (err.code == SF_ECEPH && strstr (err.text, "Input/output error"));
    assert (sf_stor_fake_connects (fake) == 1);     //  one connection for everything
    //  The qemu-img source, with ':' escaped
    char *uri = sf_stor_snap_uri (stor, &vm1, "snapfleet-J1");
    assert (streq (uri, "rbd:rbd/vm1@snapfleet-J1:id=backup:conf=/etc/ceph/a\\:b.conf"));
    zstr_free (&uri);
    uri = sf_stor_image_uri (stor, &vm1);
    assert (streq (uri, "rbd:rbd/vm1:id=backup:conf=/etc/ceph/a\\:b.conf"));
    zstr_free (&uri);
    //  A rename never replaces an image
    sf_stor_fake_add (fake, "rbd/vm2", 1 << 20);
    assert (sf_stor_rename (stor, &vm1, "vm2", &err) == -1 && err.code == SF_EEXIST);
    assert (sf_stor_fake_has (fake, "rbd/vm1") && sf_stor_fake_has (fake, "rbd/vm2"));
    sf_stor_spec_t vm2 = s_test_spec ("rbd/vm2"), vm3 = s_test_spec ("rbd/vm3");
    assert (sf_stor_clone_remove (stor, &vm2, &err) == 0);
    assert (sf_stor_rename (stor, &vm1, "vm3", &err) == 0);
    assert (!sf_stor_fake_has (fake, "rbd/vm1") && sf_stor_fake_has (fake, "rbd/vm3"));
    assert (sf_stor_rename (stor, &vm3, "vm1", &err) == 0);
    assert (sf_stor_rename (stor, &vm3, "vm4", &err) == -1 && err.code == SF_ECEPH);
}

//  Open images: a snapshot is one call; a hung call keeps the image until
//  it returns, and closes it if the owner closed it meanwhile

static void
s_test_images (sf_stor_t *stor, sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    sf_stor_spec_t nope = s_test_spec ("rbd/nope");
    assert (sf_stor_image_open (stor, &nope, &err) == NULL);
    assert (err.code == SF_ECEPH && strstr (err.text, "ceph: cannot open 'rbd/nope'"));
    sf_stor_image_t *image = sf_stor_image_open (stor, &vm1, &err);
    assert (image && sf_stor_image_size (image) == 1 << 20);
    size_t active = sf_stor_fake_active (fake);
    assert (sf_stor_image_snap_create (stor, image, "i1", &err) == 0);
    assert (sf_stor_fake_has (fake, "rbd/vm1@i1"));
    assert (sf_stor_image_snap_create (stor, image, "i1", &err) == -1);
    assert (err.code == SF_EEXIST && strstr (err.text, "ceph: cannot snapshot 'rbd/vm1'"));
    sf_stor_image_close (stor, &image);
    assert (image == NULL && sf_stor_fake_active (fake) == active - 1);
    //  Hung snapshot: the image is busy; closing it is left to that call
    image = sf_stor_image_open (stor, &vm1, &err);
    assert (image);
    sf_stor_fake_hang_at (fake, "snap_create");
    assert (sf_stor_image_snap_create (stor, image, "i2", &err) == -1);
    assert (err.code == SF_ETIMEDOUT && strstr (err.text, "snapshot of 'rbd/vm1' timed out"));
    //  Refused up front (the text names why), not after a deadline; no
    //  wall-clock bound here: a loaded CI machine can stall any thread
    assert (sf_stor_image_snap_create (stor, image, "i3", &err) == -1);
    assert (strstr (err.text, "earlier call on the image"));
    sf_stor_image_close (stor, &image);
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    for (int i = 0; i < 500 && sf_stor_fake_active (fake) > active - 1; i++)
        zclock_sleep (10);
    assert (sf_stor_fake_active (fake) <= active - 1);
    assert (sf_stor_snap_remove (stor, &vm1, "i1", &err) == 0);
    assert (sf_stor_snap_remove (stor, &vm1, "i2", &err) == 0);
    //  An open abandoned at its deadline is undone by its thread
    sf_stor_fake_hang (fake, true);
    assert (sf_stor_image_open (stor, &vm1, &err) == NULL && err.code == SF_ETIMEDOUT);
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
}

//  Several images at once: the calls overlap (three 300-ms snapshots take
//  about 300 ms, not 900); one failure is reported with the count of the
//  others, and the snapshots that were made stay for the caller

static void
s_test_images_at_once (sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_cfg_t cfg = { NULL, "/etc/ceph/ceph.conf", "admin", "", 5000 };
    sf_stor_t *stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor);
    const char *names [] = { "rbd/vm1", "rbd/m2", "rbd/m3" };
    sf_stor_image_t *images [3];
    sf_err_t errs [3];
    for (size_t i = 0; i < 3; i++) {
        if (i)
            sf_stor_fake_add (fake, names [i], 1 << 20);
        sf_stor_spec_t spec = s_test_spec (names [i]);
        images [i] = sf_stor_image_open (stor, &spec, &err);
        assert (images [i]);
    }
    assert (sf_stor_snap_round_ms (stor) == 0);
    sf_stor_fake_delay (fake, 300);
    int64_t start = sf_time_mono_ms ();
    assert (sf_stor_images_snap_create (stor, images, 3, "m1", errs, &err) == 0);
    int64_t took = sf_time_mono_ms () - start;
    assert (took >= 300 && took < 900);
    assert (sf_stor_snap_round_ms (stor) >= 300 && sf_stor_snap_round_ms (stor) <= took);
    //  The longest of the recent rounds: a short one does not hide it
    int64_t slow = sf_stor_snap_round_ms (stor);
    sf_stor_fake_delay (fake, 0);
    assert (sf_stor_images_snap_create (stor, images, 3, "m0", errs, &err) == 0);
    assert (sf_stor_snap_round_ms (stor) == slow);
    for (size_t i = 0; i < 3; i++) {
        sf_stor_spec_t spec = s_test_spec (names [i]);
        assert (sf_stor_snap_remove (stor, &spec, "m0", &err) == 0);
    }
    for (size_t i = 0; i < 3; i++) {
        assert (errs [i].code == SF_OK);
        char what [64];
        snprintf (what, sizeof (what), "%s@m1", names [i]);
        assert (sf_stor_fake_has (fake, what));
    }
    sf_stor_fake_delay (fake, 0);
    //  The same name again: every one exists
    assert (sf_stor_images_snap_create (stor, images, 3, "m1", errs, &err) == -1);
    assert (err.code == SF_EEXIST && strstr (err.text, "ceph: cannot snapshot 'rbd/vm1'"));
    assert (strstr (err.text, " (and 2 more of 3 snapshots failed)"));
    assert (errs [1].code == SF_EEXIST && errs [2].code == SF_EEXIST);
    //  One fails, the others are made
    sf_stor_fake_fail (fake, "snap_create", EIO);
    assert (sf_stor_images_snap_create (stor, images, 3, "m2", errs, &err) == -1);
    assert (err.code == SF_ECEPH && strstr (err.text, "Input/output error"));
    assert (!strstr (err.text, "more of"));
    size_t made = 0;
    for (size_t i = 0; i < 3; i++)
        made += errs [i].code == SF_OK;
    assert (made == 2);
    for (size_t i = 0; i < 3; i++) {
        sf_stor_spec_t spec = s_test_spec (names [i]);
        assert (sf_stor_snap_remove (stor, &spec, "m1", &err) == 0);
        assert (sf_stor_snap_remove (stor, &spec, "m2", &err) == 0);
        sf_stor_image_close (stor, &images [i]);
    }
    sf_stor_destroy (&stor);
}

//  Retention: a clone goes, its snapshot with the last clone only; only
//  what the job made

#define S_TEST_P(job)   "snapfleet-" S_TEST_CAT "-" job

static void
s_test_prune_refused (sf_stor_t *stor, sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    sf_stor_spec_t vm2 = s_test_spec ("rbd/vm2");
    sf_stor_fake_add (fake, "rbd/vm2", 1 << 20);
    size_t before = sf_stor_fake_objects (fake);
    //  Our clone name, but not a clone
    sf_stor_fake_add (fake, "rbd/plain-" S_TEST_P ("P4"), 1 << 20);
    sf_stor_spec_t plain = s_test_spec ("rbd/plain-" S_TEST_P ("P4"));
    assert (sf_stor_clone_prune (stor, &plain, S_TEST_CAT, "P4", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "image 'rbd/plain-" S_TEST_P ("P4")
                                             "' is not one snapfleet made for job P4; not "
                                             "deleted (it is not a clone)"));
    assert (sf_stor_fake_has (fake, "rbd/plain-" S_TEST_P ("P4")));
    //  Our clone name, but its parent snapshot is someone else's
    sf_stor_spec_t c4 = s_test_spec ("backup/vm1-" S_TEST_P ("P4"));
    assert (sf_stor_snap_create (stor, &vm1, "manual", &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, "manual", &err) == 0);
    assert (sf_stor_clone (stor, &vm1, "manual", &c4, &err) == 0);
    assert (sf_stor_clone_prune (stor, &c4, S_TEST_CAT, "P4", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "its parent is snap rbd/vm1@manual"));
    //  ... or of another image than its name says
    sf_stor_spec_t c5 = s_test_spec ("backup/vm1-" S_TEST_P ("P5"));
    assert (sf_stor_snap_create (stor, &vm2, S_TEST_P ("P5"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm2, S_TEST_P ("P5"), &err) == 0);
    assert (sf_stor_clone (stor, &vm2, S_TEST_P ("P5"), &c5, &err) == 0);
    assert (sf_stor_clone_prune (stor, &c5, S_TEST_CAT, "P5", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "its parent is snap rbd/vm2@"));
    //  Another job's, another catalogue's
    assert (sf_stor_clone_prune (stor, &c5, S_TEST_CAT, "P4", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "not the job's clone name"));
    assert (sf_stor_clone_prune (stor, &c5, "fedcba9876543210", "P5", NULL, &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (sf_stor_clone_prune (stor, &c5, NULL, "P5", NULL, &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (sf_stor_fake_objects (fake) == before + 4);     //  nothing touched
    //  The owners clean up
    assert (sf_stor_clone_remove (stor, &c4, &err) == 0);
    assert (sf_stor_clone_remove (stor, &c5, &err) == 0);
    assert (sf_stor_clone_remove (stor, &plain, &err) == 0);
    assert (sf_stor_snap_remove (stor, &vm1, "manual", &err) == 0);
    assert (sf_stor_snap_remove (stor, &vm2, S_TEST_P ("P5"), &err) == 0);
    assert (sf_stor_fake_objects (fake) == before);
}

static void
s_test_prune (sf_stor_t *stor, sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    sf_stor_spec_t c1 = s_test_spec ("backup/vm1-" S_TEST_P ("P1"));
    sf_stor_spec_t c2 = s_test_spec ("backup/ns/vm1-other");
    char fsid [64];
    assert (sf_stor_cluster_id (stor, fsid, sizeof (fsid), &err) == 0);
    assert (streq (fsid, SF_STOR_FAKE_FSID));

    assert (sf_stor_snap_create (stor, &vm1, S_TEST_P ("P1"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_TEST_P ("P1"), &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_TEST_P ("P1"), &c1, &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_TEST_P ("P1"), &c2, &err) == 0);
    //  A clone of our snapshot that someone else made and named: refused
    assert (sf_stor_clone_prune (stor, &c2, S_TEST_CAT, "P1", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && streq (err.text, "image 'backup/ns/vm1-other' is not one "
                                            "snapfleet made for job P1; not deleted (not the "
                                            "job's clone name)"));
    assert (sf_stor_fake_has (fake, "backup/ns/vm1-other"));
    //  One of two clones: the snapshot stays, protected
    sf_stor_obj_t parent;
    char line [600];
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P1", &parent, &err)
            == SF_STOR_PRUNE_CLONE);
    assert (streq (sf_stor_obj_str (&parent, line, sizeof (line)),
                   "snap rbd/vm1@" S_TEST_P ("P1")));
    assert (!sf_stor_fake_has (fake, "backup/vm1-" S_TEST_P ("P1")));
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_TEST_P ("P1") "!"));
    //  Gone already: done, nothing touched
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P1", &parent, &err)
            == SF_STOR_PRUNE_GONE);
    assert (parent.kind == 0);
    sf_stor_spec_t nopool = s_test_spec ("nopool/x-" S_TEST_P ("P1"));
    assert (sf_stor_clone_prune (stor, &nopool, S_TEST_CAT, "P1", NULL, &err)
            == SF_STOR_PRUNE_GONE);
    //  The last clone: the snapshot goes too
    assert (sf_stor_clone_remove (stor, &c2, &err) == 0);       //  its owner's
    assert (sf_stor_clone (stor, &vm1, S_TEST_P ("P1"), &c1, &err) == 0);
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P1", NULL, &err)
            == SF_STOR_PRUNE_SNAP);
    assert (!sf_stor_fake_has (fake, "backup/vm1-" S_TEST_P ("P1")));
    assert (!sf_stor_fake_has (fake, "rbd/vm1@" S_TEST_P ("P1")));
    assert (sf_stor_fake_objects (fake) == 0);
    s_test_prune_refused (stor, fake);
    //  Failures: before the clone goes nothing changes; after it, the
    //  error names the snapshot left (a retry finds the clone gone)
    sf_stor_spec_t c2p = s_test_spec ("backup/vm1-" S_TEST_P ("P2"));
    assert (sf_stor_snap_create (stor, &vm1, S_TEST_P ("P2"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_TEST_P ("P2"), &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_TEST_P ("P2"), &c2p, &err) == 0);
    sf_stor_fake_fail (fake, "clone_remove", EBUSY);
    assert (sf_stor_clone_prune (stor, &c2p, S_TEST_CAT, "P2", NULL, &err) == -1);
    assert (err.code == SF_ECEPH);
    assert (strstr (err.text, "ceph: cannot remove clone 'backup/vm1-" S_TEST_P ("P2") "'"));
    assert (sf_stor_fake_has (fake, "backup/vm1-" S_TEST_P ("P2")));
    sf_stor_fake_fail (fake, "snap_remove", EIO);
    assert (sf_stor_clone_prune (stor, &c2p, S_TEST_CAT, "P2", NULL, &err) == -1);
    assert (err.code == SF_ECEPH);
    assert (streq (err.text, "clone 'backup/vm1-" S_TEST_P ("P2") "' removed, not its "
                   "snapshot 'rbd/vm1@" S_TEST_P ("P2") "': ceph: cannot remove snapshot "
                   "'rbd/vm1@" S_TEST_P ("P2") "': Input/output error"));
    assert (!sf_stor_fake_has (fake, "backup/vm1-" S_TEST_P ("P2")));
    assert (sf_stor_snap_remove (stor, &vm1, S_TEST_P ("P2"), &err) == 0);
    //  A hung parent query: the deadline holds
    sf_stor_spec_t c3 = s_test_spec ("backup/vm1-" S_TEST_P ("P3"));
    assert (sf_stor_snap_create (stor, &vm1, S_TEST_P ("P3"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_TEST_P ("P3"), &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_TEST_P ("P3"), &c3, &err) == 0);
    sf_stor_fake_hang_at (fake, "children");
    assert (sf_stor_clone_prune (stor, &c3, S_TEST_CAT, "P3", NULL, &err) == -1);
    assert (err.code == SF_ETIMEDOUT);
    assert (strstr (err.text, "clone listing of 'rbd/vm1@" S_TEST_P ("P3") "' timed out"));
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    assert (sf_stor_snap_remove (stor, &vm1, S_TEST_P ("P3"), &err) == 0);
    assert (sf_stor_fake_objects (fake) == 0);
}

//  The same against a real cluster, when SF_TEST_CEPH_CONF names its
//  ceph.conf (client.admin): image, snapshot, two clones; the snapshot
//  stays protected after the first clone goes and goes with the second.
//  The image is made and checked with the rbd tool (test only).

static char *
s_test_shell (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *command = zsys_vprintf (format, args);
    va_end (args);
    FILE *pipe = popen (command, "r");      //  test only, not product code
    assert (pipe);
    char out [1024] = "";
    size_t got = fread (out, 1, sizeof (out) - 1, pipe);
    out [got] = 0;
    pclose (pipe);
    zstr_free (&command);
    return strdup (out);
}

static void
s_test_real_ceph (const char *conf)
{
#ifdef SF_WITH_RBD
    sf_err_t err = SF_ERR_INIT;
    char name [64], text [600];
    snprintf (name, sizeof (name), "sfprune-%d-%" PRId64, (int) getpid (),
              sf_time_mono_ms ());
    const char *rbd = "timeout -k 10 120 rbd -c";
    free (s_test_shell ("%s %s create --size 4M rbd/%s 2>&1", rbd, conf, name));
    sf_stor_cfg_t cfg = { "rbd", conf, "admin", "", 30000 };
    sf_stor_t *stor = sf_stor_new (&cfg, &err);
    assert (stor);
    char fsid [64];
    assert (sf_stor_cluster_id (stor, fsid, sizeof (fsid), &err) == 0);
    char *expect = s_test_shell ("timeout -k 10 120 ceph -c %s fsid", conf);
    assert (strlen (fsid) == 36 && strncmp (expect, fsid, 36) == 0);
    zstr_free (&expect);
    sf_stor_spec_t image, c1, c2;
    snprintf (text, sizeof (text), "rbd/%s", name);
    assert (sf_stor_spec_parse (text, &image, &err) == 0);
    snprintf (text, sizeof (text), "rbd/%s-" S_TEST_P ("P"), name);
    assert (sf_stor_spec_parse (text, &c1, &err) == 0);
    snprintf (text, sizeof (text), "rbd/%s-c2", name);
    assert (sf_stor_spec_parse (text, &c2, &err) == 0);
    assert (sf_stor_snap_create (stor, &image, S_TEST_P ("P"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &image, S_TEST_P ("P"), &err) == 0);
    assert (sf_stor_clone (stor, &image, S_TEST_P ("P"), &c1, &err) == 0);
    assert (sf_stor_clone (stor, &image, S_TEST_P ("P"), &c2, &err) == 0);
    const char *snaps = "%s %s snap ls rbd/%s --format json | jq -r "
                        "'.[] | \"\\(.name) \\(.protected)\"'";
    const char *images = "%s %s ls rbd | grep -c '^%s' || true";
    //  A clone not named for the job is refused, and stays
    assert (sf_stor_clone_prune (stor, &c2, S_TEST_CAT, "P", NULL, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "not deleted"));
    sf_stor_obj_t parent;
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P", &parent, &err)
            == SF_STOR_PRUNE_CLONE);
    snprintf (text, sizeof (text), "snap rbd/%s@" S_TEST_P ("P"), name);
    char line [600];
    assert (streq (sf_stor_obj_str (&parent, line, sizeof (line)), text));
    char *out = s_test_shell (snaps, rbd, conf, name);
    assert (streq (out, S_TEST_P ("P") " true\n"));
    zstr_free (&out);
    out = s_test_shell (images, rbd, conf, name);
    assert (streq (out, "2\n"));          //  the image and c2
    zstr_free (&out);
    assert (sf_stor_clone_remove (stor, &c2, &err) == 0);       //  its owner's
    assert (sf_stor_clone (stor, &image, S_TEST_P ("P"), &c1, &err) == 0);
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P", NULL, &err)
            == SF_STOR_PRUNE_SNAP);
    out = s_test_shell (snaps, rbd, conf, name);
    assert (streq (out, ""));
    zstr_free (&out);
    out = s_test_shell (images, rbd, conf, name);
    assert (streq (out, "1\n"));
    zstr_free (&out);
    assert (sf_stor_clone_prune (stor, &c1, S_TEST_CAT, "P", NULL, &err)
            == SF_STOR_PRUNE_GONE);
    sf_stor_destroy (&stor);
    free (s_test_shell ("%s %s rm --no-progress rbd/%s 2>&1", rbd, conf, name));
    printf ("[real ceph %s: ok] ", fsid);
#else
    (void) conf;
    printf ("[real ceph: SKIP, built without librbd] ");
#endif
}

static void
s_test_deadline (sf_stor_t *stor, sf_stor_fake_t *fake)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    //  A hung call: the caller gets ETIMEDOUT at the deadline
    sf_stor_fake_hang (fake, true);
    int64_t start = sf_time_mono_ms ();
    assert (sf_stor_snap_create (stor, &vm1, "s1", &err) == -1);
    int64_t took = sf_time_mono_ms () - start;
    assert (took >= 200 && took < 5000);
    assert (err.code == SF_ETIMEDOUT);
    assert (streq (err.text, "ceph: snapshot of 'rbd/vm1' timed out after 200ms "
                   "(cluster unreachable?)"));
    assert (sf_stor_hung (stor) == 1);
    //  Later calls do not queue behind it: a new connection, its own deadline
    uint64_t size;
    assert (sf_stor_size (stor, &vm1, &size, &err) == -1 && err.code == SF_ETIMEDOUT);
    assert (strstr (err.text, "size query of 'rbd/vm1' timed out"));
    assert (sf_stor_hung (stor) == 2);
    //  The cluster answers again: the hung calls finish and free themselves
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    assert (sf_stor_hung (stor) == 0);
    size_t connects = sf_stor_fake_connects (fake);
    assert (sf_stor_size (stor, &vm1, &size, &err) == 0);
    assert (sf_stor_fake_connects (fake) == connects + 1);
    //  The late snapshot did happen; remove it
    assert (sf_stor_snap_remove (stor, &vm1, "s1", &err) == 0);
    //  Too many hung calls: fail at once instead of adding threads
    sf_stor_fake_hang (fake, true);
    for (int i = 0; i < S_MAX_HUNG; i++)
        assert (sf_stor_size (stor, &vm1, &size, &err) == -1);
    assert (sf_stor_size (stor, &vm1, &size, &err) == -1 && err.code == SF_ETIMEDOUT);
    assert (strstr (err.text, "not tried"));
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    assert (sf_stor_hung (stor) == 0);
}

void
sf_stor_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_stor: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    s_test_names ();
    sf_stor_cfg_t cfg = { "nosuch", "", "admin", "", 1000 };
    assert (sf_stor_new (&cfg, &err) == NULL && err.code == SF_EINVAL);
    cfg.driver = "fake";        //  no production driver: tests inject it
    assert (sf_stor_new (&cfg, &err) == NULL && err.code == SF_EINVAL);

    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_fake_add (fake, "rbd/vm1", 1 << 20);
    cfg = (sf_stor_cfg_t) { NULL, "/etc/ceph/a:b.conf", "backup", "", 200 };
    sf_stor_t *stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor && streq (sf_stor_name (stor), "fake"));
    assert (sf_stor_fake_connects (fake) == 0);     //  lazy
    s_test_ops (stor, fake);
    s_test_images (stor, fake);
    s_test_images_at_once (fake);
    s_test_prune (stor, fake);
    s_test_deadline (stor, fake);
    sf_stor_destroy (&stor);
    assert (stor == NULL);

    //  A connect that fails: the error names Ceph; the next call retries
    stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    sf_stor_fake_fail (fake, "connect", ETIMEDOUT);
    sf_stor_spec_t vm1 = s_test_spec ("rbd/vm1");
    uint64_t size;
    assert (sf_stor_size (stor, &vm1, &size, &err) == -1 && err.code == SF_ECEPH);
    assert (strstr (err.text, "ceph: cannot connect"));
    assert (sf_stor_size (stor, &vm1, &size, &err) == 0);

    //  Destroyed while a call hangs: the call cleans up after itself
    sf_stor_fake_hang (fake, true);
    assert (sf_stor_snap_create (stor, &vm1, "late", &err) == -1);
    sf_stor_destroy (&stor);
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_fake_active (fake); i++)
        zclock_sleep (10);
    assert (sf_stor_fake_active (fake) == 0);
    sf_stor_fake_destroy (&fake);

    const char *ceph_conf = getenv ("SF_TEST_CEPH_CONF");
    if (ceph_conf && *ceph_conf)
        s_test_real_ceph (ceph_conf);
    else
        printf ("[real ceph: SKIP, SF_TEST_CEPH_CONF not set] ");
    //  @end
    printf ("OK\n");
}
