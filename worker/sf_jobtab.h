/*  =========================================================================
    sf_jobtab - the worker's table of assigned jobs, and the fencing rules

    A running entry owns its task actor. A finished entry keeps the encoded
    JobResult, so a repeated assign (the scheduler lost our result) is
    answered again instead of running the job twice: a lost acknowledgement
    never causes a second pause (DESIGN.md, safety property 2). Finished
    entries are forgotten oldest first beyond the table's keep limit.
    =========================================================================
*/
#ifndef SF_JOBTAB_H_INCLUDED
#define SF_JOBTAB_H_INCLUDED

typedef struct _sf_jobtab_t sf_jobtab_t;

//  What to do with an assign (sf_jobtab_fence)
typedef enum {
    SF_JOBTAB_START = 0,        //  new job or newer attempt: run it
    SF_JOBTAB_RUNNING,          //  this attempt runs already: ignore
    SF_JOBTAB_STALE,            //  older than a known attempt: ignore
    SF_JOBTAB_RESEND,           //  this attempt finished: send its result again
    SF_JOBTAB_BUSY,             //  newer attempt while an older one runs: refuse
    SF_JOBTAB_LAST,
} sf_jobtab_verdict_t;

//  What to do with a JobGrant (sf_jobtab_grant)
typedef enum {
    SF_JOBTAB_GRANT_DROP = 0,   //  not running here, or another attempt: drop it
    SF_JOBTAB_GRANT_HOLD,       //  the task has not asked yet: kept until it does
    SF_JOBTAB_GRANT_START,      //  send "GRANT" + rate to the task
    SF_JOBTAB_GRANT_RATE,       //  granted before: send "RATE" + rate
    SF_JOBTAB_GRANT_LAST,
} sf_jobtab_grant_t;

//  Create an empty table remembering up to keep finished jobs.
sf_jobtab_t *
    sf_jobtab_new (size_t keep);

//  Destroy the table; running tasks are destroyed (they cancel, resume
//  their guest and clean up first). Nullifies *self_p.
void
    sf_jobtab_destroy (sf_jobtab_t **self_p);

//  Fencing verdict for an assign of job_id at attempt. A START for a newer
//  attempt forgets the finished older one. *known (may be NULL) is set to
//  the attempt already known (0 if none).
sf_jobtab_verdict_t
    sf_jobtab_fence (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                     uint32_t *known);

//  Record a running job; takes ownership of *task_p and nullifies it.
void
    sf_jobtab_start (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                     const char *uuid, zactor_t **task_p);

//  Job id of the running job whose task socket is sock; NULL if none.
//  Valid until the job is forgotten.
const char *
    sf_jobtab_job_of (sf_jobtab_t *self, zsock_t *sock);

//  The attempt of job_id known here (running or finished), 0 if none.
uint32_t
    sf_jobtab_attempt (sf_jobtab_t *self, const char *job_id);

//  Running task of job_id at attempt, or NULL.
zactor_t *
    sf_jobtab_task (sf_jobtab_t *self, const char *job_id, uint32_t attempt);

//  Job id running on instance uuid (case-insensitive), or NULL.
const char *
    sf_jobtab_running_on (sf_jobtab_t *self, const char *uuid);

//  The job finished: destroy its task, keep *result_p (ownership taken).
void
    sf_jobtab_finish (sf_jobtab_t *self, const char *job_id, zframe_t **result_p);

//  A job that finished before this worker restarted (its result read
//  back from the journal): recorded as finished with *result_p (ownership
//  taken), replacing any entry of job_id.
void
    sf_jobtab_restore (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                       const char *uuid, zframe_t **result_p);

//  The running job_id reported phase with bytes (its last event).
void
    sf_jobtab_progress (sf_jobtab_t *self, const char *job_id, int phase,
                        uint64_t bytes);

//  The answer to a JobQuery of job_id at attempt: SF_JOB_STATE_RUNNING
//  (*phase, *bytes: its last event's, or PHASE_QUEUED and 0 before any),
//  _FINISHED (*phase PHASE_DONE), _STALE (another attempt is known) or
//  _UNKNOWN.
int
    sf_jobtab_status (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                      int *phase, uint64_t *bytes);

//  Result of a finished job, or NULL. Borrowed.
zframe_t *
    sf_jobtab_result (sf_jobtab_t *self, const char *job_id);

//  Number of running jobs.
size_t
    sf_jobtab_running (sf_jobtab_t *self);

//  Job ids of the running jobs, sorted: a new list of strings (caller
//  owns it).
zlistx_t *
    sf_jobtab_running_ids (sf_jobtab_t *self);

//  A JobGrant for job_id at attempt with rate: the verdict (fenced by the
//  attempt). A grant that comes before the task asked for it (UPLOAD_WAIT)
//  is held, the latest rate kept, so that a task never reads a grant while
//  it still converts. *known (may be NULL) is set to the attempt known.
sf_jobtab_grant_t
    sf_jobtab_grant (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                     uint64_t rate, uint32_t *known);

//  The running task of job_id asked for its upload grant (UPLOAD_WAIT).
//  Returns true with *rate if a grant was held for it: send "GRANT" now.
bool
    sf_jobtab_upload_wait (sf_jobtab_t *self, const char *job_id, uint64_t *rate);

//  Send "CANCEL" to every running task. Returns how many.
size_t
    sf_jobtab_cancel_all (sf_jobtab_t *self);

//  Self test of this class
void
    sf_jobtab_test (bool verbose);

#endif
