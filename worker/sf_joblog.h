/*  =========================================================================
    sf_joblog - the worker's durable job journal

    One small file per accepted job under <workdir>/jobs/, named by its job
    id (a safe name, sf_name_is_safe): the job id, attempt, instance uuid,
    strategy, state "running" or "finished", whether the task is about to
    pause (or has paused) the guest, and once finished the encoded
    JobResult frame. Written durably (sf_file_replace: tmp + fsync + rename
    + directory fsync) when an assign is accepted, before the task starts;
    marked "pausing" by the task before its freeze or suspend call; the
    result is written before it is sent; the entry is removed when the
    scheduler acknowledges the result (Ack). A worker that is killed and
    restarted finds its entries again: a finished one's result is replayed,
    a running one is a job the killed worker lost (sf_joblog_lost_result).

    The class keeps no state that changes after sf_joblog_new: the agent's
    thread and a task's thread may call it at the same time for different
    entries (a task only marks its own entry, while the agent leaves it
    alone).
    =========================================================================
*/
#ifndef SF_JOBLOG_H_INCLUDED
#define SF_JOBLOG_H_INCLUDED

typedef struct _sf_joblog_t sf_joblog_t;

//  One entry as read back
typedef struct {
    char job_id [129];
    uint32_t attempt;
    char uuid [64];
    char strategy [32];
    bool finished;              //  state "finished": result is set
    bool pausing;               //  the task marked it before its pause
    zframe_t *result;           //  Owned: encoded Envelope{JobResult}, or NULL
} sf_joblog_entry_t;

//  Destroy an entry. Nullifies *self_p.
void
    sf_joblog_entry_destroy (sf_joblog_entry_t **self_p);

//  Open (creating it if needed) the journal in <workdir>/jobs. Returns
//  NULL with err set (SF_EIO) if the directory cannot be made. Leftover
//  "*.tmp" files of an interrupted write are removed. Caller owns it.
sf_joblog_t *
    sf_joblog_new (const char *workdir, sf_err_t *err);

//  Destroy the object (the files stay). Nullifies *self_p.
void
    sf_joblog_destroy (sf_joblog_t **self_p);

//  The job was accepted: write its entry, state running, durably. Returns
//  0, or -1 with err set (SF_EINVAL for an unsafe job id, SF_EIO).
int
    sf_joblog_start (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                     const char *uuid, const char *strategy, sf_err_t *err);

//  The task is about to pause (freeze or suspend) the guest: mark the
//  entry durably first. Returns 0, or -1 with err set (SF_ENOENT if the
//  entry of that attempt is gone). self may be NULL (unit tests of tasks
//  without a journal): then 0.
int
    sf_joblog_pausing (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                       sf_err_t *err);

//  The job finished with result (an encoded Envelope{JobResult}, copied):
//  state finished, durably. Returns 0, or -1 with err set.
int
    sf_joblog_finish (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                      zframe_t *result, sf_err_t *err);

//  True if job_id has an entry: the job runs here, or its result is not
//  acknowledged yet (what the reconciler must not remove).
bool
    sf_joblog_has (sf_joblog_t *self, const char *job_id);

//  The scheduler acknowledged the result of job_id at attempt: remove the
//  entry (only if it is that attempt's). Returns 0 (also if there was no
//  such entry), or -1 with err set.
int
    sf_joblog_forget (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                      sf_err_t *err);

//  Every entry (sf_joblog_entry_t), by job id. Files that are not entries
//  (bad names, unreadable or malformed content) are skipped with a
//  warning and left in place. Caller owns the list (it destroys its
//  entries).
zlistx_t *
    sf_joblog_load (sf_joblog_t *self);

//  The failed JobResult of a job that was still running when its worker
//  died (entry not finished), encoded: SF_ENODE "worker on node 'NODE'
//  was restarted during job 'J4' (attempt 1)", retryable if the entry
//  says the guest was never paused. Caller owns the frame.
zframe_t *
    sf_joblog_lost_result (const sf_joblog_entry_t *entry, const char *node);

//  Self test of this class
void
    sf_joblog_test (bool verbose);

#endif
