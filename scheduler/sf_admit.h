/*  =========================================================================
    sf_admit - admission: which queued job starts next, and the resources
    each phase holds (design: "resources granted per phase")

    A pure in-memory engine: no sockets, no database. The scheduler feeds it
    nodes, jobs and phase changes and acts on its answers; the planner and
    the scale benchmark drive the same engine.

    Per phase a job holds:
      assigned .. captured   a pause slot (fleet max_paused, node
                             max_paused_per_node) if the job pauses, a
                             snap-op slot (max_snap_ops per Ceph cluster)
                             if it snapshots RBD; plus one of the node's
                             max_jobs and its scratch reservation
      upload wait            nothing new (keeps its job slot and scratch)
      uploading              an upload slot (fleet, node, store) and a
                             bandwidth share (bytes/s) from the fleet, node
                             and store budgets
      uploaded .. finished   its job slot until finished
    A limit of 0 means "no limit". Counts never exceed a limit: a job that
    does not fit waits. Ordering: priority (higher first), then deadline
    (earliest first, none last), then the node with the most queued
    estimated work (so every node's limits are used and the makespan is
    short), then creation order. Upload slots: priority, deadline, then the
    node with fewer uploads running, then the longest wait.
    =========================================================================
*/
#ifndef SF_ADMIT_H_INCLUDED
#define SF_ADMIT_H_INCLUDED

typedef struct _sf_admit_t sf_admit_t;

//  Limits (scheduler.conf [limits]); 0 = no limit
typedef struct {
    int64_t max_paused;             //  guests paused at once, fleet-wide
    int64_t max_paused_per_node;
    int64_t max_snap_ops;           //  capture phases at once per Ceph cluster
    int64_t max_uploads;            //  uploads at once, fleet-wide
    int64_t max_uploads_per_node;
    int64_t max_uploads_per_store;
    int64_t bandwidth;              //  bytes/s, fleet-wide
    int64_t bandwidth_per_node;
    int64_t bandwidth_per_store;
    //  Not admission's: the leases of handed jobs (sf_lease, sf_dispatch)
    int64_t lease_ms;               //  base lease and grace (0: 60 s)
    int64_t lease_rate;             //  bytes/s floor rate (0: 1 MiB/s)
} sf_limits_t;

//  A job as admission sees it (strings copied)
typedef struct {
    const char *id;                 //  "J42"
    const char *node;
    uint64_t seq;                   //  creation order, tie-break
    int priority;                   //  higher first
    int64_t deadline_ms;            //  epoch ms it should finish by; 0 none
    int64_t window_end_ms;          //  epoch ms: do not start if it would
                                    //  end after this; 0 none
    bool pausing;                   //  capture holds a pause slot
    bool snap_op;                   //  capture holds a snap-op slot
    uint64_t scratch_bytes;         //  reserved on the node before the pause
    uint64_t upload_bytes;          //  estimated bytes to upload (0: none)
    int64_t capture_ms;             //  estimated capture (pause + convert)
    double upload_bps;              //  measured upload throughput cap
                                    //  without limits (0: unknown = no cap)
} sf_admit_job_t;

//  What sf_admit_next decided about a job
typedef enum {
    SF_ADMIT_NONE = 0,              //  nothing can start now
    SF_ADMIT_START,                 //  assign it now (slots taken)
    SF_ADMIT_SKIP,                  //  window would be overrun: record it
                                    //  skipped with the reason; removed
    SF_ADMIT_FAIL                   //  can never start (e.g. needs more
                                    //  scratch than the node has); removed
} sf_admit_verdict_t;

//  Create an engine with limits (copied). Caller owns the result.
sf_admit_t *
    sf_admit_new (const sf_limits_t *limits);

void
    sf_admit_destroy (sf_admit_t **self_p);

//  Change the limits (config reload, tests). Never revokes held slots;
//  new grants respect the new limits.
void
    sf_admit_set_limits (sf_admit_t *self, const sf_limits_t *limits);

//  Add or update a node. store: image store name (per-store limits);
//  ceph_cluster: fsid or "" (per-cluster snap ops); max_jobs: jobs the
//  worker runs at once (0 = no limit); scratch_free: bytes free now, as
//  the worker last reported (the engine subtracts its own reservations of
//  jobs admitted since). A node that is not up gets no new job.
//  scratch_free 0 means "not reported": no scratch check on that node.
//  A job needing more scratch than the node has free minus what running
//  jobs reserved waits; one needing more than scratch_free with nothing
//  reserved there (and no reservation released since this report) FAILs.
//  A node serves its own queue in order: a head job waiting for a pause
//  or snap-op slot holds back the node's later jobs.
void
    sf_admit_node (sf_admit_t *self, const char *node, bool up, const char *store,
                   const char *ceph_cluster, uint32_t max_jobs, uint64_t scratch_free);

//  Queue a job (state queued, holds nothing). Returns 0, -1 if the id is
//  already known or the node unknown.
int
    sf_admit_add (sf_admit_t *self, const sf_admit_job_t *job);

//  Put back a job that already runs, holding what its phase holds (after a
//  scheduler restart). phase: SF_PHASE_QUEUED/PAUSED (capture: pause and
//  snap slots), SF_PHASE_RESUMED/CONVERTED/UPLOAD_WAIT (waits for upload),
//  SF_PHASE_UPLOADED; uploading is restored as UPLOAD_WAIT (granted again).
int
    sf_admit_restore (sf_admit_t *self, const sf_admit_job_t *job, int phase);

