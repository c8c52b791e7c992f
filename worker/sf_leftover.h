/*  =========================================================================
    sf_leftover - the Ceph objects journal: no snapshot or clone a job made
    is ever leaked

    Before a job creates any RBD snapshot or clone it records them all in
    <workdir>/leftovers/<job_id> (written durably: tmp + fsync + rename +
    directory fsync), one object a line ("snap POOL/IMAGE@SNAP", "clone
    POOL/IMAGE"), with the scheduler's catalogue id ("catalog ID"). Only
    objects the job checked absent just before are recorded, and one that
    turns out to exist at creation is dropped from the entry (it is not
    ours). Cleaning removes an object only if sf_stor_obj_check_ours says
    the job of that catalogue made it (its name by sf_naming, a clone's
    parent), so an entry can never make the worker delete anything else,
    also after a restart. The entry goes away when the job no longer needs it: the
    objects became the job's product (forget), or they were removed
    (clean). An entry that outlives its job is a leftover: a failed job's
    cleanup could not reach Ceph, or the worker died mid-job. The sweeper
    actor retries those every inventory_interval and at start, and logs
    when one is cleaned.

    Late creations: a snapshot request that timed out is not cancelled in
    the cluster. When the monitor was the part that hung, the request (at
    the QEMU that holds the image's lock) completes as soon as it answers
    again, possibly after the removal. So an entry cleaned after a timeout,
    or by the sweeper (a failed or killed job), is not dropped at once: it
    is marked "cleaned at" and cleaned once more, and dropped, by the first
    sweep at least settle_ms later.

    A running task claims its job id, so the sweeper never touches the
    entry of a job in progress; the claim also cleans what an earlier
    attempt of the same job left, before the new attempt reuses its names.
    The object is shared by the agent's tasks and the sweeper (thread-safe).
    =========================================================================
*/
#ifndef SF_LEFTOVER_H_INCLUDED
#define SF_LEFTOVER_H_INCLUDED

typedef struct _sf_leftover_t sf_leftover_t;

//  Open the journal in <workdir>/leftovers (created if missing). stor
//  (borrowed, may be NULL when RBD support is off) removes the objects;
//  settle_ms is how long a cleaned entry waits for late creations.
//  Returns NULL with err (SF_EIO). Caller owns the result.
sf_leftover_t *
    sf_leftover_new (const char *workdir, sf_stor_t *stor, int64_t settle_ms,
                     sf_err_t *err);

//  Free. Nullifies *self_p.
void
    sf_leftover_destroy (sf_leftover_t **self_p);

//  Claim job_id for a running task; waits while the sweeper works on it.
//  An entry of an earlier attempt is cleaned first; if that fails the
//  claim is given up again and -1 returned with err.
int
    sf_leftover_claim (sf_leftover_t *self, const char *job_id, sf_err_t *err);

//  Give up the claim of job_id.
void
    sf_leftover_release (sf_leftover_t *self, const char *job_id);

//  Durably record the count objects job_id of catalog_id is about to
//  create (replacing what it recorded before). Returns 0 or -1 with err
//  (SF_EIO).
int
    sf_leftover_record (sf_leftover_t *self, const char *job_id, const char *catalog_id,
                        const sf_stor_obj_t *objs, size_t count, sf_err_t *err);

//  Remove the objects of job_id's entry, clones before snapshots (absent
//  objects count as removed; one the job did not make, by
//  sf_stor_obj_check_ours with the entry's catalogue id, is refused with
//  SF_EINVAL and stays in the entry), then the entry; with settle the entry is
//  only marked "cleaned at" (and dropped by a later clean, settle_ms
//  after the first). Returns 0 (also if there is no entry), or -1 with
//  err: then the entry stays, listing what is left. After a timeout
//  nothing more is tried (the cluster is away).
int
    sf_leftover_clean (sf_leftover_t *self, const char *job_id, bool settle,
                       sf_err_t *err);

//  Drop job_id's entry and keep its objects (they are the job's product).
int
    sf_leftover_forget (sf_leftover_t *self, const char *job_id, sf_err_t *err);

//  Clean (with settle) every entry that no task claims; stop at the first
//  timeout. Logs every entry whose objects it removed (notice) and each
//  new failure (warning). Returns the number of entries whose objects it
//  removed for the first time (settling entries not counted).
int
    sf_leftover_sweep (sf_leftover_t *self);

//  Entries on disk now.
size_t
    sf_leftover_count (sf_leftover_t *self);

//  Path of job_id's entry. Caller frees.
char *
    sf_leftover_path (sf_leftover_t *self, const char *job_id);

//  The sweeper: zactor_new (sf_leftover_actor, leftover) with the object
//  (borrowed; it must outlive the actor). On "SWEEP" it sweeps once (SWEEPs
//  that queued meanwhile are merged) and answers nothing; "$TERM" ends it.
void
    sf_leftover_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    sf_leftover_test (bool verbose);

#endif
