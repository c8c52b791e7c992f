/*  =========================================================================
    sf_plan - the planner: estimates of a job's phases, and a dry run of
    the admission engine on a simulated clock

    The run is event driven: at each instant it asks sf_admit what starts
    (and what is skipped or fails), grants uploads and applies rate
    changes, then jumps to the next capture end (a heap) or upload end (a
    scan of the running uploads only). Upload progress is fluid: between
    two events an upload moves min(grant, its own throughput) x time bytes;
    with neither known it takes no time.
    =========================================================================
*/
#include "sf_sched_classes.h"

//  Defaults before anything was measured
#define DEFAULT_CONVERT_BPS     (200.0 * 1024 * 1024)
#define DEFAULT_UPLOAD_BPS      (100.0 * 1024 * 1024)
#define DEFAULT_PAUSE_BASE_MS   150
#define DEFAULT_RBD_CAPTURE_MS  200
//  file-live holds the guest (a freeze, or nothing) only while its backup
//  starts: 40-275 ms measured (notes/libvirt.md)
#define LIVE_HOLD_MS            150

typedef enum { P_QUEUED, P_CAPTURE, P_UPLOAD_WAIT, P_UPLOADING, P_ENDED } pstate_t;

typedef struct {
    sf_admit_job_t job;         //  Strings owned (id, node)
    sf_plan_row_t row;
    pstate_t state;
    double capture_end;         //  ms from the start
    double left;                //  bytes still to upload
    double speed;               //  bytes per ms, < 0: no limit at all
    uint64_t rate;              //  granted, 0 = no limit
    size_t aidx;                //  in self->active
} pjob_t;

typedef struct {
    char *name, *store, *cluster;
    uint32_t max_jobs;
    uint64_t scratch_free;
} pnode_t;

struct _sf_plan_t {
    sf_limits_t limits;
    zhashx_t *nodes;            //  name -> pnode_t (owned)
    zlistx_t *node_list;        //  pnode_t, in order added (borrowed)
    zhashx_t *by_id;            //  id -> pjob_t (owned)
    pjob_t **jobs;              //  in order added (borrowed)
    size_t n_jobs, jobs_cap;
    pjob_t **rows;              //  in start order, after the run
    size_t n_rows;
    pjob_t **active;            //  uploading
    size_t n_active;
    sf_heap_t events;           //  capturing pjob_t, by capture end
    int64_t makespan_ms, lower_ms;
    size_t late, skipped;
};

static void
s_pjob_destroy (void **item)
{
    pjob_t *pjob = (pjob_t *) *item;
    free ((char *) pjob->job.id);
    free ((char *) pjob->job.node);
    free (pjob);
    *item = NULL;
}

static void
s_pnode_destroy (void **item)
{
    pnode_t *n = (pnode_t *) *item;
    free (n->name);
    free (n->store);
    free (n->cluster);
    free (n);
    *item = NULL;
}

//  --------------------------------------------------------------------------
//  Estimates

void
sf_plan_estimate (const sf_plan_model_t *model, const char *strategy,
                  uint64_t file_bytes, uint64_t rbd_bytes, bool export_mode,
                  sf_admit_job_t *job)
{
    assert (job);
    sf_plan_model_t none = { 0 };
    if (!model)
        model = &none;
    double convert_bps = model->convert_bps > 0? model->convert_bps: DEFAULT_CONVERT_BPS;
    double upload_bps = model->upload_bps > 0? model->upload_bps: DEFAULT_UPLOAD_BPS;
    int64_t pause_base = model->pause_base_ms > 0? model->pause_base_ms
                                                 : DEFAULT_PAUSE_BASE_MS;
    int64_t rbd_ms = model->rbd_capture_ms > 0? model->rbd_capture_ms
                                              : DEFAULT_RBD_CAPTURE_MS;
    bool rbd = strategy && streq (strategy, SF_STRATEGY_RBD);
    bool mixed = strategy && streq (strategy, SF_STRATEGY_MIXED);
    bool offline = strategy && streq (strategy, SF_STRATEGY_OFFLINE);
    bool live = strategy && streq (strategy, SF_STRATEGY_FILE_LIVE);
    uint64_t exported = export_mode? rbd_bytes: 0;
    int64_t convert_ms = (int64_t) ((double) file_bytes * 1000 / convert_bps);
    job->upload_bps = upload_bps;
    if (rbd) {
        //  Freeze or pause around the RBD snapshots; clones upload nothing
        job->pausing = true;
        job->snap_op = true;
        job->capture_ms = rbd_ms;
        job->upload_bytes = exported;
    }
    else
    if (mixed) {
        //  The RBD snapshots and the file disks' conversion in one pause
        job->pausing = true;
        job->snap_op = true;
        job->capture_ms = rbd_ms + convert_ms;
        job->upload_bytes = file_bytes + exported;
    }
    else
    if (live) {
        //  A hold of milliseconds around the backup's start; the copy then
        //  runs with the guest up, before the upload: one pass at the
        //  slower of the two rates' harmonic sum
        job->pausing = true;
        job->snap_op = false;
        job->capture_ms = LIVE_HOLD_MS;
        job->upload_bytes = file_bytes;
        job->upload_bps = 1.0 / (1.0 / convert_bps + 1.0 / upload_bps);
    }
    else
    if (offline) {
        job->pausing = false;
        job->snap_op = rbd_bytes > 0;
        job->capture_ms = convert_ms + (rbd_bytes? rbd_ms: 0);
        job->upload_bytes = file_bytes + exported;
    }
    else {
        //  file-cold (and anything unknown): converts inside the pause
        job->pausing = true;
        job->snap_op = false;
        job->capture_ms = pause_base + convert_ms;
        job->upload_bytes = file_bytes;
    }
    job->scratch_bytes = job->upload_bytes;
}

