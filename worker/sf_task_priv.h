/*  =========================================================================
    sf_task_priv - private to sf_task.c and sf_task_rbd.c: the task's state
    and the steps one file hands the other. Not part of the worker's API:
    nothing else includes it.
    =========================================================================
*/
#ifndef SF_TASK_PRIV_H_INCLUDED
#define SF_TASK_PRIV_H_INCLUDED

//  One disk to convert into scratch and store: a file disk, or an RBD
//  disk's snapshot in export mode
typedef struct {
    const sf_hv_disk_t *disk;       //  Borrowed from task->domain
    char *path;                     //  Owned, scratch file
    uint64_t bytes;
} part_t;

//  One RBD disk
typedef struct {
    const sf_hv_disk_t *disk;       //  Borrowed from task->domain
    sf_stor_spec_t spec;            //  the image
    sf_stor_spec_t clone;           //  clone mode: the clone to make
    char snap [160];                //  sf_naming_snap (catalog_id, job_id)
    bool snap_foreign;              //  existed before we made it: not ours
    bool clone_foreign;             //  the same for the clone
    sf_stor_image_t *image;         //  Owned, open from before to after the window
} rbd_t;

//  The previous point of one disk an incremental run may build on
//  (JobAssign.incremental)
typedef struct {
    char *target;                   //  Owned, the disk's target
    char *base_id;                  //  Owned, the image in the store
    char *base_path;                //  Owned, as the scheduler recorded it
    char *checkpoint;               //  Owned, the checkpoint made with it
} incr_t;

//  One file disk copied live (file-live, mixed): its backup target (the
//  part's path) and the overlay of the fallback
typedef struct {
    const sf_hv_disk_t *disk;       //  Borrowed from task->domain
    const incr_t *base;             //  Borrowed, the point this copy builds
                                    //  on (incremental backup), NULL: full
    char *target;                   //  Owned, <scratch>/<target>.qcow2
    char *overlay;                  //  Owned, <scratch>/<target>.overlay.qcow2
    bool overlay_made;              //  the overlay file exists
    bool on_overlay;                //  the guest writes into the overlay
} live_t;

//  How the file disks are copied
typedef enum {
    LIVE_NONE,                      //  converted inside the window (file-cold)
    LIVE_BACKUP,                    //  push backup, begun inside the window
    LIVE_SNAPSHOT,                  //  external snapshot inside the window,
                                    //  frozen layer converted, then committed
} live_method_t;

typedef enum {
    S_FILE_COLD,
    S_FILE_LIVE,
    S_RBD,
    S_MIXED,
    S_OFFLINE,
} kind_t;

