/*  =========================================================================
    sf_jobs - snapshot jobs, their phase events and the images they made

    Works on the tables of sf_store through its connection. Every change
    is one transaction, committed before the function returns, so the
    scheduler only acts on (and acknowledges) durable state.

    A job is created "queued" with attempt 1 and phase "assigned". The
    worker's first event makes it "running"; its JobResult makes it "done"
    or "failed" (or "cancelled", or queued again for a new attempt: see
    "Cancel and retries" below). Messages about a job are fenced: they are applied only if
    the job is assigned to the sending node, with the same attempt, and
    not yet finished. Workers replay what the scheduler has not
    acknowledged, so a message may come twice: a replayed event adds no
    second row, a replayed result of a finished job is fenced (nothing
    changes), and the caller acknowledges both.
    =========================================================================
*/
#ifndef SF_JOBS_H_INCLUDED
#define SF_JOBS_H_INCLUDED

#include <jansson.h>

typedef struct _sf_jobs_t sf_jobs_t;

//  What a new job is about
typedef struct {
    const char *instance_uuid;
    const char *instance_name;
    const char *node;
    const char *strategy;
    const char *bulk_id;        //  NULL or "" for none
    int priority;               //  higher first
    int64_t deadline_ms;        //  epoch ms, 0 none
    int64_t window_end_ms;      //  epoch ms, 0 none
    uint64_t est_bytes;         //  estimated bytes to store
    bool waiting;               //  phase "waiting" (for admission), not
                                //  "assigned"
    bool full;                  //  a full copy: no incremental offer
} sf_job_spec_t;

//  Create the jobs class on store (borrowed; must outlive the result).
//  Caller owns the result.
sf_jobs_t *
    sf_jobs_new (sf_store_t *store);

//  Destroy the class. Nullifies *self_p.
void
    sf_jobs_destroy (sf_jobs_t **self_p);

//  Create a job (state queued, attempt 1) and commit it. Writes its id
//  ("J<n>", never reused) into id. Returns 0 or -1 with err set.
int
    sf_jobs_create (sf_jobs_t *self, const sf_job_spec_t *spec, char *id,
                    size_t id_size, sf_err_t *err);

//  Find a queued or running job for the instance uuid on node (an
//  instance is (node, uuid)); a restore of one of its images does not
//  count. Returns 1 and writes its id, 0 if there is none, -1 with err set.
int
    sf_jobs_active (sf_jobs_t *self, const char *node, const char *instance_uuid,
                    char *id, size_t id_size, sf_err_t *err);

//  Apply a JobEvent sent by node. Returns 0, 1 if it is recorded already
//  (a replay: same job, phase and at_ms; nothing changed), or -1 with err
//  set: SF_ENOENT (no such job) or SF_ESTATE (fenced: other node, other
//  attempt, job finished) when the event must be dropped; SF_EDB on a
//  database error.
int
    sf_jobs_event (sf_jobs_t *self, const char *node,
                   const sf_job_event_t *event, sf_err_t *err);

//  Apply the JobResult sent by node, whose Hello named its image store
//  node_store (NULL if unknown): final state, timings, error, images.
//  An ok result whose error carries text is done with that text as its
//  note (an error code other than 0 is kept in the note as its name, e.g.
//  "EIO: ..."). Every image must be the job's (sf_imgcheck, against the
//  job's instance as node's inventory has it): if one is not, the job
//  fails with SF_EPROTO "worker reported image 'X' that is not job J's:
//  ...", no image row is written, and it returns 1 with err set to that
//  error. Else the same fencing and return values as sf_jobs_event.
int
    sf_jobs_result (sf_jobs_t *self, const char *node, const char *node_store,
                    const sf_job_result_t *result, sf_err_t *err);

//  Fail one unfinished job with code and text (e.g. the assignment could
//  not be sent). Returns 0 or -1 with err set.
int
    sf_jobs_fail (sf_jobs_t *self, const char *id, int code, const char *text,
                  sf_err_t *err);