void
sf_plan_model_node (sf_plan_model_t *model, int64_t rbd_snap_ms)
{
    assert (model);
    int64_t rbd_ms = model->rbd_capture_ms > 0? model->rbd_capture_ms: DEFAULT_RBD_CAPTURE_MS;
    if (rbd_snap_ms > rbd_ms)
        model->rbd_capture_ms = rbd_snap_ms;
}

const char *
sf_plan_rbd_note (const char *strategy, int64_t rbd_snap_ms, char *buf, size_t size)
{
    assert (buf && size);
    *buf = 0;
    bool rbd = strategy && (streq (strategy, SF_STRATEGY_RBD)
                         || streq (strategy, SF_STRATEGY_MIXED));
    if (!rbd || rbd_snap_ms < SF_PLAN_SLOW_RBD_MS)
        return NULL;
    snprintf (buf, size, "RBD snapshots on this node waited %" PRId64 " ms for the Ceph "
              "monitor; a guest without a guest agent is paused that long", rbd_snap_ms);
    return buf;
}

//  --------------------------------------------------------------------------
//  Construction

//  Capture ends: the earlier one first
static bool
s_event_before (const void *a, const void *b)
{
    return ((const pjob_t *) a)->capture_end < ((const pjob_t *) b)->capture_end;
}

sf_plan_t *
sf_plan_new (const sf_limits_t *limits)
{
    assert (limits);
    sf_plan_t *self = (sf_plan_t *) zmalloc (sizeof (sf_plan_t));
    self->limits = *limits;
    self->nodes = zhashx_new ();
    zhashx_set_destructor (self->nodes, s_pnode_destroy);
    self->node_list = zlistx_new ();
    self->by_id = zhashx_new ();
    zhashx_set_destructor (self->by_id, s_pjob_destroy);
    sf_heap_init (&self->events, s_event_before, SF_HEAP_NO_INDEX);
    return self;
}

void
sf_plan_destroy (sf_plan_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_plan_t *self = *self_p;
        zlistx_destroy (&self->node_list);
        zhashx_destroy (&self->nodes);
        zhashx_destroy (&self->by_id);
        free (self->jobs);
        free (self->rows);
        free (self->active);
        sf_heap_release (&self->events);
        free (self);
        *self_p = NULL;
    }
}

void
sf_plan_node (sf_plan_t *self, const char *node, const char *store,
              const char *ceph_cluster, uint32_t max_jobs, uint64_t scratch_free)
{
    assert (self && node);
    pnode_t *n = (pnode_t *) zhashx_lookup (self->nodes, node);
    if (!n) {
        n = (pnode_t *) zmalloc (sizeof (pnode_t));
        n->name = strdup (node);
        zhashx_insert (self->nodes, node, n);
        zlistx_add_end (self->node_list, n);
    }
    free (n->store);
    free (n->cluster);
    n->store = strdup (store? store: "");
    n->cluster = strdup (ceph_cluster? ceph_cluster: "");
    n->max_jobs = max_jobs;
    n->scratch_free = scratch_free;
}

