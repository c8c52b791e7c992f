/*  =========================================================================
    sf_stor - block-storage interface (Ceph RBD snapshots and clones), with
    a deadline on every call

    One sf_stor_t per worker, shared by every task thread and the leftover
    sweeper (all methods are thread-safe). It holds at most one cluster
    connection, opened lazily by the first call and reused by all later
    ones.

    Deadline: a blocking driver call (librbd can block forever when the
    cluster is gone) never runs on the caller's thread. Each call runs on a
    fresh detached thread; the caller waits on a condition variable until
    the call is done or op_timeout has passed. On a timeout the caller gets
    SF_ETIMEDOUT at once and the call is abandoned: its thread finishes (or
    hangs) on its own and frees what it holds, and the connection it used
    is dropped, so the next call opens a new one and never queues behind a
    hung one. At most S_MAX_HUNG abandoned calls may hang at once; beyond
    that calls fail at once instead of piling up threads.

    Errors name Ceph and the object: "ceph: cannot snapshot 'rbd/vm1': ...",
    "ceph: snapshot of 'rbd/vm1' timed out after 30s (cluster unreachable?)".
    Codes: SF_ECEPH (Ceph said no), SF_ETIMEDOUT (no answer in time),
    SF_EINVAL (bad spec), SF_ENOTSUP (driver cannot).

    This header is the client API. Drivers fill the table in
    sf_stor_driver.h: sf_stor_new picks a production driver by name ("rbd",
    librbd, sf_stor_rbd.c; built with SF_WITH_RBD); sf_stor_new_with takes
    any driver, so a test injects its own (libvirt's test-driver pattern).
    =========================================================================
*/
#ifndef SF_STOR_H_INCLUDED
#define SF_STOR_H_INCLUDED

typedef struct _sf_stor_t sf_stor_t;
typedef struct _sf_stor_image_t sf_stor_image_t;
typedef struct _sf_stor_driver_t sf_stor_driver_t;     //  sf_stor_driver.h

//  Where an RBD image is: "pool/image" or "pool/namespace/image"
typedef struct {
    char pool [128];
    char nspace [128];          //  "" = the default namespace
    char image [256];
} sf_stor_spec_t;

//  An object a job creates, for cleanup and the leftovers journal
#define SF_STOR_SNAP    1       //  snapshot 'snap' of image 'spec'
#define SF_STOR_CLONE   2       //  clone image 'spec'

typedef struct {
    int kind;                   //  SF_STOR_SNAP or SF_STOR_CLONE
    sf_stor_spec_t spec;
    char snap [256];            //  SNAP only
} sf_stor_obj_t;

//  Configuration ([storage.rbd]); strings are copied by sf_stor_new
typedef struct {
    const char *driver;         //  "rbd" (NULL means this)
    const char *ceph_conf;      //  path of ceph.conf
    const char *client_id;      //  cephx id without "client."
    const char *keyring;        //  NULL or "" = the one ceph_conf names
    int64_t op_timeout_ms;      //  deadline of each call
} sf_stor_cfg_t;

//  Create the storage client on the production driver cfg->driver names.
//  Does not connect: the first call does. Returns NULL with err
//  (SF_EINVAL: unknown driver or missing settings). Caller owns the result.
sf_stor_t *
    sf_stor_new (const sf_stor_cfg_t *cfg, sf_err_t *err);

//  The same on driver (any driver, a test's own included); arg is handed
//  to its connect (borrowed; must outlive the result and its calls).
//  cfg->driver is ignored. Caller owns the result.
sf_stor_t *
    sf_stor_new_with (const sf_stor_cfg_t *cfg, const sf_stor_driver_t *driver,
                      void *arg, sf_err_t *err);

//  Free. Calls still hanging keep what they need and free it when they
//  return. Nullifies *self_p.
void
    sf_stor_destroy (sf_stor_t **self_p);

//  Virtual size of an image in bytes. Returns 0 or -1 with err.
int
    sf_stor_size (sf_stor_t *self, const sf_stor_spec_t *spec, uint64_t *size,
                  sf_err_t *err);

//  Create snapshot snap of spec (RBD_SNAP_CREATE_SKIP_QUIESCE: the caller
//  freezes or pauses the guest itself). SF_EEXIST if it exists.
int
    sf_stor_snap_create (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                         sf_err_t *err);

//  Protect snapshot snap of spec (clones need it).
int
    sf_stor_snap_protect (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                          sf_err_t *err);