//  Fail every unfinished job on node with code and text. Call it inside
//  the caller's transaction together with the node's state change.
//  Returns the number of jobs failed, or -1 with err set.
int
    sf_jobs_fail_node (sf_jobs_t *self, const char *node, int code,
                       const char *text, sf_err_t *err);

//  Admission skipped the queued job id: state "skipped" with reason (its
//  estimate would overrun the window). Returns 0 or -1 with err set.
int
    sf_jobs_skip (sf_jobs_t *self, const char *id, const char *reason, sf_err_t *err);

//  The queued job id was sent to its node: phase "assigned". In the
//  caller's transaction. Returns 0 or -1 with err set.
int
    sf_jobs_assigned (sf_jobs_t *self, const char *id, sf_err_t *err);

//  Ids of the jobs that ended (done, failed, skipped, cancelled) since the last call,
//  in order; the caller owns the list. Admission frees their slots.
zlistx_t *
    sf_jobs_take_ended (sf_jobs_t *self);

//  What a worker's Hello says it knows: the jobs it runs now and those it
//  finished whose results are not acknowledged yet (NULL entries skipped)
typedef struct {
    char **running;
    size_t n_running;
    char **finished;
    size_t n_finished;
} sf_jobs_known_t;

//  A worker on node said hello, listing the jobs it knows (known). For
//  every unfinished job the database has handed to node: listed (running
//  or finished) -> kept as it is (a finished one's result comes in the
//  worker's replay); not listed and still in phase "assigned" (no event
//  ever came: the worker never received it) -> its id is appended to
//  resend (if not NULL), to send the same JobAssign again, same attempt;
//  not listed and past "assigned" -> failed: SF_ENODE "worker on node
//  'n1' no longer knows job 'J4' (its journal was lost)", its id appended
//  to lost (if not NULL). Jobs still waiting for admission are left alone
//  (never sent to the node, or sent to a connection that was gone: see
//  sf_dispatch_unsent). If strangers is not NULL, running ids that are not
//  unfinished jobs on node (unknown, finished, or on another node) are
//  appended to it. The lists take strings they must free (give them the
//  zstr_free destructor). Call it inside the caller's transaction with the
//  node's hello. Returns the number of jobs failed, or -1 with err set.
int
    sf_jobs_reconcile (sf_jobs_t *self, const char *node, const sf_jobs_known_t *known,
                       zlistx_t *lost, zlistx_t *resend, zlistx_t *strangers,
                       sf_err_t *err);

//  The job id has begun its upload: phase "uploading". In the caller's
//  transaction. Returns 0 or -1 with err set.
int
    sf_jobs_uploading (sf_jobs_t *self, const char *id, sf_err_t *err);

//  The queued job id waits for admission again (its assignment did not
//  reach its node): phase "waiting". Returns 0 or -1 with err set.
int
    sf_jobs_requeue (sf_jobs_t *self, const char *id, sf_err_t *err);

//  The throughput measured on the last 50 jobs that moved bytes, and the
//  pause of the last 50 RBD captures, into model (zero what is unknown).
void
    sf_jobs_model (sf_jobs_t *self, sf_plan_model_t *model);

//  The instances that have an unfinished job (restores aside: they do not
//  hold their instance), keyed by (node, uuid): look
//  one up with sf_jobs_busy_job. One query for a whole bulk. Caller owns
//  the result; NULL with err set.
zhashx_t *
    sf_jobs_busy (sf_jobs_t *self, sf_err_t *err);

//  The unfinished job of the instance uuid on node in busy (from
//  sf_jobs_busy), or NULL if it has none.
const char *
    sf_jobs_busy_job (zhashx_t *busy, const char *node, const char *uuid);

//  An unfinished job as admission needs it after a restart
typedef struct {
    char *id;
    char *node;
    char *strategy;
    char *phase;                //  "waiting", "assigned", ... "uploading"
    char *bulk_id;              //  "" for none
    char *instance_uuid;
    int priority;
    int64_t deadline_ms;        //  0 none
    int64_t window_end_ms;      //  0 none
    uint32_t attempt;
    int64_t not_before_ms;      //  a retry waits until then; 0 none
} sf_job_rec_t;