int
sf_plan_add (sf_plan_t *self, const sf_admit_job_t *job)
{
    assert (self && job && job->id && job->node);
    if (zhashx_lookup (self->by_id, job->id))
        return -1;
    pjob_t *pjob = (pjob_t *) zmalloc (sizeof (pjob_t));
    pjob->job = *job;
    pjob->job.id = strdup (job->id);
    pjob->job.node = strdup (job->node);
    pjob->row.id = pjob->job.id;
    pjob->row.node = pjob->job.node;
    zhashx_insert (self->by_id, pjob->job.id, pjob);
    if (self->n_jobs == self->jobs_cap) {
        self->jobs_cap = self->jobs_cap? self->jobs_cap * 2: 64;
        self->jobs = (pjob_t **) realloc (self->jobs, self->jobs_cap * sizeof (pjob_t *));
        assert (self->jobs);
    }
    self->jobs [self->n_jobs++] = pjob;
    return 0;
}

//  --------------------------------------------------------------------------
//  The run

typedef struct {
    sf_plan_t *self;
    sf_admit_t *admit;
    int64_t start_ms;           //  now_ms of the run
    double now;                 //  ms from the start
} run_t;

//  Bytes per ms: min(grant, own throughput) of those known; -1 = instant
static void
s_set_speed (pjob_t *pjob)
{
    double cap = pjob->job.upload_bps > 0? pjob->job.upload_bps: 0;
    double rate = (double) pjob->rate;
    double bps = rate > 0 && cap > 0? (rate < cap? rate: cap): rate > 0? rate: cap;
    pjob->speed = bps > 0? bps / 1000.0: -1;
}

static int64_t
s_round (double ms)
{
    return (int64_t) (ms + 0.5);
}

static void
s_row (run_t *run, pjob_t *pjob)
{
    sf_plan_t *self = run->self;
    self->rows [self->n_rows++] = pjob;
    pjob->row.start_ms = s_round (run->now);
}

static void
s_end (run_t *run, pjob_t *pjob)
{
    sf_plan_t *self = run->self;
    pjob->state = P_ENDED;
    pjob->row.end_ms = s_round (run->now);
    if (pjob->row.end_ms > self->makespan_ms)
        self->makespan_ms = pjob->row.end_ms;
    int64_t over = run->start_ms + pjob->row.end_ms - pjob->job.deadline_ms;
    //  Admission starts a job whose own estimate fits its window; when jobs
    //  started after it slow it down it can still end after the window
    int64_t past = run->start_ms + pjob->row.end_ms - pjob->job.window_end_ms;
    if (pjob->job.deadline_ms > 0 && over > 0) {
        pjob->row.late = true;
        self->late++;
        snprintf (pjob->row.reason, sizeof (pjob->row.reason),
                  "ends %.1f s after its deadline", (double) over / 1000.0);
    }
    else
    if (pjob->job.window_end_ms > 0 && past > 0) {
        pjob->row.late = true;
        self->late++;
        snprintf (pjob->row.reason, sizeof (pjob->row.reason),
                  "ends %.1f s after the window closes", (double) past / 1000.0);
    }
    sf_admit_finished (run->admit, pjob->job.id);
    //  The plan's disk report stays true once the scratch is given back
    pnode_t *n = (pnode_t *) zhashx_lookup (self->nodes, pjob->job.node);
    if (pjob->job.scratch_bytes && n)
        sf_admit_node (run->admit, n->name, true, n->store, n->cluster, n->max_jobs,
                       n->scratch_free);
}

static void
s_on_rate (void *arg, const char *id, uint64_t rate_bps)
{
    run_t *run = (run_t *) arg;
    pjob_t *pjob = (pjob_t *) zhashx_lookup (run->self->by_id, id);
    if (pjob && pjob->state == P_UPLOADING) {
        pjob->rate = rate_bps;
        s_set_speed (pjob);
    }
}

//  Start, skip and grant what the engine allows at run->now
static void
s_decide (run_t *run)
{
    sf_plan_t *self = run->self;
    const char *id;
    char reason [200];
    sf_admit_verdict_t verdict;
    int64_t at = run->start_ms + s_round (run->now);
    while ((verdict = sf_admit_next (run->admit, at, &id, reason, sizeof (reason)))
           != SF_ADMIT_NONE) {
        pjob_t *pjob = (pjob_t *) zhashx_lookup (self->by_id, id);
        assert (pjob);
        s_row (run, pjob);
        if (verdict == SF_ADMIT_START) {
            pjob->state = P_CAPTURE;
            pjob->capture_end = run->now + (double) pjob->job.capture_ms;
            sf_heap_insert (&self->events, pjob);
        }
        else {
            pjob->state = P_ENDED;
            pjob->row.skipped = true;
            pjob->row.failed = verdict == SF_ADMIT_FAIL;
            pjob->row.end_ms = pjob->row.start_ms;
            self->skipped++;
            snprintf (pjob->row.reason, sizeof (pjob->row.reason), "%s", reason);
        }
    }
    uint64_t rate;
    while (sf_admit_next_upload (run->admit, &id, &rate)) {
        pjob_t *pjob = (pjob_t *) zhashx_lookup (self->by_id, id);
        assert (pjob && pjob->state == P_UPLOAD_WAIT);
        pjob->state = P_UPLOADING;
        pjob->rate = rate;
        s_set_speed (pjob);
        pjob->aidx = self->n_active;
        self->active [self->n_active++] = pjob;
    }
    sf_admit_rates (run->admit, s_on_rate, run);
}

