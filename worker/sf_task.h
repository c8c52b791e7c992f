/*  =========================================================================
    sf_task - one snapshot job, run as a zactor so that the agent's event
    loop never blocks on libvirt, qemu-img or the image store

    Strategies (contract.md, contract-rbd.md):
      file-cold  check scratch space, journal + pause guard, suspend, emit
                 PAUSED, convert every data disk to <workdir>/<job>/
                 <target>.qcow2, resume, emit RESUMED (ms = pause_ms) and
                 CONVERTED, store every image, emit UPLOADED, confirm the
                 guest runs (result.resumed), remove the scratch files.
      file-live  make the copies' targets (sf_task_live.c), journal + guard,
                 freeze the guest's filesystems (or, if no agent answers,
                 suspend it), begin a push backup of every file disk (or,
                 where the backup API is refused, an external disk-only
                 snapshot), thaw/resume at once; then wait for the copy
                 (or convert the frozen layers and commit the overlays
                 back) while the guest runs, emit CONVERTED (its text says
                 which method ran), store every image as file-cold does.
      rbd        record the Ceph objects the job will make (sf_leftover),
                 journal + guard, freeze the guest's filesystems (or, if no
                 guest agent answers, suspend it: the PAUSED text says why),
                 snapshot every RBD disk, thaw/resume; then per disk clone
                 the snapshot (mode clone: protect + clone, an Image with
                 store "rbd") or export it with qemu-img into the image
                 store and remove the snapshot (mode export).
      mixed      the same, and the file disks' live copies begin in the one
                 freeze-or-pause window (as file-live's); only where neither
                 the backup API nor external snapshots are available are they
                 converted inside it (frozen guests are then suspended too).
      offline    (shut-off domain) no pause: snapshot RBD disks, convert
                 file disks, then as above.
    pause_ms runs from the start of the freeze/suspend call to the return
    of the thaw/resume call. consistency: "frozen", "paused" or "offline".
    Every failure after the freeze or suspend thaws/resumes the guest (the
    error says if that failed too), removes scratch files, rolls back stored
    images and removes the snapshots and clones the job made; what Ceph
    cannot remove now stays in the leftovers journal for the sweeper.
    A guest that was already paused before the job is snapshotted as it is
    and left paused: only what the task paused is resumed. Before anything
    that pauses, the task marks its job journal entry (sf_joblog_pausing):
    a worker restarted after that reports the job not retryable.

    With wait_upload_grant, once the capture is over (after CONVERTED) a
    job with bytes for the image store emits UPLOAD_WAIT (bytes = what it
    will store) and waits for "GRANT"; it stores at the granted rate, which
    "RATE" changes while it runs (sf_bucket). A job with nothing to store
    (RBD clone mode) does not wait. Without it, the upload starts at once,
    unlimited.

    The actor talks to its owner on the pipe:
      to the task:    "CANCEL"   stop at the next safe point (kills a
                                 running qemu-img), then fail ECANCELED
                      "GRANT" + rate  the upload may start at rate bytes/s
                                 (decimal string, "0" = unlimited)
                      "RATE" + rate   new rate for the running upload
                      "$TERM"    after the result: end the actor (before
                                 it: as CANCEL)
      from the task:  "EVENT" + frame    encoded Envelope{JobEvent}
                      "RESULT" + frame   encoded Envelope{JobResult}; last
    =========================================================================
*/
#ifndef SF_TASK_H_INCLUDED
#define SF_TASK_H_INCLUDED

//  What a task needs; every string is copied before sf_task_new returns
typedef struct {
    const char *job_id;
    uint32_t attempt;
    const char *instance_uuid;
    const char *strategy;           //  "file-cold", "rbd", "mixed", "offline"
    const char *uri;                //  hypervisor
    const char *workdir;            //  scratch + journal
    const char *exe;                //  this program, for the pause guard
    const char *run_id;             //  this worker run, for the pause journal
    int64_t max_pause_ms;           //  guard deadline
    sf_imgstore_t *store;           //  where images go (borrowed)
    sf_conv_t *conv;                //  disk converter (borrowed), never NULL
    sf_stor_t *stor;                //  RBD storage (borrowed), NULL = RBD off
    sf_leftover_t *leftovers;       //  Ceph objects journal (borrowed); with stor
    const char *rbd_mode;           //  "clone" (NULL means this) or "export"
    const char *clone_pool;         //  NULL or "" = each image's own pool
    bool no_freeze;                 //  unit tests: act as if no agent answered
    bool wait_upload_grant;         //  JobAssign.wait_upload_grant
    const char *catalog_id;         //  JobAssign.catalog_id: names the job's
                                    //  objects (sf_naming); invalid fails the job
    sf_joblog_t *joblog;            //  job journal (borrowed), NULL = none: the
                                    //  task marks its entry before it pauses
    bool rbd_backup;                //  [storage.rbd] snapshot = backup: rbd and
                                    //  mixed copy RBD disks as file-live does
} sf_task_args_t;

//  Start the job in a new actor. Returns the actor (caller destroys it
//  after the RESULT message, or to abandon it: then it stops as on CANCEL
//  and the result is lost).
zactor_t *
    sf_task_new (const sf_task_args_t *args);

//  sf_task_new, offered JobAssign.incremental (NULL: none; copied): a
//  file-live job copies only what changed since that previous point
zactor_t *
    sf_task_new_incremental (const sf_task_args_t *args,
                             const sf_incremental_t *incremental);

//  Remove a job scratch directory (<workdir>/<job>) if it holds nothing
//  but the files a job makes there, <target>.qcow2 and <target>.qcow2.tmp
//  (target: 1..32 of [a-z0-9]), regular files. Never follows a symlink
//  (sf_dir_remove_at): a symlink in place of the directory or inside it is
//  left, and its target untouched. Returns 0 if it is gone (or never
//  existed), -1 if it holds anything else or is not a directory (then only
//  our files were removed).
int
    sf_task_scratch_clean (const char *path);

//  True if the scratch directory at path holds a file-live overlay
//  (<target>.overlay.qcow2): a worker killed between the external snapshot
//  and the commit leaves the guest running on it (never removed here).
bool
    sf_task_scratch_has_overlay (const char *path);

//  For self tests: write disk files and a libvirt test:// node file into
//  dir, with domains 'run' (running, qcow2 on a raw base), 'held' (paused),
//  'off' (shut off, raw), 'huge' (running, 1 PiB virtual size), 'ceph'
//  (running, vda rbd/ceph-a and vdb rbd/ceph-b), 'mix' (running, vda
//  rbd/mix-a, vdb a qcow2) and 'cephoff' (shut off, vda rbd/off-a).
//  Returns the test:// URI (caller frees).
char *
    sf_task_test_node (const char *dir);

#define SF_TEST_RUN_UUID    "00000000-0000-4000-8000-000000000001"
#define SF_TEST_HELD_UUID   "00000000-0000-4000-8000-000000000002"
#define SF_TEST_OFF_UUID    "00000000-0000-4000-8000-000000000003"
#define SF_TEST_HUGE_UUID   "00000000-0000-4000-8000-000000000004"
#define SF_TEST_CEPH_UUID   "00000000-0000-4000-8000-000000000005"
#define SF_TEST_MIX_UUID    "00000000-0000-4000-8000-000000000006"
#define SF_TEST_CEPHOFF_UUID "00000000-0000-4000-8000-000000000007"
#define SF_TEST_CATALOG     "0123456789abcdef"      //  the self tests' catalogue id

//  Self test of this class
void
    sf_task_test (bool verbose);

#endif