//  The next decision at now_ms: fills *id (borrowed, valid until the job
//  is finished) and, for SKIP/FAIL, reason (one line). Call until NONE.
//  A SKIP/FAIL job is already forgotten: its id stays valid only until
//  the next sf_admit_next call. reason may be NULL.
sf_admit_verdict_t
    sf_admit_next (sf_admit_t *self, int64_t now_ms, const char **id,
                   char *reason, size_t reason_size);

//  A job that sf_admit_next started goes back to the queue, holding
//  nothing, in its old place (its assignment never reached the node).
//  Returns 0, -1 if the job is unknown or past its capture.
int
    sf_admit_requeue (sf_admit_t *self, const char *id);

//  The capture is over (RESUMED, or CONVERTED for a job that does not
//  pause): frees the pause and snap-op slots.
void
    sf_admit_captured (sf_admit_t *self, const char *id);

//  The job waits to upload bytes: queue it for an upload slot.
void
    sf_admit_upload_wait (sf_admit_t *self, const char *id, uint64_t bytes);

//  The next upload to start: fills *id and *rate_bps (0 = no limit).
//  Returns true if one starts now. Call until false: the calls up to the
//  false one are a round, in which waiters whose node or store has no
//  bandwidth left are passed over for waiters elsewhere (nothing else may
//  change the engine in between).
bool
    sf_admit_next_upload (sf_admit_t *self, const char **id, uint64_t *rate_bps);

//  Rate changes to send to running uploads after the last grants and
//  releases (rebalancing): calls fn (id, new rate) for each. Lowered rates
//  are reported before raised ones (send them in that order). Bandwidth
//  freed since the last call (ended uploads, applied cuts) goes first to
//  the uploads that sf_admit_next_upload started, then here to running
//  uploads below their fair share.
void
    sf_admit_rates (sf_admit_t *self,
                    void (*fn) (void *arg, const char *id, uint64_t rate_bps),
                    void *arg);

//  With acks on, a lowered rate keeps counting at the old rate in the
//  budgets until sf_admit_rate_applied says the worker applied it, so that
//  what it frees is granted to other uploads only once it is really free
//  (messages to different nodes arrive in any order). Off by default (the
//  planner applies rates at once).
void
    sf_admit_set_acks (sf_admit_t *self, bool acks);

//  The worker applies rate_bps to the job's upload from now on: frees what
//  a cut held back. Returns true if that freed bandwidth (call
//  sf_admit_next_upload, then sf_admit_rates).
bool
    sf_admit_rate_applied (sf_admit_t *self, const char *id, uint64_t rate_bps);

//  The upload is over: frees the upload slot, the share and the scratch.
void
    sf_admit_uploaded (sf_admit_t *self, const char *id);

//  The job ended (done, failed, cancelled, node down): frees everything it
//  holds and forgets it. Unknown ids are ignored.
void
    sf_admit_finished (sf_admit_t *self, const char *id);

//  The job ended without word from its node while its guest may still be
//  paused (lease expiry): as sf_admit_finished, but if it holds a pause
//  slot, that slot (fleet max_paused and the node's max_paused_per_node)
//  stays held until until_ms (epoch ms, the clock of sf_admit_next): the
//  worker's guard resumes the guest by then at the latest. Returns true
//  if a slot was kept.
bool
    sf_admit_finished_held (sf_admit_t *self, const char *id, int64_t until_ms);

//  True if the job holds a pause slot now (capture of a pausing job).
bool
    sf_admit_holds_pause (sf_admit_t *self, const char *id);

//  Hold a pause slot on node (added if unknown, down) until until_ms: a
//  kept slot restored after a restart. Counted like a paused guest.
void
    sf_admit_hold (sf_admit_t *self, const char *node, int64_t until_ms);

//  Release the kept slots whose time has come at now_ms (sf_admit_next
//  does it too). Returns the number released.
size_t
    sf_admit_release_holds (sf_admit_t *self, int64_t now_ms);

//  Pause slots kept past their jobs now.
size_t
    sf_admit_holds (sf_admit_t *self);

//  The next queued job of a node that is not up whose window has closed
//  for it at now_ms (now plus its estimate is past the window's end):
//  SKIP with *id (valid until the next call of this or sf_admit_next)
//  and reason "node 'n1' was down until the window closed"; the job is
//  forgotten. NONE if there is none. Jobs of down nodes without a window
//  wait for their node.
sf_admit_verdict_t
    sf_admit_next_stranded (sf_admit_t *self, int64_t now_ms, const char **id,
                            char *reason, size_t reason_size);

//  Counters: now and the highest seen since sf_admit_new
typedef struct {
    int64_t queued, running;
    int64_t paused, paused_max;             //  fleet pause slots held
    int64_t uploads, uploads_max;           //  fleet upload slots held
    int64_t node_paused_max;                //  highest on any one node
    int64_t node_uploads_max;
    int64_t store_uploads_max;              //  highest on any one store
    int64_t snap_ops_max;                   //  highest on any one cluster
    uint64_t bandwidth, bandwidth_max;      //  sum of granted rates
} sf_admit_stats_t;

void
    sf_admit_stats (sf_admit_t *self, sf_admit_stats_t *stats);

//  Self test of this class
void
    sf_admit_test (bool verbose);

#endif