static void
s_upload_end (run_t *run, pjob_t *pjob)
{
    sf_plan_t *self = run->self;
    self->active [pjob->aidx] = self->active [--self->n_active];
    self->active [pjob->aidx]->aidx = pjob->aidx;
    sf_admit_uploaded (run->admit, pjob->job.id);
    s_end (run, pjob);
}

//  Move time on to the next event and handle what ends there. Returns
//  false when nothing is running any more.
static bool
s_step (run_t *run)
{
    sf_plan_t *self = run->self;
    pjob_t *first = (pjob_t *) sf_heap_top (&self->events);
    double next = first? first->capture_end: -1;
    for (size_t i = 0; i < self->n_active; i++) {
        pjob_t *pjob = self->active [i];
        double at = pjob->speed > 0? run->now + pjob->left / pjob->speed: run->now;
        if (next < 0 || at < next)
            next = at;
    }
    if (next < 0)
        return false;
    double dt = next - run->now;
    run->now = next;
    for (size_t i = 0; i < self->n_active; ) {
        pjob_t *pjob = self->active [i];
        pjob->left = pjob->speed > 0? pjob->left - pjob->speed * dt: 0;
        if (pjob->left <= 0.5)
            s_upload_end (run, pjob);   //  moves the last one to i
        else
            i++;
    }
    pjob_t *pjob;
    while ((pjob = (pjob_t *) sf_heap_top (&self->events))
    &&     pjob->capture_end <= run->now) {
        sf_heap_pop (&self->events);
        sf_admit_captured (run->admit, pjob->job.id);
        if (pjob->job.upload_bytes > 0) {
            pjob->state = P_UPLOAD_WAIT;
            pjob->left = (double) pjob->job.upload_bytes;
            sf_admit_upload_wait (run->admit, pjob->job.id, pjob->job.upload_bytes);
        }
        else
            s_end (run, pjob);
    }
    return true;
}

static void
s_lower_bound (sf_plan_t *self);

int
sf_plan_run (sf_plan_t *self, int64_t now_ms)
{
    assert (self);
    size_t count = self->n_jobs? self->n_jobs: 1;
    free (self->rows);
    free (self->active);
    sf_heap_release (&self->events);
    self->rows = (pjob_t **) calloc (count, sizeof (pjob_t *));
    self->active = (pjob_t **) calloc (count, sizeof (pjob_t *));
    assert (self->rows && self->active);
    self->n_rows = self->n_active = 0;
    self->makespan_ms = 0;
    self->late = self->skipped = 0;
    run_t run = { self, sf_admit_new (&self->limits), now_ms, 0 };
    for (pnode_t *n = (pnode_t *) zlistx_first (self->node_list); n;
         n = (pnode_t *) zlistx_next (self->node_list))
        sf_admit_node (run.admit, n->name, true, n->store, n->cluster, n->max_jobs,
                       n->scratch_free);
    for (size_t i = 0; i < self->n_jobs; i++) {
        pjob_t *pjob = self->jobs [i];
        const char *id = pjob->row.id, *node = pjob->row.node;
        memset (&pjob->row, 0, sizeof (pjob->row));
        pjob->row.id = id;
        pjob->row.node = node;
        pjob->state = P_QUEUED;
        pjob->rate = 0;
        if (sf_admit_add (run.admit, &pjob->job)) {
            s_row (&run, pjob);
            pjob->state = P_ENDED;
            pjob->row.skipped = pjob->row.failed = true;
            self->skipped++;
            snprintf (pjob->row.reason, sizeof (pjob->row.reason),
                      "node '%s' is not up", node);
        }
    }
    do
        s_decide (&run);
    while (s_step (&run));
    //  What never started (the engine holds it back for good)
    for (size_t i = 0; i < self->n_jobs; i++) {
        pjob_t *pjob = self->jobs [i];
        if (pjob->state == P_QUEUED) {
            s_row (&run, pjob);
            pjob->state = P_ENDED;
            pjob->row.skipped = pjob->row.failed = true;
            pjob->row.end_ms = pjob->row.start_ms;
            self->skipped++;
            snprintf (pjob->row.reason, sizeof (pjob->row.reason),
                      "cannot start: its node's limits never allow it");
        }
    }
    sf_admit_destroy (&run.admit);
    s_lower_bound (self);
    return 0;
}

