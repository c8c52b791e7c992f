/*  =========================================================================
    sf_bulk - bulks of snapshots: from a selection of instances to
    committed jobs queued in admission (sf_dispatch)

    A bulk names its instances ({"all":true}, {"node":N}, {"tag":"K=V"},
    {"instances":[names or uuids]}). Every selected instance gets a job in
    the bulk's one transaction: waiting for admission, with an estimate of
    what it will move, or failed at once with the reason it cannot be
    snapshotted now. The scheduler object owns one; it is the one writer
    of the bulks table. A bulk is done when its last job has ended (done, failed, skipped,
    cancelled).
    =========================================================================
*/
#ifndef SF_BULK_H_INCLUDED
#define SF_BULK_H_INCLUDED

typedef struct _sf_bulk_t sf_bulk_t;

//  What a bulk is asked for
typedef struct {
    const char *strategy;       //  NULL: each instance's own
    int priority;               //  higher first
    int64_t deadline_ms;        //  epoch ms, 0 none
    int64_t window_end_ms;      //  epoch ms, 0 none
    const char *schedule;       //  NULL or the schedule that fired it
    int64_t schedule_seq;       //  That schedule's identity (sf_schedules)
    bool full;                  //  full copies only (no incremental offer)
} sf_bulk_opts_t;

//  Create on store, jobs, peers and dispatch (borrowed; they must outlive
//  the result) with limits (copied). The owner routes dispatch's ended
//  callback to sf_bulk_job_ended. Caller owns the result.
sf_bulk_t *
    sf_bulk_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                 sf_dispatch_t *dispatch, const sf_limits_t *limits);

//  Destroy. Nullifies *self_p.
void
    sf_bulk_destroy (sf_bulk_t **self_p);

//  Called with the id of every bulk that ended (its last job ended), once
//  that is committed.
typedef void (sf_bulk_done_fn) (void *arg, const char *bulk_id);
void
    sf_bulk_on_done (sf_bulk_t *self, sf_bulk_done_fn *fn, void *arg);

//  At start, after sf_dispatch_restore: put every unfinished job back in
//  admission (waiting ones queued, running ones holding their phase's
//  slots, uploading ones first) and mark done the bulks that have none
//  left. Returns 0 or -1 with err set.
int
    sf_bulk_restore (sf_bulk_t *self, sf_err_t *err);

//  A job of bulk_id ended (sf_dispatch_ended_fn without the job id);
//  "" or NULL is no bulk. The bulk's last one marks it done.
void
    sf_bulk_job_ended (sf_bulk_t *self, const char *bulk_id);

//  Create a bulk of snapshots of the instances select names:
//  {"all":true} | {"node":"n1"} | {"tag":"k=v"} | {"instances":[..]}.
//  Every selected instance gets a job; one that cannot be snapshotted
//  (node down, busy, no fitting strategy) gets a job failed at once with
//  the reason. Returns the bulk (see sf_bulk_json) or NULL with err set
//  (SF_EINVAL bad selection, SF_ENOENT nothing selected).
json_t *
    sf_bulk_create (sf_bulk_t *self, json_t *select, const sf_bulk_opts_t *opts,
                    sf_err_t *err);

//  Snapshot the instance named by key (a uuid or a name): as
//  sf_bulk_create, but every refusal is an error and creates nothing.
//  Pick the instance (SF_ENOENT if none, SF_EINVAL if the name is on
//  several nodes), its strategy: strategy if not NULL and it fits the
//  instance (SF_EINVAL for an unknown name or one that does not fit, see
//  sf_strategy_check), else the default (SF_ENOTSUP/SF_EINVAL/SF_ESTATE).
//  Check its node is up (SF_ENODE), that its worker announced the
//  strategy (SF_ENOTSUP "node 'n1' cannot run strategy 'rbd' (its worker
//  has no Ceph configured)") and that the instance has no unfinished job
//  (SF_EBUSY). Then commit the job (a bulk of one) and hand it to
//  admission, which assigns it at once unless a limit binds. Returns the
//  job as JSON (see sf_jobs_json; caller owns it). On any error no job row
//  is created. full: a full copy (no incremental offer, sf_chain).
json_t *
    sf_bulk_one (sf_bulk_t *self, const char *key, const char *strategy, bool full,
                 sf_err_t *err);

//  The bulk as the admin protocol shows it: {"bulk_id","created",
//  "select","strategy","priority","deadline","window_end","schedule",
//  "state","total","finished", counts per state, "bytes","bytes_total",
//  "started","throughput_bps","eta_ms","failures":[...]}, and "jobs" if
//  with_jobs. NULL with err set (SF_ENOENT if there is no such bulk).
json_t *
    sf_bulk_json (sf_bulk_t *self, const char *id, bool with_jobs, sf_err_t *err);

//  Forget up to batch finished bulks created before before_ms that no job
//  names any more (see sf_jobs_prune), no pending deletion names, and
//  that are not a schedule's last bulk. Returns how many, or -1 with err
//  set.
int64_t
    sf_bulk_prune (sf_bulk_t *self, int64_t before_ms, int64_t batch, sf_err_t *err);

//  The last 1000 bulks, oldest first, without jobs or failures.
json_t *
    sf_bulk_list_json (sf_bulk_t *self, sf_err_t *err);

//  The schedule that fired bulk_id: its name into schedule (size bytes;
//  "" if none) and its identity into *schedule_seq (0 if none). Returns 1,
//  0 if there is no such bulk, or -1 with err set.
int
    sf_bulk_schedule (sf_bulk_t *self, const char *bulk_id, char *schedule,
                      size_t size, int64_t *schedule_seq, sf_err_t *err);

//  The ids of the bulks the schedule whose identity is schedule_seq fired
//  (never a namesake's), oldest first. Caller owns the list of strings.
//  NULL with err set.
zlistx_t *
    sf_bulk_of_schedule (sf_bulk_t *self, int64_t schedule_seq, sf_err_t *err);

//  Dry run: what a bulk of select with opts would do, predicted by the
//  planner from the current state. Creates nothing.
json_t *
    sf_bulk_plan (sf_bulk_t *self, json_t *select, const sf_bulk_opts_t *opts,
                  sf_err_t *err);

//  Cancel every unfinished job of bulk_id (sf_dispatch_cancel); the bulk
//  is done when the last of them has ended. Returns the answers of
//  sf_dispatch_cancel ([] if none was unfinished), or NULL with err set
//  (SF_ENOENT "no bulk 'B9'"). Caller owns the result.
json_t *
    sf_bulk_cancel (sf_bulk_t *self, const char *bulk_id, sf_err_t *err);

//  Self test of this class
void
    sf_bulk_test (bool verbose);

#endif