typedef struct {
    zsock_t *pipe;                  //  Borrowed, the actor pipe
    char *job_id, *uuid, *strategy, *uri, *workdir, *exe, *run_id;
    char catalog_id [SF_NAMING_ID_LEN + 1];     //  "" if JobAssign had none valid
    uint32_t attempt;
    int64_t max_pause_ms;
    kind_t kind;
    bool pausing;                   //  file-cold, rbd, mixed (else offline)
    bool no_freeze;                 //  tests: never freeze
    bool wait_grant;                //  wait for GRANT before the upload
    sf_bucket_t *bucket;            //  Owned, the upload's rate; reads the pipe
    sf_logctx_t ctx;                //  job_id, vm name (borrowed from here)
    sf_hv_t *hv;                    //  Owned
    sf_conv_t *conv;                //  Borrowed from the agent
    sf_imgstore_t *store;           //  Borrowed from the agent
    sf_hv_domain_t *domain;         //  Owned
    char *scratch;                  //  Owned, <workdir>/<job_id>
    part_t parts [SF_WIRE_MAX_DISKS];
    size_t n_parts;
    sf_image_rec_t images [SF_WIRE_MAX_DISKS];
    size_t n_images;
    //  Ceph
    sf_stor_t *stor;                //  Borrowed from the agent, NULL = RBD off
    sf_leftover_t *leftovers;       //  Borrowed from the agent
    sf_joblog_t *joblog;            //  Borrowed from the agent, may be NULL
    bool export_mode;               //  [storage.rbd] mode = export
    bool rbd_backup;                //  [storage.rbd] snapshot = backup: RBD disks
                                    //  are copied live (kind is S_FILE_LIVE)
    char *clone_pool;               //  Owned, "" = the image's pool
    rbd_t rbds [SF_WIRE_MAX_DISKS];
    size_t n_rbds;
    bool claimed;                   //  we hold the leftovers claim of job_id
    bool recorded;                  //  the leftovers entry lists our objects
    bool made;                      //  a snapshot may exist (a call was made)
    bool ceph_timeout;              //  a Ceph call was abandoned at its deadline
    int64_t rbd_round_ms;           //  the snapshots of every RBD disk took this long
    int64_t rbd_recent_ms;          //  the node's longest recent round (sf_stor)
    //  Pause state
    bool was_paused;                //  paused by someone else before the job
    bool paused;                    //  we suspended it and have not resumed
    bool suspended;                 //  we suspended it in this job (a retry
                                    //  would pause it a second time)
    bool frozen;                    //  we froze it and have not thawed
    bool journaled;                 //  our journal entry exists
    bool stuck;                     //  resume or thaw failed, guard too
    sf_proc_t *guard;               //  Owned, while paused or frozen
    //  pause_ms runs from the start of the freeze/suspend call to the
    //  return of the thaw/resume call (contract-rbd.md), the longest the
    //  guest can have been held. The freeze/suspend call's own duration
    //  goes out as the PAUSED event's ms.
    int64_t pause_start;            //  mono ms, freeze/suspend call started
    int64_t pause_deadline;         //  mono ms
    //  Live copies of the file disks (sf_task_live.c)
    live_method_t live;             //  how the file disks are being copied
    bool live_tried;                //  the live copy was started (or refused)
    int64_t live_start;             //  mono ms, the copy began
    bool backup_running;            //  our backup job may still run
    live_t lives [SF_WIRE_MAX_DISKS];
    size_t n_lives;
    char method [400];              //  which method ran, for the events
    //  Incremental copies (sf_task_live.c)
    incr_t incrs [SF_WIRE_MAX_DISKS];   //  what the scheduler offered
    size_t n_incrs;
    char checkpoint [160];          //  the checkpoint this job made, "" none
    char since [160];               //  the backup copied changes since this
                                    //  checkpoint, "" = a full copy
    char full_reason [400];         //  offered incremental, ran full: why
    //  Results
    const char *consistency;        //  "paused", "frozen", "offline"
    uint64_t pause_ms, convert_ms, upload_ms, bytes;
    bool resumed;                   //  confirmed running at the end
    char note [256];                //  result text on success, if any
    char *domain_xml;               //  Owned: the guest's inactive XML at the
                                    //  job's start, NULL if none (issue 13)
    sf_err_t err;
    bool retryable;                 //  failed before any pause, for a cause
                                    //  that may pass (store or Ceph away)
} task_t;

//  --------------------------------------------------------------------------
//  sf_task.c, for the RBD steps

//  Add a note to the result text (success) or the log
void
    sf_task_note (task_t *self, const char *text);

//  Convert disk (as given, or source/format overridden) into a new part.
//  Returns 0 or -1 with self->err.
int
    sf_task_convert_one (task_t *self, const sf_hv_disk_t *disk, const char *source,
                         const char *format, int64_t deadline);

//  A CANCEL (or $TERM) waits on the pipe? Then err is SF_ECANCELED.
bool
    sf_task_cancelled (task_t *self);

//  --------------------------------------------------------------------------
//  sf_task_live.c: the live copies of file disks (file-live, and mixed).
//  Each returns 0 at once when the job copies no file disk live.