//  Destroy a record. Nullifies *self_p.
void
    sf_job_rec_destroy (sf_job_rec_t **self_p);

//  Every unfinished job (sf_job_rec_t), uploading ones first, then oldest
//  first. Caller owns the list (it destroys its records). NULL with err.
zlistx_t *
    sf_jobs_unfinished (sf_jobs_t *self, sf_err_t *err);

//  The states a job can be in, in this order (index into counts.jobs);
//  from SF_JOBS_DONE on they are final
#define SF_JOBS_STATES 6
extern const char *sf_jobs_state_names [SF_JOBS_STATES];
enum {
    SF_JOBS_QUEUED,
    SF_JOBS_RUNNING,
    SF_JOBS_DONE,
    SF_JOBS_FAILED,
    SF_JOBS_SKIPPED,
    SF_JOBS_CANCELLED
};

//  What a bulk's jobs add up to
typedef struct {
    int64_t jobs [SF_JOBS_STATES];  //  Jobs in each state
    int64_t bytes;              //  Bytes stored so far
    int64_t est_bytes;          //  Estimated bytes of all jobs
    int64_t ended_est_bytes;    //  Estimated bytes of the ended ones
} sf_jobs_counts_t;

//  Count the jobs of bulk_id into counts. Returns 0 or -1 with err set.
int
    sf_jobs_bulk_counts (sf_jobs_t *self, const char *bulk_id,
                         sf_jobs_counts_t *counts, sf_err_t *err);

//  The jobs of bulk_id, oldest first, all ([{"job_id","instance","node",
//  "state","phase","strategy","bytes","error"}]) or only the failed,
//  skipped and cancelled ones if failures ([{"job_id","instance","node","state",
//  "error"}]); error is null or {"code","text"}. Caller owns the result;
//  NULL with err set.
json_t *
    sf_jobs_bulk_json (sf_jobs_t *self, const char *bulk_id, bool failures,
                       sf_err_t *err);

//  One job as the CLI shows it: {"job_id","instance","instance_uuid",
//  "node","state","phase","attempt","strategy","consistency","pause_ms",
//  "convert_ms","upload_ms","bytes","created","updated","error","note",
//  "events","image","images","attempts"}; note is null or the text of an
//  ok result; attempts lists every attempt that ended: [{"attempt","node",
//  "error" (null or {"code","name","text"}),"started","ended"}]; a restore
//  has "restore" too (sf_restores_json). Returns
//  NULL with err set (SF_ENOENT if no such job). Caller owns the result.
json_t *
    sf_jobs_json (sf_jobs_t *self, const char *id, sf_err_t *err);

//  Every job, oldest first, as an array of the objects above (without
//  "attempts"). Caller owns
//  the result; NULL with err set on a database error.
json_t *
    sf_jobs_list_json (sf_jobs_t *self, sf_err_t *err);

//  Forget up to batch finished jobs (done, failed, skipped, cancelled) last updated
//  before before_ms, with their events, in one transaction: only jobs
//  that have no image left (so every job of a kept image stays, the
//  images of schedules among them) and whose bulk is not running. Returns
//  the number of jobs forgotten, or -1 with err set (nothing changed).
int64_t
    sf_jobs_prune (sf_jobs_t *self, int64_t before_ms, int64_t batch, sf_err_t *err);

//  One page of the jobs in seq order (oldest first): at most limit after
//  the cursor after (NULL: from the first). *next_p is set to the cursor
//  of the last one if more follow, else NULL (caller frees it). A jobs
//  cursor is the job's seq in decimal; anything else is SF_EINVAL.
json_t *
    sf_jobs_page_json (sf_jobs_t *self, const char *after, int64_t limit,
                       char **next_p, sf_err_t *err);

//  One page of the images, oldest first (created, store, id), as the
//  objects below; the cursor is the text of a JSON array [created, store,
//  id]. Otherwise as sf_jobs_page_json.
json_t *
    sf_jobs_images_page_json (sf_jobs_t *self, const char *after, int64_t limit,
                              char **next_p, sf_err_t *err);

