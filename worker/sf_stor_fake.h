/*  =========================================================================
    sf_stor_fake - the fake Ceph cluster (unit tests only): images,
    snapshots with a protected flag, clones with their parent; every
    operation can be made to fail, to hang until released, or to take a
    while.

    No production code includes this header. A test builds a cluster and
    injects it:
        sf_stor_fake_t *fake = sf_stor_fake_new ();
        sf_stor_t *stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    =========================================================================
*/
#ifndef SF_STOR_FAKE_H_INCLUDED
#define SF_STOR_FAKE_H_INCLUDED

typedef struct _sf_stor_fake_t sf_stor_fake_t;

//  An empty cluster. Caller owns it and destroys it after every sf_stor_t
//  on it (and every call of theirs) is gone.
sf_stor_fake_t *
    sf_stor_fake_new (void);
//  Destroy; every hang must have been released and every call returned.
void
    sf_stor_fake_destroy (sf_stor_fake_t **self_p);
//  Add image "pool/image" of size bytes.
void
    sf_stor_fake_add (sf_stor_fake_t *self, const char *spec, uint64_t size);
//  While set, every call (connect included) blocks until it is cleared.
void
    sf_stor_fake_hang (sf_stor_fake_t *self, bool hang);
//  From the next call of op on, every call hangs (the cluster went away
//  at that moment), until sf_stor_fake_hang (self, false).
void
    sf_stor_fake_hang_at (sf_stor_fake_t *self, const char *op);
//  The next call of op ("snap_create", "clone", ...) fails with errno.
void
    sf_stor_fake_fail (sf_stor_fake_t *self, const char *op, int errno_value);
//  Every snapshot create takes ms milliseconds.
void
    sf_stor_fake_delay (sf_stor_fake_t *self, int64_t ms);
//  True if "pool/image" or "pool/image@snap" exists; "@snap!" asks if the
//  snapshot is protected.
bool
    sf_stor_fake_has (sf_stor_fake_t *self, const char *what);
//  Snapshots plus clones in the cluster.
size_t
    sf_stor_fake_objects (sf_stor_fake_t *self);
//  Calls running now (hung ones included); connects made so far.
size_t
    sf_stor_fake_active (sf_stor_fake_t *self);
size_t
    sf_stor_fake_connects (sf_stor_fake_t *self);

//  The fsid the fake cluster reports
#define SF_STOR_FAKE_FSID "5e5f7a3c-0000-4000-8000-00000000fa4e"

//  The driver to hand sf_stor_new_with, with the cluster as its arg
extern const sf_stor_driver_t sf_stor_fake_driver;

#endif