//  Remove snapshot snap of spec, unprotecting it first. Absent is fine.
//  Fails while clones of it exist (remove those first).
int
    sf_stor_snap_remove (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                         sf_err_t *err);

//  Clone protected snapshot snap of spec as image clone. SF_EEXIST if an
//  image of that name exists.
int
    sf_stor_clone (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap,
                   const sf_stor_spec_t *clone, sf_err_t *err);

//  Remove clone image clone. Absent is fine.
int
    sf_stor_clone_remove (sf_stor_t *self, const sf_stor_spec_t *clone, sf_err_t *err);

//  What sf_stor_clone_prune did
#define SF_STOR_PRUNE_GONE      0   //  nothing: the clone was absent
#define SF_STOR_PRUNE_CLONE     1   //  removed the clone; its snapshot stays
                                    //  (other clones need it, or none to remove)
#define SF_STOR_PRUNE_SNAP      2   //  removed the clone and its parent snapshot

//  Retention: remove clone image clone, then its parent snapshot if no
//  other clone needs it (unprotected first); a snapshot that still has
//  clones stays protected. Only what job_id of catalog_id made goes
//  (sf_stor_obj_check_ours; else SF_EINVAL and nothing is touched). Each
//  step is one call with its own deadline (parent, clone removal,
//  children, snapshot removal). An absent clone is done. If parent is not
//  NULL it gets the parent snapshot (kind SF_STOR_SNAP), or kind 0 if
//  none was found. Returns SF_STOR_PRUNE_* or -1 with err (a failure
//  after the clone went names the snapshot left).
int
    sf_stor_clone_prune (sf_stor_t *self, const sf_stor_spec_t *clone,
                         const char *catalog_id, const char *job_id,
                         sf_stor_obj_t *parent, sf_err_t *err);

//  What image clone is: *exists false if it is absent; else *is_clone
//  true if it has a parent, and parent (not NULL) gets that snapshot
//  (kind SF_STOR_SNAP) when Ceph names it (not in the trash), else kind
//  0. Returns 0 or -1 with err.
int
    sf_stor_parent (sf_stor_t *self, const sf_stor_spec_t *clone, bool *exists,
                    bool *is_clone, sf_stor_obj_t *parent, sf_err_t *err);

//  Does obj exist now (a snapshot of its image; a clone image by its
//  name, whatever it is)? Returns 0 with *exists, or -1 with err.
int
    sf_stor_obj_exists (sf_stor_t *self, const sf_stor_obj_t *obj, bool *exists,
                        sf_err_t *err);

//  The clone part of sf_stor_obj_check_ours for obj (kind SF_STOR_CLONE):
//  0 if ours (or absent: *exists false), with *snap its parent snapshot
//  (kind 0 if Ceph names none); else -1 with err as there.
int
    sf_stor_clone_check (sf_stor_t *self, const sf_stor_obj_t *obj, const char *catalog_id,
                         const char *job_id, bool *exists, sf_stor_obj_t *snap,
                         sf_err_t *err);

//  Is obj one that job_id of catalog_id made (sf_naming)? A snapshot if
//  its name is the job's snapshot name; a clone if its name is the job's
//  clone name and, when it exists, it is a clone (has a parent) of the
//  image its name says, from a snapshot named for the job (a parent in
//  the trash has no name to check). Returns 0 (ours, or an absent clone
//  with the job's name), or -1 with err: SF_EINVAL "image 'X' is not one
//  snapfleet made for job J; not deleted" (or "snapshot 'X' ..."), or
//  Ceph's error.
int
    sf_stor_obj_check_ours (sf_stor_t *self, const sf_stor_obj_t *obj,
                            const char *catalog_id, const char *job_id, sf_err_t *err);

//  The Ceph cluster's fsid (a UUID) into buf (at least 37 bytes). Returns
//  0 or -1 with err.
int
    sf_stor_cluster_id (sf_stor_t *self, char *buf, size_t size, sf_err_t *err);

//  Remove one object (snap_remove or clone_remove) if
//  sf_stor_obj_check_ours says job_id of catalog_id made it; else -1
//  with err (SF_EINVAL) and nothing touched. Absent is fine.
int
    sf_stor_obj_remove (sf_stor_t *self, const sf_stor_obj_t *obj, const char *catalog_id,
                        const char *job_id, sf_err_t *err);