//  Every image, oldest first: [{"store","id","path","size","sha256",
//  "job_id","instance","disk_target","created"}]. Caller owns the result.
json_t *
    sf_jobs_images_json (sf_jobs_t *self, sf_err_t *err);

//  An image row as retention needs it: the wire image (strings owned),
//  the job that made it and that job's node
typedef struct {
    sf_image_t image;           //  store, id, path, size, sha256,
                                //  disk_target, format
    char *job_id;
    char *node;
} sf_image_rec_t;

//  Destroy a record. Nullifies *self_p.
void
    sf_image_rec_destroy (sf_image_rec_t **self_p);

//  The image id in store. Returns 1 and sets *rec_p (caller owns it), 0 if
//  there is no such image (*rec_p NULL), or -1 with err set.
int
    sf_jobs_image (sf_jobs_t *self, const char *store, const char *id,
                   sf_image_rec_t **rec_p, sf_err_t *err);

//  The images job_id made (sf_image_rec_t), by store, then id. Caller
//  owns the list (it destroys its records). NULL with err set.
zlistx_t *
    sf_jobs_images (sf_jobs_t *self, const char *job_id, sf_err_t *err);

//  Forget the image id in store (deleted from its store): its row goes.
//  One statement, so it joins the caller's transaction if there is one.
//  Returns 0 (also when there was no such row) or -1 with err set.
int
    sf_jobs_image_forget (sf_jobs_t *self, const char *store, const char *id,
                          sf_err_t *err);

//  A backup: a done job that made images, and the time of its first one
typedef struct {
    char *job_id;
    int64_t created;            //  epoch ms
} sf_backup_rec_t;

//  Destroy a record. Nullifies *self_p.
void
    sf_backup_rec_destroy (sf_backup_rec_t **self_p);

//  The backups (sf_backup_rec_t) of the instance uuid on node made by
//  done jobs of the bulks bulk_ids (a list of strings), oldest job first.
//  Caller owns the list (it destroys its records). NULL with err set.
zlistx_t *
    sf_jobs_backups (sf_jobs_t *self, zlistx_t *bulk_ids, const char *node,
                     const char *instance_uuid, sf_err_t *err);