size_t
sf_plan_size (sf_plan_t *self)
{
    assert (self);
    return self->n_rows;
}

const sf_plan_row_t *
sf_plan_row (sf_plan_t *self, size_t index)
{
    assert (self);
    return index < self->n_rows? &self->rows [index]->row: NULL;
}

int64_t
sf_plan_makespan_ms (sf_plan_t *self)
{
    assert (self);
    return self->makespan_ms;
}

int64_t
sf_plan_lower_bound_ms (sf_plan_t *self)
{
    assert (self);
    return self->lower_ms;
}

size_t
sf_plan_late (sf_plan_t *self)
{
    assert (self);
    return self->late;
}

size_t
sf_plan_skipped (sf_plan_t *self)
{
    assert (self);
    return self->skipped;
}

//  --------------------------------------------------------------------------
//  Lower bound

//  What one node, store, cluster or the fleet has to get through
typedef struct {
    double pause_ms, snap_ms, bytes, upload_ms, job_ms;
} load_t;

static double
s_max (double a, double b)
{
    return a > b? a: b;
}

static double
s_ratio (double work, int64_t limit)
{
    return limit > 0? work / (double) limit: 0;
}

static load_t *
s_load (zhashx_t *table, const char *key)
{
    load_t *load = (load_t *) zhashx_lookup (table, key);
    if (!load) {
        load = (load_t *) zmalloc (sizeof (load_t));
        zhashx_insert (table, key, load);
    }
    return load;
}