//  True if the job copies its file disks live (file-live; mixed with file
//  disks)
bool
    sf_task_live_wanted (task_t *self);
//  Before the pause: make the backup targets and the overlays, for QEMU's
//  user to write
int
    sf_task_live_prepare (task_t *self);
//  In the window: begin the backup, or (refused) take the external
//  snapshot; both refused: mixed goes on with LIVE_NONE (converted in the
//  window), file-live fails SF_ENOTSUP
int
    sf_task_live_start (task_t *self);
//  After the window: wait for the backup (and for QEMU to let go of the
//  targets), or convert the frozen layers and commit the overlays back;
//  the copies become parts
int
    sf_task_live_finish (task_t *self);
//  Failure: abort our backup job, commit overlays back (the guest never
//  stays on one of ours), keep an overlay the guest still uses
void
    sf_task_live_cleanup (task_t *self);
//  Free what the live state owns
void
    sf_task_live_destroy (task_t *self);
//  Take JobAssign.incremental's offer (copied)
void
    sf_task_live_offer (task_t *self, const sf_incremental_t *incremental);
//  The chain of the image of disk_target: the image it is an overlay on
//  ("" for a full copy) and the checkpoint made with it ("" none)
void
    sf_task_live_chain (task_t *self, const char *disk_target, const char **parent_id,
                        const char **checkpoint);

//  --------------------------------------------------------------------------
//  sf_task_rbd.c: the RBD steps. Each returns 0 at once when the job has
//  no RBD disk (or nothing to do in its mode), else 0 or -1 with self->err.

//  Before the pause: open the images, claim and record the job's objects
int
    sf_task_rbd_prepare (task_t *self);
//  In the window: snapshot every image
int
    sf_task_rbd_snapshot (task_t *self);
//  Close the open images (after the window, or on failure)
void
    sf_task_rbd_close (task_t *self);
//  Mode export: convert every snapshot into a part
int
    sf_task_rbd_export (task_t *self);
//  "RBD snapshot (N disks at once) waited MS ms for the Ceph monitor", or
//  "" when the node's recent rounds were short; into buf, returned. For
//  the RESUMED event.
const char *
    sf_task_rbd_wait_text (task_t *self, char *buf, size_t size);
//  Mode clone: protect and clone rbd's snapshot; the clone is an image
int
    sf_task_rbd_clone (task_t *self, rbd_t *rbd);
//  Success: the clones are the product; exported snapshots go
void
    sf_task_rbd_finish (task_t *self);
//  Failure: remove what the job made in Ceph, or leave it to the sweeper
void
    sf_task_rbd_cleanup (task_t *self);

//  --------------------------------------------------------------------------
//  Self-test helpers (sf_task.c) and the RBD self test (sf_task_rbd.c)

//  Run one job to its result; return the decoded result. phases gets the
//  event phases in order as letters (q p r c u); paused_text (if not
//  NULL) the PAUSED event's text.
sf_envelope_t *
    sf_task_test_job_text (sf_task_args_t *args, char *phases, bool cancel_when_paused,
                           char *paused_text, size_t size);

//  What a test does when its job says PAUSED (arg as given)
typedef void (sf_task_test_paused_fn) (zactor_t *task, void *arg);

//  The same with on_paused (with arg) called at the PAUSED event
sf_envelope_t *
    sf_task_test_job_with (sf_task_args_t *args, char *phases,
                           sf_task_test_paused_fn *on_paused,
                           void *arg, char *paused_text, size_t size);

//  Run one job that waits for its upload grant (see sf_task.c)
sf_envelope_t *
    sf_task_test_job_grant (sf_task_args_t *args, char *phases, int64_t rate,
                            int change_ms, uint64_t new_rate, uint64_t *wait_bytes);

//  RBD, mixed and offline-with-RBD jobs against a test cluster, on the
//  node sf_task_test_node wrote into dir (uri), with the guard exe
void
    sf_task_rbd_test (const char *dir, const char *uri, const char *exe);

#endif
