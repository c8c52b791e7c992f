/*  =========================================================================
    sf_plan - planner: duration estimates, and the dry run that says before
    anything starts which jobs will be late or skipped

    The dry run drives the admission engine (sf_admit) itself with a
    simulated clock, so the plan follows the same policy as the real run:
    captures end after their estimated time, uploads move at the rates the
    engine grants (changing as others start and end), a job ends when its
    upload does.
    =========================================================================
*/
#ifndef SF_PLAN_H_INCLUDED
#define SF_PLAN_H_INCLUDED

typedef struct _sf_plan_t sf_plan_t;

//  Throughput measured on earlier jobs; 0 = default guess (convert
//  200 MB/s, upload 100 MB/s, pause base 150 ms, RBD capture 200 ms)
typedef struct {
    double convert_bps;
    double upload_bps;
    int64_t pause_base_ms;
    int64_t rbd_capture_ms;
} sf_plan_model_t;

//  Fill job->capture_ms, upload_bytes, scratch_bytes, upload_bps, pausing,
//  snap_op from the strategy and sizes (file_bytes: allocated bytes of
//  file disks; rbd_bytes: virtual bytes of RBD disks; export_mode: RBD
//  exported to the store, not cloned). Other fields are left alone. model
//  may be NULL (all defaults); an unknown strategy is estimated as
//  file-cold.
void
    sf_plan_estimate (const sf_plan_model_t *model, const char *strategy,
                      uint64_t file_bytes, uint64_t rbd_bytes, bool export_mode,
                      sf_admit_job_t *job);

//  A node's last RBD snapshot round (ms, from its heartbeats; 0 unknown)
//  at or above which the plan notes the wait for the Ceph monitor
#define SF_PLAN_SLOW_RBD_MS     500

//  The model for jobs on a node whose last RBD snapshot round took
//  rbd_snap_ms: an RBD capture takes at least that long.
void
    sf_plan_model_node (sf_plan_model_t *model, int64_t rbd_snap_ms);

//  The plan's note for a job of strategy on such a node, into buf: "RBD
//  snapshots on this node waited 980 ms for the Ceph monitor; a guest
//  without a guest agent is paused that long". NULL (buf "") for other
//  strategies, or a round under SF_PLAN_SLOW_RBD_MS.
const char *
    sf_plan_rbd_note (const char *strategy, int64_t rbd_snap_ms, char *buf, size_t size);

//  One job of the plan. Times in ms from now. A skipped job (window) or a
//  failed one (e.g. more scratch than its node has) has start == end and
//  the reason.
typedef struct {
    const char *id;
    const char *node;
    int64_t start_ms, end_ms;
    bool late;                      //  ends after its deadline
    bool skipped;                   //  would overrun its window
    bool failed;                    //  can never start (reason says why)
    char reason [200];
} sf_plan_row_t;

//  Create a plan with limits (copied). Caller owns the result.
sf_plan_t *
    sf_plan_new (const sf_limits_t *limits);

void
    sf_plan_destroy (sf_plan_t **self_p);

//  Add a node (up), as for sf_admit_node. A second call for the same name
//  replaces it.
void
    sf_plan_node (sf_plan_t *self, const char *node, const char *store,
                  const char *ceph_cluster, uint32_t max_jobs, uint64_t scratch_free);

//  Add a job (copied). Returns 0, -1 if the id is already in the plan.
//  A job on a node the plan does not know fails in the plan.
int
    sf_plan_add (sf_plan_t *self, const sf_admit_job_t *job);

//  Simulate with the sf_admit engine (same policy, simulated clock from
//  now_ms, bandwidth shares as the engine grants them); rows in start
//  order. Can be run again (e.g. after adding jobs). Returns 0.
int
    sf_plan_run (sf_plan_t *self, int64_t now_ms);

size_t
    sf_plan_size (sf_plan_t *self);

//  Row index (0 .. size-1) of the last run, or NULL. Valid until the next
//  run or destroy.
const sf_plan_row_t *
    sf_plan_row (sf_plan_t *self, size_t index);

//  When the last job ends, ms from now (0 if none runs)
int64_t
    sf_plan_makespan_ms (sf_plan_t *self);

//  A bound no schedule can beat: the largest of total upload bytes /
//  bandwidth, total pause time / max_paused, per-cluster snap-op time /
//  max_snap_ops, upload slot time / max_uploads, each node's and store's
//  own bounds, and the longest single job (jobs that run, not skipped)
int64_t
    sf_plan_lower_bound_ms (sf_plan_t *self);

//  Counts of the last run
size_t
    sf_plan_late (sf_plan_t *self);

size_t
    sf_plan_skipped (sf_plan_t *self);      //  skipped or failed

//  Self test of this class
void
    sf_plan_test (bool verbose);

#endif
