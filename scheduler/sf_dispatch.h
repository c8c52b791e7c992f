/*  =========================================================================
    sf_dispatch - from queued jobs to JobAssign and JobGrant: bulks, the
    admission engine (sf_admit) and the resources each phase holds

    The scheduler object owns one. Jobs are created "queued" in phase
    "waiting" (committed first), handed to sf_admit, and assigned when it
    says so; an UPLOAD_WAIT event queues the job for an upload slot and a
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

//  What a bulk is asked for
typedef struct {
    const char *strategy;       //  NULL: each instance's own
    int priority;               //  higher first
    int64_t deadline_ms;        //  epoch ms, 0 none
    int64_t window_end_ms;      //  epoch ms, 0 none
    const char *schedule;       //  NULL or the schedule that fired it
} sf_bulk_opts_t;

//  Create on store, jobs and peers with limits (copied). What it sends
//  to workers goes through outbox; the owner routes outbox's unsent
//  callback to sf_dispatch_unsent. store, jobs, peers and outbox are
//  borrowed and must outlive the result. Caller owns the result.
sf_dispatch_t *
    sf_dispatch_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                     const sf_limits_t *limits, sf_outbox_t *outbox);

void
    sf_dispatch_destroy (sf_dispatch_t **self_p);

//  At start: put every unfinished job back (waiting ones queued, running
//  ones holding their phase's slots). Returns 0 or -1 with err set.
int
    sf_dispatch_restore (sf_dispatch_t *self, sf_err_t *err);

//  The peer's node changed (hello, heartbeat with scratch, up/down).
//  On a hello (hello = true) the grants of its uploading jobs are sent
//  again (a worker that reconnected may have missed them).
void
    sf_dispatch_node (sf_dispatch_t *self, sf_peer_t *peer, bool hello);

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

//  A worker applied an upload rate (its answer to a JobGrant). Ignored
//  unless the job uploads on that node in that attempt.
void
    sf_dispatch_rate_applied (sf_dispatch_t *self, const char *node,
                              const sf_rate_applied_t *applied);

//  Free what ended jobs held, start what can start, grant uploads, send
//  rate changes. Call after every batch of messages and every second.
void
    sf_dispatch_pump (sf_dispatch_t *self);

//  Create a bulk of snapshots of the instances select names:
//  {"all":true} | {"node":"n1"} | {"tag":"k=v"} | {"instances":[..]}.
//  Every selected instance gets a job; one that cannot be snapshotted
//  (node down, busy, no fitting strategy) gets a job failed at once with
//  the reason. Returns the bulk (see sf_dispatch_bulk_json) or NULL with
//  err set (SF_EINVAL bad selection, SF_ENOENT nothing selected).
json_t *
    sf_dispatch_bulk (sf_dispatch_t *self, json_t *select, const sf_bulk_opts_t *opts,
                      sf_err_t *err);

//  Snapshot the instance named by key (a uuid or a name): as
//  sf_dispatch_bulk, but every refusal is an error and creates nothing.
//  Pick the instance (SF_ENOENT if none, SF_EINVAL if the name is on
//  several nodes), its strategy: strategy if not NULL and it fits the
//  instance (SF_EINVAL for an unknown name or one that does not fit, see
//  sf_strategy_check), else the default (SF_ENOTSUP/SF_EINVAL/SF_ESTATE).
//  Check its node is up (SF_ENODE), that its worker announced the
//  strategy (SF_ENOTSUP "node 'n1' cannot run strategy 'rbd' (its worker
//  has no Ceph configured)") and that the instance has no unfinished job
//  (SF_EBUSY). Then commit the job (a bulk of one) and hand it to
//  admission, which assigns it at once unless a limit binds. Returns the
//  job as JSON (caller owns it). On any error no job row is created.
json_t *
    sf_dispatch_one (sf_dispatch_t *self, const char *key, const char *strategy,
                     sf_err_t *err);

//  The bulk as the admin protocol shows it; jobs listed if with_jobs.
json_t *
    sf_dispatch_bulk_json (sf_dispatch_t *self, const char *id, bool with_jobs,
                           sf_err_t *err);

//  The last 1000 bulks, oldest first, without jobs.
json_t *
    sf_dispatch_bulks_json (sf_dispatch_t *self, sf_err_t *err);

//  Dry run: what a bulk of select with opts would do, predicted by the
//  planner from the current state. Creates nothing.
json_t *
    sf_dispatch_plan (sf_dispatch_t *self, json_t *select, const sf_bulk_opts_t *opts,
                      sf_err_t *err);

//  Admission counters (for status and tests).
void
    sf_dispatch_stats (sf_dispatch_t *self, sf_admit_stats_t *stats);

//  Called with the id of every bulk that ended (its last job ended).
typedef void (sf_dispatch_bulk_done_fn) (void *arg, const char *bulk_id);
void
    sf_dispatch_on_bulk_done (sf_dispatch_t *self, sf_dispatch_bulk_done_fn *fn,
                              void *arg);

//  Self test of this class
void
    sf_dispatch_test (bool verbose);

#endif
