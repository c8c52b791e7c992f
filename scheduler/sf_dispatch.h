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
    skipped: sf_jobs_take_ended), or when the node goes down (its jobs
    fail). After a restart the unfinished jobs are put back with what
    their phase holds, so limits hold across restarts and reconnects.
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

//  At start: admission learns the nodes the database has up (their jobs
//  come back through sf_dispatch_queue, from sf_bulk_restore). Returns 0
//  or -1 with err set.
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

//  Self test of this class
void
    sf_dispatch_test (bool verbose);

#endif