//  The instances whose job in bulk_id is done: one done job of each
//  (sf_job_rec_t; an instance is its node and instance_uuid), by node then
//  uuid. Caller owns the list (it destroys its records). NULL with err set.
zlistx_t *
    sf_jobs_done_instances (sf_jobs_t *self, const char *bulk_id, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Cancel and retries (issue 11 item 3)
//
//  A cancel of a job still waiting for admission (never sent, or a retry
//  in its backoff) ends it "cancelled" at once. For a job handed to a
//  worker the cancel is recorded (cancel_at) and the caller sends the
//  worker a JobCancel: the job ends "cancelled" when its failed result
//  comes, or when the scheduler fails it (node down, lost), keeping that
//  error. A result with retryable set, of a job nobody cancelled, makes a
//  new attempt (attempt + 1, phase "waiting", not before now + backoff,
//  doubling from the first delay, at most SF_JOBS_BACKOFF_MAX) while
//  attempts are left and the backoff ends before the job's window; the
//  last failure says "after N attempts". Every attempt that was sent
//  gets a row in job_attempts when it ends.

#define SF_JOBS_BACKOFF_MAX (10 * 60 * 1000)

//  Retry policy: at most max_attempts attempts (1: no retries), the first
//  retry backoff_ms after the failure. The default is 1 attempt.
void
    sf_jobs_set_retry (sf_jobs_t *self, int64_t max_attempts, int64_t backoff_ms);

//  The backoff before attempt + 1 of a job whose attempt failed: the
//  first delay doubled attempt - 1 times, capped at SF_JOBS_BACKOFF_MAX.
int64_t
    sf_jobs_backoff (int64_t backoff_ms, uint32_t attempt);

//  What sf_jobs_cancel did
typedef enum {
    SF_JOBS_CANCEL_NOW = 1,     //  ended cancelled now (it was waiting)
    SF_JOBS_CANCEL_SEND         //  recorded: send JobCancel to node, attempt
} sf_jobs_cancel_t;

//  Cancel job id in one transaction. Returns SF_JOBS_CANCEL_NOW or
//  SF_JOBS_CANCEL_SEND (then node (size bytes) and *attempt say where to
//  send the JobCancel; a second cancel of the same job answers the same),
//  or -1 with err set, nothing changed: SF_ENOENT "no job 'J9'",
//  SF_ESTATE "job 'J4' has already ended: done", SF_EDB.
int
    sf_jobs_cancel (sf_jobs_t *self, const char *id, char *node, size_t size,
                    uint32_t *attempt, sf_err_t *err);

//  The unfinished jobs handed to node whose cancel was asked for (a
//  JobCancel to send again when it says hello): sf_job_rec_t, oldest
//  first. Caller owns the list. NULL with err set.
zlistx_t *
    sf_jobs_cancelling (sf_jobs_t *self, const char *node, sf_err_t *err);

//  The unfinished jobs of bulk_id, oldest first: a list of ids (strings)
//  the caller owns. NULL with err set.
zlistx_t *
    sf_jobs_bulk_unfinished (sf_jobs_t *self, const char *bulk_id, sf_err_t *err);

//  Ids of the jobs that went back to "waiting" for a new attempt since the
//  last call, in order; the caller owns the list. Admission frees what
//  their last attempt held and queues them again at their time.
zlistx_t *
    sf_jobs_take_retried (sf_jobs_t *self);

//  The unfinished job id as admission needs it. Returns 1 and sets *rec_p
//  (caller owns it), 0 if it is not unfinished, or -1 with err set.
int
    sf_jobs_rec (sf_jobs_t *self, const char *id, sf_job_rec_t **rec_p, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Internal: what sf_jobs.c and sf_jobs_cancel.c (the cancel and retry
//  methods, in a file of their own) use of each other. Not for other
//  classes.

//  Unfinished states, and the columns of sf_jobs_recs, as SQL
#define SF_JOBS_UNFINISHED "state IN ('queued', 'running')"
#define SF_JOBS_REC_COLUMNS \
    "id, node, strategy, phase, priority, deadline, window_end, bulk_id," \
    " instance_uuid, attempt, not_before"

//  The retry policy (sf_jobs_set_retry) and the store (borrowed)
void
    sf_jobs_retry_policy (sf_jobs_t *self, int64_t *max_attempts, int64_t *backoff_ms);
sf_store_t *
    sf_jobs_store (sf_jobs_t *self);

//  End job id if unfinished: state (failed, skipped, cancelled; failed is
//  cancelled if its cancel was asked for), code, text; in the caller's
//  transaction. Returns 0 or -1 with err set.
int
    sf_jobs_end_one (sf_jobs_t *self, const char *id, const char *state, int code,
                     const char *text, sf_err_t *err);

//  The jobs stmt selects (SF_JOBS_REC_COLUMNS), stmt finalized. Caller owns
//  the list; NULL with err set (also if stmt is NULL).
zlistx_t *
    sf_jobs_recs (sf_jobs_t *self, sqlite3_stmt *stmt, sf_err_t *err);

//  The hooks of a result: queue a retryable failure for a new attempt (1
//  if it did, 0 to apply the result, -1 with err); after the result was
//  applied: its attempt's row, cancelled for a cancel asked for, "after N
//  attempts" (0 or -1). The current attempt of job id ended with code and
//  text at now: its row in job_attempts, if it was sent (0 or -1).
int
    sf_jobs_retry_result (sf_jobs_t *self, const sf_job_result_t *result, sf_err_t *err);
int
    sf_jobs_result_ended (sf_jobs_t *self, const char *id, sf_err_t *err);
int
    sf_jobs_attempt_ended (sf_jobs_t *self, const char *id, int64_t code, const char *text,
                           int64_t now, sf_err_t *err);

//  The "attempts" of sf_jobs_json. Caller owns the result; NULL with err.
json_t *
    sf_jobs_attempts_json (sf_jobs_t *self, const char *id, sf_err_t *err);

//  Self test of this class
void
    sf_jobs_test (bool verbose);

#endif