static void
s_load_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_lower_bound (sf_plan_t *self)
{
    const sf_limits_t *l = &self->limits;
    load_t fleet = { 0 };
    zhashx_t *tabs [3];                 //  nodes, stores, clusters
    for (int t = 0; t < 3; t++) {
        tabs [t] = zhashx_new ();
        zhashx_set_destructor (tabs [t], s_load_free);
    }
    double bound = 0;
    for (size_t i = 0; i < self->n_jobs; i++) {
        pjob_t *pjob = self->jobs [i];
        if (pjob->row.skipped)
            continue;
        const sf_admit_job_t *job = &pjob->job;
        pnode_t *n = (pnode_t *) zhashx_lookup (self->nodes, job->node);
        double bytes = (double) job->upload_bytes;
        //  Alone, a job uploads at its own throughput under every budget
        double bps = job->upload_bps > 0? job->upload_bps: 0;
        int64_t caps [3] = { l->bandwidth, l->bandwidth_per_node, l->bandwidth_per_store };
        for (int c = 0; c < 3; c++)
            if (caps [c] > 0 && (bps <= 0 || (double) caps [c] < bps))
                bps = (double) caps [c];
        double upload_ms = bps > 0? bytes * 1000 / bps: 0;
        double job_ms = (double) job->capture_ms + upload_ms;
        bound = s_max (bound, job_ms);
        load_t *loads [4] = { &fleet, s_load (tabs [0], job->node),
                              s_load (tabs [1], n? n->store: ""),
                              job->snap_op? s_load (tabs [2], n? n->cluster: ""): NULL };
        for (int k = 0; k < 4; k++) {
            if (!loads [k])
                continue;
            loads [k]->pause_ms += job->pausing? (double) job->capture_ms: 0;
            loads [k]->snap_ms += job->snap_op? (double) job->capture_ms: 0;
            loads [k]->bytes += bytes;
            loads [k]->upload_ms += upload_ms;
            loads [k]->job_ms += job_ms;
        }
    }
    bound = s_max (bound, s_ratio (fleet.pause_ms, l->max_paused));
    bound = s_max (bound, s_ratio (fleet.bytes * 1000, l->bandwidth));
    bound = s_max (bound, s_ratio (fleet.upload_ms, l->max_uploads));
    for (load_t *n = (load_t *) zhashx_first (tabs [0]); n;
         n = (load_t *) zhashx_next (tabs [0])) {
        const char *name = (const char *) zhashx_cursor (tabs [0]);
        pnode_t *node = (pnode_t *) zhashx_lookup (self->nodes, name);
        bound = s_max (bound, s_ratio (n->pause_ms, l->max_paused_per_node));
        bound = s_max (bound, s_ratio (n->bytes * 1000, l->bandwidth_per_node));
        bound = s_max (bound, s_ratio (n->upload_ms, l->max_uploads_per_node));
        if (node)
            bound = s_max (bound, s_ratio (n->job_ms, node->max_jobs));
    }
    for (load_t *s = (load_t *) zhashx_first (tabs [1]); s;
         s = (load_t *) zhashx_next (tabs [1])) {
        bound = s_max (bound, s_ratio (s->bytes * 1000, l->bandwidth_per_store));
        bound = s_max (bound, s_ratio (s->upload_ms, l->max_uploads_per_store));
    }
    for (load_t *c = (load_t *) zhashx_first (tabs [2]); c;
         c = (load_t *) zhashx_next (tabs [2]))
        bound = s_max (bound, s_ratio (c->snap_ms, l->max_snap_ops));
    for (int t = 0; t < 3; t++)
        zhashx_destroy (&tabs [t]);
    self->lower_ms = s_round (bound);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_add (sf_plan_t *plan, const char *id, const char *node, int64_t capture_ms,
            uint64_t bytes, int64_t window_end, int64_t deadline)
{
    sf_admit_job_t job = { .id = id, .node = node, .seq = (uint64_t) atoi (id + 1),
                           .pausing = true, .capture_ms = capture_ms,
                           .upload_bytes = bytes, .window_end_ms = window_end,
                           .deadline_ms = deadline };
    assert (sf_plan_add (plan, &job) == 0);
}

static const sf_plan_row_t *
s_find (sf_plan_t *plan, const char *id)
{
    for (size_t i = 0; i < sf_plan_size (plan); i++)
        if (streq (sf_plan_row (plan, i)->id, id))
            return sf_plan_row (plan, i);
    assert (false);
    return NULL;
}

static void
s_test_small (void)
{
    //  Four 10 s captures, one pause at a time: 40 s, as the bound says;
    //  with a deadline at 25 s for all, J3 and J4 are late
    int64_t now = 1000000;
    sf_limits_t limits = { .max_paused = 1 };
    sf_plan_t *plan = sf_plan_new (&limits);
    sf_plan_node (plan, "n1", "s1", "", 0, 0);
    sf_plan_node (plan, "n2", "s1", "", 0, 0);
    s_test_add (plan, "J1", "n1", 10000, 0, 0, now + 25000);
    s_test_add (plan, "J2", "n2", 10000, 0, 0, now + 25000);
    s_test_add (plan, "J3", "n1", 10000, 0, 0, now + 25000);
    s_test_add (plan, "J4", "n2", 10000, 0, 0, now + 25000);
    sf_admit_job_t dup = { .id = "J4", .node = "n1" };
    assert (sf_plan_add (plan, &dup) == -1);
    assert (sf_plan_run (plan, now) == 0);
    assert (sf_plan_size (plan) == 4);
    assert (sf_plan_makespan_ms (plan) == 40000);
    assert (sf_plan_lower_bound_ms (plan) == 40000);
    const char *order [] = { "J1", "J2", "J3", "J4" };
    for (size_t i = 0; i < 4; i++) {
        const sf_plan_row_t *row = sf_plan_row (plan, i);
        assert (streq (row->id, order [i]));
        assert (row->start_ms == (int64_t) i * 10000 && row->end_ms == row->start_ms + 10000);
        assert (row->late == (i >= 2));
    }
    assert (sf_plan_late (plan) == 2 && sf_plan_skipped (plan) == 0);
    assert (strstr (sf_plan_row (plan, 3)->reason, "15.0 s after its deadline"));
    //  Runs again the same way
    assert (sf_plan_run (plan, now) == 0);
    assert (sf_plan_makespan_ms (plan) == 40000 && sf_plan_late (plan) == 2);
    sf_plan_destroy (&plan);
    assert (!plan);

    //  A window of 25 s: J3 would end at 30 s, J4 too; both skipped
    plan = sf_plan_new (&limits);
    sf_plan_node (plan, "n1", "s1", "", 0, 0);
    for (int i = 1; i <= 4; i++) {
        char id [8];
        snprintf (id, sizeof (id), "J%d", i);
        s_test_add (plan, id, "n1", 10000, 0, now + 25000, 0);
    }
    assert (sf_plan_run (plan, now) == 0);
    assert (sf_plan_size (plan) == 4 && sf_plan_skipped (plan) == 2);
    assert (!s_find (plan, "J2")->skipped && s_find (plan, "J2")->end_ms == 20000);
    const sf_plan_row_t *row = s_find (plan, "J3");
    assert (row->skipped && !row->failed && row->start_ms == 20000);
    assert (strstr (row->reason, "would end 5.0 s after the window closes"));
    assert (sf_plan_makespan_ms (plan) == 20000);
    sf_plan_destroy (&plan);
}

static void
s_test_bandwidth (void)
{
    //  Two uploads share 10 MB/s; the shorter ends at 10 s + 1 s capture,
    //  then the other gets it all: 50 MB at 5 MB/s + 50 MB at 10 MB/s
    sf_limits_t shared = { .bandwidth = 10000000 };
    sf_plan_t *plan = sf_plan_new (&shared);
    sf_plan_node (plan, "n1", "s1", "", 0, 1ull << 40);
    sf_plan_node (plan, "n2", "s1", "", 0, 1ull << 40);
    s_test_add (plan, "J1", "n1", 1000, 50000000, 0, 0);
    s_test_add (plan, "J2", "n2", 1000, 100000000, 0, 0);
    assert (sf_plan_run (plan, 0) == 0);
    assert (s_find (plan, "J1")->end_ms == 11000);
    assert (s_find (plan, "J2")->end_ms == 16000);
    assert (sf_plan_makespan_ms (plan) == 16000);
    assert (sf_plan_lower_bound_ms (plan) == 15000);
    sf_plan_destroy (&plan);

    //  Own throughput caps: J1 at 2 MB/s leaves J2 8 MB/s
    plan = sf_plan_new (&shared);
    sf_plan_node (plan, "n1", "s1", "", 0, 0);
    sf_plan_node (plan, "n2", "s1", "", 0, 0);
    sf_admit_job_t j1 = { .id = "J1", .node = "n1", .seq = 1, .upload_bytes = 20000000,
                          .upload_bps = 2e6 };
    sf_admit_job_t j2 = { .id = "J2", .node = "n2", .seq = 2, .upload_bytes = 80000000 };
    sf_plan_add (plan, &j1);
    sf_plan_add (plan, &j2);
    assert (sf_plan_run (plan, 0) == 0);
    assert (s_find (plan, "J1")->end_ms == 10000);
    assert (s_find (plan, "J2")->end_ms == 10000);
    sf_plan_destroy (&plan);

    //  No limits, no throughput known: uploads take no time; a node that
    //  is not in the plan fails its job
    sf_limits_t none = { 0 };
    plan = sf_plan_new (&none);
    sf_plan_node (plan, "n1", "s1", "", 0, 100);
    s_test_add (plan, "J1", "n1", 500, 1000, 0, 0);
    s_test_add (plan, "J2", "nx", 500, 1000, 0, 0);
    sf_admit_job_t big = { .id = "J3", .node = "n1", .seq = 3, .scratch_bytes = 1000 };
    sf_plan_add (plan, &big);
    assert (sf_plan_run (plan, 0) == 0);
    assert (s_find (plan, "J1")->end_ms == 500);
    assert (s_find (plan, "J2")->failed && strstr (s_find (plan, "J2")->reason, "nx"));
    assert (s_find (plan, "J3")->failed && strstr (s_find (plan, "J3")->reason, "scratch"));
    assert (sf_plan_skipped (plan) == 2);
    sf_plan_destroy (&plan);
}

static void
s_test_estimate (void)
{
    sf_plan_model_t model = { 0 };
    sf_admit_job_t job = { 0 };
    sf_plan_estimate (&model, "rbd", 0, 1ull << 30, false, &job);
    assert (job.pausing && job.snap_op && job.upload_bytes == 0 && job.capture_ms == 200);
    assert (job.scratch_bytes == 0);
    sf_plan_estimate (NULL, "rbd", 0, 1ull << 30, true, &job);
    assert (job.upload_bytes == 1ull << 30 && job.scratch_bytes == 1ull << 30);
    sf_plan_estimate (&model, "file-cold", 200ull << 20, 0, false, &job);
    assert (job.pausing && !job.snap_op && job.upload_bytes == 200ull << 20);
    assert (job.capture_ms == 1150 && job.scratch_bytes == 200ull << 20);
    assert (job.upload_bps == 100.0 * 1024 * 1024);
    model.convert_bps = 100 << 20;
    model.rbd_capture_ms = 50;
    sf_plan_estimate (&model, "mixed", 100ull << 20, 1ull << 30, false, &job);
    assert (job.pausing && job.snap_op && job.capture_ms == 1050);
    assert (job.upload_bytes == 100ull << 20);
    //  file-live: a pause of milliseconds whatever the size; the copy is
    //  counted with the upload
    sf_plan_estimate (&model, "file-live", 4ull << 30, 0, false, &job);
    assert (job.pausing && !job.snap_op && job.capture_ms == 150);
    assert (job.upload_bytes == 4ull << 30 && job.scratch_bytes == 4ull << 30);
    assert (job.upload_bps > 49.0 * 1024 * 1024 && job.upload_bps < 51.0 * 1024 * 1024);
    sf_plan_estimate (&model, "file-cold", 4ull << 30, 0, false, &job);
    assert (job.capture_ms > 40000);
    sf_plan_estimate (&model, "offline", 100ull << 20, 1ull << 30, true, &job);
    assert (!job.pausing && job.snap_op && job.capture_ms == 1050);
    assert (job.upload_bytes == (100ull << 20) + (1ull << 30));
    //  A node whose RBD snapshots wait ~1 s for the monitor (as shipped):
    //  the pause estimate covers it, and the plan says so for rbd and mixed
    sf_plan_model_t node_model = { 0 };
    sf_plan_model_node (&node_model, 980);
    sf_plan_estimate (&node_model, "rbd", 0, 1ull << 30, false, &job);
    assert (job.capture_ms == 980);
    node_model = (sf_plan_model_t) { .rbd_capture_ms = 1500 };
    sf_plan_model_node (&node_model, 980);                  //  history says more
    assert (node_model.rbd_capture_ms == 1500);
    node_model = (sf_plan_model_t) { 0 };
    sf_plan_model_node (&node_model, 15);                   //  a tuned monitor
    assert (node_model.rbd_capture_ms == 0);
    char note [200];
    assert (streq (sf_plan_rbd_note ("rbd", 980, note, sizeof (note)),
                   "RBD snapshots on this node waited 980 ms for the Ceph monitor; a guest "
                   "without a guest agent is paused that long"));
    assert (sf_plan_rbd_note ("mixed", 500, note, sizeof (note)));
    assert (sf_plan_rbd_note ("rbd", 499, note, sizeof (note)) == NULL && !*note);
    assert (sf_plan_rbd_note ("file-cold", 980, note, sizeof (note)) == NULL);
    assert (sf_plan_rbd_note (NULL, 980, note, sizeof (note)) == NULL);
}

//  100k jobs on 1,000 nodes under binding limits: time and the ratio of
//  makespan to its lower bound
static void
s_test_scale (bool verbose)
{
    sf_limits_t limits = { .max_paused = 50, .max_paused_per_node = 1, .max_snap_ops = 20,
                           .max_uploads = 100, .max_uploads_per_node = 1,
                           .bandwidth = 2000000000, .bandwidth_per_node = 100000000 };
    sf_plan_t *plan = sf_plan_new (&limits);
    char name [32], id [32];
    for (int i = 0; i < 1000; i++) {
        snprintf (name, sizeof (name), "n%d", i);
        sf_plan_node (plan, name, "s1", i % 2? "cephA": "cephB", 2, 0);
    }
    for (int i = 0; i < 100000; i++) {
        snprintf (name, sizeof (name), "n%d", (i * 7919) % 1000);
        snprintf (id, sizeof (id), "J%d", i);
        sf_admit_job_t job = { .id = id, .node = name, .seq = (uint64_t) i };
        sf_plan_estimate (NULL, i % 3? SF_STRATEGY_FILE_COLD: SF_STRATEGY_RBD,
                          (uint64_t) (1 + i % 7) << 28, 10ull << 30, false, &job);
        assert (sf_plan_add (plan, &job) == 0);
    }
    int64_t t0 = sf_time_mono_us ();
    clock_t c0 = clock ();
    assert (sf_plan_run (plan, 0) == 0);
    double cpu = (double) (clock () - c0) / CLOCKS_PER_SEC;
    int64_t us = sf_time_mono_us () - t0;
    assert (sf_plan_size (plan) == 100000 && sf_plan_skipped (plan) == 0);
    double ratio = (double) sf_plan_makespan_ms (plan)
                 / (double) sf_plan_lower_bound_ms (plan);
    assert (ratio >= 1.0 && ratio < 1.2);
    if (verbose)
        printf ("\n   plan of 100k jobs on 1,000 nodes: %.3f s (%.3f s CPU), makespan "
                "%.0f s, lower bound %.0f s, ratio %.3f\n   ", (double) us / 1e6, cpu,
                (double) sf_plan_makespan_ms (plan) / 1000,
                (double) sf_plan_lower_bound_ms (plan) / 1000, ratio);
    sf_plan_destroy (&plan);
}

void
sf_plan_test (bool verbose)
{
    printf (" * sf_plan: ");
    //  @selftest
    s_test_small ();
    s_test_bandwidth ();
    s_test_estimate ();
    s_test_scale (verbose);
    //  @end
    printf ("OK\n");
}