//  Open image spec and keep it open, so that a later snapshot is one
//  call to the cluster (a job opens its images before the pause). Returns
//  the open image (close it with sf_stor_image_close) or NULL with err.
sf_stor_image_t *
    sf_stor_image_open (sf_stor_t *self, const sf_stor_spec_t *spec, sf_err_t *err);

//  Virtual size of an open image in bytes (read when it was opened).
uint64_t
    sf_stor_image_size (sf_stor_image_t *image);

//  Snapshot an open image, as sf_stor_snap_create. After a call on the
//  image was abandoned at its deadline, calls on it fail at once until
//  that call returns.
int
    sf_stor_image_snap_create (sf_stor_t *self, sf_stor_image_t *image, const char *snap,
                               sf_err_t *err);

//  Snapshot count open images at once, as snap (sf_stor_image_snap_create
//  on each, all started together, one op_timeout for all): the Ceph
//  monitor's round is paid once, not once per image. errs [i] gets image
//  i's outcome (code SF_OK if its snapshot was made). Returns 0, or -1
//  with err the first failure's (its text counts the others); the
//  snapshots that were made stay (the caller removes its own).
int
    sf_stor_images_snap_create (sf_stor_t *self, sf_stor_image_t **images, size_t count,
                                const char *snap, sf_err_t *errs, sf_err_t *err);

//  The longest of the last 8 sf_stor_images_snap_create that succeeded,
//  each from its start to its last snapshot (ms; 0 if none yet): mostly
//  the wait for the monitor. With Ceph's default paxos interval (1 s) a
//  round waits for the monitor's next batch, anywhere up to ~1 s, so one
//  round alone can look short; the recent longest says what a guest may
//  have to wait.
int64_t
    sf_stor_snap_round_ms (sf_stor_t *self);

//  Close an open image (with the deadline; if a call on it still hangs,
//  that call's thread closes it when it returns). Nullifies *image_p.
void
    sf_stor_image_close (sf_stor_t *self, sf_stor_image_t **image_p);

//  The snapshots of spec whose names start with prefix ("snapfleet-"),
//  each preceded by its clones, as a new list of sf_stor_obj_t * (caller
//  owns it; destroying the list frees the objects), in an order in which
//  they can be removed. NULL with err.
zlistx_t *
    sf_stor_list (sf_stor_t *self, const sf_stor_spec_t *spec, const char *prefix,
                  sf_err_t *err);

//  The source qemu-img reads snapshot snap of spec from:
//  "rbd:pool/image@snap:id=ID:conf=CONF[:keyring=K]" (snap NULL: the
//  image itself). Caller frees.
char *
    sf_stor_snap_uri (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap);

//  The image spec itself as qemu-img reads or writes it (sf_stor_snap_uri
//  without a snapshot). Caller frees.
char *
    sf_stor_image_uri (sf_stor_t *self, const sf_stor_spec_t *spec);

//  Rename image spec to name (same pool and namespace). SF_EEXIST if an
//  image of that name exists (Ceph's own check: it never replaces one).
int
    sf_stor_rename (sf_stor_t *self, const sf_stor_spec_t *spec, const char *name,
                    sf_err_t *err);

//  The configuration the client was made with (its strings).
const sf_stor_cfg_t *
    sf_stor_cfg (sf_stor_t *self);

//  Calls abandoned at their deadline that have not returned yet.
size_t
    sf_stor_hung (sf_stor_t *self);

//  Name of the driver ("rbd", or an injected one's).
const char *
    sf_stor_name (sf_stor_t *self);

//  Parse "pool/image" or "pool/namespace/image" (no "@snap"). Returns 0
//  or -1 with err (SF_EINVAL).
int
    sf_stor_spec_parse (const char *text, sf_stor_spec_t *spec, sf_err_t *err);

//  "pool/image" or "pool/namespace/image" into buf; returns buf.
const char *
    sf_stor_spec_str (const sf_stor_spec_t *spec, char *buf, size_t size);

//  One object as a line: "snap POOL/IMAGE@SNAP" or "clone POOL/IMAGE";
//  returns buf. And back; returns 0 or -1 with err.
const char *
    sf_stor_obj_str (const sf_stor_obj_t *obj, char *buf, size_t size);
int
    sf_stor_obj_parse (const char *line, sf_stor_obj_t *obj, sf_err_t *err);

//  Self test of this class
void
    sf_stor_test (bool verbose);

#endif
