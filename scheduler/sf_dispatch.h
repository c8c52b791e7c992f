/*  =========================================================================
    sf_dispatch - the admission loop: from queued jobs to JobAssign and
    JobGrant, through the admission engine (sf_admit), and the resources
    each phase holds

    The scheduler object owns one. Jobs are created "queued" in phase
    "waiting" (committed first, by sf_bulk), queued here, and assigned when
    sf_admit says so; an UPLOAD_WAIT event queues the job for an upload slot and a
    JobGrant (with its bandwidth share) starts the upload; later JobGrants
    change the share. Slots are freed when the worker reports the phase
    over (RESUMED or CONVERTED, UPLOADED), when the job ends (done, failed,
    skipped, cancelled: sf_jobs_take_ended), or when it is queued for a
    new attempt (sf_jobs_take_retried: it waits out its backoff here,
    holding nothing, then goes back to admission). A node that goes down
    fails nothing at once: its queued jobs wait for it (or end skipped
    when their window closes), and its handed jobs are governed by leases
    (sf_lease): one that runs out is asked about (JobQuery), then failed
    with the reason and cancelled; if its guest may be paused, its pause
    slot is kept until the pause began + the node's max_pause + 5 s (table
    pause_holds, so a restart keeps it too). After a restart the
    unfinished jobs are put back with what their phase holds and a fresh
    lease, so limits hold across restarts and reconnects.
    =========================================================================
*/
#ifndef SF_DISPATCH_H_INCLUDED
#define SF_DISPATCH_H_INCLUDED

typedef struct _sf_dispatch_t sf_dispatch_t;

//  Create on store, jobs and peers with limits (copied). What it sends
//  to workers goes through outbox; the owner routes outbox's unsent
//  callback to sf_dispatch_unsent. store, jobs, peers and outbox are
//  borrowed and must outlive the result. Caller owns the result.
sf_dispatch_t *
    sf_dispatch_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                     const sf_limits_t *limits, sf_outbox_t *outbox);

void
    sf_dispatch_destroy (sf_dispatch_t **self_p);

//  Increments a file-live job may build on one full copy ([retention]
//  max_chain, default SF_CHAIN_MAX): past it the job gets no offer.
void
    sf_dispatch_set_max_chain (sf_dispatch_t *self, int64_t max_chain);

//  At start: admission learns the nodes the database has up (their jobs
//  come back through sf_dispatch_queue, from sf_bulk_restore) and the
//  pause slots kept past their jobs (pause_holds). Returns 0 or -1 with
//  err set.
int
    sf_dispatch_restore (sf_dispatch_t *self, sf_err_t *err);

//  A committed job to hand to admission
typedef struct {
    sf_admit_job_t admit;       //  id, node, seq, priority, window, estimates
    const char *bulk_id;        //  NULL or "" for none
    const char *instance_uuid;
    const char *strategy;
    uint32_t attempt;           //  1 for a new job (0 means 1)
    const char *phase;          //  NULL or "waiting": it waits for admission;
                                //  else the phase it had reached before a
                                //  restart (it holds that phase's slots)
    int64_t not_before_ms;      //  A waiting retry: not admitted before
                                //  this (epoch ms; 0 at once)
} sf_dispatch_job_t;

//  Queue job (copied) in admission; a waiting one starts at the next
//  sf_dispatch_pump unless a limit binds. Returns 0, or -1 if admission
//  refuses it (the caller fails or drops it).
int
    sf_dispatch_queue (sf_dispatch_t *self, const sf_dispatch_job_t *job);

//  The peer's node changed (hello, heartbeat with scratch, up/down).
//  On a hello (hello = true) the grants of its uploading jobs are sent
//  again (a worker that reconnected may have missed them); jobs that wait
//  for a grant (phase upload_wait, also restored after a restart) are in
//  admission's upload queue and get theirs from the next pump.
void
    sf_dispatch_node (sf_dispatch_t *self, sf_peer_t *peer, bool hello);

//  Send the JobAssign of job_id again, same attempt (its node said hello
//  and does not know it: the first one never arrived; sf_jobs_reconcile).
//  One that cannot leave goes to sf_dispatch_unsent like any. Returns 0,
//  or -1 if the job is not one admission handed out.
int
    sf_dispatch_resend (sf_dispatch_t *self, const char *job_id);

//  A JobEvent that sf_jobs accepted.
void
    sf_dispatch_event (sf_dispatch_t *self, const sf_job_event_t *event);

//  The job's assignment did not reach its node (sf_outbox_unsent_fn).
//  If its connection is gone (why->code SF_ENODE: a worker that restarted
//  and whose hello is not read yet) the job goes back to the queue, and
//  the node gets nothing until it says hello. Otherwise, or if its node is
//  down or unknown, the job fails (SF_ENODE "cannot send job to node
//  'n1'"). Unknown jobs are ignored.
void
    sf_dispatch_unsent (sf_dispatch_t *self, const char *job_id, const sf_err_t *why);

//  A worker applied an upload rate (its answer to a JobGrant). Returns 0,
//  or -1 (and changes nothing) unless the job uploads on that node in that
//  attempt: the caller counts and logs it.
int
    sf_dispatch_rate_applied (sf_dispatch_t *self, const char *node,
                              const sf_rate_applied_t *applied);

//  A JobStatus from node (its answer to a JobQuery). RUNNING renews the
//  job's lease; FINISHED renews it once (its result follows); UNKNOWN or
//  STALE fail the job (SF_ENODE "worker on node 'n1' does not know job
//  'J4'"; committed in the caller's transaction if there is one). Returns
//  0, or -1 (changes nothing) unless the job has a lease on that node in
//  that attempt: the caller counts and logs it.
int
    sf_dispatch_status (sf_dispatch_t *self, const char *node,
                        const sf_job_status_t *status);

//  Act on the leases that ran out: send JobQuery, or fail the job (SF_
//  ETIMEDOUT "no news from node 'n1' for 300 s in phase converting;
//  cancelled"), keeping its pause slot if its guest may be paused, then
//  send JobCancel. Call from a timer (every liveness interval), then
//  sf_dispatch_pump.
void
    sf_dispatch_leases (sf_dispatch_t *self);

//  Number of jobs with a lease (for tests).
size_t
    sf_dispatch_leased (sf_dispatch_t *self);

//  Free what ended jobs held, start what can start, grant uploads, send
//  rate changes. Call after every batch of messages and every second.
void
    sf_dispatch_pump (sf_dispatch_t *self);

//  Admission counters (for status and tests).
void
    sf_dispatch_stats (sf_dispatch_t *self, sf_admit_stats_t *stats);

//  Called once for every queued job that ended (done, failed, skipped),
//  after admission freed its slots, with its bulk id ("" for none).
typedef void (sf_dispatch_ended_fn) (void *arg, const char *job_id, const char *bulk_id);
void
    sf_dispatch_on_ended (sf_dispatch_t *self, sf_dispatch_ended_fn *fn, void *arg);

//  Cancel the jobs ids (strings) one by one (sf_jobs_cancel): a waiting
//  one ends cancelled now, a running one gets a JobCancel (sent again on
//  its node's next hello if it cannot leave now). Returns what happened to
//  each, in order: [{"job_id","outcome","node","error"}], outcome
//  "cancelled" (now), "cancel_sent" or "refused" (error {"code","name",
//  "text"}: no such job, already ended; else null). Caller owns it.
json_t *
    sf_dispatch_cancel (sf_dispatch_t *self, zlistx_t *ids);

//  Self test of this class
void
    sf_dispatch_test (bool verbose);

#endif
